//! The root of the supervision tree: starts the bus and the top managers
//! (each supervising its components), and owns the ordered shutdown:
//! managers stop their components and publish their final state, the
//! outbox is flushed to the broker, the bus closes.

use crate::bus::amqp::{AmqpBus, CloseBus};
use crate::component_actor::{ActorEnv, IcActor, StopComponent};
use crate::settings::ConfiguredComponent;
use actix::prelude::*;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use villas_sdk::{ComponentSpec, ErrorInfo};

/// The root actor.
pub struct Root {
    /// The shared environment of every component actor.
    env: Arc<ActorEnv>,
    /// The top managers.
    managers: Vec<Addr<IcActor>>,
    /// The AMQP bus, if one is configured.
    bus: Option<Addr<AmqpBus>>,
}

impl Root {
    /// Starts the top managers with their configured components. A
    /// `generic` manager with the daemon's uuid is added when the
    /// configuration has none; every top manager is its own `managed_by`,
    /// so VILLASweb (which needs a valid uuid there) lists it too.
    pub fn build(
        env: Arc<ActorEnv>,
        daemon_uuid: &str,
        managers: Vec<ConfiguredComponent>,
        components: Vec<ConfiguredComponent>,
        bus: Option<Addr<AmqpBus>>,
    ) -> Result<Self, ErrorInfo> {
        let mut managers: Vec<ComponentSpec> = managers.into_iter().map(|m| m.spec).collect();
        let default_uuid = match managers.iter().find(|m| m.identity.kind == "generic") {
            Some(generic) => generic.uuid().to_owned(),
            None => {
                managers.insert(0, default_manager(daemon_uuid)?);
                daemon_uuid.to_owned()
            }
        };
        // Definitions are moved, not copied: at 10,000 components a copy
        // costs megabytes for the daemon's lifetime.
        let mut placed: HashMap<String, Vec<ComponentSpec>> = HashMap::new();
        for component in components {
            let manager = placed_under(&component, &default_uuid, daemon_uuid).to_owned();
            placed.entry(manager).or_default().push(component.spec);
        }
        let mut started = Vec::with_capacity(managers.len());
        for manager in managers {
            let uuid = manager.uuid().to_owned();
            let children = placed.remove(&uuid).unwrap_or_default();
            started.push(IcActor::spawn_with_children(
                &env,
                manager,
                Some(uuid),
                children,
            )?);
        }
        Ok(Root {
            env,
            managers: started,
            bus,
        })
    }
}

/// The manager a configured component goes under.
fn placed_under<'a>(
    component: &'a ConfiguredComponent,
    default: &'a str,
    daemon: &'a str,
) -> &'a str {
    match component.manager.as_deref() {
        Some(manager) if manager == daemon => default,
        Some(manager) => manager,
        None => default,
    }
}

fn default_manager(uuid: &str) -> Result<ComponentSpec, ErrorInfo> {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let mut properties = Map::new();
    properties.insert("category".into(), "manager".into());
    properties.insert("type".into(), "generic".into());
    properties.insert("name".into(), "Generic Manager".into());
    properties.insert("location".into(), Value::String(host.trim().to_owned()));
    properties.insert("uuid".into(), uuid.into());
    ComponentSpec::from_properties(properties).map_err(|e| e.to_error_info())
}

impl Actor for Root {
    type Context = Context<Self>;
}

/// Stops the daemon in order, within `deadline`.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Shutdown {
    /// Upper bound for the whole sequence.
    pub deadline: Duration,
}

impl Handler<Shutdown> for Root {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, Shutdown { deadline }: Shutdown, _: &mut Context<Self>) -> Self::Result {
        let managers = std::mem::take(&mut self.managers);
        let publisher = self.env.publisher.clone();
        let bus = self.bus.take();
        Box::pin(async move {
            let sequence = async {
                futures_util::future::join_all(managers.iter().map(|m| m.send(StopComponent)))
                    .await;
                tracing::info!("components stopped; flushing status messages");
                publisher.flush().await;
                if let Some(bus) = bus {
                    let _ = bus.send(CloseBus).await;
                }
            };
            if tokio::time::timeout(deadline, sequence).await.is_err() {
                tracing::warn!(?deadline, "shutdown deadline passed; stopping anyway");
            }
        })
    }
}
