//! The device's side of a session as a state machine: it numbers frames, keeps the requests in
//! flight by sequence number, matches answers to them (ignoring answers to frames it cancelled),
//! times pings, tells a keyframe request from other errors and ends the session on a goodbye, a
//! session-level error or a broken message — failing whatever was still in flight.
//!
//! Every method takes the time (seconds from the driver's origin) where it matters and returns
//! the envelope to send; the transport chooses the path (one stream for TCP and WebSocket; for
//! QUIC a stream per frame, the control stream for pings, and a stream reset instead of a
//! `Cancel`). What happened comes out of [`ClientSession::poll_event`].

use crate::handshake;
use crate::messages::{
    envelope::Body, error::Code, Cancel, Envelope, Frame, Goodbye, Ping, Result as FrameResult,
    Welcome,
};
use crate::wire::{envelope, MAX_PING_PADDING_BYTES};
use crate::ProtoError;
use std::collections::{BTreeMap, VecDeque};

/// A frame's answer: its result, or why there is none.
pub type Answer = Result<FrameResult, ProtoError>;

/// Something that happened on the session.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientEvent {
    /// The server admitted us.
    Welcomed(Welcome),
    /// The answer to frame `seq`, `round_trip_s` after it was sent.
    Answer {
        seq: u64,
        answer: Answer,
        round_trip_s: f64,
    },
    /// The answer to ping `nonce`.
    Pong { nonce: u64, round_trip_s: f64 },
    /// The session is over; every frame still in flight has had its `Answer` (an error).
    Closed(ProtoError),
}

#[derive(Debug, Clone, PartialEq)]
enum State {
    AwaitingWelcome,
    Open(Welcome),
    Closed(ProtoError),
}

/// One session of a device with a server.
#[derive(Debug)]
pub struct ClientSession {
    state: State,
    /// The next frame's sequence number (from 1, consecutive, per session).
    next_seq: u64,
    /// Frames in flight: sequence number → when sent.
    pending: BTreeMap<u64, f64>,
    /// Pings in flight: nonce → when sent.
    pings: BTreeMap<u64, f64>,
    next_nonce: u64,
    events: VecDeque<ClientEvent>,
    /// Answers that came for frames no longer in flight (cancelled, or answered already).
    stale_answers: u64,
}

impl ProtoError {
    /// Whether the server lost the decoder's reference and wants a key frame next.
    pub fn asks_for_keyframe(&self) -> bool {
        matches!(
            self,
            ProtoError::Remote {
                code: Code::DecodeFailed,
                ..
            }
        )
    }
}

impl ClientSession {
    /// A session that has yet to be welcomed, and the hello that opens it.
    pub fn new(token: &str, client_name: &str, device_class: &str) -> (Self, Envelope) {
        let session = Self {
            state: State::AwaitingWelcome,
            next_seq: 1,
            pending: BTreeMap::new(),
            pings: BTreeMap::new(),
            next_nonce: 1,
            events: VecDeque::new(),
            stale_answers: 0,
        };
        (session, handshake::hello(token, client_name, device_class))
    }

    /// The server's welcome, once admitted.
    pub fn welcome(&self) -> Option<&Welcome> {
        match &self.state {
            State::Open(w) => Some(w),
            _ => None,
        }
    }

    /// Why the session ended, once it has.
    pub fn closed(&self) -> Option<&ProtoError> {
        match &self.state {
            State::Closed(e) => Some(e),
            _ => None,
        }
    }

    /// Frames sent and not yet answered.
    pub fn in_flight(&self) -> usize {
        self.pending.len()
    }

