//! The edge's side of an admitted session as a state machine: frames come out in sequence
//! order (one H.264 decoder per session needs them so), however the transport delivered them —
//! QUIC streams overtake one another, a client may abandon a frame. A gap is waited for
//! [`GAP_TIMEOUT_S`], then skipped; a repeated or old sequence number, or a frame without data,
//! is refused on that frame's own reply path; a cancelled frame that is still held is dropped
//! unanswered; pings are answered; a goodbye or a broken message ends the session.
//!
//! `R` is whatever the transport answers a frame through (a sender for TCP, the frame's own
//! stream for QUIC); the session hands it back with the frame.

use crate::messages::{envelope::Body, error::Code, Envelope, Frame, Pong};
use crate::wire::envelope;
use crate::{error_message, ProtoError};
use std::collections::{BTreeMap, VecDeque};

/// How long a gap in the frame sequence is waited for before it is skipped.
pub const GAP_TIMEOUT_S: f64 = 0.1;
/// Most frames held for reordering before the session is considered broken.
pub const MAX_REORDER: usize = 64;

/// What the edge has to do.
#[derive(Debug)]
pub enum ServerEvent<R> {
    /// The next frame in sequence order: decode it, detect, answer on `reply`.
    Frame { frame: Frame, reply: R },
    /// Answer `reply` with `error` (the frame is refused; nothing else happens to it).
    Refuse { reply: R, error: Envelope },
    /// The client no longer wants frame `seq`: take it out of the detector's queue if it is
    /// there, and send nothing for it.
    Cancel(u64),
    /// Send on the session's own stream (a pong).
    Transmit(Envelope),
    /// The session is over: send `farewell` when there is one, then close. `reason` is
    /// [`ProtoError::Closed`] for a goodbye.
    Closed {
        reason: ProtoError,
        farewell: Option<Envelope>,
    },
}

#[derive(Debug)]
enum Held<R> {
    Frame(Frame, R),
    /// Refused or cancelled before its turn: its place in the sequence is taken, nothing runs.
    Done,
}

/// One admitted session, on the edge.
#[derive(Debug)]
pub struct ServerSession<R> {
    next_seq: u64,
    held: BTreeMap<u64, Held<R>>,
    /// When the frame at the head of the sequence began to be missing.
    gap_since: Option<f64>,
    events: VecDeque<ServerEvent<R>>,
    closed: bool,
    skipped: u64,
}

impl<R> Default for ServerSession<R> {
    fn default() -> Self {
        Self::new()
    }
}

impl<R> ServerSession<R> {
    pub fn new() -> Self {
        Self {
            next_seq: 1,
            held: BTreeMap::new(),
            gap_since: None,
            events: VecDeque::new(),
            closed: false,
            skipped: 0,
        }
    }

    pub fn poll_event(&mut self) -> Option<ServerEvent<R>> {
        self.events.pop_front()
    }

    /// When [`ServerSession::handle_timeout`] is next due (a gap's deadline).
    pub fn poll_timeout(&self) -> Option<f64> {
        self.gap_since.map(|t| t + GAP_TIMEOUT_S)
    }

    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Frames held back waiting for an earlier one.
    pub fn held(&self) -> usize {
        self.held.len()
    }

    /// Sequence numbers given up on after their gap timed out.
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    /// A message from the client; `reply` makes the answer path if it is a frame.
    pub fn handle(&mut self, now_s: f64, message: Envelope, reply: impl FnOnce() -> R) {
        if self.closed {
            return;
        }
        match message.body {
            Some(Body::Frame(frame)) => self.frame(now_s, frame, reply()),
            Some(Body::Cancel(c)) => {
                if let Some(held @ Held::Frame(..)) = self.held.get_mut(&c.seq) {
                    *held = Held::Done;
                }
                self.events.push_back(ServerEvent::Cancel(c.seq));
                self.release(now_s);
            }
            Some(Body::Ping(p)) => {
                self.events
                    .push_back(ServerEvent::Transmit(envelope(Body::Pong(Pong {
                        nonce: p.nonce,
                        client_time_us: p.client_time_us,
                    }))))
            }
            Some(Body::Goodbye(_)) => self.close(ProtoError::Closed, None),
            other => {
                let what = format!("unexpected message from a client: {other:?}");
                self.violation(what);
            }
        }
    }

