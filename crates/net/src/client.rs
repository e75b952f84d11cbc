//! The device side of a session: connect, say hello, send frames, get results — over TCP (one
//! length-delimited stream, results matched by sequence number) or QUIC (a stream per frame).

use crate::proto::{
    envelope::Body, error::Code, Cancel, Envelope, Frame, Hello, Ping, Result as FrameResult,
    Welcome,
};
use crate::wire::{envelope, EnvelopeCodec, PROTOCOL_VERSION};
use crate::NetError;
use futures::{SinkExt, StreamExt};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
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
    closed: Arc<AtomicBool>,
}

enum Inner {
    Tcp(TcpSession),
    Quic(QuicSession),
}

type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<Result<FrameResult, NetError>>>>>;

struct TcpSession {
    outgoing: mpsc::Sender<Envelope>,
    pending: Pending,
    pongs: Arc<Mutex<HashMap<u64, oneshot::Sender<()>>>>,
}

struct QuicSession {
    connection: quinn::Connection,
    control: tokio::sync::Mutex<(quinn::SendStream, quinn::RecvStream)>,
    _endpoint: quinn::Endpoint,
}

static NONCE: AtomicU64 = AtomicU64::new(1);

fn remote_error(e: crate::proto::Error) -> NetError {
    NetError::Remote {
        code: Code::try_from(e.code).unwrap_or(Code::Unspecified),
        message: e.message,
    }
}

fn hello(options: &ConnectOptions) -> Envelope {
    envelope(Body::Hello(Hello {
        protocol_version: PROTOCOL_VERSION,
        token: options.token.clone(),
        client_name: options.client_name.clone(),
        device_class: options.device_class.clone(),
    }))
}

