//! What can go wrong talking to ICs over the broker: one error type for the
//! whole crate, so a script can tell a broker problem (retry later) from an
//! IC that failed (look at the lab) from a wait that ran out of time.

use crate::connect::TlsError;
use std::time::Duration;

/// Why connecting to the broker failed.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// A TLS file cannot be used.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The broker refused us or cannot be reached, or declaring the
    /// exchange failed.
    #[error(transparent)]
    Amqp(#[from] lapin::Error),
    /// No connection within the time allowed.
    #[error("no connection within {} s", .0.as_secs_f64())]
    TimedOut(Duration),
}

/// An error of this crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The broker cannot be used.
    #[error("cannot use the broker at {broker} (exchange {exchange}): {source}")]
    Connect {
        /// The broker's URL, password redacted.
        broker: String,
        /// The exchange.
        exchange: String,
        /// What went wrong (boxed: it is large, and rare).
        source: Box<ConnectError>,
    },
    /// Declaring, binding or consuming a private queue failed.
    #[error("cannot subscribe: {0}")]
    Subscribe(#[source] lapin::Error),
    /// Another operation on the channel failed.
    #[error("cannot {what}: {source}")]
    Operation {
        /// What was attempted ("delete the exchange").
        what: &'static str,
        /// The broker's or lapin's answer.
        source: lapin::Error,
    },
    /// A message could not be handed to the broker.
    #[error("cannot publish: {0}")]
    Publish(#[source] lapin::Error),
    /// The broker refused a message (a negative publisher confirm).
    #[error("cannot publish: the broker refused the message")]
    Refused,
    /// The connection (or the consumer on it) ended.
    #[error("the connection to the broker was lost")]
    ConnectionLost,
    /// A wait ran out of time.
    #[error("timed out after {seconds} s: {detail}")]
    Timeout {
        /// The time allowed, in seconds.
        seconds: f64,
        /// What was awaited, and where things stood.
        detail: String,
    },
    /// An addressed IC ended in `error` or `gone`, refused the action, or
    /// nobody answered.
    #[error("{0}")]
    Failed(String),
    /// An action that cannot be sent as asked (e.g. a `delete` without the
    /// uuid to delete).
    #[error("{0}")]
    Input(String),
}

impl Error {
    /// A timeout after `allowed`.
    pub(crate) fn timeout(allowed: Duration, detail: String) -> Error {
        Error::Timeout {
            seconds: allowed.as_secs_f64(),
            detail,
        }
    }
}

/// The result of this crate's operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;