    /// The transport could not read the client's next message (malformed, over a limit).
    pub fn handle_broken(&mut self, error: ProtoError) {
        if !self.closed {
            self.violation(error.to_string());
        }
    }

    /// Time passed: a gap that has waited long enough is skipped.
    pub fn handle_timeout(&mut self, now_s: f64) {
        let due = self.poll_timeout().is_some_and(|t| now_s >= t);
        if !due || self.closed {
            return;
        }
        if let Some(&first) = self.held.keys().next() {
            self.skipped += first - self.next_seq;
            self.next_seq = first;
        }
        self.gap_since = None;
        self.release(now_s);
    }

    fn frame(&mut self, now_s: f64, frame: Frame, reply: R) {
        let seq = frame.seq;
        if seq < self.next_seq || self.held.contains_key(&seq) {
            let error = error_message(
                Code::BadRequest,
                seq,
                format!(
                    "sequence number {seq} is repeated or too old (next expected {})",
                    self.next_seq
                ),
            );
            self.events.push_back(ServerEvent::Refuse { reply, error });
            return;
        }
        if frame.h264.is_empty() {
            let error = error_message(Code::BadRequest, seq, "frame carries no H.264 data");
            self.events.push_back(ServerEvent::Refuse { reply, error });
            self.held.insert(seq, Held::Done);
        } else {
            self.held.insert(seq, Held::Frame(frame, reply));
        }
        if self.held.len() > MAX_REORDER {
            self.violation(format!("more than {MAX_REORDER} frames out of order"));
            return;
        }
        self.release(now_s);
    }

    /// Hands out every frame that is next in sequence; a gap left behind starts its clock.
    fn release(&mut self, now_s: f64) {
        let mut moved = false;
        while let Some(held) = self.held.remove(&self.next_seq) {
            self.next_seq += 1;
            moved = true;
            if let Held::Frame(frame, reply) = held {
                self.events.push_back(ServerEvent::Frame { frame, reply });
            }
        }
        if self.held.is_empty() {
            self.gap_since = None;
        } else if moved || self.gap_since.is_none() {
            self.gap_since = Some(now_s);
        }
    }

    fn violation(&mut self, what: String) {
        let farewell = error_message(Code::BadRequest, 0, what.clone());
        self.close(ProtoError::Protocol(what), Some(farewell));
    }

