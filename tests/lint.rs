//! `lint`: every rule fires on a config that breaks its practice and not on one that keeps it;
//! every one-line fix, applied to the file, makes its finding go and moves the rating by
//! exactly what the finding said (on the cases here and on every corpus add-on); the SARIF of
//! the whole corpus validates against the SARIF 2.1.0 schema; the command's formats and exit
//! status; a reviewed snapshot of the human output.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use addon_sandbox::addon;
use addon_sandbox::lint::{self, Finding, Report, rules};
use serde_json::Value;

/// A config line `apparmor.txt` that compiles and allows little.
const NARROW_PROFILE: &str =
    "profile test flags=(attach_disconnected,mediate_deleted) {\n  /data/** rw,\n}\n";
const SCRIPT_OWN_INFO: &str = "#!/usr/bin/with-contenv bashio\nname=$(bashio::addon.name)\n";
const SCRIPT_NO_API: &str = "#!/usr/bin/with-contenv bashio\nport=$(bashio::config 'port')\n";
const SCRIPT_MANAGER: &str = "#!/usr/bin/with-contenv bashio\nbashio::addons.stop other_addon\n";
const RUN: &str = "rootfs/etc/services.d/x/run";

/// A rule, a config (extra lines and files) that breaks its practice, and one that keeps it.
struct Case {
    rule: &'static str,
    yes: &'static str,
    yes_files: &'static [(&'static str, &'static str)],
    no: &'static str,
    no_files: &'static [(&'static str, &'static str)],
}

const fn case(rule: &'static str, yes: &'static str, no: &'static str) -> Case {
    Case {
        rule,
        yes,
        yes_files: &[],
        no,
        no_files: &[],
    }
}

const CASES: &[Case] = &[
    case("check-error", "startup: sometimes\n", "startup: services\n"),
    case(
        "check-warning",
        "backup: cold\nbackup_pre: /bin/true\n",
        "backup: cold\n",
    ),
    case(
        "host-network",
        "host_network: true\n",
        "host_network: false\n",
    ),
    case("apparmor-disabled", "apparmor: false\n", "apparmor: true\n"),
    Case {
        rule: "apparmor-permissive",
        yes: "",
        yes_files: &[(
            "apparmor.txt",
            "profile test flags=(attach_disconnected) {\n  file,\n  capability,\n}\n",
        )],
        no: "",
        no_files: &[("apparmor.txt", NARROW_PROFILE)],
    },
    Case {
        rule: "apparmor-missing",
        yes: "",
        yes_files: &[],
        no: "",
        no_files: &[("apparmor.txt", NARROW_PROFILE)],
    },
    case("map-rw", "map:\n  - share:rw\n", "map:\n  - share\n"),
    Case {
        rule: "api-role-broad",
        yes: "hassio_api: true\nhassio_role: manager\n",
        yes_files: &[(RUN, SCRIPT_OWN_INFO)],
        no: "hassio_api: true\nhassio_role: manager\n",
        no_files: &[(RUN, SCRIPT_MANAGER)],
    },
    Case {
        rule: "api-unused",
        yes: "hassio_api: true\n",
        yes_files: &[(RUN, SCRIPT_NO_API)],
        no: "hassio_api: true\nhassio_role: manager\n",
        no_files: &[(RUN, SCRIPT_MANAGER)],
    },
    Case {
        rule: "image-unsigned",
        yes: "image: ghcr.io/example/{arch}-test\n",
        yes_files: &[(
            "build.yaml",
            "build_from:\n  amd64: ghcr.io/home-assistant/amd64-base:3.20\n",
        )],
        no: "image: ghcr.io/example/{arch}-test\n",
        no_files: &[(
            "build.yaml",
            "cosign:\n  identity: https://github.com/example/test/.*\n",
        )],
    },
    case(
        "credential-plaintext",
        "options:\n  mqtt_password: \"\"\nschema:\n  mqtt_password: str\n",
        "options:\n  mqtt_password: \"\"\nschema:\n  mqtt_password: password\n",
    ),
    case(
        "own-login",
        "ports:\n  8080/tcp: 8080\noptions:\n  username: a\n  password: b\nschema:\n  username: str\n  password: password\n",
        "auth_api: true\nports:\n  8080/tcp: 8080\noptions:\n  username: a\n  password: b\nschema:\n  username: str\n  password: password\n",
    ),
    case("full-access", "full_access: true\n", "full_access: false\n"),
    case("docker-api", "docker_api: true\n", "docker_api: false\n"),
    case("host-pid", "host_pid: true\n", "host_pid: false\n"),
    case("host-ipc", "host_ipc: true\n", "host_ipc: false\n"),
    case("host-uts", "host_uts: true\n", "host_uts: false\n"),
    case("host-dbus", "host_dbus: true\n", "host_dbus: false\n"),
    case(
        "kernel-modules",
        "kernel_modules: true\n",
        "kernel_modules: false\n",
    ),
    case(
        "privileged-capability",
        "privileged:\n  - SYS_ADMIN\n",
        "privileged:\n  - SYS_NICE\n",
    ),
    case(
        "raw-device",
        "devices:\n  - /dev/sda\n",
        "devices:\n  - /dev/ttyUSB0\n",
    ),
    case(
        "admin-role",
        "hassio_role: admin\n",
        "hassio_role: manager\n",
    ),
    case(
        "deprecated-key",
        "codenotary: someone@example.com\n",
        "startup: services\n",
    ),
];

