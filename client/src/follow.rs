//! Send an action and follow the ICs it addresses until each reaches a
//! state ([`Follow`], on the pure rules of [`Waiter`]): the ICs are first
//! found by a ping with the same headers (for `create`/`delete`: the
//! component named by `parameters.uuid`), then the action is sent and
//! their statuses are followed until every one reached the state, one
//! failed, or the deadline passed.

use crate::discover::Discovery;
use crate::error::{Error, Result};
use crate::filter::{describe_headers, Filter};
use crate::session::{Message, Session, Subscription};
use crate::wait::{Progress, Verdict, Waiter};
use crate::wire::Binding;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::time::Instant;
use villas_sdk::{Action, ActionKind, State};

/// How long the ICs a filter addresses are given to answer the ping that
/// finds them (unless the filter is one uuid: then until it answered).
pub const DISCOVERY_WINDOW: Duration = Duration::from_secs(1);

/// What a [`Follow`] step brought.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Something worth telling as it happens.
    Progress(Progress),
    /// Every followed IC reached the state.
    Reached,
}

/// One action being followed.
pub struct Follow {
    /// Every message on the exchange, since before the action was sent.
    subscription: Subscription,
    /// The rules.
    waiter: Waiter,
    /// When to give up.
    deadline: Instant,
    /// The time allowed, for the timeout error.
    allowed: Duration,
    /// The last status of every IC, by uuid.
    last: BTreeMap<String, Message>,
}

impl Follow {
    /// Finds the ICs `filter` addresses, sends `action` to them, and
    /// follows them until they are in `target`, for at most `timeout`
    /// (discovery included). A `create` or `delete` follows the component
    /// in its `parameters.uuid` instead (see [`component_uuid`]). Fails
    /// when no IC answered the discovery ping.
    pub async fn start(
        session: &Session,
        filter: &Filter,
        action: &Action,
        target: State,
        timeout: Duration,
    ) -> Result<Follow> {
        let deadline = Instant::now() + timeout;
        let mut subscription = session.subscribe(&Binding::Everything).await?;
        let watched = match action.kind {
            ActionKind::Create | ActionKind::Delete => {
                let uuid = text(&action.parameters, "uuid").ok_or_else(|| {
                    Error::Input(format!(
                        "{} needs parameters.uuid to be followed",
                        action.kind.as_str()
                    ))
                })?;
                let name = text(&action.parameters, "name").unwrap_or_default();
                BTreeMap::from([(uuid, name)])
            }
            _ => {
                let window = (Instant::now() + DISCOVERY_WINDOW).min(deadline);
                let until = if filter.only_uuid().is_some() {
                    deadline
                } else {
                    window
                };
                let mut discovery =
                    Discovery::start(session, &mut subscription, filter, until).await?;
                let mut found = BTreeMap::new();
                while let Some(reply) = discovery.next().await? {
                    let name = text(&reply.status.properties, "name").unwrap_or_default();
                    found.insert(reply.uuid, name);
                }
                found
            }
        };
        if watched.is_empty() {
            return Err(Error::Failed(format!(
                "no IC answered a ping with {}; nothing to wait for",
                describe_headers(filter.headers())
            )));
        }
        let waiter = Waiter::new(
            target,
            action.kind.as_str(),
            filter.headers().clone(),
            watched,
        );
        session.send(filter.headers(), action).await?;
        Ok(Follow {
            subscription,
            waiter,
            deadline,
            allowed: timeout,
            last: BTreeMap::new(),
        })
    }

    /// The next step: progress, or [`Step::Reached`] once every IC is in
    /// the state. [`Error::Failed`] when one failed or refused the action,
    /// [`Error::Timeout`] at the deadline.
    pub async fn step(&mut self) -> Result<Step> {
        loop {
            match self.waiter.verdict() {
                Verdict::Pending => {}
                Verdict::Reached => return Ok(Step::Reached),
                Verdict::Failed(message) => return Err(Error::Failed(message)),
            }
            let Some(message) = self.subscription.next_until(self.deadline).await? else {
                return Err(Error::timeout(self.allowed, self.waiter.pending()));
            };
            let Some(status) = message.status() else {
                continue;
            };
            if let Some(uuid) = status.uuid() {
                self.last.insert(uuid.to_owned(), message);
            }
            if let Some(progress) = self.waiter.observe(&status) {
                return Ok(Step::Progress(progress));
            }
        }
    }

    /// Follows to the end, ignoring progress.
    pub async fn wait(mut self) -> Result<Vec<Message>> {
        while self.step().await? != Step::Reached {}
        Ok(self.last_statuses().cloned().collect())
    }

    /// The last status received of every IC still followed.
    pub fn last_statuses(&self) -> impl Iterator<Item = &Message> {
        self.waiter.uuids().filter_map(|uuid| self.last.get(uuid))
    }
}

/// The uuid a `create`/`delete` is about: its `parameters.uuid`. A
/// `create` without one gets a fresh v4 uuid (so that it can be followed);
/// a `delete` without one is an [`Error::Input`]. Other actions are about
/// no single component: `None`.
pub fn component_uuid(action: &mut Action) -> Result<Option<String>> {
    if let Some(uuid) = text(&action.parameters, "uuid") {
        return Ok(matches!(action.kind, ActionKind::Create | ActionKind::Delete).then_some(uuid));
    }
    match action.kind {
        ActionKind::Create => {
            let uuid = uuid::Uuid::new_v4().hyphenated().to_string();
            action
                .parameters
                .insert("uuid".into(), Value::String(uuid.clone()));
            Ok(Some(uuid))
        }
        ActionKind::Delete => Err(Error::Input(
            "delete needs the uuid to delete in parameters.uuid".into(),
        )),
        _ => Ok(None),
    }
}

/// A string value of `map`.
fn text(map: &Map<String, Value>, key: &str) -> Option<String> {
    map.get(key).and_then(Value::as_str).map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_gets_a_uuid_to_follow() {
        let mut create = Action::new(ActionKind::Create);
        let uuid = component_uuid(&mut create).unwrap().unwrap();
        assert_eq!(create.parameters["uuid"], uuid.as_str());
        assert_eq!(component_uuid(&mut create).unwrap(), Some(uuid));
        let mut delete = Action::new(ActionKind::Delete);
        assert!(matches!(component_uuid(&mut delete), Err(Error::Input(_))));
        let mut start = Action::new(ActionKind::Start);
        assert_eq!(component_uuid(&mut start).unwrap(), None);
    }
}
