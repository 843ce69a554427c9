//! The root of the supervision tree: starts the root manager (the
//! daemon's uuid; every configured component is below it, see
//! `crate::placement`), and retires it when the daemon stops (the daemon owns
//! the order of the stop, the daemon).
//!
//! The root supervises the root manager like a manager supervises its
//! components (reset after a failure, within a restart budget); when its
//! budget is spent, when a manager below escalates, or when its actor
//! died, the root stops the daemon, which then exits non-zero
//! (`EXIT_ESCALATED`) so that systemd restarts it.

use crate::ic::actor::{ActorEnv, IcActor, Retire};
use crate::ic::events::{self, ChildEvent, ChildEventKind, Outcome};
use crate::ic::policy::Supervised;
use crate::placement::ConfiguredComponent;
use actix::prelude::*;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio::sync::oneshot;
use villas_sdk::ErrorInfo;

/// Exit code of a daemon stopped by an escalation (`EX_SOFTWARE`).
pub const EXIT_ESCALATED: u8 = 70;

/// The root actor.
pub struct Root {
    /// The shared environment of every component actor.
    env: Arc<ActorEnv>,
    /// The root manager: its uuid and actor (taken by the shutdown).
    manager: Option<(String, Addr<IcActor>)>,
    /// Its restart history.
    supervised: Supervised,
    /// Tells the daemon to stop because of an escalation (used once).
    escalation: Option<oneshot::Sender<String>>,
}

impl Root {
    /// Starts the root and under it the root manager (`manager`, whose
    /// uuid is the daemon's), which creates the configured components
    /// placed under it (`ActorEnv::configured`) as it starts. The root
    /// manager is its own `managed_by`, so VILLASweb (which needs a valid
    /// uuid there) lists it too. `escalation` receives the reason when the
    /// root gives up.
    pub fn start_tree(
        env: Arc<ActorEnv>,
        manager: ConfiguredComponent,
        escalation: oneshot::Sender<String>,
    ) -> Result<Addr<Self>, ErrorInfo> {
        let mut failure = None;
        let root = Root::create(|ctx| {
            let mut root = Root {
                env,
                manager: None,
                supervised: Supervised::default(),
                escalation: Some(escalation),
            };
            if let Err(error) = root.start_manager(ctx.address(), manager) {
                failure = Some(error);
            }
            root
        });
        match failure {
            None => Ok(root),
            Some(error) => Err(error),
        }
    }

    fn start_manager(
        &mut self,
        own: Addr<Root>,
        manager: ConfiguredComponent,
    ) -> Result<(), ErrorInfo> {
        let uuid = manager.spec.uuid().to_owned();
        let addr = IcActor::spawn(
            &self.env,
            manager.spec,
            Some(manager.manager),
            Some(own.recipient()),
        )?;
        self.supervised
            .insert(uuid.clone(), manager.supervision, true);
        self.manager = Some((uuid, addr));
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
            ChildEventKind::Exited(exit) => match &self.manager {
                Some((own, manager)) if *own == uuid => events::on_exit(
                    &mut self.supervised,
                    &uuid,
                    &exit,
                    manager.clone().recipient(),
                    manager.clone().recipient(),
                ),
                _ => Outcome::Handled,
            },
        };
        if let Outcome::Escalate(reason) = outcome {
            self.escalate(reason);
        }
    }
}

impl Actor for Root {
    type Context = Context<Self>;
}

impl Handler<Retire> for Root {
    type Result = ResponseFuture<()>;

    /// Retires the root manager, which retires its components first; from
    /// now on an actor that stops is no death to report.
    fn handle(&mut self, _: Retire, _: &mut Context<Self>) -> Self::Result {
        self.env.stopping.store(true, Ordering::Relaxed);
        let manager = self.manager.take().map(|(_, addr)| addr);
        Box::pin(async move {
            if let Some(manager) = manager {
                let _ = manager.send(Retire).await;
            }
        })
    }
}
