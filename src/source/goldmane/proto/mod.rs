//! Goldmane's gRPC messages and `Flows` client (`goldmane/proto/api.proto`, package `goldmane`),
//! generated from the two reference copies by `tests/goldmane_codegen.rs` (protox and
//! tonic-prost-build, so no `protoc`) and committed.
//!
//! The two wire versions share most messages ([`common`], generated once in [`v3_32`]). They
//! differ in:
//! - `PolicyMatch.tier/namespace/name`: `string` in 3.30/3.31, `StringMatch` in 3.32+;
//! - `Filter`: 3.32 adds `reporter = 9` and `pending_actions = 10`;
//! - `FilterType`: 3.32 adds `PolicyKind = 7` and `PolicyNamespace = 8`;
//! - `PolicyKind`: 3.30/3.31 have `AdminNetworkPolicy = 7`, `BaselineAdminNetworkPolicy = 8`;
//!   3.32 reserves 7 and 8 and adds `ClusterNetworkPolicy = 11`.
//!
//! Every message that carries a `Filter` or `PolicyMatch` (the requests) therefore exists once per
//! version. A shared message's `PolicyKind` field (`PolicyHit.kind`) is a number to be read by
//! version: its generated getter knows only 3.32's names.

/// Calico 3.32 and later.
#[allow(clippy::all)]
#[rustfmt::skip]
pub mod v3_32;

/// Calico 3.30 and 3.31: the requests and enums that differ; everything else is [`common`].
#[allow(clippy::all)]
#[rustfmt::skip]
pub mod v3_30;

