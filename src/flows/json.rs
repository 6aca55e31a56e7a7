//! A single-pass reader of JSON text: it checks that a line is valid JSON, exactly as serde_json
//! would, and hands out an object's members or a list's items as raw text borrowed from the line,
//! building nothing. Decoding a flow then reads only the few values it needs.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::de::IgnoredAny;

/// The text is not valid JSON of the expected shape; `syntax_error` says why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Invalid;

/// serde_json's message for why `text`, which starts with `{`, is not a valid JSON object, as
/// `invalid JSON: …` reports it.
pub fn syntax_error(text: &str) -> String {
    match serde_json::from_str::<BTreeMap<String, IgnoredAny>>(text) {
        Err(e) => e.to_string(),
        // Only reached if this reader and serde_json disagree (a property test checks they don't).
        Ok(_) => "not a flow record object".to_string(),
    }
}

/// Calls `each` with the members of the JSON object `text` (whitespace around it allowed), in
/// order: each name unescaped, each value as its raw text. An error if the text is not one valid
/// object (the members before the error have been handed out).
pub fn for_each_member<'a>(
    text: &'a str,
    mut each: impl FnMut(Cow<'a, str>, &'a str),
) -> Result<(), Invalid> {
    sequence(text, b'{', b'}', |reader| {
        let (name, value) = reader.member()?;
        each(name, value);
        Ok(())
    })
}

/// Calls `each` with the items of the JSON list `text`, each as its raw text; like
/// `for_each_member`.
pub fn for_each_item<'a>(text: &'a str, mut each: impl FnMut(&'a str)) -> Result<(), Invalid> {
    sequence(text, b'[', b']', |reader| {
        each(reader.value()?);
        Ok(())
    })
}

/// The text of a JSON string value, borrowed when it has no escapes; `None` for any other value.
pub fn string_value(value: &str) -> Option<Cow<'_, str>> {
    let inner = value.strip_prefix('"')?.strip_suffix('"')?;
    // Values are short: a plain loop beats a call to memchr.
    if inner.bytes().any(|b| b == b'\\') {
        serde_json::from_str::<String>(value).ok().map(Cow::Owned)
    } else {
        Some(Cow::Borrowed(inner))
    }
}

/// An object or a list: `open`, items read by `item` separated by commas, `close`, and nothing
/// after it but whitespace.
#[inline(always)]
fn sequence<'a>(
    text: &'a str,
    open: u8,
    close: u8,
    mut item: impl FnMut(&mut Reader<'a>) -> Result<(), Invalid>,
) -> Result<(), Invalid> {
    let mut reader = Reader::new(text);
    if !reader.eat(open) {
        return Err(Invalid);
    }
    if !reader.eat(close) {
        loop {
            item(&mut reader)?;
            if !reader.separator(close)? {
                break;
            }
        }
    }
    reader.end()
}

/// Open containers while skipping a value: a bit per level (set for an object), so that nesting
/// of any depth is skipped without recursion.
#[derive(Default)]
struct Nesting {
    depth: usize,
    bits: u64,
    deeper: Vec<u64>,
}

impl Nesting {
    fn push(&mut self, object: bool) {
        if self.depth > 0 && self.depth.is_multiple_of(64) {
            self.deeper.push(self.bits);
            self.bits = 0;
        }
        let bit = 1u64 << (self.depth % 64);
        self.bits = if object {
            self.bits | bit
        } else {
            self.bits & !bit
        };
        self.depth += 1;
    }

    /// Whether the innermost open container is an object; `None` when none is open.
    fn top(&self) -> Option<bool> {
        let depth = self.depth.checked_sub(1)?;
        Some(self.bits & (1 << (depth % 64)) != 0)
    }

    fn pop(&mut self) {
        self.depth -= 1;
        if self.depth > 0 && self.depth.is_multiple_of(64) {
            self.bits = self.deeper.pop().unwrap_or_default();
        }
    }
}

/// A byte position in the text; byte 0 stands for the end (a NUL is invalid wherever it could
/// be read that way: outside strings it is no JSON token, inside one a control character).
struct Reader<'a> {
    text: &'a str,
    at: usize,
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// Bytes of `word` that are `byte` (at least the first such one: flags above it may be spurious).
#[inline(always)]
fn bytes_equal(word: u64, byte: u8) -> u64 {
    let x = word ^ (ONES * byte as u64);
    x.wrapping_sub(ONES) & !x & HIGHS
}

/// Bytes of `word` that end a string's plain run: a quote, a backslash or a control character.
#[inline(always)]
fn string_stops(word: u64) -> u64 {
    let control = word.wrapping_sub(ONES * 0x20) & !word & HIGHS;
    control | bytes_equal(word, b'"') | bytes_equal(word, b'\\')
}

