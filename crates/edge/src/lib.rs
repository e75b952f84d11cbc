//! The edge server: admits clients over TCP and QUIC, decodes their H.264 frames, batches
//! decoded frames of all sessions through one detector, answers each frame with detections and
//! server-side durations, and reports metrics. It never goes down because of one client: a
//! protocol error ends that session only, and every queue is bounded.

mod metrics;
mod queue;
mod session;

pub use metrics::Metrics;
pub use queue::{InferenceQueue, Job, Outcome};

use deepoffload_core::RgbImageRef;
use deepoffload_detect::Detector;
use deepoffload_net::proto::{error::Code, Hello, Welcome};
use deepoffload_net::server::{Admission, Listener};
use deepoffload_net::tls::Identity;
use deepoffload_net::wire::{MAX_FRAME_BYTES, PROTOCOL_VERSION};
use deepoffload_net::NetError;
use deepoffload_proto::handshake;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio::task::JoinSet;

/// How a server runs.
#[derive(Debug)]
pub struct ServerOptions {
    pub listen_tcp: Option<SocketAddr>,
    pub listen_quic: Option<SocketAddr>,
    /// `/metrics` and `/healthz`.
    pub http: Option<SocketAddr>,
    /// Shared secret clients must present; `None` admits everyone (logged as a warning).
    pub token: Option<String>,
    /// QUIC certificate; `None` generates a self-signed one.
    pub identity: Option<Identity>,
    /// Most frames per detector call, across sessions.
    pub max_batch: usize,
    /// How long the first frame of a batch waits for company.
    pub max_wait: Duration,
    /// Decoded frames that may wait for the detector; beyond it the stalest are dropped.
    pub queue_capacity: usize,
    pub max_sessions: usize,
    pub server_name: String,
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            listen_tcp: Some(([0, 0, 0, 0], 7700).into()),
            listen_quic: None,
            http: None,
            token: None,
            identity: None,
            max_batch: 4,
            max_wait: Duration::from_millis(2),
            queue_capacity: 32,
            max_sessions: 64,
            server_name: "deepoffload-edge".into(),
        }
    }
}

