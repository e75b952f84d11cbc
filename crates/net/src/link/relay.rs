//! The link emulator's shell: a TCP and UDP relay that forwards traffic between a listening
//! address and a target through the timing model, so any client and server — in this process or
//! in others — talk through the same emulated link.
//!
//! All connections share one [`Direction`] per way, as flows share a real bottleneck. Each
//! connection gets a delivery task per way that sleeps until each packet's arrival time and
//! writes it; a byte stream whose packets are queued beyond the bottleneck buffer stops being
//! read (TCP back-pressure), a datagram arriving at a full buffer is dropped.

use super::model::{Direction, LossMode, MTU};
use super::spec::LinkSpec;
use crate::NetError;
use bytes::Bytes;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{mpsc, Notify};
use tokio::task::JoinHandle;

/// Traffic counters of a relay.
#[derive(Debug, Default)]
pub struct RelayStats {
    pub up_bytes: AtomicU64,
    pub down_bytes: AtomicU64,
    pub up_dropped: AtomicU64,
    pub down_dropped: AtomicU64,
    pub connections: AtomicU64,
}

struct Link {
    start: Instant,
    up: Mutex<Direction>,
    down: Mutex<Direction>,
    stats: RelayStats,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Way {
    Up,
    Down,
}

impl Link {
    fn direction(&self, way: Way) -> &Mutex<Direction> {
        match way {
            Way::Up => &self.up,
            Way::Down => &self.down,
        }
    }

    fn counters(&self, way: Way) -> (&AtomicU64, &AtomicU64) {
        match way {
            Way::Up => (&self.stats.up_bytes, &self.stats.up_dropped),
            Way::Down => (&self.stats.down_bytes, &self.stats.down_dropped),
        }
    }

    /// Arrival instant of a packet entering now, or `None` if the link loses it.
    fn schedule(&self, way: Way, len: usize, mode: LossMode) -> Option<Instant> {
        let now = self.start.elapsed();
        let at = self
            .direction(way)
            .lock()
            .expect("link direction")
            .send(now, len, mode)?;
        Some(self.start + at)
    }

    fn queue_limit(&self, way: Way) -> usize {
        self.direction(way)
            .lock()
            .expect("link direction")
            .spec()
            .queue_bytes
    }
}

/// A running relay; dropping it stops it.
pub struct Relay {
    addr: SocketAddr,
    link: Arc<Link>,
    tasks: Vec<JoinHandle<()>>,
}

impl Relay {
    /// Listens on `listen` (TCP, and UDP on the same port when `udp`), forwarding to `target`
    /// through the emulated link.
    pub async fn start(
        listen: SocketAddr,
        target: SocketAddr,
        spec: LinkSpec,
        udp: bool,
    ) -> Result<Self, NetError> {
        let tcp = TcpListener::bind(listen)
            .await
            .map_err(|source| NetError::Connect {
                addr: listen.to_string(),
                source,
            })?;
        let addr = tcp.local_addr().map_err(NetError::Io)?;
        let link = Arc::new(Link {
            start: Instant::now(),
            up: Mutex::new(Direction::new(spec.up, 0x5eed_0001)),
            down: Mutex::new(Direction::new(spec.down, 0x5eed_0002)),
            stats: RelayStats::default(),
        });
        let mut tasks = vec![tokio::spawn(accept_tcp(tcp, target, link.clone()))];
        if udp {
            let socket = UdpSocket::bind(addr)
                .await
                .map_err(|source| NetError::Connect {
                    addr: addr.to_string(),
                    source,
                })?;
            tasks.push(tokio::spawn(relay_udp(
                Arc::new(socket),
                target,
                link.clone(),
            )));
        }
        tracing::info!("link relay {addr} → {target}: {}", spec.text);
        Ok(Self { addr, link, tasks })
    }

    /// Where clients connect.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn stats(&self) -> &RelayStats {
        &self.link.stats
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

async fn accept_tcp(listener: TcpListener, target: SocketAddr, link: Arc<Link>) {
    loop {
        let Ok((client, peer)) = listener.accept().await else {
            continue;
        };
        let link = link.clone();
        tokio::spawn(async move {
            let server = match TcpStream::connect(target).await {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!("link relay: cannot reach {target} for {peer}: {e}");
                    return;
                }
            };
            let _ = (client.set_nodelay(true), server.set_nodelay(true));
            link.stats.connections.fetch_add(1, Ordering::Relaxed);
            let (cr, cw) = client.into_split();
            let (sr, sw) = server.into_split();
            let up = tokio::spawn(pump(cr, sw, link.clone(), Way::Up));
            let down = tokio::spawn(pump(sr, cw, link, Way::Down));
            let _ = tokio::join!(up, down);
        });
    }
}

/// Forwards one way of one TCP connection through the link.
async fn pump(
    mut src: tokio::net::tcp::OwnedReadHalf,
    mut dst: tokio::net::tcp::OwnedWriteHalf,
    link: Arc<Link>,
    way: Way,
) {
    let (tx, mut rx) = mpsc::unbounded_channel::<(Instant, Bytes)>();
    let queued = Arc::new(AtomicUsize::new(0));
    let drained = Arc::new(Notify::new());
    let (q, d, l) = (queued.clone(), drained.clone(), link.clone());
    let writer = tokio::spawn(async move {
        while let Some((at, bytes)) = rx.recv().await {
            tokio::time::sleep_until(at.into()).await;
            if dst.write_all(&bytes).await.is_err() {
                break;
            }
            l.counters(way)
                .0
                .fetch_add(bytes.len() as u64, Ordering::Relaxed);
            q.fetch_sub(bytes.len(), Ordering::Relaxed);
            d.notify_one();
        }
        let _ = dst.shutdown().await;
    });
    let limit = link.queue_limit(way);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        // Back-pressure: a full bottleneck buffer stops us reading, as it would stall TCP.
        while queued.load(Ordering::Relaxed) >= limit {
            let notified = drained.notified();
            if queued.load(Ordering::Relaxed) < limit {
                break;
            }
            notified.await;
        }
        let n = match src.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        for chunk in buf[..n].chunks(MTU) {
            let at = link
                .schedule(way, chunk.len(), LossMode::Retransmit)
                .expect("streams are never dropped");
            queued.fetch_add(chunk.len(), Ordering::Relaxed);
            if tx.send((at, Bytes::copy_from_slice(chunk))).is_err() {
                return;
            }
        }
    }
    drop(tx);
    let _ = writer.await;
}

