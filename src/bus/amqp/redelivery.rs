//! Recognises an action the broker redelivers although the daemon already
//! dispatched it (its acknowledgement was lost with the connection). The
//! fingerprints (headers and body) of the actions dispatched on the
//! current link are kept; when the link is lost, those dispatched in the
//! last moments before ([`SUSPECT_WINDOW`]: their acks may not have
//! reached the broker) become suspects, and a redelivered message matching
//! a suspect is dropped, once per dispatched copy.

use std::collections::{HashMap, VecDeque};
use std::hash::{Hash, Hasher};
use std::time::{Duration, Instant};
use villas_sdk::Headers;

/// How many dispatched actions of the current link are remembered: more
/// than the consumer's prefetch, which bounds the unacknowledged ones.
pub(crate) const REMEMBERED: usize = 4096;

/// Actions dispatched this long before the last one of a lost link may
/// still have been unacknowledged (acks leave within milliseconds).
pub(crate) const SUSPECT_WINDOW: Duration = Duration::from_secs(2);

/// The dispatched actions of the current link and the suspects of the
/// previous one.
#[derive(Debug)]
pub(crate) struct RedeliveryFilter {
    /// Fingerprints dispatched on the current link, oldest first.
    current: VecDeque<(u64, Instant)>,
    /// fingerprint -> dispatched copies whose ack may have been lost.
    suspects: HashMap<u64, u32>,
    /// Bound of `current`.
    capacity: usize,
}

impl RedeliveryFilter {
    /// Remembers up to `capacity` dispatched actions per link.
    pub(crate) fn new(capacity: usize) -> Self {
        RedeliveryFilter {
            current: VecDeque::new(),
            suspects: HashMap::new(),
            capacity: capacity.max(1),
        }
    }

    /// The fingerprint of a message: its addressing headers and its body.
    pub(crate) fn fingerprint(headers: &Headers, body: &[u8]) -> u64 {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        for (name, value) in headers.iter() {
            name.hash(&mut hasher);
            value.hash(&mut hasher);
        }
        body.hash(&mut hasher);
        hasher.finish()
    }

    /// Records a message dispatched on the current link.
    pub(crate) fn record(&mut self, fingerprint: u64) {
        self.record_at(fingerprint, Instant::now());
    }

    fn record_at(&mut self, fingerprint: u64, at: Instant) {
        if self.current.len() == self.capacity {
            self.current.pop_front();
        }
        self.current.push_back((fingerprint, at));
    }

    /// The link was lost: the actions dispatched within `window` of the
    /// last one become the suspects (replacing the previous link's,
    /// whose redeliveries came first on the link that just ended; kept if
    /// that link dispatched nothing).
    pub(crate) fn link_lost(&mut self, window: Duration) {
        let Some(&(_, newest)) = self.current.back() else {
            return;
        };
        self.suspects.clear();
        for (fingerprint, at) in self.current.drain(..) {
            if newest.duration_since(at) <= window {
                *self.suspects.entry(fingerprint).or_default() += 1;
            }
        }
    }

    /// Whether a redelivered message was dispatched already; if so, that
    /// copy is used up.
    pub(crate) fn take(&mut self, fingerprint: u64) -> bool {
        match self.suspects.get_mut(&fingerprint) {
            Some(count) if *count > 1 => {
                *count -= 1;
                true
            }
            Some(_) => {
                self.suspects.remove(&fingerprint);
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_redelivery_matches_each_copy_dispatched_before_the_loss_once() {
        let mut recent = RedeliveryFilter::new(REMEMBERED);
        let ping = RedeliveryFilter::fingerprint(&Headers::uuid("a"), br#"{"action":"ping"}"#);
        let start = RedeliveryFilter::fingerprint(&Headers::uuid("a"), br#"{"action":"start"}"#);
        assert_ne!(ping, start);
        assert_ne!(
            ping,
            RedeliveryFilter::fingerprint(&Headers::uuid("b"), br#"{"action":"ping"}"#)
        );
        recent.record(start);
        recent.record(start);
        assert!(!recent.take(start), "the link is not lost yet");
        recent.link_lost(SUSPECT_WINDOW);
        assert!(recent.take(start));
        assert!(recent.take(start));
        assert!(!recent.take(start), "only two copies were dispatched");
        assert!(!recent.take(ping));
    }

    #[test]
    fn only_the_last_moments_before_the_loss_are_suspect() {
        let mut recent = RedeliveryFilter::new(REMEMBERED);
        let t0 = Instant::now();
        recent.record_at(1, t0);
        recent.record_at(2, t0 + Duration::from_secs(5));
        recent.record_at(3, t0 + Duration::from_secs(6));
        recent.link_lost(SUSPECT_WINDOW);
        assert!(!recent.take(1), "acknowledged long before the loss");
        assert!(recent.take(2));
        assert!(recent.take(3));
    }

    #[test]
    fn suspects_survive_a_link_that_dispatched_nothing() {
        let mut recent = RedeliveryFilter::new(2);
        recent.record(1);
        recent.record(2);
        recent.record(3);
        recent.link_lost(SUSPECT_WINDOW);
        recent.link_lost(SUSPECT_WINDOW);
        assert!(!recent.take(1), "beyond the capacity");
        assert!(recent.take(2));
        recent.record(4);
        recent.link_lost(SUSPECT_WINDOW);
        assert!(!recent.take(3), "replaced by the next link's suspects");
        assert!(recent.take(4));
    }
}
