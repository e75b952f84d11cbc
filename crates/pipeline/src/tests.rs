//! Each rule exactly, with time as an argument: no sockets, no sleeps.

use super::*;
use deepoffload_core::BBox;

/// Records what it observes; chooses the configuration set in `choice`.
#[derive(Clone, Default)]
struct Probe {
    choice: usize,
    samples: Vec<Sample>,
    hedge: bool,
    pings: bool,
    probe_bytes: usize,
    chosen_at: Vec<f64>,
}

impl Policy for Probe {
    fn choose(&mut self, now_s: f64, _session: Option<&SessionInfo>) -> usize {
        self.chosen_at.push(now_s);
        self.choice
    }
    fn observe(&mut self, sample: &Sample) {
        self.samples.push(*sample);
    }
    fn hedge(&self) -> bool {
        self.hedge
    }
    fn wants_pings(&self) -> bool {
        self.pings
    }
    fn probe_bytes(&mut self, _now_s: f64) -> usize {
        self.probe_bytes
    }
}

const LOCAL: usize = 0;
const REMOTE: usize = 1;
const QUICK: usize = 7;
const BIG: usize = 3;

fn table(fps: Option<f64>) -> Vec<Choice> {
    vec![
        Choice {
            placement: Placement::Local,
            fps,
            local: Some(BIG),
            fallback: Some(QUICK),
        },
        Choice {
            placement: Placement::Remote,
            fps,
            local: None,
            fallback: Some(QUICK),
        },
    ]
}

fn pipeline(settings: Settings, fps: Option<f64>, choice: usize) -> Pipeline<Probe> {
    let mut p = Pipeline::new(
        settings,
        table(fps),
        Probe {
            choice,
            ..Probe::default()
        },
    );
    p.handle_session(
        0.0,
        Some(SessionInfo {
            generation: 1,
            model: "yolov4-tiny".into(),
            input_size: 608,
        }),
    );
    p
}

fn hedged() -> Settings {
    Settings {
        hedge_bound_s: Some(0.3),
        ..Settings::default()
    }
}

fn cam(index: u64, fps: f64) -> Captured {
    Captured {
        index,
        pts_s: index as f64 / fps,
        captured_s: index as f64 / fps,
    }
}

fn actions(p: &mut Pipeline<Probe>) -> Vec<Action> {
    std::iter::from_fn(|| p.poll_action()).collect()
}

fn person(x: f32) -> Detection {
    Detection {
        class_id: 0,
        class_name: "person".into(),
        score: 0.9,
        objectness: 0.95,
        bbox: BBox {
            x1: x,
            y1: 10.0,
            x2: x + 20.0,
            y2: 50.0,
        },
    }
}

fn local_result(ms: f64, x: f32) -> LocalResult {
    LocalResult {
        detections: Ok(vec![person(x)]),
        preprocess_ms: ms * 0.1,
        inference_ms: ms * 0.8,
        postprocess_ms: ms * 0.1,
    }
}

fn remote_result(server_ms: f64, x: f32) -> RemoteResult {
    RemoteResult {
        detections: vec![person(x)],
        bytes_down: 120,
        decode_ms: 2.0,
        queue_ms: 1.0,
        inference_ms: server_ms - 4.0,
        total_ms: server_ms,
        batch_size: 1,
    }
}

fn shown(actions: &[Action]) -> Vec<&Shown> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Show(s) => Some(&**s),
            _ => None,
        })
        .collect()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-6
}

