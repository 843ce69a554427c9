//! The IC actor: one per component instance, wrapping the SDK's
//! [`Driver`]. It carries out actions (now, or later when `when` lies in
//! the future), publishes status on every change, on `ping` and as a
//! heartbeat, and runs the kind's timers. A component of category
//! `manager` additionally supervises the components it manages
//! ([`Children`]): it creates their actors, owns their addresses and
//! definitions, and removes them.

use crate::bus::Publisher;
use crate::directory::Directory;
use crate::kinds::KindRegistry;
use actix::prelude::*;
use indexmap::IndexMap;
use serde_json::{Map, Value};
use std::sync::Arc;
use std::time::Duration;
use villas_sdk::protocol::{unix_now, ActionError, HostInfo};
use villas_sdk::{
    Action, ComponentSpec, Driver, Effect, ErrorCode, ErrorInfo, Headers, ManagerOps, State,
};

/// What every component actor shares.
pub struct ActorEnv {
    /// The kinds components can be built from.
    pub kinds: KindRegistry,
    /// The daemon-wide directory (routing, duplicate check).
    pub directory: Directory,
    /// Where statuses go.
    pub publisher: Publisher,
    /// Host facts for every status.
    pub host: Arc<HostInfo>,
    /// Status heartbeat period.
    pub heartbeat: Duration,
}

/// A message from the bus for one component.
#[derive(Debug)]
pub enum Delivered {
    /// A well-formed action.
    Action(Action),
    /// A body that should have been an action but is malformed.
    Invalid(ActionError),
}

/// Delivers a bus message (shared by every component it addresses).
#[derive(Message, Clone)]
#[rtype(result = "()")]
pub struct Deliver(pub Arc<Delivered>);

/// Carries out an action for the HTTP API.
#[derive(Message)]
#[rtype(result = "Executed")]
pub struct Execute(pub Action);

/// What an [`Execute`] did.
#[derive(Debug, MessageResponse)]
pub struct Executed {
    /// The status right after the action.
    pub status: Vec<u8>,
    /// The refusal or failure, if the action was not carried out.
    pub error: Option<ErrorInfo>,
}

/// Returns the current status message.
#[derive(Message)]
#[rtype(result = "Vec<u8>")]
pub struct GetStatus;

/// Deletes the component: stops what it runs, publishes `gone`, stops.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Remove;

/// The daemon stops: release what the component runs; a manager stops its
/// components first and publishes its final state (`shutdown`).
#[derive(Message)]
#[rtype(result = "()")]
pub struct StopComponent;

/// The actor of one component.
pub struct IcActor {
    /// The component under the protocol's state machine.
    driver: Driver,
    /// Its status headers, shared by every publication.
    headers: Arc<Headers>,
    /// The shared environment.
    env: Arc<ActorEnv>,
    /// The components it manages, if it is a manager.
    children: Option<Children>,
    /// Reused buffer for the driver's effects.
    effects: Vec<Effect>,
    /// The last state published, to log transitions once.
    published: State,
    /// Components to create when the actor starts (a manager's configured
    /// components), so its first status already lists them.
    initial_children: Vec<ComponentSpec>,
}

impl IcActor {
    /// Builds a component's actor, starts it and enters it in the
    /// directory. Refuses unknown kinds, invalid definitions and uuids that
    /// exist already.
    pub fn spawn(
        env: &Arc<ActorEnv>,
        spec: ComponentSpec,
        managed_by: Option<String>,
    ) -> Result<Addr<IcActor>, ErrorInfo> {
        Self::spawn_with_children(env, spec, managed_by, Vec::new())
    }