/// Messages and enums identical on the wire in every version (3.32's generated types).
pub mod common {
    pub use super::v3_32::{
        Action, EndpointType, FilterHint, FilterHintsResult, Flow, FlowKey, FlowListResult,
        FlowReceipt, FlowResult, FlowUpdate, ListMetadata, MatchType, PolicyHit, PolicyTrace,
        PortMatch, Reporter, RuleDirection, SortBy, SortOption, StatisticType, StatisticsGroupBy,
        StatisticsResult, StringMatch,
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    /// Splits an encoded message into (field number, wire type, payload) triples.
    fn fields(mut bytes: &[u8]) -> Vec<(u32, u8, Vec<u8>)> {
        let mut out = Vec::new();
        while !bytes.is_empty() {
            let key = prost::encoding::decode_varint(&mut bytes).unwrap();
            let (field, wire) = ((key >> 3) as u32, (key & 7) as u8);
            let payload = match wire {
                0 => {
                    let v = prost::encoding::decode_varint(&mut bytes).unwrap();
                    let mut buf = Vec::new();
                    prost::encoding::encode_varint(v, &mut buf);
                    buf
                }
                2 => {
                    let len = prost::encoding::decode_varint(&mut bytes).unwrap() as usize;
                    let (payload, rest) = bytes.split_at(len);
                    bytes = rest;
                    payload.to_vec()
                }
                other => panic!("unexpected wire type {other}"),
            };
            out.push((field, wire, payload));
        }
        out
    }

    #[test]
    fn policy_match_tier_is_a_string_in_3_30_and_a_string_match_in_3_32() {
        let old = v3_30::PolicyMatch {
            kind: v3_30::PolicyKind::GlobalNetworkPolicy as i32,
            tier: "security".into(),
            namespace: String::new(),
            name: "deny-all".into(),
            action: common::Action::Deny as i32,
        };
        let new = v3_32::PolicyMatch {
            kind: v3_32::PolicyKind::GlobalNetworkPolicy as i32,
            tier: Some(common::StringMatch {
                value: "security".into(),
                r#type: common::MatchType::Exact as i32,
            }),
            namespace: None,
            name: Some(common::StringMatch {
                value: "deny-all".into(),
                r#type: common::MatchType::Fuzzy as i32,
            }),
            action: common::Action::Deny as i32,
        };
        let old_bytes = old.encode_to_vec();
        assert_eq!(
            old_bytes,
            [
                &[0x08, 2, 0x12, 8][..],
                b"security",
                &[0x22, 8],
                b"deny-all",
                &[0x28, 2]
            ]
            .concat()
        );
        let new_fields = fields(&new.encode_to_vec());
        assert_eq!(new_fields[0], (1, 0, vec![2]));
        // Field 2: a length-delimited sub-message whose field 1 is the string.
        assert_eq!(new_fields[1].0, 2);
        assert_eq!(new_fields[1].1, 2);
        assert_eq!(
            new_fields[1].2,
            [&[0x0a, 8][..], b"security"].concat(),
            "exact match omits its zero type"
        );
        assert_eq!(new_fields[2].0, 4);
        assert_eq!(
            new_fields[2].2,
            [&[0x0a, 8][..], b"deny-all", &[0x10, 1]].concat()
        );
        assert_eq!(new_fields[3], (5, 0, vec![2]));
        // The 3.32 message read as 3.30's puts the sub-message bytes where a string belongs.
        let misread = v3_30::PolicyMatch::decode(&new.encode_to_vec()[..]);
        assert_ne!(misread.ok().map(|m| m.tier), Some("security".to_string()));
    }

    #[test]
    fn filter_3_32_adds_reporter_and_pending_actions() {
        let old = v3_30::Filter {
            actions: vec![common::Action::Deny as i32],
            dest_ports: vec![common::PortMatch { port: 443 }],
            ..Default::default()
        };
        let new = v3_32::Filter {
            actions: vec![common::Action::Deny as i32],
            dest_ports: vec![common::PortMatch { port: 443 }],
            reporter: common::Reporter::Dst as i32,
            pending_actions: vec![common::Action::Allow as i32, common::Action::Pass as i32],
            ..Default::default()
        };
        let old_fields = fields(&old.encode_to_vec());
        let new_fields = fields(&new.encode_to_vec());
        assert_eq!(
            old_fields,
            vec![(6, 2, vec![0x08, 0xbb, 0x03]), (7, 2, vec![2])],
            "repeated enums are packed"
        );
        assert_eq!(&new_fields[..2], &old_fields[..]);
        assert_eq!(new_fields[2], (9, 0, vec![2]));
        assert_eq!(new_fields[3], (10, 2, vec![1, 3]));
        // A 3.30 server skips the unknown fields.
        let seen_by_old = v3_30::Filter::decode(&new.encode_to_vec()[..]).unwrap();
        assert_eq!(seen_by_old, old);
    }

    #[test]
    fn enums_that_differ() {
        assert_eq!(v3_30::PolicyKind::AdminNetworkPolicy as i32, 7);
        assert_eq!(v3_30::PolicyKind::BaselineAdminNetworkPolicy as i32, 8);
        assert!(v3_32::PolicyKind::try_from(7).is_err());
        assert!(v3_32::PolicyKind::try_from(8).is_err());
        assert_eq!(v3_32::PolicyKind::ClusterNetworkPolicy as i32, 11);
        assert!(v3_30::PolicyKind::try_from(11).is_err());
        assert_eq!(v3_32::FilterType::PolicyKind as i32, 7);
        assert!(v3_30::FilterType::try_from(7).is_err());
        let probe = v3_32::FilterHintsRequest {
            r#type: v3_32::FilterType::PolicyKind as i32,
            page_size: 1,
            ..Default::default()
        };
        assert_eq!(probe.encode_to_vec(), vec![0x08, 7, 0x30, 1]);
    }

    #[test]
    fn flow_round_trips_with_field_numbers() {
        let flow = common::Flow {
            key: Some(common::FlowKey {
                source_name: "web-*".into(),
                reporter: common::Reporter::Src as i32,
                policies: Some(common::PolicyTrace {
                    enforced_policies: vec![common::PolicyHit {
                        kind: v3_32::PolicyKind::EndOfTier as i32,
                        tier: "security".into(),
                        action: common::Action::Deny as i32,
                        rule_index: -1,
                        trigger: Some(Box::new(common::PolicyHit {
                            kind: v3_32::PolicyKind::GlobalNetworkPolicy as i32,
                            name: "guard".into(),
                            ..Default::default()
                        })),
                        ..Default::default()
                    }],
                    pending_policies: vec![],
                }),
                ..Default::default()
            }),
            start_time: 1_700_000_000,
            num_connections_live: 3,
            ..Default::default()
        };
        let bytes = flow.encode_to_vec();
        let tags: Vec<u32> = fields(&bytes).iter().map(|f| f.0).collect();
        assert_eq!(tags, vec![1, 2, 12]);
        let key_tags: Vec<u32> = fields(&fields(&bytes)[0].2).iter().map(|f| f.0).collect();
        assert_eq!(key_tags, vec![1, 13, 15]);
        assert_eq!(common::Flow::decode(&bytes[..]).unwrap(), flow);
    }
}
