//! # villas-actors
//!
//! The actor runtime of villas-controller: one actor per infrastructure
//! component (IC), the supervision tree above them, and the ports a
//! transport plugs into. It knows no transport and no configuration file:
//! the daemon (`villas-controller`) wires a transport, the settings and the
//! HTTP API around it.
//!
//! ## Supervision tree
//!
//! ```text
//! Root ── supervises the root manager; an escalation ends here (the daemon stops, exit 70)
//! └── IcActor: manager/generic (the daemon's uuid, managed_by = itself)
//!     │        its Supervisor: the actors of the components it manages,
//!     │        their restart trackers, what follows each ChildEvent
//!     ├── IcActor: simulator/dummy      (managed_by = the root manager)
//!     ├── IcActor: configured manager   (managed_by = the root manager)
//!     │   └── IcActor: ...              (its `manager` property names it)
//!     └── IcActor: ...                  (created by `create`, stored)
//! ```
//!
//! Every IC is an [`IcActor`](ic::actor::IcActor) driving its kind through
//! `villas_sdk::Driver`, inside a tracing span `ic{uuid=...}`. A component
//! reports failures, finished runs, operator resets and (from its drop
//! guard) the death of its own actor to its supervisor: its manager's
//! actor, or the [`Root`](root::Root) for the root manager. Both supervise
//! through the same `ic::children::Supervisor`: a reset after a backoff,
//! then a start again if the component's `restart` policy says so, within
//! a restart budget ([`ic::policy`]); a dead component's actor is rebuilt
//! from its definition (a manager's keeps its components); a manager's
//! spent budget escalates towards the root.
//!
//! ## Around the tree
//!
//! - [`ports`]: what a transport sees of the tree ([`ports::Intake`],
//!   [`ports::Dispatch`], [`ports::Publisher`]) and what the daemon sees
//!   of a transport ([`ports::Transport`], [`ports::BusHandle`]).
//! - [`ic::directory`]: every running component, by uuid, realm, category
//!   and type ([`routing`]); it is the `Dispatch` the intake fans out
//!   through and what the HTTP API looks components up in.
//! - [`placement`]: the configured components, checked and placed once
//!   (the daemon's uuid is the root manager; everything goes under it or
//!   under the configured manager its `manager` property names).
//! - [`store`]: the state directory (components created with `create`,
//!   data directories, the daemon's uuid).
//! - [`kinds`]: the kinds the daemon can build components from.
//! - [`process`]: kinds served by kind processes (`docs/kind-protocol.md`),
//!   their host threads and supervision.
//!
//! The kinds themselves are not here: each is a crate of its own under
//! `kinds/`, and the daemon selects them with cargo features
//! (`villas_controller::builtin_kinds`).

pub mod ic;
pub mod invalid;
pub mod kinds;
pub mod placement;
pub mod ports;
pub mod process;
pub mod root;
pub mod routing;
pub mod store;
