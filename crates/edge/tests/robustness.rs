//! One server, many clients, some of them broken: the good ones are all served, the server stays
//! up and its memory bounded.

use deepoffload_assets::{Store, StoreConfig};
use deepoffload_detect::{
    init_runtime, DetectorOptions, ImportedModel, ModelOverrides, YoloDetector,
};
use deepoffload_edge::{RunningServer, ServerOptions};
use deepoffload_net::proto::{envelope::Body, Frame, Hello};
use deepoffload_net::wire::envelope;
use deepoffload_net::{ConnectOptions, Connection, Transport};
use deepoffload_video::{EncoderSettings, FrameKind, H264Encoder, OpenOptions, Resizer};
use prost::Message;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::AsyncWriteExt;

const TOKEN: &str = "robust";

async fn server() -> RunningServer {
    let store = Store::from_env();
    init_runtime(&store, None).unwrap();
    let model =
        ImportedModel::load(&store, "yolov3-tiny", Some(320), &ModelOverrides::default()).unwrap();
    let detector = YoloDetector::new(
        &model,
        DetectorOptions {
            threads: 2,
            ..Default::default()
        },
    )
    .unwrap();
    let options = ServerOptions {
        listen_tcp: Some("127.0.0.1:0".parse().unwrap()),
        listen_quic: Some("127.0.0.1:0".parse().unwrap()),
        http: Some("127.0.0.1:0".parse().unwrap()),
        token: Some(TOKEN.into()),
        ..ServerOptions::default()
    };
    deepoffload_edge::start(options, Box::new(detector))
        .await
        .unwrap()
}

/// Ten H.264 access units of vtest at 320x240 (a key frame first).
fn stream() -> Vec<Vec<u8>> {
    let shared = StoreConfig::from_env().shared.expect("../shared");
    let mut source = deepoffload_video::open(
        &shared.join("videos/vtest.mp4"),
        &Store::from_env(),
        &OpenOptions::default(),
    )
    .unwrap();
    let mut encoder = H264Encoder::new(EncoderSettings {
        bitrate_bps: 500_000,
        allow_skip: false,
        ..Default::default()
    })
    .unwrap();
    let mut resizer = Resizer::new();
    let mut out = Vec::new();
    while out.len() < 10 {
        let f = source.next_frame().unwrap().unwrap();
        let small = resizer.resize(f.image.view(), 320, 240).unwrap();
        let e = encoder.encode(small.view(), f.pts).unwrap();
        assert_ne!(e.kind, FrameKind::Skipped);
        out.push(e.data);
    }
    out
}

fn options(addr: SocketAddr, transport: Transport) -> ConnectOptions {
    ConnectOptions {
        addr,
        transport,
        token: TOKEN.into(),
        client_name: "robustness".into(),
        device_class: "test".into(),
        ca: None,
        timeout: Duration::from_secs(5),
    }
}

async fn good_client(
    addr: SocketAddr,
    transport: Transport,
    frames: Vec<Vec<u8>>,
) -> Result<usize, String> {
    let c = Connection::connect(&options(addr, transport))
        .await
        .map_err(|e| e.to_string())?;
    let mut detections = 0;
    for (i, h264) in frames.into_iter().enumerate() {
        let r = c
            .request(Frame {
                seq: i as u64 + 1,
                frame_index: i as u64,
                capture_time_us: 0,
                config: None,
                h264,
                keyframe: i == 0,
            })
            .await
            .map_err(|e| format!("frame {i}: {e}"))?;
        detections += r.detections.len();
    }
    c.close("done").await;
    Ok(detections)
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| {
            l.strip_prefix("VmRSS:")
                .map(|v| v.trim().trim_end_matches(" kB").trim().parse().unwrap())
        })
        .unwrap()
}

fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut s = seed.wrapping_mul(0x9e3779b97f4a7c15) | 1;
    (0..len)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s as u8
        })
        .collect()
}

