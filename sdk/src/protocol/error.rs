//! The error object of a status message, and the codes it carries.

use serde::ser::SerializeMap;
use serde_json::{Map, Value};
use std::fmt;

/// Why an error was published. The numeric value is the `code` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// The component itself failed (a kind reported an error).
    Failed = 1,
    /// The body was not a JSON object with well-typed fields.
    MalformedMessage = 2,
    /// The `action` names no action of the protocol.
    UnknownAction = 3,
    /// The action would make a transition the table does not allow.
    InvalidTransition = 4,
    /// `parameters` failed the component's JSON schema for the action.
    InvalidParameters = 5,
    /// The action is not supported by this component (e.g. `create` sent to
    /// a simulator).
    Unsupported = 6,
    /// `create` named a uuid that already exists.
    DuplicateUuid = 7,
    /// `delete` named a uuid this manager does not manage.
    UnknownComponent = 8,
    /// The component crashed or its process died.
    Crashed = 9,
    /// The body exceeded the configured size limit.
    TooLarge = 10,
    /// The component failed more often than its restart budget allows: its
    /// supervisor stopped restarting it until an operator `reset`.
    RestartBudgetSpent = 11,
    /// The external system the component drives (a VILLASnode, a relay,
    /// an API) is unreachable, stalled or answered with an error. The
    /// component retries by itself and leaves `error` once the remote
    /// answers; not a failure its supervisor acts on (restarting the
    /// component does not bring a remote back).
    Remote = 12,
}

impl ErrorCode {
    /// A short machine-readable name, published as `error.kind`.
    pub const fn name(self) -> &'static str {
        match self {
            ErrorCode::Failed => "failed",
            ErrorCode::MalformedMessage => "malformed-message",
            ErrorCode::UnknownAction => "unknown-action",
            ErrorCode::InvalidTransition => "invalid-transition",
            ErrorCode::InvalidParameters => "invalid-parameters",
            ErrorCode::Unsupported => "unsupported-action",
            ErrorCode::DuplicateUuid => "duplicate-uuid",
            ErrorCode::UnknownComponent => "unknown-component",
            ErrorCode::Crashed => "crashed",
            ErrorCode::TooLarge => "too-large",
            ErrorCode::RestartBudgetSpent => "restart-budget-spent",
            ErrorCode::Remote => "remote-error",
        }
    }

    /// Whether an error with this code is a failure of the component at
    /// run time (what its supervisor reacts to), as opposed to a refused
    /// or ill-formed request.
    pub const fn is_failure(self) -> bool {
        matches!(self, ErrorCode::Failed | ErrorCode::Crashed)
    }
}

/// The error object of a status: serialised as
/// `{"message": .., "msg": .., "code": .., "kind": .., ...details}` so that
/// clients of the protocol page (`message`) and of the reference (`msg`)
/// both read it.
#[derive(Debug, Clone, PartialEq)]
pub struct ErrorInfo {
    /// Human-readable text.
    pub message: String,
    /// Why it happened.
    pub code: ErrorCode,
    /// Extra fields (the failing schema path, the refused action, ...).
    pub details: Map<String, Value>,
}

impl ErrorInfo {
    /// An error without details.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ErrorInfo {
            message: message.into(),
            code,
            details: Map::new(),
        }
    }

    /// Adds a detail field.
    #[must_use]
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.details.insert(key.to_owned(), value.into());
        self
    }
}

impl fmt::Display for ErrorInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message, self.code.name())
    }
}

impl std::error::Error for ErrorInfo {}

impl serde::Serialize for ErrorInfo {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(4 + self.details.len()))?;
        map.serialize_entry("message", &self.message)?;
        map.serialize_entry("msg", &self.message)?;
        map.serialize_entry("code", &(self.code as u32))?;
        map.serialize_entry("kind", self.code.name())?;
        for (key, value) in &self.details {
            if !matches!(key.as_str(), "message" | "msg" | "code" | "kind") {
                map.serialize_entry(key, value)?;
            }
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serialises_both_message_keys() {
        let error = ErrorInfo::new(ErrorCode::InvalidParameters, "bad").with("path", "/runtime");
        let value = serde_json::to_value(&error).unwrap();
        assert_eq!(value["message"], "bad");
        assert_eq!(value["msg"], "bad");
        assert_eq!(value["code"], 5);
        assert_eq!(value["kind"], "invalid-parameters");
        assert_eq!(value["path"], "/runtime");
    }

    #[test]
    fn details_cannot_shadow_core_fields() {
        let error = ErrorInfo::new(ErrorCode::Failed, "real").with("message", "fake");
        let text = serde_json::to_string(&error).unwrap();
        assert_eq!(text.matches("\"message\"").count(), 1);
        assert!(text.contains("\"real\""));
    }
}
