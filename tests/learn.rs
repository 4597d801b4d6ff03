//! Learn mode's reading, judged by the real `apparmor_parser`: records as the kernel writes
//! them, for a config with one right removed, name exactly that right; with the full config
//! they name nothing to add.

mod common;

use addon_sandbox::addon;
use addon_sandbox::learn::{self, Edit, LearnReport, Need};
use addon_sandbox::policy::PlanOptions;

const PROFILE: &str = "local_test";

/// A kernel log line for `fields`, as the kernel writes a complain-mode record.
fn record(fields: &str) -> String {
    format!(
        "[   42.123456] audit: type=1400 audit(1700000000.123:45): apparmor=\"ALLOWED\" profile=\"{PROFILE}\" {fields} pid=812 comm=\"worker\""
    )
}

fn learn(extra: &str, log: &[String], options: &PlanOptions) -> Option<LearnReport> {
    let parser = common::parser()?;
    let dir = common::addon_dir(&common::minimal(extra));
    let a = addon::load(dir.path());
    let config = a.config.as_ref().expect("valid config");
    let records: Vec<_> = log
        .iter()
        .filter_map(|l| learn::parse_line(l).map(|r| (r, l.clone())))
        .collect();
    Some(learn::analyse(config, false, options, &records, &parser).expect("analyse"))
}

fn strict() -> PlanOptions {
    PlanOptions::default()
}

fn share_write() -> String {
    record(
        r#"operation="mknod" class="file" name="/share/notes/today.txt" requested_mask="c" denied_mask="c" fsuid=0 ouid=0"#,
    )
}

fn ssl_read() -> String {
    record(
        r#"operation="open" class="file" name="/ssl/fullchain.pem" requested_mask="r" denied_mask="r" fsuid=0 ouid=0"#,
    )
}

fn serial() -> String {
    record(
        r#"operation="open" class="file" name="/dev/ttyUSB0" requested_mask="wr" denied_mask="wr" fsuid=0 ouid=0"#,
    )
}

