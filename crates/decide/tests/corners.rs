//! The decision engine at its corners, on a small hand-made candidate set shaped like the
//! study's phone: the small model locally is slow (600 ms at full size), the big model on the
//! server is accurate, and bit rate buys accuracy.

use deepoffload_core::Placement;
use deepoffload_decide::{
    Candidate, CandidateKey, Candidates, Controller, ControllerSettings, Mode, NetState, Optimiser,
    Requirements, ViolationKind,
};

fn candidate(
    placement: Placement,
    model: &str,
    scale: f64,
    fps: f64,
    bitrate_bps: u64,
    f1: f64,
) -> Candidate {
    let remote = placement == Placement::Remote;
    Candidate {
        key: CandidateKey {
            placement,
            model: model.into(),
            input_size: if model == "yolov4-tiny" { 608 } else { 416 },
            scale,
            fps,
            bitrate_bps: if remote { bitrate_bps } else { 0 },
        },
        // F1 decays by half over 2 s of staleness.
        accuracy_at: (0..=100)
            .map(|i| f1 * (1.0 - 0.5 * i as f64 / 100.0))
            .collect(),
        f1,
        mean_iou: 0.8,
        max_fps: fps,
        bytes_per_frame: if remote {
            bitrate_bps as f64 / 8.0 / fps
        } else {
            0.0
        },
        device_ms: if remote {
            30.0 * scale * scale
        } else if model == "yolov4-tiny" {
            1500.0 * scale * scale
        } else {
            600.0 * scale * scale
        },
        server_ms: if remote { 40.0 } else { 0.0 },
    }
}

fn optimiser() -> Optimiser {
    let mut list = Vec::new();
    for fps in [10.0, 5.0, 2.0] {
        for scale in [1.0, 0.5, 0.25] {
            for (model, f1) in [("yolov3-tiny", 0.45), ("yolov4-tiny", 0.7)] {
                list.push(candidate(
                    Placement::Local,
                    model,
                    scale,
                    fps,
                    0,
                    f1 * (0.6 + 0.4 * scale),
                ));
                for bitrate in [250_000, 500_000, 1_000_000, 2_000_000] {
                    let quality = 0.8 + 0.2 * (bitrate as f64 / 2e6);
                    let f1 = if model == "yolov4-tiny" { 0.95 } else { 0.6 }
                        * quality
                        * (0.6 + 0.4 * scale);
                    list.push(candidate(Placement::Remote, model, scale, fps, bitrate, f1));
                }
            }
        }
    }
    Optimiser::new(
        Candidates {
            list,
            device: "test-phone".into(),
            active_w: 3.5,
            idle_w: 1.0,
            radio: [
                ("lte".to_string(), [438.39, 51.97, 1288.04]),
                ("wifi".to_string(), [283.17, 137.01, 132.86]),
            ]
            .into_iter()
            .collect(),
            tracking: deepoffload_core::Tracking::Off,
            tracker_ms: 0.0,
        },
        Mode::StopAndWait,
    )
}

/// A frame of the configuration in force, when remote, over a 20 Mbit/s link with a 40-ms
/// round trip; whether it was remote.
fn frame_over_fast_link(c: &mut Controller, t: f64) -> bool {
    let k = c.current_candidate().unwrap().clone();
    let remote = k.key.placement == Placement::Remote;
    if remote {
        let bytes = k.bytes_per_frame as u64 + 60;
        c.on_frame(t, bytes, 40.0 + bytes as f64 * 8e3 / 20e6);
    }
    remote
}

fn relaxed() -> Requirements {
    Requirements {
        max_latency_ms: 2000.0,
        min_accuracy: 0.0,
        ..Requirements::default()
    }
}

