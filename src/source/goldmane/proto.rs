//! Goldmane's gRPC messages (`goldmane/proto/api.proto`, package `goldmane`), written by hand as
//! prost messages so that no `protoc` is needed. Field numbers and types follow the two reference
//! copies in `shared/reference/calico/goldmane/`.
//!
//! The two wire versions share most messages ([`common`]). They differ in:
//! - `PolicyMatch.tier/namespace/name`: `string` in 3.30/3.31, `StringMatch` in 3.32+;
//! - `Filter`: 3.32 adds `reporter = 9` and `pending_actions = 10`;
//! - `FilterType`: 3.32 adds `PolicyKind = 7` and `PolicyNamespace = 8`;
//! - `PolicyKind`: 3.30/3.31 have `AdminNetworkPolicy = 7`, `BaselineAdminNetworkPolicy = 8`;
//!   3.32 reserves 7 and 8 and adds `ClusterNetworkPolicy = 11`.
//!
//! Every message that carries a `Filter` (the three requests) therefore exists once per version.

/// Messages and enums identical in every wire version.
pub mod common {
    /// `FlowListResult`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct FlowListResult {
        #[prost(message, optional, tag = "1")]
        pub meta: Option<ListMetadata>,
        #[prost(message, repeated, tag = "2")]
        pub flows: Vec<FlowResult>,
    }

    /// `ListMetadata` (`totalPages`, `totalResults` in the proto).
    #[derive(Clone, Copy, PartialEq, Eq, prost::Message)]
    pub struct ListMetadata {
        #[prost(int64, tag = "1")]
        pub total_pages: i64,
        #[prost(int64, tag = "2")]
        pub total_results: i64,
    }

    /// `FilterHintsResult`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct FilterHintsResult {
        #[prost(message, optional, tag = "1")]
        pub meta: Option<ListMetadata>,
        #[prost(message, repeated, tag = "2")]
        pub hints: Vec<FilterHint>,
    }

    /// `FilterHint`.
    #[derive(Clone, PartialEq, Eq, prost::Message)]
    pub struct FilterHint {
        #[prost(string, tag = "1")]
        pub value: String,
    }

    /// `FlowResult`: `id` is 1:1 with the flow key for the server's lifetime.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct FlowResult {
        #[prost(int64, tag = "1")]
        pub id: i64,
        #[prost(message, optional, tag = "2")]
        pub flow: Option<Flow>,
    }

    /// `Flow`: one aggregation window of one flow key.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Flow {
        /// `Key` in the proto.
        #[prost(message, optional, tag = "1")]
        pub key: Option<FlowKey>,
        #[prost(int64, tag = "2")]
        pub start_time: i64,
        #[prost(int64, tag = "3")]
        pub end_time: i64,
        #[prost(string, repeated, tag = "4")]
        pub source_labels: Vec<String>,
        #[prost(string, repeated, tag = "5")]
        pub dest_labels: Vec<String>,
        #[prost(int64, tag = "6")]
        pub packets_in: i64,
        #[prost(int64, tag = "7")]
        pub packets_out: i64,
        #[prost(int64, tag = "8")]
        pub bytes_in: i64,
        #[prost(int64, tag = "9")]
        pub bytes_out: i64,
        #[prost(int64, tag = "10")]
        pub num_connections_started: i64,
        #[prost(int64, tag = "11")]
        pub num_connections_completed: i64,
        #[prost(int64, tag = "12")]
        pub num_connections_live: i64,
    }

    /// `FlowKey`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct FlowKey {
        #[prost(string, tag = "1")]
        pub source_name: String,
        #[prost(string, tag = "2")]
        pub source_namespace: String,
        #[prost(enumeration = "EndpointType", tag = "3")]
        pub source_type: i32,
        #[prost(string, tag = "4")]
        pub dest_name: String,
        #[prost(string, tag = "5")]
        pub dest_namespace: String,
        #[prost(enumeration = "EndpointType", tag = "6")]
        pub dest_type: i32,
        #[prost(int64, tag = "7")]
        pub dest_port: i64,
        #[prost(string, tag = "8")]
        pub dest_service_name: String,
        #[prost(string, tag = "9")]
        pub dest_service_namespace: String,
        #[prost(string, tag = "10")]
        pub dest_service_port_name: String,
        #[prost(int64, tag = "11")]
        pub dest_service_port: i64,
        #[prost(string, tag = "12")]
        pub proto: String,
        #[prost(enumeration = "Reporter", tag = "13")]
        pub reporter: i32,
        #[prost(enumeration = "Action", tag = "14")]
        pub action: i32,
        #[prost(message, optional, tag = "15")]
        pub policies: Option<PolicyTrace>,
    }

    /// `PolicyTrace`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct PolicyTrace {
        #[prost(message, repeated, tag = "1")]
        pub enforced_policies: Vec<PolicyHit>,
        #[prost(message, repeated, tag = "2")]
        pub pending_policies: Vec<PolicyHit>,
    }

    /// `PolicyHit`. `kind` is the version's `PolicyKind` number (same wire type in both).
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct PolicyHit {
        #[prost(int32, tag = "1")]
        pub kind: i32,
        #[prost(string, tag = "2")]
        pub namespace: String,
        #[prost(string, tag = "3")]
        pub name: String,
        #[prost(string, tag = "4")]
        pub tier: String,
        #[prost(enumeration = "Action", tag = "5")]
        pub action: i32,
        #[prost(int64, tag = "6")]
        pub policy_index: i64,
        #[prost(int64, tag = "7")]
        pub rule_index: i64,
        #[prost(message, optional, boxed, tag = "8")]
        pub trigger: Option<Box<PolicyHit>>,
    }

    /// `StringMatch`.
    #[derive(Clone, PartialEq, Eq, prost::Message)]
    pub struct StringMatch {
        #[prost(string, tag = "1")]
        pub value: String,
        #[prost(enumeration = "MatchType", tag = "2")]
        pub r#type: i32,
    }

    /// `PortMatch`.
    #[derive(Clone, Copy, PartialEq, Eq, prost::Message)]
    pub struct PortMatch {
        #[prost(int64, tag = "1")]
        pub port: i64,
    }

    /// `SortOption`.
    #[derive(Clone, Copy, PartialEq, Eq, prost::Message)]
    pub struct SortOption {
        #[prost(enumeration = "SortBy", tag = "1")]
        pub sort_by: i32,
    }

    /// `Action`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
    #[repr(i32)]
    pub enum Action {
        ActionUnspecified = 0,
        Allow = 1,
        Deny = 2,
        Pass = 3,
    }

    /// `MatchType`: `Fuzzy` is a substring match.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
    #[repr(i32)]
    pub enum MatchType {
        Exact = 0,
        Fuzzy = 1,
    }

    /// `EndpointType`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
    #[repr(i32)]
    pub enum EndpointType {
        EndpointTypeUnspecified = 0,
        WorkloadEndpoint = 1,
        HostEndpoint = 2,
        NetworkSet = 3,
        Network = 4,
    }

    /// `Reporter`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
    #[repr(i32)]
    pub enum Reporter {
        ReporterUnspecified = 0,
        Src = 1,
        Dst = 2,
    }

    /// `SortBy`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
    #[repr(i32)]
    pub enum SortBy {
        Time = 0,
        DestName = 1,
        DestNamespace = 2,
        DestType = 3,
        SourceName = 4,
        SourceNamespace = 5,
        SourceType = 6,
    }
}

