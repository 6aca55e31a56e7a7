//! Goldmane's messages, its `Flows` client and the fake's server side are generated from Calico's
//! `api.proto` (one copy per wire version) by protox and tonic-prost-build, both pure Rust, and
//! the output is committed: builds need neither `protoc` nor the `.proto` files.
//!
//! This test regenerates everything from the reference copies and fails if the committed files
//! differ; `UPDATE_GENERATED=1` rewrites them instead. The copies are looked up in
//! `$FLOWTRACE_GOLDMANE_PROTOS` or else `../shared/reference/calico/goldmane` beside the
//! repository; a checkout without them says so and checks nothing here (the generated types are
//! still held to the wire by `source::goldmane::proto`'s tests).
//!
//! Messages that are the same on the wire in both versions are generated once, in 3.32's module,
//! and 3.30's refers to them (`proto::common`): the versions differ only where a request carries
//! a `Filter` or `PolicyMatch`. Enums count as the same when their values are; an enum field's
//! number is read by version in `source::goldmane`, so a message whose fields only name a
//! differing enum (`PolicyHit.kind`) is still shared.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use prost_types::{field_descriptor_proto::Type, DescriptorProto, FileDescriptorSet};

const LIB_DIR: &str = "src/source/goldmane/proto";
const SERVER_DIR: &str = "tests/support/goldmane_server";
const LIB_PATH: &str = "crate::source::goldmane::proto";
const TEST_PATH: &str = "::flowtrace::source::goldmane::proto";

/// (module, reference folder) per wire version; the first is the one that owns shared types.
const VERSIONS: [(&str, &str); 2] = [("v3_32", "v3.32"), ("v3_30", "v3.30-v3.31")];

fn reference_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("FLOWTRACE_GOLDMANE_PROTOS") {
        let dir = PathBuf::from(dir);
        assert!(
            dir.is_dir(),
            "FLOWTRACE_GOLDMANE_PROTOS: {} is not a folder",
            dir.display()
        );
        return Some(dir);
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/reference/calico/goldmane");
    dir.is_dir().then_some(dir)
}

/// The file's descriptors, with only the `Flows` service: flowtrace reads flows, it neither
/// collects them (`FlowCollector`) nor asks for statistics (`Statistics`).
fn compile(dir: &Path) -> FileDescriptorSet {
    let mut set = protox::compile(["api.proto"], [dir])
        .unwrap_or_else(|e| panic!("{}: {e}", dir.join("api.proto").display()));
    set.file[0].service.retain(|s| s.name() == "Flows");
    assert_eq!(
        set.file[0].service.len(),
        1,
        "{}: no Flows service",
        dir.display()
    );
    set
}

/// The message and enum names (`Flow`, `Action`) the two sets define identically on the wire.
fn shared_names(newer: &FileDescriptorSet, older: &FileDescriptorSet) -> BTreeSet<String> {
    let messages = |set: &FileDescriptorSet| -> BTreeMap<String, DescriptorProto> {
        set.file[0]
            .message_type
            .iter()
            .map(|m| (m.name().to_string(), m.clone()))
            .collect()
    };
    let enums = |set: &FileDescriptorSet| -> BTreeMap<String, Vec<(String, i32)>> {
        set.file[0]
            .enum_type
            .iter()
            .map(|e| {
                let values = e
                    .value
                    .iter()
                    .map(|v| (v.name().to_string(), v.number()))
                    .collect();
                (e.name().to_string(), values)
            })
            .collect()
    };
    let (new_messages, old_messages) = (messages(newer), messages(older));
    let (new_enums, old_enums) = (enums(newer), enums(older));
    let mut shared: BTreeSet<String> = new_enums
        .iter()
        .filter(|(name, values)| old_enums.get(*name) == Some(values))
        .map(|(name, _)| name.clone())
        .collect();
    // Same fields, and every message a field holds is itself shared: repeat until nothing changes.
    let mut candidates: BTreeSet<&String> = new_messages
        .iter()
        .filter(|(name, m)| old_messages.get(*name) == Some(m))
        .map(|(name, _)| name)
        .collect();
    loop {
        let before = candidates.len();
        let held = candidates.clone();
        candidates.retain(|name| {
            new_messages[*name].field.iter().all(|f| {
                f.r#type() != Type::Message
                    || held.contains(&f.type_name().trim_start_matches(".goldmane.").to_string())
            })
        });
        if candidates.len() == before {
            break;
        }
    }
    shared.extend(candidates.into_iter().cloned());
    shared
}

