//! The in-process routing index: which components a message's headers
//! address. One table for the whole daemon, so the broker needs a single
//! binding however many components there are; the fan-out follows
//! RabbitMQ's `x-match: any` exactly, and each component is reached once.

use indexmap::IndexSet;
use std::collections::HashMap;
use villas_sdk::{Headers, Identity};

/// A component in the index, with what to deliver to.
#[derive(Debug)]
pub struct Route<T> {
    /// The component's addressing identity.
    pub identity: Identity,
    /// Where its messages go (an actor's address, in the daemon).
    pub target: T,
}

/// A uuid is already in the index.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a component with uuid {0} already exists")]
pub struct DuplicateUuid(pub String);

/// Components indexed by each of the four headers.
#[derive(Debug)]
pub struct RoutingTable<T> {
    /// Slots; `None` marks a free one (listed in `free`).
    slots: Vec<Option<Route<T>>>,
    /// Free slot numbers, reused before the table grows.
    free: Vec<usize>,
    /// uuid -> slot.
    by_uuid: HashMap<String, usize>,
    /// realm -> slots (components without a realm are not listed).
    by_realm: HashMap<String, IndexSet<usize>>,
    /// category -> slots.
    by_category: HashMap<String, IndexSet<usize>>,
    /// type -> slots.
    by_type: HashMap<String, IndexSet<usize>>,
}

impl<T> Default for RoutingTable<T> {
    fn default() -> Self {
        RoutingTable {
            slots: Vec::new(),
            free: Vec::new(),
            by_uuid: HashMap::new(),
            by_realm: HashMap::new(),
            by_category: HashMap::new(),
            by_type: HashMap::new(),
        }
    }
}

impl<T> RoutingTable<T> {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of components.
    pub fn len(&self) -> usize {
        self.by_uuid.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.by_uuid.is_empty()
    }

    /// Adds a component; refuses a uuid that is already there.
    pub fn insert(&mut self, identity: Identity, target: T) -> Result<(), DuplicateUuid> {
        if self.by_uuid.contains_key(&identity.uuid) {
            return Err(DuplicateUuid(identity.uuid));
        }
        let slot = self.free.pop().unwrap_or(self.slots.len());
        if let Some(realm) = &identity.realm {
            self.by_realm.entry(realm.clone()).or_default().insert(slot);
        }
        self.by_category
            .entry(identity.category.clone())
            .or_default()
            .insert(slot);
        self.by_type
            .entry(identity.type_name.clone())
            .or_default()
            .insert(slot);
        self.by_uuid.insert(identity.uuid.clone(), slot);
        let route = Some(Route { identity, target });
        if slot == self.slots.len() {
            self.slots.push(route);
        } else {
            self.slots[slot] = route;
        }
        Ok(())
    }

    /// Removes a component by uuid.
    pub fn remove(&mut self, uuid: &str) -> Option<Route<T>> {
        let slot = self.by_uuid.remove(uuid)?;
        let route = self.slots.get_mut(slot)?.take()?;
        let id = &route.identity;
        if let Some(realm) = &id.realm {
            unindex(&mut self.by_realm, realm, slot);
        }
        unindex(&mut self.by_category, &id.category, slot);
        unindex(&mut self.by_type, &id.type_name, slot);
        self.free.push(slot);
        Some(route)
    }

    /// The component with this uuid.
    pub fn get(&self, uuid: &str) -> Option<&Route<T>> {
        let slot = *self.by_uuid.get(uuid)?;
        self.slots.get(slot)?.as_ref()
    }

    /// Every component.
    pub fn iter(&self) -> impl Iterator<Item = &Route<T>> {
        self.slots.iter().flatten()
    }

    /// Calls `deliver` once for every component the headers address
    /// (`x-match: any`; an empty-string header addresses everyone; a
    /// component without a value for a header is not matched through it).
    /// Returns how many were reached.
    pub fn route(&self, headers: &Headers, mut deliver: impl FnMut(&Route<T>)) -> usize {
        if headers.is_empty() {
            return 0;
        }
        if headers.addresses_everyone() {
            self.iter().for_each(&mut deliver);
            return self.len();
        }
        let mut reached = 0;
        // uuid first: at most one component, no earlier header to check.
        if let Some(route) = headers.uuid.as_deref().and_then(|uuid| self.get(uuid)) {
            deliver(route);
            reached += 1;
        }
        let groups = [
            (headers.realm.as_deref(), &self.by_realm),
            (headers.category.as_deref(), &self.by_category),
            (headers.type_name.as_deref(), &self.by_type),
        ];
        for (position, (value, index)) in groups.iter().enumerate() {
            let Some(slots) = value.and_then(|v| index.get(v)) else {
                continue;
            };
            for &slot in slots {
                let Some(route) = self.slots.get(slot).and_then(Option::as_ref) else {
                    continue;
                };
                if reached_earlier(&route.identity, headers, position) {
                    continue;
                }
                deliver(route);
                reached += 1;
            }
        }
        reached
    }
}

