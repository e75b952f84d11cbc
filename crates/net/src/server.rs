//! The edge side of sessions: listeners for TCP and QUIC that hand the server one uniform stream
//! of events per client (frames in sequence order with a way to reply, refusals, cancellations,
//! goodbyes). The rules — the handshake, the reorder buffer and its gap timeout, pongs — are
//! `deepoffload_proto` (`handshake`, `ServerSession`); this module moves their envelopes.

use crate::proto::{envelope::Body, Envelope, Frame, Hello, Welcome};
use crate::wire::EnvelopeCodec;
use crate::NetError;
use deepoffload_proto::handshake::{self, FirstMessage};
use deepoffload_proto::{ProtoError, ServerEvent, ServerSession};
use futures::{SinkExt, StreamExt};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_util::codec::Framed;

/// How long a new client has to say hello.
pub const HELLO_TIMEOUT: Duration = Duration::from_secs(5);

/// A listening socket of either transport.
pub enum Listener {
    Tcp(TcpListener),
    Quic(quinn::Endpoint),
}

impl Listener {
    pub async fn bind_tcp(addr: SocketAddr) -> Result<Self, NetError> {
        TcpListener::bind(addr)
            .await
            .map(Listener::Tcp)
            .map_err(|source| NetError::Connect {
                addr: addr.to_string(),
                source,
            })
    }

    pub fn bind_quic(addr: SocketAddr, identity: crate::tls::Identity) -> Result<Self, NetError> {
        let config = crate::tls::server_config(identity)?;
        quinn::Endpoint::server(config, addr)
            .map(Listener::Quic)
            .map_err(|source| NetError::Connect {
                addr: addr.to_string(),
                source,
            })
    }

    pub fn local_addr(&self) -> Result<SocketAddr, NetError> {
        match self {
            Listener::Tcp(l) => l.local_addr().map_err(NetError::Io),
            Listener::Quic(e) => e.local_addr().map_err(NetError::Io),
        }
    }

    /// Waits for the next client (before its hello).
    pub async fn accept(&self) -> Result<Incoming, NetError> {
        match self {
            Listener::Tcp(l) => {
                let (stream, peer) = l.accept().await.map_err(NetError::Io)?;
                let _ = stream.set_nodelay(true);
                Ok(Incoming {
                    peer,
                    kind: IncomingKind::Tcp(stream),
                })
            }
            Listener::Quic(e) => loop {
                let Some(incoming) = e.accept().await else {
                    return Err(NetError::Closed);
                };
                let peer = incoming.remote_address();
                match incoming.await {
                    Ok(connection) => {
                        return Ok(Incoming {
                            peer,
                            kind: IncomingKind::Quic(connection),
                        })
                    }
                    Err(err) => tracing::debug!(%peer, "QUIC handshake failed: {err}"),
                }
            },
        }
    }

    /// Stops accepting (QUIC also tells connected peers).
    pub fn close(&self) {
        if let Listener::Quic(e) = self {
            e.close(0u32.into(), b"server shutting down");
        }
    }
}

/// A connected client that has not yet said hello.
pub struct Incoming {
    pub peer: SocketAddr,
    kind: IncomingKind,
}

enum IncomingKind {
    Tcp(TcpStream),
    Quic(quinn::Connection),
}

/// What the server decided about a hello.
pub type Admission = Result<Welcome, crate::proto::Error>;

/// How long a frame's own QUIC stream may take to deliver the frame.
const FRAME_STREAM_TIMEOUT: Duration = Duration::from_secs(30);

impl Incoming {
    /// Reads the hello, asks `admit` for a welcome or a refusal, and answers. A refused client
    /// gets its error and the connection is closed.
    pub async fn handshake(
        self,
        admit: impl FnOnce(&Hello) -> Admission,
    ) -> Result<Session, NetError> {
        let peer = self.peer;
        tokio::time::timeout(HELLO_TIMEOUT, self.handshake_inner(admit))
            .await
            .map_err(|_| {
                NetError::Timeout(format!("{peer} sent no hello within {HELLO_TIMEOUT:?}"))
            })?
    }

