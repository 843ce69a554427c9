//! The root of the supervision tree: starts the root manager (the
//! daemon's uuid; every configured component is below it, see
//! `crate::placement`), supervises it like a manager supervises its
//! components (the same `Supervisor`: reset after a failure, within a
//! restart budget), and retires it when the daemon stops (the daemon owns
//! the order of the stop). When the root manager's budget is spent, when
//! a manager below escalates, or when the root manager's actor died, the
//! root gives up: the daemon stops and exits non-zero (`EX_SOFTWARE`) so
//! that systemd restarts it.

use crate::ic::actor::{Retire, Shared};
use crate::ic::children::{OnDeath, Supervisor};
use crate::ic::events::{ChildEvent, Outcome};
use crate::placement::ConfiguredComponent;
use actix::prelude::*;
use std::sync::Arc;
use tokio::sync::oneshot;
use villas_sdk::ErrorInfo;

/// The root actor.
pub struct Root {
    /// The shared services (metrics, the stop flag).
    shared: Arc<Shared>,
    /// The root manager, supervised.
    children: Supervisor,
    /// Tells the daemon to stop because of an escalation (used once).
    escalation: Option<oneshot::Sender<String>>,
}

impl Root {
    /// Starts the root and under it the root manager (`manager`, whose
    /// uuid is the daemon's), which creates the configured components
    /// placed under it (`Shared::configured`) as it starts. The root
    /// manager is its own `managed_by`, so VILLASweb (which needs a valid
    /// uuid there) lists it too. `escalation` receives the reason when the
    /// root gives up.
    pub fn start_tree(
        shared: Arc<Shared>,
        manager: ConfiguredComponent,
        escalation: oneshot::Sender<String>,
    ) -> Result<Addr<Self>, ErrorInfo> {
        let mut failure = None;
        let root = Root::create(|ctx| {
            // The root manager's `managed_by` is its own uuid.
            let mut children = Supervisor::new(manager.manager, shared.clone(), OnDeath::Escalate);
            children.started(ctx.address().recipient());
            if let Err(error) = children.add(manager.spec, manager.supervision) {
                failure = Some(error);
            }
            Root {
                shared,
                children,
                escalation: Some(escalation),
            }
        });
        match failure {
            None => Ok(root),
            Some(error) => Err(error),
        }
    }

    /// Gives up: the daemon stops and exits with `EX_SOFTWARE`.
    fn escalate(&mut self, reason: String) {
        tracing::error!(%reason, "supervision escalated to the root: stopping the daemon");
        self.shared.metrics.daemon().escalated();
        if let Some(escalation) = self.escalation.take() {
            let _ = escalation.send(reason);
        }
    }
}

impl Actor for Root {
    type Context = Context<Self>;
}

impl Handler<ChildEvent> for Root {
    type Result = ();

    fn handle(&mut self, event: ChildEvent, _: &mut Context<Self>) {
        if let Outcome::Escalate(reason) = self.children.handle(event) {
            self.escalate(reason);
        }
    }
}

impl Handler<Retire> for Root {
    type Result = ResponseFuture<()>;

    /// Retires the root manager, which retires its components first; from
    /// now on an actor that stops is no death to report.
    fn handle(&mut self, _: Retire, _: &mut Context<Self>) -> Self::Result {
        self.shared.stopping.begin();
        let managers = self.children.actors();
        Box::pin(async move {
            futures_util::future::join_all(managers.iter().map(|manager| manager.send(Retire)))
                .await;
        })
    }
}