    /// Answers that came for frames no longer in flight.
    pub fn stale_answers(&self) -> u64 {
        self.stale_answers
    }

    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        self.events.pop_front()
    }

    fn open(&self) -> Result<&Welcome, ProtoError> {
        match &self.state {
            State::Open(w) => Ok(w),
            State::AwaitingWelcome => Err(ProtoError::Protocol(
                "the session is not open yet: wait for the welcome".into(),
            )),
            State::Closed(_) => Err(ProtoError::Closed),
        }
    }

    /// Numbers `frame` and takes it in flight; returns its sequence number and the envelope to
    /// send. Refused, before anything is sent, when the session is not open, the frame is empty
    /// (a frame the encoder skipped is not sent) or over the server's size limit.
    pub fn send_frame(
        &mut self,
        now_s: f64,
        mut frame: Frame,
    ) -> Result<(u64, Envelope), ProtoError> {
        let welcome = self.open()?;
        if frame.h264.is_empty() {
            return Err(ProtoError::Protocol(
                "a frame without H.264 data is not sent (the encoder skipped it)".into(),
            ));
        }
        let limit = welcome.max_frame_bytes as usize;
        if limit > 0 && frame.h264.len() > limit {
            return Err(ProtoError::Protocol(format!(
                "a frame of {} bytes is over the server's limit of {limit}: lower the resolution or the bit rate",
                frame.h264.len()
            )));
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        frame.seq = seq;
        self.pending.insert(seq, now_s);
        Ok((seq, envelope(Body::Frame(frame))))
    }

    /// Gives up on frame `seq`: its answer, should it come, is ignored. Returns the `Cancel` to
    /// send (transports with a stream per frame reset the stream instead), or `None` when the
    /// frame was no longer in flight.
    pub fn cancel(&mut self, seq: u64) -> Option<Envelope> {
        self.pending
            .remove(&seq)
            .map(|_| envelope(Body::Cancel(Cancel { seq })))
    }

    /// A ping carrying `padding` bytes up (0: a bare round trip; more: it times the uplink).
    pub fn ping(&mut self, now_s: f64, padding: usize) -> Result<(u64, Envelope), ProtoError> {
        self.open()?;
        if padding > MAX_PING_PADDING_BYTES {
            return Err(ProtoError::Protocol(format!(
                "a probe of {padding} bytes is over the {MAX_PING_PADDING_BYTES} allowed"
            )));
        }
        let nonce = self.next_nonce;
        self.next_nonce += 1;
        self.pings.insert(nonce, now_s);
        let ping = Ping {
            nonce,
            client_time_us: (now_s.max(0.0) * 1e6) as u64,
            padding: vec![0; padding],
        };
        Ok((nonce, envelope(Body::Ping(ping))))
    }

    /// Forgets ping `nonce` (its answer did not come in time); a late pong is ignored.
    pub fn forget_ping(&mut self, nonce: u64) {
        self.pings.remove(&nonce);
    }

    /// Ends the session politely; returns the goodbye to send.
    pub fn close(&mut self, reason: &str) -> Envelope {
        self.end(ProtoError::Closed);
        envelope(Body::Goodbye(Goodbye {
            reason: reason.to_string(),
        }))
    }

    /// The transport ended (the peer left, or an IO error): the session is over.
    pub fn handle_end(&mut self, reason: ProtoError) {
        self.end(reason);
    }

    /// A message from the server on the session's stream.
    pub fn handle(&mut self, now_s: f64, message: Envelope) {
        if let Err(e) = self.receive(now_s, message) {
            self.end(e);
        }
    }

    /// The one message a per-frame stream carries (QUIC), `None` when the stream ended without
    /// one: it must answer frame `seq`.
    pub fn handle_answer(&mut self, now_s: f64, seq: u64, message: Option<Envelope>) {
        let answer_seq = match message.as_ref().and_then(|m| m.body.as_ref()) {
            Some(Body::Result(r)) => Some(r.seq),
            Some(Body::Error(e)) => Some(e.seq),
            _ => None,
        };
        match (message, answer_seq) {
            (Some(m), Some(s)) if s == seq => self.handle(now_s, m),
            (None, _) => self.answer(now_s, seq, Err(ProtoError::Closed)),
            (Some(m), _) => self.answer(
                now_s,
                seq,
                Err(ProtoError::Protocol(format!(
                    "the stream of frame {seq} carried {:?}",
                    m.body
                ))),
            ),
        }
    }

    fn receive(&mut self, now_s: f64, message: Envelope) -> Result<(), ProtoError> {
        if let State::Closed(_) = self.state {
            return Ok(());
        }
        if self.state == State::AwaitingWelcome {
            let welcome = handshake::read_welcome(Some(message))?;
            self.state = State::Open(welcome.clone());
            self.events.push_back(ClientEvent::Welcomed(welcome));
            return Ok(());
        }
        match message.body {
            Some(Body::Result(r)) => self.answer(now_s, r.seq, Ok(r)),
            Some(Body::Error(e)) if e.seq != 0 => {
                let seq = e.seq;
                self.answer(now_s, seq, Err(ProtoError::remote(e)));
            }
            Some(Body::Error(e)) => return Err(ProtoError::remote(e)),
            Some(Body::Pong(p)) => {
                if let Some(sent) = self.pings.remove(&p.nonce) {
                    self.events.push_back(ClientEvent::Pong {
                        nonce: p.nonce,
                        round_trip_s: now_s - sent,
                    });
                }
            }
            Some(Body::Goodbye(g)) => {
                return Err(ProtoError::Remote {
                    code: Code::ShuttingDown,
                    message: g.reason,
                })
            }
            other => {
                return Err(ProtoError::Protocol(format!(
                    "unexpected message from the server: {other:?}"
                )))
            }
        }
        Ok(())
    }

    fn answer(&mut self, now_s: f64, seq: u64, answer: Answer) {
        match self.pending.remove(&seq) {
            Some(sent) => self.events.push_back(ClientEvent::Answer {
                seq,
                answer,
                round_trip_s: now_s - sent,
            }),
            None => self.stale_answers += 1,
        }
    }

    fn end(&mut self, reason: ProtoError) {
        if let State::Closed(_) = self.state {
            return;
        }
        for (seq, _) in std::mem::take(&mut self.pending) {
            self.events.push_back(ClientEvent::Answer {
                seq,
                answer: Err(ProtoError::Closed),
                round_trip_s: 0.0,
            });
        }
        self.pings.clear();
        self.events.push_back(ClientEvent::Closed(reason.clone()));
        self.state = State::Closed(reason);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::Error;
    use crate::wire::PROTOCOL_VERSION;

    fn welcomed() -> ClientSession {
        let (mut s, hello) = ClientSession::new("t", "phone", "oneplus-3t");
        assert!(matches!(hello.body, Some(Body::Hello(_))));
        s.handle(
            0.0,
            envelope(Body::Welcome(Welcome {
                protocol_version: PROTOCOL_VERSION,
                max_frame_bytes: 1000,
                ..Default::default()
            })),
        );
        assert!(matches!(s.poll_event(), Some(ClientEvent::Welcomed(_))));
        s
    }

    fn frame() -> Frame {
        Frame {
            h264: vec![0, 0, 0, 1, 0x65],
            ..Default::default()
        }
    }

    fn result(seq: u64) -> Envelope {
        envelope(Body::Result(FrameResult {
            seq,
            ..Default::default()
        }))
    }

    fn error(code: Code, seq: u64) -> Envelope {
        envelope(Body::Error(Error {
            code: code as i32,
            seq,
            message: "m".into(),
        }))
    }

    #[test]
    fn frames_are_numbered_from_one_and_answers_matched_out_of_order() {
        let mut s = welcomed();
        let (a, _) = s.send_frame(1.0, frame()).unwrap();
        let (b, env) = s.send_frame(1.5, frame()).unwrap();
        assert_eq!((a, b), (1, 2));
        let Some(Body::Frame(f)) = env.body else {
            panic!("a frame")
        };
        assert_eq!(f.seq, 2);
        assert_eq!(s.in_flight(), 2);
        s.handle(2.0, result(2));
        s.handle(2.5, result(1));
        let Some(ClientEvent::Answer {
            seq: 2,
            answer: Ok(_),
            round_trip_s,
        }) = s.poll_event()
        else {
            panic!("frame 2 answered first")
        };
        assert_eq!(round_trip_s, 0.5);
        let Some(ClientEvent::Answer {
            seq: 1,
            round_trip_s,
            ..
        }) = s.poll_event()
        else {
            panic!("then frame 1")
        };
        assert_eq!(round_trip_s, 1.5);
        assert_eq!(s.in_flight(), 0);
    }

    #[test]
    fn a_cancelled_frame_s_late_answer_is_ignored() {
        let mut s = welcomed();
        let (seq, _) = s.send_frame(0.0, frame()).unwrap();
        let cancel = s.cancel(seq).expect("in flight");
        assert_eq!(cancel.body, Some(Body::Cancel(Cancel { seq })));
        assert_eq!(s.cancel(seq), None, "cancelled once");
        s.handle(1.0, result(seq));
        assert_eq!(s.poll_event(), None);
        assert_eq!(s.stale_answers(), 1);
    }

    #[test]
    fn decode_failed_is_a_keyframe_request_and_other_frame_errors_are_not() {
        let mut s = welcomed();
        let (a, _) = s.send_frame(0.0, frame()).unwrap();
        let (b, _) = s.send_frame(0.0, frame()).unwrap();
        s.handle(0.1, error(Code::DecodeFailed, a));
        s.handle(0.1, error(Code::Dropped, b));
        let mut asks = Vec::new();
        while let Some(ClientEvent::Answer { answer: Err(e), .. }) = s.poll_event() {
            asks.push(e.asks_for_keyframe());
        }
        assert_eq!(asks, vec![true, false]);
        assert!(
            s.closed().is_none(),
            "a frame's error does not end the session"
        );
    }

    #[test]
    fn empty_and_oversized_frames_are_refused_before_sending() {
        let mut s = welcomed();
        assert!(s.send_frame(0.0, Frame::default()).is_err());
        let big = Frame {
            h264: vec![1; 1001],
            ..Default::default()
        };
        let err = s.send_frame(0.0, big).unwrap_err().to_string();
        assert!(err.contains("over the server's limit of 1000"), "{err}");
        assert_eq!(s.in_flight(), 0);
        // Nothing was numbered: the next frame is still 1.
        assert_eq!(s.send_frame(0.0, frame()).unwrap().0, 1);
    }

    #[test]
    fn pings_are_timed_and_late_pongs_ignored() {
        let mut s = welcomed();
        let (nonce, env) = s.ping(1.0, 100).unwrap();
        let Some(Body::Ping(p)) = env.body else {
            panic!("a ping")
        };
        assert_eq!(p.padding.len(), 100);
        let pong = |nonce| {
            envelope(Body::Pong(crate::messages::Pong {
                nonce,
                client_time_us: 0,
            }))
        };
        s.handle(1.25, pong(nonce));
        assert_eq!(
            s.poll_event(),
            Some(ClientEvent::Pong {
                nonce,
                round_trip_s: 0.25
            })
        );
        let (late, _) = s.ping(2.0, 0).unwrap();
        s.forget_ping(late);
        s.handle(9.0, pong(late));
        assert_eq!(s.poll_event(), None);
        assert!(s.ping(0.0, MAX_PING_PADDING_BYTES + 1).is_err());
    }

    #[test]
    fn goodbye_session_error_and_transport_end_fail_what_is_in_flight() {
        for end in [
            envelope(Body::Goodbye(Goodbye {
                reason: "maintenance".into(),
            })),
            error(Code::BadRequest, 0),
            envelope(Body::Hello(Default::default())),
        ] {
            let mut s = welcomed();
            let (seq, _) = s.send_frame(0.0, frame()).unwrap();
            s.handle(1.0, end);
            assert_eq!(
                s.poll_event(),
                Some(ClientEvent::Answer {
                    seq,
                    answer: Err(ProtoError::Closed),
                    round_trip_s: 0.0
                })
            );
            assert!(matches!(s.poll_event(), Some(ClientEvent::Closed(_))));
            assert_eq!(s.send_frame(2.0, frame()).unwrap_err(), ProtoError::Closed);
        }
        let mut s = welcomed();
        s.send_frame(0.0, frame()).unwrap();
        s.handle_end(ProtoError::Closed);
        assert_eq!(s.in_flight(), 0);
        assert!(s.closed().is_some());
    }

    #[test]
    fn frames_wait_for_the_welcome_and_a_refusal_closes() {
        let (mut s, _) = ClientSession::new("bad", "phone", "x");
        assert!(matches!(
            s.send_frame(0.0, frame()),
            Err(ProtoError::Protocol(_))
        ));
        s.handle(0.0, error(Code::Unauthorized, 0));
        assert_eq!(
            s.poll_event(),
            Some(ClientEvent::Closed(ProtoError::Refused("m".into())))
        );
    }

    #[test]
    fn a_stream_answer_must_be_for_its_frame() {
        let mut s = welcomed();
        let (a, _) = s.send_frame(0.0, frame()).unwrap();
        let (b, _) = s.send_frame(0.0, frame()).unwrap();
        s.handle_answer(0.5, a, Some(result(b)));
        assert!(matches!(
            s.poll_event(),
            Some(ClientEvent::Answer {
                seq,
                answer: Err(ProtoError::Protocol(_)),
                ..
            }) if seq == a
        ));
        s.handle_answer(0.5, b, None);
        assert!(matches!(
            s.poll_event(),
            Some(ClientEvent::Answer {
                answer: Err(ProtoError::Closed),
                ..
            })
        ));
        assert!(
            s.closed().is_none(),
            "one stream's trouble is that frame's only"
        );
    }
}
