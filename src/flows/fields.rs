//! The members flowtrace reads from a record, in fixed slots: one pass over an object fills the
//! slot of each known member, so reading a field is an index, not a search. A stream's records
//! share their shape, so the names of the last record are expected where they were (`Shape`).

use std::borrow::Cow;
use std::sync::LazyLock;

use super::json::{self, Invalid, Members, Name};

macro_rules! fields {
    ($($field:ident = $name:literal,)*) => {
        /// A member of a record, a Goldmane key, a policy trace or a policy hit, by its snake_case
        /// name.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Field {
            $($field,)*
        }

        impl Field {
            const ALL: &[Field] = &[$(Field::$field,)*];

            pub fn name(self) -> &'static str {
                match self {
                    $(Field::$field => $name,)*
                }
            }
        }
    };
}

fields! {
    Flow = "flow",
    GoldmaneKey = "Key",
    GoldmaneKeyLowercase = "key",
    Policies = "policies",
    SourceName = "source_name",
    SourceNameAggr = "source_name_aggr",
    SourceNamespace = "source_namespace",
    SourceLabels = "source_labels",
    SourceType = "source_type",
    SourceIp = "source_ip",
    SourcePort = "source_port",
    DestName = "dest_name",
    DestNameAggr = "dest_name_aggr",
    DestNamespace = "dest_namespace",
    DestLabels = "dest_labels",
    DestType = "dest_type",
    DestIp = "dest_ip",
    DestPort = "dest_port",
    DestServiceName = "dest_service_name",
    DestServiceNamespace = "dest_service_namespace",
    Protocol = "protocol",
    Proto = "proto",
    Reporter = "reporter",
    Action = "action",
    StartTime = "start_time",
    EndTime = "end_time",
    PacketsIn = "packets_in",
    PacketsOut = "packets_out",
    BytesIn = "bytes_in",
    BytesOut = "bytes_out",
    NumConnectionsStarted = "num_connections_started",
    NumFlowsStarted = "num_flows_started",
    NumConnectionsCompleted = "num_connections_completed",
    NumFlowsCompleted = "num_flows_completed",
    NumConnectionsLive = "num_connections_live",
    Enforced = "enforced",
    Pending = "pending",
    EnforcedPolicies = "enforced_policies",
    PendingPolicies = "pending_policies",
    AllPolicies = "all_policies",
    Kind = "kind",
    Name = "name",
    Namespace = "namespace",
    Tier = "tier",
    PolicyIndex = "policy_index",
    RuleIndex = "rule_index",
    Trigger = "trigger",
    Labels = "labels",
}

const FIELD_COUNT: usize = Field::ALL.len();
const _: () = assert!(FIELD_COUNT <= 64, "`Fields::exact` has a bit per field");

/// The protojson camelCase spelling of a snake_case name (`dest_port` → `destPort`).
fn camel_case(snake: &str) -> String {
    let mut camel = String::with_capacity(snake.len());
    let mut upper_next = false;
    for c in snake.chars() {
        if c == '_' {
            upper_next = true;
        } else if upper_next {
            camel.push(c.to_ascii_uppercase());
            upper_next = false;
        } else {
            camel.push(c);
        }
    }
    camel
}

/// A member name's length and its first and last eight bytes (a shorter name is read as
/// overlapping halves): for a name of up to 16 bytes that is the whole name, so most names are
/// compared in three words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Signature {
    len: usize,
    head: u64,
    tail: u64,
}

impl Signature {
    #[inline]
    fn of(bytes: &[u8]) -> Signature {
        let len = bytes.len();
        let u64_at = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8"));
        let u32_at = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4"));
        let u16_at = |at: usize| u16::from_le_bytes(bytes[at..at + 2].try_into().expect("2"));
        let (head, tail) = match len {
            8.. => (u64_at(0), u64_at(len - 8)),
            4.. => {
                let short = u32_at(0) as u64 | (u32_at(len - 4) as u64) << 32;
                (short, short)
            }
            2.. => {
                let short = u16_at(0) as u64 | (u16_at(len - 2) as u64) << 16;
                (short, short)
            }
            1 => (bytes[0] as u64, bytes[0] as u64),
            0 => (0, 0),
        };
        Signature { len, head, tail }
    }

    fn slot(self) -> usize {
        let mixed = (self.head ^ self.tail.rotate_left(29) ^ self.len as u64)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15);
        (mixed >> (64 - SLOT_BITS)) as usize
    }
}

/// Slots of the spelling table: a power of two, about three times the spellings, so a lookup
/// mostly reads one slot.
const SLOT_BITS: u32 = 8;

/// A spelling of a field: its name (snake_case) or its protojson camelCase form.
#[derive(Debug, Clone)]
struct Spelling {
    signature: Signature,
    text: String,
    field: Field,
    camel: bool,
}

