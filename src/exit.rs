//! Every exit code of the `villas-controller` binary, in one type: the
//! daemon's (sysexits.h where one fits, so systemd's `Restart=` can tell a
//! configuration error from a crash) and the client commands' (the
//! reference's plus `timeout`'s 124). clap exits 2 on a usage error by
//! itself.

use std::process::ExitCode;

/// Why the process exits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Exit {
    /// Done (0).
    Success,
    /// A failure without a more specific code (1): the daemon could not
    /// run; a client's addressed IC ended in `error`, refused the action,
    /// or nobody answered.
    Failure,
    /// A client command addresses nobody (64, `EX_USAGE`).
    Usage,
    /// Unusable client input: `-p`/`-P`/`-m`/`-r`/`-w` (65, `EX_DATAERR`).
    BadInput,
    /// The broker cannot be reached, or the connection was lost (69,
    /// `EX_UNAVAILABLE`).
    Unavailable,
    /// Supervision escalated: the daemon stopped in order so that systemd
    /// restarts it (70, `EX_SOFTWARE`).
    Escalated,
    /// The configuration or the state directory must be changed (78,
    /// `EX_CONFIG`; the systemd unit does not restart on it).
    Config,
    /// A client's `--wait` ran out of time (124, as `timeout`).
    TimedOut,
    /// A second SIGINT or SIGTERM during the ordered stop (130).
    Interrupted,
}

impl Exit {
    /// The numeric code.
    pub(crate) fn code(self) -> u8 {
        match self {
            Exit::Success => 0,
            Exit::Failure => 1,
            Exit::Usage => 64,
            Exit::BadInput => 65,
            Exit::Unavailable => 69,
            Exit::Escalated => 70,
            Exit::Config => 78,
            Exit::TimedOut => 124,
            Exit::Interrupted => 130,
        }
    }

    /// Exits the process at once with this code (no destructors run).
    pub(crate) fn now(self) -> ! {
        std::process::exit(i32::from(self.code()))
    }
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> ExitCode {
        ExitCode::from(exit.code())
    }
}
