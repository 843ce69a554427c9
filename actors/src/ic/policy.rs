//! Restart policy and restart budget of supervised components: what a
//! supervisor (a manager actor for its components, the root for the top
//! managers) decides when one of its components fails or ends its run.
//! Pure and clock-injected, so the rules are unit-tested without actors;
//! the actors carry the decisions out (see `docs/supervision.md`).
//!
//! Configured per component by properties, in the configuration file or in
//! `create` parameters:
//!
//! ```yaml
//! restart: on-failure          # never (default) | on-failure | always
//! restart_budget: {max_restarts: 5, window: 60}
//! restart_backoff: {initial: 0.5, max: 30, jitter: 0.2, stable_after: 60}
//! ```

use serde::Deserialize;
use serde_json::{Map, Value};
use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};
use villas_sdk::{ErrorCode, ErrorInfo};

/// What the supervisor does after the component failed (it always resets
/// it first, which kills what it ran and rebuilds its state).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RestartPolicy {
    /// Reset to `idle` and wait for the operator.
    #[default]
    Never,
    /// Reset, then re-issue the last `start`.
    OnFailure,
    /// Like `on-failure`, and also start again when a run ends by itself.
    Always,
}

impl RestartPolicy {
    /// The name used in configuration and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            RestartPolicy::Never => "never",
            RestartPolicy::OnFailure => "on-failure",
            RestartPolicy::Always => "always",
        }
    }
}

/// `restart_budget`: at most `max_restarts` restarts within `window`.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawBudget {
    max_restarts: u32,
    window: f64,
}

impl Default for RawBudget {
    fn default() -> Self {
        RawBudget {
            max_restarts: 5,
            window: 60.0,
        }
    }
}

/// `restart_backoff`: the delay before a restart, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawBackoff {
    initial: f64,
    max: f64,
    jitter: f64,
    stable_after: f64,
}

impl Default for RawBackoff {
    fn default() -> Self {
        RawBackoff {
            initial: 0.5,
            max: 30.0,
            jitter: 0.2,
            stable_after: 60.0,
        }
    }
}

/// A component's supervision settings, checked.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SupervisionSpec {
    /// What follows the reset after a failure.
    pub policy: RestartPolicy,
    /// Restarts allowed within `window`; one more failure spends the budget.
    pub max_restarts: u32,
    /// The sliding window of the budget.
    pub window: Duration,
    /// First restart delay.
    pub backoff_initial: Duration,
    /// Upper bound of the doubling delay.
    pub backoff_max: Duration,
    /// Relative jitter applied to each delay (0.2 = ±20 %).
    pub jitter: f64,
    /// After this long without a restart the delay starts over.
    pub stable_after: Duration,
}

impl Default for SupervisionSpec {
    fn default() -> Self {
        SupervisionSpec {
            policy: RestartPolicy::Never,
            max_restarts: 5,
            window: Duration::from_secs(60),
            backoff_initial: Duration::from_millis(500),
            backoff_max: Duration::from_secs(30),
            jitter: 0.2,
            stable_after: Duration::from_secs(60),
        }
    }
}

impl SupervisionSpec {
    /// Reads `restart`, `restart_budget` and `restart_backoff` from a
    /// component's properties; absent ones take the defaults (never; 5
    /// restarts in 60 s; 0.5 s doubling to 30 s, ±20 %, reset after 60 s
    /// stable).
    pub fn from_properties(properties: &Map<String, Value>) -> Result<Self, ErrorInfo> {
        let policy = parse(properties, "restart")?;
        let budget = parse(properties, "restart_budget")?;
        let backoff = parse(properties, "restart_backoff")?;
        Self::build(policy, budget, backoff)
    }

