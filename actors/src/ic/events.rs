//! The messages of the supervision tree and the supervisor's side of them:
//! a component tells its supervisor (its manager's actor, or the root for
//! the root manager) that it failed, that its run ended, that an operator
//! reset it, or (from its drop guard) that its actor died; the supervisor
//! answers with [`Restart`] after a backoff or [`GiveUp`] when the budget
//! is spent, and escalates a manager's spent budget towards the root.

use crate::ic::policy::{Decision, Exit, Supervised};
use actix::prelude::*;
use villas_sdk::{ComponentSpec, ErrorInfo, State};

/// A supervised component reports to its supervisor.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct ChildEvent {
    /// The component.
    pub uuid: String,
    /// What happened.
    pub event: ChildEventKind,
}

/// What a supervised component reports.
#[derive(Debug)]
pub enum ChildEventKind {
    /// It failed, or its run ended by itself.
    Exited(Exit),
    /// An operator reset it: its restart budget starts over.
    OperatorReset,
    /// Its actor stopped without being removed (a bug in the daemon: kind
    /// code runs behind a panic guard); the supervisor rebuilds it from
    /// its definition.
    ActorDied {
        /// The definition to rebuild it from.
        spec: Box<ComponentSpec>,
        /// Its manager.
        managed_by: Option<String>,
    },
    /// A manager below spent its restart budget: the daemon must stop.
    Escalated(String),
}

/// Supervisor -> component: reset now, then start again if `start`;
/// ignored unless the component is still in `expected` (an operator may
/// have acted during the backoff).
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Restart {
    /// Re-issue the last `start` once `idle`.
    pub start: bool,
    /// The state the exit left it in (`error`, or `idle` after a run that
    /// ended by itself).
    pub expected: State,
}

/// Supervisor -> component: stay in `error` with this error.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct GiveUp(pub ErrorInfo);

/// What the supervisor must do beyond messaging the component.
#[derive(Debug, PartialEq)]
pub enum Outcome {
    /// Nothing more.
    Handled,
    /// A manager's budget is spent: escalate with this reason.
    Escalate(String),
}

/// Applies the restart rules to `exit` of component `uuid` at `child`:
/// schedules its [`Restart`] or sends [`GiveUp`]; logs either way.
pub fn on_exit(
    supervised: &mut Supervised,
    uuid: &str,
    exit: &Exit,
    child: Recipient<Restart>,
    give_up: Recipient<GiveUp>,
) -> Outcome {
    let Some((decision, is_manager)) = supervised.on_exit(uuid, exit) else {
        return Outcome::Handled;
    };
    match decision {
        Decision::Nothing => Outcome::Handled,
        Decision::Restart {
            after,
            start,
            restarts,
        } => {
            let policy = supervised.policy(uuid).map_or("never", |p| p.as_str());
            tracing::warn!(%uuid, ?after, start, restarts, policy, ?exit, "restarting component through reset");
            let expected = match exit {
                Exit::Failed(_) => State::Error,
                Exit::Completed => State::Idle,
            };
            actix::spawn(async move {
                actix::clock::sleep(after).await;
                child.do_send(Restart { start, expected });
            });
            Outcome::Handled
        }
        Decision::GiveUp(error) => {
            tracing::error!(%uuid, %error, "restart budget spent; the component stays in error until an operator reset");
            let reason = format!("component {uuid}: {}", error.message);
            give_up.do_send(GiveUp(error));
            if is_manager {
                Outcome::Escalate(reason)
            } else {
                Outcome::Handled
            }
        }
    }
}