/// Misbehaving peers: raw garbage, a hello then garbage, a frame cut off mid-way, corrupt
/// H.264, wrong token, and randomly mutated valid messages.
async fn misbehave(addr: SocketAddr, frames: &[Vec<u8>]) {
    // 1. Garbage instead of a hello.
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let _ = s.write_all(&random_bytes(5000, 1)).await;
    drop(s);
    // 2. A huge length prefix.
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let _ = s.write_all(&u32::MAX.to_be_bytes()).await;
    drop(s);
    // 3. A valid hello, then a frame cut off in the middle, then gone.
    let hello = envelope(Body::Hello(Hello {
        protocol_version: 1,
        token: TOKEN.into(),
        ..Default::default()
    }))
    .encode_to_vec();
    let frame = envelope(Body::Frame(Frame {
        seq: 1,
        h264: frames[0].clone(),
        ..Default::default()
    }))
    .encode_to_vec();
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let _ = s.write_all(&(hello.len() as u32).to_be_bytes()).await;
    let _ = s.write_all(&hello).await;
    let _ = s.write_all(&(frame.len() as u32).to_be_bytes()).await;
    let _ = s.write_all(&frame[..frame.len() / 2]).await;
    drop(s);
    // 4. Corrupt H.264 in a well-formed frame: an error for that frame, the session lives on.
    let c = Connection::connect(&options(addr, Transport::Tcp))
        .await
        .unwrap();
    let mut junk = frames[0].clone();
    for b in junk.iter_mut().skip(40).step_by(7) {
        *b ^= 0x5a;
    }
    let err = c
        .request(Frame {
            seq: 1,
            h264: junk,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("key frame") || err.to_string().contains("decode"),
        "{err}"
    );
    assert!(
        c.request(Frame {
            seq: 2,
            h264: frames[0].clone(),
            ..Default::default()
        })
        .await
        .is_ok(),
        "session survives a bad frame"
    );
    // 5. Wrong token.
    let mut wrong = options(addr, Transport::Tcp);
    wrong.token = "nope".into();
    assert!(Connection::connect(&wrong)
        .await
        .unwrap_err()
        .to_string()
        .contains("wrong token"));
    // 6. Fuzzed messages after a valid hello: mutated envelopes of every kind.
    for seed in 0..60u64 {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        let _ = s.write_all(&(hello.len() as u32).to_be_bytes()).await;
        let _ = s.write_all(&hello).await;
        let mut msg = frame.clone();
        let flips = random_bytes(6, seed);
        for (k, f) in flips.iter().enumerate() {
            let at = (seed as usize * 131 + k * 997) % msg.len().min(200);
            msg[at] ^= f | 1;
        }
        if seed % 3 == 0 {
            msg = random_bytes(64 + seed as usize, seed);
        }
        let _ = s.write_all(&(msg.len() as u32).to_be_bytes()).await;
        let _ = s.write_all(&msg).await;
        let _ = s.flush().await;
        drop(s);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixteen_clients_with_misbehaving_peers_among_them() {
    let server = server().await;
    let (tcp, quic) = (server.tcp_addr.unwrap(), server.quic_addr.unwrap());
    let frames = stream();
    // Warm up (allocations of the detector and decoders), then measure memory.
    good_client(tcp, Transport::Tcp, frames.clone())
        .await
        .unwrap();
    let baseline = rss_kib();
    let mut after_round = Vec::new();
    for round in 0..5 {
        let mut clients = tokio::task::JoinSet::new();
        for i in 0..16 {
            let transport = if i % 4 == 0 {
                Transport::Quic
            } else {
                Transport::Tcp
            };
            let addr = if transport == Transport::Quic {
                quic
            } else {
                tcp
            };
            clients.spawn(good_client(addr, transport, frames.clone()));
        }
        misbehave(tcp, &frames).await;
        let mut served = 0;
        while let Some(result) = clients.join_next().await {
            let detections = result
                .unwrap()
                .unwrap_or_else(|e| panic!("round {round}: a good client failed: {e}"));
            assert!(detections > 0);
            served += 1;
        }
        assert_eq!(served, 16);
        after_round.push(rss_kib());
        // Sessions of clients that went away (dropped connections included) are closed.
        let open = open_sessions(server.http_addr.unwrap()).await;
        eprintln!(
            "round {round}: resident {} MiB, {open} sessions open",
            after_round[round] / 1024
        );
        assert_eq!(
            open, 0,
            "round {round}: sessions of departed clients still open"
        );
    }
    // Still serving after all that.
    good_client(tcp, Transport::Tcp, frames.clone())
        .await
        .unwrap();
    // The first round allocates what 16 concurrent sessions need (decoders, detector batches);
    // after that memory must level off rather than grow with every round.
    let later = after_round[4].saturating_sub(after_round[1]);
    eprintln!(
        "resident memory: {} MiB before, {} MiB after round 1, {} MiB after round 5 (+{} MiB over rounds 2-5)",
        baseline / 1024,
        after_round[1] / 1024,
        after_round[4] / 1024,
        later / 1024
    );
    assert!(
        later < 64 * 1024,
        "memory keeps growing: +{} MiB over rounds 2-5",
        later / 1024
    );
    let metrics = reqwest_metrics(server.http_addr.unwrap()).await;
    assert!(
        metrics.contains("deepoffload_frames_total{outcome=\"ok\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("deepoffload_frames_total{outcome=\"decode_failed\"}"),
        "{metrics}"
    );
    server.shutdown().await;
}

/// GET /metrics over a plain TCP socket (HTTP/1.0 keeps it simple).
/// The `sessions` gauge, waited on for up to 2 s to reach 0 (the server notices a closed
/// socket asynchronously).
async fn open_sessions(addr: SocketAddr) -> i64 {
    let read = || async {
        reqwest_metrics(addr)
            .await
            .lines()
            .find_map(|l| l.strip_prefix("deepoffload_sessions "))
            .and_then(|v| v.trim().parse::<i64>().ok())
            .expect("sessions gauge")
    };
    for _ in 0..20 {
        if read().await == 0 {
            return 0;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    read().await
}

async fn reqwest_metrics(addr: SocketAddr) -> String {
    use tokio::io::AsyncReadExt;
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut body = String::new();
    s.read_to_string(&mut body).await.unwrap();
    assert!(
        body.starts_with("HTTP/1.0 200") || body.starts_with("HTTP/1.1 200"),
        "{body}"
    );
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_answers_frames_in_flight_then_says_goodbye() {
    let server = server().await;
    let frames = stream();
    let c = std::sync::Arc::new(
        Connection::connect(&options(server.tcp_addr.unwrap(), Transport::Tcp))
            .await
            .unwrap(),
    );
    // Four frames in flight, then the server is asked to stop.
    let mut pending = tokio::task::JoinSet::new();
    for (i, h264) in frames.into_iter().take(4).enumerate() {
        let c = c.clone();
        pending.spawn(async move {
            c.request(Frame {
                seq: i as u64 + 1,
                h264,
                ..Default::default()
            })
            .await
        });
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    tokio::time::sleep(Duration::from_millis(20)).await;
    server.shutdown().await;
    let mut answered = 0;
    while let Some(r) = pending.join_next().await {
        r.unwrap()
            .expect("accepted frames are answered before the goodbye");
        answered += 1;
    }
    assert_eq!(answered, 4);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(c.is_closed(), "the session ends with the server");
}
