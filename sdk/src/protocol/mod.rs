//! The VILLAScontroller wire protocol: addressing headers, action messages,
//! status messages, states and their transition table, the error object.
//! Pure data; no transport.

pub mod action;
pub mod error;
pub mod headers;
pub mod state;
pub mod status;

pub use action::{parse_body, Action, ActionError, ActionKind, Body};
pub use error::{ErrorCode, ErrorInfo};
pub use headers::{Headers, Identity, HEADER_NAMES};
pub use state::State;
pub use status::{hostname, unix_now, HostInfo, StatusBody, StatusMessage, StatusView};