/// Every spelling of every field, in an open-addressed table (linear probing).
static SPELLINGS: LazyLock<Vec<Option<Spelling>>> = LazyLock::new(|| {
    let mut table = vec![None; 1 << SLOT_BITS];
    for &field in Field::ALL {
        let snake = (field.name().to_string(), false);
        let camel = field
            .name()
            .contains('_')
            .then(|| (camel_case(field.name()), true));
        for (text, camel) in [Some(snake), camel].into_iter().flatten() {
            let signature = Signature::of(text.as_bytes());
            let mut slot = signature.slot();
            while table[slot].is_some() {
                slot = (slot + 1) % table.len();
            }
            table[slot] = Some(Spelling {
                signature,
                text,
                field,
                camel,
            });
        }
    }
    table
});

/// The field `name` spells, and whether in camelCase.
#[inline]
fn spelling_of(name: &str) -> Option<(Field, bool)> {
    let signature = Signature::of(name.as_bytes());
    let table = &*SPELLINGS;
    let mut slot = signature.slot();
    while let Some(spelling) = &table[slot] {
        if spelling.signature == signature && (name.len() <= 16 || spelling.text == name) {
            return Some((spelling.field, spelling.camel));
        }
        slot = (slot + 1) % table.len();
    }
    None
}

/// The member names of the last record read, by position: the records of one stream share their
/// shape, so a name found where it was before is taken from here instead of being read and looked
/// up again.
#[derive(Debug, Default)]
pub struct Shape {
    names: Vec<Option<KnownName>>,
}

/// A plain name of up to 16 bytes (its signature is the whole name) and the field it spells.
#[derive(Debug, Clone, Copy)]
struct KnownName {
    signature: Signature,
    spelling: Option<(Field, bool)>,
}

impl Shape {
    /// The length of the name at position `i` if `rest` starts with it.
    #[inline(always)]
    fn expected(&self, i: usize, rest: &[u8]) -> Option<usize> {
        let known = self.names.get(i)?.as_ref()?;
        let len = known.signature.len;
        let found = rest.get(..len).map(Signature::of);
        (found == Some(known.signature)).then_some(len)
    }

    #[inline(always)]
    fn spelling(&self, i: usize) -> Option<(Field, bool)> {
        self.names[i].and_then(|known| known.spelling)
    }

    /// Remembers the name read at position `i` (a plain one only, as `Borrowed` is).
    fn read(&mut self, i: usize, name: Cow<str>) -> Option<(Field, bool)> {
        let spelling = spelling_of(&name);
        let known = match name {
            Cow::Borrowed(name) if name.len() <= 16 => Some(KnownName {
                signature: Signature::of(name.as_bytes()),
                spelling,
            }),
            _ => None,
        };
        if self.names.len() <= i {
            self.names.resize(i + 1, None);
        }
        self.names[i] = known;
        spelling
    }
}

/// The known members of one JSON object, as raw text borrowed from it.
#[derive(Debug, Clone)]
pub struct Fields<'a> {
    values: [Option<&'a str>; FIELD_COUNT],
    /// Fields present under their own (snake_case) name.
    exact: u64,
}

impl<'a> Fields<'a> {
    /// Reads the object `text`. A member may be written as its name or its camelCase form: the
    /// first under its own name counts, else the first in camelCase.
    pub fn of(text: &'a str) -> Result<Fields<'a>, Invalid> {
        let mut fields = Fields::none();
        json::for_each_member(text, |name, value| fields.put(spelling_of(&name), value))?;
        Ok(fields)
    }

    /// Reads a record like `of`, expecting the shape of the last one.
    #[inline]
    pub fn of_record(text: &'a str, shape: &mut Shape) -> Result<Fields<'a>, Invalid> {
        struct Record<'f, 'a> {
            fields: Fields<'a>,
            shape: &'f mut Shape,
        }
        impl<'a> Members<'a> for Record<'_, 'a> {
            #[inline(always)]
            fn expected(&mut self, i: usize, rest: &[u8]) -> Option<usize> {
                self.shape.expected(i, rest)
            }
            #[inline(always)]
            fn member(&mut self, i: usize, name: Name<'a>, value: &'a str) {
                let spelling = match name {
                    Name::Expected => self.shape.spelling(i),
                    Name::Read(name) => self.shape.read(i, name),
                };
                self.fields.put(spelling, value);
            }
        }
        let mut record = Record {
            fields: Fields::none(),
            shape,
        };
        json::visit_members(text, &mut record)?;
        Ok(record.fields)
    }

    fn none() -> Fields<'a> {
        Fields {
            values: [None; FIELD_COUNT],
            exact: 0,
        }
    }

    #[inline(always)]
    fn put(&mut self, spelling: Option<(Field, bool)>, value: &'a str) {
        let Some((field, camel)) = spelling else {
            return;
        };
        let bit = 1u64 << field as usize;
        let slot = &mut self.values[field as usize];
        if !camel && self.exact & bit == 0 {
            self.exact |= bit;
            *slot = Some(value);
        } else if slot.is_none() {
            *slot = Some(value);
        }
    }

    /// A field's raw value; JSON `null` counts as absent.
    pub fn get(&self, field: Field) -> Option<&'a str> {
        self.values[field as usize].filter(|v| *v != "null")
    }