/// An add-on folder with the minimal config plus `extra`, and the files.
fn folder(extra: &str, files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = common::addon_dir(&common::minimal(extra));
    for (name, text) in files {
        let path = dir.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    dir
}

fn lint_dir(dir: &Path) -> Report {
    lint::lint(&addon::load_with_source(dir))
}

fn fires(report: &Report, rule: &str) -> bool {
    report.findings.iter().any(|f| f.rule.id == rule)
}

#[test]
fn every_rule_fires_on_its_practice_and_not_without_it() {
    for rule in rules::ALL {
        assert!(
            CASES.iter().any(|c| c.rule == rule.id),
            "no case for rule {}",
            rule.id
        );
    }
    for c in CASES {
        let yes = folder(c.yes, c.yes_files);
        let report = lint_dir(yes.path());
        assert!(
            fires(&report, c.rule),
            "{} did not fire: {report:#?}",
            c.rule
        );
        let no = folder(c.no, c.no_files);
        let report = lint_dir(no.path());
        assert!(!fires(&report, c.rule), "{} fired: {report:#?}", c.rule);
        if c.rule != "check-error" {
            assert!(
                report.rating.is_some(),
                "{}: the keeping config is valid",
                c.rule
            );
        }
    }
}

/// A need stated on the line (`# lint: allow(RULE) why`) silences that rule there, and only
/// that rule: its fix no longer counts in the rating with every fix.
#[test]
fn a_stated_need_silences_its_rule_on_its_line() {
    let stated = folder(
        "host_network: true  # lint: allow(host-network) mDNS discovery of the devices\nhost_dbus: true # lint: allow(host-pid)\n",
        &[],
    );
    let report = lint_dir(stated.path());
    assert!(!fires(&report, "host-network"), "{report:#?}");
    assert!(
        fires(&report, "host-dbus"),
        "another rule's allow is not this one's"
    );
    let plain = folder("host_network: true\nhost_dbus: true\n", &[]);
    let plain = lint_dir(plain.path());
    assert_eq!(report.rating, plain.rating);
    assert_eq!(report.rating_fixed, Some(plain.rating_fixed.unwrap() - 1));
}

/// The rootfs scan reads regular files only: a link (to a script outside, or `rootfs` itself
/// as a link) is never followed.
#[test]
fn the_rootfs_scan_follows_no_link() {
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("run"), SCRIPT_MANAGER).unwrap();
    let dir = folder(
        "hassio_api: true\nhassio_role: manager\n",
        &[(RUN, SCRIPT_OWN_INFO)],
    );
    let linked = dir.path().join("rootfs/etc/services.d/x/linked");
    std::os::unix::fs::symlink(outside.path().join("run"), &linked).unwrap();
    // The manager call behind the link is not read: the role is still too broad.
    assert!(fires(&lint_dir(dir.path()), "api-role-broad"));
    // With rootfs itself a link there is nothing to judge.
    let other = folder("hassio_api: true\nhassio_role: manager\n", &[]);
    std::os::unix::fs::symlink(dir.path().join("rootfs"), other.path().join("rootfs")).unwrap();
    let report = lint_dir(other.path());
    assert!(!fires(&report, "api-role-broad") && !fires(&report, "api-unused"));
}