/// Whether a header before group `position` (uuid, then realm, category,
/// type) already matched this component, so it was delivered to already.
fn reached_earlier(id: &Identity, headers: &Headers, position: usize) -> bool {
    let same = |own: Option<&str>, theirs: &Option<String>| matches!((own, theirs.as_deref()), (Some(a), Some(b)) if a == b);
    same(Some(&id.uuid), &headers.uuid)
        || (position > 0 && same(id.realm.as_deref(), &headers.realm))
        || (position > 1 && same(Some(&id.category), &headers.category))
}

fn unindex(index: &mut HashMap<String, IndexSet<usize>>, key: &str, slot: usize) {
    if let Some(slots) = index.get_mut(key) {
        slots.swap_remove(&slot);
        if slots.is_empty() {
            index.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: usize, realm: Option<&str>, category: &str, kind: &str) -> Identity {
        Identity {
            realm: realm.map(str::to_owned),
            category: category.into(),
            type_name: kind.into(),
            uuid: format!("00000000-0000-4000-8000-{n:012}"),
        }
    }

    fn table() -> RoutingTable<usize> {
        let mut t = RoutingTable::new();
        t.insert(id(1, Some("a"), "simulator", "dummy"), 1).unwrap();
        t.insert(id(2, Some("a"), "simulator", "generic"), 2)
            .unwrap();
        t.insert(id(3, Some("b"), "manager", "generic"), 3).unwrap();
        t.insert(id(4, None, "gateway", "villas-node"), 4).unwrap();
        t
    }

    fn reached(t: &RoutingTable<usize>, pairs: &[(&str, &str)]) -> Vec<usize> {
        let mut headers = Headers::default();
        for (k, v) in pairs {
            headers.set(k, (*v).into());
        }
        let mut out = Vec::new();
        let n = t.route(&headers, |r| out.push(r.target));
        assert_eq!(n, out.len());
        out.sort_unstable();
        out
    }

    /// The index must agree with the plain rule in `Identity::matches`.
    fn brute(t: &RoutingTable<usize>, pairs: &[(&str, &str)]) -> Vec<usize> {
        let mut headers = Headers::default();
        for (k, v) in pairs {
            headers.set(k, (*v).into());
        }
        let mut out: Vec<usize> = t
            .iter()
            .filter(|r| r.identity.matches(&headers))
            .map(|r| r.target)
            .collect();
        out.sort_unstable();
        out
    }

    #[test]
    fn single_headers() {
        let t = table();
        assert_eq!(reached(&t, &[("realm", "a")]), vec![1, 2]);
        assert_eq!(reached(&t, &[("category", "simulator")]), vec![1, 2]);
        assert_eq!(reached(&t, &[("type", "generic")]), vec![2, 3]);
        assert_eq!(
            reached(&t, &[("uuid", "00000000-0000-4000-8000-000000000004")]),
            vec![4]
        );
        assert_eq!(reached(&t, &[("uuid", "nope")]), Vec::<usize>::new());
    }

    #[test]
    fn each_component_reached_once_across_headers() {
        let t = table();
        let all = [
            ("realm", "a"),
            ("category", "simulator"),
            ("type", "generic"),
            ("uuid", "00000000-0000-4000-8000-000000000002"),
        ];
        assert_eq!(reached(&t, &all), vec![1, 2, 3]);
        let combos: Vec<Vec<(&str, &str)>> = vec![
            vec![("realm", "b"), ("type", "dummy")],
            vec![("category", "manager"), ("type", "generic")],
            vec![
                ("uuid", "00000000-0000-4000-8000-000000000001"),
                ("realm", "a"),
            ],
            vec![("realm", "zzz")],
            all.to_vec(),
        ];
        for combo in combos {
            assert_eq!(reached(&t, &combo), brute(&t, &combo), "{combo:?}");
        }
    }

    #[test]
    fn empty_value_reaches_everyone_and_no_headers_nobody() {
        let t = table();
        assert_eq!(reached(&t, &[("uuid", "")]), vec![1, 2, 3, 4]);
        assert_eq!(reached(&t, &[]), Vec::<usize>::new());
    }

    #[test]
    fn missing_realm_is_never_matched() {
        let t = table();
        // Component 4 has no realm: no realm header reaches it, but its
        // other headers still do.
        for realm in ["a", "b", "null", "None"] {
            assert!(!reached(&t, &[("realm", realm)]).contains(&4), "{realm}");
        }
        assert_eq!(
            reached(&t, &[("realm", "a"), ("category", "gateway")]),
            vec![1, 2, 4]
        );
    }

    #[test]
    fn duplicates_refused_and_removal_reuses_slots() {
        let mut t = table();
        assert!(t.insert(id(1, None, "x", "y"), 9).is_err());
        assert_eq!(
            t.remove("00000000-0000-4000-8000-000000000002")
                .map(|r| r.target),
            Some(2)
        );
        assert_eq!(reached(&t, &[("realm", "a")]), vec![1]);
        assert!(t.remove("00000000-0000-4000-8000-000000000002").is_none());
        t.insert(id(5, Some("a"), "simulator", "dummy"), 5).unwrap();
        assert_eq!(t.slots.len(), 4);
        assert_eq!(reached(&t, &[("realm", "a")]), vec![1, 5]);
        assert_eq!(t.len(), 4);
    }
}
