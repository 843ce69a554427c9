//! The transports: the AMQP bus ([`amqp`], with its publish loop, the
//! outage store and the redelivery filter) and the in-process bus
//! (`local`) used when no broker is configured. Both implement `villas_actors::ports::Transport`; neither knows
//! the component tree, only the ports.

pub mod amqp;
pub(crate) mod local;

use std::sync::Arc;
use villas_actors::ports::Transport;
use villas_metrics::DaemonMetrics;

/// Which transport the daemon uses: one variant per transport.
#[derive(Debug, Clone)]
pub(crate) enum BusSettings {
    /// No broker configured: the in-process bus.
    Local,
    /// The AMQP bus.
    Amqp(amqp::AmqpSettings),
}

impl BusSettings {
    /// The transport's name, as the HTTP API reports it.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            BusSettings::Local => "local",
            BusSettings::Amqp(_) => "amqp",
        }
    }

    /// The largest message body the transport hands the components.
    pub(crate) fn max_body_bytes(&self) -> usize {
        match self {
            // Actions come through the HTTP API, which bounds its bodies.
            BusSettings::Local => usize::MAX,
            BusSettings::Amqp(amqp) => amqp.max_body_bytes,
        }
    }

    /// The transport these settings select, reporting to `metrics`.
    pub(crate) fn transport(&self, metrics: Arc<DaemonMetrics>) -> Box<dyn Transport> {
        match self {
            BusSettings::Local => {
                tracing::info!("no broker configured: using the in-process bus; the HTTP API is the control surface");
                Box::new(local::Local::new(metrics))
            }
            BusSettings::Amqp(amqp) => {
                let nodes: Vec<String> = amqp
                    .urls
                    .iter()
                    .map(|u| amqp::settings::redact_url(u))
                    .collect();
                tracing::info!(url = %nodes.join(", "), exchange = %amqp.exchange, "using the AMQP bus");
                Box::new(amqp::Amqp::new(amqp.clone(), metrics))
            }
        }
    }
}