    async fn handshake_inner(
        self,
        admit: impl FnOnce(&Hello) -> Admission,
    ) -> Result<Session, NetError> {
        match self.kind {
            IncomingKind::Tcp(stream) => handshake_tcp(self.peer, stream, admit).await,
            IncomingKind::Quic(connection) => handshake_quic(self.peer, connection, admit).await,
        }
    }
}

/// The handshake on a TCP stream; the session's envelopes then share it.
async fn handshake_tcp(
    peer: SocketAddr,
    stream: TcpStream,
    admit: impl FnOnce(&Hello) -> Admission,
) -> Result<Session, NetError> {
    let mut framed = Framed::new(stream, EnvelopeCodec::default());
    let first = framed.next().await.transpose()?;
    let hello = match handshake::read_hello(first) {
        FirstMessage::Hello(h) => h,
        FirstMessage::Refuse { reply, error } => {
            if let Some(reply) = reply {
                let _ = framed.send(reply).await;
            }
            return Err(refused(peer, error));
        }
    };
    let (reply, goes_on) = handshake::answer(admit(&hello));
    let sent = framed.send(reply).await;
    goes_on?;
    sent?;
    let (mut sink, stream) = framed.split();
    let (tx, mut rx) = mpsc::channel::<Envelope>(256);
    tokio::spawn(async move {
        while let Some(msg) = rx.recv().await {
            if sink.send(msg).await.is_err() {
                break;
            }
        }
        let _ = sink.close().await;
    });
    Ok(Session::new(
        peer,
        hello,
        SessionKind::Tcp {
            stream,
            outgoing: tx,
        },
    ))
}

/// The handshake on a QUIC connection's first stream (the control stream); every frame then
/// comes on a stream of its own.
async fn handshake_quic(
    peer: SocketAddr,
    connection: quinn::Connection,
    admit: impl FnOnce(&Hello) -> Admission,
) -> Result<Session, NetError> {
    let (mut send, mut recv) = connection
        .accept_bi()
        .await
        .map_err(|e| NetError::Io(std::io::Error::other(e)))?;
    let first = crate::stream::read_envelope(&mut recv).await?;
    let hello = match handshake::read_hello(first) {
        FirstMessage::Hello(h) => h,
        FirstMessage::Refuse { error, .. } => {
            connection.close(1u32.into(), b"the first message must be a hello");
            return Err(refused(peer, error));
        }
    };
    let (reply, goes_on) = handshake::answer(admit(&hello));
    let sent = crate::stream::write_envelope(&mut send, &reply).await;
    if let Err(e) = goes_on {
        let _ = send.finish();
        // Let the refusal reach the client before the connection goes.
        tokio::time::sleep(Duration::from_millis(50)).await;
        connection.close(2u32.into(), e.to_string().as_bytes());
        return Err(e.into());
    }
    sent?;
    let (events_tx, events) = mpsc::channel(256);
    // Frames arrive on their own streams; a reader task per stream feeds one channel
    // so a slow stream never holds up the others.
    let (conn, tx) = (connection.clone(), events_tx.clone());
    tokio::spawn(async move {
        while let Ok((send, mut recv)) = conn.accept_bi().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let read = tokio::time::timeout(
                    FRAME_STREAM_TIMEOUT,
                    crate::stream::read_envelope(&mut recv),
                )
                .await;
                let message = match read {
                    Ok(Ok(Some(
                        m @ Envelope {
                            body: Some(Body::Frame(_)),
                        },
                    ))) => Ok((m, Some(send))),
                    Ok(Ok(other)) => Err(NetError::Protocol(format!(
                        "a frame stream carried {other:?}"
                    ))),
                    Ok(Err(e)) => Err(e),
                    Err(_) => Err(NetError::Timeout(format!(
                        "a frame stream stalled for {FRAME_STREAM_TIMEOUT:?}"
                    ))),
                };
                let _ = tx.send(message).await;
            });
        }
    });
    // Control messages (pings, goodbye) on the first stream; the end of it is a
    // goodbye too.
    tokio::spawn(async move {
        loop {
            let message = match crate::stream::read_envelope(&mut recv).await {
                Ok(Some(Envelope {
                    body: Some(Body::Frame(_)),
                })) => Err(NetError::Protocol(
                    "a frame on the control stream (each frame has a stream of its own)".into(),
                )),
                Ok(Some(m)) => Ok((m, None)),
                Ok(None) => Ok((
                    crate::wire::envelope(Body::Goodbye(Default::default())),
                    None,
                )),
                Err(e) => Err(e),
            };
            let last = match &message {
                Ok((m, _)) => matches!(m.body, Some(Body::Goodbye(_))),
                Err(_) => true,
            };
            if events_tx.send(message).await.is_err() || last {
                break;
            }
        }
    });
    Ok(Session::new(
        peer,
        hello,
        SessionKind::Quic {
            connection,
            control: send,
            events,
        },
    ))
}

