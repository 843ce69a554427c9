//! Runs the daemon: builds the shared environment, starts the bus, the
//! supervision tree and the HTTP API, waits for the shutdown signal, then
//! stops everything in order within a deadline.

use crate::api::{self, ApiState};
use crate::bus::amqp::AmqpBus;
use crate::bus::{local, Publisher};
use crate::component_actor::ActorEnv;
use crate::directory::new_directory;
use crate::kinds::KindRegistry;
use crate::root::{Root, Shutdown};
use crate::settings::{redact_url, Settings};
use actix::Actor;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};
use villas_sdk::protocol::HostInfo;

/// The controller version published in every status.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// How long the ordered stop may take before the daemon exits anyway.
pub const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(10);

/// Why the daemon could not run.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
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
    /// daemon stopped in order and exits with `EXIT_ESCALATED`.
    #[error("supervision escalated: {0}")]
    Escalated(String),
    /// The state directory cannot be used.
    #[error("state directory: {0}")]
    State(#[from] crate::store::StoreError),
    /// The metrics registry could not be set up.
    #[error(transparent)]
    Metrics(#[from] villas_metrics::MetricsError),
}

impl DaemonError {
    /// The process exit code: 78 (`EX_CONFIG`) when the configuration or
    /// the state directory must be changed, 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            DaemonError::State(error) if error.is_config() => crate::settings::EXIT_CONFIG as u8,
            DaemonError::Escalated(_) => crate::root::EXIT_ESCALATED,
            _ => 1,
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

/// Runs until `shutdown` completes. Must be called inside an actix system.
pub async fn run(
    mut settings: Settings,
    kinds: KindRegistry,
    shutdown: impl Future<Output = ()>,
) -> Result<(), DaemonError> {
    let started = Instant::now();
    let store = crate::store::Store::open(&settings)?;
    let (manager_count, component_count) = (settings.manager_count(), settings.component_count());
    let host = Arc::new(HostInfo::detect(VERSION));
    let directory = new_directory();
    let (publisher, outbox) = Publisher::channel();
    let metrics = Arc::new(villas_metrics::Metrics::new(&build_info())?);

    // Readiness (sd_notify) waits for the bus topology; see below.
    let mut linked = None;
    let (bus, bus_name) = match &settings.broker {
        Some(amqp) => {
            tracing::info!(url = %redact_url(&amqp.url), exchange = %amqp.exchange, "using the AMQP bus");
            let amqp_bus = AmqpBus::new(amqp.clone(), directory.clone(), outbox)
                .with_metrics(metrics.daemon().clone());
            linked = Some(amqp_bus.link_watch());
            (Some(amqp_bus.start()), "amqp")
        }
        None => {
            tracing::info!("no broker configured: using the in-process bus; the HTTP API is the control surface");
            local::spawn(outbox);
            metrics.daemon().bus_up(); // the in-process bus is always up
            (None, "local")
        }
    };

    let env = Arc::new(ActorEnv {
        kinds,
        directory: directory.clone(),
        publisher,
        host: host.clone(),
        heartbeat: settings.heartbeat,
        stopping: std::sync::atomic::AtomicBool::new(false),
        store,
        metrics: metrics.clone(),
        configured: crate::tree::PendingComponents::new(std::mem::take(&mut settings.components)),
    });
    let (escalation, escalated) = tokio::sync::oneshot::channel();
    let intake = bus.clone();
    let root = Root::start_tree(env, settings.root.clone(), bus, escalation)
        .map_err(DaemonError::Components)?;
    tracing::info!(uuid = %settings.uuid, managers = manager_count, components = component_count, "supervision tree started");

    let api = match &settings.api {
        Some(api) => {
            let state = ApiState {
                directory: directory.clone(),
                uuid: settings.uuid.clone(),
                host,
                started,
                bus: bus_name,
                metrics: metrics.clone(),
                auth: api.auth.clone(),
            };
            let (handle, addr) =
                api::serve(api.listen, state).map_err(|source| DaemonError::ApiBind {
                    addr: api.listen,
                    source,
                })?;
            tracing::info!(api_addr = %addr, "HTTP API listening");
            Some(handle)
        }
        None => None,
    };

    // The HTTP port is bound: READY=1 once the bus topology is declared.
    crate::notify::ready_when_linked(linked);

    let escalated = tokio::select! {
        () = shutdown => None,
        Ok(reason) = escalated => Some(reason),
    };
    tracing::info!("stopping");
    crate::notify::stopping();
    if let Some(bus) = intake {
        // No new actions from the bus; what was dispatched still runs.
        let _ = bus.send(crate::bus::amqp::StopIntake).await;
    }
    let _ = root
        .send(Shutdown {
            deadline: SHUTDOWN_DEADLINE,
        })
        .await;
    if let Some(api) = api {
        api.stop(true).await;
    }
    tracing::info!("stopped");
    match escalated {
        Some(reason) => Err(DaemonError::Escalated(reason)),
        None => Ok(()),
    }
}