/// Per-client UDP state: the socket towards the target and the up-way delivery queue.
struct UdpPeer {
    upstream_tx: mpsc::UnboundedSender<(Instant, Bytes)>,
    queued: Arc<AtomicUsize>,
}

async fn relay_udp(socket: Arc<UdpSocket>, target: SocketAddr, link: Arc<Link>) {
    let mut peers: HashMap<SocketAddr, UdpPeer> = HashMap::new();
    let mut buf = vec![0u8; 65536];
    loop {
        let Ok((n, client)) = socket.recv_from(&mut buf).await else {
            continue;
        };
        let peer = match peers.entry(client) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => {
                match udp_peer(socket.clone(), client, target, link.clone()).await {
                    Ok(peer) => e.insert(peer),
                    Err(err) => {
                        tracing::warn!("link relay: UDP towards {target} for {client}: {err}");
                        continue;
                    }
                }
            }
        };
        let limit = link.queue_limit(Way::Up);
        if peer.queued.load(Ordering::Relaxed) + n > limit {
            link.stats.up_dropped.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        let Some(at) = link.schedule(Way::Up, n, LossMode::Drop) else {
            link.stats.up_dropped.fetch_add(1, Ordering::Relaxed);
            continue;
        };
        peer.queued.fetch_add(n, Ordering::Relaxed);
        let _ = peer
            .upstream_tx
            .send((at, Bytes::copy_from_slice(&buf[..n])));
    }
}

async fn udp_peer(
    listen: Arc<UdpSocket>,
    client: SocketAddr,
    target: SocketAddr,
    link: Arc<Link>,
) -> std::io::Result<UdpPeer> {
    let bind: SocketAddr = if target.is_ipv6() {
        "[::]:0"
    } else {
        "0.0.0.0:0"
    }
    .parse()
    .expect("valid");
    let upstream = Arc::new(UdpSocket::bind(bind).await?);
    upstream.connect(target).await?;
    // Up: deliver scheduled datagrams to the target.
    let (up_tx, mut up_rx) = mpsc::unbounded_channel::<(Instant, Bytes)>();
    let queued = Arc::new(AtomicUsize::new(0));
    let (u, q, l) = (upstream.clone(), queued.clone(), link.clone());
    tokio::spawn(async move {
        while let Some((at, bytes)) = up_rx.recv().await {
            tokio::time::sleep_until(at.into()).await;
            let _ = u.send(&bytes).await;
            l.stats
                .up_bytes
                .fetch_add(bytes.len() as u64, Ordering::Relaxed);
            q.fetch_sub(bytes.len(), Ordering::Relaxed);
        }
    });
    // Down: datagrams from the target, through the link, back to the client.
    let (down_tx, mut down_rx) = mpsc::unbounded_channel::<(Instant, Bytes)>();
    let down_queued = Arc::new(AtomicUsize::new(0));
    let (dq, l2) = (down_queued.clone(), link.clone());
    tokio::spawn(async move {
        while let Some((at, bytes)) = down_rx.recv().await {
            tokio::time::sleep_until(at.into()).await;
            let _ = listen.send_to(&bytes, client).await;
            l2.stats
                .down_bytes
                .fetch_add(bytes.len() as u64, Ordering::Relaxed);
            dq.fetch_sub(bytes.len(), Ordering::Relaxed);
        }
    });
    tokio::spawn(async move {
        let mut buf = vec![0u8; 65536];
        let limit = link.queue_limit(Way::Down);
        while let Ok(n) = upstream.recv(&mut buf).await {
            if down_queued.load(Ordering::Relaxed) + n > limit {
                link.stats.down_dropped.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            let Some(at) = link.schedule(Way::Down, n, LossMode::Drop) else {
                link.stats.down_dropped.fetch_add(1, Ordering::Relaxed);
                continue;
            };
            down_queued.fetch_add(n, Ordering::Relaxed);
            if down_tx
                .send((at, Bytes::copy_from_slice(&buf[..n])))
                .is_err()
            {
                break;
            }
        }
    });
    Ok(UdpPeer {
        upstream_tx: up_tx,
        queued,
    })
}
