//! Server metrics in the Prometheus text format.

use prometheus::{
    Encoder, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
    TextEncoder,
};

/// Everything `/metrics` reports.
pub struct Metrics {
    registry: Registry,
    pub sessions: IntGauge,
    pub sessions_total: IntCounter,
    pub frames: IntCounterVec,
    pub queue_depth: IntGauge,
    pub decode_seconds: Histogram,
    pub queue_seconds: Histogram,
    pub inference_seconds: Histogram,
    pub batch_size: Histogram,
}

fn latency_buckets() -> Vec<f64> {
    vec![
        0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0,
    ]
}

impl Metrics {
    pub fn new(max_batch: usize) -> Self {
        let registry =
            Registry::new_custom(Some("deepoffload".into()), None).expect("valid prefix");
        let sessions = IntGauge::new("sessions", "Client sessions open now").expect("metric");
        let sessions_total =
            IntCounter::new("sessions_total", "Client sessions admitted since start")
                .expect("metric");
        let frames = IntCounterVec::new(
            Opts::new("frames_total", "Frames received, by outcome (ok, dropped, cancelled, decode_failed, failed, bad_request)"),
            &["outcome"],
        )
        .expect("metric");
        let queue_depth = IntGauge::new("queue_depth", "Decoded frames waiting for the detector")
            .expect("metric");
        let hist = |name: &str, help: &str, buckets: Vec<f64>| {
            Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets)).expect("metric")
        };
        let decode_seconds = hist(
            "decode_seconds",
            "H.264 decode time per frame",
            latency_buckets(),
        );
        let queue_seconds = hist(
            "queue_seconds",
            "Time a decoded frame waited for the detector",
            latency_buckets(),
        );
        let inference_seconds = hist(
            "inference_seconds",
            "Detector time per batch",
            latency_buckets(),
        );
        let batch_size = hist(
            "batch_size",
            "Frames per detector batch",
            (1..=max_batch.max(1)).map(|b| b as f64).collect(),
        );
        for c in [
            Box::new(sessions.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(sessions_total.clone()),
            Box::new(frames.clone()),
            Box::new(queue_depth.clone()),
            Box::new(decode_seconds.clone()),
            Box::new(queue_seconds.clone()),
            Box::new(inference_seconds.clone()),
            Box::new(batch_size.clone()),
        ] {
            registry.register(c).expect("unique metric names");
        }
        Self {
            registry,
            sessions,
            sessions_total,
            frames,
            queue_depth,
            decode_seconds,
            queue_seconds,
            inference_seconds,
            batch_size,
        }
    }

    pub fn frame(&self, outcome: &str) {
        self.frames.with_label_values(&[outcome]).inc();
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut buf)
            .expect("text encoding");
        String::from_utf8(buf).expect("prometheus text is UTF-8")
    }
}