fn expect_welcome(reply: Option<Result<Envelope, NetError>>) -> Result<Welcome, NetError> {
    match reply.ok_or(NetError::Closed)??.body {
        Some(Body::Welcome(w)) => Ok(w),
        Some(Body::Error(e)) => Err(remote_error(e)),
        other => Err(NetError::Protocol(format!(
            "expected a welcome, got {other:?}"
        ))),
    }
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
        framed.send(hello(options)).await?;
        let welcome = expect_welcome(framed.next().await)?;
        let (mut sink, mut stream) = framed.split();
        let (outgoing, mut rx) = mpsc::channel::<Envelope>(64);
        let closed = Arc::new(AtomicBool::new(false));
        let pending: Pending = Arc::default();
        let pongs: Arc<Mutex<HashMap<u64, oneshot::Sender<()>>>> = Arc::default();
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
        let (p, q, c) = (pending.clone(), pongs.clone(), closed.clone());
        tokio::spawn(async move {
            let reason = loop {
                match stream.next().await {
                    Some(Ok(Envelope {
                        body: Some(Body::Result(r)),
                    })) => {
                        if let Some(tx) = p.lock().expect("pending").remove(&r.seq) {
                            let _ = tx.send(Ok(r));
                        }
                    }
                    Some(Ok(Envelope {
                        body: Some(Body::Error(e)),
                    })) if e.seq != 0 => {
                        if let Some(tx) = p.lock().expect("pending").remove(&e.seq) {
                            let _ = tx.send(Err(remote_error(e)));
                        }
                    }
                    Some(Ok(Envelope {
                        body: Some(Body::Error(e)),
                    })) => break remote_error(e),
                    Some(Ok(Envelope {
                        body: Some(Body::Pong(pong)),
                    })) => {
                        if let Some(tx) = q.lock().expect("pongs").remove(&pong.nonce) {
                            let _ = tx.send(());
                        }
                    }
                    Some(Ok(Envelope {
                        body: Some(Body::Goodbye(g)),
                    })) => {
                        break NetError::Remote {
                            code: Code::ShuttingDown,
                            message: g.reason,
                        }
                    }
                    Some(Ok(other)) => tracing::debug!("ignoring unexpected message {other:?}"),
                    Some(Err(e)) => break e,
                    None => break NetError::Closed,
                }
            };
            c.store(true, Ordering::SeqCst);
            tracing::debug!("session ended: {reason}");
            for (_, tx) in p.lock().expect("pending").drain() {
                let _ = tx.send(Err(NetError::Closed));
            }
        });
        Ok(Self {
            inner: Inner::Tcp(TcpSession {
                outgoing,
                pending,
                pongs,
            }),
            welcome,
            closed,
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
        crate::stream::write_envelope(&mut send, &hello(options)).await?;
        let welcome = expect_welcome(crate::stream::read_envelope(&mut recv).await.transpose())?;
        let closed = Arc::new(AtomicBool::new(false));
        let (conn, c) = (connection.clone(), closed.clone());
        tokio::spawn(async move {
            let reason = conn.closed().await;
            c.store(true, Ordering::SeqCst);
            tracing::debug!("QUIC session ended: {reason}");
        });
        Ok(Self {
            inner: Inner::Quic(QuicSession {
                connection,
                control: tokio::sync::Mutex::new((send, recv)),
                _endpoint: endpoint,
            }),
            welcome,
            closed,
        })
    }

    pub fn welcome(&self) -> &Welcome {
        &self.welcome
    }

    /// Whether the session has ended (peer gone, goodbye, protocol error).
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    /// Sends a frame and waits for its result. Dropping the future cancels the frame: over TCP a
    /// `Cancel` is sent, over QUIC the frame's stream is reset.
    pub async fn request(&self, frame: Frame) -> Result<FrameResult, NetError> {
        if self.is_closed() {
            return Err(NetError::Closed);
        }
        match &self.inner {
            Inner::Tcp(s) => {
                let seq = frame.seq;
                let (tx, rx) = oneshot::channel();
                s.pending.lock().expect("pending").insert(seq, tx);
                let guard = CancelOnDrop {
                    seq,
                    outgoing: s.outgoing.clone(),
                    pending: s.pending.clone(),
                    armed: true,
                };
                s.outgoing
                    .send(envelope(Body::Frame(frame)))
                    .await
                    .map_err(|_| NetError::Closed)?;
                let result = rx.await.map_err(|_| NetError::Closed)?;
                guard.disarm();
                result
            }
            Inner::Quic(s) => {
                let (mut send, mut recv) = s
                    .connection
                    .open_bi()
                    .await
                    .map_err(|e| NetError::Io(std::io::Error::other(e)))?;
                crate::stream::write_envelope(&mut send, &envelope(Body::Frame(frame))).await?;
                let _ = send.finish();
                match crate::stream::read_envelope(&mut recv)
                    .await?
                    .and_then(|e| e.body)
                {
                    Some(Body::Result(r)) => Ok(r),
                    Some(Body::Error(e)) => Err(remote_error(e)),
                    None => Err(NetError::Closed),
                    Some(other) => Err(NetError::Protocol(format!(
                        "expected a result, got {other:?}"
                    ))),
                }
            }
        }
    }

    /// Measures one round trip of a tiny message (what the link adds without payload).
    pub async fn ping(&self) -> Result<Duration, NetError> {
        self.probe(0).await
    }

    /// Measures one round trip of a ping carrying `padding` bytes up (the answer stays tiny):
    /// beyond a bare ping's, it is the time the uplink took for them.
    pub async fn probe(&self, padding: usize) -> Result<Duration, NetError> {
        if padding > crate::wire::MAX_PING_PADDING_BYTES {
            return Err(NetError::Protocol(format!(
                "a probe of {padding} bytes is over the {} allowed",
                crate::wire::MAX_PING_PADDING_BYTES
            )));
        }
        let nonce = NONCE.fetch_add(1, Ordering::Relaxed);
        let start = Instant::now();
        let ping = envelope(Body::Ping(Ping {
            nonce,
            client_time_us: 0,
            padding: vec![0; padding],
        }));
        match &self.inner {
            Inner::Tcp(s) => {
                let (tx, rx) = oneshot::channel();
                s.pongs.lock().expect("pongs").insert(nonce, tx);
                s.outgoing.send(ping).await.map_err(|_| NetError::Closed)?;
                rx.await.map_err(|_| NetError::Closed)?;
            }
            Inner::Quic(s) => {
                let mut control = s.control.lock().await;
                crate::stream::write_envelope(&mut control.0, &ping).await?;
                loop {
                    match crate::stream::read_envelope(&mut control.1)
                        .await?
                        .and_then(|e| e.body)
                    {
                        Some(Body::Pong(p)) if p.nonce == nonce => break,
                        Some(_) => continue,
                        None => return Err(NetError::Closed),
                    }
                }
            }
        }
        Ok(start.elapsed())
    }

    /// Ends the session politely.
    pub async fn close(&self, reason: &str) {
        let bye = envelope(Body::Goodbye(crate::proto::Goodbye {
            reason: reason.to_string(),
        }));
        match &self.inner {
            Inner::Tcp(s) => {
                let _ = s.outgoing.send(bye).await;
            }
            Inner::Quic(s) => {
                let mut control = s.control.lock().await;
                let _ = crate::stream::write_envelope(&mut control.0, &bye).await;
                s.connection.close(0u32.into(), reason.as_bytes());
            }
        }
        self.closed.store(true, Ordering::SeqCst);
    }
}

/// Tells the server a frame's result is no longer wanted when its request future is dropped.
struct CancelOnDrop {
    seq: u64,
    outgoing: mpsc::Sender<Envelope>,
    pending: Pending,
    armed: bool,
}

impl CancelOnDrop {
    fn disarm(mut self) {
        self.armed = false;
    }
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if self.armed {
            self.pending.lock().expect("pending").remove(&self.seq);
            let _ = self
                .outgoing
                .try_send(envelope(Body::Cancel(Cancel { seq: self.seq })));
        }
    }
}