#[test]
fn a_local_frame_is_analysed_shown_and_released_and_its_latency_adds_up() {
    let mut p = pipeline(Settings::default(), None, LOCAL);
    assert!(p.handle_frame(0.010, cam(0, 30.0)));
    assert_eq!(
        actions(&mut p),
        vec![Action::Analyse {
            frame: 0,
            config: LOCAL,
            detector: Some(BIG),
            keyframe: false
        }]
    );
    // Busy: the next camera frame is not taken.
    assert!(!p.handle_frame(0.034, cam(1, 30.0)));
    p.handle_local_result(0.110, 0, 2.0, local_result(90.0, 5.0));
    let a = actions(&mut p);
    let s = shown(&a);
    assert_eq!(s.len(), 1);
    let s = s[0];
    assert_eq!(s.origin, Origin::Local { detector: BIG });
    assert_eq!(s.placement(), Placement::Local);
    assert!(close(s.latency.total_ms, 110.0));
    assert!(close(s.latency.wait_ms, 10.0));
    assert!(close(s.latency.parts_ms(), s.latency.total_ms));
    assert!(close(s.latency.post_ms, 110.0 - 10.0 - 2.0 - 90.0));
    assert_eq!(a.last(), Some(&Action::Release { frame: 0 }));
    assert_eq!(
        p.policy().samples,
        vec![Sample::Shown {
            at_s: 0.110,
            latency_ms: 110.0
        }]
    );
    assert!(p.wants_frame(0.110));
}

#[test]
fn frames_are_taken_on_the_analysis_grid_and_a_busy_pipeline_takes_the_newest() {
    // 10 fps out of a 30 fps camera: instants 0, 0.1, 0.2, ...
    let mut p = pipeline(Settings::default(), Some(10.0), LOCAL);
    assert!(p.handle_frame(0.0, cam(0, 30.0)));
    p.handle_local_result(0.02, 0, 0.0, local_result(20.0, 1.0));
    assert!(!p.handle_frame(0.034, cam(1, 30.0)));
    assert!(!p.handle_frame(0.067, cam(2, 30.0)));
    assert!(p.handle_frame(0.1, cam(3, 30.0)));
    assert_eq!(p.missed(), 0);
    // Busy for 0.35 s: instants 0.2, 0.3 and 0.4 pass; the newest frame then is taken.
    p.handle_local_result(0.45, 3, 0.0, local_result(350.0, 1.0));
    assert!(p.handle_frame(0.45, cam(13, 30.0)));
    assert_eq!(
        p.missed(),
        2,
        "0.2 and 0.3 were missed; 13/30 s reaches 0.4"
    );
    // An older frame is never taken after a newer one.
    p.handle_local_result(0.47, 13, 0.0, local_result(20.0, 1.0));
    assert!(!p.handle_frame(0.47, cam(12, 30.0)));
}

#[test]
fn a_remote_result_in_time_is_shown_and_times_the_network() {
    let mut p = pipeline(Settings::default(), None, REMOTE);
    assert!(p.handle_frame(0.0, cam(0, 30.0)));
    assert_eq!(
        actions(&mut p),
        vec![Action::Analyse {
            frame: 0,
            config: REMOTE,
            detector: None,
            keyframe: true
        }],
        "a new session starts with a key frame"
    );
    p.handle_sent(
        0.010,
        0,
        5_000,
        DeviceTimes {
            resize_ms: 3.0,
            encode_ms: 7.0,
        },
    );
    p.handle_remote_result(0.130, 0, remote_result(40.0, 7.0));
    let a = actions(&mut p);
    let s = shown(&a)[0];
    assert_eq!(s.origin, Origin::Remote);
    assert_eq!(s.bytes_up, 5_000);
    assert_eq!(s.bytes_down, 120);
    assert!(close(s.latency.total_ms, 130.0));
    assert!(close(s.latency.network_ms, 120.0 - 40.0));
    assert!(close(s.latency.server_ms(), 40.0));
    assert!(close(s.latency.parts_ms(), s.latency.total_ms));
    let Sample::Frame {
        at_s,
        bytes: 5_000,
        network_ms,
        server_ms: Some(server_ms),
    } = p.policy().samples[0]
    else {
        panic!("a throughput sample first: {:?}", p.policy().samples);
    };
    assert!(close(at_s, 0.13) && close(network_ms, 80.0) && close(server_ms, 40.0));
    // The next frame is not a key frame.
    assert!(p.handle_frame(0.133, cam(4, 30.0)));
    assert!(matches!(
        actions(&mut p)[..],
        [Action::Analyse {
            keyframe: false,
            ..
        }]
    ));
}

