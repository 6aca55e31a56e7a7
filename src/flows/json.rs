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
    each: impl FnMut(Cow<'a, str>, &'a str),
) -> Result<(), Invalid> {
    struct Each<F>(F);
    impl<'a, F: FnMut(Cow<'a, str>, &'a str)> Members<'a> for Each<F> {
        fn member(&mut self, _: usize, name: Name<'a>, value: &'a str) {
            // Expecting no name, every name is read.
            if let Name::Read(name) = name {
                (self.0)(name, value)
            }
        }
    }
    visit_members(text, &mut Each(each))
}

/// What reads an object's members with `visit_members`.
pub trait Members<'a> {
    /// The length of the name the i-th member is expected to have, if `rest`, the text after the
    /// name's opening quote, starts with it. Such a name must have no quote, backslash or control
    /// character: it is then the whole name when a quote follows it, and it is taken without
    /// being read again byte by byte.
    fn expected(&mut self, _i: usize, _rest: &[u8]) -> Option<usize> {
        None
    }

    /// The i-th member: its name and its value's raw text.
    fn member(&mut self, i: usize, name: Name<'a>, value: &'a str);
}

/// A member's name as `Members::member` is given it.
pub enum Name<'a> {
    /// The name `Members::expected` said.
    Expected,
    /// Any other name, unescaped.
    Read(Cow<'a, str>),
}

/// Like `for_each_member`, for a reader that may expect names.
pub fn visit_members<'a>(text: &'a str, members: &mut impl Members<'a>) -> Result<(), Invalid> {
    let bytes = text.as_bytes();
    let mut index = 0;
    sequence(text, b'{', b'}', |at| {
        let known = match byte(bytes, at) {
            b'"' => members.expected(index, &bytes[at + 1..]),
            _ => None,
        };
        let (name, at) = match known.filter(|len| byte(bytes, at + 1 + len) == b'"') {
            Some(len) => (Name::Expected, colon_end(bytes, at + 1 + len)?),
            None => {
                let (name, at) = member_name(text, at)?;
                (Name::Read(name), at)
            }
        };
        let at = skip_whitespace(bytes, at);
        let end = value_end(bytes, at)?;
        members.member(index, name, &text[at..end]);
        index += 1;
        Ok(end)
    })
}

/// Calls `each` with the items of the JSON list `text`, each as its raw text; like
/// `for_each_member`.
pub fn for_each_item<'a>(text: &'a str, mut each: impl FnMut(&'a str)) -> Result<(), Invalid> {
    sequence(text, b'[', b']', |at| {
        let end = value_end(text.as_bytes(), at)?;
        each(&text[at..end]);
        Ok(end)
    })
}

/// The text of a JSON string value, borrowed when it has no escapes; `None` for any other value.
pub fn string_value(value: &str) -> Option<Cow<'_, str>> {
    let inner = value.strip_prefix('"')?.strip_suffix('"')?;
    if has_backslash(inner.as_bytes()) {
        serde_json::from_str::<String>(value).ok().map(Cow::Owned)
    } else {
        Some(Cow::Borrowed(inner))
    }
}

/// Values are short: eight bytes at a time beats a call to memchr.
fn has_backslash(bytes: &[u8]) -> bool {
    let mut words = bytes.chunks_exact(8);
    let word_has = |word: &[u8]| {
        bytes_equal(u64::from_le_bytes(word.try_into().expect("8 bytes")), b'\\') != 0
    };
    words.by_ref().any(word_has) || words.remainder().contains(&b'\\')
}

