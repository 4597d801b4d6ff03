//! Parity with the real Supervisor on every add-on of the corpus: validity, rating, and in
//! `supervisor` mode the Docker settings (mounts, capabilities, namespaces, security options,
//! tmpfs, ulimits, device rules, environment keys, ports). The cid-file mount is a Supervisor
//! internal of its own `docker run` and is not part of a plan; the audio mounts are compared.

mod common;

use std::collections::BTreeMap;

use serde_json::{Value, json};

use addon_sandbox::addon;
use addon_sandbox::plan::{PolicyMode, SandboxPlan};
use addon_sandbox::policy::{self, HostFacts, PlanOptions};

fn plan_for(
    record: &Value,
    corpus: &std::path::Path,
    protected: bool,
) -> Result<SandboxPlan, String> {
    let dir = corpus.join(record["dir"].as_str().unwrap());
    let addon = addon::load(&dir);
    let config = addon.config.as_ref().ok_or("config invalid")?;
    let options = PlanOptions {
        policy: PolicyMode::Supervisor,
        protected,
        grants: Default::default(),
        repository: record["repository"].as_str().unwrap().to_owned(),
        data_root: "/mnt/data/supervisor".into(),
        host: HostFacts {
            arch: record["protected"]["host"]["arch"]
                .as_str()
                .map(str::to_owned),
            machine: record["protected"]["host"]["machine"]
                .as_str()
                .map(str::to_owned),
            ..HostFacts::default()
        },
    };
    policy::decide(config, addon.apparmor_profile.is_some(), &options).map_err(|e| e.to_string())
}

fn mounts_json(plan: &SandboxPlan) -> Value {
    Value::Array(
        plan.mounts
            .iter()
            .map(|m| {
                let mut o =
                    json!({"source": m.source, "target": m.target, "read_only": m.read_only});
                if m.non_recursive {
                    o["bind_options"] = json!({"ReadOnlyNonRecursive": true});
                }
                if let Some(p) = &m.propagation {
                    o["bind_options"] = json!({"Propagation": p});
                }
                o
            })
            .collect(),
    )
}

