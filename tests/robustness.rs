//! Hostile and broken input: every case ends in a clear diagnostic, never a panic or a hang.

mod common;

use std::time::{Duration, Instant};

use proptest::prelude::*;

use addon_sandbox::addon;
use addon_sandbox::source::{self, Format};

fn load_yaml(text: &[u8]) -> addon::Addon {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("config.yaml"), text).unwrap();
    addon::load(dir.path())
}

fn first_error(a: &addon::Addon) -> String {
    a.errors().next().map(|d| d.to_string()).unwrap_or_default()
}

#[test]
fn billion_laughs_is_rejected_quickly() {
    let mut doc = String::from(
        "a0: &a0 [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
    );
    for i in 1..10 {
        let refs = vec![format!("*a{}", i - 1); 9].join(",");
        doc.push_str(&format!("a{i}: &a{i} [{refs}]\n"));
    }
    doc.push_str("name: x\n");
    let started = Instant::now();
    let a = load_yaml(doc.as_bytes());
    let took = started.elapsed();
    assert!(!a.valid());
    let msg = first_error(&a);
    assert!(msg.contains("invalid YAML"), "{msg}");
    assert!(
        msg.contains("aliases included"),
        "the node budget stops it: {msg}"
    );
    // A budget stops it after a few thousand events; expanding it would take minutes and GiBs.
    assert!(took < Duration::from_secs(2), "took {took:?}");
}

#[test]
fn tens_of_thousands_of_keys_are_read_with_every_repeat_named() {
    // Sorted, not compared pairwise: this takes milliseconds, not the seconds of n².
    let mut doc = common::minimal("");
    for i in 0..30_000 {
        doc.push_str(&format!("x{i}: 1\n"));
    }
    doc.push_str("x7: 2\nx29999: 3\nname: again\n");
    let a = load_yaml(doc.as_bytes());
    let repeated: Vec<String> = a
        .warnings()
        .filter(|d| d.message.contains("is repeated"))
        .map(|d| d.message.clone())
        .collect();
    assert_eq!(repeated.len(), 3, "{repeated:?}");
    assert!(repeated[0].contains("'name'"), "file order: {repeated:?}");
    assert!(repeated[1].contains("'x7'") && repeated[2].contains("'x29999'"));
    assert_eq!(a.config.as_ref().map(|c| c.name.as_str()), Some("again"));
}

#[test]
fn deep_nesting_is_rejected() {
    let doc = format!("name: x\nschema: {}{}\n", "[".repeat(500), "]".repeat(500));
    let a = load_yaml(doc.as_bytes());
    assert!(!a.valid());
    assert!(
        first_error(&a).contains("invalid YAML"),
        "{}",
        first_error(&a)
    );
}

#[test]
fn non_utf8_file_names_the_place() {
    let a = load_yaml(b"name: ok\nslug: caf\xe9\n");
    assert!(!a.valid());
    let d = a.errors().next().unwrap();
    assert!(d.message.contains("not valid UTF-8"), "{d}");
    assert_eq!((d.line, d.column), (2, 10));
}

#[test]
fn empty_file_is_an_error() {
    for text in ["", "   \n\n", "# only a comment\n"] {
        let a = load_yaml(text.as_bytes());
        assert!(!a.valid(), "{text:?}");
        let msg = first_error(&a);
        assert!(
            msg.contains("empty") || msg.contains("mapping"),
            "{text:?}: {msg}"
        );
    }
}

#[test]
fn folder_without_config_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let a = addon::load(dir.path());
    assert!(!a.valid());
    assert!(first_error(&a).contains("no config.yaml"));
    let err = addon::resolve(dir.path()).unwrap_err();
    assert!(err.message.contains("no add-on here"), "{err}");
}

