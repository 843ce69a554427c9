//! # villas-controller
//!
//! The daemon that orchestrates the infrastructure components (ICs) of a
//! distributed real-time simulation lab over the VILLAScontroller protocol.
//! Protocol types and the component SDK live in `villas-sdk`; the IC
//! actors, the supervision tree and the ports in `villas-actors`; the
//! built-in kinds in their own crates under `kinds/` ([`builtin_kinds()`]);
//! this crate is the daemon around them, in three layers:
//!
//! ```text
//! transport   bus::amqp (AMQP: consumer, link, publish loop)  bus::local (in-process)
//!                 │ implements villas_actors::ports::Transport; hands every
//!                 │ message to the Intake, drains the Outbox
//! ports       villas_actors::ports (Intake, Dispatch, Publisher, BusHandle)
//!                 │
//! IC tree     villas_actors (Root, IcActor, Supervisor, Directory, store)
//!
//! around them: settings (each section validated by its owner), api (HTTP,
//! looks components up in the Directory), daemon (wiring and THE ordered
//! stop), entry + cli + client (the command line), notify, telemetry, exit
//! ```
//!
//! At run time:
//!
//! ```text
//! actix System (main thread; lapin I/O and the HTTP worker have their own)
//! ├── AmqpBus ── consumer actor: one queue, one binding; every delivery to
//! │              the Intake, which fans it out through the Directory;
//! │              publish loop for status messages
//! │              (or the in-process bus when no broker is configured)
//! ├── HTTP API (actix-web, 1 worker thread) ── looks components up in the Directory
//! └── Root ── supervises the root manager (see villas-actors for the tree)
//! ```
//!
//! No module of `bus` knows the IC layer (only its ports), and the modules
//! of this crate form no import cycle. [`entry::main_with_kinds`] is all a
//! lab's own binary calls.

// The public surface: the entry point a lab's binary calls, plus what the
// tests and the fuzzer reach in for (`api::ROUTES`, to check the OpenAPI
// document against the router, and `settings::check_text`). Everything
// else is crate-private, so the compiler reports what nothing uses.
pub mod api;
mod builtin_kinds;
mod bus;
mod cli;
mod client;
mod daemon;
pub mod entry;
mod exit;
mod kind_admin;
mod notify;
mod reload;
pub mod settings;
mod signals;
mod telemetry;

pub use builtin_kinds::builtin_kinds;
