//! The edge side of sessions: listeners for TCP and QUIC that hand the server one uniform stream
//! of events per client (frames with a way to reply, cancellations, goodbyes).

use crate::proto::{envelope::Body, error::Code, Envelope, Frame, Hello, Pong, Welcome};
use crate::wire::{envelope, EnvelopeCodec};
use crate::NetError;
use futures::{SinkExt, StreamExt};
use std::net::SocketAddr;
use std::time::Duration;
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
        let peer = self.peer;
        match self.kind {
            IncomingKind::Tcp(stream) => {
                let mut framed = Framed::new(stream, EnvelopeCodec::default());
                let hello = match framed.next().await.ok_or(NetError::Closed)??.body {
                    Some(Body::Hello(h)) => h,
                    other => {
                        let e = protocol_error("the first message must be a hello");
                        let _ = framed.send(envelope(Body::Error(e))).await;
                        return Err(NetError::Protocol(format!("{peer} opened with {other:?}")));
                    }
                };
                match admit(&hello) {
                    Ok(welcome) => framed.send(envelope(Body::Welcome(welcome))).await?,
                    Err(e) => {
                        let message = e.message.clone();
                        let _ = framed.send(envelope(Body::Error(e))).await;
                        return Err(NetError::Refused(message));
                    }
                }
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
                Ok(Session {
                    peer,
                    hello,
                    kind: SessionKind::Tcp {
                        stream,
                        outgoing: tx,
                    },
                })
            }
            IncomingKind::Quic(connection) => {
                let (mut send, mut recv) = connection
                    .accept_bi()
                    .await
                    .map_err(|e| NetError::Io(std::io::Error::other(e)))?;
                let hello = match crate::stream::read_envelope(&mut recv)
                    .await?
                    .and_then(|e| e.body)
                {
                    Some(Body::Hello(h)) => h,
                    other => {
                        connection.close(1u32.into(), b"the first message must be a hello");
                        return Err(NetError::Protocol(format!("{peer} opened with {other:?}")));
                    }
                };
                match admit(&hello) {
                    Ok(welcome) => {
                        crate::stream::write_envelope(&mut send, &envelope(Body::Welcome(welcome)))
                            .await?
                    }
                    Err(e) => {
                        let message = e.message.clone();
                        let _ = crate::stream::write_envelope(&mut send, &envelope(Body::Error(e)))
                            .await;
                        let _ = send.finish();
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        connection.close(2u32.into(), message.as_bytes());
                        return Err(NetError::Refused(message));
                    }
                }
                // Frames arrive on their own streams; a reader task per stream feeds one channel
                // so a slow stream never holds up the others.
                let (events_tx, events) = mpsc::channel(256);
                let conn = connection.clone();
                let tx = events_tx.clone();
                tokio::spawn(async move {
                    while let Ok((send, mut recv)) = conn.accept_bi().await {
                        let tx = tx.clone();
                        tokio::spawn(async move {
                            let event = match tokio::time::timeout(
                                Duration::from_secs(30),
                                crate::stream::read_envelope(&mut recv),
                            )
                            .await
                            {
                                Ok(Ok(Some(Envelope {
                                    body: Some(Body::Frame(frame)),
                                }))) => Ok(Event::Frame {
                                    frame,
                                    reply: Reply(ReplyKind::Quic(send)),
                                }),
                                Ok(Ok(other)) => Err(NetError::Protocol(format!(
                                    "a frame stream carried {other:?}"
                                ))),
                                Ok(Err(e)) => Err(e),
                                Err(_) => {
                                    Err(NetError::Timeout("a frame stream stalled for 30 s".into()))
                                }
                            };
                            let _ = tx.send(event).await;
                        });
                    }
                });
                // Control messages on the first stream.
                tokio::spawn(async move {
                    loop {
                        match crate::stream::read_envelope(&mut recv).await {
                            Ok(Some(Envelope {
                                body: Some(Body::Ping(p)),
                            })) => {
                                let pong = envelope(Body::Pong(Pong {
                                    nonce: p.nonce,
                                    client_time_us: p.client_time_us,
                                }));
                                if crate::stream::write_envelope(&mut send, &pong)
                                    .await
                                    .is_err()
                                {
                                    break;
                                }
                            }
                            Ok(Some(Envelope {
                                body: Some(Body::Goodbye(_)),
                            }))
                            | Ok(None) => {
                                let _ = events_tx.send(Ok(Event::Goodbye)).await;
                                break;
                            }
                            Ok(Some(other)) => {
                                let _ = events_tx
                                    .send(Err(NetError::Protocol(format!(
                                        "unexpected control message {other:?}"
                                    ))))
                                    .await;
                                break;
                            }
                            Err(e) => {
                                let _ = events_tx.send(Err(e)).await;
                                break;
                            }
                        }
                    }
                });
                Ok(Session {
                    peer,
                    hello,
                    kind: SessionKind::Quic { connection, events },
                })
            }
        }
    }
}

fn protocol_error(message: &str) -> crate::proto::Error {
    crate::proto::Error {
        code: Code::BadRequest as i32,
        seq: 0,
        message: message.into(),
    }
}

/// An admitted client.
pub struct Session {
    pub peer: SocketAddr,
    pub hello: Hello,
    kind: SessionKind,
}

enum SessionKind {
    Tcp {
        stream: futures::stream::SplitStream<Framed<TcpStream, EnvelopeCodec>>,
        outgoing: mpsc::Sender<Envelope>,
    },
    Quic {
        connection: quinn::Connection,
        events: mpsc::Receiver<Result<Event, NetError>>,
    },
}

/// Something a client did.
pub enum Event {
    /// A frame to analyse, and where its answer goes.
    Frame { frame: Frame, reply: Reply },
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
        }
    }

    /// Resolves when the client reset this frame's stream (QUIC); never over TCP, where a
    /// `Cancel` event says it instead.
    pub async fn cancelled(&mut self) {
        match &mut self.0 {
            ReplyKind::Tcp(_) => std::future::pending().await,
            ReplyKind::Quic(stream) => {
                let _ = stream.stopped().await;
            }
        }
    }
}

impl Session {
    /// The next event; `None` when the client is gone. Pings are answered here.
    pub async fn next(&mut self) -> Option<Result<Event, NetError>> {
        match &mut self.kind {
            SessionKind::Tcp { stream, outgoing } => loop {
                let body = match stream.next().await? {
                    Ok(Envelope { body: Some(body) }) => body,
                    Ok(_) => return Some(Err(NetError::Protocol("empty message".into()))),
                    Err(e) => return Some(Err(e)),
                };
                return Some(Ok(match body {
                    Body::Frame(frame) => Event::Frame {
                        frame,
                        reply: Reply(ReplyKind::Tcp(outgoing.clone())),
                    },
                    Body::Cancel(c) => Event::Cancel(c.seq),
                    Body::Goodbye(_) => Event::Goodbye,
                    Body::Ping(p) => {
                        let pong = envelope(Body::Pong(Pong {
                            nonce: p.nonce,
                            client_time_us: p.client_time_us,
                        }));
                        if outgoing.send(pong).await.is_err() {
                            return None;
                        }
                        continue;
                    }
                    other => {
                        return Some(Err(NetError::Protocol(format!(
                            "unexpected message from a client: {other:?}"
                        ))))
                    }
                }));
            },
            SessionKind::Quic { connection, events } => tokio::select! {
                event = events.recv() => event,
                _ = connection.closed() => None,
            },
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