    fn build(
        policy: RestartPolicy,
        budget: RawBudget,
        backoff: RawBackoff,
    ) -> Result<Self, ErrorInfo> {
        let seconds = |key: &str, value: f64| {
            if value.is_finite() && (0.0..=86_400.0).contains(&value) {
                Ok(Duration::from_secs_f64(value))
            } else {
                Err(invalid(format!(
                    "{key} must be a number of seconds between 0 and 86400, not {value}"
                )))
            }
        };
        if !(0.0..=1.0).contains(&backoff.jitter) {
            return Err(invalid(format!(
                "restart_backoff.jitter must be between 0 and 1, not {}",
                backoff.jitter
            )));
        }
        let spec = SupervisionSpec {
            policy,
            max_restarts: budget.max_restarts,
            window: seconds("restart_budget.window", budget.window)?,
            backoff_initial: seconds("restart_backoff.initial", backoff.initial)?,
            backoff_max: seconds("restart_backoff.max", backoff.max)?,
            jitter: backoff.jitter,
            stable_after: seconds("restart_backoff.stable_after", backoff.stable_after)?,
        };
        if spec.backoff_max < spec.backoff_initial {
            return Err(invalid(
                "restart_backoff.max must not be below restart_backoff.initial".into(),
            ));
        }
        Ok(spec)
    }
}

fn parse<T: Default + serde::de::DeserializeOwned>(
    properties: &Map<String, Value>,
    key: &str,
) -> Result<T, ErrorInfo> {
    match properties.get(key) {
        None | Some(Value::Null) => Ok(T::default()),
        Some(value) => {
            T::deserialize(value).map_err(|e| invalid(format!("property {key:?} is invalid: {e}")))
        }
    }
}

fn invalid(message: String) -> ErrorInfo {
    ErrorInfo::new(ErrorCode::InvalidParameters, message)
}

/// What a supervised component reported.
#[derive(Debug, Clone, PartialEq)]
pub enum Exit {
    /// It went to `error` with a run-time failure (a kind error, a panic, a
    /// child process that died).
    Failed(ErrorInfo),
    /// Its run ended by itself (`running` -> `idle` with no `stop`).
    Completed,
}

/// The supervisor's decision.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Reset it after `after`; then start it again if `start`.
    Restart {
        /// The backoff delay.
        after: Duration,
        /// Re-issue the last `start` once it is `idle`.
        start: bool,
        /// How many restarts the window now holds.
        restarts: usize,
    },
    /// Leave it alone (a completed run under a policy that does not
    /// restart).
    Nothing,
    /// The budget is spent: leave it in `error` with this error until an
    /// operator resets it. A manager's spent budget escalates.
    GiveUp(ErrorInfo),
}

/// The restart history of one component.
#[derive(Debug, Clone)]
pub struct RestartTracker {
    spec: SupervisionSpec,
    /// Times of the restarts still inside the window.
    restarts: VecDeque<Instant>,
    /// The next delay before jitter.
    backoff: Duration,
    /// The last restart, to start the delay over after a stable period.
    last_restart: Option<Instant>,
}

impl RestartTracker {
    /// A tracker with a clean history.
    pub fn new(spec: SupervisionSpec) -> Self {
        RestartTracker {
            spec,
            restarts: VecDeque::new(),
            backoff: spec.backoff_initial,
            last_restart: None,
        }
    }

    /// The component's policy.
    pub fn policy(&self) -> RestartPolicy {
        self.spec.policy
    }

