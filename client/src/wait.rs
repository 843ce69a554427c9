//! Waiting for ICs to reach a state after an action: follows the statuses
//! of the ICs an action addressed until each reaches STATE or one of them
//! fails (the caller owns the deadline). Pure bookkeeping over received
//! statuses (the caller feeds it, see [`crate::follow`]), so the rules are
//! unit-tested here:
//!
//! - an IC counts once it published STATE (later changes do not undo it);
//! - `error` (unless STATE is `error`) or `gone` (unless STATE is `gone`)
//!   fails the wait;
//! - a refusal of this action by an addressed IC (an error object whose
//!   `action` is this action) fails the wait, except `unsupported-action`:
//!   an IC that does not support the action (a manager reached by a
//!   realm-wide `start`) is dropped from the wait with a note.

use crate::filter::identity_of;
use serde_json::Value;
use std::collections::BTreeMap;
use villas_sdk::protocol::StatusView;
use villas_sdk::{Headers, State};

/// Where the wait stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Some ICs have not reached the state yet.
    Pending,
    /// Every IC reached it.
    Reached,
    /// The wait failed, and why.
    Failed(String),
}

/// One watched IC.
#[derive(Debug, Clone)]
struct Watched {
    /// Its name, for messages.
    name: String,
    /// The last state it published.
    last: Option<State>,
    /// Whether it reached the target.
    reached: bool,
}

/// Something worth telling the user as it happens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// A watched IC changed state.
    State {
        /// Its uuid.
        uuid: String,
        /// Its name.
        name: String,
        /// The new state.
        state: State,
    },
    /// An IC does not support the action and is no longer waited for.
    Dropped {
        /// Its uuid.
        uuid: String,
        /// Why.
        message: String,
    },
}

/// The bookkeeping of one `--wait`.
#[derive(Debug)]
pub struct Waiter {
    /// The state to reach.
    target: State,
    /// The action sent (its wire name).
    action: String,
    /// The headers it was sent with: whose refusals count.
    addressed: Headers,
    /// The ICs waited for, by uuid.
    watched: BTreeMap<String, Watched>,
    /// The first failure.
    failure: Option<String>,
}

impl Waiter {
    /// Waits for `uuids` (with their names) to reach `target` after
    /// `action` was sent with `addressed`.
    pub fn new(
        target: State,
        action: &str,
        addressed: Headers,
        uuids: impl IntoIterator<Item = (String, String)>,
    ) -> Self {
        Waiter {
            target,
            action: action.to_owned(),
            addressed,
            watched: uuids
                .into_iter()
                .map(|(uuid, name)| {
                    (
                        uuid,
                        Watched {
                            name,
                            last: None,
                            reached: false,
                        },
                    )
                })
                .collect(),
            failure: None,
        }
    }

    /// Takes a status received after the action was sent.
    pub fn observe(&mut self, status: &StatusView) -> Option<Progress> {
        let identity = identity_of(status)?;
        let state = status.status.state;
        if let Some(error) = self.refusal(status) {
            let kind = error.get("kind").and_then(Value::as_str).unwrap_or("");
            let message = error_message(error);
            if kind == "unsupported-action" {
                if self.watched.remove(&identity.uuid).is_some() {
                    return Some(Progress::Dropped {
                        uuid: identity.uuid,
                        message,
                    });
                }
                return None;
            }
            if identity.matches(&self.addressed) || self.watched.contains_key(&identity.uuid) {
                self.fail(format!(
                    "{} refused {}: {message}",
                    describe(&identity.uuid, status),
                    self.action
                ));
            }
        }
        let watched = self.watched.get_mut(&identity.uuid)?;
        if watched.name.is_empty() {
            if let Some(name) = status.properties.get("name").and_then(Value::as_str) {
                watched.name = name.to_owned();
            }
        }
        let changed = watched.last != Some(state);
        watched.last = Some(state);
        if !watched.reached {
            if state == self.target {
                watched.reached = true;
            } else if state == State::Error {
                let message = status.status.error.as_ref().map(error_message);
                let failure = format!(
                    "{} is in error: {}",
                    describe(&identity.uuid, status),
                    message.unwrap_or_default()
                );
                self.fail(failure);
            } else if state == State::Gone {
                let failure = format!("{} is gone", describe(&identity.uuid, status));
                self.fail(failure);
            }
        }
        let watched = self.watched.get(&identity.uuid)?;
        changed.then(|| Progress::State {
            uuid: identity.uuid,
            name: watched.name.clone(),
            state,
        })
    }

