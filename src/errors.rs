//! Error text for people: an error and its causes on one line; a one-line language's parse error.

use std::error::Error;
use std::fmt;

/// Where a one-line expression (a Calico selector, a filter) stops parsing, and why; `column` is
/// 1-based and counts characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub column: usize,
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "column {}: {}", self.column, self.message)
    }
}

impl Error for ParseError {}

/// `error` followed by each of its sources not already in the text: the top level alone often
/// says only "transport error" or "client error".
pub fn error_chain(error: &(dyn Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// `text` safe to show on a terminal: control characters (an escape sequence a server or a file
/// put in a name, a label or an error) written as `\u{1b}` instead of being executed.
pub fn printable(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return std::borrow::Cow::Borrowed(text);
    }
    std::borrow::Cow::Owned(
        text.chars()
            .map(|c| {
                if c.is_control() {
                    c.escape_unicode().to_string()
                } else {
                    c.to_string()
                }
            })
            .collect(),
    )
}

/// A file's text, as `fs::read_to_string` gives it, except that a byte that is not UTF-8 is an
/// `InvalidData` error saying the line and column it is at (1-based), not just that one is there.
pub fn read_text(path: &std::path::Path) -> std::io::Result<String> {
    let bytes = std::fs::read(path)?;
    String::from_utf8(bytes).map_err(|e| {
        let bytes = e.as_bytes();
        let at = e.utf8_error().valid_up_to();
        let line = bytes[..at].iter().filter(|&&b| b == b'\n').count() + 1;
        let column = at
            - bytes[..at]
                .iter()
                .rposition(|&b| b == b'\n')
                .map_or(0, |i| i + 1)
            + 1;
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("line {line}, column {column}: a byte that is not UTF-8"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_shown_not_executed() {
        assert_eq!(printable("plain name"), "plain name");
        assert_eq!(
            printable("x\u{1b}]0;owned\u{7}\u{1b}[2J"),
            "x\\u{1b}]0;owned\\u{7}\\u{1b}[2J"
        );
    }

    #[test]
    fn a_byte_that_is_not_utf8_is_pointed_at() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.yaml");
        std::fs::write(&path, b"a: 1\n# comment \xff here\n").unwrap();
        assert_eq!(
            read_text(&path).unwrap_err().to_string(),
            "line 2, column 11: a byte that is not UTF-8"
        );
        std::fs::write(&path, "a: 1\n").unwrap();
        assert_eq!(read_text(&path).unwrap(), "a: 1\n");
    }
}