/// Apply every one-line fix of `dir`'s findings to a copy of the folder: the finding goes, and
/// the rating becomes what it said. Returns how many fixes were applied, by rule.
fn fixes_hold(dir: &Path) -> BTreeMap<&'static str, usize> {
    let report = lint_dir(dir);
    let mut applied = BTreeMap::new();
    for f in &report.findings {
        let Some(edit) = f.fix.as_ref().and_then(|x| x.edit.as_ref()) else {
            continue;
        };
        let rating = f.rating.expect("a fix says its rating change");
        assert_eq!(Some(rating.before), report.rating, "{}", f.message);
        let copy = tempfile::tempdir().unwrap();
        common::copy_tree(dir, copy.path());
        let relative = Path::new(&edit.file)
            .strip_prefix(dir)
            .expect("edit inside the folder");
        let file = copy.path().join(relative);
        let text = std::fs::read_to_string(&file).unwrap();
        std::fs::write(&file, edit.apply(&text).expect("the edit applies")).unwrap();
        let after = lint_dir(copy.path());
        assert!(
            !after.findings.iter().any(|g| same(f, g)),
            "{}: {} still there after the fix {edit:?}",
            dir.display(),
            f.message
        );
        assert_eq!(
            after.rating,
            Some(rating.after),
            "{}: {}: the fix said {} → {}",
            dir.display(),
            f.message,
            rating.before,
            rating.after
        );
        *applied.entry(f.rule.id).or_default() += 1;
    }
    applied
}

/// The same finding in another copy of the folder (the message names no folder).
fn same(a: &Finding, b: &Finding) -> bool {
    a.rule.id == b.rule.id && a.message == b.message
}

#[test]
fn every_one_line_fix_removes_its_finding_and_moves_the_rating_as_said() {
    let mut applied: BTreeMap<&str, usize> = BTreeMap::new();
    for c in CASES {
        let yes = folder(c.yes, c.yes_files);
        for (rule, n) in fixes_hold(yes.path()) {
            *applied.entry(rule).or_default() += n;
        }
    }
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/lint-addon");
    for (rule, n) in fixes_hold(&fixture) {
        *applied.entry(rule).or_default() += n;
    }
    // Every rule whose practice is one line of YAML has its fix exercised.
    for rule in [
        "host-network",
        "apparmor-disabled",
        "map-rw",
        "api-role-broad",
        "api-unused",
        "credential-plaintext",
        "own-login",
        "full-access",
        "docker-api",
        "host-pid",
        "host-ipc",
        "host-uts",
        "host-dbus",
        "kernel-modules",
        "privileged-capability",
        "raw-device",
        "admin-role",
        "deprecated-key",
    ] {
        assert!(
            applied.contains_key(rule),
            "no fix of {rule} applied: {applied:?}"
        );
    }
}

/// The fixes that are not one line (ship a profile) still say the rating our rating gives.
#[test]
fn shipping_a_profile_moves_the_rating_as_said() {
    let dir = folder("", &[]);
    let report = lint_dir(dir.path());
    let f = report
        .findings
        .iter()
        .find(|f| f.rule.id == "apparmor-missing")
        .expect("apparmor-missing");
    let said = f.rating.expect("rating change");
    std::fs::write(dir.path().join("apparmor.txt"), NARROW_PROFILE).unwrap();
    let after = lint_dir(dir.path());
    assert!(!fires(&after, "apparmor-missing"));
    assert_eq!(after.rating, Some(said.after));
    assert_eq!(said.delta(), 1);
}

#[cfg_attr(
    not(corpus),
    ignore = "no corpus: set ADDON_SANDBOX_CORPUS or put it at ../shared/corpus"
)]
#[test]
fn every_corpus_fix_removes_its_finding_and_moves_the_rating_as_said() {
    let Some(corpus) = common::corpus_dir() else {
        return;
    };
    let mut dirs = Vec::new();
    for part in ["official", "community"] {
        dirs.extend(addon::discover(&corpus.join(part)));
    }
    let mut applied: BTreeMap<&str, usize> = BTreeMap::new();
    for dir in &dirs {
        for (rule, n) in fixes_hold(dir) {
            *applied.entry(rule).or_default() += n;
        }
    }
    let total: usize = applied.values().sum();
    eprintln!("corpus fixes applied and re-linted: {total} ({applied:?})");
    assert!(total > 300, "{applied:?}");
}

