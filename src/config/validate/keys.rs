//! The key lookup of a config mapping: the last occurrence of a key wins, as in a Python dict,
//! and repeats are found without a quadratic scan (a config's keys are attacker-chosen).

use crate::source::Node;

/// Keys ordered by length first: most comparisons of a lookup end there, without a memcmp.
fn order(a: &str, b: &str) -> std::cmp::Ordering {
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

/// The string keys of a mapping, sorted, for lookups where the last occurrence wins (as in a
/// Python dict). Sorting keeps a config with tens of thousands of keys linearithmic: both a
/// pairwise duplicate scan and a hash map of attacker-chosen keys can be made quadratic.
pub(super) struct KeyIndex<'a> {
    /// (key, position in the mapping), sorted by key, then position.
    keys: Vec<(&'a str, usize)>,
    entries: &'a [(Node, Node)],
}

impl<'a> KeyIndex<'a> {
    pub(super) fn new(entries: &'a [(Node, Node)]) -> Self {
        let mut keys: Vec<(&str, usize)> = entries
            .iter()
            .enumerate()
            .filter_map(|(i, (k, _))| Some((k.as_str()?, i)))
            .collect();
        keys.sort_unstable_by(|a, b| order(a.0, b.0).then(a.1.cmp(&b.1)));
        KeyIndex { keys, entries }
    }

    pub(super) fn get(&self, key: &str) -> Option<&'a Node> {
        // The end of the run of `key`: its last occurrence is just before it.
        let end = self
            .keys
            .partition_point(|(k, _)| order(k, key) != std::cmp::Ordering::Greater);
        let (k, i) = *self.keys[..end].last()?;
        (k == key).then(|| &self.entries[i].1)
    }

    /// Positions of entries a later entry with the same key replaces, in file order.
    pub(super) fn replaced(&self) -> Vec<usize> {
        let mut out: Vec<usize> = self
            .keys
            .windows(2)
            .filter(|pair| pair[0].0 == pair[1].0)
            .map(|pair| pair[0].1)
            .collect();
        out.sort_unstable();
        out
    }
}
