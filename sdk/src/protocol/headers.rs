//! Addressing: the four AMQP headers and the `x-match: any` rule by which a
//! message reaches a component.

use serde::{Deserialize, Serialize};

/// The addressing headers a message carries (`realm`, `category`, `type`,
/// `uuid`). A header that is absent, or present but not a string, is `None`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Headers {
    /// `realm` header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub realm: Option<String>,
    /// `category` header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    /// `type` header.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_name: Option<String>,
    /// `uuid` header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
}

/// The header names, in the order the protocol page lists them.
pub const HEADER_NAMES: [&str; 4] = ["realm", "category", "type", "uuid"];

impl Headers {
    /// Headers addressing one component by uuid, as VILLASweb sends them.
    pub fn uuid(uuid: impl Into<String>) -> Self {
        Headers {
            uuid: Some(uuid.into()),
            ..Headers::default()
        }
    }

    /// The header values as (name, value) pairs, present ones only.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &str)> {
        HEADER_NAMES
            .into_iter()
            .zip([&self.realm, &self.category, &self.type_name, &self.uuid])
            .filter_map(|(name, value)| value.as_deref().map(|v| (name, v)))
    }

    /// Whether the message carries none of the four headers (it reaches nobody).
    pub fn is_empty(&self) -> bool {
        self.iter().next().is_none()
    }

    /// Whether some header is the empty string, which addresses every component.
    pub fn addresses_everyone(&self) -> bool {
        self.iter().any(|(_, value)| value.is_empty())
    }

    /// Sets a header by its wire name; unknown names are ignored.
    pub fn set(&mut self, name: &str, value: String) {
        match name {
            "realm" => self.realm = Some(value),
            "category" => self.category = Some(value),
            "type" => self.type_name = Some(value),
            "uuid" => self.uuid = Some(value),
            _ => {}
        }
    }
}

/// The addressable identity of a component: its own value for each header.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Identity {
    /// The realm, if the component has one. A component without a realm is
    /// never matched through the `realm` header.
    pub realm: Option<String>,
    /// The category (`simulator`, `gateway`, `manager`, ...).
    pub category: String,
    /// The type within the category (`dummy`, `generic`, ...).
    pub type_name: String,
    /// The uuid, in its canonical hyphenated lower-case form.
    pub uuid: String,
}

impl Identity {
    /// Whether a message with these headers reaches the component: any
    /// header equal to the component's own value (`x-match: any`), or any
    /// header that is the empty string (addresses everyone).
    pub fn matches(&self, headers: &Headers) -> bool {
        if headers.addresses_everyone() {
            return true;
        }
        let own = [
            self.realm.as_deref(),
            Some(self.category.as_str()),
            Some(self.type_name.as_str()),
            Some(self.uuid.as_str()),
        ];
        own.into_iter()
            .zip([
                &headers.realm,
                &headers.category,
                &headers.type_name,
                &headers.uuid,
            ])
            .any(|(own, theirs)| matches!((own, theirs), (Some(a), Some(b)) if a == b))
    }

    /// The headers a status message of this component is published with.
    pub fn headers(&self) -> Headers {
        Headers {
            realm: self.realm.clone(),
            category: Some(self.category.clone()),
            type_name: Some(self.type_name.clone()),
            uuid: Some(self.uuid.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sim() -> Identity {
        Identity {
            realm: Some("de.rwth".into()),
            category: "simulator".into(),
            type_name: "dummy".into(),
            uuid: "3ddd318e-fee1-46d7-bff4-7c064d640d4e".into(),
        }
    }

    fn h(pairs: &[(&str, &str)]) -> Headers {
        let mut headers = Headers::default();
        for (k, v) in pairs {
            headers.set(k, (*v).to_owned());
        }
        headers
    }

    #[test]
    fn any_single_header_matches() {
        let id = sim();
        assert!(id.matches(&h(&[("realm", "de.rwth")])));
        assert!(id.matches(&h(&[("category", "simulator")])));
        assert!(id.matches(&h(&[("type", "dummy")])));
        assert!(id.matches(&h(&[("uuid", &id.uuid)])));
    }

    #[test]
    fn any_not_all() {
        let id = sim();
        assert!(id.matches(&h(&[("realm", "other"), ("type", "dummy")])));
        assert!(!id.matches(&h(&[("realm", "other"), ("type", "generic")])));
    }

    #[test]
    fn no_headers_reach_nobody() {
        assert!(!sim().matches(&Headers::default()));
        assert!(Headers::default().is_empty());
    }

    #[test]
    fn empty_value_addresses_everyone() {
        assert!(sim().matches(&h(&[("uuid", "")])));
        assert!(sim().matches(&h(&[("realm", ""), ("uuid", "nope")])));
    }

    #[test]
    fn missing_own_value_never_matches() {
        let mut id = sim();
        id.realm = None;
        assert!(!id.matches(&h(&[("realm", "de.rwth")])));
        assert!(id.matches(&h(&[("realm", "de.rwth"), ("type", "dummy")])));
    }

    #[test]
    fn values_are_compared_exactly() {
        assert!(!sim().matches(&h(&[("type", "Dummy")])));
        assert!(!sim().matches(&h(&[("uuid", "3DDD318E-FEE1-46D7-BFF4-7C064D640D4E")])));
    }

    #[test]
    fn status_headers_carry_identity() {
        let id = sim();
        let headers = id.headers();
        assert_eq!(headers.iter().count(), 4);
        assert!(id.matches(&headers));
    }
}