/// Calico 3.30 and 3.31.
pub mod v3_30 {
    pub use super::common::*;

    /// `FlowListRequest`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct FlowListRequest {
        #[prost(int64, tag = "1")]
        pub start_time_gte: i64,
        #[prost(int64, tag = "2")]
        pub start_time_lt: i64,
        #[prost(int64, tag = "3")]
        pub page: i64,
        #[prost(int64, tag = "4")]
        pub page_size: i64,
        #[prost(message, repeated, tag = "5")]
        pub sort_by: Vec<SortOption>,
        #[prost(message, optional, tag = "6")]
        pub filter: Option<Filter>,
        #[prost(int64, tag = "7")]
        pub aggregation_interval: i64,
    }

    /// `FlowStreamRequest`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct FlowStreamRequest {
        #[prost(int64, tag = "1")]
        pub start_time_gte: i64,
        #[prost(message, optional, tag = "2")]
        pub filter: Option<Filter>,
        #[prost(int64, tag = "3")]
        pub aggregation_interval: i64,
    }

    /// `FilterHintsRequest`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct FilterHintsRequest {
        #[prost(enumeration = "FilterType", tag = "1")]
        pub r#type: i32,
        #[prost(message, optional, tag = "2")]
        pub filter: Option<Filter>,
        #[prost(int64, tag = "3")]
        pub start_time_gte: i64,
        #[prost(int64, tag = "4")]
        pub start_time_lt: i64,
        #[prost(int64, tag = "5")]
        pub page: i64,
        #[prost(int64, tag = "6")]
        pub page_size: i64,
    }

    /// `Filter` (fields 1–8).
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Filter {
        #[prost(message, repeated, tag = "1")]
        pub source_names: Vec<StringMatch>,
        #[prost(message, repeated, tag = "2")]
        pub source_namespaces: Vec<StringMatch>,
        #[prost(message, repeated, tag = "3")]
        pub dest_names: Vec<StringMatch>,
        #[prost(message, repeated, tag = "4")]
        pub dest_namespaces: Vec<StringMatch>,
        #[prost(message, repeated, tag = "5")]
        pub protocols: Vec<StringMatch>,
        #[prost(message, repeated, tag = "6")]
        pub dest_ports: Vec<PortMatch>,
        #[prost(enumeration = "Action", repeated, tag = "7")]
        pub actions: Vec<i32>,
        #[prost(message, repeated, tag = "8")]
        pub policies: Vec<PolicyMatch>,
    }

    /// `PolicyMatch` with plain strings (exact match; empty matches anything).
    #[derive(Clone, PartialEq, Eq, prost::Message)]
    pub struct PolicyMatch {
        #[prost(enumeration = "PolicyKind", tag = "1")]
        pub kind: i32,
        #[prost(string, tag = "2")]
        pub tier: String,
        #[prost(string, tag = "3")]
        pub namespace: String,
        #[prost(string, tag = "4")]
        pub name: String,
        #[prost(enumeration = "Action", tag = "5")]
        pub action: i32,
    }

    /// `FilterType` (1–6).
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
    #[repr(i32)]
    pub enum FilterType {
        FilterTypeUnspecified = 0,
        FilterTypeDestName = 1,
        FilterTypeSourceName = 2,
        FilterTypeDestNamespace = 3,
        FilterTypeSourceNamespace = 4,
        FilterTypePolicyTier = 5,
        FilterTypePolicyName = 6,
    }

    /// `PolicyKind` with the admin network policy kinds (7, 8).
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
    #[repr(i32)]
    pub enum PolicyKind {
        KindUnspecified = 0,
        CalicoNetworkPolicy = 1,
        GlobalNetworkPolicy = 2,
        StagedNetworkPolicy = 3,
        StagedGlobalNetworkPolicy = 4,
        StagedKubernetesNetworkPolicy = 5,
        NetworkPolicy = 6,
        AdminNetworkPolicy = 7,
        BaselineAdminNetworkPolicy = 8,
        Profile = 9,
        EndOfTier = 10,
    }
}

