//! The AMQP client of the VILLAScontroller protocol: watch, ping, discover
//! and control infrastructure components (ICs) over a RabbitMQ headers
//! exchange, from a lab's scripts, the `villas-controller` CLI, its tests
//! and its benches alike.
//!
//! Layers, from the wire up:
//!
//! - [`connect`]: opening a connection, `amqp://` or `amqps://` with
//!   [`TlsFiles`];
//! - [`nodes`]: several broker nodes (a cluster): the list, the order a
//!   process tries them in, failing over;
//! - [`wire`]: the exchange, private queues and their [`Binding`]s, headers
//!   as AMQP tables, the properties of actions and statuses;
//! - [`session`]: a [`Session`] (one connection, one channel in confirm
//!   mode) that publishes with confirmation and opens
//!   [`Subscription`]s, streams of [`Message`]s;
//! - [`filter`]: which ICs a command addresses ([`Filter`]) and the pings
//!   that find them;
//! - [`mod@discover`]: ping and collect the answers ([`discover()`],
//!   [`Discovery`]);
//! - [`wait`] and [`follow`]: send an action and follow the addressed ICs
//!   until they reach a state ([`Follow`]);
//! - [`mod@client`]: a [`Client`] watching the whole exchange with a backlog,
//!   to act on ICs and wait for their statuses in any order.
//!
//! ```no_run
//! use std::time::Duration;
//! use villas_client::{discover, Filter, Follow, Session, Target};
//! use villas_sdk::{Action, ActionKind, State};
//!
//! # async fn run() -> villas_client::Result<()> {
//! let session = Session::open(&Target::new("amqp://guest:guest@localhost/%2F", "villas")).await?;
//! for status in discover(&session, &Filter::everyone(), Duration::from_secs(2)).await? {
//!     println!("{} is {}", status.uuid().unwrap_or("?"), status.status.state);
//! }
//! let start = Action::new(ActionKind::Start);
//! let filter = Filter::uuid("4a3f1f4e-0000-4000-8000-000000000001");
//! Follow::start(&session, &filter, &start, State::Running, Duration::from_secs(60))
//!     .await?
//!     .wait()
//!     .await?;
//! session.close().await;
//! # Ok(())
//! # }
//! ```

pub mod client;
pub mod connect;
pub mod discover;
pub mod error;
pub mod filter;
pub mod follow;
pub mod nodes;
pub mod session;
pub mod wait;
pub mod wire;

pub use client::{Client, Received};
pub use connect::{redact_url, TlsError, TlsFiles};
pub use discover::{discover, Discovery, Reply};
pub use error::{ConnectError, Error, Result};
pub use filter::{identity_of, Filter};
pub use follow::{component_uuid, Follow, Step};
pub use session::{Message, Session, Subscription, Target};
pub use wait::{Progress, Verdict, Waiter};
pub use wire::{Binding, STATUS_MESSAGE_TYPE};

/// The README's examples, compiled by `cargo test --doc`.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeExamples;