    /// Like [`IcActor::spawn`], for a manager that creates `children` as it
    /// starts (failures are logged: the configuration was validated).
    pub fn spawn_with_children(
        env: &Arc<ActorEnv>,
        spec: ComponentSpec,
        managed_by: Option<String>,
        initial_children: Vec<ComponentSpec>,
    ) -> Result<Addr<IcActor>, ErrorInfo> {
        if env.directory.read().get(spec.uuid()).is_some() {
            return Err(ErrorInfo::new(
                ErrorCode::DuplicateUuid,
                format!("a component with uuid {} already exists", spec.uuid()),
            )
            .with("uuid", spec.uuid()));
        }
        let registered = env
            .kinds
            .get(&spec.identity.category, &spec.identity.kind)?;
        let identity = spec.identity.clone();
        let children = (identity.category == "manager").then(|| Children {
            own_uuid: identity.uuid.clone(),
            env: env.clone(),
            managed: IndexMap::new(),
        });
        let driver = Driver::new(
            registered.kind.clone(),
            registered.schemas.clone(),
            spec,
            env.host.clone(),
            managed_by,
        )?;
        let actor = IcActor {
            headers: Arc::new(identity.headers()),
            driver,
            env: env.clone(),
            children,
            effects: Vec::new(),
            published: State::Idle,
            initial_children,
        };
        let addr = actor.start();
        if let Err(duplicate) = env.directory.write().insert(identity, addr.clone()) {
            addr.do_send(StopComponent);
            return Err(ErrorInfo::new(
                ErrorCode::DuplicateUuid,
                duplicate.to_string(),
            ));
        }
        Ok(addr)
    }

    fn uuid(&self) -> &str {
        &self.driver.identity().uuid
    }

    /// Carries out an action now, or schedules it if `when` is ahead;
    /// returns the refusal or failure (also published).
    fn act(&mut self, action: &Action, ctx: &mut Context<Self>) -> Result<(), ErrorInfo> {
        if let Some(delay) = Driver::delay_of(action, unix_now()) {
            tracing::info!(uuid = self.uuid(), action = %action.kind, ?delay, "action scheduled");
            let mut due = action.clone();
            due.when = None;
            ctx.run_later(delay, move |actor, ctx| {
                // A refusal then is published (and logged) like any other.
                let _ = actor.act(&due, ctx);
            });
            return Ok(());
        }
        tracing::debug!(uuid = self.uuid(), action = %action.kind, "action");
        let manager = self.children.as_mut().map(|c| c as &mut dyn ManagerOps);
        let outcome = self.driver.handle(action, manager, &mut self.effects);
        self.apply(ctx);
        outcome
    }

    /// Publishes and schedules what the driver asked for.
    fn apply(&mut self, ctx: &mut Context<Self>) {
        let mut effects = std::mem::take(&mut self.effects);
        for effect in effects.drain(..) {
            match effect {
                Effect::Publish { state, error } => self.publish(state, error.as_ref()),
                Effect::Schedule {
                    after,
                    token,
                    generation,
                } => {
                    ctx.run_later(after, move |actor, ctx| {
                        actor
                            .driver
                            .timer_fired(generation, token, &mut actor.effects);
                        actor.apply(ctx);
                    });
                }
            }
        }
        self.effects = effects;
    }

    fn publish(&mut self, state: State, error: Option<&ErrorInfo>) {
        if state != self.published {
            tracing::info!(uuid = self.uuid(), from = %self.published, to = %state, "state transition");
            self.published = state;
        }
        if let Some(error) = error {
            tracing::warn!(uuid = self.uuid(), state = %state, %error, "error published");
        }
        let body = self.status(state, error);
        self.env.publisher.publish(self.headers.clone(), body);
    }

    fn status(&self, state: State, error: Option<&ErrorInfo>) -> Vec<u8> {
        let extra = self.children.as_ref().map(Children::status_fields);
        self.driver.status_json(state, error, extra)
    }
}

impl Actor for IcActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        if let Some(children) = self.children.as_mut() {
            for spec in std::mem::take(&mut self.initial_children) {
                let uuid = spec.uuid().to_owned();
                if let Err(error) = children.create(spec) {
                    tracing::error!(%uuid, %error, "configured component not created");
                }
            }
        }
        self.published = self.driver.state();
        self.driver.publish_current(&mut self.effects);
        self.apply(ctx);
        // Spread heartbeats over half a period so that many components do
        // not publish in bursts; the first comes no sooner than half a
        // period after the start-up status.
        let period = self.env.heartbeat;
        let offset = period.mul_f64(rand::random_range(0.5..1.0));
        ctx.run_later(offset, move |_, ctx| {
            ctx.run_interval(period, |actor, ctx| {
                actor.driver.publish_current(&mut actor.effects);
                actor.apply(ctx);
            });
        });
    }
}