fn refused(peer: SocketAddr, error: ProtoError) -> NetError {
    match error {
        ProtoError::Protocol(m) => NetError::Protocol(format!("{peer}: {m}")),
        other => other.into(),
    }
}

/// An admitted client.
pub struct Session {
    pub peer: SocketAddr,
    pub hello: Hello,
    kind: SessionKind,
    rules: ServerSession<Reply>,
    origin: Instant,
}

/// A message from a QUIC session's streams, with the frame's own stream to answer on.
type QuicMessage = Result<(Envelope, Option<quinn::SendStream>), NetError>;

enum SessionKind {
    Tcp {
        stream: futures::stream::SplitStream<Framed<TcpStream, EnvelopeCodec>>,
        outgoing: mpsc::Sender<Envelope>,
    },
    Quic {
        connection: quinn::Connection,
        control: quinn::SendStream,
        events: mpsc::Receiver<QuicMessage>,
    },
}

/// Something a client did, in the order the edge must deal with it.
pub enum Event {
    /// The next frame in sequence order to analyse, and where its answer goes.
    Frame { frame: Frame, reply: Reply },
    /// A frame refused by the protocol (repeated or old sequence number, no data): send
    /// `error` on `reply`.
    Refused { reply: Reply, error: Envelope },
    /// The client no longer wants this frame's result.
    Cancel(u64),
    /// The client ended the session.
    Goodbye,
}

/// Where the answer to one frame goes.
pub struct Reply(ReplyKind);

enum ReplyKind {
    Tcp(mpsc::Sender<Envelope>),
    Quic(quinn::SendStream),
    /// A QUIC message that came without a stream of its own (never a frame).
    None,
}

impl Reply {
    /// Sends the result or error for the frame.
    pub async fn send(self, message: Envelope) -> Result<(), NetError> {
        match self.0 {
            ReplyKind::Tcp(tx) => tx.send(message).await.map_err(|_| NetError::Closed),
            ReplyKind::Quic(mut stream) => {
                crate::stream::write_envelope(&mut stream, &message).await?;
                let _ = stream.finish();
                Ok(())
            }
            ReplyKind::None => Err(NetError::Closed),
        }
    }

    /// Resolves when the client reset this frame's stream (QUIC); never over TCP, where a
    /// `Cancel` event says it instead.
    pub async fn cancelled(&mut self) {
        match &mut self.0 {
            ReplyKind::Tcp(_) | ReplyKind::None => std::future::pending().await,
            ReplyKind::Quic(stream) => {
                let _ = stream.stopped().await;
            }
        }
    }
}

