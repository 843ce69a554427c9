//! What a supervised component remembers for its supervisor, as a pure
//! state machine (no actor, no clock): the last `start` to re-issue after
//! a restart, whether the run in progress ends because it was asked to,
//! whether a restart waits for `idle` to start again, and how often it was
//! restarted. The IC actor feeds it the actions it accepted and the
//! transitions it published and carries out what it answers.

use super::policy::Exit;
use villas_sdk::{Action, ActionKind, ErrorInfo, State};

/// A supervised component's restart bookkeeping.
#[derive(Debug, Default)]
pub struct RestartState {
    /// The last `start` carried out (without `when`), re-issued by a
    /// restart.
    last_start: Option<Action>,
    /// A supervisor's restart asked for a `start` once `idle` is reached.
    start_when_idle: bool,
    /// The run in progress ends because it was asked to (`stop`, `reset`,
    /// `shutdown`, a supervisor's reset), not by itself.
    ending_on_request: bool,
    /// Restarts by the supervisor since the actor was built.
    restarts: u64,
}

/// What follows a published transition.
#[derive(Debug, PartialEq)]
pub enum AfterTransition {
    /// Nothing.
    Nothing,
    /// Tell the supervisor the component exited so.
    Report(Exit),
    /// Re-issue the last `start` (a restart reached `idle`).
    StartAgain,
}

impl RestartState {
    /// An operator's action was accepted; returns whether the supervisor
    /// must hear of it (an operator `reset` starts its budget over).
    pub fn on_accepted(&mut self, action: &Action) -> bool {
        match action.kind {
            ActionKind::Start => {
                let mut start = action.clone();
                start.when = None;
                self.last_start = Some(start);
                self.ending_on_request = false;
                self.start_when_idle = false;
                false
            }
            ActionKind::Reset => {
                self.ending_on_request = true;
                self.start_when_idle = false;
                true
            }
            ActionKind::Stop | ActionKind::Shutdown => {
                self.ending_on_request = true;
                false
            }
            _ => false,
        }
    }

    /// The component went from `from` to `to` (with `error` in `error`).
    pub fn on_transition(
        &mut self,
        from: State,
        to: State,
        error: Option<&ErrorInfo>,
    ) -> AfterTransition {
        match to {
            State::Error => match error.filter(|e| e.code.is_failure()) {
                Some(error) => {
                    self.start_when_idle = false;
                    AfterTransition::Report(Exit::Failed(error.clone()))
                }
                // A refusal is no failure.
                None => AfterTransition::Nothing,
            },
            State::Idle if self.start_when_idle => {
                self.start_when_idle = false;
                AfterTransition::StartAgain
            }
            State::Idle
                if !self.ending_on_request
                    && matches!(
                        from,
                        State::Running | State::Stopping | State::Paused | State::Pausing
                    ) =>
            {
                AfterTransition::Report(Exit::Completed)
            }
            _ => AfterTransition::Nothing,
        }
    }

    /// The supervisor's restart begins: its reset is a requested end.
    pub fn restarting(&mut self) {
        self.restarts += 1;
        self.ending_on_request = true;
    }

    /// The restart's reset was handled (`accepted` or refused) and left
    /// the component `idle` already or not; returns whether to start again
    /// right now (otherwise it starts again once `idle` is published, if
    /// `start`).
    pub fn restarted(&mut self, start: bool, accepted: bool, idle_now: bool) -> bool {
        self.start_when_idle = start && accepted && !idle_now;
        start && accepted && idle_now
    }

    /// The supervisor gave up: no start is pending any more.
    pub fn gave_up(&mut self) {
        self.start_when_idle = false;
    }

    /// The `start` a restart re-issues.
    pub fn last_start(&self) -> Option<&Action> {
        self.last_start.as_ref()
    }

