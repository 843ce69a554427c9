//! # villas-actors
//!
//! The actor runtime of villas-controller. The built-in kinds it held
//! moved to their own crates under `kinds/` (`villas-kind-dummy`,
//! `villas-kind-generic`, `villas-kind-generic-manager`); the daemon
//! selects them with cargo features (`villas_controller::builtin_kinds`).