/// An object or a list: `open`, items separated by commas, `close`, and nothing after it but
/// whitespace. `item` reads the item at a position and returns where it ends.
#[inline(always)]
fn sequence(
    text: &str,
    open: u8,
    close: u8,
    mut item: impl FnMut(usize) -> Result<usize, Invalid>,
) -> Result<(), Invalid> {
    let bytes = text.as_bytes();
    let mut at = skip_whitespace(bytes, 0);
    if byte(bytes, at) != open {
        return Err(Invalid);
    }
    at = skip_whitespace(bytes, at + 1);
    if byte(bytes, at) != close {
        loop {
            at = skip_whitespace(bytes, item(at)?);
            match byte(bytes, at) {
                b',' => at = skip_whitespace(bytes, at + 1),
                found if found == close => break,
                _ => return Err(Invalid),
            }
        }
    }
    if skip_whitespace(bytes, at + 1) == bytes.len() {
        Ok(())
    } else {
        Err(Invalid)
    }
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

/// The byte at a position, 0 past the end: a NUL is invalid wherever it could be read that way
/// (outside strings it is no JSON token, inside one a control character).
#[inline(always)]
fn byte(bytes: &[u8], at: usize) -> u8 {
    bytes.get(at).copied().unwrap_or(0)
}

#[inline(always)]
fn skip_whitespace(bytes: &[u8], mut at: usize) -> usize {
    while matches!(byte(bytes, at), b' ' | b'\t' | b'\n' | b'\r') {
        at += 1;
    }
    at
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

/// `"name":` at a position: the name, unescaped, and the position after the colon.
#[inline(always)]
fn member_name(text: &str, at: usize) -> Result<(Cow<'_, str>, usize), Invalid> {
    let bytes = text.as_bytes();
    if byte(bytes, at) != b'"' {
        return Err(Invalid);
    }
    let (end, escaped) = string_end(bytes, at + 1)?;
    let name = if escaped {
        unescaped_name(&text[at..=end])?
    } else {
        Cow::Borrowed(&text[at + 1..end])
    };
    Ok((name, colon_end(bytes, end)?))
}

/// Past the colon after a member name whose closing quote is at a position (whitespace allowed
/// before the colon).
#[inline(always)]
fn colon_end(bytes: &[u8], quote: usize) -> Result<usize, Invalid> {
    let colon = skip_whitespace(bytes, quote + 1);
    if byte(bytes, colon) == b':' {
        Ok(colon + 1)
    } else {
        Err(Invalid)
    }
}

/// Where the value at a position ends.
#[inline(always)]
fn value_end(bytes: &[u8], at: usize) -> Result<usize, Invalid> {
    match byte(bytes, at) {
        b'"' => string_end(bytes, at + 1).map(|(end, _)| end + 1),
        b'-' | b'0'..=b'9' => number_end(bytes, at),
        b't' => literal_end(bytes, at, b"true"),
        b'f' => literal_end(bytes, at, b"false"),
        b'n' => literal_end(bytes, at, b"null"),
        b'{' | b'[' => container_end(bytes, at),
        _ => Err(Invalid),
    }
}

/// Where the object or list at a position ends, nested to any depth.
#[inline(never)]
fn container_end(bytes: &[u8], mut at: usize) -> Result<usize, Invalid> {
    let mut nesting = Nesting::default();
    loop {
        at = skip_whitespace(bytes, at);
        let opening = byte(bytes, at);
        if matches!(opening, b'{' | b'[') {
            let object = opening == b'{';
            let close = if object { b'}' } else { b']' };
            at = skip_whitespace(bytes, at + 1);
            if byte(bytes, at) == close {
                at += 1;
            } else {
                nesting.push(object);
                if object {
                    at = key_end(bytes, at)?;
                }
                continue;
            }
        } else {
            at = value_end(bytes, at)?;
        }
        // A value is complete: close what it completes, up to a container that goes on.
        loop {
            let Some(object) = nesting.top() else {
                return Ok(at);
            };
            at = skip_whitespace(bytes, at);
            match byte(bytes, at) {
                b',' => {
                    at += 1;
                    if object {
                        at = key_end(bytes, skip_whitespace(bytes, at))?;
                    }
                    break;
                }
                b'}' if object => at += 1,
                b']' if !object => at += 1,
                _ => return Err(Invalid),
            }
            nesting.pop();
        }
    }
}

/// Past a member name inside a skipped object and its colon (serde_json checks such a name as it
/// checks any string it skips).
fn key_end(bytes: &[u8], at: usize) -> Result<usize, Invalid> {
    if byte(bytes, at) != b'"' {
        return Err(Invalid);
    }
    let (end, _) = string_end(bytes, at + 1)?;
    colon_end(bytes, end)
}

/// The closing quote of the string whose text starts at a position, and whether the string has
/// escapes. It is checked as serde_json checks a string it skips: no control characters, known
/// escapes, four hex digits after `\u`.
#[inline(always)]
fn string_end(bytes: &[u8], mut at: usize) -> Result<(usize, bool), Invalid> {
    let mut escaped = false;
    loop {
        // Eight bytes at a time to the first that is not plain text.
        while let Some(word) = bytes.get(at..at + 8) {
            let stops = string_stops(u64::from_le_bytes(word.try_into().expect("8 bytes")));
            if stops != 0 {
                at += stops.trailing_zeros() as usize / 8;
                break;
            }
            at += 8;
        }
        loop {
            match byte(bytes, at) {
                b'"' => return Ok((at, escaped)),
                b'\\' => {
                    at = escape_end(bytes, at)?;
                    escaped = true;
                    break;
                }
                0..0x20 => return Err(Invalid),
                _ => at += 1,
            }
        }
    }
}

/// Past the escape sequence whose backslash is at a position.
#[cold]
fn escape_end(bytes: &[u8], at: usize) -> Result<usize, Invalid> {
    match byte(bytes, at + 1) {
        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => Ok(at + 2),
        b'u' => match bytes.get(at + 2..at + 6) {
            Some(hex) if hex.iter().all(u8::is_ascii_hexdigit) => Ok(at + 6),
            _ => Err(Invalid),
        },
        _ => Err(Invalid),
    }
}

fn digits_end(bytes: &[u8], mut at: usize) -> usize {
    while byte(bytes, at).is_ascii_digit() {
        at += 1;
    }
    at
}

/// Where the number at a position ends: `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`.
#[inline(always)]
fn number_end(bytes: &[u8], mut at: usize) -> Result<usize, Invalid> {
    at += (byte(bytes, at) == b'-') as usize;
    at = match byte(bytes, at) {
        b'0' if byte(bytes, at + 1).is_ascii_digit() => return Err(Invalid),
        b'0' => at + 1,
        b'1'..=b'9' => digits_end(bytes, at),
        _ => return Err(Invalid),
    };
    if byte(bytes, at) == b'.' {
        let end = digits_end(bytes, at + 1);
        if end == at + 1 {
            return Err(Invalid);
        }
        at = end;
    }
    if matches!(byte(bytes, at), b'e' | b'E') {
        at += 1;
        at += matches!(byte(bytes, at), b'+' | b'-') as usize;
        let end = digits_end(bytes, at);
        if end == at {
            return Err(Invalid);
        }
        at = end;
    }
    Ok(at)
}

fn literal_end(bytes: &[u8], at: usize, word: &[u8]) -> Result<usize, Invalid> {
    match bytes.get(at..at + word.len()) {
        Some(found) if found == word => Ok(at + word.len()),
        _ => Err(Invalid),
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