    fn close(&mut self, reason: ProtoError, farewell: Option<Envelope>) {
        self.closed = true;
        self.held.clear();
        self.gap_since = None;
        self.events
            .push_back(ServerEvent::Closed { reason, farewell });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::{Cancel, Goodbye, Ping};

    /// Frame `seq` of a session, its reply path named by its seq.
    fn frame(s: &mut ServerSession<u64>, now: f64, seq: u64) {
        let f = Frame {
            seq,
            h264: vec![0, 0, 0, 1, 0x65],
            ..Default::default()
        };
        s.handle(now, envelope(Body::Frame(f)), || seq);
    }

    /// What the session says, in short: frames handed out, refused, cancelled.
    fn drain(s: &mut ServerSession<u64>) -> Vec<String> {
        std::iter::from_fn(|| s.poll_event())
            .map(|e| match e {
                ServerEvent::Frame { frame, reply } => {
                    assert_eq!(frame.seq, reply);
                    format!("frame {reply}")
                }
                ServerEvent::Refuse { reply, .. } => format!("refuse {reply}"),
                ServerEvent::Cancel(seq) => format!("cancel {seq}"),
                ServerEvent::Transmit(_) => "transmit".into(),
                ServerEvent::Closed { reason, farewell } => {
                    format!("closed {} {}", reason, farewell.is_some())
                }
            })
            .collect()
    }

    #[test]
    fn overtaking_frames_come_out_in_sequence() {
        let mut s = ServerSession::new();
        frame(&mut s, 0.0, 2);
        frame(&mut s, 0.0, 3);
        assert!(drain(&mut s).is_empty());
        assert_eq!(s.poll_timeout(), Some(GAP_TIMEOUT_S));
        frame(&mut s, 0.05, 1);
        assert_eq!(drain(&mut s), ["frame 1", "frame 2", "frame 3"]);
        assert_eq!(s.poll_timeout(), None);
    }

    #[test]
    fn a_gap_is_waited_for_exactly_the_timeout_then_skipped() {
        let mut s = ServerSession::new();
        frame(&mut s, 0.0, 1);
        frame(&mut s, 1.0, 3);
        assert_eq!(drain(&mut s), ["frame 1"]);
        assert_eq!(s.poll_timeout(), Some(1.0 + GAP_TIMEOUT_S));
        s.handle_timeout(1.0 + GAP_TIMEOUT_S - 1e-9);
        assert!(drain(&mut s).is_empty(), "not yet");
        s.handle_timeout(1.0 + GAP_TIMEOUT_S);
        assert_eq!(drain(&mut s), ["frame 3"]);
        assert_eq!(s.skipped(), 1);
        // The skipped frame, arriving after all, is too old.
        frame(&mut s, 1.2, 2);
        assert_eq!(drain(&mut s), ["refuse 2"]);
    }

    #[test]
    fn each_gap_gets_its_own_clock() {
        let mut s = ServerSession::new();
        frame(&mut s, 0.0, 2);
        frame(&mut s, 0.0, 4);
        frame(&mut s, 0.09, 1);
        assert_eq!(drain(&mut s), ["frame 1", "frame 2"]);
        // Frame 3's gap began when frame 2 went out, not when frame 2 was missing.
        assert_eq!(s.poll_timeout(), Some(0.09 + GAP_TIMEOUT_S));
    }

    #[test]
    fn repeated_and_empty_frames_are_refused_on_their_own_path() {
        let mut s = ServerSession::new();
        frame(&mut s, 0.0, 1);
        frame(&mut s, 0.0, 1);
        let empty = Frame {
            seq: 2,
            ..Default::default()
        };
        s.handle(0.0, envelope(Body::Frame(empty)), || 2);
        frame(&mut s, 0.0, 3);
        assert_eq!(
            drain(&mut s),
            ["frame 1", "refuse 1", "refuse 2", "frame 3"],
            "an empty frame takes its place in the sequence: no gap wait"
        );
    }

    #[test]
    fn a_held_frame_that_is_cancelled_never_comes_out() {
        let mut s = ServerSession::new();
        frame(&mut s, 0.0, 2);
        frame(&mut s, 0.0, 3);
        s.handle(0.0, envelope(Body::Cancel(Cancel { seq: 2 })), || 0);
        frame(&mut s, 0.01, 1);
        assert_eq!(drain(&mut s), ["cancel 2", "frame 1", "frame 3"]);
    }

    #[test]
    fn pings_are_answered_and_goodbye_closes() {
        let mut s = ServerSession::<u64>::new();
        let ping = Ping {
            nonce: 9,
            client_time_us: 5,
            padding: vec![0; 10],
        };
        s.handle(0.0, envelope(Body::Ping(ping)), || 0);
        let Some(ServerEvent::Transmit(pong)) = s.poll_event() else {
            panic!("a pong")
        };
        assert_eq!(
            pong.body,
            Some(Body::Pong(Pong {
                nonce: 9,
                client_time_us: 5
            }))
        );
        s.handle(
            0.0,
            envelope(Body::Goodbye(Goodbye {
                reason: "done".into(),
            })),
            || 0,
        );
        assert_eq!(drain(&mut s), ["closed connection closed false"]);
        frame(&mut s, 0.0, 1);
        assert!(drain(&mut s).is_empty(), "nothing after the end");
    }

    #[test]
    fn too_many_held_frames_or_a_wrong_message_end_the_session_with_an_error() {
        let mut s = ServerSession::new();
        for seq in 2..=(MAX_REORDER as u64 + 2) {
            frame(&mut s, 0.0, seq);
        }
        let said = drain(&mut s);
        assert_eq!(said.len(), 1);
        assert!(
            said[0].contains("more than 64 frames out of order true"),
            "{said:?}"
        );
        assert_eq!(s.held(), 0);
        let mut s = ServerSession::<u64>::new();
        s.handle(0.0, envelope(Body::Hello(Default::default())), || 0);
        assert!(drain(&mut s)[0].starts_with("closed protocol error: unexpected message"));
        let mut s = ServerSession::<u64>::new();
        s.handle_broken(ProtoError::Protocol("undecodable".into()));
        assert!(s.is_closed());
    }
}
