//! The root of the supervision tree: starts the bus and the top managers
//! (each supervising its components), and owns the ordered shutdown:
//! managers stop their components and publish their final state, the
//! outbox is flushed to the broker, the bus closes.
//!
//! The root supervises the top managers like a manager supervises its
//! components (reset after a failure, within a restart budget); a manager
//! whose budget is spent, or whose actor died, escalates here, and the root
//! stops the daemon, which then exits non-zero (`EXIT_ESCALATED`) so that
//! systemd restarts it.

use crate::bus::amqp::{AmqpBus, CloseBus};
use crate::component_actor::{ActorEnv, IcActor, StopComponent};
use crate::settings::ConfiguredComponent;
use crate::supervision::{Supervised, SupervisionSpec};
use crate::supervisor::{self, ChildEvent, ChildEventKind, Outcome};
use actix::prelude::*;
use indexmap::IndexMap;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;
use villas_sdk::{ComponentSpec, ErrorInfo};

/// Exit code of a daemon stopped by an escalation (`EX_SOFTWARE`).
pub const EXIT_ESCALATED: u8 = 70;

/// The root actor.
pub struct Root {
    /// The shared environment of every component actor.
    env: Arc<ActorEnv>,
    /// The top managers by uuid.
    managers: IndexMap<String, Addr<IcActor>>,
    /// Their restart histories.
    supervised: Supervised,
    /// The AMQP bus, if one is configured.
    bus: Option<Addr<AmqpBus>>,
    /// Tells the daemon to stop because of an escalation (used once).
    escalation: Option<oneshot::Sender<String>>,
}

impl Root {
    /// Starts the root and under it the top managers with their configured
    /// components. A `generic` manager with the daemon's uuid is added when
    /// the configuration has none; every top manager is its own
    /// `managed_by`, so VILLASweb (which needs a valid uuid there) lists it
    /// too. `escalation` receives the reason when the root gives up.
    pub fn start_tree(
        env: Arc<ActorEnv>,
        daemon_uuid: &str,
        managers: Vec<ConfiguredComponent>,
        components: Vec<ConfiguredComponent>,
        bus: Option<Addr<AmqpBus>>,
        escalation: oneshot::Sender<String>,
    ) -> Result<Addr<Self>, ErrorInfo> {
        let mut failure = None;
        let root = Root::create(|ctx| {
            let mut root = Root {
                env,
                managers: IndexMap::new(),
                supervised: Supervised::default(),
                bus,
                escalation: Some(escalation),
            };
            if let Err(error) =
                root.start_managers(ctx.address(), daemon_uuid, managers, components)
            {
                failure = Some(error);
            }
            root
        });
        match failure {
            None => Ok(root),
            Some(error) => {
                root.do_send(Shutdown {
                    deadline: Duration::from_secs(1),
                });
                Err(error)
            }
        }
    }

    fn start_managers(
        &mut self,
        own: Addr<Root>,
        daemon_uuid: &str,
        managers: Vec<ConfiguredComponent>,
        components: Vec<ConfiguredComponent>,
    ) -> Result<(), ErrorInfo> {
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
        for manager in managers {
            let uuid = manager.uuid().to_owned();
            let supervision = SupervisionSpec::from_properties(&manager.properties)?;
            let children = placed.remove(&uuid).unwrap_or_default();
            let addr = IcActor::spawn_with_children(
                &self.env,
                manager,
                Some(uuid.clone()),
                Some(own.clone().recipient()),
                children,
            )?;
            self.supervised.insert(uuid.clone(), supervision, true);
            self.managers.insert(uuid, addr);
        }
        Ok(())
    }

    /// Gives up: the daemon stops and exits with [`EXIT_ESCALATED`].
    fn escalate(&mut self, reason: String) {
        tracing::error!(%reason, "supervision escalated to the root: stopping the daemon");
        self.env.metrics.daemon().escalated();
        if let Some(escalation) = self.escalation.take() {
            let _ = escalation.send(reason);
        }
    }
}

impl Handler<ChildEvent> for Root {
    type Result = ();

    fn handle(&mut self, ChildEvent { uuid, event }: ChildEvent, _: &mut Context<Self>) {
        let outcome = match event {
            ChildEventKind::OperatorReset => {
                self.supervised.clear(&uuid);
                Outcome::Handled
            }
            ChildEventKind::Escalated(reason) => Outcome::Escalate(reason),
            ChildEventKind::ActorDied { .. } => {
                Outcome::Escalate(format!("the actor of manager {uuid} died"))
            }
            ChildEventKind::Exited(exit) => match self.managers.get(&uuid) {
                Some(manager) => supervisor::on_exit(
                    &mut self.supervised,
                    &uuid,
                    &exit,
                    manager.clone().recipient(),
                    manager.clone().recipient(),
                ),
                None => Outcome::Handled,
            },
        };
        if let Outcome::Escalate(reason) = outcome {
            self.escalate(reason);
        }
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

/// How long kinds may take to end what their components ran when the
/// daemon stops (after which they kill it).
pub const KIND_DRAIN_GRACE: Duration = Duration::from_secs(5);

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
        self.env.stopping.store(true, Ordering::Relaxed);
        let managers: Vec<Addr<IcActor>> =
            std::mem::take(&mut self.managers).into_values().collect();
        let publisher = self.env.publisher.clone();
        let bus = self.bus.take();
        let kinds = self.env.kinds.clone();
        Box::pin(async move {
            let sequence = async {
                futures_util::future::join_all(managers.iter().map(|m| m.send(StopComponent)))
                    .await;
                // Whatever the components ran must not outlive the daemon.
                let drained = tokio::task::spawn_blocking(move || kinds.drain(KIND_DRAIN_GRACE));
                if drained.await.is_err() {
                    tracing::error!("a kind panicked while draining");
                }
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