impl Handler<Deliver> for IcActor {
    type Result = ();

    fn handle(&mut self, Deliver(message): Deliver, ctx: &mut Context<Self>) {
        match message.as_ref() {
            // A refusal or failure is published (and logged) by `apply`.
            Delivered::Action(action) => {
                let _ = self.act(action, ctx);
            }
            Delivered::Invalid(error) => {
                self.driver.refuse(error.to_error_info(), &mut self.effects);
                self.apply(ctx);
            }
        }
    }
}

impl Handler<Execute> for IcActor {
    type Result = Executed;

    fn handle(&mut self, Execute(action): Execute, ctx: &mut Context<Self>) -> Self::Result {
        let outcome = self.act(&action, ctx);
        Executed {
            status: self.status(self.driver.state(), self.driver.error()),
            error: outcome.err(),
        }
    }
}

impl Handler<GetStatus> for IcActor {
    type Result = MessageResult<GetStatus>;

    fn handle(&mut self, _: GetStatus, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.status(self.driver.state(), self.driver.error()))
    }
}

impl Handler<Remove> for IcActor {
    type Result = ();

    fn handle(&mut self, _: Remove, ctx: &mut Context<Self>) {
        if let Some(children) = self.children.as_mut() {
            children.remove_all();
        }
        self.driver.remove(&mut self.effects);
        self.apply(ctx);
        ctx.stop();
    }
}

impl Handler<StopComponent> for IcActor {
    type Result = ResponseActFuture<Self, ()>;

    fn handle(&mut self, _: StopComponent, _: &mut Context<Self>) -> Self::Result {
        let children: Vec<Addr<IcActor>> = self
            .children
            .as_ref()
            .map(|c| c.managed.values().cloned().collect())
            .unwrap_or_default();
        let stopped = futures_util::future::join_all(
            children.into_iter().map(|child| child.send(StopComponent)),
        );
        Box::pin(stopped.into_actor(self).map(|_, actor, ctx| {
            actor.driver.release();
            if actor.children.is_some() {
                actor
                    .driver
                    .force_state(State::Shutdown, &mut actor.effects);
                actor.apply(ctx);
            }
            ctx.stop();
        }))
    }
}

/// The components a manager supervises.
pub struct Children {
    /// The manager's uuid (their `managed_by`).
    own_uuid: String,
    /// The shared environment.
    env: Arc<ActorEnv>,
    /// uuid -> actor, in creation order.
    managed: IndexMap<String, Addr<IcActor>>,
}

impl Children {
    fn status_fields(&self) -> Map<String, Value> {
        let mut fields = Map::new();
        let uuids = self
            .managed
            .keys()
            .map(|u| Value::String(u.clone()))
            .collect();
        fields.insert("components".into(), Value::Array(uuids));
        fields
    }

    fn remove_all(&mut self) {
        for (uuid, child) in self.managed.drain(..) {
            self.env.directory.write().remove(&uuid);
            child.do_send(Remove);
        }
    }
}

impl ManagerOps for Children {
    fn create(&mut self, spec: ComponentSpec) -> Result<(), ErrorInfo> {
        let uuid = spec.uuid().to_owned();
        let addr = IcActor::spawn(&self.env, spec, Some(self.own_uuid.clone()))?;
        tracing::info!(%uuid, manager = %self.own_uuid, "component created");
        self.managed.insert(uuid, addr);
        Ok(())
    }

    fn delete(&mut self, uuid: &str) -> Result<(), ErrorInfo> {
        let canonical = villas_sdk::spec::canonical_uuid(uuid);
        let Some(child) = self.managed.shift_remove(&canonical) else {
            return Err(ErrorInfo::new(
                ErrorCode::UnknownComponent,
                format!("this manager manages no component with uuid {uuid:?}"),
            )
            .with("uuid", uuid));
        };
        self.env.directory.write().remove(&canonical);
        child.do_send(Remove);
        tracing::info!(uuid = %canonical, manager = %self.own_uuid, "component deleted");
        Ok(())
    }

    fn managed(&self) -> Vec<String> {
        self.managed.keys().cloned().collect()
    }
}
