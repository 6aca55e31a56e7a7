//! Property tests: the parsers people and other programs feed (the filter language, selectors, flow
//! records, policy-hit strings) never panic, and their errors point inside the input; the flow
//! decoder's own JSON reader reads exactly what serde_json reads.

use flowtrace::flows::hit_string::parse_hit_string;
use flowtrace::flows::{json, FlowDecoder};
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

/// JSON scalars, valid and nearly so (where a reader's bugs hide).
fn json_scalar() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("null".to_string()),
        Just("nul".to_string()),
        Just("true".to_string()),
        Just("falsy".to_string()),
        Just("-0.5e+3".to_string()),
        Just("0".to_string()),
        Just("01".to_string()),
        Just("1.".to_string()),
        Just("-".to_string()),
        Just("2E".to_string()),
        Just(r#""a\"b\\c\/d\n""#.to_string()),
        Just(r#""\u00e9\uD800\uDC00""#.to_string()),
        Just(r#""\ud800""#.to_string()),
        Just(r#""\x""#.to_string()),
        Just(r#""\u12G4""#.to_string()),
        Just("\"tab\there\"".to_string()),
        Just("\"unterminated".to_string()),
        "-?[0-9]{1,4}(\\.[0-9]{1,2})?([eE][+-]?[0-9])?",
        "\"[a-z =|_é-]{0,12}\"",
    ]
}

/// Member names: plain, known to the decoder, escaped, or not quite names.
fn json_name() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(r#""source_name""#.to_string()),
        Just(r#""sourceName""#.to_string()),
        Just(r#""source\u005fname""#.to_string()),
        Just(r#""\ud800""#.to_string()),
        Just(r#""a\"b""#.to_string()),
        Just("name".to_string()),
        "\"[a-zA-Z_]{0,10}\"",
    ]
}

/// Whitespace, mostly none, sometimes more than JSON allows.
fn json_space() -> impl Strategy<Value = &'static str> {
    prop_oneof![8 => Just(""), 1 => Just(" \n\t\r"), 1 => Just("\u{a0}")]
}

/// JSON objects, nested, mostly valid.
fn json_object() -> impl Strategy<Value = String> {
    let value = json_scalar().prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec((json_space(), inner.clone()), 0..4).prop_map(|items| {
                let items: Vec<String> = items
                    .into_iter()
                    .map(|(s, v)| format!("{s}{v}{s}"))
                    .collect();
                format!("[{}]", items.join(","))
            }),
            prop::collection::vec((json_name(), inner), 0..4).prop_map(|members| {
                let members: Vec<String> = members
                    .into_iter()
                    .map(|(n, v)| format!("{n}:{v}"))
                    .collect();
                format!("{{{}}}", members.join(","))
            }),
        ]
    });
    prop::collection::vec((json_space(), json_name(), json_space(), value), 0..8).prop_map(
        |members| {
            let members: Vec<String> = members
                .into_iter()
                .map(|(s, n, t, v)| format!("{s}{n}{t}:{t}{v}{s}"))
                .collect();
            format!("{{{}}}", members.join(","))
        },
    )
}

/// An object's members as serde_json reads them: names unescaped, values as raw text.
struct SerdeMembers(Vec<(String, String)>);

impl<'de> serde::Deserialize<'de> for SerdeMembers {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = SerdeMembers;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<SerdeMembers, A::Error> {
                let mut members = Vec::new();
                while let Some((name, value)) =
                    map.next_entry::<String, &serde_json::value::RawValue>()?
                {
                    members.push((name, value.get().to_string()));
                }
                Ok(SerdeMembers(members))
            }
        }
        deserializer.deserialize_map(Visitor)
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 5000, ..ProptestConfig::default() })]

    /// The reader accepts exactly the objects serde_json accepts, hands out the same members, and
    /// reports serde_json's own message for the rest. Some objects get a character replaced.
    #[test]
    fn the_json_reader_agrees_with_serde_json(
        object in json_object(),
        replace in prop::option::of((any::<prop::sample::Index>(), "[\\[\\]{},:\" 0a\\\\]")),
    ) {
        let mut text = object;
        if let Some((at, with)) = replace {
            let at = at.index(text.chars().count().max(1));
            text = text.chars().enumerate().map(|(i, c)| if i == at { with.clone() } else { c.to_string() }).collect();
        }
        let mut read = Vec::new();
        let ours = json::for_each_member(&text, |name, value| {
            read.push((name.into_owned(), value.to_string()))
        });
        match serde_json::from_str::<SerdeMembers>(&text) {
            Ok(SerdeMembers(members)) => {
                prop_assert!(ours.is_ok(), "{text:?} is valid JSON");
                prop_assert_eq!(&read, &members, "{:?}", text);
            }
            Err(e) => {
                prop_assert!(ours.is_err(), "{text:?} is not valid JSON: {e}");
                if text.starts_with('{') {
                    prop_assert_eq!(json::syntax_error(&text), e.to_string());
                }
            }
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

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// However deep and however unbalanced the nesting, the parsers answer (a filter or an error
    /// naming a column), never exhaust the stack.
    #[test]
    fn nesting_of_any_depth_completes_with_an_answer(
        pieces in prop::collection::vec(
            prop_oneof![Just("("), Just(")"), Just("not "), Just("port=80 "), Just("or ")],
            0..20_000,
        ),
    ) {
        let text: String = pieces.concat();
        if let Err(error) = Filter::parse(&text) {
            prop_assert!(error.column >= 1 && error.column <= text.chars().count() + 1);
        }
        let selector: String = pieces
            .iter()
            .map(|p| match *p {
                "not " => "!",
                "port=80 " => "a == 'b'",
                "or " => " || ",
                other => other,
            })
            .collect();
        if let Err(error) = Selector::parse(&selector) {
            prop_assert!(error.to_string().contains("column"), "{error}");
        }
    }
}

/// Text built from the characters YAML and TOML give meaning to, and words they know.
fn structured_text() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            Just("\n".to_string()),
            Just(": ".to_string()),
            Just("- ".to_string()),
            Just("  ".to_string()),
            Just("[".to_string()),
            Just("]".to_string()),
            Just("{".to_string()),
            Just("}".to_string()),
            Just("\"".to_string()),
            Just("'".to_string()),
            Just("=".to_string()),
            Just(",".to_string()),
            Just("#".to_string()),
            Just("---\n".to_string()),
            Just("apiVersion: projectcalico.org/v3\n".to_string()),
            Just("kind: NetworkPolicy\n".to_string()),
            Just("kind: List\nitems:\n".to_string()),
            Just("metadata: {name: a, namespace: b}\n".to_string()),
            Just("spec:\n  selector: app == 'x'\n".to_string()),
            Just("  ingress: [{action: Allow}]\n".to_string()),
            Just("[flows]\n".to_string()),
            Just("[global]\n".to_string()),
            Just("\"j\" = \"select_next\"\n".to_string()),
            Just("text = \"#ffffff\"\n".to_string()),
            Just("theme = 3\n".to_string()),
            Just("name_pattern = \"(\"\n".to_string()),
            "[a-z_]{1,8}",
            "\\PC{1,4}",
        ],
        0..200,
    )
    .prop_map(|parts| parts.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    /// Manifests, keymaps, themes, the config file and lint's rules file: whatever the text, an
    /// answer (a value, or problems naming a line inside the text), never a panic.
    #[test]
    fn every_file_parser_answers_whatever_the_text(text in structured_text()) {
        let lines = text.lines().count().max(1);
        let (_, report) = flowtrace::policy::load_str("m.yaml", &text);
        for problem in report.errors.iter().chain(&report.warnings) {
            if let Some(line) = problem.line {
                prop_assert!(line >= 1 && line <= lines + 1, "{problem} ({lines} lines)");
            }
        }
        let _ = flowtrace::lint::Rules::parse("rules.toml", &text);
        let dir = tempfile::tempdir().unwrap();
        for name in ["keymap.toml", "theme.toml", "config.toml"] {
            std::fs::write(dir.path().join(name), &text).unwrap();
        }
        let keymap = dir.path().join("keymap.toml");
        let _ = flowtrace::tui::keymap::load(keymap.to_str(), None);
        let theme = dir.path().join("theme.toml");
        let _ = flowtrace::tui::theme::load(
            theme.to_str(),
            None,
            flowtrace::tui::theme::TerminalSupport::FULL,
        );
        let _ = flowtrace::tui::config::Config::load(Some(dir.path()));
    }
}