/// Home Assistant's official add-ons with their real `rootfs/` scripts: the API rules judge
/// real bashio calls, and every fix holds there too.
#[test]
fn official_addons_with_their_scripts() {
    let Some(official) = common::official_sources() else {
        return;
    };
    let dirs = addon::discover(&official);
    assert!(dirs.len() > 20, "{}", dirs.len());
    let mut api = Vec::new();
    for dir in &dirs {
        fixes_hold(dir);
        let report = lint_dir(dir);
        for f in &report.findings {
            if f.rule.id.starts_with("api-") {
                api.push((report.slug.clone().unwrap_or_default(), f.rule.id));
            }
        }
    }
    eprintln!("API findings on the official add-ons: {api:?}");
    let has = |slug: &str, rule: &str| api.iter().any(|(s, r)| s == slug && *r == rule);
    // silabs_flasher's scripts call only /addons/self/info, /info and /supervisor/ping, which
    // every add-on token may call.
    assert!(has("silabs_flasher", "api-unused"));
    // ssh's scripts reboot and shut down the host (/host/reboot, /host/shutdown): manager.
    assert!(!has("ssh", "api-role-broad") && !has("ssh", "api-unused"));
    // git_pull ships no rootfs/: nothing to judge its role by.
    assert!(!has("git_pull", "api-role-broad") && !has("git_pull", "api-unused"));
}

fn bin() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_addon-sandbox"));
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"));
    cmd
}

fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("run addon-sandbox")
}

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).expect("UTF-8")
}

const FIXTURE: &str = "tests/fixtures/lint-addon";

#[test]
fn exit_status_follows_fail_on() {
    // The fixture has warnings and notes, no error.
    for (fail_on, code) in [("error", 0), ("warning", 1), ("note", 1)] {
        let out = run(&["lint", "--fail-on", fail_on, FIXTURE]);
        assert_eq!(out.status.code(), Some(code), "--fail-on {fail_on}");
    }
    // mqtt-bridge has notes only.
    for (fail_on, code) in [("error", 0), ("warning", 0), ("note", 1)] {
        let out = run(&["lint", "--fail-on", fail_on, "examples/mqtt-bridge"]);
        assert_eq!(out.status.code(), Some(code), "--fail-on {fail_on}");
    }
    // An invalid add-on is an error; a path that names nothing fails too.
    assert_eq!(
        run(&["lint", "tests/fixtures/bad-addon"]).status.code(),
        Some(1)
    );
    let missing = run(&["lint", "no/such/folder"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no such file or folder"));
    // A bad flag is a usage error.
    assert_eq!(
        run(&["lint", "--format", "xml", FIXTURE]).status.code(),
        Some(2)
    );
}

#[test]
fn json_lines_have_the_documented_fields() {
    let out = run(&["lint", "--format", "json", FIXTURE, "examples/mqtt-bridge"]);
    assert_eq!(out.status.code(), Some(0));
    let lines: Vec<Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    assert_eq!(lines.len(), 2);
    let keys: Vec<&str> = lines[0]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, ["path", "slug", "rating", "rating_fixed", "findings"]);
    assert_eq!(lines[0]["rating"], 1);
    let host = lines[0]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["rule"] == "host-network")
        .expect("host-network");
    assert_eq!(host["level"], "warning");
    assert_eq!(host["line"], 12);
    assert_eq!(host["column"], 1);
    assert_eq!(host["rating"]["before"], 1);
    assert_eq!(host["rating"]["after"], 2);
    assert_eq!(host["fix"]["edit"]["old"], "host_network: true");
    assert_eq!(host["fix"]["edit"]["new"], "");
}

