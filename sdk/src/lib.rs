//! # villas-sdk
//!
//! The VILLAScontroller protocol and the SDK for infrastructure-component
//! kinds, free of any transport: a lab writes its own kind in its own crate
//! against this crate alone and registers it with the daemon.
//!
//! - [`protocol`]: headers and the `x-match: any` rule, action messages,
//!   status messages, states and the transition table, the error object.
//! - [`typed`]: how a kind is written: typed properties and action
//!   parameters (serde types whose generated JSON schemas are the ones
//!   published), typed timers and task outputs.
//! - [`component`]: the dynamic [`Kind`] and [`Component`] traits the
//!   daemon drives (the typed layer implements them) and the [`Context`]
//!   kind code acts through.
//! - [`driver`]: the state machine that runs every instance (what the
//!   daemon's IC actor wraps).
//! - [`kind_protocol`]: the kind process protocol (`docs/kind-protocol.md`):
//!   versions, the compatibility rule, the messages.
//! - [`time`]: timer ids and the clock a driver reads.
//! - `serve` (cargo feature `serve`): turns any [`Kind`] into a kind
//!   executable speaking the kind process protocol.
//! - `testing` (cargo feature `testing`): a harness that runs a kind
//!   under the driver on a virtual clock, and a fake manager.
//! - [`spec`], [`schema`]: component definitions and compiled JSON schemas.
//! - `transfer` (cargo feature `transfer`): model download and results
//!   upload over HTTP(S) for kinds that run simulations.

pub mod component;
pub mod driver;
pub mod kind_protocol;
pub mod protocol;
pub mod schema;
#[cfg(feature = "serve")]
pub mod serve;
pub mod spec;
#[cfg(feature = "testing")]
pub mod testing;
pub mod time;
#[cfg(feature = "transfer")]
pub mod transfer;
pub mod typed;

pub use component::{Admitted, Component, Context, Effect, Kind, ManagerOps, Task, TaskOutput};
pub use driver::{Driver, StatusExtra};
pub use protocol::{Action, ActionKind, ErrorCode, ErrorInfo, Headers, Identity, State};
pub use schema::{SchemaError, Schemas};
pub use spec::{ComponentSpec, SpecError};
pub use time::{Clock, ManualClock, TimerId, TimerToken};
pub use typed::{Ctx, TypedComponent, TypedKind};
