//! A map that holds at most `cap` entries and, when a new one comes in, hands back the least
//! recently inserted ones to make room. The kept CLI processes use it (`--max-kept-cli`): an
//! entry is inserted when a turn ends and removed when the next turn takes it, so "least
//! recently inserted" is "least recently used".

use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;

pub(crate) struct LruMap<K, V> {
    /// Each entry with the stamp of its insertion.
    entries: HashMap<K, (u64, V)>,
    /// Stamps in insertion order: the first is the least recently used.
    order: BTreeMap<u64, K>,
    next: u64,
    cap: usize,
}

impl<K: Hash + Eq + Clone, V> LruMap<K, V> {
    pub fn new(cap: usize) -> Self {
        Self { entries: HashMap::new(), order: BTreeMap::new(), next: 0, cap }
    }

    /// Insert `value` as the most recently used entry. Returns what left the map: the entry
    /// `key` held before (if any) and the least recently used ones beyond the cap, oldest
    /// first. With a cap of 0 the value itself comes back.
    pub fn insert(&mut self, key: K, value: V) -> Vec<(K, V)> {
        let mut out = Vec::new();
        if let Some(old) = self.remove(&key) {
            out.push((key.clone(), old));
        }
        if self.cap == 0 {
            out.push((key, value));
            return out;
        }
        while self.entries.len() >= self.cap {
            let Some((_, oldest)) = self.order.pop_first() else { break };
            if let Some((_, evicted)) = self.entries.remove(&oldest) {
                out.push((oldest, evicted));
            }
        }
        let stamp = self.next;
        self.next += 1;
        self.order.insert(stamp, key.clone());
        self.entries.insert(key, (stamp, value));
        out
    }

    pub fn get(&self, key: &K) -> Option<&V> {
        self.entries.get(key).map(|(_, value)| value)
    }

    pub fn remove(&mut self, key: &K) -> Option<V> {
        let (stamp, value) = self.entries.remove(key)?;
        self.order.remove(&stamp);
        Some(value)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn clear(&mut self) {
        self.entries.clear();
        self.order.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::LruMap;

    fn keys(out: Vec<(&'static str, u32)>) -> Vec<&'static str> {
        out.into_iter().map(|(key, _)| key).collect()
    }

    #[test]
    fn below_the_cap_nothing_leaves() {
        let mut map = LruMap::new(3);
        assert!(map.insert("a", 1).is_empty());
        assert!(map.insert("b", 2).is_empty());
        assert!(map.insert("c", 3).is_empty());
        assert_eq!(map.len(), 3);
        assert_eq!(map.get(&"b"), Some(&2));
    }

    #[test]
    fn the_least_recently_inserted_leaves_first() {
        let mut map = LruMap::new(2);
        map.insert("a", 1);
        map.insert("b", 2);
        assert_eq!(keys(map.insert("c", 3)), ["a"]);
        assert_eq!(keys(map.insert("d", 4)), ["b"]);
        assert_eq!(map.get(&"a"), None);
        assert_eq!(map.get(&"c"), Some(&3));
        assert_eq!(map.len(), 2);
    }

    #[test]
    fn taking_and_putting_back_makes_an_entry_the_newest() {
        let mut map = LruMap::new(2);
        map.insert("a", 1);
        map.insert("b", 2);
        // `a`'s next turn: taken out, then kept again after it.
        assert_eq!(map.remove(&"a"), Some(1));
        assert!(map.insert("a", 10).is_empty());
        // Now `b` is the least recently used.
        assert_eq!(map.insert("c", 3), [("b", 2)]);
        assert_eq!(map.get(&"a"), Some(&10));
    }

    #[test]
    fn inserting_a_key_again_hands_back_its_old_value_and_evicts_nothing_else() {
        let mut map = LruMap::new(2);
        map.insert("a", 1);
        map.insert("b", 2);
        assert_eq!(map.insert("a", 11), [("a", 1)]);
        assert_eq!(map.len(), 2);
        // `b` is now older than the re-inserted `a`.
        assert_eq!(keys(map.insert("c", 3)), ["b"]);
    }

    #[test]
    fn a_cap_of_zero_keeps_nothing() {
        let mut map = LruMap::new(0);
        assert_eq!(map.insert("a", 1), [("a", 1)]);
        assert_eq!(map.len(), 0);
        assert_eq!(map.get(&"a"), None);
    }

    #[test]
    fn removed_and_cleared_entries_are_not_evicted_later() {
        let mut map = LruMap::new(2);
        map.insert("a", 1);
        map.insert("b", 2);
        assert_eq!(map.remove(&"a"), Some(1));
        assert!(map.insert("c", 3).is_empty());
        assert_eq!(keys(map.insert("d", 4)), ["b"]);
        map.clear();
        assert_eq!(map.len(), 0);
        assert!(map.insert("e", 5).is_empty());
        assert!(map.insert("f", 6).is_empty());
        assert_eq!(keys(map.insert("g", 7)), ["e"]);
    }
}
