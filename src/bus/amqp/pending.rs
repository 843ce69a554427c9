//! The statuses that wait for the broker while the bus is down: only the
//! latest status of each component (keyed by uuid) is kept, so a long
//! outage ends with one status per component instead of a flood of stale
//! ones, and the store is bounded in bytes (the oldest entries go first).

use indexmap::IndexMap;
use std::sync::Arc;
use villas_sdk::Headers;

/// Default bound of the status bytes kept while the bus is down (64 MiB:
/// about 30,000 components with large schemas).
pub(crate) const PENDING_LIMIT_BYTES: usize = 64 << 20;

/// A status message waiting to be published.
pub(crate) type Status = (Arc<Headers>, Vec<u8>);

/// The latest status of each component, in order of first change.
#[derive(Debug)]
pub(crate) struct Pending {
    /// uuid -> latest status.
    latest: IndexMap<String, Status>,
    /// Sum of the body sizes held.
    bytes: usize,
    /// Bound of `bytes`.
    limit: usize,
    /// Statuses replaced by a newer one of the same component.
    replaced: u64,
    /// Statuses dropped to stay under the bound.
    dropped: u64,
}

impl Pending {
    /// An empty store bounded to `limit` bytes of bodies (at least one
    /// status is always kept).
    pub(crate) fn new(limit: usize) -> Self {
        Pending {
            latest: IndexMap::new(),
            bytes: 0,
            limit,
            replaced: 0,
            dropped: 0,
        }
    }

    /// Keeps `body` as the latest status of its component, replacing an
    /// older one, and drops the oldest entries beyond the bound.
    pub(crate) fn insert(&mut self, headers: Arc<Headers>, body: Vec<u8>) {
        let key = headers.uuid.clone().unwrap_or_default();
        self.bytes += body.len();
        if let Some((_, old)) = self.latest.insert(key, (headers, body)) {
            self.bytes -= old.len();
            self.replaced += 1;
        }
        while self.bytes > self.limit && self.latest.len() > 1 {
            match self.latest.shift_remove_index(0) {
                Some((uuid, (_, old))) => {
                    self.bytes -= old.len();
                    self.dropped += 1;
                    tracing::warn!(%uuid, limit = self.limit, "bus down: pending statuses over the limit; oldest dropped");
                }
                None => break,
            }
        }
    }

    /// Takes every pending status, oldest first, leaving the store empty.
    pub(crate) fn take(&mut self) -> Vec<Status> {
        self.bytes = 0;
        self.latest.drain(..).map(|(_, status)| status).collect()
    }

    /// Puts back statuses that could not be published (`take`n earlier),
    /// unless a newer status of the same component arrived meanwhile.
    pub(crate) fn restore(&mut self, statuses: impl IntoIterator<Item = Status>) {
        let newer = std::mem::take(&mut self.latest);
        self.bytes = 0;
        for (headers, body) in statuses {
            self.insert(headers, body);
        }
        for (_, (headers, body)) in newer {
            self.insert(headers, body);
        }
    }

    /// Number of components with a pending status.
    pub(crate) fn len(&self) -> usize {
        self.latest.len()
    }

    /// Returns and resets (replaced, dropped) since the last call.
    pub(crate) fn take_counts(&mut self) -> (u64, u64) {
        (
            std::mem::take(&mut self.replaced),
            std::mem::take(&mut self.dropped),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(uuid: &str, body: &str) -> (Arc<Headers>, Vec<u8>) {
        (Arc::new(Headers::uuid(uuid)), body.as_bytes().to_vec())
    }

    fn bodies(pending: &mut Pending) -> Vec<String> {
        pending
            .take()
            .into_iter()
            .map(|(_, b)| String::from_utf8(b).unwrap_or_default())
            .collect()
    }

    #[test]
    fn keeps_the_latest_status_per_component() {
        let mut pending = Pending::new(PENDING_LIMIT_BYTES);
        for (uuid, body) in [("a", "a1"), ("b", "b1"), ("a", "a2"), ("a", "a3")] {
            let (h, b) = status(uuid, body);
            pending.insert(h, b);
        }
        assert_eq!(pending.len(), 2);
        assert_eq!(pending.take_counts(), (2, 0));
        assert_eq!(bodies(&mut pending), ["a3", "b1"]);
        assert_eq!(pending.len(), 0);
    }

    #[test]
    fn bounded_in_bytes_oldest_first() {
        let mut pending = Pending::new(10);
        for uuid in ["a", "b", "c", "d"] {
            let (h, b) = status(uuid, "1234");
            pending.insert(h, b);
        }
        assert_eq!(pending.take_counts(), (0, 2));
        assert_eq!(pending.len(), 2);
        let kept: Vec<_> = pending
            .take()
            .into_iter()
            .map(|(h, _)| h.uuid.clone().unwrap_or_default())
            .collect();
        assert_eq!(kept, ["c", "d"]);
    }

    #[test]
    fn restore_does_not_override_newer_statuses() {
        let mut pending = Pending::new(PENDING_LIMIT_BYTES);
        let (h, b) = status("a", "a1");
        pending.insert(h, b);
        let (h, b) = status("b", "b1");
        pending.insert(h, b);
        let taken = pending.take();
        let (h, b) = status("b", "b2");
        pending.insert(h, b);
        pending.restore(taken);
        assert_eq!(bodies(&mut pending), ["a1", "b2"]);
    }
}