fn generate(
    set: &FileDescriptorSet,
    out: &Path,
    server: bool,
    extern_paths: &[(String, String)],
) -> String {
    let mut config = prost_build::Config::new();
    config.disable_comments(["."]);
    let mut builder = tonic_prost_build::configure()
        .out_dir(out)
        .build_client(!server)
        .build_server(server)
        .build_transport(false)
        .disable_comments(["."]);
    for (proto, rust) in extern_paths {
        builder = builder.extern_path(proto, rust);
    }
    builder
        .compile_fds_with_config(set.clone(), config)
        .unwrap();
    let text = std::fs::read_to_string(out.join("goldmane.rs")).unwrap();
    format!(
        "// @generated by tests/goldmane_codegen.rs from Calico's goldmane api.proto: do not edit.\n{text}"
    )
}

#[test]
fn generated_goldmane_code_matches_the_reference_protos() {
    let Some(reference) = reference_dir() else {
        eprintln!(
            "skipped: no Goldmane reference protos (set FLOWTRACE_GOLDMANE_PROTOS to a folder \
             holding v3.32/ and v3.30-v3.31/)"
        );
        return;
    };
    let sets: Vec<FileDescriptorSet> = VERSIONS
        .iter()
        .map(|(_, folder)| compile(&reference.join(folder)))
        .collect();
    let shared = shared_names(&sets[0], &sets[1]);
    for required in ["FlowResult", "Flow", "FlowKey", "PolicyHit", "Action"] {
        assert!(
            shared.contains(required),
            "{required} should be shared: {shared:?}"
        );
    }
    for differing in [
        "Filter",
        "PolicyMatch",
        "PolicyKind",
        "FilterType",
        "FlowListRequest",
    ] {
        assert!(
            !shared.contains(differing),
            "{differing} differs between versions"
        );
    }

    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    // `proto::common` re-exports exactly the shared types (3.30's module refers to them there).
    let module = std::fs::read_to_string(root.join(LIB_DIR).join("mod.rs")).unwrap();
    let listed = module
        .split_once("pub use super::v3_32::{")
        .and_then(|(_, rest)| rest.split_once('}'))
        .map(|(list, _)| list)
        .expect("proto/mod.rs re-exports 3.32's shared types in `common`");
    let listed: BTreeSet<String> = listed
        .split(',')
        .map(|name| name.trim().to_string())
        .filter(|name| !name.is_empty())
        .collect();
    assert_eq!(
        listed, shared,
        "proto::common should re-export the shared types"
    );
    let update = std::env::var_os("UPDATE_GENERATED").is_some_and(|v| v == "1");
    let mut stale = Vec::new();
    for (index, (module, _)) in VERSIONS.iter().enumerate() {
        let older = index > 0;
        for server in [false, true] {
            // The library's modules name its own paths; the test server names the library's.
            let mut extern_paths = Vec::new();
            if server {
                extern_paths.push((".goldmane".to_string(), format!("{TEST_PATH}::{module}")));
            }
            if older {
                let base = if server { TEST_PATH } else { LIB_PATH };
                for name in &shared {
                    extern_paths.push((
                        format!(".goldmane.{name}"),
                        format!("{base}::common::{name}"),
                    ));
                }
            }
            let out = tempfile::tempdir().unwrap();
            let text = generate(&sets[index], out.path(), server, &extern_paths);
            let dir = if server { SERVER_DIR } else { LIB_DIR };
            let path = root.join(dir).join(format!("{module}.rs"));
            if update {
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(&path, &text).unwrap();
            } else if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
                stale.push(path.display().to_string());
            }
        }
    }
    assert!(
        stale.is_empty(),
        "generated Goldmane code is out of date: {stale:?} (run this test with UPDATE_GENERATED=1)"
    );
}