fn sorted_strings(v: &Value) -> Vec<String> {
    let mut out: Vec<String> = v
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// Each differing field of one side (protected or not), as "field: ours != theirs".
fn compare(plan: &SandboxPlan, expected: &Value) -> Vec<String> {
    let mut diffs = Vec::new();
    let mut check = |field: &str, ours: Value, theirs: Value| {
        if ours != theirs {
            diffs.push(format!("{field}: ours {ours} != supervisor {theirs}"));
        }
    };
    check("rating", json!(plan.rating), expected["rating"].clone());
    check(
        "full_slug",
        json!(plan.full_slug),
        expected["full_slug"].clone(),
    );
    check("mounts", mounts_json(plan), expected["mounts"].clone());
    check(
        "cap_add",
        json!(plan.cap_add),
        json!(sorted_strings(&expected["cap_add"])),
    );
    check(
        "cap_drop",
        json!(plan.cap_drop),
        json!(sorted_strings(&expected["cap_drop"])),
    );
    let mode = |v: &Value| v.as_str().map(str::to_owned);
    check(
        "network_mode",
        json!(plan.network_mode),
        json!(mode(&expected["network_mode"]).unwrap_or_else(|| "default".into())),
    );
    check(
        "pid_mode",
        json!(plan.pid_mode),
        expected["pid_mode"].clone(),
    );
    check(
        "uts_mode",
        json!(plan.uts_mode),
        expected["uts_mode"].clone(),
    );
    check(
        "ipc_mode",
        json!(plan.ipc_mode),
        expected["ipc_mode"].clone(),
    );
    check(
        "security_opt",
        json!(plan.security_opt),
        expected["security_opt"].clone(),
    );
    let theirs_tmpfs: BTreeMap<String, String> =
        serde_json::from_value(expected["tmpfs"].clone()).unwrap_or_default();
    check("tmpfs", json!(plan.tmpfs), json!(theirs_tmpfs));
    let ulimits: Vec<Value> = plan
        .ulimits
        .iter()
        .map(|u| json!({"name": u.name, "soft": u.soft, "hard": u.hard}))
        .collect();
    check("ulimits", json!(ulimits), expected["ulimits"].clone());
    check(
        "device_cgroup_rules",
        json!(plan.device_cgroup_rules),
        json!(sorted_strings(&expected["device_cgroup_rules"])),
    );
    check(
        "env_keys",
        json!(plan.env_keys),
        json!(sorted_strings(&expected["environment_keys"])),
    );
    let ours_ports: BTreeMap<String, Option<u16>> = plan
        .ports
        .iter()
        .map(|p| (p.container.clone(), p.host))
        .collect();
    let theirs_ports: BTreeMap<String, Option<u16>> =
        serde_json::from_value(expected["ports"].clone()).unwrap_or_default();
    check("ports", json!(ours_ports), json!(theirs_ports));
    check(
        "docker_socket",
        json!(plan.docker_socket),
        expected["docker_socket"].clone(),
    );
    check("init", json!(plan.init), expected["init"].clone());
    check(
        "hostname",
        json!(plan.hostname),
        expected["hostname"].clone(),
    );
    check(
        "container_name",
        json!(plan.container_name),
        expected["container_name"].clone(),
    );
    if let Some(image) = expected["docker_create"]["Image"].as_str() {
        check("image", json!(plan.image), json!(image));
    }
    diffs
}

#[test]
#[cfg_attr(
    not(corpus),
    ignore = "no corpus: set ADDON_SANDBOX_CORPUS (see docs/testing.md)"
)]
fn supervisor_parity_on_every_corpus_addon() {
    let Some(corpus) = common::corpus_dir() else {
        return;
    };
    let records = common::expected_records(&corpus);
    assert!(
        records.len() >= 250,
        "corpus holds {} records",
        records.len()
    );
    let mut failures = Vec::new();
    let (mut valid_agree, mut rating_agree, mut sides_agree) = (0, 0, 0);
    for record in &records {
        let name = record["dir"].as_str().unwrap();
        let expected = &record["protected"];
        let addon = addon::load(&corpus.join(name));
        let theirs_valid = expected["valid"].as_bool().unwrap()
            && !expected["install_fails"].as_bool().unwrap_or(false);
        if addon.valid() == theirs_valid {
            valid_agree += 1;
        } else {
            let errors: Vec<String> = addon.errors().map(|d| d.to_string()).collect();
            failures.push(format!(
                "{name}: valid: ours {} != supervisor {theirs_valid}: {errors:?}",
                addon.valid()
            ));
            continue;
        }
        if !theirs_valid {
            continue;
        }
        let mut rating_ok = true;
        for (side, protected) in [("protected", true), ("unprotected", false)] {
            match plan_for(record, &corpus, protected) {
                Ok(plan) => {
                    let diffs = compare(&plan, &record[side]);
                    if diffs.iter().any(|d| d.starts_with("rating:")) {
                        rating_ok = false;
                    }
                    if diffs.is_empty() {
                        sides_agree += 1;
                    }
                    failures.extend(diffs.into_iter().map(|d| format!("{name} [{side}]: {d}")));
                }
                Err(e) => failures.push(format!("{name} [{side}]: no plan: {e}")),
            }
        }
        rating_agree += usize::from(rating_ok);
    }
    println!(
        "corpus parity: {} add-ons; valid agrees {valid_agree}, rating agrees {rating_agree}, docker settings agree on {sides_agree} of {} sides",
        records.len(),
        records.len() * 2
    );
    assert!(
        failures.is_empty(),
        "{} differences:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
#[cfg_attr(
    not(corpus),
    ignore = "no corpus: set ADDON_SANDBOX_CORPUS (see docs/testing.md)"
)]
fn rate_command_agrees_with_plan_rating() {
    // The rating reported alone and the one inside a plan come from one function; check the
    // factors add up to the number for every corpus add-on.
    let Some(corpus) = common::corpus_dir() else {
        return;
    };
    for record in common::expected_records(&corpus) {
        let addon = addon::load(&corpus.join(record["dir"].as_str().unwrap()));
        let Some(report) = addon_sandbox::report::rating(&addon) else {
            continue;
        };
        let sum: i32 =
            addon_sandbox::rating::BASE + report.factors.iter().map(|f| f.delta).sum::<i32>();
        assert_eq!(
            sum,
            i32::from(report.rating),
            "{}: factors {:?}",
            record["dir"],
            report.factors
        );
        assert_eq!(
            json!(report.rating),
            record["protected"]["rating"],
            "{}",
            record["dir"]
        );
    }
}

/// Without a corpus the corpus tests are ignored (build.rs); CI requires it, and this is the
/// test that fails when it is required and absent.
#[test]
fn the_corpus_is_here_when_required() {
    let required = std::env::var("REQUIRE_CORPUS").as_deref() == Ok("1");
    let built_with_corpus = cfg!(corpus);
    assert!(
        built_with_corpus || !required,
        "REQUIRE_CORPUS=1 but no corpus was found when the tests were built \
         (set ADDON_SANDBOX_CORPUS to a folder holding expected/)"
    );
}
