//! The messages of the supervision tree: a component tells its supervisor
//! (its manager's actor, or the root for the root manager) that it
//! failed, that its run ended, that an operator reset it, or (from its
//! drop guard) that its actor died ([`ChildEvent`]); the supervisor
//! answers with [`Restart`] after a backoff or [`GiveUp`] when the budget
//! is spent, and tells the components of a rebuilt manager where to
//! report from then on ([`SupervisedBy`]). What the supervisor decides is
//! `super::children`'s; the rules are `super::policy`'s.

use super::children::Supervisor;
use super::policy::Exit;
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
        /// A manager's components, which outlive its actor: the rebuilt
        /// actor supervises them again.
        children: Option<Box<Supervisor>>,
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

/// Rebuilt supervisor -> its components: report here from now on (the
/// actor they reported to died; what they could not report since is
/// reported now).
#[derive(Message)]
#[rtype(result = "()")]
pub struct SupervisedBy(pub Recipient<ChildEvent>);

/// What a supervisor must do beyond messaging the component.
#[derive(Debug, PartialEq)]
pub enum Outcome {
    /// Nothing more.
    Handled,
    /// A manager's budget is spent, or the root manager's actor died:
    /// escalate with this reason.
    Escalate(String),
}
