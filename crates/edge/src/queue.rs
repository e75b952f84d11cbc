//! The inference queue shared by all sessions: bounded, stalest-first dropping, batched pops.
//!
//! Plain threads and a condition variable: the consumer is the inference thread, which must not
//! sit on an async runtime while ONNX Runtime computes.

use deepoffload_core::{Detection, RgbBuffer};
use std::collections::VecDeque;
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// What became of a queued frame.
#[derive(Debug)]
pub enum Outcome {
    Done {
        detections: Vec<Detection>,
        queue: Duration,
        inference: Duration,
        batch: usize,
    },
    /// Pushed out by newer frames while the server was overloaded.
    Dropped,
    Cancelled,
    Failed(String),
}

/// One decoded frame waiting for the detector.
#[derive(Debug)]
pub struct Job {
    pub session: u64,
    pub seq: u64,
    pub image: RgbBuffer,
    pub enqueued: Instant,
    pub reply: oneshot::Sender<Outcome>,
}

#[derive(Debug, Default)]
struct State {
    jobs: VecDeque<Job>,
    closed: bool,
}

/// Bounded FIFO of jobs.
#[derive(Debug)]
pub struct InferenceQueue {
    state: Mutex<State>,
    ready: Condvar,
    capacity: usize,
}

impl InferenceQueue {
    pub fn new(capacity: usize) -> Self {
        Self {
            state: Mutex::default(),
            ready: Condvar::new(),
            capacity: capacity.max(1),
        }
    }

    /// Adds a job. When the queue is full the stalest job is pushed out and told so; a closed
    /// queue refuses the job the same way.
    pub fn push(&self, job: Job) -> usize {
        let mut state = self.state.lock().expect("queue lock");
        if state.closed {
            let _ = job.reply.send(Outcome::Dropped);
            return 0;
        }
        let mut dropped = 0;
        while state.jobs.len() >= self.capacity {
            if let Some(stale) = state.jobs.pop_front() {
                let _ = stale.reply.send(Outcome::Dropped);
                dropped += 1;
            }
        }
        state.jobs.push_back(job);
        self.ready.notify_one();
        dropped
    }

    /// Removes a job whose result is no longer wanted.
    pub fn cancel(&self, session: u64, seq: u64) -> bool {
        let mut state = self.state.lock().expect("queue lock");
        match state
            .jobs
            .iter()
            .position(|j| j.session == session && j.seq == seq)
        {
            Some(i) => {
                let job = state.jobs.remove(i).expect("index in range");
                let _ = job.reply.send(Outcome::Cancelled);
                true
            }
            None => false,
        }
    }

    pub fn len(&self) -> usize {
        self.state.lock().expect("queue lock").jobs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Blocks until a job is there, then waits up to `max_wait` for up to `max_batch` of them.
    /// Returns an empty batch once the queue is closed and drained.
    pub fn pop_batch(&self, max_batch: usize, max_wait: Duration) -> Vec<Job> {
        let mut state = self.state.lock().expect("queue lock");
        loop {
            while state.jobs.is_empty() {
                if state.closed {
                    return Vec::new();
                }
                state = self.ready.wait(state).expect("queue lock");
            }
            let deadline = Instant::now() + max_wait;
            while state.jobs.len() < max_batch && !state.closed {
                let now = Instant::now();
                if now >= deadline {
                    break;
                }
                state = self
                    .ready
                    .wait_timeout(state, deadline - now)
                    .expect("queue lock")
                    .0;
            }
            // Every job may have been cancelled while the batch waited for company: an empty
            // batch means "closed" to the consumer, so wait for work again instead.
            if !state.jobs.is_empty() || state.closed {
                let n = state.jobs.len().min(max_batch.max(1));
                return state.jobs.drain(..n).collect();
            }
        }
    }

    /// Stops accepting jobs; the consumer drains what is left and then sees an empty batch.
    pub fn close(&self) {
        self.state.lock().expect("queue lock").closed = true;
        self.ready.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(seq: u64) -> (Job, oneshot::Receiver<Outcome>) {
        let (tx, rx) = oneshot::channel();
        let job = Job {
            session: 1,
            seq,
            image: RgbBuffer::new(2, 2).unwrap(),
            enqueued: Instant::now(),
            reply: tx,
        };
        (job, rx)
    }

    #[test]
    fn full_queue_drops_the_stalest() {
        let q = InferenceQueue::new(2);
        let (a, mut ra) = job(1);
        let (b, _rb) = job(2);
        let (c, _rc) = job(3);
        assert_eq!(q.push(a) + q.push(b), 0);
        assert_eq!(q.push(c), 1);
        assert!(matches!(ra.try_recv(), Ok(Outcome::Dropped)));
        let batch = q.pop_batch(8, Duration::ZERO);
        assert_eq!(batch.iter().map(|j| j.seq).collect::<Vec<_>>(), vec![2, 3]);
    }

    #[test]
    fn cancel_and_close() {
        let q = InferenceQueue::new(4);
        let (a, mut ra) = job(1);
        q.push(a);
        assert!(q.cancel(1, 1));
        assert!(matches!(ra.try_recv(), Ok(Outcome::Cancelled)));
        assert!(!q.cancel(1, 1));
        q.close();
        assert!(q.pop_batch(4, Duration::from_secs(10)).is_empty());
        let (b, mut rb) = job(2);
        q.push(b);
        assert!(matches!(rb.try_recv(), Ok(Outcome::Dropped)));
    }

    #[test]
    fn a_cancellation_while_the_batch_waits_does_not_stop_the_consumer() {
        let q = std::sync::Arc::new(InferenceQueue::new(8));
        let (a, _ra) = job(1);
        q.push(a);
        let q2 = q.clone();
        let consumer = std::thread::spawn(move || q2.pop_batch(4, Duration::from_millis(200)));
        // The consumer now waits for company; the client gives up on its only job.
        std::thread::sleep(Duration::from_millis(50));
        assert!(q.cancel(1, 1));
        std::thread::sleep(Duration::from_millis(250));
        let (b, _rb) = job(2);
        q.push(b);
        let batch = consumer.join().unwrap();
        assert_eq!(
            batch.iter().map(|j| j.seq).collect::<Vec<_>>(),
            vec![2],
            "an empty batch would have ended the inference thread"
        );
    }

    #[test]
    fn batches_wait_briefly_for_company() {
        let q = std::sync::Arc::new(InferenceQueue::new(8));
        let (a, _ra) = job(1);
        q.push(a);
        let q2 = q.clone();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(5));
            let (b, rb) = job(2);
            q2.push(b);
            rb
        });
        let batch = q.pop_batch(2, Duration::from_millis(500));
        let _rb = t.join().unwrap();
        assert_eq!(batch.len(), 2);
    }
}
