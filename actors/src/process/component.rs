//! A kind served by a kind process, as the daemon's kind registry sees it
//! ([`ProcessKind`], an ordinary `villas_sdk::Kind`), and its instances
//! ([`ProcessComponent`]): each forwards what its actor asks (build, act,
//! remove) to the process's host, and applies what the process reports
//! (transitions, failures, status fields, publish requests, the process's
//! death) through its context, from a task that waits on the instance's
//! [`Inbox`]. The actor never waits for the process.

use super::host::{Command, HostHandle};
use serde_json::{Map, Value};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use villas_sdk::kind_protocol::Event;
use villas_sdk::{
    Action, ActionKind, Admitted, Component, ComponentSpec, Context, ErrorCode, ErrorInfo, Kind,
    State, TaskOutput,
};

/// What the host tells an instance.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Update {
    /// An event of the process about the instance.
    Event(Event),
    /// The process refused or failed a request for the instance (a `build`
    /// or a control action), or could not carry it out (it died): the
    /// component goes to `error` with this error.
    Failed(ErrorInfo),
}

/// The updates of one instance, waiting for its actor's task to apply them.
#[derive(Debug, Default)]
pub(crate) struct Inbox {
    /// Updates in the order the process sent them.
    queue: parking_lot::Mutex<VecDeque<Update>>,
    /// Wakes the instance's waiting task (a permit is kept if none waits).
    ready: Notify,
}

impl Inbox {
    /// Queues an update and wakes the instance.
    pub(crate) fn push(&self, update: Update) {
        self.queue.lock().push_back(update);
        // A reset leaves a stale waiting task behind (its output is dropped):
        // wake every waiter, and keep a permit for the next one.
        self.ready.notify_waiters();
        self.ready.notify_one();
    }

    fn drain(&self) -> Vec<Update> {
        self.queue.lock().drain(..).collect()
    }
}

/// What a kind process said it serves, for one kind.
#[derive(Debug, Clone)]
pub(crate) struct Served {
    /// Its category (leaked once: `Kind::category` is `&'static str`).
    pub(crate) category: &'static str,
    /// Its type.
    pub(crate) type_name: &'static str,
    /// Its schemas by action.
    pub(crate) schemas: Map<String, Value>,
    /// The actions it carries out besides ping and reset.
    pub(crate) actions: Vec<ActionKind>,
}

/// A kind served by a kind process.
pub struct ProcessKind {
    /// What the process said about this kind in the handshake.
    served: Served,
    /// The process's host (shared by every kind of the process).
    host: HostHandle,
}

impl ProcessKind {
    pub(crate) fn new(served: Served, host: HostHandle) -> Self {
        ProcessKind { served, host }
    }
}

impl Kind for ProcessKind {
    fn category(&self) -> &'static str {
        self.served.category
    }

    fn type_name(&self) -> &'static str {
        self.served.type_name
    }

    fn schemas(&self) -> Map<String, Value> {
        self.served.schemas.clone()
    }

    fn build(&self, spec: &ComponentSpec) -> Result<Box<dyn Component>, ErrorInfo> {
        static SERIAL: AtomicU64 = AtomicU64::new(1);
        let serial = SERIAL.fetch_add(1, Ordering::Relaxed);
        let inbox = Arc::new(Inbox::default());
        self.host.send(Command::Build {
            uuid: spec.uuid().to_owned(),
            serial,
            category: self.served.category,
            type_name: self.served.type_name,
            properties: spec.properties.clone(),
            data_dir: spec.data_dir().map(ToOwned::to_owned),
            inbox: inbox.clone(),
        })?;
        Ok(Box::new(ProcessComponent {
            uuid: spec.uuid().to_owned(),
            serial,
            inbox,
            host: self.host.clone(),
            actions: self.served.actions.clone(),
            fields: Map::new(),
            removed: false,
        }))
    }

    fn drain(&self, grace: Duration) {
        self.host.stop(grace);
    }
}

/// An instance living in a kind process.
pub struct ProcessComponent {
    /// Its uuid (the protocol's `instance`).
    uuid: String,
    /// Which build of the uuid this is (an actor rebuilt from its
    /// definition builds anew; the host drops what refers to an older one).
    serial: u64,
    /// What the host has for it.
    inbox: Arc<Inbox>,
    /// The process's host.
    host: HostHandle,
    /// The actions its kind carries out.
    actions: Vec<ActionKind>,
    /// Its status fields, as the process last sent them.
    fields: Map<String, Value>,
    /// Removed already (the drop has nothing to tell the host).
    removed: bool,
}

impl ProcessComponent {
    /// Waits (beside the actor) until the host has something for it.
    fn listen(&self, ctx: &mut Context<'_>) {
        let inbox = self.inbox.clone();
        if !inbox.queue.lock().is_empty() {
            inbox.ready.notify_one();
        }
        ctx.spawn(async move { inbox.ready.notified().await });
    }

    fn apply(&mut self, ctx: &mut Context<'_>, update: Update) {
        match update {
            Update::Event(Event::Transition(state)) => {
                if let Err(refused) = ctx.transition(state) {
                    tracing::warn!(uuid = %self.uuid, %refused, "kind process reported a transition the table forbids: refused");
                }
            }
            Update::Event(Event::Fail(error)) | Update::Failed(error) => {
                if ctx.state() != State::Error || error.code == ErrorCode::Crashed {
                    ctx.fail(error);
                }
            }
            Update::Event(Event::Fields(fields)) => self.fields = fields,
            Update::Event(Event::Publish) => ctx.publish_status(),
        }
    }

    fn forward(&self, state: State, action: &Action) -> Result<(), ErrorInfo> {
        self.host.send(Command::Act {
            uuid: self.uuid.clone(),
            serial: self.serial,
            state,
            action: action.clone(),
        })
    }
}

impl Component for ProcessComponent {
    fn actions(&self) -> &[ActionKind] {
        &self.actions
    }

    fn on_start(&mut self, ctx: &mut Context<'_>) -> Result<(), ErrorInfo> {
        self.listen(ctx);
        Ok(())
    }

    fn act(
        &mut self,
        ctx: &mut Context<'_>,
        action: &Action,
        _admitted: Admitted,
    ) -> Result<(), ErrorInfo> {
        if matches!(action.kind, ActionKind::Create | ActionKind::Delete) {
            return Err(ErrorInfo::new(
                ErrorCode::Unsupported,
                "managers in kind processes are not supported yet",
            ));
        }
        self.forward(ctx.state(), action)
    }

    fn reset(&mut self, ctx: &mut Context<'_>, action: &Action) -> Result<(), ErrorInfo> {
        // The reset dropped the waiting task (a new generation): wait anew.
        self.listen(ctx);
        self.forward(ctx.state(), action)
    }

    fn on_task(&mut self, ctx: &mut Context<'_>, _output: TaskOutput) -> Result<(), ErrorInfo> {
        for update in self.inbox.drain() {
            self.apply(ctx, update);
        }
        self.listen(ctx);
        Ok(())
    }

    fn status_fields(&self, fields: &mut Map<String, Value>) {
        fields.extend(self.fields.iter().map(|(k, v)| (k.clone(), v.clone())));
    }

    fn on_remove(&mut self) {
        if !self.removed {
            self.removed = true;
            let _ = self.host.send(Command::Remove {
                uuid: self.uuid.clone(),
                serial: self.serial,
            });
        }
    }
}

impl Drop for ProcessComponent {
    fn drop(&mut self) {
        // A built instance dropped without removal (a configuration check,
        // a failed actor start): the process forgets it too.
        self.on_remove();
    }
}