#[test]
fn no_network_runs_locally() {
    let o = optimiser();
    let net = NetState {
        uplink_bps: 0.0,
        rtt_ms: 50.0,
    };
    let d = o.decide(&net, &relaxed(), |_| true).unwrap();
    assert_eq!(o.list()[d.chosen].key.placement, Placement::Local);
    assert!(d.feasible);
    // And with the default requirements (200 ms), local cannot meet them but is still chosen,
    // flagged, over a remote configuration that cannot run at all.
    let d = o.decide(&net, &Requirements::default(), |_| true).unwrap();
    assert_eq!(o.list()[d.chosen].key.placement, Placement::Local);
    assert!(!d.feasible);
}

#[test]
fn fast_network_offloads_to_the_big_model() {
    let o = optimiser();
    let net = NetState {
        uplink_bps: 50e6,
        rtt_ms: 10.0,
    };
    let d = o.decide(&net, &Requirements::default(), |_| true).unwrap();
    let k = &o.list()[d.chosen].key;
    assert_eq!(k.placement, Placement::Remote, "{k}");
    assert_eq!(k.model, "yolov4-tiny", "{k}");
    assert!(d.feasible);
    assert!(d.prediction.latency_ms <= 200.0);
    // The runner-up is reported for the log.
    assert!(d.runner_up.is_some());
}

#[test]
fn tight_energy_budget_picks_the_lowest_power_feasible_configuration() {
    let o = optimiser();
    let net = NetState {
        uplink_bps: 20e6,
        rtt_ms: 30.0,
    };
    let mut req = relaxed();
    let all: Vec<_> = o
        .list()
        .iter()
        .map(|c| (c, o.predict(c, &net, &req)))
        .collect();
    let min_power = all
        .iter()
        .map(|(_, p)| p.power_w)
        .fold(f64::INFINITY, f64::min);
    // A budget only slightly above the minimum: few configurations fit.
    req.max_power_w = min_power * 1.02;
    let d = o.decide(&net, &req, |_| true).unwrap();
    assert!(d.feasible, "{:?}", d.violations);
    assert!(d.prediction.power_w <= req.max_power_w);
    // Among everything within the budget, the utility is the highest.
    let best_within = all
        .iter()
        .filter(|(_, p)| p.power_w <= req.max_power_w)
        .map(|(_, p)| p.utility)
        .fold(f64::NEG_INFINITY, f64::max);
    assert_eq!(d.prediction.utility, best_within);
    // Unconstrained, the choice would draw more power.
    let free = o.decide(&net, &relaxed(), |_| true).unwrap();
    assert!(free.prediction.power_w > req.max_power_w);
}

#[test]
fn infeasible_requirements_give_the_least_violating_configuration_flagged() {
    let o = optimiser();
    let net = NetState {
        uplink_bps: 300e3,
        rtt_ms: 150.0,
    };
    let req = Requirements {
        max_latency_ms: 50.0,
        min_accuracy: 0.99,
        ..Requirements::default()
    };
    let d = o.decide(&net, &req, |_| true).unwrap();
    assert!(!d.feasible);
    assert!(!d.violations.is_empty());
    assert!(d
        .violations
        .iter()
        .any(|v| v.kind == ViolationKind::Accuracy));
    // No other candidate violates less in total.
    let total = |c: &Candidate, p: &deepoffload_decide::Prediction| {
        o.violations(c, p, &net, &req)
            .iter()
            .map(|v| v.relative_excess)
            .sum::<f64>()
    };
    let chosen = total(&o.list()[d.chosen], &d.prediction);
    for c in o.list() {
        let p = o.predict(c, &net, &req);
        assert!(total(c, &p) >= chosen - 1e-12, "{} violates less", c.key);
    }
}

#[test]
fn allowed_filter_restricts_the_choice() {
    let o = optimiser();
    let net = NetState {
        uplink_bps: 50e6,
        rtt_ms: 10.0,
    };
    let d = o
        .decide(&net, &Requirements::default(), |c| {
            c.key.model == "yolov3-tiny"
        })
        .unwrap();
    assert_eq!(o.list()[d.chosen].key.model, "yolov3-tiny");
}

