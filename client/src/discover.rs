//! Ping and collect: sends the pings that find the ICs a [`Filter`]
//! addresses ([`Filter::pings`]) and collects their answers, one IC once
//! however many of the pings it answered. [`Discovery`] hands the answers
//! over as they arrive (for a live view); [`discover`] collects them for a
//! time.

use crate::error::Result;
use crate::filter::{addressed_by, Filter};
use crate::session::{Message, Session, Subscription};
use crate::wire::Binding;
use std::collections::HashSet;
use std::time::Duration;
use tokio::time::Instant;
use villas_sdk::protocol::StatusView;
use villas_sdk::{Action, ActionKind, Headers};

/// One answer to a discovery ping.
#[derive(Debug, Clone)]
pub struct Reply {
    /// The message as received.
    pub message: Message,
    /// Its status.
    pub status: StatusView,
    /// The IC's uuid.
    pub uuid: String,
    /// Whether it is the first answer of this IC (an IC may answer several
    /// of the pings).
    pub first: bool,
}

/// The answers to one round of pings, as they arrive.
pub struct Discovery<'s> {
    /// The subscription the answers arrive on.
    subscription: &'s mut Subscription,
    /// The headers the pings were sent with: whose answers count.
    pings: Vec<Headers>,
    /// The one uuid the filter addresses, if so: its answer ends the round.
    only_uuid: Option<String>,
    /// When the round ends.
    until: Instant,
    /// The uuids that answered so far.
    answered: HashSet<String>,
    /// Whether the one uuid answered.
    done: bool,
}

impl<'s> Discovery<'s> {
    /// Sends the pings that find the ICs `filter` addresses. `subscription`
    /// must watch the whole exchange and exist before this call (so no
    /// answer is missed); the round ends at `until`, or as soon as the
    /// filter's only uuid answered.
    pub async fn start(
        session: &Session,
        subscription: &'s mut Subscription,
        filter: &Filter,
        until: Instant,
    ) -> Result<Discovery<'s>> {
        let pings = filter.pings();
        let ping = Action::new(ActionKind::Ping);
        for headers in &pings {
            session.send(headers, &ping).await?;
        }
        Ok(Discovery {
            subscription,
            pings,
            only_uuid: filter.only_uuid().map(str::to_owned),
            until,
            answered: HashSet::new(),
            done: false,
        })
    }

    /// The headers of the pings sent.
    pub fn pings(&self) -> &[Headers] {
        &self.pings
    }

    /// The next answer of an addressed IC; `None` once the round ended.
    pub async fn next(&mut self) -> Result<Option<Reply>> {
        while !self.done {
            let Some(message) = self.subscription.next_until(self.until).await? else {
                return Ok(None);
            };
            let Some(status) = message.status() else {
                continue;
            };
            if !self
                .pings
                .iter()
                .any(|headers| addressed_by(&status, headers))
            {
                continue;
            }
            let Some(uuid) = status.uuid().map(str::to_owned) else {
                continue;
            };
            self.done = self.only_uuid.as_deref() == Some(uuid.as_str());
            let first = self.answered.insert(uuid.clone());
            return Ok(Some(Reply {
                message,
                status,
                uuid,
                first,
            }));
        }
        Ok(None)
    }
}

/// Pings the ICs `filter` addresses and collects their answers for
/// `window` (or until the filter's only uuid answered): the latest status
/// of each IC that answered, in the order they first answered.
pub async fn discover(
    session: &Session,
    filter: &Filter,
    window: Duration,
) -> Result<Vec<StatusView>> {
    let mut subscription = session.subscribe(&Binding::Everything).await?;
    let until = Instant::now() + window;
    let mut discovery = Discovery::start(session, &mut subscription, filter, until).await?;
    let mut found: Vec<StatusView> = Vec::new();
    while let Some(reply) = discovery.next().await? {
        match found
            .iter_mut()
            .find(|s| s.uuid() == Some(reply.uuid.as_str()))
        {
            Some(known) => *known = reply.status,
            None => found.push(reply.status),
        }
    }
    Ok(found)
}