#[test]
fn past_the_deadline_the_frame_is_cancelled_and_falls_back_to_the_quickest_detector() {
    let mut p = pipeline(Settings::default(), None, REMOTE);
    p.handle_frame(0.0, cam(0, 30.0));
    p.handle_sent(0.010, 0, 5_000, DeviceTimes::default());
    actions(&mut p);
    assert_eq!(p.poll_timeout(), Some(1.010));
    p.handle_timeout(1.010);
    assert_eq!(
        actions(&mut p),
        vec![
            Action::Cancel { frame: 0 },
            Action::RunLocal {
                frame: 0,
                detector: QUICK
            }
        ]
    );
    assert_eq!(
        p.policy().samples,
        vec![Sample::Frame {
            at_s: 1.010,
            bytes: 5_000,
            network_ms: 1000.0,
            server_ms: None
        }]
    );
    // The result, when it comes after all, changes nothing.
    p.handle_remote_result(1.050, 0, remote_result(40.0, 1.0));
    assert!(actions(&mut p).is_empty());
    p.handle_local_result(1.110, 0, 0.0, local_result(100.0, 2.0));
    let a = actions(&mut p);
    let s = shown(&a)[0];
    assert_eq!(s.origin, Origin::Local { detector: QUICK });
    assert_eq!(
        s.fallback.as_deref(),
        Some("no result within the 1s deadline")
    );
    assert!(close(s.latency.network_ms, 1000.0));
    assert!(close(s.latency.parts_ms(), s.latency.total_ms));
}

#[test]
fn a_hedged_frame_shows_the_stand_in_at_the_bound_and_its_late_result_still_measures() {
    let mut p = pipeline(hedged(), None, REMOTE);
    p.policy_mut().hedge = true;
    p.handle_frame(0.0, cam(0, 30.0));
    p.handle_sent(0.020, 0, 8_000, DeviceTimes::default());
    assert_eq!(
        actions(&mut p)[1..],
        [Action::RunStandIn {
            frame: 0,
            detector: QUICK
        }]
    );
    assert_eq!(p.poll_timeout(), Some(0.3), "capture + bound");
    p.handle_stand_in_result(0.120, 0, local_result(100.0, 3.0));
    assert!(
        actions(&mut p).is_empty(),
        "the remote result is still awaited"
    );
    p.handle_timeout(0.3);
    let a = actions(&mut p);
    let s = shown(&a)[0];
    assert_eq!(s.origin, Origin::Local { detector: QUICK });
    assert_eq!(s.stand_in_ms, Some(100.0));
    assert!(close(s.latency.total_ms, 300.0));
    // The stand-in ran beside the wait: none of it is on the critical path.
    assert!(close(s.latency.network_ms, 280.0));
    assert!(close(s.latency.local_inference_ms, 0.0));
    assert!(close(s.latency.parts_ms(), s.latency.total_ms));
    assert!(
        p.policy().samples.is_empty(),
        "a stand-in's latency says nothing of the remote path"
    );
    assert!(p.awaiting_late());
    p.handle_remote_result(0.500, 0, remote_result(40.0, 1.0));
    assert_eq!(
        p.policy().samples,
        vec![Sample::Late {
            at_s: 0.5,
            bytes: 8_000,
            network_ms: 480.0 - 40.0,
            latency_ms: 500.0
        }]
    );
}

#[test]
fn a_late_result_that_never_comes_is_a_lower_bound_at_the_deadline() {
    let mut p = pipeline(hedged(), None, REMOTE);
    p.policy_mut().hedge = true;
    p.handle_frame(0.0, cam(0, 30.0));
    p.handle_sent(0.020, 0, 8_000, DeviceTimes::default());
    p.handle_stand_in_result(0.120, 0, local_result(100.0, 3.0));
    p.handle_timeout(0.3);
    actions(&mut p);
    assert_eq!(p.poll_timeout(), Some(1.020));
    // The driver hands an unrelated event over late: the timer runs first, at its time.
    p.handle_pong(1.5, 0, 60.0);
    assert_eq!(
        p.policy().samples,
        vec![
            Sample::Late {
                at_s: 1.020,
                bytes: 8_000,
                network_ms: 1000.0,
                latency_ms: 1020.0
            },
            Sample::Rtt {
                at_s: 1.5,
                rtt_ms: 60.0
            }
        ]
    );
    assert_eq!(actions(&mut p), vec![Action::Cancel { frame: 0 }]);
}