    /// Decides what follows `exit` at `now`; `random` in [0, 1) draws the
    /// jitter.
    pub fn on_exit(&mut self, exit: &Exit, now: Instant, random: f64) -> Decision {
        let start = match exit {
            Exit::Completed if self.spec.policy != RestartPolicy::Always => {
                return Decision::Nothing
            }
            Exit::Completed => true,
            Exit::Failed(_) => self.spec.policy != RestartPolicy::Never,
        };
        if self
            .last_restart
            .is_some_and(|last| now.saturating_duration_since(last) >= self.spec.stable_after)
        {
            self.backoff = self.spec.backoff_initial;
        }
        while self
            .restarts
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= self.spec.window)
        {
            self.restarts.pop_front();
        }
        if self.restarts.len() >= self.spec.max_restarts as usize {
            let mut error = ErrorInfo::new(
                ErrorCode::RestartBudgetSpent,
                format!(
                    "restart budget spent: {} restarts within {} s; send reset to try again",
                    self.restarts.len(),
                    self.spec.window.as_secs_f64()
                ),
            )
            .with("restarts", self.restarts.len())
            .with("window", self.spec.window.as_secs_f64());
            if let Exit::Failed(cause) = exit {
                error = error.with("cause", cause.message.clone());
            }
            return Decision::GiveUp(error);
        }
        let factor = 1.0 + self.spec.jitter * (2.0 * random.clamp(0.0, 1.0) - 1.0);
        let after = self.backoff.mul_f64(factor.max(0.0));
        self.backoff = (self.backoff * 2).min(self.spec.backoff_max);
        self.restarts.push_back(now);
        self.last_restart = Some(now);
        Decision::Restart {
            after,
            start,
            restarts: self.restarts.len(),
        }
    }

    /// An operator reset the component: the budget and the delay start
    /// over.
    pub fn clear(&mut self) {
        self.restarts.clear();
        self.backoff = self.spec.backoff_initial;
        self.last_restart = None;
    }
}

/// The trackers of the components one supervisor supervises.
#[derive(Debug, Default)]
pub struct Supervised {
    trackers: HashMap<String, (RestartTracker, bool)>,
}

impl Supervised {
    /// Starts supervising `uuid`; `is_manager` makes a spent budget
    /// escalate.
    pub fn insert(&mut self, uuid: String, spec: SupervisionSpec, is_manager: bool) {
        self.trackers
            .insert(uuid, (RestartTracker::new(spec), is_manager));
    }

    /// Stops supervising `uuid`.
    pub fn remove(&mut self, uuid: &str) {
        self.trackers.remove(uuid);
    }

    /// Decides for `uuid` (unknown uuids: nothing); the flag says whether
    /// it is a manager.
    pub fn on_exit(&mut self, uuid: &str, exit: &Exit) -> Option<(Decision, bool)> {
        let (tracker, is_manager) = self.trackers.get_mut(uuid)?;
        let decision = tracker.on_exit(exit, Instant::now(), rand::random::<f64>());
        Some((decision, *is_manager))
    }

    /// The operator reset `uuid`.
    pub fn clear(&mut self, uuid: &str) {
        if let Some((tracker, _)) = self.trackers.get_mut(uuid) {
            tracker.clear();
        }
    }

