//! Which ICs a command addresses: the reference CLI's filter flags
//! (`realm`, `category`, `type`, `uuid`) as [`Headers`], and the pings
//! that find those ICs, ours and the reference's alike.

use serde_json::Value;
use villas_sdk::protocol::StatusView;
use villas_sdk::{Headers, Identity};

/// The categories of the reference's components, pinged one by one when
/// a filter addresses every IC.
pub const CATEGORIES: [&str; 3] = ["simulator", "manager", "gateway"];

/// The headers a command addresses ICs with (an action is delivered with
/// `x-match: any`: one matching header suffices, and an empty value
/// matches every IC of ours).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// The headers.
    pub headers: Headers,
}

impl From<Headers> for Filter {
    fn from(headers: Headers) -> Filter {
        Filter { headers }
    }
}

impl Filter {
    /// No header: every IC (for [`Filter::pings`]).
    pub fn everyone() -> Filter {
        Filter::default()
    }

    /// One IC by uuid.
    pub fn uuid(uuid: impl Into<String>) -> Filter {
        Filter::from(Headers::uuid(uuid))
    }

    /// The same filter with a `realm` header.
    #[must_use]
    pub fn realm(mut self, realm: impl Into<String>) -> Filter {
        self.headers.realm = Some(realm.into());
        self
    }

    /// The same filter with a `category` header.
    #[must_use]
    pub fn category(mut self, category: impl Into<String>) -> Filter {
        self.headers.category = Some(category.into());
        self
    }

    /// The same filter with a `type` header.
    #[must_use]
    pub fn type_name(mut self, type_name: impl Into<String>) -> Filter {
        self.headers.type_name = Some(type_name.into());
        self
    }

    /// The headers.
    pub fn headers(&self) -> &Headers {
        &self.headers
    }

    /// The headers of the pings that find the ICs the filter addresses:
    /// the filter's own headers when it sets any (the reference answers
    /// those too: its components bind `x-match: any` on their headers);
    /// without a filter, `uuid: ""` (every IC of ours, as VILLASweb
    /// pings) plus one ping per category, which the reference answers
    /// (it ignores the empty uuid: its bindings match no empty value).
    pub fn pings(&self) -> Vec<Headers> {
        if !self.headers.is_empty() {
            return vec![self.headers.clone()];
        }
        let mut pings = vec![Headers::uuid("")];
        pings.extend(CATEGORIES.iter().map(|category| Headers {
            category: Some((*category).to_owned()),
            ..Headers::default()
        }));
        pings
    }

    /// The uuid when it is the only header: a command can stop as soon as
    /// that one IC answered.
    pub fn only_uuid(&self) -> Option<&str> {
        match &self.headers {
            Headers {
                realm: None,
                category: None,
                type_name: None,
                uuid: Some(uuid),
            } if !uuid.is_empty() => Some(uuid),
            _ => None,
        }
    }
}

/// The addressable identity in a status's properties; `None` without a
/// category, type or uuid.
pub fn identity_of(status: &StatusView) -> Option<Identity> {
    let text = |key: &str| {
        status
            .properties
            .get(key)
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    Some(Identity {
        realm: text("realm"),
        category: text("category")?,
        type_name: text("type")?,
        uuid: text("uuid")?,
    })
}

/// Whether `status` comes from an IC that `headers` address (x-match
/// any; an empty value addresses everyone).
pub fn addressed_by(status: &StatusView, headers: &Headers) -> bool {
    identity_of(status).is_some_and(|identity| identity.matches(headers))
}

/// `name="value" ...`, for messages.
pub fn describe_headers(headers: &Headers) -> String {
    let pairs: Vec<String> = headers
        .iter()
        .map(|(name, value)| format!("{name}={value:?}"))
        .collect();
    pairs.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ping_without_filter_addresses_everyone_and_each_category() {
        let category = |c: &str| Headers {
            category: Some(c.into()),
            ..Headers::default()
        };
        assert_eq!(
            Filter::everyone().pings(),
            [
                Headers::uuid(""),
                category("simulator"),
                category("manager"),
                category("gateway")
            ]
        );
        let filter = Filter::everyone().realm("lab");
        assert_eq!(filter.pings(), [filter.headers().clone()]);
        assert_eq!(filter.only_uuid(), None);
        assert_eq!(Filter::uuid("x").only_uuid(), Some("x"));
        assert_eq!(Filter::uuid("").only_uuid(), None);
        assert_eq!(Filter::uuid("x").realm("lab").only_uuid(), None);
    }

    #[test]
    fn a_status_is_addressed_by_any_matching_header() {
        let status: StatusView = serde_json::from_value(json!({
            "status": {"state": "idle"},
            "properties": {"uuid": "u", "category": "simulator", "type": "dummy", "realm": "lab"}
        }))
        .unwrap();
        assert!(addressed_by(&status, &Headers::uuid("")));
        assert!(addressed_by(
            &status,
            Filter::everyone().realm("lab").headers()
        ));
        assert!(!addressed_by(&status, &Headers::uuid("v")));
        assert_eq!(
            describe_headers(Filter::uuid("u").realm("lab").headers()),
            "realm=\"lab\" uuid=\"u\""
        );
    }
}
