//! The way to the edge server: the current session if there is one, reconnection with backoff
//! in the background when there is not, and optionally an in-process emulated link.

use deepoffload_net::link::{LinkSpec, Relay};
use deepoffload_net::{ConnectOptions, Connection, NetError};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

/// Reconnection delays: short at first (a restart is noticed quickly), then every 2 s — a
/// failed attempt costs one connection try, nothing on the frame path.
const BACKOFF: &[Duration] = &[
    Duration::from_millis(250),
    Duration::from_millis(500),
    Duration::from_secs(1),
    Duration::from_secs(2),
];

/// A session and the number of the connection it belongs to (changes on every reconnect).
#[derive(Clone)]
pub struct Session {
    pub connection: Arc<Connection>,
    pub generation: u64,
}

struct State {
    session: Option<Session>,
    reconnecting: bool,
}

/// Keeps a session to one server.
pub struct Remote {
    options: ConnectOptions,
    state: Arc<Mutex<State>>,
    wake: Arc<Notify>,
    generations: Arc<AtomicU64>,
    _relay: Option<Relay>,
    /// The link, when one is emulated.
    pub link: Option<LinkSpec>,
}

impl Remote {
    /// Prepares the way to the server (through an in-process emulated link when `link` is
    /// given) and tries to connect once; a failure is not an error — frames run locally until
    /// a reconnection succeeds.
    pub async fn start(
        mut options: ConnectOptions,
        link: Option<LinkSpec>,
    ) -> Result<Self, NetError> {
        let relay = match &link {
            Some(spec) => {
                let relay =
                    Relay::start(([127, 0, 0, 1], 0).into(), options.addr, spec.clone(), true)
                        .await?;
                options.addr = relay.local_addr();
                Some(relay)
            }
            None => None,
        };
        let remote = Self {
            options,
            state: Arc::new(Mutex::new(State {
                session: None,
                reconnecting: false,
            })),
            wake: Arc::new(Notify::new()),
            generations: Arc::new(AtomicU64::new(0)),
            _relay: relay,
            link,
        };
        match Connection::connect(&remote.options).await {
            Ok(c) => remote.install(c),
            Err(e) => {
                tracing::warn!(
                    "edge server {} not reachable ({e}); analysing locally and retrying",
                    remote.options.addr
                );
                remote.reconnect_in_background();
            }
        }
        Ok(remote)
    }

    fn install(&self, connection: Connection) {
        let generation = self.generations.fetch_add(1, Ordering::SeqCst) + 1;
        let welcome = connection.welcome();
        tracing::info!(
            "connected to {} ({} at {}, session {})",
            self.options.addr,
            welcome.model,
            welcome.input_size,
            welcome.session_id
        );
        self.state.lock().expect("remote state").session = Some(Session {
            connection: Arc::new(connection),
            generation,
        });
    }

    /// Reconnections so far.
    pub fn reconnects(&self) -> u64 {
        self.generations.load(Ordering::SeqCst).saturating_sub(1)
    }

    /// The live session, if any; a dead one starts a reconnection and gives `None`.
    pub fn current(&self) -> Option<Session> {
        let mut state = self.state.lock().expect("remote state");
        match &state.session {
            Some(s) if !s.connection.is_closed() => Some(s.clone()),
            Some(_) => {
                state.session = None;
                drop(state);
                tracing::warn!("lost the edge server; analysing locally and reconnecting");
                self.reconnect_in_background();
                None
            }
            None => {
                drop(state);
                self.reconnect_in_background();
                None
            }
        }
    }

    /// Reports that the session misbehaved (e.g. a request failed at the transport level).
    pub fn mark_broken(&self, generation: u64) {
        let mut state = self.state.lock().expect("remote state");
        if state
            .session
            .as_ref()
            .is_some_and(|s| s.generation == generation && s.connection.is_closed())
        {
            state.session = None;
        }
    }

    fn reconnect_in_background(&self) {
        {
            let mut state = self.state.lock().expect("remote state");
            if state.reconnecting || state.session.is_some() {
                return;
            }
            state.reconnecting = true;
        }
        let (options, state, generations) = (
            self.options.clone(),
            self.state.clone(),
            self.generations.clone(),
        );
        let wake = self.wake.clone();
        tokio::spawn(async move {
            let mut attempt = 0;
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(BACKOFF[attempt.min(BACKOFF.len() - 1)]) => {}
                    _ = wake.notified() => {}
                }
                match Connection::connect(&options).await {
                    Ok(connection) => {
                        let generation = generations.fetch_add(1, Ordering::SeqCst) + 1;
                        tracing::info!(
                            "reconnected to {} (session {})",
                            options.addr,
                            connection.welcome().session_id
                        );
                        let mut s = state.lock().expect("remote state");
                        s.session = Some(Session {
                            connection: Arc::new(connection),
                            generation,
                        });
                        s.reconnecting = false;
                        return;
                    }
                    Err(e) => {
                        tracing::debug!(
                            "reconnect attempt {} to {} failed: {e}",
                            attempt + 1,
                            options.addr
                        );
                        attempt += 1;
                    }
                }
            }
        });
    }
}