#[test]
fn github_output_is_workflow_commands() {
    let out = run(&["lint", "--format", "github", FIXTURE]);
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 14, "{text}");
    let re = regex::Regex::new(
        r"^::(error|warning|notice) file=[^,:]+,line=\d+,col=\d+,title=[a-z-]+::[^\n]+$",
    )
    .unwrap();
    for line in &lines {
        assert!(re.is_match(line), "{line}");
    }
    assert!(text.contains(&format!(
        "::warning file={FIXTURE}/config.yaml,line=12,col=1,title=host-network::host_network%3A"
    )) || text.contains(&format!(
        "::warning file={FIXTURE}/config.yaml,line=12,col=1,title=host-network::host_network: true"
    )));
    assert!(text.contains("%0Afix: delete `host_network: true`"));
}

/// The human output of `lint` for the fixture, compared with a reviewed snapshot.
/// Regenerate with `UPDATE_SNAPSHOTS=1 cargo test --test lint` and review the diff.
#[test]
fn human_output_snapshot() {
    let out = run(&["lint", FIXTURE]);
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    let snapshot = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots/lint-addon.txt");
    if std::env::var("UPDATE_SNAPSHOTS").as_deref() == Ok("1") {
        std::fs::write(&snapshot, &text).unwrap();
    }
    let expected =
        std::fs::read_to_string(&snapshot).expect("snapshot exists (UPDATE_SNAPSHOTS=1 to create)");
    assert_eq!(
        text, expected,
        "lint output changed; review and UPDATE_SNAPSHOTS=1 if intended"
    );
}

/// Validate a SARIF file with Python's jsonschema against the official schema; the number of
/// schema errors.
fn schema_errors(python: &Path, sarif: &Path) -> usize {
    let schema = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/reference/sarif/sarif-schema-2.1.0.json");
    let schema = std::env::var_os("ADDON_SANDBOX_SARIF_SCHEMA")
        .map(PathBuf::from)
        .unwrap_or(schema);
    let script = "import json, sys, jsonschema\n\
        schema = json.load(open(sys.argv[1]))\n\
        doc = json.load(open(sys.argv[2]))\n\
        cls = jsonschema.validators.validator_for(schema)\n\
        cls.check_schema(schema)\n\
        errors = list(cls(schema, format_checker=jsonschema.FormatChecker()).iter_errors(doc))\n\
        for e in errors[:5]: print(e.message, list(e.absolute_path), file=sys.stderr)\n\
        print(len(errors))\n";
    let out = Command::new(python)
        .args(["-c", script])
        .arg(&schema)
        .arg(sarif)
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "validator failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("a count")
}

fn sarif_of(paths: &[&str]) -> Value {
    let mut args = vec!["lint", "--format", "sarif"];
    args.extend_from_slice(paths);
    let out = run(&args);
    serde_json::from_slice(&out.stdout).expect("SARIF is JSON")
}

