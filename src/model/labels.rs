//! Label sets: sorted, shareable, hashed once.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use rustc_hash::FxHasher;
use serde::{Serialize, Serializer};

/// Read access to an endpoint's labels, as selectors read them; `None` means the label is
/// absent, which several operators treat differently from an empty value.
pub trait LabelLookup {
    fn label(&self, key: &str) -> Option<&str>;
}

impl LabelLookup for std::collections::BTreeMap<String, String> {
    fn label(&self, key: &str) -> Option<&str> {
        self.get(key).map(String::as_str)
    }
}

impl LabelLookup for std::collections::HashMap<String, String> {
    fn label(&self, key: &str) -> Option<&str> {
        self.get(key).map(String::as_str)
    }
}

/// An immutable set of `key=value` labels, sorted by key, with its hash computed once so that
/// label sets can key caches cheaply (the evaluator caches per endpoint label set).
#[derive(Clone)]
pub struct Labels {
    pairs: Arc<[(Box<str>, Box<str>)]>,
    hash: u64,
}

impl Labels {
    pub fn empty() -> Labels {
        Labels::from_pairs(Vec::<(String, String)>::new())
    }

    /// Builds a label set; a later duplicate key wins, as in a YAML map.
    pub fn from_pairs<K: Into<Box<str>>, V: Into<Box<str>>>(pairs: Vec<(K, V)>) -> Labels {
        let mut pairs: Vec<(Box<str>, Box<str>)> = pairs
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        pairs.reverse();
        pairs.sort_by(|a, b| a.0.cmp(&b.0));
        pairs.dedup_by(|later, earlier| later.0 == earlier.0);
        let mut hasher = FxHasher::default();
        for (k, v) in &pairs {
            k.hash(&mut hasher);
            v.hash(&mut hasher);
        }
        Labels {
            hash: hasher.finish(),
            pairs: pairs.into(),
        }
    }

    /// Parses `key=value` strings as Goldmane and flow logs carry them; a string without `=`
    /// is a label with an empty value.
    pub fn from_kv_strings<'a>(items: impl IntoIterator<Item = &'a str>) -> Labels {
        Labels::from_pairs(
            items
                .into_iter()
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| match s.split_once('=') {
                    Some((k, v)) => (k.trim().to_string(), v.trim().to_string()),
                    None => (s.to_string(), String::new()),
                })
                .collect(),
        )
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .binary_search_by(|(k, _)| (**k).cmp(key))
            .ok()
            .map(|i| &*self.pairs[i].1)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.pairs.iter().map(|(k, v)| (&**k, &**v))
    }

    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// This set with `extra` added; keys already present keep their own value.
    pub fn merged_with(&self, extra: impl IntoIterator<Item = (String, String)>) -> Labels {
        let mut pairs: Vec<(Box<str>, Box<str>)> = extra
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        pairs.extend(self.pairs.iter().cloned());
        Labels::from_pairs(pairs)
    }

    /// The labels common to both sets, as Goldmane reports for an aggregated endpoint.
    pub fn intersection(&self, other: &Labels) -> Labels {
        Labels::from_pairs(
            self.iter()
                .filter(|(k, v)| other.get(k) == Some(v))
                .collect(),
        )
    }
}

impl LabelLookup for Labels {
    fn label(&self, key: &str) -> Option<&str> {
        self.get(key)
    }
}

impl PartialEq for Labels {
    fn eq(&self, other: &Labels) -> bool {
        self.hash == other.hash
            && (Arc::ptr_eq(&self.pairs, &other.pairs) || self.pairs == other.pairs)
    }
}

impl Eq for Labels {}

impl Hash for Labels {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash);
    }
}

impl Default for Labels {
    fn default() -> Labels {
        Labels::empty()
    }
}

impl fmt::Debug for Labels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl fmt::Display for Labels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (k, v)) in self.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{k}={v}")?;
        }
        Ok(())
    }
}

impl Serialize for Labels {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.iter())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorted_deduplicated_and_looked_up() {
        let labels = Labels::from_pairs(vec![("b", "2"), ("a", "1"), ("b", "3")]);
        assert_eq!(labels.len(), 2);
        assert_eq!(labels.get("a"), Some("1"));
        assert_eq!(labels.get("b"), Some("3"), "the later duplicate wins");
        assert_eq!(labels.get("c"), None);
    }

    #[test]
    fn equal_sets_hash_equal_regardless_of_input_order() {
        let one = Labels::from_kv_strings(["app=x", "tier=web"]);
        let two = Labels::from_kv_strings(["tier=web", " app = x "]);
        assert_eq!(one, two);
        assert_eq!(one.hash, two.hash);
        assert_ne!(one, Labels::from_kv_strings(["app=x"]));
    }

    #[test]
    fn merge_keeps_own_values_and_intersection_keeps_common_pairs() {
        let own = Labels::from_kv_strings(["app=x", "env=prod"]);
        let merged = own.merged_with([
            ("env".to_string(), "dev".to_string()),
            ("ns".to_string(), "a".to_string()),
        ]);
        assert_eq!(merged.get("env"), Some("prod"));
        assert_eq!(merged.get("ns"), Some("a"));
        let common = own.intersection(&Labels::from_kv_strings(["app=x", "env=dev"]));
        assert_eq!(common.to_string(), "app=x");
    }
}
