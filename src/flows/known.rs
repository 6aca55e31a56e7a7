//! What a flow decoder remembers between records, by the text it read them from: a stream repeats
//! a few thousand label sets, names and endpoints millions of times, and every flow of an
//! aggregation window carries the same two times. A repeated one is then neither parsed nor
//! allocated again, and equal ones share one allocation (cheap to compare).

use rustc_hash::FxHashMap;

/// Distinct texts remembered of each kind before starting over (an endless stream of new ones must
/// not grow a decoder without bound).
const MAX_REMEMBERED: usize = 100_000;

/// Values made from texts, looked up by the borrowed text.
#[derive(Debug)]
pub(super) struct Remembered<V> {
    by_text: FxHashMap<Box<str>, V>,
}

impl<V> Default for Remembered<V> {
    fn default() -> Self {
        Remembered {
            by_text: FxHashMap::default(),
        }
    }
}

impl<V: Clone> Remembered<V> {
    pub(super) fn get(&self, text: &str) -> Option<V> {
        self.by_text.get(text).cloned()
    }

    pub(super) fn remember(&mut self, text: &str, value: V) -> V {
        if self.by_text.len() >= MAX_REMEMBERED {
            self.by_text.clear();
        }
        self.by_text.insert(text.into(), value.clone());
        value
    }
}

/// The last two times read, by their text.
#[derive(Debug, Default)]
pub(super) struct RecentTimes {
    texts: [String; 2],
    seconds: [i64; 2],
    older: usize,
}

impl RecentTimes {
    pub(super) fn get(&self, text: &str) -> Option<i64> {
        let i = self.texts.iter().position(|known| known == text)?;
        Some(self.seconds[i])
    }

    pub(super) fn remember(&mut self, text: &str, seconds: i64) -> i64 {
        let i = self.older;
        self.texts[i].clear();
        self.texts[i].push_str(text);
        self.seconds[i] = seconds;
        self.older = 1 - i;
        seconds
    }
}

/// Joins member texts into one lookup key, in a buffer kept between records. Each part is a JSON
/// value's text (never empty, never containing a NUL), or empty for an absent member, so NULs
/// between them keep different parts apart.
pub(super) fn joined_key(buffer: &mut String, parts: &[Option<&str>]) {
    buffer.clear();
    for part in parts {
        buffer.push_str(part.unwrap_or_default());
        buffer.push('\0');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recent_times_keep_the_last_two_texts() {
        let mut times = RecentTimes::default();
        times.remember("\"a\"", 1);
        times.remember("\"b\"", 2);
        assert_eq!((times.get("\"a\""), times.get("\"b\"")), (Some(1), Some(2)));
        times.remember("\"c\"", 3);
        assert_eq!(times.get("\"a\""), None, "the older one is replaced");
        assert_eq!((times.get("\"b\""), times.get("\"c\"")), (Some(2), Some(3)));
        assert_eq!(times.get(""), None);
    }

    #[test]
    fn keys_keep_absent_and_present_parts_apart() {
        let (mut one, mut two) = (String::new(), String::new());
        joined_key(&mut one, &[Some("\"a\""), None]);
        joined_key(&mut two, &[None, Some("\"a\"")]);
        assert_ne!(one, two);
    }
}