    /// How often the supervisor restarted the component.
    pub fn restarts(&self) -> u64 {
        self.restarts
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use villas_sdk::ErrorCode;

    fn action(kind: ActionKind) -> Action {
        Action::new(kind)
    }

    fn failure() -> ErrorInfo {
        ErrorInfo::new(ErrorCode::Failed, "boom")
    }

    #[test]
    fn a_failure_is_reported_a_refusal_is_not() {
        let mut state = RestartState::default();
        assert_eq!(
            state.on_transition(State::Running, State::Error, Some(&failure())),
            AfterTransition::Report(Exit::Failed(failure()))
        );
        let refusal = ErrorInfo::new(ErrorCode::InvalidTransition, "no");
        assert_eq!(
            state.on_transition(State::Idle, State::Error, Some(&refusal)),
            AfterTransition::Nothing
        );
    }

    #[test]
    fn a_run_that_ends_by_itself_completes_one_that_was_stopped_does_not() {
        let mut state = RestartState::default();
        assert!(!state.on_accepted(&action(ActionKind::Start)));
        assert_eq!(
            state.on_transition(State::Running, State::Idle, None),
            AfterTransition::Report(Exit::Completed)
        );
        state.on_accepted(&action(ActionKind::Start));
        assert!(!state.on_accepted(&action(ActionKind::Stop)));
        assert_eq!(
            state.on_transition(State::Stopping, State::Idle, None),
            AfterTransition::Nothing
        );
        // Idle from idle (a reset of an idle component) is no end of a run.
        state.on_accepted(&action(ActionKind::Start));
        assert_eq!(
            state.on_transition(State::Resetting, State::Idle, None),
            AfterTransition::Nothing
        );
    }

    #[test]
    fn an_operator_reset_is_reported_and_ends_the_run_on_request() {
        let mut state = RestartState::default();
        state.on_accepted(&action(ActionKind::Start));
        assert!(state.on_accepted(&action(ActionKind::Reset)));
        assert_eq!(
            state.on_transition(State::Running, State::Idle, None),
            AfterTransition::Nothing
        );
    }

    #[test]
    fn a_restart_starts_again_once_idle_with_the_last_start() {
        let mut state = RestartState::default();
        let mut start = action(ActionKind::Start);
        start.when = Some(1.0);
        state.on_accepted(&start);
        assert_eq!(state.last_start().unwrap().when, None);
        state.on_transition(State::Running, State::Error, Some(&failure()));

        // The reset goes through `resetting`: start once `idle` arrives.
        state.restarting();
        assert!(!state.restarted(true, true, false));
        assert_eq!(
            state.on_transition(State::Resetting, State::Idle, None),
            AfterTransition::StartAgain
        );
        assert_eq!(state.restarts(), 1);

        // A reset that reaches `idle` at once: start right away.
        state.restarting();
        assert!(state.restarted(true, true, true));
        assert_eq!(
            state.on_transition(State::Resetting, State::Idle, None),
            AfterTransition::Nothing
        );
        // Without `start`, or refused: never.
        state.restarting();
        assert!(!state.restarted(false, true, false));
        assert!(!state.restarted(true, false, false));
        assert_eq!(
            state.on_transition(State::Resetting, State::Idle, None),
            AfterTransition::Nothing
        );
        assert_eq!(state.restarts(), 3);
    }

    #[test]
    fn a_failure_or_giving_up_cancels_a_pending_start() {
        let mut state = RestartState::default();
        state.on_accepted(&action(ActionKind::Start));
        state.restarting();
        state.restarted(true, true, false);
        state.on_transition(State::Resetting, State::Error, Some(&failure()));
        assert_eq!(
            state.on_transition(State::Error, State::Idle, None),
            AfterTransition::Nothing
        );
        state.restarting();
        state.restarted(true, true, false);
        state.gave_up();
        assert_eq!(
            state.on_transition(State::Resetting, State::Idle, None),
            AfterTransition::Nothing
        );
    }
}
