//! SIGTERM and SIGINT: the two ways an operator stops the daemon (the
//! first starts the ordered stop, a second exits at once) or a client
//! command (`monitor` ends).

use tokio::signal::unix::{signal, Signal, SignalKind};

/// The handlers of both stop signals, installed once.
pub(crate) struct StopSignals {
    /// SIGTERM (systemd's stop).
    term: Signal,
    /// SIGINT (Ctrl-C).
    int: Signal,
}

impl StopSignals {
    /// Installs the handlers; `None` (logged) when the runtime refuses.
    pub(crate) fn install() -> Option<Self> {
        match (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) {
            (Ok(term), Ok(int)) => Some(StopSignals { term, int }),
            (Err(error), _) | (_, Err(error)) => {
                tracing::error!(%error, "cannot install signal handlers; stop with SIGKILL");
                None
            }
        }
    }

    /// Completes on the next SIGTERM or SIGINT; returns its name.
    pub(crate) async fn next(&mut self) -> &'static str {
        tokio::select! {
            _ = self.term.recv() => "SIGTERM",
            _ = self.int.recv() => "SIGINT",
        }
    }
}

/// Completes on the first SIGTERM or SIGINT (never, without handlers).
pub(crate) async fn stopped() -> Option<StopSignals> {
    let Some(mut signals) = StopSignals::install() else {
        return std::future::pending().await;
    };
    let name = signals.next().await;
    tracing::info!(signal = name, "{name} received");
    Some(signals)
}
