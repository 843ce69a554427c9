//! The one supervisor implementation, used by every manager's actor for
//! the components it manages and by the root for the root manager: the
//! registry of the children's actors (in creation order), their restart
//! trackers, and what follows each [`ChildEvent`]. A manager and the root
//! differ only in what an actor death means ([`OnDeath`]) and in where an
//! escalation goes (the caller's business).

use super::actor::{IcActor, Remove, Shared};
use super::events::{ChildEvent, ChildEventKind, GiveUp, Outcome, Restart, SupervisedBy};
use super::policy::{Decision, Exit, Supervised, SupervisionSpec};
use actix::prelude::*;
use indexmap::IndexMap;
use std::sync::Arc;
use villas_sdk::{ComponentSpec, ErrorCode, ErrorInfo, ManagerOps, State};

/// What a supervisor does when a child's actor died.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnDeath {
    /// Rebuild it from its definition, in `error`, and restart it like
    /// any failed component (a manager for its components).
    Rebuild,
    /// Escalate: the daemon stops (the root for the root manager).
    Escalate,
}

/// The components one supervisor supervises.
pub struct Supervisor {
    /// Their `managed_by`: the manager's uuid (the root's: the daemon's,
    /// which is the root manager's own).
    own_uuid: String,
    /// The shared environment.
    shared: Arc<Shared>,
    /// uuid -> actor, in creation order.
    managed: IndexMap<String, Addr<IcActor>>,
    /// The restart history of each of them.
    supervised: Supervised,
    /// Where they report: the supervising actor (set when it starts).
    reports_to: Option<Recipient<ChildEvent>>,
    /// What an actor death means here.
    on_death: OnDeath,
}

impl std::fmt::Debug for Supervisor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Supervisor")
            .field("own_uuid", &self.own_uuid)
            .field("managed", &self.uuids())
            .field("on_death", &self.on_death)
            .finish()
    }
}

impl Supervisor {
    /// An empty supervisor for the components of `own_uuid`.
    pub fn new(own_uuid: String, shared: Arc<Shared>, on_death: OnDeath) -> Self {
        Supervisor {
            own_uuid,
            shared,
            managed: IndexMap::new(),
            supervised: Supervised::default(),
            reports_to: None,
            on_death,
        }
    }

    /// The supervising actor started (again, for a rebuilt manager): its
    /// children report to `own` from now on.
    pub fn started(&mut self, own: Recipient<ChildEvent>) {
        for child in self.managed.values() {
            child.do_send(SupervisedBy(own.clone()));
        }
        self.reports_to = Some(own);
    }

    /// The uuids of the components it supervises, in creation order, for
    /// its status (borrowed: nothing is copied but the pointers).
    pub fn uuids(&self) -> Vec<&str> {
        self.managed.keys().map(String::as_str).collect()
    }

    /// The actors of the components it supervises.
    pub fn actors(&self) -> Vec<Addr<IcActor>> {
        self.managed.values().cloned().collect()
    }

    /// Creates a component under it (its definition stored unless it is
    /// configured) and supervises it with `supervision`.
    pub fn add(
        &mut self,
        spec: ComponentSpec,
        supervision: SupervisionSpec,
    ) -> Result<(), ErrorInfo> {
        let uuid = spec.uuid().to_owned();
        let durable = spec.clone();
        let is_manager = spec.identity.category == "manager";
        let addr = IcActor::spawn(
            &self.shared,
            spec,
            Some(self.own_uuid.clone()),
            self.reports_to.clone(),
        )?;
        if let Err(error) = self.shared.store.created(&durable, &self.own_uuid) {
            self.shared.directory.remove(&uuid);
            addr.do_send(Remove);
            return Err(error.into());
        }
        tracing::info!(%uuid, manager = %self.own_uuid, "component created");
        self.supervised
            .insert(uuid.clone(), supervision, is_manager);
        self.managed.insert(uuid, addr);
        Ok(())
    }

    /// Deletes every component it supervises (its own deletion).
    pub fn remove_all(&mut self) {
        for (uuid, child) in self.managed.drain(..) {
            if let Err(error) = self.shared.store.deleted(&uuid) {
                tracing::error!(%uuid, %error, "definition not removed");
            }
            self.shared.directory.remove(&uuid);
            child.do_send(Remove);
        }
        self.supervised = Supervised::default();
    }

