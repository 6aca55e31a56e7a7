//! A JSON object kept as its members' raw text, borrowed from the input line: decoding reads only
//! the members it needs, and output copies the others through untouched (and fast).

use std::borrow::Cow;
use std::fmt;
use std::io::{self, Write};

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

#[derive(Debug, Clone, Default)]
pub struct RawObject<'a> {
    members: Vec<(Cow<'a, str>, &'a RawValue)>,
}

struct Key<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a member name")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_string())))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

impl<'de> Deserialize<'de> for RawObject<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ObjectVisitor;
        impl<'de> Visitor<'de> for ObjectVisitor {
            type Value = RawObject<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawObject<'de>, A::Error> {
                let mut members = Vec::with_capacity(map.size_hint().unwrap_or(24));
                while let Some((key, value)) = map.next_entry::<Key<'de>, &'de RawValue>()? {
                    members.push((key.0, value));
                }
                Ok(RawObject { members })
            }
        }
        deserializer.deserialize_map(ObjectVisitor)
    }
}

/// Whether `key` is the protojson camelCase spelling of `snake`.
fn is_camel_case_of(key: &str, snake: &str) -> bool {
    let mut key = key.chars();
    let mut upper_next = false;
    for c in snake.chars() {
        if c == '_' {
            upper_next = true;
            continue;
        }
        let expected = if upper_next {
            c.to_ascii_uppercase()
        } else {
            c
        };
        upper_next = false;
        if key.next() != Some(expected) {
            return false;
        }
    }
    key.next().is_none()
}

impl<'a> RawObject<'a> {
    pub fn parse(text: &'a str) -> Result<RawObject<'a>, serde_json::Error> {
        serde_json::from_str(text)
    }

    /// A member by its snake_case name or its protojson camelCase name; JSON `null` counts as absent.
    pub fn get(&self, snake: &str) -> Option<&'a RawValue> {
        // Most keys differ in length or in their last byte; checking those first avoids a full compare.
        let same = |k: &str| {
            k.len() == snake.len() && k.as_bytes().last() == snake.as_bytes().last() && k == snake
        };
        let found = self.members.iter().find(|(k, _)| same(k)).or_else(|| {
            snake
                .contains('_')
                .then(|| {
                    self.members
                        .iter()
                        .find(|(k, _)| is_camel_case_of(k, snake))
                })
                .flatten()
        });
        found.map(|(_, v)| *v).filter(|v| v.get() != "null")
    }

    pub fn contains(&self, name: &str) -> bool {
        self.members.iter().any(|(k, _)| k == name)
    }

    /// Writes the object's members except `skip`, leaving it open for more members; returns
    /// whether anything was written (so the caller knows whether a comma is needed).
    pub fn write_open<W: Write>(&self, out: &mut W, skip: &[&str]) -> io::Result<bool> {
        out.write_all(b"{")?;
        let mut wrote = false;
        for (key, value) in self
            .members
            .iter()
            .filter(|(k, _)| !skip.contains(&k.as_ref()))
        {
            if wrote {
                out.write_all(b",")?;
            }
            serde_json::to_writer(&mut *out, key)?;
            out.write_all(b":")?;
            out.write_all(value.get().as_bytes())?;
            wrote = true;
        }
        Ok(wrote)
    }
}

/// The text of a JSON string value, borrowed when it has no escapes.
pub fn string_value(value: &RawValue) -> Option<Cow<'_, str>> {
    let text = value.get();
    if !text.starts_with('"') {
        return None;
    }
    match serde_json::from_str::<&str>(text) {
        Ok(s) => Some(Cow::Borrowed(s)),
        Err(_) => serde_json::from_str::<String>(text).ok().map(Cow::Owned),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_are_found_by_either_spelling_and_copied_verbatim() {
        let object = RawObject::parse(
            r#"{"destPort": "443", "source_name":"a\"b", "n": null, "x": {"y": [1, 2]}}"#,
        )
        .unwrap();
        assert_eq!(object.get("dest_port").unwrap().get(), "\"443\"");
        assert_eq!(
            string_value(object.get("source_name").unwrap()).unwrap(),
            "a\"b"
        );
        assert!(object.get("n").is_none(), "null is absent");
        assert!(object.contains("n"));
        let mut out = Vec::new();
        let wrote = object.write_open(&mut out, &["n", "destPort"]).unwrap();
        assert!(wrote);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"source_name":"a\"b","x":{"y": [1, 2]}"#
        );
    }

    #[test]
    fn camel_case_matching() {
        assert!(is_camel_case_of("destServiceName", "dest_service_name"));
        assert!(!is_camel_case_of("destService", "dest_service_name"));
        assert!(!is_camel_case_of("dest_service_name", "dest_service_name"));
    }
}
