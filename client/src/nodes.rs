//! Several broker nodes (the nodes of a RabbitMQ cluster, or independent
//! brokers on one exchange): the list as a user writes it ([`split_urls`]),
//! the order one process tries them in ([`spread`]) and the walk over them
//! when a node does not answer or is lost ([`Failover`]). Pure: the
//! daemon's link and [`crate::Session::open`] do the connecting.

use std::hash::{DefaultHasher, Hash, Hasher};

/// The URLs of a comma-separated list (`-b URL1,URL2`, or one string in
/// the environment), trimmed, empty items dropped. A single URL is a list
/// of one.
pub fn split_urls(list: &str) -> Vec<String> {
    list.split(',')
        .map(str::trim)
        .filter(|url| !url.is_empty())
        .map(str::to_owned)
        .collect()
}

/// `urls` in an order of `key`'s own: the same key always gets the same
/// order, different keys (daemon uuids) spread over the nodes, so that the
/// daemons of a lab do not all connect to its first node. The order is the
/// URLs sorted by a hash of (key, URL): adding a node moves only the
/// daemons that now prefer it.
pub fn spread(urls: &[String], key: &str) -> Vec<String> {
    let mut keyed: Vec<(u64, &String)> = urls
        .iter()
        .map(|url| {
            let mut hasher = DefaultHasher::new();
            (key, url).hash(&mut hasher);
            (hasher.finish(), url)
        })
        .collect();
    keyed.sort();
    keyed.into_iter().map(|(_, url)| url.clone()).collect()
}

/// Which node to try next, and how long to back off before: a failed
/// attempt moves to the next node, a lost link too (its node is the last
/// tried again), and the backoff grows by one step per full round of
/// failures, so that a dead node is skipped after one short delay while a
/// dead cluster is retried ever more slowly (as one node was before).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failover {
    /// How many nodes there are (at least one).
    nodes: usize,
    /// The node the next attempt goes to.
    current: usize,
    /// Failed attempts (and losses) since the last stable link.
    failures: u32,
}

impl Failover {
    /// A walk over `nodes` nodes, starting at the first.
    pub fn new(nodes: usize) -> Failover {
        Failover {
            nodes: nodes.max(1),
            current: 0,
            failures: 0,
        }
    }

    /// The index of the node the next attempt goes to.
    pub fn current(&self) -> usize {
        self.current
    }

    /// An attempt at the current node failed: the next attempt goes to the
    /// next node, after the returned backoff step.
    pub fn failed(&mut self) -> u32 {
        self.advance()
    }

    /// The link to the current node was lost. `stable`: it had been up
    /// long enough to forget earlier failures. `same_node`: only the
    /// channel failed and the connection to that node is still open (it
    /// is reused, the node stays). Returns the backoff step.
    pub fn lost(&mut self, stable: bool, same_node: bool) -> u32 {
        if stable {
            self.failures = 0;
        }
        if same_node {
            let step = self.step();
            self.failures = self.failures.saturating_add(1);
            return step;
        }
        self.advance()
    }

    /// Moves to the next node; the step of the delay before trying it.
    fn advance(&mut self) -> u32 {
        let step = self.step();
        self.failures = self.failures.saturating_add(1);
        self.current = (self.current + 1) % self.nodes;
        step
    }

    /// Full rounds over the nodes failed so far.
    fn step(&self) -> u32 {
        // `nodes` is at least 1 and small; the quotient fits.
        self.failures / u32::try_from(self.nodes).unwrap_or(u32::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn urls(list: &[&str]) -> Vec<String> {
        list.iter().map(|u| u.to_string()).collect()
    }

    #[test]
    fn a_list_is_split_on_commas() {
        assert_eq!(split_urls("amqp://a/%2F"), urls(&["amqp://a/%2F"]));
        assert_eq!(
            split_urls(" amqp://a/%2F , amqp://b/%2F,,"),
            urls(&["amqp://a/%2F", "amqp://b/%2F"])
        );
        assert!(split_urls(" , ").is_empty());
    }

    #[test]
    fn spread_is_a_stable_permutation_per_key() {
        let nodes = urls(&["amqp://a/", "amqp://b/", "amqp://c/"]);
        let one = spread(&nodes, "daemon-1");
        assert_eq!(one, spread(&nodes, "daemon-1"));
        let mut sorted = one.clone();
        sorted.sort();
        assert_eq!(sorted, nodes);
        // Forty daemons do not all start on the same node.
        let firsts: std::collections::HashSet<String> = (0..40)
            .map(|i| spread(&nodes, &format!("daemon-{i}"))[0].clone())
            .collect();
        assert_eq!(firsts.len(), 3, "{firsts:?}");
    }

    #[test]
    fn failed_attempts_walk_the_nodes_and_back_off_per_round() {
        let mut walk = Failover::new(3);
        assert_eq!(walk.current(), 0);
        let steps: Vec<(u32, usize)> = (0..7)
            .map(|_| {
                let step = walk.failed();
                (step, walk.current())
            })
            .collect();
        assert_eq!(
            steps,
            [(0, 1), (0, 2), (0, 0), (1, 1), (1, 2), (1, 0), (2, 1)]
        );
    }

    #[test]
    fn a_lost_link_fails_over_to_the_next_node_at_once() {
        let mut walk = Failover::new(3);
        assert_eq!(walk.lost(true, false), 0);
        assert_eq!(walk.current(), 1);
        // Only the channel failed: the same node, its connection reused.
        assert_eq!(walk.lost(false, true), 0);
        assert_eq!(walk.current(), 1);
        // A stable link forgets earlier failures.
        for _ in 0..6 {
            walk.failed();
        }
        assert_eq!(walk.lost(false, false), 2);
        assert_eq!(walk.lost(true, false), 0);
    }

    #[test]
    fn one_node_backs_off_as_before() {
        let mut walk = Failover::new(1);
        assert_eq!(walk.failed(), 0);
        assert_eq!(walk.failed(), 1);
        assert_eq!(walk.failed(), 2);
        assert_eq!(walk.current(), 0);
        assert_eq!(Failover::new(0).current(), 0);
    }
}