#[test]
fn controller_follows_a_drop_and_recovers_by_probing() {
    let mut c = Controller::new(optimiser(), relaxed(), ControllerSettings::default());
    let mut t = 0.0;
    c.on_rtt(t, 40.0);
    let start = c.poll(t, |_| true).unwrap();
    assert_eq!(start.reason, "start");
    // A fast uplink: 20 Mbit/s.
    let feed = |c: &mut Controller, t: &mut f64, bps: f64, seconds: f64| {
        let end = *t + seconds;
        while *t < end {
            *t += 0.1;
            let bytes = c.current_candidate().map_or(0.0, |k| k.bytes_per_frame) as u64 + 60;
            if c.current_candidate().unwrap().key.placement == Placement::Remote {
                c.on_frame(*t, bytes, 40.0 + bytes as f64 * 8e3 / bps);
            } else {
                c.on_rtt(*t, 40.0);
            }
            c.poll(*t, |_| true);
        }
    };
    feed(&mut c, &mut t, 20e6, 5.0);
    let high = c.current_candidate().unwrap().key.clone();
    assert_eq!(high.placement, Placement::Remote);
    // The uplink falls to 300 kbit/s: within a couple of windows the bit rate follows.
    feed(&mut c, &mut t, 300e3, 2.0);
    let low = c.current_candidate().unwrap().key.clone();
    assert!(
        low.placement == Placement::Local || low.bitrate_bps <= 250_000,
        "still at {low} after the drop"
    );
    // It comes back: probing finds the capacity again.
    feed(&mut c, &mut t, 20e6, 20.0);
    let back = c.current_candidate().unwrap().key.clone();
    assert_eq!(back.placement, Placement::Remote);
    assert!(back.bitrate_bps >= 1_000_000, "stuck at {back}");
}

#[test]
fn when_recent_errors_make_everything_late_the_least_late_is_chosen() {
    let o = optimiser();
    let net = NetState {
        uplink_bps: 10e6,
        rtt_ms: 100.0,
    };
    let req = Requirements::default();
    // Recent frames came back 150 ms later than predicted: nothing is on time.
    let margin = 150.0;
    let bound = req.max_latency_ms;
    let on_time = |l: f64| if l + margin <= bound { 1.0 } else { 0.0 };
    let d = o
        .decide_with(&net, &req, |_| true, margin, on_time)
        .unwrap();
    assert!(!d.feasible);
    // Not a tie among the late broken by utility: the later a candidate would be, the worse.
    for c in o.list() {
        let p = o.predict(c, &net, &req);
        assert!(
            d.prediction.latency_ms <= p.latency_ms + 1e-9,
            "{} would be less late ({:.0} ms against {:.0} ms)",
            c.key,
            p.latency_ms,
            d.prediction.latency_ms
        );
    }
    // With no margin the same network has on-time choices.
    let d = o
        .decide_with(&net, &req, |_| true, 0.0, |l: f64| f64::from(l <= bound))
        .unwrap();
    assert!(d.feasible);
}

#[test]
fn a_server_slower_than_profiled_moves_the_choice() {
    let req = Requirements {
        min_accuracy: 0.0,
        ..Requirements::default()
    };
    let mut c = Controller::new(optimiser(), req, ControllerSettings::default());
    let mut t = 0.0;
    c.on_rtt(t, 40.0);
    c.poll(t, |_| true).unwrap();
    // A fast uplink and a server as fast as profiled (40 ms): remote.
    let run = |c: &mut Controller, t: &mut f64, server_ms: f64, seconds: f64| {
        let end = *t + seconds;
        while *t < end {
            *t += 0.1;
            if frame_over_fast_link(c, *t) {
                c.on_server_time(server_ms);
            } else {
                c.on_rtt(*t, 40.0);
            }
            c.poll(*t, |_| true);
        }
    };
    run(&mut c, &mut t, 40.0, 5.0);
    assert_eq!(
        c.current_candidate().unwrap().key.placement,
        Placement::Remote
    );
    assert!((c.optimiser().server_scale - 1.0).abs() < 0.05);
    // The server now takes 10× its profiled time (shared, loaded): remote results would miss
    // the 200 ms bound, and the controller moves to what is on time.
    run(&mut c, &mut t, 400.0, 3.0);
    let log = c.poll(t + 1.0, |_| true).unwrap();
    assert!(log.server_scale > 2.0, "scale {}", log.server_scale);
    assert_eq!(log.chosen.placement, Placement::Local, "{}", log.chosen);
    assert!(log.predicted.latency_ms <= 200.0);
}

