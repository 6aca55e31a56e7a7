//! Property tests: the parsers people and other programs feed (the filter language, selectors, flow
//! records, policy-hit strings) never panic, and their errors point inside the input.

use flowtrace::flows::hit_string::parse_hit_string;
use flowtrace::flows::FlowDecoder;
use flowtrace::policy::selector::Selector;
use flowtrace::store::filter::Filter;
use proptest::prelude::*;

/// Pieces filters are made of, so generated text is often nearly valid (where bugs hide).
fn filter_piece() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("action".to_string()),
        Just("dst.ns".to_string()),
        Just("src.label.app".to_string()),
        Just("port".to_string()),
        Just("since".to_string()),
        Just("=".to_string()),
        Just("!=".to_string()),
        Just("~".to_string()),
        Just(" in ".to_string()),
        Just(" not ".to_string()),
        Just(" and ".to_string()),
        Just(" or ".to_string()),
        Just("(".to_string()),
        Just(")".to_string()),
        Just(",".to_string()),
        Just("\"".to_string()),
        Just("'".to_string()),
        Just("deny".to_string()),
        Just("443".to_string()),
        Just("15m".to_string()),
        "[a-z*]{1,6}",
        "\\PC{0,3}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn filters_never_panic_and_errors_point_inside(pieces in prop::collection::vec(filter_piece(), 0..12)) {
        let text: String = pieces.concat();
        if let Err(e) = Filter::parse(&text) {
            prop_assert!(e.column >= 1 && e.column <= text.chars().count() + 1, "{text:?}: {e}");
            prop_assert!(!e.message.is_empty());
        }
    }

    #[test]
    fn generated_valid_filters_parse(
        action in prop_oneof![Just("allow"), Just("deny")],
        ns in "[a-z][a-z0-9-]{0,10}",
        ports in prop::collection::vec(1u16..65535, 1..4),
        negate in any::<bool>(),
    ) {
        let list = ports.iter().map(|p| p.to_string()).collect::<Vec<_>>().join(", ");
        let not = if negate { "not " } else { "" };
        let text = format!("action={action} {not}dst.ns={ns} port in ({list}) or (src.ns~{ns} and since=5m)");
        prop_assert!(Filter::parse(&text).is_ok(), "{text}");
    }

    #[test]
    fn selectors_never_panic_and_errors_point_inside(text in "[a-z.=!&|()'\" {},]{0,40}|\\PC{0,20}") {
        if let Err(e) = Selector::parse(&text) {
            prop_assert!(e.column >= 1 && e.column <= text.chars().count() + 1, "{text:?}: {e}");
        }
    }

    #[test]
    fn hit_strings_never_panic(text in "[0-9a-z|./:_-]{0,40}") {
        let _ = parse_hit_string(&text);
    }

    #[test]
    fn arbitrary_lines_never_panic_the_decoder(line in "\\PC{0,200}") {
        let _ = FlowDecoder::new().decode(&line);
    }

    #[test]
    fn records_with_arbitrary_values_decode_or_say_which_field(
        keys in prop::collection::vec(prop_oneof![
            Just("source_name"), Just("source_namespace"), Just("source_labels"), Just("dest_name"),
            Just("dest_namespace"), Just("dest_labels"), Just("dest_port"), Just("protocol"), Just("proto"),
            Just("reporter"), Just("action"), Just("policies"), Just("source_ip"), Just("dest_type"),
            Just("source_name_aggr"), Just("start_time"), Just("Key"),
        ], 0..12),
        values in prop::collection::vec(prop_oneof![
            Just("null".to_string()), Just("\"\"".to_string()), Just("\"-\"".to_string()), Just("80".to_string()),
            Just("-1".to_string()), Just("70000".to_string()), Just("\"tcp\"".to_string()), Just("\"Src\"".to_string()),
            Just("\"Deny\"".to_string()), Just("[]".to_string()), Just("{}".to_string()), Just("[\"a=b\",1]".to_string()),
            Just("{\"enforced\":[{}]}".to_string()), Just("{\"enforced_policies\":[\"0|t|x|deny|0\"]}".to_string()),
            Just("\"a=b | c\"".to_string()), Just("1.5".to_string()), Just("true".to_string()),
        ], 12),
    ) {
        let members: Vec<String> = keys.iter().zip(&values).map(|(k, v)| format!("\"{k}\":{v}")).collect();
        let line = format!("{{{}}}", members.join(","));
        if let Err(e) = FlowDecoder::new().decode(&line) {
            prop_assert!(!e.is_empty(), "{line}");
        }
    }
}

/// The demo's flows in a store, for the search property below.
fn demo_store() -> flowtrace::store::FlowStore {
    let mut demo = flowtrace::source::demo::DemoCluster::new(3);
    let mut store = flowtrace::store::FlowStore::new(10_000);
    for observed in demo.flows(0, 600) {
        let decided = flowtrace::store::Decided::as_recorded(&observed.flow);
        store.ingest(observed, &decided);
    }
    store
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// The store's cached search answers exactly what the fuzzy matcher says of each row's text.
    #[test]
    fn cached_search_over_stored_flows_agrees_with_the_matcher(
        pattern in "[a-z0-9 ./*-]{1,8}|(dns|deny|customer|5432|security|pub|tcp|allow)",
    ) {
        use flowtrace::store::filter::{row_text, FilterTarget, Fuzzy};
        let store = demo_store();
        let cached = Fuzzy::default();
        let plain = Fuzzy::default();
        for flow in store.iter() {
            let text = row_text(&flow);
            prop_assert_eq!(
                flow.fuzzy_matches(&pattern, &cached),
                plain.matches(&text, &pattern),
                "pattern {:?} on {:?}", pattern, text
            );
        }
    }
}
