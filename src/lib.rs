//! # villas-controller
//!
//! The daemon that orchestrates the infrastructure components (ICs) of a
//! distributed real-time simulation lab over the VILLAScontroller protocol.
//! Protocol types and the component SDK live in `villas-sdk`; the built-in
//! kinds in `villas-actors`; this crate is the daemon: settings, the bus,
//! the supervision tree, the HTTP API and the CLI.
//!
//! ## Supervision tree
//!
//! ```text
//! actix System (main thread; lapin I/O and the HTTP worker have their own)
//! ├── AmqpBus ── consumer actor: one queue, one binding; fans actions out
//! │              through the Directory; publish loop for status messages
//! │              (or the in-process bus when no broker is configured)
//! ├── HTTP API (actix-web, 1 worker thread) ── looks components up in the Directory
//! └── Root ── owns and supervises the root manager; the ordered shutdown
//!     └── IcActor: manager/generic (the daemon's uuid, managed_by = itself)
//!         ├── IcActor: simulator/dummy      (managed_by = the root manager)
//!         ├── IcActor: configured manager   (managed_by = the root manager)
//!         │   └── IcActor: ...              (its `manager` property names it)
//!         └── IcActor: ...                  (created by `create`)
//! ```
//!
//! Where each configured component goes is decided once, in [`tree`].
//!
//! Every IC is an actor driving its kind through `villas_sdk::Driver`; a
//! manager is an IC actor that also owns its components' actors
//! ([`component_actor::Children`]) and supervises them: failures, finished
//! runs, operator resets and actor deaths are reported to it
//! ([`supervisor::ChildEvent`]); it restarts through `reset` after a
//! backoff within a restart budget ([`supervision`]), and escalates a
//! manager's spent budget towards the root, which stops the daemon with
//! exit code 70 (`docs/supervision.md`).

// The public surface: the entry point a lab's binary calls, plus what the
// tests, the benches and the fuzzer reach in for until they use the
// villas-client crate (the AMQP helpers in `bus::amqp`, `api::ROUTES`,
// `settings::redact_url` and `settings::check_text`). Everything else is
// crate-private, so the compiler reports what nothing uses.
pub mod api;
pub mod bus;
mod cli;
// Public until its session moves to villas-client (`Received::headers` is
// read by no command, only by code that will use the library).
pub mod client;
mod daemon;
pub mod entry;
mod exit;
mod notify;
pub mod settings;
mod telemetry;
