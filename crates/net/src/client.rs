//! The device side of a session over TCP (one length-delimited stream) or QUIC (a stream per
//! frame, pings on the control stream). The session's rules — sequence numbers, matching
//! answers, cancellation, pings, its end — are `deepoffload_proto::ClientSession`; this module
//! moves its envelopes and wakes the futures waiting for them.

use crate::proto::{Envelope, Frame, Result as FrameResult, Welcome};
use crate::wire::EnvelopeCodec;
use crate::NetError;
use deepoffload_proto::{ClientEvent, ClientSession, ProtoError};
use futures::{SinkExt, StreamExt};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio_util::codec::Framed;

/// Which transport carries a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    #[default]
    Tcp,
    Quic,
}

impl std::str::FromStr for Transport {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "tcp" => Ok(Self::Tcp),
            "quic" => Ok(Self::Quic),
            _ => Err(format!("transport `{s}` must be tcp or quic")),
        }
    }
}

impl std::fmt::Display for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Transport::Tcp => "tcp",
            Transport::Quic => "quic",
        })
    }
}

/// How to reach and authenticate to a server.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    pub addr: SocketAddr,
    pub transport: Transport,
    pub token: String,
    pub client_name: String,
    pub device_class: String,
    /// PEM certificate to verify a QUIC server against (else any is accepted).
    pub ca: Option<PathBuf>,
    /// Limit for connecting and the hello/welcome exchange.
    pub timeout: Duration,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("server", &self.welcome.server_name)
            .field("session", &self.welcome.session_id)
            .field("closed", &self.is_closed())
            .finish()
    }
}

/// One session with a server.
pub struct Connection {
    inner: Inner,
    welcome: Welcome,
    shared: Arc<Shared>,
}

enum Inner {
    Tcp {
        outgoing: mpsc::Sender<Envelope>,
    },
    Quic {
        connection: quinn::Connection,
        control: tokio::sync::Mutex<(quinn::SendStream, quinn::RecvStream)>,
        _endpoint: quinn::Endpoint,
    },
}

/// The session's state machine and the futures waiting on what it says.
struct Shared {
    origin: Instant,
    state: Mutex<State>,
    closed: AtomicBool,
}

struct State {
    session: ClientSession,
    answers: HashMap<u64, oneshot::Sender<deepoffload_proto::Answer>>,
    pongs: HashMap<u64, oneshot::Sender<f64>>,
}

impl Shared {
    fn new(origin: Instant, session: ClientSession) -> Arc<Self> {
        Arc::new(Self {
            origin,
            state: Mutex::new(State {
                session,
                answers: HashMap::new(),
                pongs: HashMap::new(),
            }),
            closed: AtomicBool::new(false),
        })
    }

    fn now(&self) -> f64 {
        self.origin.elapsed().as_secs_f64()
    }

    /// Runs `f` on the session, then hands every event it produced to its waiter.
    fn with<T>(&self, f: impl FnOnce(&mut ClientSession) -> T) -> T {
        let mut state = self.state.lock().expect("session state");
        let out = f(&mut state.session);
        while let Some(event) = state.session.poll_event() {
            match event {
                ClientEvent::Answer { seq, answer, .. } => {
                    if let Some(tx) = state.answers.remove(&seq) {
                        let _ = tx.send(answer);
                    }
                }
                ClientEvent::Pong {
                    nonce,
                    round_trip_s,
                } => {
                    if let Some(tx) = state.pongs.remove(&nonce) {
                        let _ = tx.send(round_trip_s);
                    }
                }
                ClientEvent::Closed(reason) => {
                    tracing::debug!("session ended: {reason}");
                    self.closed.store(true, Ordering::SeqCst);
                    // Waiting pings learn it from their dropped sender.
                    state.pongs.clear();
                }
                ClientEvent::Welcomed(_) => {}
            }
        }
        out
    }

    /// Registers a waiter for the answer to the frame `send` takes in flight.
    fn send_frame(
        &self,
        frame: Frame,
    ) -> Result<(u64, Envelope, oneshot::Receiver<deepoffload_proto::Answer>), ProtoError> {
        let now = self.now();
        let (tx, rx) = oneshot::channel();
        let mut state = self.state.lock().expect("session state");
        let (seq, envelope) = state.session.send_frame(now, frame)?;
        state.answers.insert(seq, tx);
        Ok((seq, envelope, rx))
    }

    fn ping(&self, padding: usize) -> Result<(u64, Envelope, oneshot::Receiver<f64>), ProtoError> {
        let now = self.now();
        let (tx, rx) = oneshot::channel();
        let mut state = self.state.lock().expect("session state");
        let (nonce, envelope) = state.session.ping(now, padding)?;
        state.pongs.insert(nonce, tx);
        Ok((nonce, envelope, rx))
    }
}

fn ended(e: &NetError) -> ProtoError {
    match e {
        NetError::Protocol(m) => ProtoError::Protocol(m.clone()),
        _ => ProtoError::Closed,
    }
}

