//! The IC layer: one actor per component ([`actor`]), the directory of
//! every running one ([`directory`]), the one supervisor implementation
//! managers and the root share (`children`), the messages of the
//! supervision tree (`events`), a component's restart bookkeeping
//! (`restart`) and the restart rules ([`policy`]). An actor and its
//! supervisor, its directory entry and its events refer to each other by
//! nature (an actor owns the supervisor of its components, which owns
//! their actors): that recursion stays inside this module.

pub mod actor;
pub(crate) mod children;
pub mod directory;
pub(crate) mod events;
pub mod policy;
pub(crate) mod restart;