#[test]
fn a_frame_sent_behind_a_late_one_gives_a_latency_sample_only() {
    let mut p = pipeline(hedged(), Some(10.0), REMOTE);
    p.policy_mut().hedge = true;
    p.handle_frame(0.0, cam(0, 30.0));
    p.handle_sent(0.020, 0, 8_000, DeviceTimes::default());
    p.handle_stand_in_result(0.120, 0, local_result(100.0, 3.0));
    p.handle_timeout(0.3);
    assert!(p.handle_frame(0.3, cam(9, 30.0)));
    p.handle_sent(0.320, 9, 8_000, DeviceTimes::default());
    p.handle_stand_in_result(0.420, 9, local_result(100.0, 3.0));
    p.handle_remote_result(0.700, 0, remote_result(40.0, 1.0));
    p.handle_timeout(0.6);
    p.handle_remote_result(0.900, 9, remote_result(40.0, 1.0));
    let late: Vec<u64> = p
        .policy()
        .samples
        .iter()
        .filter_map(|s| match s {
            Sample::Late { bytes, .. } => Some(*bytes),
            _ => None,
        })
        .collect();
    assert_eq!(late, vec![8_000, 0]);
}

#[test]
fn a_hedged_frame_in_time_is_shown_at_once_but_the_device_is_busy_until_the_stand_in_ends() {
    let mut p = pipeline(hedged(), None, REMOTE);
    p.policy_mut().hedge = true;
    p.handle_frame(0.0, cam(0, 30.0));
    p.handle_sent(0.020, 0, 8_000, DeviceTimes::default());
    p.handle_remote_result(0.090, 0, remote_result(20.0, 1.0));
    let a = actions(&mut p);
    assert_eq!(shown(&a)[0].origin, Origin::Remote);
    assert!(!a.contains(&Action::Release { frame: 0 }));
    assert!(!p.wants_frame(0.1), "the stand-in still runs");
    p.handle_stand_in_result(0.120, 0, local_result(100.0, 3.0));
    assert_eq!(actions(&mut p), vec![Action::Release { frame: 0 }]);
    assert!(p.wants_frame(0.120));
}

#[test]
fn the_policy_decides_on_hedging_and_unhedged_settings_never_hedge() {
    let mut p = pipeline(hedged(), None, REMOTE);
    p.policy_mut().hedge = false;
    p.handle_frame(0.0, cam(0, 30.0));
    p.handle_sent(0.020, 0, 8_000, DeviceTimes::default());
    assert_eq!(actions(&mut p).len(), 1, "no stand-in");
    assert_eq!(p.poll_timeout(), Some(1.020), "the deadline, not the bound");
    let mut p = pipeline(Settings::default(), None, REMOTE);
    p.policy_mut().hedge = true;
    p.handle_frame(0.0, cam(0, 30.0));
    p.handle_sent(0.020, 0, 8_000, DeviceTimes::default());
    assert_eq!(actions(&mut p).len(), 1, "the settings hedge nothing");
}

#[test]
fn without_a_session_a_remote_frame_runs_on_the_quickest_detector() {
    let mut p = Pipeline::new(
        Settings::default(),
        table(None),
        Probe {
            choice: REMOTE,
            ..Probe::default()
        },
    );
    p.handle_frame(0.0, cam(0, 30.0));
    assert_eq!(
        actions(&mut p),
        vec![Action::Analyse {
            frame: 0,
            config: REMOTE,
            detector: Some(QUICK),
            keyframe: false
        }]
    );
    p.handle_local_result(0.1, 0, 0.0, local_result(100.0, 1.0));
    let a = actions(&mut p);
    assert_eq!(
        shown(&a)[0].fallback.as_deref(),
        Some("no session with the edge server")
    );
}