impl Session {
    fn new(peer: SocketAddr, hello: Hello, kind: SessionKind) -> Self {
        Self {
            peer,
            hello,
            kind,
            rules: ServerSession::new(),
            origin: Instant::now(),
        }
    }

    fn now(&self) -> f64 {
        self.origin.elapsed().as_secs_f64()
    }

    /// The next event; `None` when the client is gone. Pings are answered here, and a client
    /// that broke the protocol has had its `BAD_REQUEST` when this returns the error.
    pub async fn next(&mut self) -> Option<Result<Event, NetError>> {
        loop {
            while let Some(event) = self.rules.poll_event() {
                match event {
                    ServerEvent::Frame { frame, reply } => {
                        return Some(Ok(Event::Frame { frame, reply }))
                    }
                    ServerEvent::Refuse { reply, error } => {
                        return Some(Ok(Event::Refused { reply, error }))
                    }
                    ServerEvent::Cancel(seq) => return Some(Ok(Event::Cancel(seq))),
                    ServerEvent::Transmit(message) => {
                        if self.transmit(message).await.is_err() {
                            return None;
                        }
                    }
                    ServerEvent::Closed {
                        reason: ProtoError::Closed,
                        ..
                    } => return Some(Ok(Event::Goodbye)),
                    ServerEvent::Closed { reason, farewell } => {
                        if let Some(farewell) = farewell {
                            self.send_session(farewell).await;
                        }
                        return Some(Err(reason.into()));
                    }
                }
            }
            if self.rules.is_closed() {
                return None;
            }
            let gap = self
                .rules
                .poll_timeout()
                .map(|t| self.origin + Duration::from_secs_f64(t));
            let message = tokio::select! {
                message = self.receive() => message?,
                _ = tokio::time::sleep_until(gap.unwrap_or_else(Instant::now).into()), if gap.is_some() => {
                    let now = self.now();
                    self.rules.handle_timeout(now);
                    continue;
                }
            };
            let now = self.now();
            match message {
                Ok((message, reply)) => self.rules.handle(now, message, || reply),
                Err(NetError::Protocol(m)) => self.rules.handle_broken(ProtoError::Protocol(m)),
                Err(e) => return Some(Err(e)),
            }
        }
    }

    /// The client's next message and the reply path a frame in it would have; `None` when the
    /// client is gone.
    async fn receive(&mut self) -> Option<Result<(Envelope, Reply), NetError>> {
        match &mut self.kind {
            SessionKind::Tcp { stream, outgoing } => Some(
                stream
                    .next()
                    .await?
                    .map(|m| (m, Reply(ReplyKind::Tcp(outgoing.clone())))),
            ),
            SessionKind::Quic {
                connection, events, ..
            } => tokio::select! {
                message = events.recv() => Some(message?.map(|(m, stream)| {
                    (m, Reply(stream.map_or(ReplyKind::None, ReplyKind::Quic)))
                })),
                _ = connection.closed() => None,
            },
        }
    }

    /// Sends on the session's own stream (TCP: the one stream; QUIC: the control stream).
    async fn transmit(&mut self, message: Envelope) -> Result<(), NetError> {
        match &mut self.kind {
            SessionKind::Tcp { outgoing, .. } => {
                outgoing.send(message).await.map_err(|_| NetError::Closed)
            }
            SessionKind::Quic { control, .. } => {
                crate::stream::write_envelope(control, &message).await
            }
        }
    }

    /// Sends a session-level message (an error, a goodbye) and, for QUIC, closes.
    pub async fn send_session(&self, message: Envelope) {
        match &self.kind {
            SessionKind::Tcp { outgoing, .. } => {
                let _ = outgoing.send(message).await;
            }
            SessionKind::Quic { connection, .. } => {
                let reason = match &message.body {
                    Some(Body::Goodbye(g)) => g.reason.clone(),
                    Some(Body::Error(e)) => e.message.clone(),
                    _ => String::new(),
                };
                connection.close(0u32.into(), reason.as_bytes());
            }
        }
    }
}
