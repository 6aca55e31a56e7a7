//! The members flowtrace reads from a record, in fixed slots: one pass over an object fills the
//! slot of each known member, so reading a field is an index, not a search.

use std::sync::LazyLock;

use super::json::{self, Invalid};

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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Signature {
    len: usize,
    head: u64,
    tail: u64,
}

impl Signature {
    #[inline]
    fn of(name: &str) -> Signature {
        let bytes = name.as_bytes();
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
            let signature = Signature::of(&text);
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
    let signature = Signature::of(name);
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
    #[inline]
    pub fn of(text: &'a str) -> Result<Fields<'a>, Invalid> {
        let mut fields = Fields {
            values: [None; FIELD_COUNT],
            exact: 0,
        };
        json::for_each_member(text, |name, value| {
            let Some((field, camel)) = spelling_of(&name) else {
                return;
            };
            let bit = 1u64 << field as usize;
            let slot = &mut fields.values[field as usize];
            if !camel && fields.exact & bit == 0 {
                fields.exact |= bit;
                *slot = Some(value);
            } else if slot.is_none() {
                *slot = Some(value);
            }
        })?;
        Ok(fields)
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