#[test]
fn probe_pings_lift_a_stale_low_estimate_while_local() {
    // Locally at ¼ size the phone is on time (~95 ms), less accurate than the server.
    // DeepDecision's trade-off (fps rewarded too) keeps the optimistic decision every 5 s local
    // here, so only probe pings can show the recovery. (Under the default objective that
    // decision alone tries the server again: remote at ½ size is worth 0.58 to local's 0.47.)
    let o = optimiser();
    let run = |settings: ControllerSettings| {
        let mut c = Controller::new(o.clone(), Requirements::deepdecision(), settings);
        let mut t = 0.0;
        c.on_rtt(t, 40.0);
        c.poll(t, |_| true).unwrap();
        // A client's life: one frame at a time while remote, a ping (and a probe when asked)
        // each second.
        let live = |c: &mut Controller, t: &mut f64, bps: f64, seconds: f64| {
            let end = *t + seconds;
            let (mut next_ping, mut next_frame) = (*t, *t);
            while *t < end {
                *t += 0.01;
                let k = c.current_candidate().unwrap().clone();
                if k.key.placement == Placement::Remote && *t >= next_frame {
                    let bytes = k.bytes_per_frame as u64 + 60;
                    let network_ms = 40.0 + bytes as f64 * 8e3 / bps;
                    next_frame = *t + (network_ms + k.server_ms) / 1e3;
                    c.on_frame(next_frame, bytes, network_ms);
                }
                if *t >= next_ping {
                    next_ping = *t + 1.0;
                    c.on_rtt(*t, 40.0);
                    let padding = c.probe_bytes(*t);
                    if padding > 0 {
                        c.on_probe(*t, padding, 40.0 + padding as f64 * 8e3 / bps);
                    }
                }
                c.poll(*t, |_| true);
            }
        };
        live(&mut c, &mut t, 20e6, 5.0);
        assert_eq!(
            c.current_candidate().unwrap().key.placement,
            Placement::Remote
        );
        // The uplink collapses to 60 kbit/s for a while: nothing remote is on time, local at ¼
        // size is.
        live(&mut c, &mut t, 60e3, 20.0);
        assert_eq!(
            c.current_candidate().unwrap().key.placement,
            Placement::Local
        );
        // It recovers; frames no longer measure it while the client runs locally.
        live(&mut c, &mut t, 20e6, 15.0);
        c.current_candidate().unwrap().key.placement
    };
    assert_eq!(run(ControllerSettings::default()), Placement::Remote);
    // Without probe pings the estimate stays where the collapse left it.
    let silent = ControllerSettings {
        probe_bytes: 0,
        ..ControllerSettings::default()
    };
    assert_eq!(run(silent), Placement::Local);
}

