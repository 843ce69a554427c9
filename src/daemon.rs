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
}

/// Runs until `shutdown` completes. Must be called inside an actix system.
pub async fn run(
    mut settings: Settings,
    kinds: KindRegistry,
    shutdown: impl Future<Output = ()>,
) -> Result<(), DaemonError> {
    let started = Instant::now();
    let host = Arc::new(HostInfo::detect(VERSION));
    let directory = new_directory();
    let (publisher, outbox) = Publisher::channel();

    let (bus, bus_name) = match &settings.broker {
        Some(amqp) => {
            tracing::info!(url = %redact_url(&amqp.url), exchange = %amqp.exchange, "using the AMQP bus");
            (
                Some(AmqpBus::new(amqp.clone(), directory.clone(), outbox).start()),
                "amqp",
            )
        }
        None => {
            tracing::info!("no broker configured: using the in-process bus; the HTTP API is the control surface");
            local::spawn(outbox);
            (None, "local")
        }
    };

    let env = Arc::new(ActorEnv {
        kinds,
        directory: directory.clone(),
        publisher,
        host: host.clone(),
        heartbeat: settings.heartbeat,
    });
    let managers = std::mem::take(&mut settings.managers);
    let components = std::mem::take(&mut settings.components);
    let (manager_count, component_count) = (managers.len(), components.len());
    let root = Root::build(env, &settings.uuid, managers, components, bus)
        .map_err(DaemonError::Components)?
        .start();
    tracing::info!(uuid = %settings.uuid, configured_managers = manager_count, configured_components = component_count, "supervision tree started");

    let api = match &settings.api {
        Some(api) => {
            let state = ApiState {
                directory: directory.clone(),
                uuid: settings.uuid.clone(),
                host,
                started,
                bus: bus_name,
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

    shutdown.await;
    tracing::info!("stopping");
    let _ = root
        .send(Shutdown {
            deadline: SHUTDOWN_DEADLINE,
        })
        .await;
    if let Some(api) = api {
        api.stop(true).await;
    }
    tracing::info!("stopped");
    Ok(())
}
