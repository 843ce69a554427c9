//! Runs the daemon: builds the shared environment, starts the transport,
//! the supervision tree and the HTTP API, waits for the shutdown signal
//! (or an escalation), then stops everything in order within a deadline:
//! the one owner of the stop sequence.

use crate::api::{self, ApiState};
use crate::exit::Exit;
use crate::settings::Settings;
use actix::Addr;
use actix_web::dev::ServerHandle;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};
use villas_actors::ic::actor::{Retire, Shared, Stopping};
use villas_actors::ic::directory::Directory;
use villas_actors::kinds::KindRegistry;
use villas_actors::placement::PendingComponents;
use villas_actors::ports::{BusHandle, Intake, Publisher};
use villas_actors::root::Root;
use villas_sdk::protocol::HostInfo;

/// The controller version published in every status.
pub(crate) const VERSION: &str = env!("CARGO_PKG_VERSION");

/// How long the ordered stop may take before the daemon exits anyway.
pub(crate) const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(10);

/// Why the daemon could not run.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DaemonError {
    /// The HTTP API could not bind its address.
    #[error("cannot serve the HTTP API on {addr}: {source}")]
    ApiBind {
        /// The address.
        addr: std::net::SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// A configured component could not be started.
    #[error("cannot start the components: {0}")]
    Components(villas_sdk::ErrorInfo),
    /// Supervision gave up (a manager's restart budget is spent): the
    /// daemon stopped in order and exits with [`Exit::Escalated`].
    #[error("supervision escalated: {0}")]
    Escalated(String),
    /// The state directory cannot be used.
    #[error("state directory: {0}")]
    State(#[from] villas_actors::store::StoreError),
    /// The metrics registry could not be set up.
    #[error(transparent)]
    Metrics(#[from] villas_metrics::MetricsError),
}

impl DaemonError {
    /// How the process exits: [`Exit::Config`] when the configuration or
    /// the state directory must be changed, [`Exit::Escalated`] after an
    /// escalation, [`Exit::Failure`] otherwise.
    pub(crate) fn exit(&self) -> Exit {
        match self {
            DaemonError::State(error) if error.is_config() => Exit::Config,
            DaemonError::Escalated(_) => Exit::Escalated,
            _ => Exit::Failure,
        }
    }
}

/// What `villas_controller_build_info` reports about this binary.
fn build_info() -> villas_metrics::BuildInfo {
    villas_metrics::BuildInfo {
        version: VERSION.to_owned(),
        profile: if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        },
    }
}

/// How long kinds may take to end what their components ran when the
/// daemon stops (after which they kill it).
pub(crate) const KIND_DRAIN_GRACE: Duration = Duration::from_secs(5);

/// Runs until `shutdown` completes. Must be called inside an actix system.
pub(crate) async fn run(
    settings: Settings,
    kinds: KindRegistry,
    shutdown: impl Future<Output = ()>,
) -> Result<(), DaemonError> {
    let started = Instant::now();
    let Settings {
        uuid,
        state,
        bus,
        api,
        heartbeat,
        placement,
    } = settings;
    let store = villas_actors::store::Store::open(&state, &placement)?;
    let (manager_count, component_count) = (placement.manager_count(), placement.component_count());
    let host = Arc::new(HostInfo::detect(VERSION));
    let directory = Directory::new();
    let (publisher, outbox) = Publisher::channel();
    let metrics = Arc::new(villas_metrics::Metrics::new(&build_info())?);

    let intake = Intake::new(
        Arc::new(directory.clone()),
        bus.max_body_bytes(),
        metrics.daemon().clone(),
    );
    let bus_name = bus.name();
    let bus = bus
        .transport(metrics.daemon().clone())
        .start(intake, outbox);

    let shared = Arc::new(Shared {
        kinds: kinds.clone(),
        directory: directory.clone(),
        publisher: publisher.clone(),
        host: host.clone(),
        heartbeat,
        stopping: Stopping::default(),
        store,
        metrics: metrics.clone(),
        configured: PendingComponents::new(placement.components),
    });
    let (escalation, escalated) = tokio::sync::oneshot::channel();
    let root = match Root::start_tree(shared, placement.root, escalation) {
        Ok(root) => root,
        Err(error) => {
            let running = Running {
                bus,
                root: None,
                kinds,
                publisher,
                api: None,
            };
            stop_within_deadline(running).await;
            return Err(DaemonError::Components(error));
        }
    };
    tracing::info!(%uuid, managers = manager_count, components = component_count, "supervision tree started");
    let mut running = Running {
        bus,
        root: Some(root),
        kinds,
        publisher,
        api: None,
    };

    if let Some(api) = &api {
        let state = ApiState {
            directory: directory.clone(),
            uuid: uuid.clone(),
            host,
            started,
            bus: bus_name,
            metrics: metrics.clone(),
            auth: api.auth.clone(),
        };
        match api::serve(api.listen, state) {
            Ok((handle, addr)) => {
                tracing::info!(api_addr = %addr, "HTTP API listening");
                running.api = Some(handle);
            }
            Err(source) => {
                stop_within_deadline(running).await;
                return Err(DaemonError::ApiBind {
                    addr: api.listen,
                    source,
                });
            }
        }
    }

    // SIGHUP: kinds installed since the start are picked up.
    actix::spawn(crate::reload::on_hangup(
        running.kinds.clone(),
        state.dir.clone(),
    ));

    // The HTTP port is bound: READY=1 once the bus has its link.
    crate::notify::ready_when_linked(running.bus.linked());

    let escalated = tokio::select! {
        () = shutdown => None,
        Ok(reason) = escalated => Some(reason),
    };
    stop_within_deadline(running).await;
    match escalated {
        Some(reason) => Err(DaemonError::Escalated(reason)),
        None => Ok(()),
    }
}

/// What the ordered stop stops.
struct Running {
    /// The transport.
    bus: BusHandle,
    /// The supervision tree, if it started.
    root: Option<Addr<Root>>,
    /// The kinds, to end what their components ran.
    kinds: KindRegistry,
    /// The components' outbox, to flush.
    publisher: Publisher,
    /// The HTTP API, if it is serving.
    api: Option<ServerHandle>,
}

/// The ordered stop, the one place that knows its order; each step is
/// the step of the same number in `docs/runtime-semantics.md` ("SIGTERM /
/// SIGINT"). Steps 1 to 3 are bounded by [`SHUTDOWN_DEADLINE`]; the HTTP
/// API gets its own 2 s after them.
async fn stop_within_deadline(running: Running) {
    tracing::info!("stopping");
    crate::notify::stopping();
    let Running {
        bus,
        root,
        kinds,
        publisher,
        api,
    } = running;
    let sequence = async {
        // 1. No new actions from the bus; what was dispatched still runs.
        bus.stop_intake().await;
        // 2. Components release what they run and publish `shutdown` (a
        //    manager after its components); whatever they ran must not
        //    outlive the daemon.
        if let Some(root) = root {
            let _ = root.send(Retire).await;
        }
        let drained = tokio::task::spawn_blocking(move || kinds.drain(KIND_DRAIN_GRACE));
        if drained.await.is_err() {
            tracing::error!("a kind panicked while draining");
        }
        tracing::info!("components stopped; flushing status messages");
        // 3. Every final status handed to the broker, then the link closes.
        publisher.flush().await;
        bus.close().await;
    };
    if tokio::time::timeout(SHUTDOWN_DEADLINE, sequence)
        .await
        .is_err()
    {
        tracing::warn!(deadline = ?SHUTDOWN_DEADLINE, "shutdown deadline passed; stopping anyway");
    }
    // 4. The HTTP API, letting open requests finish.
    if let Some(api) = api {
        api.stop(true).await;
    }
    tracing::info!("stopped");
}
