//! Component states and the transition table of the VILLAScontroller protocol.

use std::fmt;
use std::str::FromStr;

/// The state of an infrastructure component, as published in `status.state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum State {
    /// Ready to start.
    Idle,
    /// A `start` is being carried out.
    Starting,
    /// The simulation runs.
    Running,
    /// A `pause` is being carried out.
    Pausing,
    /// The simulation is paused.
    Paused,
    /// A `resume` is being carried out.
    Resuming,
    /// A `stop` is being carried out.
    Stopping,
    /// A `reset` is being carried out: the recovery path.
    Resetting,
    /// A `shutdown` is being carried out.
    ShuttingDown,
    /// The component was shut down; `start` or `reset` brings it back.
    Shutdown,
    /// Something failed; only `reset` brings the component back.
    Error,
    /// The component was deleted; published exactly once.
    Gone,
}

impl State {
    /// Every state, in the order of the protocol page.
    pub const ALL: [State; 12] = [
        State::Idle,
        State::Starting,
        State::Running,
        State::Pausing,
        State::Paused,
        State::Resuming,
        State::Stopping,
        State::Resetting,
        State::ShuttingDown,
        State::Shutdown,
        State::Error,
        State::Gone,
    ];

    /// The wire name of the state.
    pub const fn as_str(self) -> &'static str {
        match self {
            State::Idle => "idle",
            State::Starting => "starting",
            State::Running => "running",
            State::Pausing => "pausing",
            State::Paused => "paused",
            State::Resuming => "resuming",
            State::Stopping => "stopping",
            State::Resetting => "resetting",
            State::ShuttingDown => "shuttingdown",
            State::Shutdown => "shutdown",
            State::Error => "error",
            State::Gone => "gone",
        }
    }

    /// The states this state may move to: the reference's transition
    /// table, plus `shutdown -> resetting` (protocol.md).
    pub const fn successors(self) -> &'static [State] {
        use State::*;
        match self {
            Idle => &[Starting, ShuttingDown, Resetting, Error, Gone],
            Starting => &[Running, Resetting, Error, Gone],
            Running => &[Pausing, Stopping, Resetting, Error, Gone],
            Pausing => &[Paused, Resetting, Error, Gone],
            Paused => &[Resuming, Stopping, Resetting, Error, Gone],
            Resuming => &[Running, Resetting, Error, Gone],
            Stopping => &[Idle, Resetting, Error, Gone],
            Resetting => &[Idle, Resetting, Error, Gone],
            ShuttingDown => &[Shutdown, Error, Gone],
            // The reference lacks `Resetting` here; with it `reset` leads
            // back to `idle` from every state but `shuttingdown` (which ends
            // by itself) and `gone`, so "reset until idle" always ends.
            Shutdown => &[Starting, Resetting, Error, Gone],
            Error => &[Resetting, Error, Gone],
            Gone => &[],
        }
    }

    /// The shortest chain of allowed transitions from `self` to `target`
    /// (without `self`, ending with `target`; empty if they are equal),
    /// never through `error` or `gone` unless that is the target: how a
    /// component that mirrors an external object's state (a gateway)
    /// follows it by the table. `None` if the table has no such chain.
    pub fn path_to(self, target: State) -> Option<Vec<State>> {
        if self == target {
            return Some(Vec::new());
        }
        let mut previous: [Option<State>; 12] = [None; 12];
        let mut queue = std::collections::VecDeque::from([self]);
        let index = |s: State| State::ALL.iter().position(|x| *x == s).unwrap_or(0);
        previous[index(self)] = Some(self);
        while let Some(state) = queue.pop_front() {
            for &next in state.successors() {
                let detour = matches!(next, State::Error | State::Gone) && next != target;
                if detour || previous[index(next)].is_some() {
                    continue;
                }
                previous[index(next)] = Some(state);
                if next == target {
                    let mut path = vec![target];
                    let mut at = state;
                    while at != self {
                        path.push(at);
                        at = previous[index(at)]?;
                    }
                    path.reverse();
                    return Some(path);
                }
                queue.push_back(next);
            }
        }
        None
    }

    /// Whether the table allows `self -> next`.
    pub fn can_become(self, next: State) -> bool {
        self.successors().contains(&next)
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that names no state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown state {0:?}")]
pub struct UnknownState(pub String);

impl FromStr for State {
    type Err = UnknownState;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        State::ALL
            .into_iter()
            .find(|state| state.as_str() == s)
            .ok_or_else(|| UnknownState(s.to_owned()))
    }
}

impl serde::Serialize for State {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for State {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::State::{self, *};

    /// The table of protocol.md, written out once more by hand, row by row.
    const TABLE: &[(State, &[State])] = &[
        (Idle, &[Starting, ShuttingDown, Resetting, Error, Gone]),
        (Starting, &[Running, Resetting, Error, Gone]),
        (Running, &[Pausing, Stopping, Resetting, Error, Gone]),
        (Pausing, &[Paused, Resetting, Error, Gone]),
        (Paused, &[Resuming, Stopping, Resetting, Error, Gone]),
        (Resuming, &[Running, Resetting, Error, Gone]),
        (Stopping, &[Idle, Resetting, Error, Gone]),
        (Resetting, &[Idle, Resetting, Error, Gone]),
        (ShuttingDown, &[Shutdown, Error, Gone]),
        (Shutdown, &[Starting, Resetting, Error, Gone]),
        (Error, &[Resetting, Error, Gone]),
        (Gone, &[]),
    ];

    #[test]
    fn every_pair_follows_the_table() {
        for (from, allowed) in TABLE {
            for to in State::ALL {
                assert_eq!(from.can_become(to), allowed.contains(&to), "{from} -> {to}");
            }
        }
        assert_eq!(TABLE.len(), State::ALL.len());
    }

    #[test]
    fn names_round_trip() {
        for state in State::ALL {
            assert_eq!(state.as_str().parse::<State>(), Ok(state));
        }
        assert!("Running".parse::<State>().is_err());
        assert_eq!(ShuttingDown.as_str(), "shuttingdown");
    }

    /// "reset until idle" always ends: `reset` is accepted in every state
    /// but `gone` and `shuttingdown`, and `shuttingdown` only leads to
    /// states that accept it.
    #[test]
    fn reset_leads_to_idle_from_every_state_but_gone() {
        assert!(Resetting.can_become(Idle));
        for from in State::ALL {
            match from {
                Gone => assert!(!from.can_become(Resetting)),
                ShuttingDown => {
                    assert!(!from.can_become(Resetting));
                    for next in from.successors().iter().filter(|s| **s != Gone) {
                        assert!(next.can_become(Resetting), "{from} -> {next}");
                    }
                }
                _ => assert!(from.can_become(Resetting), "{from}"),
            }
        }
    }

    #[test]
    fn gone_is_final() {
        assert!(State::ALL.iter().all(|s| !Gone.can_become(*s)));
    }
}
