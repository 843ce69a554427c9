//! The publish loop: sends the outbox's status messages to the broker in
//! order while the bus is up. While it is down, only the latest status of
//! each component is kept ([`Pending`]); when a channel comes back, that is
//! published, and every component is asked (a `ping` through its mailbox,
//! so it stays in order with its other statuses) for a fresh status,
//! through the intake like any action ([`Intake::refresh_all`]).

use super::pending::{Pending, Status, PENDING_LIMIT_BYTES};
use lapin::options::BasicPublishOptions;
use lapin::types::ShortString;
use lapin::Channel;
use std::sync::Arc;
use tokio::sync::{oneshot, watch};
use villas_actors::ports::{Intake, Outbox, Outgoing};
use villas_client::wire::status_properties;
use villas_metrics::DaemonMetrics;
use villas_sdk::Headers;

/// The publish loop's state.
pub(crate) struct PublishLoop {
    /// What components publish.
    outbox: Outbox,
    /// The channel to publish on, `None` while the bus is down.
    link: watch::Receiver<Option<Channel>>,
    /// The exchange.
    exchange: ShortString,
    /// Where a fresh status of every component is asked for after a
    /// reconnect.
    intake: Intake,
    /// The latest status per component while down.
    pending: Pending,
    /// Flushes waiting for the pending statuses to go out.
    flushes: Vec<oneshot::Sender<()>>,
    /// The current channel failed a publish: wait for another one.
    broken: bool,
    /// Channels used so far (the first needs no refresh: every component
    /// publishes its start-up status anyway).
    channels: u64,
    /// Counts published statuses.
    metrics: Arc<DaemonMetrics>,
}

/// What woke the loop up.
enum Woken {
    /// The link changed (`false`: the bus actor is gone).
    Link(bool),
    /// Something from the outbox (`None`: every publisher is gone).
    Outgoing(Option<Outgoing>),
}

impl PublishLoop {
    /// A loop over `outbox`, publishing on the channel `link` holds.
    pub(crate) fn new(
        outbox: Outbox,
        link: watch::Receiver<Option<Channel>>,
        exchange: ShortString,
        intake: Intake,
        metrics: Arc<DaemonMetrics>,
    ) -> Self {
        PublishLoop {
            outbox,
            link,
            exchange,
            intake,
            pending: Pending::new(PENDING_LIMIT_BYTES),
            flushes: Vec::new(),
            broken: false,
            channels: 0,
            metrics,
        }
    }

    /// Runs until the bus actor or every publisher is gone.
    pub(crate) async fn run(mut self) {
        loop {
            let Some(channel) = self.wait_for_channel().await else {
                return;
            };
            self.channels += 1;
            if self.channels > 1 {
                self.refresh();
            }
            if !self.send_pending(&channel).await {
                continue;
            }
            for done in self.flushes.drain(..) {
                let _ = done.send(());
            }
            if !self.stream(&channel).await {
                return;
            }
        }
    }

    async fn wake(&mut self) -> Woken {
        tokio::select! {
            biased;
            changed = self.link.changed() => Woken::Link(changed.is_ok()),
            outgoing = self.outbox.recv() => Woken::Outgoing(outgoing),
        }
    }

    /// Keeps the latest status of each component until a usable channel
    /// exists; returns it (`None`: the loop ends).
    async fn wait_for_channel(&mut self) -> Option<Channel> {
        loop {
            let current = self.link.borrow_and_update().clone();
            if !self.broken {
                if let Some(channel) = current {
                    // Whatever was queued before the channel came is older
                    // than what follows: coalesce it too.
                    while let Ok(outgoing) = self.outbox.try_recv() {
                        self.hold(outgoing);
                    }
                    return Some(channel);
                }
            }
            match self.wake().await {
                Woken::Link(true) => self.broken = false,
                Woken::Link(false) | Woken::Outgoing(None) => return None,
                Woken::Outgoing(Some(outgoing)) => self.hold(outgoing),
            }
        }
    }

    /// Keeps a status (or a flush) for later.
    fn hold(&mut self, outgoing: Outgoing) {
        match outgoing {
            Outgoing::Status { headers, body } => self.pending.insert(headers, body),
            Outgoing::Flush(done) => self.flushes.push(done),
        }
    }

    /// Asks every component for a fresh status after a reconnect.
    fn refresh(&self) {
        let components = self.intake.refresh_all();
        tracing::info!(
            components,
            pending = self.pending.len(),
            "bus up again: publishing the latest status kept of each component, then a fresh status of every component"
        );
    }

    /// Publishes what was kept while down; `false` if the channel failed
    /// (what is left is kept).
    async fn send_pending(&mut self, channel: &Channel) -> bool {
        let (replaced, dropped) = self.pending.take_counts();
        if replaced > 0 || dropped > 0 {
            tracing::info!(
                replaced,
                dropped,
                "statuses superseded while the bus was down were not published"
            );
        }
        let mut statuses = self.pending.take().into_iter();
        while let Some((headers, body)) = statuses.next() {
            if let Err(error) =
                publish(channel, &self.exchange, &headers, &body, &self.metrics).await
            {
                if channel.status().connected() {
                    tracing::warn!(%error, uuid = headers.uuid.as_deref().unwrap_or(""), "status refused by the broker; dropped");
                    continue;
                }
                tracing::warn!(%error, "publish failed; keeping the statuses until the bus is back");
                let mut rest: Vec<Status> = vec![(headers, body)];
                rest.extend(statuses);
                self.pending.restore(rest);
                self.broken = true;
                return false;
            }
        }
        true
    }

    /// Publishes in order while the channel works. Returns `true` when the
    /// channel changed or failed, `false` when the loop must end.
    async fn stream(&mut self, channel: &Channel) -> bool {
        loop {
            match self.wake().await {
                Woken::Link(changed) => return changed,
                Woken::Outgoing(None) => return false,
                Woken::Outgoing(Some(Outgoing::Flush(done))) => {
                    let _ = done.send(());
                }
                Woken::Outgoing(Some(Outgoing::Status { headers, body })) => {
                    let Err(error) =
                        publish(channel, &self.exchange, &headers, &body, &self.metrics).await
                    else {
                        continue;
                    };
                    if channel.status().connected() {
                        tracing::warn!(%error, uuid = headers.uuid.as_deref().unwrap_or(""), "status refused by the broker; dropped");
                        continue;
                    }
                    tracing::warn!(%error, "publish failed; keeping the latest statuses until the bus is back");
                    self.pending.insert(headers, body);
                    self.broken = true;
                    return true;
                }
            }
        }
    }
}

/// Hands one status to the client library.
async fn publish(
    channel: &Channel,
    exchange: &ShortString,
    headers: &Headers,
    body: &[u8],
    metrics: &DaemonMetrics,
) -> lapin::Result<()> {
    channel
        .basic_publish(
            exchange.clone(),
            "".into(),
            BasicPublishOptions::default(),
            body,
            status_properties(headers),
        )
        .await?;
    metrics.message_published();
    Ok(())
}