/// State every session shares.
pub(crate) struct Shared {
    queue: InferenceQueue,
    metrics: Metrics,
    welcome: Welcome,
    token: Option<String>,
    max_sessions: usize,
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum EdgeError {
    #[error(transparent)]
    Net(#[from] NetError),
    #[error("{0}")]
    Setup(String),
}

/// A started server. Dropping it does not stop it; call [`RunningServer::shutdown`].
pub struct RunningServer {
    pub tcp_addr: Option<SocketAddr>,
    pub quic_addr: Option<SocketAddr>,
    pub http_addr: Option<SocketAddr>,
    /// PEM of the self-signed QUIC certificate, for clients that want to pin it.
    pub quic_cert_pem: Option<String>,
    shared: Arc<Shared>,
    shutdown: watch::Sender<bool>,
    listeners: Vec<Arc<Listener>>,
    accept_tasks: Vec<tokio::task::JoinHandle<()>>,
    sessions: Arc<tokio::sync::Mutex<JoinSet<()>>>,
    worker: Option<std::thread::JoinHandle<()>>,
    http_task: Option<tokio::task::JoinHandle<()>>,
}

impl RunningServer {
    pub fn metrics(&self) -> &Metrics {
        &self.shared.metrics
    }

    /// Stops at once, as a crashed process would: sockets close without goodbyes and frames in
    /// flight are lost. For failure experiments and tests.
    pub async fn kill(mut self) {
        for listener in &self.listeners {
            listener.close();
        }
        for task in &self.accept_tasks {
            task.abort();
        }
        self.sessions.lock().await.abort_all();
        self.shared.queue.close();
        if let Some(http) = self.http_task.take() {
            http.abort();
        }
        if let Some(worker) = self.worker.take() {
            let _ = tokio::task::spawn_blocking(move || worker.join()).await;
        }
        // Let the runtime drop the aborted tasks (and with them the sockets).
        tokio::task::yield_now().await;
    }

    /// Graceful stop: no new clients, sessions are told goodbye after their frames in flight
    /// are answered (up to 5 s), then the detector finishes and the metrics endpoint closes.
    pub async fn shutdown(mut self) {
        for listener in &self.listeners {
            listener.close();
        }
        for task in &self.accept_tasks {
            task.abort();
        }
        let _ = self.shutdown.send(true);
        let sessions = self.sessions.clone();
        let _ = tokio::time::timeout(Duration::from_secs(10), async move {
            let mut set = sessions.lock().await;
            while set.join_next().await.is_some() {}
        })
        .await;
        self.shared.queue.close();
        if let Some(worker) = self.worker.take() {
            let _ = tokio::task::spawn_blocking(move || worker.join()).await;
        }
        if let Some(http) = self.http_task.take() {
            http.abort();
        }
        tracing::info!("server stopped");
    }
}

impl Shared {
    /// The protocol's rules (version, token), then this server's own: its session limit.
    fn admit(&self, hello: &Hello) -> Admission {
        handshake::admission(hello, self.token.as_deref())?;
        if self.metrics.sessions.get() as usize >= self.max_sessions {
            return Err(handshake::refusal(
                Code::Dropped,
                format!(
                    "the server is full ({} sessions); try later",
                    self.max_sessions
                ),
            ));
        }
        Ok(self.welcome.clone())
    }
}

/// Starts a server around a detector (which moves to the inference thread).
pub async fn start(
    options: ServerOptions,
    detector: Box<dyn Detector>,
) -> Result<RunningServer, EdgeError> {
    if options.listen_tcp.is_none() && options.listen_quic.is_none() {
        return Err(EdgeError::Setup(
            "nothing to listen on: give a TCP or QUIC address".into(),
        ));
    }
    if options.token.is_none() {
        tracing::warn!("no --token: any client is admitted");
    }
    let info = detector.info().clone();
    let shared = Arc::new(Shared {
        queue: InferenceQueue::new(options.queue_capacity),
        metrics: Metrics::new(options.max_batch),
        welcome: Welcome {
            protocol_version: PROTOCOL_VERSION,
            server_name: options.server_name.clone(),
            session_id: 0,
            model: info.model.clone(),
            input_size: info.input_width as u32,
            max_frame_bytes: MAX_FRAME_BYTES as u32,
            class_names: info.class_names.clone(),
        },
        token: options.token.clone(),
        max_sessions: options.max_sessions,
    });
    let worker = spawn_worker(
        detector,
        shared.clone(),
        options.max_batch.max(1),
        options.max_wait,
    );
    let mut listeners = Vec::new();
    let (mut tcp_addr, mut quic_addr, mut quic_cert_pem) = (None, None, None);
    if let Some(addr) = options.listen_tcp {
        let l = Listener::bind_tcp(addr).await?;
        tcp_addr = Some(l.local_addr()?);
        listeners.push(Arc::new(l));
    }
    if let Some(addr) = options.listen_quic {
        let identity = match options.identity {
            Some(i) => i,
            None => Identity::self_signed(&[])?,
        };
        quic_cert_pem = identity.generated_pem.clone();
        let l = Listener::bind_quic(addr, identity)?;
        quic_addr = Some(l.local_addr()?);
        listeners.push(Arc::new(l));
    }
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let sessions = Arc::new(tokio::sync::Mutex::new(JoinSet::new()));
    let next_id = Arc::new(AtomicU64::new(1));
    let accept_tasks = listeners
        .iter()
        .map(|listener| {
            let (listener, shared, sessions, next_id, shutdown) = (listener.clone(), shared.clone(), sessions.clone(), next_id.clone(), shutdown_rx.clone());
            tokio::spawn(async move {
                loop {
                    let incoming = match listener.accept().await {
                        Ok(i) => i,
                        Err(NetError::Closed) => break,
                        Err(e) => {
                            tracing::warn!("accept failed: {e}");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    };
                    let (shared, shutdown, next_id) = (shared.clone(), shutdown.clone(), next_id.clone());
                    sessions.lock().await.spawn(async move {
                        let peer = incoming.peer;
                        let id = next_id.fetch_add(1, Ordering::Relaxed);
                        let admitted = incoming
                            .handshake(|hello| {
                                shared.admit(hello).map(|mut w| {
                                    w.session_id = id;
                                    w
                                })
                            })
                            .await;
                        match admitted {
                            Ok(session) => {
                                shared.metrics.sessions.inc();
                                shared.metrics.sessions_total.inc();
                                tracing::info!(session = id, %peer, client = %session.hello.client_name, device = %session.hello.device_class, "session started");
                                session::run(session, id, shared, shutdown).await;
                            }
                            Err(e) => tracing::info!(%peer, "client not admitted: {e}"),
                        }
                    });
                    // Reap finished sessions.
                    let mut set = sessions.lock().await;
                    while set.try_join_next().is_some() {}
                }
            })
        })
        .collect();
    let (http_addr, http_task) = match options.http {
        Some(addr) => {
            let (a, t) = serve_http(addr, shared.clone()).await?;
            (Some(a), Some(t))
        }
        None => (None, None),
    };
    tracing::info!(model = %info.model, input = info.input_width, ?tcp_addr, ?quic_addr, ?http_addr, "edge server listening");
    Ok(RunningServer {
        tcp_addr,
        quic_addr,
        http_addr,
        quic_cert_pem,
        shared,
        shutdown: shutdown_tx,
        listeners,
        accept_tasks,
        sessions,
        worker: Some(worker),
        http_task,
    })
}

/// The inference thread: batches from the shared queue through the detector.
fn spawn_worker(
    mut detector: Box<dyn Detector>,
    shared: Arc<Shared>,
    max_batch: usize,
    max_wait: Duration,
) -> std::thread::JoinHandle<()> {
    std::thread::Builder::new()
        .name("inference".into())
        .spawn(move || loop {
            let batch = shared.queue.pop_batch(max_batch, max_wait);
            if batch.is_empty() {
                break;
            }
            shared.metrics.queue_depth.set(shared.queue.len() as i64);
            let start = Instant::now();
            let views: Vec<RgbImageRef<'_>> = batch.iter().map(|j| j.image.view()).collect();
            let result = detector.detect_batch(&views);
            let inference = start.elapsed();
            shared
                .metrics
                .inference_seconds
                .observe(inference.as_secs_f64());
            shared.metrics.batch_size.observe(batch.len() as f64);
            let n = batch.len();
            match result {
                Ok(outputs) => {
                    for (job, output) in batch.into_iter().zip(outputs) {
                        let queue = start.saturating_duration_since(job.enqueued);
                        let _ = job.reply.send(Outcome::Done {
                            detections: output.detections,
                            queue,
                            inference,
                            batch: n,
                        });
                    }
                }
                Err(e) => {
                    tracing::error!("detector failed on a batch of {n}: {e}");
                    for job in batch {
                        let _ = job
                            .reply
                            .send(Outcome::Failed(format!("detector failed: {e}")));
                    }
                }
            }
        })
        .expect("spawn the inference thread")
}

async fn serve_http(
    addr: SocketAddr,
    shared: Arc<Shared>,
) -> Result<(SocketAddr, tokio::task::JoinHandle<()>), EdgeError> {
    use axum::routing::get;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| NetError::Connect {
            addr: addr.to_string(),
            source,
        })?;
    let local = listener.local_addr().map_err(NetError::Io)?;
    let (m, h) = (shared.clone(), shared);
    let app = axum::Router::new()
        .route(
            "/metrics",
            get(move || {
                let m = m.clone();
                async move {
                    (
                        [(
                            axum::http::header::CONTENT_TYPE,
                            "text/plain; version=0.0.4",
                        )],
                        m.metrics.render(),
                    )
                }
            }),
        )
        .route(
            "/healthz",
            get(move || {
                let h = h.clone();
                async move {
                    let body = serde_json::json!({
                        "status": "ok",
                        "model": h.welcome.model,
                        "input_size": h.welcome.input_size,
                        "sessions": h.metrics.sessions.get(),
                        "queue_depth": h.queue.len(),
                    });
                    (
                        [(axum::http::header::CONTENT_TYPE, "application/json")],
                        body.to_string(),
                    )
                }
            }),
        );
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!("metrics endpoint stopped: {e}");
        }
    });
    Ok((local, task))
}
