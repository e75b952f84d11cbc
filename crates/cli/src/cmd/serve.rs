//! `deepoffload serve`: the edge server until Ctrl-C / SIGTERM, then a graceful stop.

use crate::args::ServeArgs;
use anyhow::{bail, Context, Result};
use deepoffload_assets::Store;
use deepoffload_edge::ServerOptions;
use deepoffload_net::tls::Identity;
use std::net::SocketAddr;
use std::process::ExitCode;

/// `HOST:PORT`, `tcp://HOST:PORT` or `quic://HOST:PORT`.
fn parse_listen(text: &str) -> Result<(bool, SocketAddr)> {
    let (quic, rest) = match text.split_once("://") {
        Some(("tcp", rest)) => (false, rest),
        Some(("quic", rest)) => (true, rest),
        Some((scheme, _)) => {
            bail!("--listen {text}: unknown scheme `{scheme}` (use tcp:// or quic://)")
        }
        None => (false, text),
    };
    let addr = rest
        .parse()
        .with_context(|| format!("--listen {text}: not HOST:PORT (e.g. 0.0.0.0:7700)"))?;
    Ok((quic, addr))
}

pub async fn run(mut args: ServeArgs) -> Result<ExitCode> {
    args.model.default_model = "yolov4-tiny";
    let (mut tcp, mut quic) = (None, None);
    for l in &args.listen {
        match parse_listen(l)? {
            (false, addr) if tcp.is_none() => tcp = Some(addr),
            (true, addr) if quic.is_none() => quic = Some(addr),
            _ => bail!("--listen {l}: one TCP and one QUIC address at most"),
        }
    }
    let store = Store::from_env();
    let (model, detector) = super::prepare_detector(&store, &args.model, &args.runtime)?;
    let identity = match (&args.cert, &args.key) {
        (Some(cert), Some(key)) => Some(Identity::from_pem(cert, key)?),
        _ => None,
    };
    let server = deepoffload_edge::start(
        ServerOptions {
            listen_tcp: tcp,
            listen_quic: quic,
            http: args.http,
            token: args.token.clone(),
            identity,
            max_batch: args.max_batch,
            max_wait: args.max_wait,
            queue_capacity: args.queue,
            max_sessions: args.max_sessions,
            server_name: format!("deepoffload-edge {}", env!("CARGO_PKG_VERSION")),
        },
        Box::new(detector),
    )
    .await?;
    if let (Some(path), Some(pem)) = (&args.cert_out, &server.quic_cert_pem) {
        std::fs::write(path, pem).with_context(|| format!("writing {}", path.display()))?;
        tracing::info!(
            "QUIC certificate written to {} (clients: --ca {})",
            path.display(),
            path.display()
        );
    }
    eprintln!(
        "serving {} at {} on{}{}{} — Ctrl-C to stop",
        model.name,
        model.input_size().0,
        server
            .tcp_addr
            .map(|a| format!(" tcp://{a}"))
            .unwrap_or_default(),
        server
            .quic_addr
            .map(|a| format!(" quic://{a}"))
            .unwrap_or_default(),
        server
            .http_addr
            .map(|a| format!(", metrics http://{a}/metrics"))
            .unwrap_or_default(),
    );
    wait_for_signal().await;
    tracing::info!("stopping: answering frames in flight, then closing sessions");
    server.shutdown().await;
    Ok(ExitCode::SUCCESS)
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn wait_for_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending::<()>().await } } => {}
    }
}
