//! A record as read, borrowed from the input line: output copies the members flowtrace does not
//! change through untouched (and fast).

use std::io::{self, Write};

use super::json;

/// The text of a JSON object that has been checked to be valid.
#[derive(Debug, Clone, Copy)]
pub struct RawObject<'a> {
    text: &'a str,
}

impl<'a> RawObject<'a> {
    /// `text` must be a valid JSON object (`json::members` reads it without an error).
    pub(super) fn new(text: &'a str) -> RawObject<'a> {
        RawObject { text }
    }

    /// Writes the object's members except `skip`, leaving it open for more members; returns
    /// whether anything was written (so the caller knows whether a comma is needed).
    pub fn write_open<W: Write>(&self, out: &mut W, skip: &[&str]) -> io::Result<bool> {
        out.write_all(b"{")?;
        let mut wrote = false;
        let mut written = Ok(());
        let write = |out: &mut W, key: &str, value: &str, comma: bool| -> io::Result<()> {
            if comma {
                out.write_all(b",")?;
            }
            serde_json::to_writer(&mut *out, key)?;
            out.write_all(b":")?;
            out.write_all(value.as_bytes())
        };
        // The text was read before without an error, so reading it again gives none.
        let _ = json::for_each_member(self.text, |key, value| {
            if written.is_ok() && !skip.contains(&key.as_ref()) {
                written = write(out, &key, value, wrote);
                wrote = true;
            }
        });
        written.map(|()| wrote)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_are_copied_verbatim_except_skipped_ones() {
        let object = RawObject::new(
            r#" {"destPort": "443", "source_name":"a\"b", "n": null, "x": {"y": [1, 2]}} "#,
        );
        let mut out = Vec::new();
        let wrote = object.write_open(&mut out, &["n", "destPort"]).unwrap();
        assert!(wrote);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"source_name":"a\"b","x":{"y": [1, 2]}"#
        );
    }
}