#[test]
fn a_frame_whose_session_went_before_it_was_sent_falls_back_at_once() {
    // The policy chose remote while the session was up; the session went before the driver
    // could send the frame. (Ignoring the error here left the frame waiting for ever.)
    let mut p = pipeline(Settings::default(), None, REMOTE);
    p.handle_frame(0.0, cam(0, 30.0));
    assert!(matches!(
        actions(&mut p)[..],
        [Action::Analyse { detector: None, .. }]
    ));
    p.handle_session(0.001, None);
    p.handle_remote_error(0.002, 0, "no session with the edge server".into(), false);
    assert_eq!(
        actions(&mut p),
        vec![Action::RunLocal {
            frame: 0,
            detector: QUICK
        }]
    );
    assert_eq!(
        p.poll_timeout(),
        None,
        "nothing was sent: nothing to wait for"
    );
    p.handle_local_result(0.1, 0, 0.0, local_result(100.0, 1.0));
    let a = actions(&mut p);
    assert_eq!(
        shown(&a)[0].fallback.as_deref(),
        Some("no session with the edge server")
    );
    assert!(a.contains(&Action::Release { frame: 0 }));
    assert!(
        p.policy()
            .samples
            .iter()
            .all(|s| matches!(s, Sample::Shown { .. })),
        "a frame that never left measures nothing of the network: {:?}",
        p.policy().samples
    );
}

#[test]
fn a_refused_frame_falls_back_and_a_decode_failure_asks_for_a_key_frame() {
    let mut p = pipeline(Settings::default(), None, REMOTE);
    p.handle_frame(0.0, cam(0, 30.0));
    p.handle_sent(0.010, 0, 5_000, DeviceTimes::default());
    actions(&mut p);
    p.handle_remote_error(0.05, 0, "server: cannot decode".into(), true);
    assert_eq!(
        actions(&mut p),
        vec![Action::RunLocal {
            frame: 0,
            detector: QUICK
        }]
    );
    p.handle_local_result(0.15, 0, 0.0, local_result(100.0, 1.0));
    actions(&mut p);
    p.handle_frame(0.15, cam(5, 30.0));
    assert!(matches!(
        actions(&mut p)[..],
        [Action::Analyse { keyframe: true, .. }]
    ));
    // A new connection starts with a key frame too.
    p.handle_sent(0.16, 5, 5_000, DeviceTimes::default());
    p.handle_remote_result(0.2, 5, remote_result(10.0, 1.0));
    p.handle_session(
        0.2,
        Some(SessionInfo {
            generation: 2,
            model: "yolov4-tiny".into(),
            input_size: 608,
        }),
    );
    actions(&mut p);
    p.handle_frame(0.2, cam(6, 30.0));
    assert!(matches!(
        actions(&mut p)[..],
        [Action::Analyse { keyframe: true, .. }]
    ));
}

#[test]
fn a_skipped_frame_repeats_the_latest_remote_result() {
    let mut p = pipeline(Settings::default(), None, REMOTE);
    p.handle_frame(0.0, cam(0, 30.0));
    p.handle_sent(0.01, 0, 5_000, DeviceTimes::default());
    p.handle_remote_result(0.1, 0, remote_result(10.0, 42.0));
    p.handle_frame(0.1, cam(3, 30.0));
    actions(&mut p);
    p.handle_skipped(0.105, 3, DeviceTimes::default());
    let a = actions(&mut p);
    let s = shown(&a)[0];
    assert_eq!(s.origin, Origin::Repeated);
    assert_eq!(s.detections, vec![person(42.0)]);
    assert_eq!(s.bytes_up, 0);
}

#[test]
fn pipelined_frames_stay_within_the_limit_and_are_shown_in_order() {
    let settings = Settings {
        mode: Mode::Pipelined { inflight: 3 },
        ..Settings::default()
    };
    let mut p = pipeline(settings, None, REMOTE);
    for i in 0..5 {
        let taken = p.handle_frame(i as f64 * 0.01, cam(i, 100.0));
        assert_eq!(taken, i < 3, "frame {i}");
        if taken {
            p.handle_sent(i as f64 * 0.01, i, 1_000, DeviceTimes::default());
        }
    }
    actions(&mut p);
    // The second result first: nothing is shown before the first.
    p.handle_remote_result(0.1, 1, remote_result(10.0, 1.0));
    assert!(shown(&actions(&mut p)).is_empty());
    assert!(!p.wants_frame(0.1));
    p.handle_remote_result(0.11, 0, remote_result(10.0, 0.0));
    let a = actions(&mut p);
    let order: Vec<FrameId> = shown(&a).iter().map(|s| s.frame).collect();
    assert_eq!(order, vec![0, 1]);
    assert_eq!(p.in_flight(), 1);
    assert!(p.wants_frame(0.11));
}

