//! What the owner of a settings section reports when a value cannot be
//! used: the key and what is wrong. The settings loader adds the file.

/// A setting that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("key {key}: {message}")]
pub struct InvalidSetting {
    /// The key path (`broker.url`, `components[2].manager`).
    pub key: String,
    /// What is wrong.
    pub message: String,
}

impl InvalidSetting {
    /// `key` has an unusable value: `message`.
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        InvalidSetting {
            key: key.into(),
            message: message.into(),
        }
    }
}

/// `value` (else `default`) of `key` as a duration: a positive, finite
/// number of seconds.
pub fn positive_seconds(
    key: &str,
    value: Option<f64>,
    default: f64,
) -> Result<std::time::Duration, InvalidSetting> {
    let value = value.unwrap_or(default);
    if value.is_finite() && value > 0.0 && value < 1e7 {
        Ok(std::time::Duration::from_secs_f64(value))
    } else {
        Err(InvalidSetting::new(
            key,
            format!("must be a positive number of seconds, not {value}"),
        ))
    }
}
