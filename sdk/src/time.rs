//! Time as kind code sees it: the timers a component asked for (each with
//! a [`TimerId`] it can cancel) and the [`Clock`] a driver reads, the
//! system's or a test's manual one.

use std::any::Any;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::{ErrorCode, ErrorInfo};

/// Names one timer of one component, to cancel it
/// ([`crate::Context::cancel`]). Never reused within an instance's life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TimerId(u64);

/// What a component attached to a timer, handed back to
/// [`crate::Component::on_timer`] when it fires (the typed layer downcasts
/// it to the component's `Timer` type).
pub type TimerToken = Box<dyn Any + Send>;

/// The timers of one instance that may still fire: scheduled, not yet
/// fired, not cancelled. A timer that is not here when it fires is stale
/// and ignored, so cancelling needs nothing from the runtime.
#[derive(Default)]
pub(crate) struct Timers {
    /// The id the next timer gets.
    next: u64,
    /// Live timers and their tokens, oldest first (a component has a few).
    live: Vec<(TimerId, TimerToken)>,
}

impl std::fmt::Debug for Timers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.live.iter().map(|(id, _)| id))
            .finish()
    }
}

impl Timers {
    /// Records a new live timer.
    pub(crate) fn add(&mut self, token: TimerToken) -> TimerId {
        self.next += 1;
        let id = TimerId(self.next);
        self.live.push((id, token));
        id
    }

    /// Forgets a live timer; `false` if it fired or was cancelled already.
    pub(crate) fn cancel(&mut self, id: TimerId) -> bool {
        self.take(id).is_some()
    }

    /// A timer fired: its token if it is still live.
    pub(crate) fn take(&mut self, id: TimerId) -> Option<TimerToken> {
        let index = self.live.iter().position(|(live, _)| *live == id)?;
        Some(self.live.remove(index).1)
    }

    /// Forgets every live timer, returning their ids.
    pub(crate) fn clear(&mut self) -> Vec<TimerId> {
        self.live.drain(..).map(|(id, _)| id).collect()
    }
}

/// Where a driver reads the time: the system's monotonic clock, or a
/// [`ManualClock`] a test moves forward itself (see `villas_sdk::testing`).
#[derive(Debug, Clone, Default)]
pub enum Clock {
    /// [`Instant::now`].
    #[default]
    System,
    /// A test's clock.
    Manual(ManualClock),
}

impl Clock {
    /// The current instant.
    pub fn now(&self) -> Instant {
        match self {
            Clock::System => Instant::now(),
            Clock::Manual(clock) => clock.now(),
        }
    }
}

/// A clock that stands still until it is advanced: virtual time for tests.
/// Clones share the time.
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<Mutex<Instant>>);

impl Default for ManualClock {
    fn default() -> Self {
        ManualClock(Arc::new(Mutex::new(Instant::now())))
    }
}

impl ManualClock {
    /// The clock's current instant.
    pub fn now(&self) -> Instant {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) += by;
    }

    /// Moves the clock forward to `to` (never backwards).
    pub fn advance_to(&self, to: Instant) {
        let mut now = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if to > *now {
            *now = to;
        }
    }
}

/// A property given in seconds as a positive [`Duration`], or the
/// `invalid-parameters` error naming the property.
pub fn seconds_property(property: &str, value: f64) -> Result<Duration, ErrorInfo> {
    Duration::try_from_secs_f64(value)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| {
            ErrorInfo::new(
                ErrorCode::InvalidParameters,
                format!("property {property} must be a positive number of seconds"),
            )
            .with("property", property)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_properties_are_positive_and_finite() {
        assert_eq!(
            seconds_property("t", 1.5).ok(),
            Some(Duration::from_millis(1500))
        );
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            let err = seconds_property("api_timeout", bad).err();
            assert_eq!(err.map(|e| e.code), Some(ErrorCode::InvalidParameters));
        }
    }

    #[test]
    fn cancelled_and_fired_timers_are_no_longer_live() {
        let mut timers = Timers::default();
        let a = timers.add(Box::new(1_u8));
        let b = timers.add(Box::new(2_u8));
        assert_ne!(a, b);
        assert!(timers.cancel(a));
        assert!(!timers.cancel(a), "cancelled twice");
        assert!(timers.take(a).is_none());
        let token = timers.take(b).expect("b is live");
        assert_eq!(token.downcast_ref::<u8>(), Some(&2));
        assert!(timers.take(b).is_none(), "fired twice");
        let c = timers.add(Box::new(()));
        assert!(c > b, "ids are never reused");
        assert_eq!(timers.clear(), [c]);
        assert!(timers.take(c).is_none());
    }

    #[test]
    fn a_manual_clock_moves_only_when_told() {
        let clock = ManualClock::default();
        let start = clock.now();
        let shared = Clock::Manual(clock.clone());
        clock.advance(Duration::from_secs(2));
        assert_eq!(shared.now() - start, Duration::from_secs(2));
        clock.advance_to(start);
        assert_eq!(shared.now() - start, Duration::from_secs(2), "never back");
    }
}