#[test]
fn two_valid_config_files_in_one_folder_is_an_error() {
    // The Supervisor's store would make two add-ons of one folder (or pick one by the order the
    // filesystem lists them): never what the author meant. (One valid among invalid ones is the
    // add-on, as the store skips the invalid: tests/edge_cases.rs.)
    let dir = common::addon_dir(&common::minimal(""));
    std::fs::write(
        dir.path().join("config.json"),
        r#"{"name": "T", "version": "1", "slug": "other", "description": "d", "arch": ["amd64"]}"#,
    )
    .unwrap();
    let a = addon::load(dir.path());
    assert!(!a.valid());
    let msg = first_error(&a);
    assert!(
        msg.contains("config.json") && msg.contains("config.yaml"),
        "{msg}"
    );
}

#[test]
fn ten_megabyte_config_is_refused_before_parsing() {
    let mut doc = common::minimal("");
    doc.push_str("options:\n");
    while doc.len() < 10 * 1024 * 1024 {
        doc.push_str(&format!("  k{}: \"{}\"\n", doc.len(), "x".repeat(200)));
    }
    let started = Instant::now();
    let a = load_yaml(doc.as_bytes());
    assert!(!a.valid());
    let msg = first_error(&a);
    assert!(msg.contains("larger than"), "{msg}");
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[test]
fn syntax_errors_point_at_the_line() {
    let a = load_yaml(b"name: x\nversion: 1\nmap: [share, ssl\nslug: y\n");
    let d = a.errors().next().expect("an error");
    assert!(d.message.contains("invalid YAML"), "{d}");
    assert!(d.line >= 3, "{d}");
    let json = {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("config.json"),
            "{\n  \"name\": \"x\",\n  \"slug\": \n}",
        )
        .unwrap();
        addon::load(dir.path())
    };
    let d = json.errors().next().expect("an error");
    assert_eq!(d.line, 4, "{d}");
}

#[test]
fn a_config_that_is_not_a_mapping_is_an_error() {
    for text in ["- a\n- b\n", "just a string\n", "42\n"] {
        let a = load_yaml(text.as_bytes());
        assert!(!a.valid());
        assert!(
            first_error(&a).contains("must be a mapping"),
            "{text}: {}",
            first_error(&a)
        );
    }
}

#[test]
fn repository_discovery_skips_hidden_and_rootfs() {
    let repo = tempfile::tempdir().unwrap();
    let make = |rel: &str| {
        let d = repo.path().join(rel);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("config.yaml"), common::minimal("")).unwrap();
    };
    make("one");
    make("nested/two");
    make(".hidden/three");
    make("one/rootfs/etc");
    let found = addon::discover(repo.path());
    let names: Vec<String> = found
        .iter()
        .map(|p| p.strip_prefix(repo.path()).unwrap().display().to_string())
        .collect();
    assert_eq!(names, vec!["nested/two", "one"]);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Arbitrary bytes never panic the reader, in either format.
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        if let Ok(text) = source::decode(&bytes) {
            let _ = source::parse(text, Format::Yaml);
            let _ = source::parse(text, Format::Json);
        }
    }

    /// Configs assembled from real keys and hostile values never panic the validator and
    /// always give a verdict: valid with no error, or invalid with at least one error.
    #[test]
    fn assembled_configs_get_a_verdict(
        entries in proptest::collection::vec(
            (
                prop::sample::select(addon_sandbox::config::validate::KNOWN_KEYS.to_vec()),
                prop::sample::select(vec![
                    "true", "\"False\"", "0", "-1", "65536", "1.5", "null", "[]", "{}", "\"\"",
                    "[share, \"ssl:rw\", {type: media, path: /x}]", "{a: 1}", "\"x\\ny\"",
                    "\"/dev/ttyUSB0:/dev/ttyUSB0:rwm\"", "[\"8080/tcp\"]", "{\"8080/tcp\": 8080}",
                    "\"ghcr.io/a/b\"", "&a [*a]", "!!binary aGVsbG8=", "\"mqtt:want\"", "~",
                ]),
            ),
            0..12,
        )
    ) {
        let mut doc = String::new();
        for (k, v) in &entries {
            doc.push_str(&format!("{k}: {v}\n"));
        }
        let a = load_yaml(doc.as_bytes());
        let has_error = a.errors().next().is_some();
        prop_assert_eq!(a.valid(), !has_error);
        prop_assert_eq!(a.valid(), a.config.is_some());
    }
}
