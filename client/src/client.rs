//! [`Client`]: a session that watches the whole exchange as VILLASweb does
//! and keeps what it received, so a script (or a test) can act on ICs and
//! then wait for what they answer, in any order: a wait takes the first
//! matching status from what arrived before it (the backlog) or after it,
//! and leaves the rest for later waits.

use crate::error::{Error, Result};
use crate::session::{Session, Subscription, Target};
use crate::wire::Binding;
use lapin::types::FieldTable;
use serde_json::Value;
use std::fmt::Write as _;
use std::time::Duration;
use tokio::time::Instant;
use villas_sdk::protocol::StatusView;
use villas_sdk::{Action, Headers};

/// How long a wait waits unless told otherwise ([`Client::with_timeout`]).
pub const WAIT_TIMEOUT: Duration = Duration::from_secs(60);

/// A message seen on the exchange, its body parsed.
#[derive(Debug, Clone)]
pub struct Received {
    /// Its addressing headers.
    pub headers: Headers,
    /// Its body as JSON (`null` when it is not JSON).
    pub body: Value,
}

impl Received {
    /// The body as a typed status; `None` for anything else.
    pub fn status(&self) -> Option<StatusView> {
        serde_json::from_value(self.body.clone()).ok()
    }

    /// `properties.uuid`.
    pub fn uuid(&self) -> Option<String> {
        self.body["properties"]["uuid"].as_str().map(str::to_owned)
    }

    /// `status.state` (its wire name).
    pub fn state(&self) -> Option<String> {
        self.body["status"]["state"].as_str().map(str::to_owned)
    }

    /// `status.error.kind`.
    pub fn error_kind(&self) -> Option<String> {
        self.body["status"]["error"]["kind"]
            .as_str()
            .map(str::to_owned)
    }

    /// Whether it is a status (ours or the reference's), not an action.
    pub fn is_status(&self) -> bool {
        self.body.get("status").is_some()
    }
}

/// A session watching the whole exchange, with what it received and no
/// wait has taken yet.
pub struct Client {
    /// The session it acts through.
    session: Session,
    /// Every message on the exchange.
    subscription: Subscription,
    /// Messages received but not yet taken by a wait, oldest first.
    pub backlog: Vec<Received>,
    /// How long a wait waits.
    timeout: Duration,
}

impl Client {
    /// Opens a session on `target` and watches the whole exchange from
    /// now on.
    pub async fn connect(target: &Target) -> Result<Client> {
        let session = Session::open(target).await?;
        let subscription = session.subscribe(&Binding::Everything).await?;
        Ok(Client {
            session,
            subscription,
            backlog: Vec::new(),
            timeout: WAIT_TIMEOUT,
        })
    }

    /// The same client with waits of at most `timeout`.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Client {
        self.timeout = timeout;
        self
    }

    /// The session, for what this type does not offer.
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// The exchange.
    pub fn exchange(&self) -> &str {
        self.session.exchange()
    }

    /// Sends `action` to the ICs `headers` address.
    pub async fn send(&self, headers: &Headers, action: &Action) -> Result<()> {
        self.session.send(headers, action).await
    }

    /// Publishes a JSON body (an action, well formed or not) with `headers`.
    pub async fn publish(&self, headers: &Headers, body: &Value) -> Result<()> {
        self.session.publish(headers, body).await
    }

    /// Publishes a JSON body to one IC, by uuid (as VILLASweb does).
    pub async fn act(&self, uuid: &str, body: &Value) -> Result<()> {
        self.session.publish(&Headers::uuid(uuid), body).await
    }

    /// Publishes any bytes with any headers.
    pub async fn publish_raw(&self, headers: FieldTable, body: &[u8]) -> Result<()> {
        self.session.publish_raw(headers, body).await
    }

    /// The next message from the exchange (the backlog aside) if one
    /// arrives before `deadline`.
    pub async fn next_until(&mut self, deadline: Instant) -> Result<Option<Received>> {
        let message = self.subscription.next_until(deadline).await?;
        Ok(message.map(|message| Received {
            headers: message.headers,
            body: serde_json::from_slice(&message.body).unwrap_or(Value::Null),
        }))
    }

    /// The first status (not an action) matching `matches`, from the
    /// backlog or else as it arrives; everything received before it stays
    /// in the backlog. `what` describes it for the timeout error.
    pub async fn wait_for(
        &mut self,
        what: &str,
        mut matches: impl FnMut(&Received) -> bool,
    ) -> Result<Received> {
        if let Some(index) = self
            .backlog
            .iter()
            .position(|r| r.is_status() && matches(r))
        {
            return Ok(self.backlog.remove(index));
        }
        let deadline = Instant::now() + self.timeout;
        loop {
            let Some(received) = self.next_until(deadline).await? else {
                return Err(Error::timeout(
                    self.timeout,
                    format!("waiting for {what}; seen: {}", self.summary()),
                ));
            };
            if received.is_status() && matches(&received) {
                return Ok(received);
            }
            self.backlog.push(received);
        }
    }

    /// The first status of `uuid` in `state` (its wire name).
    pub async fn wait_state(&mut self, uuid: &str, state: &str) -> Result<Received> {
        self.wait_for(&format!("{uuid} in {state}"), |r| {
            r.uuid().as_deref() == Some(uuid) && r.state().as_deref() == Some(state)
        })
        .await
    }

    /// The first status of `uuid` carrying an error of `kind`.
    pub async fn wait_error(&mut self, uuid: &str, kind: &str) -> Result<Received> {
        self.wait_for(&format!("{uuid} error {kind}"), |r| {
            r.uuid().as_deref() == Some(uuid) && r.error_kind().as_deref() == Some(kind)
        })
        .await
    }

    /// The states `uuid` publishes, in order, up to and including `last`.
    pub async fn states_until(&mut self, uuid: &str, last: &str) -> Result<Vec<String>> {
        let mut states = Vec::new();
        loop {
            let what = format!("{uuid} states until {last} (got {states:?})");
            let received = self
                .wait_for(&what, |r| r.uuid().as_deref() == Some(uuid))
                .await?;
            let state = received.state().unwrap_or_default();
            let done = state == last;
            states.push(state);
            if done {
                return Ok(states);
            }
        }
    }

    /// `uuid state [error kind]` of every status in the backlog.
    fn summary(&self) -> String {
        let mut text = String::new();
        for received in self.backlog.iter().filter(|r| r.is_status()) {
            let _ = write!(
                text,
                "\n  {} {}",
                received.uuid().unwrap_or_default(),
                received.state().unwrap_or_default()
            );
            if let Some(kind) = received.error_kind() {
                let _ = write!(text, " [{kind}]");
            }
        }
        if text.is_empty() {
            text.push_str("no status");
        }
        text
    }

    /// Closes the session.
    pub async fn close(self) {
        self.session.close().await;
    }

    /// Deletes the exchange (a test's or a CI run's scratch exchange),
    /// then closes the session.
    pub async fn close_and_delete_exchange(self) -> Result<()> {
        let deleted = self.session.delete_exchange().await;
        self.session.close().await;
        deleted
    }
}