    /// The error object of `status` if it refuses this action.
    fn refusal<'a>(&self, status: &'a StatusView) -> Option<&'a Value> {
        let error = status.status.error.as_ref()?;
        (error.get("action").and_then(Value::as_str) == Some(self.action.as_str())).then_some(error)
    }

    fn fail(&mut self, message: String) {
        self.failure.get_or_insert(message);
    }

    /// Where the wait stands.
    pub fn verdict(&self) -> Verdict {
        if let Some(failure) = &self.failure {
            return Verdict::Failed(failure.clone());
        }
        if self.watched.is_empty() {
            return Verdict::Failed(format!("no addressed IC supports {}", self.action));
        }
        if self.watched.values().all(|w| w.reached) {
            Verdict::Reached
        } else {
            Verdict::Pending
        }
    }

    /// The ICs still pending and their last states, for a timeout message.
    pub fn pending(&self) -> String {
        let pending: Vec<String> = self
            .watched
            .iter()
            .filter(|(_, w)| !w.reached)
            .map(|(uuid, w)| {
                let last = w.last.map_or("no status", State::as_str);
                format!("{uuid} ({}) still {last}", w.name)
            })
            .collect();
        format!("waiting for {}: {}", self.target, pending.join(", "))
    }

    /// The uuids still waited for.
    pub fn uuids(&self) -> impl Iterator<Item = &str> {
        self.watched.keys().map(String::as_str)
    }
}

/// `uuid (name)`.
fn describe(uuid: &str, status: &StatusView) -> String {
    match status.properties.get("name").and_then(Value::as_str) {
        Some(name) if !name.is_empty() => format!("{uuid} ({name})"),
        _ => uuid.to_owned(),
    }
}

/// The message of an error object (`message`, or the reference's `msg`).
fn error_message(error: &Value) -> String {
    error
        .get("message")
        .or_else(|| error.get("msg"))
        .and_then(Value::as_str)
        .map_or_else(|| error.to_string(), str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn status(uuid: &str, category: &str, state: &str, error: Option<Value>) -> StatusView {
        let mut body = json!({
            "status": {"state": state},
            "properties": {"uuid": uuid, "name": "n", "category": category, "type": "dummy", "realm": "lab"}
        });
        if let Some(error) = error {
            body["status"]["error"] = error;
        }
        serde_json::from_value(body).unwrap()
    }

    fn waiter(uuids: &[&str]) -> Waiter {
        let addressed = Headers {
            realm: Some("lab".into()),
            ..Headers::default()
        };
        Waiter::new(
            State::Running,
            "start",
            addressed,
            uuids.iter().map(|u| ((*u).to_owned(), String::new())),
        )
    }

    #[test]
    fn every_ic_must_reach_the_state() {
        let mut w = waiter(&["a", "b"]);
        w.observe(&status("a", "simulator", "starting", None));
        w.observe(&status("a", "simulator", "running", None));
        assert_eq!(w.verdict(), Verdict::Pending);
        assert!(w.pending().contains("b () still no status"));
        w.observe(&status("a", "simulator", "stopping", None));
        w.observe(&status("b", "simulator", "running", None));
        assert_eq!(w.verdict(), Verdict::Reached);
        assert_eq!(w.uuids().collect::<Vec<_>>(), ["a", "b"]);
    }

    #[test]
    fn error_fails_the_wait() {
        let mut w = waiter(&["a"]);
        w.observe(&status(
            "a",
            "simulator",
            "error",
            Some(json!({"message": "boom", "kind": "crashed"})),
        ));
        assert_eq!(
            w.verdict(),
            Verdict::Failed("a (n) is in error: boom".into())
        );
    }

    #[test]
    fn a_refusal_fails_but_unsupported_drops() {
        let mut w = waiter(&["a", "m"]);
        let unsupported = json!({"message": "no", "kind": "unsupported-action", "action": "start"});
        assert!(matches!(
            w.observe(&status("m", "manager", "idle", Some(unsupported))),
            Some(Progress::Dropped { .. })
        ));
        let refused = json!({"message": "running -> starting", "kind": "invalid-transition", "action": "start"});
        w.observe(&status("a", "simulator", "running", Some(refused)));
        assert!(matches!(w.verdict(), Verdict::Failed(m) if m.contains("refused start")));
    }

    #[test]
    fn refusals_of_other_actions_do_not_count() {
        let mut w = waiter(&["a"]);
        let other = json!({"message": "x", "kind": "invalid-transition", "action": "resume"});
        w.observe(&status("a", "simulator", "running", Some(other)));
        assert_eq!(w.verdict(), Verdict::Reached);
    }

    #[test]
    fn nobody_left_is_a_failure() {
        let w = waiter(&[]);
        assert!(matches!(w.verdict(), Verdict::Failed(_)));
    }
}