fn sys_time() -> String {
    record(r#"operation="capable" class="cap" capability=25  capname="sys_time""#)
}

#[test]
fn a_removed_writable_map_is_named_exactly() {
    let log = [share_write(), share_write(), ssl_read()];
    let Some(report) = learn("map: [ssl]\n", &log, &strict()) else {
        return;
    };
    assert_eq!(report.keys_to_add(), ["map: share:rw"], "{report:#?}");
    let f = &report.findings[0];
    assert_eq!(f.records, 2);
    assert_eq!(f.programs, ["worker"]);
    let Need::ConfigKey {
        yaml,
        rating_before,
        rating_after,
        grants,
        ..
    } = &f.need
    else {
        panic!("{f:?}");
    };
    assert_eq!(yaml, "map:\n  - type: share\n    read_only: false\n");
    assert_eq!((rating_before, rating_after), (&5, &5));
    assert!(grants.is_empty());
    // The ssl read is allowed by the ssl map: not a finding at all.
    assert_eq!(report.findings.len(), 1, "{report:#?}");

    // With the full config: nothing to add.
    let full = learn("map: [ssl, share:rw]\n", &log, &strict()).unwrap();
    assert!(full.findings.is_empty(), "{full:#?}");
    assert!(full.needs_nothing());
}

#[test]
fn a_read_of_an_unmapped_shared_folder_names_the_read_only_map() {
    // The profile refuses the Supervisor's shared folders the config does not map, so the
    // read is recorded, and the narrowest key that allows it is the read-only map.
    let Some(report) = learn("", &[ssl_read()], &strict()) else {
        return;
    };
    assert_eq!(report.keys_to_add(), ["map: ssl:ro"], "{report:#?}");
    let full = learn("map: [ssl]\n", &[ssl_read()], &strict()).unwrap();
    assert!(full.needs_nothing(), "{full:#?}");
}

#[test]
fn a_folder_read_and_written_is_one_writable_map() {
    // A client that writes a file lists the folder first: one key, the writable map.
    let list = record(
        r#"operation="open" class="file" name="/share/" requested_mask="r" denied_mask="r" fsuid=0 ouid=0"#,
    );
    let Some(report) = learn("", &[list, share_write(), ssl_read()], &strict()) else {
        return;
    };
    assert_eq!(
        report.keys_to_add(),
        ["map: share:rw", "map: ssl:ro"],
        "{report:#?}"
    );
    assert_eq!(report.findings.len(), 3);
}

#[test]
fn a_serial_device_is_named_by_its_class() {
    // `uart: true` before a `devices` entry: the class follows the adapter whatever node name
    // the host gives it.
    let Some(report) = learn("", &[serial()], &strict()) else {
        return;
    };
    let keys = report.keys_to_add();
    assert_eq!(keys, ["uart: true"], "{report:#?}");
    let full = learn("devices: [/dev/ttyUSB0]\n", &[serial()], &strict()).unwrap();
    assert!(full.needs_nothing(), "{full:#?}");
    let by_class = learn("uart: true\n", &[serial()], &strict()).unwrap();
    assert!(by_class.needs_nothing(), "{by_class:#?}");
}

#[test]
fn a_removed_capability_is_named_with_its_rating_cost() {
    let Some(report) = learn("", &[sys_time()], &strict()) else {
        return;
    };
    assert_eq!(
        report.keys_to_add(),
        ["privileged: SYS_TIME"],
        "{report:#?}"
    );
    let Need::ConfigKey {
        rating_before,
        rating_after,
        edit,
        ..
    } = &report.findings[0].need
    else {
        panic!("{report:#?}");
    };
    // The rating says what the key costs, by our own rating of the edited config.
    // SYS_TIME is not one of the capabilities the Supervisor's rating counts.
    assert!(matches!(edit, Edit::Privileged { .. }));
    assert_eq!((*rating_before, *rating_after), (5, 5));
    // Strict protection withholds SYS_TIME even when the config asks: the operator decides.
    let asked = learn("privileged: [SYS_TIME]\n", &[sys_time()], &strict()).unwrap();
    assert_eq!(
        asked.findings[0].need,
        Need::OperatorGrant {
            grant: "SYS_TIME".into()
        }
    );
    let mut granted = strict();
    granted
        .grants
        .insert(addon_sandbox::policy::Right::parse("SYS_TIME").unwrap());
    let full = learn("privileged: [SYS_TIME]\n", &[sys_time()], &granted).unwrap();
    assert!(full.findings.is_empty(), "{full:#?}");
}

#[test]
fn a_withheld_capability_the_config_asks_for_is_an_operator_grant() {
    let net_admin = record(r#"operation="capable" class="cap" capability=12  capname="net_admin""#);
    let Some(report) = learn(
        "privileged: [NET_ADMIN]\n",
        std::slice::from_ref(&net_admin),
        &strict(),
    ) else {
        return;
    };
    assert_eq!(report.findings.len(), 1, "{report:#?}");
    assert_eq!(
        report.findings[0].need,
        Need::OperatorGrant {
            grant: "NET_ADMIN".into()
        }
    );
    // Without the key, the key is named, with the grant it needs under strict protection.
    let without = learn("", &[net_admin], &strict()).unwrap();
    let Need::ConfigKey {
        key,
        grants,
        rating_before,
        rating_after,
        ..
    } = &without.findings[0].need
    else {
        panic!("{without:#?}");
    };
    assert_eq!(key, "privileged: NET_ADMIN");
    assert_eq!(grants, &["NET_ADMIN"]);
    // NET_ADMIN costs a point in the Supervisor's rating.
    assert_eq!((*rating_before, *rating_after), (5, 4));
}

#[test]
fn what_no_config_grants_is_never_needed() {
    let log = [
        record(
            r#"operation="open" class="file" name="/proc/sys/kernel/core_pattern" requested_mask="w" denied_mask="w" fsuid=0 ouid=0"#,
        ),
        record(r#"operation="capable" class="cap" capability=33  capname="mac_admin""#),
        record(
            r#"operation="exec" class="file" name="/data/payload" requested_mask="x" denied_mask="x" fsuid=0 ouid=0"#,
        ),
    ];
    let Some(report) = learn("", &log, &strict()) else {
        return;
    };
    assert_eq!(report.findings.len(), 3, "{report:#?}");
    assert!(report.needs_nothing(), "{report:#?}");
    let text = learn::human(&report, false);
    assert!(text.contains("Nothing to add"), "{text}");
    assert!(!text.contains("core_pattern"), "{text}");
    assert!(learn::human(&report, true).contains("write /proc/sys/kernel/core_pattern"));
}

#[test]
fn records_of_other_profiles_are_not_read() {
    let other = share_write().replace(PROFILE, "local_other");
    let Some(report) = learn("", &[other], &strict()) else {
        return;
    };
    assert_eq!(report.records, 0);
    assert!(report.findings.is_empty());
}

#[test]
fn hex_encoded_names_are_judged_by_their_decoded_path() {
    let hex: String = "/share/my notes.txt"
        .bytes()
        .map(|b| format!("{b:02X}"))
        .collect();
    let line = record(&format!(
        r#"operation="mknod" class="file" name={hex} requested_mask="c" denied_mask="c" fsuid=0 ouid=0"#
    ));
    let Some(report) = learn("", &[line], &strict()) else {
        return;
    };
    assert_eq!(report.keys_to_add(), ["map: share:rw"], "{report:#?}");
    assert!(learn::human(&report, false).contains("write /share/my notes.txt"));
}

fn cli() -> std::process::Command {
    std::process::Command::new(env!("CARGO_BIN_EXE_addon-sandbox"))
}

#[test]
fn the_command_reads_a_saved_log_and_names_the_key() {
    if common::parser().is_none() {
        return;
    }
    let dir = common::addon_dir(&common::minimal("map: [ssl]\n"));
    let log = dir.path().join("kern.log");
    let lines = [
        "[    1.000000] Linux version 6.1.0 (unrelated line)".to_owned(),
        share_write(),
        serial(),
        record(
            r#"operation="open" class="file" name="/proc/sysrq-trigger" requested_mask="w" denied_mask="w" fsuid=0 ouid=0"#,
        ),
    ];
    std::fs::write(&log, lines.join("\n")).unwrap();
    let out = cli()
        .arg("learn")
        .arg(dir.path())
        .arg("--from-log")
        .arg(&log)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("Add to the config:"), "{text}");
    assert!(text.contains("  map: share:rw   (rating 5 -> 5)"), "{text}");
    assert!(
        text.contains("      map:\n        - type: share\n          read_only: false\n"),
        "{text}"
    );
    assert!(text.contains("uart: true"), "{text}");
    assert!(
        !text.contains("sysrq"),
        "never-needed accesses only with --verbose: {text}"
    );

    let out = cli()
        .arg("learn")
        .arg(dir.path())
        .args(["--json", "--verbose", "--from-log", "-"])
        .stdin(std::fs::File::open(&log).unwrap())
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["profile"], "local_test");
    assert_eq!(v["records"], 3);
    let needs: Vec<&str> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["need"]["kind"].as_str().unwrap())
        .collect();
    assert_eq!(needs, ["config_key", "config_key", "never_needed"]);
    assert_eq!(v["findings"][0]["need"]["key"], "map: share:rw");
    assert_eq!(v["findings"][0]["access"]["path"], "/share/notes/today.txt");
    assert_eq!(v["dropped_records"], false);
    assert!(out.stderr.is_empty() || !String::from_utf8_lossy(&out.stderr).contains("dropped"));

    // A log in which the kernel says it dropped records: the reading says it may be short.
    let mut text = std::fs::read_to_string(&log).unwrap();
    text.push_str("\n[    9.000000] kauditd_printk_skb: 27 callbacks suppressed\n");
    std::fs::write(&log, text).unwrap();
    let out = cli()
        .arg("learn")
        .arg(dir.path())
        .args(["--json", "--from-log"])
        .arg(&log)
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["dropped_records"], true);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("dropped audit records"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_missing_log_is_a_clear_error() {
    let dir = common::addon_dir(&common::minimal(""));
    let out = cli()
        .arg("learn")
        .arg(dir.path())
        .args(["--from-log", "/nonexistent/kern.log"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/nonexistent/kern.log"), "{err}");
}

#[test]
fn learning_is_refused_where_the_profile_cannot_be_loaded() {
    // This host's kernel has no AppArmor (where it has, the VM suite learns for real): learn
    // must refuse before creating anything, never run the add-on unconfined.
    if !common::docker_available() || std::path::Path::new("/sys/kernel/security/apparmor").exists()
    {
        return;
    }
    common::ensure_test_image();
    let dir =
        common::addon_dir(&common::minimal("slug: learnrefused\n").replace("slug: test\n", ""));
    let state = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let out = cli()
        .arg("learn")
        .arg(dir.path())
        .args(["--image", common::TEST_IMAGE, "--for", "1"])
        .arg("--state-dir")
        .arg(state.path())
        .arg("--data-root")
        .arg(data.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("cannot enforce"), "{err}");
    let ps = std::process::Command::new("docker")
        .args(["ps", "-a", "--filter", "name=app_local_learnrefused", "-q"])
        .output()
        .unwrap();
    assert!(ps.stdout.is_empty(), "a container was left behind");
}

#[test]
fn the_learning_profile_is_the_same_profile_in_complain_mode_with_audited_denials() {
    let Some(parser) = common::parser() else {
        return;
    };
    let dir = common::addon_dir(&common::minimal("map: [share:rw, ssl]\nuart: true\n"));
    let a = addon::load(dir.path());
    let plan = addon_sandbox::policy::decide(a.config.as_ref().unwrap(), false, &strict()).unwrap();
    let profile = addon_sandbox::profile::generate(&plan).unwrap();
    let enforced = profile.render(false).unwrap();
    let learning = profile.render_learning().unwrap();
    assert!(learning.contains("flags=(attach_disconnected,mediate_deleted,complain)"));
    let denies = enforced
        .lines()
        .filter(|l| l.trim_start().starts_with("deny "))
        .count();
    assert!(denies > 5, "{enforced}");
    assert_eq!(
        learning
            .lines()
            .filter(|l| l.trim_start().starts_with("audit deny "))
            .count(),
        denies
    );
    assert_eq!(
        learning
            .replace(",complain)", ")")
            .replace("audit deny ", "deny "),
        enforced
    );
    let compiled = parser
        .check(&learning)
        .expect("the learning profile compiles");
    assert!(!compiled.binary.is_empty());
}

#[test]
fn the_learning_plan_widens_the_container_and_not_the_config_rights_it_withholds() {
    use addon_sandbox::learn::widen::{Widen, learning_plan};
    let dir = common::addon_dir(&common::minimal(
        "map: [ssl]\nhost_network: true\nprivileged: [NET_ADMIN]\n",
    ));
    let a = addon::load(dir.path());
    let config = a.config.as_ref().unwrap();
    let own = addon_sandbox::policy::decide(config, false, &strict()).unwrap();
    let maps = learning_plan(config, false, &strict(), &[Widen::Maps]).unwrap();
    let targets = |p: &addon_sandbox::plan::SandboxPlan| -> Vec<(String, bool)> {
        p.mounts
            .iter()
            .map(|m| (m.target.clone(), m.read_only))
            .collect()
    };
    assert!(!targets(&own).contains(&("/share".into(), false)));
    assert!(targets(&maps).contains(&("/share".into(), false)));
    assert!(targets(&maps).contains(&("/ssl".into(), false)));
    // Maps only: the config's withheld rights stay withheld.
    assert_eq!(maps.cap_add, own.cap_add);
    assert_eq!(maps.network_mode, own.network_mode);
    // Capabilities: every one the policy withholds is granted for learning, host network not.
    let caps = learning_plan(config, false, &strict(), &[Widen::Capabilities]).unwrap();
    assert!(
        caps.cap_add.contains(&"NET_ADMIN".to_owned()),
        "{:?}",
        caps.cap_add
    );
    assert!(
        caps.cap_add.contains(&"SYS_TIME".to_owned()),
        "{:?}",
        caps.cap_add
    );
    assert_eq!(caps.network_mode, own.network_mode);
    assert!(caps.withheld.iter().any(|w| w.right == "host_network"));
}
