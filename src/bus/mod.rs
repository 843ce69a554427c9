//! The transports: the AMQP bus ([`amqp`], with its publish loop, the
//! outage store and the redelivery filter) and the in-process bus
//! ([`local`]) used when no broker is configured. Both implement `crate::ports::Transport`; neither knows
//! the component tree, only the ports.

pub mod amqp;
pub mod connect;
pub mod local;

/// The AMQP `type` property our status messages carry, so that the
/// consumer drops its own status traffic without parsing it.
pub const STATUS_MESSAGE_TYPE: &str = "villas.status";