    /// The policy of `uuid`.
    pub fn policy(&self, uuid: &str) -> Option<RestartPolicy> {
        self.trackers.get(uuid).map(|(t, _)| t.policy())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(properties: Value) -> SupervisionSpec {
        let Value::Object(map) = properties else {
            panic!("not an object")
        };
        SupervisionSpec::from_properties(&map).unwrap()
    }

    fn failed() -> Exit {
        Exit::Failed(ErrorInfo::new(ErrorCode::Crashed, "boom"))
    }

    #[test]
    fn defaults_match_the_documented_ones() {
        let s = spec(json!({}));
        assert_eq!(s.policy, RestartPolicy::Never);
        assert_eq!(s.max_restarts, 5);
        assert_eq!(s.window, Duration::from_secs(60));
        assert_eq!(s.backoff_initial, Duration::from_millis(500));
        assert_eq!(s.backoff_max, Duration::from_secs(30));
        assert_eq!(s.stable_after, Duration::from_secs(60));
        assert!((s.jitter - 0.2).abs() < 1e-9);
    }

    #[test]
    fn bad_settings_are_refused_with_the_property_named() {
        for bad in [
            json!({"restart": "sometimes"}),
            json!({"restart": 3}),
            json!({"restart_budget": {"max_restarts": -1}}),
            json!({"restart_budget": {"window": "long"}}),
            json!({"restart_backoff": {"initial": -1}}),
            json!({"restart_backoff": {"jitter": 2}}),
            json!({"restart_backoff": {"initial": 5, "max": 1}}),
            json!({"restart_backoff": {"typo": 1}}),
        ] {
            let Value::Object(map) = bad.clone() else {
                panic!()
            };
            let error = SupervisionSpec::from_properties(&map).unwrap_err();
            assert_eq!(error.code, ErrorCode::InvalidParameters, "{bad}");
            assert!(
                error.message.contains("restart"),
                "{bad}: {}",
                error.message
            );
        }
    }

    #[test]
    fn backoff_doubles_to_the_cap_with_jitter_and_starts_over_when_stable() {
        let mut t = RestartTracker::new(spec(json!({
            "restart": "on-failure",
            "restart_budget": {"max_restarts": 100, "window": 1},
            "restart_backoff": {"initial": 0.5, "max": 4, "jitter": 0.2, "stable_after": 60}
        })));
        let t0 = Instant::now();
        let delays: Vec<f64> = (0..6)
            .map(
                |i| match t.on_exit(&failed(), t0 + Duration::from_secs(i * 2), 0.5) {
                    Decision::Restart { after, start, .. } => {
                        assert!(start);
                        after.as_secs_f64()
                    }
                    other => panic!("{other:?}"),
                },
            )
            .collect();
        assert_eq!(delays, [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]);
        // Jitter: the extremes of the random draw give -20 % and +20 %.
        let t1 = t0 + Duration::from_secs(1000);
        let Decision::Restart { after, .. } = t.on_exit(&failed(), t1, 0.0) else {
            panic!()
        };
        assert!((after.as_secs_f64() - 0.4).abs() < 1e-9, "{after:?}");
        let Decision::Restart { after, .. } =
            t.on_exit(&failed(), t1 + Duration::from_secs(2), 1.0)
        else {
            panic!()
        };
        assert!((after.as_secs_f64() - 1.2).abs() < 1e-9, "{after:?}");
    }

    #[test]
    fn more_than_the_budget_within_the_window_gives_up_until_cleared() {
        let mut t = RestartTracker::new(spec(json!({"restart": "on-failure"})));
        let t0 = Instant::now();
        for i in 0..5 {
            let at = t0 + Duration::from_secs(i);
            assert!(matches!(
                t.on_exit(&failed(), at, 0.5),
                Decision::Restart { restarts, .. } if restarts == i as usize + 1
            ));
        }
        let Decision::GiveUp(error) = t.on_exit(&failed(), t0 + Duration::from_secs(10), 0.5)
        else {
            panic!("the sixth failure within 60 s must spend the budget")
        };
        assert_eq!(error.code, ErrorCode::RestartBudgetSpent);
        assert!(error.message.contains("restart budget spent"));
        // Outside the window the old restarts no longer count.
        assert!(matches!(
            t.on_exit(&failed(), t0 + Duration::from_secs(62), 0.5),
            Decision::Restart { .. }
        ));
        // An operator reset clears the budget at once.
        for i in 0..4 {
            t.on_exit(&failed(), t0 + Duration::from_secs(63 + i), 0.5);
        }
        assert!(matches!(
            t.on_exit(&failed(), t0 + Duration::from_secs(70), 0.5),
            Decision::GiveUp(_)
        ));
        t.clear();
        assert!(matches!(
            t.on_exit(&failed(), t0 + Duration::from_secs(71), 0.5),
            Decision::Restart { restarts: 1, .. }
        ));
    }

    #[test]
    fn policies_decide_whether_to_start_again() {
        let now = Instant::now();
        let mut never = RestartTracker::new(spec(json!({})));
        assert!(matches!(
            never.on_exit(&failed(), now, 0.5),
            Decision::Restart { start: false, .. }
        ));
        assert_eq!(never.on_exit(&Exit::Completed, now, 0.5), Decision::Nothing);
        let mut on_failure = RestartTracker::new(spec(json!({"restart": "on-failure"})));
        assert!(matches!(
            on_failure.on_exit(&failed(), now, 0.5),
            Decision::Restart { start: true, .. }
        ));
        assert_eq!(
            on_failure.on_exit(&Exit::Completed, now, 0.5),
            Decision::Nothing
        );
        let mut always = RestartTracker::new(spec(json!({"restart": "always"})));
        assert!(matches!(
            always.on_exit(&Exit::Completed, now, 0.5),
            Decision::Restart { start: true, .. }
        ));
    }
}