impl<'a> Reader<'a> {
    fn new(text: &'a str) -> Reader<'a> {
        Reader { text, at: 0 }
    }

    #[inline(always)]
    fn peek(&self) -> u8 {
        self.text.as_bytes().get(self.at).copied().unwrap_or(0)
    }

    #[inline(always)]
    fn skip_whitespace(&mut self) {
        while matches!(self.peek(), b' ' | b'\t' | b'\n' | b'\r') {
            self.at += 1;
        }
    }

    /// Skips whitespace and `byte`, if that comes next.
    #[inline(always)]
    fn eat(&mut self, byte: u8) -> bool {
        self.skip_whitespace();
        let found = self.peek() == byte;
        self.at += found as usize;
        found
    }

    /// After an item: `Ok(true)` for a comma (another follows), `Ok(false)` for `close`.
    #[inline(always)]
    fn separator(&mut self, close: u8) -> Result<bool, Invalid> {
        if self.eat(b',') {
            Ok(true)
        } else if self.eat(close) {
            Ok(false)
        } else {
            Err(Invalid)
        }
    }

    /// Only whitespace may follow the value.
    fn end(&mut self) -> Result<(), Invalid> {
        self.skip_whitespace();
        if self.at == self.text.len() {
            Ok(())
        } else {
            Err(Invalid)
        }
    }

    /// `"name": value`, the name unescaped.
    #[inline(always)]
    fn member(&mut self) -> Result<(Cow<'a, str>, &'a str), Invalid> {
        let (key, escaped) = self.key()?;
        let name = if escaped {
            unescaped_name(key)?
        } else {
            Cow::Borrowed(&key[1..key.len() - 1])
        };
        Ok((name, self.value()?))
    }

    /// A member name with its quotes, whether it has escapes, and the colon after it.
    #[inline(always)]
    fn key(&mut self) -> Result<(&'a str, bool), Invalid> {
        if !self.eat(b'"') {
            return Err(Invalid);
        }
        let start = self.at - 1;
        let escaped = self.string()?;
        let key = &self.text[start..self.at];
        if self.eat(b':') {
            Ok((key, escaped))
        } else {
            Err(Invalid)
        }
    }

    /// One value of any kind, as its text.
    #[inline(always)]
    fn value(&mut self) -> Result<&'a str, Invalid> {
        self.skip_whitespace();
        let start = self.at;
        match self.peek() {
            b'"' => {
                self.at += 1;
                self.string()?;
            }
            b'-' | b'0'..=b'9' => self.number()?,
            b't' => self.literal("true")?,
            b'f' => self.literal("false")?,
            b'n' => self.literal("null")?,
            b'{' | b'[' => self.container()?,
            _ => return Err(Invalid),
        }
        Ok(&self.text[start..self.at])
    }

    /// A whole object or list, nested to any depth.
    #[inline(never)]
    fn container(&mut self) -> Result<(), Invalid> {
        let mut nesting = Nesting::default();
        loop {
            self.skip_whitespace();
            match self.peek() {
                b'{' => {
                    self.at += 1;
                    if !self.eat(b'}') {
                        nesting.push(true);
                        self.key()?;
                        continue;
                    }
                }
                b'[' => {
                    self.at += 1;
                    if !self.eat(b']') {
                        nesting.push(false);
                        continue;
                    }
                }
                _ => {
                    self.value()?;
                }
            }
            // A value is complete: close what it completes, up to a container that goes on.
            loop {
                let Some(object) = nesting.top() else {
                    return Ok(());
                };
                if self.eat(b',') {
                    if object {
                        self.key()?;
                    }
                    break;
                }
                if !self.eat(if object { b'}' } else { b']' }) {
                    return Err(Invalid);
                }
                nesting.pop();
            }
        }
    }

    /// The rest of a string after its opening quote, checked as serde_json checks a value it
    /// skips: no control characters, known escapes, four hex digits after `\u`. Returns whether
    /// it has escapes.
    #[inline(always)]
    fn string(&mut self) -> Result<bool, Invalid> {
        let bytes = self.text.as_bytes();
        let mut escaped = false;
        loop {
            let rest = bytes.get(self.at..).unwrap_or_default();
            let mut words = rest.chunks_exact(8);
            let mut stop = None;
            for (i, word) in words.by_ref().enumerate() {
                let stops = string_stops(u64::from_le_bytes(word.try_into().expect("8 bytes")));
                if stops != 0 {
                    stop = Some(i * 8 + stops.trailing_zeros() as usize / 8);
                    break;
                }
            }
            let stop = match stop {
                Some(stop) => stop,
                None => {
                    let tail = words.remainder();
                    let at = tail
                        .iter()
                        .position(|&b| matches!(b, b'"' | b'\\' | 0..0x20));
                    rest.len() - tail.len() + at.ok_or(Invalid)?
                }
            };
            self.at += stop;
            match rest[stop] {
                b'"' => {
                    self.at += 1;
                    return Ok(escaped);
                }
                b'\\' => {
                    self.escape()?;
                    escaped = true;
                }
                _ => return Err(Invalid),
            }
        }
    }

