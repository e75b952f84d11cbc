//! `deepoffload link`: a standalone emulated-link relay.

use crate::args::LinkArgs;
use anyhow::{Context, Result};
use deepoffload_net::link::{LinkSpec, Relay};
use std::net::ToSocketAddrs;
use std::process::ExitCode;
use std::sync::atomic::Ordering;

pub async fn run(args: LinkArgs) -> Result<ExitCode> {
    let target = args
        .to
        .to_socket_addrs()
        .with_context(|| format!("--to {}: not HOST:PORT", args.to))?
        .next()
        .with_context(|| format!("--to {}: resolves to no address", args.to))?;
    let mut parts = vec![
        format!("delay={}", args.delay),
        format!("jitter={}", args.jitter),
        format!("loss={}", args.loss),
    ];
    if let Some(up) = &args.up {
        parts.push(format!("up={up}"));
    }
    if let Some(down) = &args.down {
        parts.push(format!("down={down}"));
    }
    if let Some(q) = &args.queue {
        parts.push(format!("queue={q}"));
    }
    let spec = LinkSpec::parse(&parts.join(",")).map_err(anyhow::Error::msg)?;
    let description = spec.describe();
    let relay = Relay::start(args.listen, target, spec, true).await?;
    eprintln!(
        "relaying {} → {target}: {description} — Ctrl-C to stop",
        relay.local_addr()
    );
    let mut tick = tokio::time::interval(args.report_every);
    tick.tick().await;
    let (mut last_up, mut last_down) = (0u64, 0u64);
    loop {
        tokio::select! {
            _ = super::serve::wait_for_signal() => break,
            _ = tick.tick() => {
                let s = relay.stats();
                let (up, down) = (s.up_bytes.load(Ordering::Relaxed), s.down_bytes.load(Ordering::Relaxed));
                let secs = args.report_every.as_secs_f64();
                eprintln!(
                    "up {} ({} dropped), down {} ({} dropped), {} connections",
                    deepoffload_core::format_bitrate((up - last_up) as f64 * 8.0 / secs),
                    s.up_dropped.load(Ordering::Relaxed),
                    deepoffload_core::format_bitrate((down - last_down) as f64 * 8.0 / secs),
                    s.down_dropped.load(Ordering::Relaxed),
                    s.connections.load(Ordering::Relaxed)
                );
                (last_up, last_down) = (up, down);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