/// Hedged (the device runs its quickest detector beside every remote frame), a remote result
/// that would come after the bound is replaced by the stand-in's: such a candidate no longer
/// breaks the latency bound, it is worth the stand-in's result when late, and the stand-in's
/// device time is in its power.
#[test]
fn hedged_lateness_costs_the_stand_in_not_the_whole_result() {
    let plain = optimiser();
    let hedged = optimiser().hedged();
    let stand_in = hedged.stand_in().expect("a local candidate").key.clone();
    assert_eq!(stand_in.placement, Placement::Local);
    assert_eq!(
        (stand_in.model.as_str(), stand_in.scale),
        ("yolov3-tiny", 0.25)
    );
    let req = Requirements {
        min_accuracy: 0.0,
        ..Requirements::default()
    };
    // A long round trip: the big model on the server predicts ~290 ms, over the 200-ms bound.
    let net = NetState {
        uplink_bps: 3e6,
        rtt_ms: 150.0,
    };
    let c = plain
        .list()
        .iter()
        .find(|c| {
            c.key.placement == Placement::Remote
                && c.key.model == "yolov4-tiny"
                && c.key.scale == 1.0
                && c.key.fps == 10.0
                && c.key.bitrate_bps == 2_000_000
        })
        .unwrap()
        .clone();
    let step = |latency: f64| if latency <= 200.0 { 1.0 } else { 0.0 };
    let (p, violation, expected) = plain.judge(&c, &net, &req, 0.0, step);
    assert!(p.latency_ms > 250.0, "{:.0} ms", p.latency_ms);
    assert!(violation > 0.0 && expected == 0.0);

    let (hp, h_violation, late) = hedged.judge(&c, &net, &req, 0.0, step);
    assert_eq!(h_violation, 0.0, "capped at the bound by the stand-in");
    assert!(
        late > 0.0 && late < p.utility,
        "{late:.3} vs {:.3}",
        p.utility
    );
    // Half the windows on time: half the remote result, half the stand-in's.
    let (_, _, half) = hedged.judge(&c, &net, &req, 0.0, |_| 0.5);
    assert!((half - (0.5 * hp.utility + 0.5 * late)).abs() < 1e-9);
    assert!(
        hp.power_w > p.power_w,
        "the stand-in runs on every remote frame"
    );
    // Local candidates are judged as before.
    let local = plain
        .list()
        .iter()
        .find(|c| c.key.placement == Placement::Local)
        .unwrap();
    assert_eq!(
        plain.judge(local, &net, &req, 0.0, step),
        hedged.judge(local, &net, &req, 0.0, step)
    );
}

/// Under `Hedge::WhenUncertain` the stand-in runs only while recent windows were not all on
/// time: before there is evidence, not on a steady link, again after a late window.
#[test]
fn hedges_only_while_the_link_is_uncertain() {
    use deepoffload_decide::Hedge;
    let req = Requirements {
        min_accuracy: 0.0,
        ..Requirements::default()
    };
    let settings = ControllerSettings {
        hedge: Hedge::WhenUncertain,
        ..ControllerSettings::default()
    };
    let mut c = Controller::new(optimiser().hedged(), req, settings);
    let mut t = 0.0;
    c.on_rtt(t, 40.0);
    let mut predicted = c.poll(t, |_| true).unwrap().predicted.latency_ms;
    assert!(c.hedge_now(), "no evidence yet");
    // Frames on a steady 20 Mbit/s link, each as late as predicted plus `extra` ms.
    let mut run = |c: &mut Controller, t: &mut f64, seconds: f64, extra: f64| {
        let end = *t + seconds;
        while *t < end {
            *t += 0.1;
            frame_over_fast_link(c, *t);
            c.on_latency(*t, predicted + extra);
            if let Some(log) = c.poll(*t, |_| true) {
                predicted = log.predicted.latency_ms;
            }
        }
    };
    run(&mut c, &mut t, 8.0, 0.0);
    assert_eq!(
        c.current_candidate().unwrap().key.placement,
        Placement::Remote
    );
    assert!(!c.hedge_now(), "every window on time: no stand-in");
    // One second whose frames came 300 ms late: the next decision hedges again.
    run(&mut c, &mut t, 1.0, 300.0);
    run(&mut c, &mut t, 1.1, 0.0);
    assert!(c.hedge_now(), "a late window in the last 10 s");

    for (mode, expected) in [(Hedge::Always, true), (Hedge::Off, false)] {
        let settings = ControllerSettings {
            hedge: mode,
            ..ControllerSettings::default()
        };
        let mut c = Controller::new(optimiser().hedged(), Requirements::default(), settings);
        c.poll(0.0, |_| true).unwrap();
        assert_eq!(c.hedge_now(), expected, "{mode:?}");
    }
}
