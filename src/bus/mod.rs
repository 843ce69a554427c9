//! The transports: the AMQP bus ([`amqp`], with its publish loop
//! [`publish`], the outage store [`pending`] and the redelivery filter
//! [`redelivery`]) and the in-process bus ([`local`]) used when no broker
//! is configured. Both implement `crate::ports::Transport`; neither knows
//! the component tree, only the ports.

pub mod amqp;
pub mod connect;
pub mod local;
pub mod pending;
pub mod publish;
pub mod redelivery;

/// The AMQP `type` property our status messages carry, so that the
/// consumer drops its own status traffic without parsing it.
pub const STATUS_MESSAGE_TYPE: &str = "villas.status";