/// Reads the welcome off a transport's first answer and checks the session opened.
fn opened(shared: &Shared, reply: Result<Option<Envelope>, NetError>) -> Result<Welcome, NetError> {
    let now = shared.now();
    shared.with(|s| {
        match reply {
            Ok(Some(envelope)) => s.handle(now, envelope),
            Ok(None) => s.handle_end(ProtoError::Closed),
            Err(e) => return Err(e),
        }
        match (s.welcome(), s.closed()) {
            (Some(w), _) => Ok(w.clone()),
            (None, Some(e)) => Err(e.clone().into()),
            (None, None) => Err(NetError::Protocol("no welcome".into())),
        }
    })
}

impl Connection {
    /// Connects, authenticates and returns the session with the server's welcome.
    pub async fn connect(options: &ConnectOptions) -> Result<Self, NetError> {
        let connect = async {
            match options.transport {
                Transport::Tcp => Self::connect_tcp(options).await,
                Transport::Quic => Self::connect_quic(options).await,
            }
        };
        tokio::time::timeout(options.timeout, connect)
            .await
            .map_err(|_| {
                NetError::Timeout(format!(
                    "connecting to {} took over {:?}",
                    options.addr, options.timeout
                ))
            })?
    }

    fn new_session(options: &ConnectOptions) -> (Arc<Shared>, Envelope) {
        let (session, hello) =
            ClientSession::new(&options.token, &options.client_name, &options.device_class);
        (Shared::new(Instant::now(), session), hello)
    }

    async fn connect_tcp(options: &ConnectOptions) -> Result<Self, NetError> {
        let stream =
            TcpStream::connect(options.addr)
                .await
                .map_err(|source| NetError::Connect {
                    addr: options.addr.to_string(),
                    source,
                })?;
        stream.set_nodelay(true).map_err(NetError::Io)?;
        let mut framed = Framed::new(stream, EnvelopeCodec::default());
        let (shared, hello) = Self::new_session(options);
        framed.send(hello).await?;
        let welcome = opened(&shared, framed.next().await.transpose())?;
        let (mut sink, mut stream) = framed.split();
        let (outgoing, mut rx) = mpsc::channel::<Envelope>(64);
        tokio::spawn(async move {
            while let Some(msg) = rx.recv().await {
                if sink.send(msg).await.is_err() {
                    break;
                }
            }
            // The connection was dropped (or closed): end our side of the stream, so the server
            // ends the session and the reader below sees the end too. Without this the reader's
            // half keeps the socket — and the server's session — open forever.
            let _ = sink.close().await;
        });
        let reader = shared.clone();
        tokio::spawn(async move {
            loop {
                let next = stream.next().await;
                let now = reader.now();
                let done = reader.with(|s| {
                    match next {
                        Some(Ok(envelope)) => s.handle(now, envelope),
                        Some(Err(e)) => s.handle_end(ended(&e)),
                        None => s.handle_end(ProtoError::Closed),
                    }
                    s.closed().is_some()
                });
                if done {
                    break;
                }
            }
        });
        Ok(Self {
            inner: Inner::Tcp { outgoing },
            welcome,
            shared,
        })
    }

    async fn connect_quic(options: &ConnectOptions) -> Result<Self, NetError> {
        let bind: SocketAddr = if options.addr.is_ipv6() {
            "[::]:0"
        } else {
            "0.0.0.0:0"
        }
        .parse()
        .expect("valid");
        let mut endpoint = quinn::Endpoint::client(bind).map_err(NetError::Io)?;
        endpoint.set_default_client_config(crate::tls::client_config(options.ca.as_deref())?);
        let connection = endpoint
            .connect(options.addr, "localhost")
            .map_err(|e| NetError::Tls(e.to_string()))?
            .await
            .map_err(|e| NetError::Connect {
                addr: options.addr.to_string(),
                source: std::io::Error::other(e),
            })?;
        let (mut send, mut recv) = connection
            .open_bi()
            .await
            .map_err(|e| NetError::Io(std::io::Error::other(e)))?;
        let (shared, hello) = Self::new_session(options);
        crate::stream::write_envelope(&mut send, &hello).await?;
        let welcome = opened(&shared, crate::stream::read_envelope(&mut recv).await)?;
        let (conn, watcher) = (connection.clone(), shared.clone());
        tokio::spawn(async move {
            let reason = conn.closed().await;
            tracing::debug!("QUIC session ended: {reason}");
            watcher.with(|s| s.handle_end(ProtoError::Closed));
        });
        Ok(Self {
            inner: Inner::Quic {
                connection,
                control: tokio::sync::Mutex::new((send, recv)),
                _endpoint: endpoint,
            },
            welcome,
            shared,
        })
    }

    pub fn welcome(&self) -> &Welcome {
        &self.welcome
    }