/// Calico 3.32 and later.
pub mod v3_32 {
    pub use super::common::*;

    /// `FlowListRequest`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct FlowListRequest {
        #[prost(int64, tag = "1")]
        pub start_time_gte: i64,
        #[prost(int64, tag = "2")]
        pub start_time_lt: i64,
        #[prost(int64, tag = "3")]
        pub page: i64,
        #[prost(int64, tag = "4")]
        pub page_size: i64,
        #[prost(message, repeated, tag = "5")]
        pub sort_by: Vec<SortOption>,
        #[prost(message, optional, tag = "6")]
        pub filter: Option<Filter>,
        #[prost(int64, tag = "7")]
        pub aggregation_interval: i64,
    }

    /// `FlowStreamRequest`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct FlowStreamRequest {
        #[prost(int64, tag = "1")]
        pub start_time_gte: i64,
        #[prost(message, optional, tag = "2")]
        pub filter: Option<Filter>,
        #[prost(int64, tag = "3")]
        pub aggregation_interval: i64,
    }

    /// `FilterHintsRequest`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct FilterHintsRequest {
        #[prost(enumeration = "FilterType", tag = "1")]
        pub r#type: i32,
        #[prost(message, optional, tag = "2")]
        pub filter: Option<Filter>,
        #[prost(int64, tag = "3")]
        pub start_time_gte: i64,
        #[prost(int64, tag = "4")]
        pub start_time_lt: i64,
        #[prost(int64, tag = "5")]
        pub page: i64,
        #[prost(int64, tag = "6")]
        pub page_size: i64,
    }

    /// `Filter` (fields 1–10).
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Filter {
        #[prost(message, repeated, tag = "1")]
        pub source_names: Vec<StringMatch>,
        #[prost(message, repeated, tag = "2")]
        pub source_namespaces: Vec<StringMatch>,
        #[prost(message, repeated, tag = "3")]
        pub dest_names: Vec<StringMatch>,
        #[prost(message, repeated, tag = "4")]
        pub dest_namespaces: Vec<StringMatch>,
        #[prost(message, repeated, tag = "5")]
        pub protocols: Vec<StringMatch>,
        #[prost(message, repeated, tag = "6")]
        pub dest_ports: Vec<PortMatch>,
        #[prost(enumeration = "Action", repeated, tag = "7")]
        pub actions: Vec<i32>,
        #[prost(message, repeated, tag = "8")]
        pub policies: Vec<PolicyMatch>,
        #[prost(enumeration = "Reporter", tag = "9")]
        pub reporter: i32,
        #[prost(enumeration = "Action", repeated, tag = "10")]
        pub pending_actions: Vec<i32>,
    }

    /// `PolicyMatch` with `StringMatch`es (absent matches anything).
    #[derive(Clone, PartialEq, Eq, prost::Message)]
    pub struct PolicyMatch {
        #[prost(enumeration = "PolicyKind", tag = "1")]
        pub kind: i32,
        #[prost(message, optional, tag = "2")]
        pub tier: Option<StringMatch>,
        #[prost(message, optional, tag = "3")]
        pub namespace: Option<StringMatch>,
        #[prost(message, optional, tag = "4")]
        pub name: Option<StringMatch>,
        #[prost(enumeration = "Action", tag = "5")]
        pub action: i32,
    }

    /// `FilterType` (1–8).
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
    #[repr(i32)]
    pub enum FilterType {
        FilterTypeUnspecified = 0,
        FilterTypeDestName = 1,
        FilterTypeSourceName = 2,
        FilterTypeDestNamespace = 3,
        FilterTypeSourceNamespace = 4,
        FilterTypePolicyTier = 5,
        FilterTypePolicyName = 6,
        FilterTypePolicyKind = 7,
        FilterTypePolicyNamespace = 8,
    }

    /// `PolicyKind`: 7 and 8 are reserved, `ClusterNetworkPolicy = 11`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
    #[repr(i32)]
    pub enum PolicyKind {
        KindUnspecified = 0,
        CalicoNetworkPolicy = 1,
        GlobalNetworkPolicy = 2,
        StagedNetworkPolicy = 3,
        StagedGlobalNetworkPolicy = 4,
        StagedKubernetesNetworkPolicy = 5,
        NetworkPolicy = 6,
        ClusterNetworkPolicy = 11,
        Profile = 9,
        EndOfTier = 10,
    }
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
        assert_eq!(v3_32::FilterType::FilterTypePolicyKind as i32, 7);
        assert!(v3_30::FilterType::try_from(7).is_err());
        let probe = v3_32::FilterHintsRequest {
            r#type: v3_32::FilterType::FilterTypePolicyKind as i32,
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