/// Runs `work` on its own thread and waits for it with a generous limit: the input must be
/// answered, however long it takes on a slow machine, and not loop or exhaust the stack.
fn completes(what: &str, work: impl FnOnce() + Send + 'static) {
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .stack_size(8 << 20)
        .spawn(move || {
            work();
            let _ = done.send(());
        })
        .unwrap();
    assert!(
        finished
            .recv_timeout(std::time::Duration::from_secs(120))
            .is_ok(),
        "{what} did not complete"
    );
}

#[test]
fn pathological_sizes_complete() {
    completes("a 4 MB field in a flow line", || {
        let big = "x".repeat(4 << 20);
        let line = format!(
            r#"{{"source_name":"{big}","dest_name":"d","protocol":"tcp","reporter":"Src"}}"#
        );
        let _ = flowtrace::flows::parse_flow_line(&line);
    });
    completes("100,000 labels on one endpoint", || {
        let labels: Vec<String> = (0..100_000).map(|i| format!("k{i}=v{i}")).collect();
        let line = format!(
            r#"{{"source_name":"s","source_labels":"{}","dest_name":"d","protocol":"tcp","reporter":"Src"}}"#,
            labels.join(" | ")
        );
        assert!(flowtrace::flows::parse_flow_line(&line).is_ok());
    });
    completes("a selector of 20,000 terms", || {
        let terms: Vec<String> = (0..20_000).map(|i| format!("k{i} == 'v'")).collect();
        assert!(Selector::parse(&terms.join(" && ")).is_ok());
    });
    completes("a filter of 20,000 terms", || {
        let terms: Vec<String> = (0..20_000).map(|i| format!("port={}", i % 65535)).collect();
        assert!(Filter::parse(&terms.join(" or ")).is_ok());
    });
    completes("a policy of 20,000 rules", || {
        let mut text = String::from(
            "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {name: big}\nspec:\n  selector: all()\n  ingress:\n",
        );
        for i in 0..20_000 {
            text.push_str(&format!(
                "  - action: Allow\n    protocol: TCP\n    destination: {{ports: [{}]}}\n",
                i % 65535 + 1
            ));
        }
        let (set, report) = flowtrace::policy::load_str("big.yaml", &text);
        assert!(report.errors.is_empty(), "{report:?}");
        assert_eq!(set.policies()[0].ingress.len(), 20_000);
    });
    completes("lint of a manifest with 5,000 objects", || {
        let text: String = (0..5_000)
            .map(|i| format!("---\napiVersion: projectcalico.org/v3\nkind: NetworkPolicy\nmetadata: {{name: p{i}, namespace: n}}\nspec:\n  selector: app == 'x'\n  ingress: [{{action: Allow}}]\n"))
            .collect();
        let mut errors = Vec::new();
        let objects =
            flowtrace::policy::load::objects(std::path::Path::new("m.yaml"), &text, &mut errors);
        let findings =
            flowtrace::lint::lint(&objects, &flowtrace::lint::Rules::default(), None).unwrap();
        assert_eq!(findings.len(), 5_000);
    });
}