    /// Whether the session has ended (peer gone, goodbye, protocol error).
    pub fn is_closed(&self) -> bool {
        self.shared.closed.load(Ordering::SeqCst)
    }

    /// Sends a frame (the session numbers it) and waits for its result. Dropping the future
    /// cancels the frame: over TCP a `Cancel` is sent, over QUIC the frame's stream is reset.
    pub async fn request(&self, frame: Frame) -> Result<FrameResult, NetError> {
        if self.is_closed() {
            return Err(NetError::Closed);
        }
        let (seq, envelope, answer) = self.shared.send_frame(frame)?;
        let guard = CancelOnDrop {
            seq,
            shared: self.shared.clone(),
            outgoing: match &self.inner {
                Inner::Tcp { outgoing } => Some(outgoing.clone()),
                Inner::Quic { .. } => None,
            },
            armed: true,
        };
        match &self.inner {
            Inner::Tcp { outgoing } => {
                outgoing
                    .send(envelope)
                    .await
                    .map_err(|_| NetError::Closed)?;
            }
            Inner::Quic { connection, .. } => {
                let (mut send, mut recv) = connection
                    .open_bi()
                    .await
                    .map_err(|e| NetError::Io(std::io::Error::other(e)))?;
                crate::stream::write_envelope(&mut send, &envelope).await?;
                let _ = send.finish();
                let reply = crate::stream::read_envelope(&mut recv).await?;
                let now = self.shared.now();
                self.shared.with(|s| s.handle_answer(now, seq, reply));
            }
        }
        let answer = answer.await.map_err(|_| NetError::Closed)?;
        guard.disarm();
        Ok(answer?)
    }

    /// Measures one round trip of a tiny message (what the link adds without payload).
    pub async fn ping(&self) -> Result<Duration, NetError> {
        self.probe(0).await
    }

    /// Measures one round trip of a ping carrying `padding` bytes up (the answer stays tiny):
    /// beyond a bare ping's, it is the time the uplink took for them.
    pub async fn probe(&self, padding: usize) -> Result<Duration, NetError> {
        let (nonce, ping, mut pong) = self.shared.ping(padding)?;
        let _forget = ForgetPing {
            nonce,
            shared: self.shared.clone(),
        };
        let round_trip_s = match &self.inner {
            Inner::Tcp { outgoing } => {
                outgoing.send(ping).await.map_err(|_| NetError::Closed)?;
                pong.await.map_err(|_| NetError::Closed)?
            }
            Inner::Quic { control, .. } => {
                let mut control = control.lock().await;
                crate::stream::write_envelope(&mut control.0, &ping).await?;
                loop {
                    let message = crate::stream::read_envelope(&mut control.1).await?;
                    let now = self.shared.now();
                    self.shared.with(|s| match message {
                        Some(m) => s.handle(now, m),
                        None => s.handle_end(ProtoError::Closed),
                    });
                    match pong.try_recv() {
                        Ok(rtt) => break rtt,
                        Err(oneshot::error::TryRecvError::Empty) => continue,
                        Err(oneshot::error::TryRecvError::Closed) => return Err(NetError::Closed),
                    }
                }
            }
        };
        Ok(Duration::from_secs_f64(round_trip_s.max(0.0)))
    }

    /// Ends the session politely.
    pub async fn close(&self, reason: &str) {
        let bye = self.shared.with(|s| s.close(reason));
        match &self.inner {
            Inner::Tcp { outgoing } => {
                let _ = outgoing.send(bye).await;
            }
            Inner::Quic {
                connection,
                control,
                ..
            } => {
                let mut control = control.lock().await;
                let _ = crate::stream::write_envelope(&mut control.0, &bye).await;
                connection.close(0u32.into(), reason.as_bytes());
            }
        }
    }
}

/// Gives up on a frame when its request future is dropped: the session forgets it (a late
/// answer is ignored) and, over TCP, the server is told with a `Cancel`.
struct CancelOnDrop {
    seq: u64,
    shared: Arc<Shared>,
    outgoing: Option<mpsc::Sender<Envelope>>,
    armed: bool,
}

impl CancelOnDrop {
    fn disarm(mut self) {
        self.armed = false;
    }
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let cancel = self.shared.with(|s| s.cancel(self.seq));
        if let (Some(cancel), Some(outgoing)) = (cancel, &self.outgoing) {
            let _ = outgoing.try_send(cancel);
        }
        self.shared
            .state
            .lock()
            .expect("session state")
            .answers
            .remove(&self.seq);
    }
}

/// Forgets a ping whose probe future ended (answered, timed out or dropped).
struct ForgetPing {
    nonce: u64,
    shared: Arc<Shared>,
}

impl Drop for ForgetPing {
    fn drop(&mut self) {
        let mut state = self.shared.state.lock().expect("session state");
        state.session.forget_ping(self.nonce);
        state.pongs.remove(&self.nonce);
    }
}