    /// Handles what a component reported; the caller carries out an
    /// escalation.
    pub fn handle(&mut self, ChildEvent { uuid, event }: ChildEvent) -> Outcome {
        match event {
            ChildEventKind::OperatorReset => {
                self.supervised.clear(&uuid);
                Outcome::Handled
            }
            ChildEventKind::Escalated(reason) => Outcome::Escalate(reason),
            ChildEventKind::Exited(exit) => self.on_exit(&uuid, &exit),
            ChildEventKind::ActorDied { .. } if self.on_death == OnDeath::Escalate => {
                Outcome::Escalate(format!("the actor of manager {uuid} died"))
            }
            ChildEventKind::ActorDied {
                spec,
                managed_by,
                children,
            } => {
                self.rebuild(*spec, managed_by, children.map(|c| *c));
                Outcome::Handled
            }
        }
    }

    /// Applies the restart rules to `exit` of component `uuid`: schedules
    /// its [`Restart`] or sends [`GiveUp`]; logs either way.
    fn on_exit(&mut self, uuid: &str, exit: &Exit) -> Outcome {
        let Some(child) = self.managed.get(uuid) else {
            return Outcome::Handled;
        };
        let Some((decision, is_manager)) = self.supervised.on_exit(uuid, exit) else {
            return Outcome::Handled;
        };
        match decision {
            Decision::Nothing => Outcome::Handled,
            Decision::Restart {
                after,
                start,
                restarts,
            } => {
                let policy = self.supervised.policy(uuid).map_or("never", |p| p.as_str());
                tracing::warn!(%uuid, ?after, start, restarts, policy, ?exit, "restarting component through reset");
                let expected = match exit {
                    Exit::Failed(_) => State::Error,
                    Exit::Completed => State::Idle,
                };
                let child = child.clone();
                actix::spawn(async move {
                    actix::clock::sleep(after).await;
                    child.do_send(Restart { start, expected });
                });
                Outcome::Handled
            }
            Decision::GiveUp(error) => {
                tracing::error!(%uuid, %error, "restart budget spent; the component stays in error until an operator reset");
                let reason = format!("component {uuid}: {}", error.message);
                child.do_send(GiveUp(error));
                if is_manager {
                    Outcome::Escalate(reason)
                } else {
                    Outcome::Handled
                }
            }
        }
    }

    /// Rebuilds a component whose actor died, in `error` with the reason
    /// (its supervision then resets it like any failed component); a
    /// manager gets back the components it supervised.
    fn rebuild(
        &mut self,
        spec: ComponentSpec,
        managed_by: Option<String>,
        children: Option<Supervisor>,
    ) {
        let uuid = spec.uuid().to_owned();
        if !self.managed.contains_key(&uuid) {
            return;
        }
        self.shared.directory.remove(&uuid);
        let failure = ErrorInfo::new(
            ErrorCode::Crashed,
            "the component's actor stopped unexpectedly; it was rebuilt from its definition",
        );
        let rebuilt = IcActor::rebuild(
            &self.shared,
            spec,
            managed_by,
            self.reports_to.clone(),
            failure,
            children,
        );
        match rebuilt {
            Ok(addr) => {
                self.managed.insert(uuid, addr);
            }
            Err(error) => {
                tracing::error!(%uuid, %error, "component could not be rebuilt");
                self.managed.shift_remove(&uuid);
                self.supervised.remove(&uuid);
            }
        }
    }
}

impl ManagerOps for Supervisor {
    fn create(&mut self, spec: ComponentSpec) -> Result<(), ErrorInfo> {
        let supervision = SupervisionSpec::from_properties(&spec.properties)?;
        self.add(spec, supervision)
    }

    fn delete(&mut self, uuid: &str) -> Result<(), ErrorInfo> {
        // A client's text is echoed cut (a uuid is far shorter).
        let uuid: &str = &villas_sdk::protocol::action::echo(uuid);
        let canonical = villas_sdk::spec::canonical_uuid(uuid);
        if self.managed.contains_key(&canonical) {
            self.shared.store.deleted(&canonical)?;
        }
        let Some(child) = self.managed.shift_remove(&canonical) else {
            return Err(ErrorInfo::new(
                ErrorCode::UnknownComponent,
                format!("this manager manages no component with uuid {uuid:?}"),
            )
            .with("uuid", uuid));
        };
        self.shared.directory.remove(&canonical);
        self.supervised.remove(&canonical);
        child.do_send(Remove);
        tracing::info!(uuid = %canonical, manager = %self.own_uuid, "component deleted");
        Ok(())
    }

    fn managed(&self) -> Vec<String> {
        self.managed.keys().cloned().collect()
    }
}
