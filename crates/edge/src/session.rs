//! One client session: frames in sequence order, H.264 decoding with the session's own decoder,
//! handing decoded frames to the shared inference queue, and answering each frame.

use crate::queue::{Job, Outcome};
use crate::Shared;
use deepoffload_net::proto::{
    envelope::Body, error::Code, Detection as WireDetection, Frame, Goodbye, Result as WireResult,
    ServerTimes,
};
use deepoffload_net::server::{Event, Reply, Session};
use deepoffload_net::wire::envelope;
use deepoffload_proto::error_message as error;
use deepoffload_video::H264Decoder;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinSet;

/// How long in-flight frames may take to finish when the session ends.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

fn micros(d: Duration) -> u32 {
    d.as_micros().min(u32::MAX as u128) as u32
}

struct Pending {
    frame: Frame,
    reply: Reply,
    received: Instant,
}

/// Runs a session to its end. Frames come from the session already in sequence order (the
/// protocol's reorder buffer); this decodes them in that order with the session's own decoder.
pub async fn run(
    mut session: Session,
    id: u64,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    let peer = session.peer;
    let mut decoder = match H264Decoder::new() {
        Ok(d) => Some(d),
        Err(e) => {
            tracing::error!(session = id, %peer, "cannot create a decoder: {e}");
            return;
        }
    };
    let mut replies = JoinSet::new();
    let mut shutting_down = false;
    let end_reason = loop {
        tokio::select! {
            event = session.next() => match event {
                None => break "client disconnected".to_string(),
                Some(Err(e)) => {
                    // The session has told the client (BAD_REQUEST) where it could.
                    shared.metrics.frame("bad_request");
                    break format!("protocol error: {e}");
                }
                Some(Ok(Event::Goodbye)) => break "client said goodbye".to_string(),
                Some(Ok(Event::Cancel(seq))) => {
                    shared.queue.cancel(id, seq);
                }
                Some(Ok(Event::Refused { reply, error })) => {
                    shared.metrics.frame("bad_request");
                    let _ = reply.send(error).await;
                }
                Some(Ok(Event::Frame { frame, reply })) => {
                    let pending = Pending { frame, reply, received: Instant::now() };
                    decoder = handle_frame(pending, id, decoder, &shared, &mut replies).await;
                }
            },
            _ = shutdown.changed() => {
                shutting_down = true;
                break "server shutting down".to_string();
            }
        }
        // Reap finished reply tasks so the set stays small.
        while replies.try_join_next().is_some() {}
    };
    tracing::info!(session = id, %peer, "session ended: {end_reason}");
    // Frames already accepted are answered before the goodbye.
    let _ = tokio::time::timeout(DRAIN_TIMEOUT, async {
        while replies.join_next().await.is_some() {}
    })
    .await;
    if shutting_down {
        let goodbye = Goodbye {
            reason: "server shutting down".into(),
        };
        session.send_session(envelope(Body::Goodbye(goodbye))).await;
    }
    shared.metrics.sessions.dec();
}

/// Decodes one frame (in order), queues it for the detector and spawns its answer.
async fn handle_frame(
    pending: Pending,
    session: u64,
    decoder: Option<H264Decoder>,
    shared: &Arc<Shared>,
    replies: &mut JoinSet<()>,
) -> Option<H264Decoder> {
    let Pending {
        frame,
        mut reply,
        received,
    } = pending;
    let seq = frame.seq;
    let Some(mut decoder) = decoder else {
        shared.metrics.frame("failed");
        let _ = reply
            .send(error(
                Code::Internal,
                seq,
                "this session's decoder failed; reconnect",
            ))
            .await;
        return None;
    };
    let data = frame.h264;
    // Decoding is CPU work: keep it off the async workers. The decoder travels with the task
    // and comes back, so frames of one session are decoded strictly in order.
    let (decoder, decoded, decode_time) = match tokio::task::spawn_blocking(move || {
        let start = Instant::now();
        let result = decoder.decode(&data);
        (decoder, result, start.elapsed())
    })
    .await
    {
        Ok(v) => v,
        Err(e) => {
            tracing::error!(session, "decoder task failed: {e}");
            return None;
        }
    };
    shared
        .metrics
        .decode_seconds
        .observe(decode_time.as_secs_f64());
    let image = match decoded {
        Ok(Some(image)) => image,
        Ok(None) => {
            shared.metrics.frame("decode_failed");
            let _ = reply
                .send(error(
                    Code::DecodeFailed,
                    seq,
                    "the data completed no picture; send a key frame",
                ))
                .await;
            return Some(decoder);
        }
        Err(e) => {
            shared.metrics.frame("decode_failed");
            let _ = reply
                .send(error(
                    Code::DecodeFailed,
                    seq,
                    format!("{e}; send a key frame"),
                ))
                .await;
            return Some(decoder);
        }
    };
    let (tx, rx) = oneshot::channel();
    let dropped = shared.queue.push(Job {
        session,
        seq,
        image,
        enqueued: Instant::now(),
        reply: tx,
    });
    for _ in 0..dropped {
        shared.metrics.frame("dropped");
    }
    shared.metrics.queue_depth.set(shared.queue.len() as i64);
    let shared = shared.clone();
    let (frame_index, capture_time_us) = (frame.frame_index, frame.capture_time_us);
    replies.spawn(async move {
        let outcome = tokio::select! {
            outcome = rx => outcome.unwrap_or(Outcome::Failed("the detector stopped".into())),
            _ = reply.cancelled() => {
                shared.queue.cancel(session, seq);
                shared.metrics.frame("cancelled");
                return;
            }
        };
        let message = match outcome {
            Outcome::Done {
                detections,
                queue,
                inference,
                batch,
            } => {
                shared.metrics.frame("ok");
                shared.metrics.queue_seconds.observe(queue.as_secs_f64());
                let total = received.elapsed();
                envelope(Body::Result(WireResult {
                    seq,
                    frame_index,
                    capture_time_us,
                    detections: detections
                        .into_iter()
                        .map(|d| WireDetection {
                            class_id: d.class_id,
                            score: d.score,
                            objectness: d.objectness,
                            x1: d.bbox.x1,
                            y1: d.bbox.y1,
                            x2: d.bbox.x2,
                            y2: d.bbox.y2,
                        })
                        .collect(),
                    times: Some(ServerTimes {
                        decode_us: micros(decode_time),
                        queue_us: micros(queue),
                        inference_us: micros(inference),
                        batch_size: batch as u32,
                        total_us: micros(total),
                    }),
                }))
            }
            Outcome::Dropped => error(
                Code::Dropped,
                seq,
                "dropped: the server is overloaded and newer frames are waiting",
            ),
            Outcome::Cancelled => {
                shared.metrics.frame("cancelled");
                return;
            }
            Outcome::Failed(message) => {
                shared.metrics.frame("failed");
                error(Code::Internal, seq, message)
            }
        };
        let _ = reply.send(message).await;
    });
    Some(decoder)
}
