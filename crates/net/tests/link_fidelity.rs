//! The emulated link does what it says: goodput at a set rate, added delay, and Mahimahi trace
//! capacity — through the real relay with real sockets, and over 60 s of trace in the model.

use deepoffload_net::link::{
    Direction, DirectionSpec, LinkSpec, LossMode, Relay, Shaper, Trace, MTU,
};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

fn trace_path(name: &str) -> PathBuf {
    let shared = deepoffload_assets::StoreConfig::from_env()
        .shared
        .expect("../shared (or DEEPOFFLOAD_SHARED) holds the traces");
    shared.join("traces/mahimahi").join(name)
}

/// A sink server: counts bytes received until the sender closes; returns (bytes, first, last).
async fn sink() -> (
    std::net::SocketAddr,
    tokio::task::JoinHandle<(u64, Instant, Instant)>,
) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut buf = vec![0u8; 65536];
        let (mut total, mut first, mut last) = (0u64, None, Instant::now());
        loop {
            let n = s.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            first.get_or_insert_with(Instant::now);
            last = Instant::now();
            total += n as u64;
        }
        (total, first.unwrap_or(last), last)
    });
    (addr, task)
}

async fn blast(addr: std::net::SocketAddr, seconds: f64) -> u64 {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let chunk = vec![7u8; 16 * 1024];
    let start = Instant::now();
    let mut sent = 0;
    while start.elapsed().as_secs_f64() < seconds {
        s.write_all(&chunk).await.unwrap();
        sent += chunk.len() as u64;
    }
    s.shutdown().await.unwrap();
    sent
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_mbit_link_gives_five_mbit_goodput() {
    let (target, counter) = sink().await;
    let relay = Relay::start(
        "127.0.0.1:0".parse().unwrap(),
        target,
        LinkSpec::parse("rate=5mbit,queue=64k").unwrap(),
        false,
    )
    .await
    .unwrap();
    blast(relay.local_addr(), 4.0).await;
    let (bytes, first, last) = counter.await.unwrap();
    let mbps = bytes as f64 * 8.0 / (last - first).as_secs_f64() / 1e6;
    eprintln!(
        "goodput {mbps:.3} Mbit/s over {:.2} s",
        (last - first).as_secs_f64()
    );
    assert!((4.5..=5.1).contains(&mbps), "goodput {mbps:.3} Mbit/s");
}

/// Round trip of a 16-byte message through an echo server, `n` times.
async fn echo_rtts(addr: std::net::SocketAddr, n: usize) -> Vec<f64> {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.set_nodelay(true).unwrap();
    let mut rtts = Vec::new();
    let mut buf = [0u8; 16];
    for _ in 0..n {
        let start = Instant::now();
        s.write_all(&[1u8; 16]).await.unwrap();
        s.read_exact(&mut buf).await.unwrap();
        rtts.push(start.elapsed().as_secs_f64() * 1e3);
    }
    rtts
}

async fn echo_server() -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let _ = s.set_nodelay(true);
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                while let Ok(n) = s.read(&mut buf).await {
                    if n == 0 || s.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn added_delay_is_within_two_ms_of_the_setting() {
    let echo = echo_server().await;
    let direct = Relay::start(
        "127.0.0.1:0".parse().unwrap(),
        echo,
        LinkSpec::parse("delay=0ms").unwrap(),
        false,
    )
    .await
    .unwrap();
    let delayed = Relay::start(
        "127.0.0.1:0".parse().unwrap(),
        echo,
        LinkSpec::parse("delay=20ms").unwrap(),
        false,
    )
    .await
    .unwrap();
    let mean = |v: Vec<f64>| v.iter().sum::<f64>() / v.len() as f64;
    let base = mean(echo_rtts(direct.local_addr(), 50).await);
    let with = mean(echo_rtts(delayed.local_addr(), 50).await);
    let added_one_way = (with - base) / 2.0;
    eprintln!("round trip {base:.2} ms without, {with:.2} ms with 20 ms each way: +{added_one_way:.2} ms one way");
    assert!(
        (added_one_way - 20.0).abs() <= 2.0,
        "added {added_one_way:.2} ms one way, set 20 ms"
    );
}

#[test]
fn trace_model_delivers_the_trace_capacity_over_60_s() {
    for name in [
        "TMobile-LTE-short.up",
        "TMobile-UMTS-driving.up",
        "Verizon-EVDO-driving.up",
    ] {
        let text = std::fs::read_to_string(trace_path(name)).unwrap();
        let trace = Arc::new(Trace::parse(&text, name).unwrap());
        let mut dir = Direction::new(
            DirectionSpec {
                shaper: Shaper::trace(trace.clone()),
                ..Default::default()
            },
            1,
        );
        // A saturating sender: a packet is always waiting.
        let end = Duration::from_secs(60);
        let (mut now, mut bytes) = (Duration::ZERO, 0u64);
        loop {
            let at = dir.send(now, MTU, LossMode::Drop).unwrap();
            if at >= end {
                break;
            }
            bytes += MTU as u64;
            now = at;
        }
        let capacity = trace.capacity_bytes(end);
        let ratio = bytes as f64 / capacity as f64;
        eprintln!(
            "{name}: delivered {bytes} of {capacity} bytes in 60 s ({:.1}%)",
            ratio * 100.0
        );
        assert!((ratio - 1.0).abs() <= 0.05, "{name}: {ratio}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trace_relay_delivers_the_trace_capacity_in_real_time() {
    let path = trace_path("TMobile-LTE-short.up");
    let trace = Trace::parse(&std::fs::read_to_string(&path).unwrap(), "up").unwrap();
    let (target, counter) = sink().await;
    let spec = LinkSpec::parse(&format!("up={},queue=256k", path.display())).unwrap();
    let relay = Relay::start("127.0.0.1:0".parse().unwrap(), target, spec, false)
        .await
        .unwrap();
    let start = Instant::now();
    let seconds = 5.0;
    blast(relay.local_addr(), seconds).await;
    let (bytes, _, last) = counter.await.unwrap();
    // Compare with what the trace offers from the relay's start to the last byte.
    let capacity = trace.capacity_bytes(last - start);
    let ratio = bytes as f64 / capacity as f64;
    eprintln!(
        "delivered {bytes} of {capacity} bytes ({:.1}%) in {:.1} s",
        ratio * 100.0,
        (last - start).as_secs_f64()
    );
    assert!((ratio - 1.0).abs() <= 0.05, "ratio {ratio}");
}