    /// An escape sequence, from its backslash.
    #[cold]
    fn escape(&mut self) -> Result<(), Invalid> {
        self.at += 1;
        match self.peek() {
            b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => self.at += 1,
            b'u' => {
                let hex = self.text.as_bytes().get(self.at + 1..self.at + 5);
                if !hex.is_some_and(|hex| hex.iter().all(u8::is_ascii_hexdigit)) {
                    return Err(Invalid);
                }
                self.at += 5;
            }
            _ => return Err(Invalid),
        }
        Ok(())
    }

    fn digits(&mut self) -> usize {
        let start = self.at;
        while self.peek().is_ascii_digit() {
            self.at += 1;
        }
        self.at - start
    }

    /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`
    #[inline(always)]
    fn number(&mut self) -> Result<(), Invalid> {
        self.at += (self.peek() == b'-') as usize;
        match self.peek() {
            b'0' => {
                self.at += 1;
                if self.peek().is_ascii_digit() {
                    return Err(Invalid);
                }
            }
            b'1'..=b'9' => {
                self.digits();
            }
            _ => return Err(Invalid),
        }
        if self.peek() == b'.' {
            self.at += 1;
            if self.digits() == 0 {
                return Err(Invalid);
            }
        }
        if matches!(self.peek(), b'e' | b'E') {
            self.at += 1;
            self.at += matches!(self.peek(), b'+' | b'-') as usize;
            if self.digits() == 0 {
                return Err(Invalid);
            }
        }
        Ok(())
    }

    fn literal(&mut self, word: &str) -> Result<(), Invalid> {
        if self.text[self.at..].starts_with(word) {
            self.at += word.len();
            Ok(())
        } else {
            Err(Invalid)
        }
    }
}

/// A member name with escapes, unescaped; serde_json checks a name fully (paired surrogates).
#[cold]
fn unescaped_name(quoted: &str) -> Result<Cow<'_, str>, Invalid> {
    serde_json::from_str::<String>(quoted)
        .map(Cow::Owned)
        .map_err(|_| Invalid)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all_members(text: &str) -> Result<Vec<(String, &str)>, Invalid> {
        let mut members = Vec::new();
        for_each_member(text, |name, value| members.push((name.into_owned(), value)))?;
        Ok(members)
    }

    #[test]
    fn members_are_raw_text_and_names_are_unescaped() {
        let found =
            all_members(r#" {"a" : [1, {"b": "}"}] , "c\u0041":-1.5e3,"d":"x\"y", "e":{}} "#)
                .unwrap();
        assert_eq!(
            found,
            vec![
                ("a".to_string(), r#"[1, {"b": "}"}]"#),
                ("cA".to_string(), "-1.5e3"),
                ("d".to_string(), r#""x\"y""#),
                ("e".to_string(), "{}"),
            ]
        );
        assert_eq!(all_members("{}").unwrap(), vec![]);
    }

    #[test]
    fn invalid_json_is_an_error() {
        for text in [
            "",
            "{",
            "[]",
            r#"{"a":1,}"#,
            r#"{"a":01}"#,
            r#"{"a":1.}"#,
            r#"{"a":"\x"}"#,
            r#"{"a":"\u12g4"}"#,
            "{\"a\":\"\t\"}",
            r#"{"a":[1,]}"#,
            r#"{"a":tru}"#,
            r#"{"a":1} x"#,
            r#"{"\udc00":1}"#,
            r#"{"a":{"b"}}"#,
        ] {
            assert_eq!(all_members(text), Err(Invalid), "{text:?}");
            assert!(
                serde_json::from_str::<BTreeMap<String, IgnoredAny>>(text).is_err(),
                "{text:?}"
            );
        }
    }

    #[test]
    fn deep_nesting_is_skipped_without_recursion() {
        let depth = 100_000;
        let text = format!(r#"{{"a":{}1{}}}"#, "[".repeat(depth), "]".repeat(depth));
        assert_eq!(all_members(&text).unwrap().len(), 1);
        let unbalanced = format!(r#"{{"a":{}1{}}}"#, "[".repeat(depth), "]".repeat(depth - 1));
        assert_eq!(all_members(&unbalanced), Err(Invalid));
    }

    #[test]
    fn items_and_string_values() {
        let mut found = Vec::new();
        for_each_item(r#"[ "a", 2 ,{"x":[]}]"#, |item| found.push(item)).unwrap();
        assert_eq!(found, vec![r#""a""#, "2", r#"{"x":[]}"#]);
        assert_eq!(for_each_item("{}", |_| {}), Err(Invalid));
        assert_eq!(string_value(r#""a\"b""#).unwrap(), "a\"b");
        assert!(matches!(string_value(r#""ab""#), Some(Cow::Borrowed("ab"))));
        assert_eq!(string_value("12"), None);
    }
}