    /// Whether the object has the member under its own name (even if `null`).
    pub fn contains(&self, field: Field) -> bool {
        self.exact & (1 << field as usize) != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// As a record's fields were read before there were slots: the first member under the
        /// field's own name (`null` meaning absent), else the first under its camelCase name.
        #[test]
        fn a_field_is_its_first_member_by_name_else_by_camel_case(
            members in prop::collection::vec((prop_oneof![
                Just("dest_port"), Just("destPort"), Just("source_name"), Just("sourceName"),
                Just("action"), Just("Key"), Just("key"), Just("flow"), Just("dest_Port"), Just("other"),
            ], any::<bool>()), 0..10),
        ) {
            // Each value names its member's position, so the test sees which one was read.
            let values: Vec<String> = members
                .iter()
                .enumerate()
                .map(|(i, &(_, null))| if null { "null".to_string() } else { i.to_string() })
                .collect();
            let text = format!("{{{}}}", members.iter().zip(&values).map(|((name, _), value)| format!("\"{name}\":{value}")).collect::<Vec<_>>().join(","));
            let fields = Fields::of(&text).unwrap();
            for &field in Field::ALL {
                let value_named = |name: &str| members.iter().position(|(n, _)| *n == name).map(|i| values[i].as_str());
                let own = value_named(field.name());
                let expected = match own {
                    Some(value) => Some(value),
                    None if field.name().contains('_') => value_named(&camel_case(field.name())),
                    None => None,
                };
                prop_assert_eq!(fields.get(field), expected.filter(|v| *v != "null"), "{} in {}", field.name(), text);
                prop_assert_eq!(fields.contains(field), own.is_some());
            }
        }
    }

    #[test]
    fn either_spelling_is_found_and_the_own_name_wins() {
        let fields = Fields::of(
            r#"{"destPort": "443", "dest_port": 80, "sourceName": "a", "sourceName": "b", "action": null, "x": 1}"#,
        )
        .unwrap();
        assert_eq!(fields.get(Field::DestPort), Some("80"));
        assert_eq!(fields.get(Field::SourceName), Some(r#""a""#));
        assert!(fields.get(Field::Action).is_none(), "null is absent");
        assert!(fields.contains(Field::Action));
        assert!(!fields.contains(Field::SourceName), "only as camelCase");
        assert_eq!(camel_case("dest_service_name"), "destServiceName");
    }

    #[test]
    fn a_record_is_read_alike_whatever_shape_was_expected() {
        let records = [
            r#"{"dest_port":1,"source_name":"a","x":0}"#,
            r#"{"dest_portx":2,"source_name_aggr":"b","x":0}"#,
            r#"{"dest_po":3,"sourceName":"c"}"#,
            r#"{"dest_port" :4, "source\u005fname":"d","x":0,"action":null}"#,
            r#"{"dest_port":5,"source_name":"e","x":0,"action":"Allow"}"#,
        ];
        let mut shape = Shape::default();
        // Each record after each other, so every one is read expecting every other's shape.
        for first in records {
            for record in records {
                Fields::of_record(first, &mut shape).unwrap();
                let expecting = Fields::of_record(record, &mut shape).unwrap();
                let plain = Fields::of(record).unwrap();
                for &field in Field::ALL {
                    assert_eq!(
                        expecting.get(field),
                        plain.get(field),
                        "{record} after {first}"
                    );
                    assert_eq!(expecting.contains(field), plain.contains(field));
                }
            }
        }
    }

    #[test]
    fn every_spelling_is_found_and_nothing_else() {
        for &field in Field::ALL {
            assert_eq!(spelling_of(field.name()), Some((field, false)));
            if field.name().contains('_') {
                let camel = camel_case(field.name());
                assert_eq!(spelling_of(&camel), Some((field, true)), "{camel}");
            }
            // A name differing only past the 16th byte, or by its length, is another name.
            assert_eq!(spelling_of(&format!("{}x", field.name())), None);
        }
        assert_eq!(spelling_of("num_connections_startex"), None);
        assert_eq!(spelling_of(""), None);
    }
}