#[test]
fn sarif_has_one_run_rules_with_help_and_fixes() {
    let doc = sarif_of(&[FIXTURE]);
    assert_eq!(doc["version"], "2.1.0");
    let runs = doc["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 1);
    let rules_out = runs[0]["tool"]["driver"]["rules"].as_array().unwrap();
    assert_eq!(rules_out.len(), rules::ALL.len());
    for r in rules_out {
        assert!(r["help"]["text"].as_str().is_some_and(|t| !t.is_empty()));
        assert!(r["helpUri"].as_str().unwrap().starts_with("https://"));
    }
    let results = runs[0]["results"].as_array().unwrap();
    assert_eq!(results.len(), 14);
    let host = results
        .iter()
        .find(|r| r["ruleId"] == "host-network")
        .unwrap();
    let region = &host["locations"][0]["physicalLocation"]["region"];
    assert_eq!(
        (region["startLine"].as_u64(), region["startColumn"].as_u64()),
        (Some(12), Some(1))
    );
    let replacement = &host["fixes"][0]["artifactChanges"][0]["replacements"][0];
    assert_eq!(replacement["deletedRegion"]["endColumn"], 19);
    assert_eq!(replacement["insertedContent"]["text"], "");
    // Advice only: no fixes object.
    let unsigned = results
        .iter()
        .find(|r| r["ruleId"] == "image-unsigned")
        .unwrap();
    assert!(unsigned.get("fixes").is_none());
}

#[test]
fn sarif_validates_against_the_schema() {
    let Some(python) = common::python_jsonschema() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut paths = vec![
        FIXTURE,
        "examples/mqtt-bridge",
        "examples/media-server",
        "examples/network-monitor",
        "tests/fixtures/bad-addon",
    ];
    let corpus = common::corpus_dir();
    let corpus_text = corpus.as_ref().map(|c| c.display().to_string());
    if let Some(c) = &corpus_text {
        paths.push(c);
    }
    // The official add-ons with their scripts, when here (API findings).
    let official = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/workloads/official");
    let official_text = official.display().to_string();
    if official.is_dir() {
        paths.push(&official_text);
    }
    let doc = sarif_of(&paths);
    let results = doc["runs"][0]["results"].as_array().unwrap().len();
    let file = dir.path().join("lint.sarif");
    std::fs::write(&file, serde_json::to_vec(&doc).unwrap()).unwrap();
    assert_eq!(
        schema_errors(&python, &file),
        0,
        "SARIF of {results} results"
    );
    eprintln!("SARIF with {results} results validates");
    // The validator does catch a broken log.
    let mut broken = doc.clone();
    broken["runs"][0]["results"][0]["level"] = Value::from("severe");
    broken["runs"][0]["results"][1]["locations"][0]["physicalLocation"]["region"]["startLine"] =
        Value::from(0);
    std::fs::write(&file, serde_json::to_vec(&broken).unwrap()).unwrap();
    assert_eq!(schema_errors(&python, &file), 2);
}

/// The corpus survey of docs/lint.md: per rule, how many add-ons it hits, its findings and
/// one-line fixes, and the rating the corpus gains from that rule's fixes; then the gain
/// with every fix applied. Regenerate with
/// `cargo test --test lint corpus_survey -- --nocapture` and paste the table.
#[cfg_attr(
    not(corpus),
    ignore = "no corpus: set ADDON_SANDBOX_CORPUS or put it at ../shared/corpus"
)]
#[test]
fn corpus_survey() {
    let Some(corpus) = common::corpus_dir() else {
        return;
    };
    let mut dirs = Vec::new();
    for part in ["official", "community"] {
        dirs.extend(addon::discover(&corpus.join(part)));
    }
    let reports: Vec<Report> = dirs.iter().map(|d| lint_dir(d)).collect();
    let rated: Vec<&Report> = reports.iter().filter(|r| r.rating.is_some()).collect();
    println!(
        "| rule | level | add-ons | findings | one-line fixes | add-ons rated higher | rating gain |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|");
    for rule in rules::ALL {
        let hit: Vec<&Report> = reports
            .iter()
            .filter(|r| r.findings.iter().any(|f| f.rule.id == rule.id))
            .collect();
        let findings = |edit: bool| {
            reports
                .iter()
                .flat_map(|r| &r.findings)
                .filter(|f| f.rule.id == rule.id)
                .filter(|f| !edit || f.fix.as_ref().is_some_and(|x| x.edit.is_some()))
                .count()
        };
        let gains: Vec<i32> = rated
            .iter()
            .filter_map(|r| {
                let fixed = r
                    .rating_fixed_by_rule
                    .iter()
                    .find(|(id, _)| *id == rule.id)?
                    .1;
                Some(i32::from(fixed) - i32::from(r.rating?))
            })
            .collect();
        assert!(
            gains.iter().all(|g| *g >= 0),
            "{}: a fix lowers a rating",
            rule.id
        );
        println!(
            "| `{}` | {} | {} | {} | {} | {} | +{} |",
            rule.id,
            rule.level.name(),
            hit.len(),
            findings(false),
            findings(true),
            gains.iter().filter(|g| **g > 0).count(),
            gains.iter().sum::<i32>()
        );
    }
    let before: u32 = rated.iter().map(|r| u32::from(r.rating.unwrap())).sum();
    let after: u32 = rated
        .iter()
        .map(|r| u32::from(r.rating_fixed.unwrap()))
        .sum();
    let higher = rated.iter().filter(|r| r.rating_fixed > r.rating).count();
    let n = rated.len() as f64;
    println!();
    println!(
        "{} add-ons ({} valid and rated). Every fix applied: {higher} rate higher, total rating {before} → {after} (+{}), mean {:.2} → {:.2}.",
        reports.len(),
        rated.len(),
        after - before,
        f64::from(before) / n,
        f64::from(after) / n
    );
    assert!(after >= before);
}
