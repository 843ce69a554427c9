//! # villas-sdk
//!
//! The VILLAScontroller protocol and the SDK for infrastructure-component
//! kinds, free of any transport: a lab writes its own kind in its own crate
//! against this crate alone and registers it with the daemon.
//!
//! - [`protocol`]: headers and the `x-match: any` rule, action messages,
//!   status messages, states and the transition table, the error object.
//! - [`component`]: the [`Kind`] and [`Component`] traits and the
//!   [`Context`] kind code acts through.
//! - [`driver`]: the state machine that runs every instance (what the
//!   daemon's IC actor wraps); use it to unit-test a kind.
//! - [`spec`], [`schema`]: component definitions and compiled JSON schemas.

pub mod component;
pub mod driver;
pub mod protocol;
pub mod schema;
pub mod spec;

pub use component::{Component, Context, Effect, Kind, ManagerOps, Task, TaskOutput, TimerToken};
pub use driver::{Driver, StatusExtra};
pub use protocol::{Action, ActionKind, ErrorCode, ErrorInfo, Headers, Identity, State};
pub use schema::{SchemaError, Schemas};
pub use spec::{ComponentSpec, SpecError};
