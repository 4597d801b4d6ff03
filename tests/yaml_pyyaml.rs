//! The YAML reader against the real PyYAML `CSafeLoader`, which the Supervisor reads configs
//! with: every YAML file of the corpus, thousands of generated scalars and a set of documents
//! with anchors, merge keys and tags must come out as the same typed values, or fail in both.
//!
//! Needs `python3` with PyYAML (Debian's `python3-yaml`); skipped without it unless
//! `REQUIRE_PYYAML=1`.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use addon_sandbox::source::{self, Format, Node, SourceError, Value, python_float};
use serde_json::{Value as Json, json};

/// Loads each document of a JSON list with PyYAML and prints one typed encoding per document.
const PYTHON: &str = r#"
import datetime, json, sys, yaml
Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
def enc(v):
    if v is None: return ["null"]
    if isinstance(v, bool): return ["bool", v]
    if isinstance(v, int): return ["int", str(v)]
    if isinstance(v, float): return ["float", repr(v)]
    if isinstance(v, str): return ["str", v]
    if isinstance(v, datetime.date): return ["date", str(v)]
    if isinstance(v, list): return ["seq", [enc(x) for x in v]]
    if isinstance(v, dict): return ["map", [[enc(k), enc(x)] for k, x in v.items()]]
    return ["other", type(v).__name__]
out = []
for doc in json.load(sys.stdin):
    try:
        out.append(enc(yaml.load(doc, Loader=Loader)))
    except Exception as e:
        out.append(["error", type(e).__name__ + ": " + str(e).splitlines()[0]])
json.dump(out, sys.stdout)
"#;

fn python() -> Option<PathBuf> {
    for candidate in ["/usr/bin/python3", "python3"] {
        let ok = Command::new(candidate)
            .args(["-c", "import yaml"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            return Some(PathBuf::from(candidate));
        }
    }
    if std::env::var("REQUIRE_PYYAML").as_deref() == Ok("1") {
        panic!("REQUIRE_PYYAML=1 but no python3 with PyYAML (apt-get install python3-yaml)");
    }
    eprintln!("skipped: no python3 with PyYAML (set REQUIRE_PYYAML=1 to fail instead)");
    None
}

fn pyyaml(python: &Path, docs: &[String]) -> Vec<Json> {
    let mut child = Command::new(python)
        .args(["-c", PYTHON])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start python3");
    let input = serde_json::to_vec(docs).unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let output = child.wait_with_output().expect("python3 output");
    writer.join().unwrap().expect("write to python3");
    assert!(output.status.success(), "python3 failed");
    serde_json::from_slice(&output.stdout).expect("python3 JSON")
}

/// The same encoding of our tree. Duplicate keys collapse as in a Python dict: the first
/// key's place, the last key's value.
fn encode(node: &Node) -> Json {
    match &node.value {
        Value::Null => json!(["null"]),
        Value::Bool(b) => json!(["bool", b]),
        Value::Int(i) => json!(["int", i.to_string()]),
        Value::Float(f) => json!(["float", python_float(*f)]),
        Value::Str(s) => json!(["str", s]),
        Value::Timestamp(s) => json!(["date", s]),
        Value::Seq(items) => json!(["seq", items.iter().map(encode).collect::<Vec<_>>()]),
        Value::Map(entries) => {
            let mut pairs: Vec<(Json, Json)> = Vec::new();
            for (k, v) in entries {
                let (k, v) = (encode(k), encode(v));
                match pairs.iter_mut().find(|(key, _)| *key == k) {
                    Some(pair) => pair.1 = v,
                    None => pairs.push((k, v)),
                }
            }
            json!([
                "map",
                pairs
                    .into_iter()
                    .map(|(k, v)| json!([k, v]))
                    .collect::<Vec<_>>()
            ])
        }
    }
}

fn ours(doc: &str) -> Json {
    match source::parse(doc, Format::Yaml) {
        Ok(node) => encode(&node),
        // PyYAML reads an empty document as None.
        Err(SourceError::Empty) => json!(["null"]),
        Err(err) => json!(["error", err.to_string()]),
    }
}

/// Compare every document; return the disagreements, described.
fn disagreements(docs: &[String], theirs: &[Json]) -> Vec<String> {
    assert_eq!(docs.len(), theirs.len());
    let mut out = Vec::new();
    for (doc, theirs) in docs.iter().zip(theirs) {
        let ours = ours(doc);
        let both_fail = ours[0] == "error" && theirs[0] == "error";
        if !both_fail && ours != *theirs {
            out.push(format!("{doc:?}\n  ours:   {ours}\n  PyYAML: {theirs}"));
        }
    }
    out
}

fn assert_agree(docs: &[String], theirs: &[Json]) {
    assert_none_differ(&disagreements(docs, theirs), docs.len());
}

/// Fail naming the first twenty disagreements, if there are any.
fn assert_none_differ(bad: &[String], total: usize) {
    assert!(
        bad.is_empty(),
        "{} of {total} documents differ from PyYAML:\n{}",
        bad.len(),
        bad.iter().take(20).cloned().collect::<Vec<_>>().join("\n")
    );
}

fn owned(docs: &[&str]) -> Vec<String> {
    docs.iter().map(|s| s.to_string()).collect()
}

/// An endless, deterministic stream of strings, each 1 to `max_pieces` pieces picked by a
/// xorshift generator from `seed`.
fn assembled<'a>(
    pieces: &'a [&'a str],
    seed: u64,
    max_pieces: u64,
) -> impl Iterator<Item = String> + 'a {
    let mut state = seed;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    std::iter::repeat_with(move || {
        let len = 1 + next() % max_pieces;
        (0..len)
            .map(|_| pieces[(next() % pieces.len() as u64) as usize])
            .collect()
    })
}

fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            yaml_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            out.push(path);
        }
    }
}

#[test]
#[cfg_attr(
    not(corpus),
    ignore = "no corpus: set ADDON_SANDBOX_CORPUS (see docs/testing.md)"
)]
fn every_corpus_yaml_file_reads_as_pyyaml_reads_it() {
    let Some(corpus) = common::corpus_dir() else {
        return;
    };
    let Some(python) = python() else { return };
    let mut files = Vec::new();
    yaml_files(&corpus, &mut files);
    files.sort();
    let docs: Vec<String> = files
        .iter()
        .filter_map(|f| std::fs::read_to_string(f).ok())
        .collect();
    assert!(docs.len() > 400, "only {} YAML files", docs.len());
    assert_agree(&docs, &pyyaml(&python, &docs));
}

/// A deterministic stream of scalar spellings built from the characters that decide typing.
fn generated_scalars(count: usize) -> Vec<String> {
    const PIECES: [&str; 40] = [
        "0", "1", "2", "5", "7", "8", "9", "00", "12", "60", "2024", "-", "+", ".", "_", ":", "e",
        "E", "x", "b", "o", "a", "f", "F", "T", "t", "Z", " ", "inf", "Inf", "nan", "NaN", "yes",
        "No", "on", "OFF", "null", "~", "<<", "=",
    ];
    assembled(&PIECES, 0x9e37_79b9_7f4a_7c15, 5)
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .take(count)
        .collect()
}

#[test]
fn scalars_type_as_pyyaml_types_them() {
    let Some(python) = python() else { return };
    let mut scalars: Vec<String> = owned(&[
        "yes",
        "Yes",
        "YES",
        "y",
        "n",
        "on",
        "Off",
        "true",
        "TRUE",
        "tRUE",
        "null",
        "Null",
        "NULL",
        "nULL",
        "~",
        "",
        "0",
        "-0",
        "+0",
        "0755",
        "08",
        "0o17",
        "0x1F",
        "0xff_ff",
        "0b101",
        "0b_",
        "0x_",
        "1_000",
        "1_000_",
        "1:30",
        "1:60",
        "0:30",
        "-1:00:01",
        "1.0",
        "1.",
        ".5",
        "-.5",
        "+1.5",
        "1e5",
        "1.0e5",
        "1.0e+5",
        "1.E-2",
        "1:30.5",
        ".inf",
        "-.Inf",
        "+.INF",
        ".nan",
        ".NaN",
        "-.nan",
        "1.2.3",
        "._5",
        "2024-01-02",
        "2024-1-2",
        "2023-02-29",
        "2024-02-29",
        "2024-13-01",
        "2001-12-14t21:59:43.10-05:00",
        "2001-12-14 21:59:43.10 -5",
        "2001-1-2 1:02:03Z",
        "2002-12-14T01:02:03",
        "2024-01-01 25:00:00",
        "1e400",
        "<<",
        "=",
    ]);
    scalars.extend(generated_scalars(4000));
    let mut docs = Vec::new();
    for s in &scalars {
        docs.push(format!("v: {s}\n"));
        docs.push(format!("- {s}\n"));
        docs.push(format!("{s}: k\n"));
        docs.push(format!("v: '{s}'\n"));
        docs.push(format!("v: ! {s}\n"));
    }
    assert_agree(&docs, &pyyaml(&python, &docs));
}

