//! The IC layer: one actor per component ([`actor`]), the messages of
//! the supervision tree ([`events`]) and the restart rules ([`policy`]).

pub mod actor;
pub(crate) mod children;
pub(crate) mod events;
pub mod policy;
pub(crate) mod restart;