#[test]
fn pings_go_when_due_with_a_probe_behind_and_their_answers_are_samples() {
    let settings = Settings {
        ping_every_s: 1.0,
        ..Settings::default()
    };
    let mut p = pipeline(settings, None, LOCAL);
    p.policy_mut().pings = true;
    p.policy_mut().probe_bytes = 20_000;
    p.handle_frame(0.0, cam(0, 30.0));
    assert_eq!(
        actions(&mut p)[..2],
        [
            Action::Ping { padding: 0 },
            Action::Ping { padding: 20_000 }
        ]
    );
    p.handle_local_result(0.1, 0, 0.0, local_result(100.0, 1.0));
    assert!(!actions(&mut p)
        .iter()
        .any(|a| matches!(a, Action::Ping { .. })));
    p.handle_pong(0.15, 0, 50.0);
    p.handle_pong(0.25, 20_000, 150.0);
    assert_eq!(
        p.policy().samples[1..],
        [
            Sample::Rtt {
                at_s: 0.15,
                rtt_ms: 50.0
            },
            Sample::Probe {
                at_s: 0.25,
                bytes: 20_000,
                rtt_ms: 150.0
            }
        ]
    );
    p.handle_frame(1.0, cam(30, 30.0));
    p.handle_local_result(1.1, 30, 0.0, local_result(100.0, 1.0));
    let pings = actions(&mut p)
        .iter()
        .filter(|a| matches!(a, Action::Ping { .. }))
        .count();
    assert_eq!(pings, 2, "due again after a second");
}

#[test]
fn the_configuration_is_chosen_when_the_pipeline_becomes_free() {
    let mut p = pipeline(Settings::default(), None, LOCAL);
    p.handle_frame(0.0, cam(0, 30.0));
    p.handle_local_result(0.4, 0, 0.0, local_result(400.0, 1.0));
    assert!(p.wants_frame(0.4));
    assert!(p.wants_frame(0.5), "chosen once, until a frame is taken");
    assert_eq!(p.policy().chosen_at, vec![0.0, 0.4]);
}

#[test]
fn a_pipeline_free_after_the_instant_takes_the_newest_frame_even_from_just_before_it() {
    // 6.3 fps: instants at 0, 0.1587, 0.3175, … fall between the camera's frames.
    let mut p = pipeline(Settings::default(), Some(6.3), LOCAL);
    assert!(p.handle_frame(0.0, cam(0, 30.0)));
    p.handle_local_result(0.05, 0, 0.0, local_result(50.0, 1.0));
    // Free before the instant: the newest frame (4/30 s) is too early, the next one (5/30 s,
    // the first at or after 0.1587) is taken when it comes.
    assert!(!p.handle_frame(0.15, cam(4, 30.0)));
    assert!(p.handle_frame(5.0 / 30.0, cam(5, 30.0)));
    // Busy past the next instant (0.3175): at 0.32 the newest frame is 9/30 = 0.3 s old news
    // from before the instant, and it is taken — the instant has come.
    p.handle_local_result(0.32, 5, 0.0, local_result(150.0, 1.0));
    assert!(p.handle_frame(0.32, cam(9, 30.0)));
    assert_eq!(p.missed(), 0);
    // Offline, a frame is taken the moment it is handed over: its timestamp alone counts.
    let mut p = pipeline(Settings::default(), Some(10.0), LOCAL);
    let offline = |index: u64| Captured {
        index,
        pts_s: index as f64 / 30.0,
        captured_s: 7.0,
    };
    assert!(p.handle_frame(7.0, offline(0)));
    p.handle_local_result(7.0, 0, 0.0, local_result(1.0, 1.0));
    assert!(!p.handle_frame(7.0, offline(1)));
    assert!(!p.handle_frame(7.0, offline(2)));
    assert!(p.handle_frame(7.0, offline(3)));
}