#[test]
fn structure_anchors_merges_and_tags_as_pyyaml_builds_them() {
    let Some(python) = python() else { return };
    let docs: Vec<String> = owned(&[
        "a: 1\na: 2\nb: 3\n",
        "base: &b {x: 1, y: 2}\none: {<<: *b, x: 9}\n",
        "b1: &b1 {x: 1, y: 2}\nb2: &b2 {y: 3, z: 4}\nm: {<<: [*b1, *b2], w: 0}\n",
        "b: &b {x: 1}\nm:\n  <<: *b\n  <<: {x: 2, q: 1}\n",
        "m: {<<: 1}\n",
        "m: {<<: [1]}\n",
        "v: <<\n",
        "- <<\n",
        "=: 1\n",
        "v: =\n",
        "s: &s hello\nt: *s\nl: &l [1, [2, &i 3]]\nm: *l\nn: *i\n",
        "a: !!str 5\nb: !!int '0x10'\nc: !!float '1'\nd: !!bool 'on'\ne: !!null x\n",
        "a: !!int x\n",
        "a: !!bool maybe\n",
        "a: !custom 1\n",
        "a: !!timestamp 2024-01-02\n",
        "a: !!seq [1]\nb: !!map {c: 1}\n",
        "1: one\n1.5: x\nfalse: f\n~: n\n2024-01-02: d\n",
        ": x\n",
        "- :\n",
        "a: !\nb: ! ''\n",
        "---\na: 1\n",
        "---\na: 1\n---\nb: 2\n",
        "# only a comment\n",
        "---\n",
        "a: |\n  line 1\n  line 2\nb: >\n  folded\n  text\n",
        "a: \"tab\\there \\u00e9\"\nb: 'it''s'\n",
        "a: [1, 2\n",
        "a:\n\t- 1\n",
        "name: x\nslug: y\nversion: 1.10\noptions: {a: null, b: [1, 2]}\n",
    ]);
    assert_agree(&docs, &pyyaml(&python, &docs));
}

/// Random documents assembled from the pieces of YAML syntax (indentation, flow and block
/// collections, anchors, aliases, merges, tags, quotes, block scalars, comments, documents).
/// Where both read one, the values are the same. Where PyYAML refuses one, so do we, or its
/// top is not a mapping (no config at all). We refuse some that PyYAML reads (a tab at the
/// start of a line, where we cannot tell a wrapped scalar from indentation; an explicit `?`
/// key; a comment glued to a token; a few corners where the YAML 1.2 parser is stricter than
/// libyaml): that fails closed, and stays under one in twenty of these adversarial documents.
#[test]
fn generated_documents_read_as_pyyaml_reads_them() {
    let Some(python) = python() else { return };
    const PIECES: [&str; 32] = [
        "a",
        ": ",
        "- ",
        "\n",
        "  ",
        "&x ",
        "*x",
        "<<",
        "[",
        "]",
        "{",
        "}",
        ",",
        "? ",
        "!!str ",
        "! ",
        "'q'",
        "\"d\"",
        "|\n ",
        ">",
        "1",
        "0x",
        ":",
        "#c",
        "---\n",
        "~",
        "=",
        "!!int ",
        "&y ",
        "*y",
        "\t",
        "2024-01-02",
    ];
    let docs: Vec<String> = assembled(&PIECES, 88_172_645_463_325_252, 40)
        .take(20000)
        .collect();
    let theirs = pyyaml(&python, &docs);
    let mut read_by_both = 0;
    let mut mappings_compared = 0;
    let mut stricter = 0;
    let mut bad = Vec::new();
    for (doc, theirs) in docs.iter().zip(&theirs) {
        let ours = ours(doc);
        let verdict = match (ours[0].as_str(), theirs[0].as_str()) {
            (Some("error"), Some("error")) => Ok(()),
            (Some("error"), _) => {
                // Failing closed; bounded below.
                stricter += 1;
                Ok(())
            }
            (Some("map"), Some("error")) => Err("read a mapping PyYAML refuses"),
            (_, Some("error")) => Ok(()),
            (a, b) => {
                read_by_both += 1;
                if a != Some("map") && b != Some("map") {
                    // Neither top is a mapping: no config either way.
                    Ok(())
                } else {
                    mappings_compared += 1;
                    if ours == *theirs {
                        Ok(())
                    } else {
                        Err("different values")
                    }
                }
            }
        };
        if let Err(what) = verdict {
            bad.push(format!(
                "{what}: {doc:?}\n  ours:   {ours}\n  PyYAML: {theirs}"
            ));
        }
    }
    assert!(
        read_by_both > 2000,
        "only {read_by_both} documents read by both"
    );
    assert!(mappings_compared > 200, "only {mappings_compared} mappings");
    assert!(
        stricter < docs.len() / 20,
        "{stricter} refused that PyYAML reads"
    );
    assert_none_differ(&bad, docs.len());
}

/// Where we refuse what PyYAML builds: types no add-on config can use, integers beyond 128
/// bits and explicit `?` keys. Each fails closed here, with a message saying why. (A tab at
/// the start of a line that PyYAML reads as part of a scalar is refused too: see the generated
/// documents. So is a recursive alias, which PyYAML builds as a self-containing list: see the
/// unit tests.)
#[test]
fn stricter_than_pyyaml_only_where_said() {
    let Some(python) = python() else { return };
    let docs: Vec<String> = owned(&[
        "a: !!binary aGVsbG8=\n",
        "a: !!set {x, y}\n",
        "a: !!omap [{x: 1}]\n",
        "? a\n: x\n",
        "? \n: x\n",
        "a: 99999999999999999999999999999999999999999\n",
    ]);
    let theirs = pyyaml(&python, &docs);
    for (doc, theirs) in docs.iter().zip(&theirs) {
        assert_ne!(theirs[0], "error", "PyYAML builds {doc:?}");
        let ours = ours(doc);
        assert_eq!(ours[0], "error", "{doc:?}: {ours}");
    }
}
