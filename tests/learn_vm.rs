//! Learn mode in a real AppArmor kernel: `addon-sandbox learn` of official add-ons' stand-ins
//! under the Docker engine of the AppArmor VM (the production path of tests/official_vm.rs).
//! For each of four add-ons, one right its config declares is removed and learn, after a real
//! client used that right, names exactly that key and nothing else; with the add-on's own
//! config, after the same client, it names nothing to add (no key, no grant, no profile gap).
//!
//! The rights are the ones the kernel can see (docs/learn.md, "What it cannot see"): folders
//! written or read through a map. No official add-on built here declares a capability or a
//! device node, and a missing `host_network` reaches no LSM hook.
//!
//! One boot for all runs; the images' data disk is official_vm's (the same seven images).
//! Needs the VM (`REQUIRE_APPARMOR_VM=1`) and the workload images (`REQUIRE_WORKLOADS=1`).
//! `LEARN_VM_ONLY=ssh,vlc` limits the run to those add-ons.

mod common;
#[path = "common/engine_vm.rs"]
mod engine_vm;
#[path = "common/official.rs"]
mod official;

use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use serde_json::Value;

/// One add-on's learning: the map entry removed (a line of its config), the key learn must
/// name for it, and the client's work once the add-on is ready (`$IP`: its address).
struct Learning {
    addon: &'static str,
    removed: &'static str,
    key: &'static str,
    exercise: &'static str,
}

const SSH: &str = "ssh -i /payload/addons/ssh/id_ed25519 -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o ConnectTimeout=5 -o BatchMode=yes";

fn learnings() -> Vec<Learning> {
    vec![
        Learning {
            addon: "ssh",
            removed: "  - share:rw\n",
            key: "map: share:rw",
            exercise: "@SSH@ \"root@$IP\" 'echo learned > /share/learned-over-ssh.txt'",
        },
        Learning {
            addon: "samba",
            removed: "  - media:rw\n",
            key: "map: media:rw",
            exercise: "@SMB@ \"//$IP/media\" -c 'put /run/smb-upload.txt learned-over-smb.txt'",
        },
        Learning {
            addon: "vlc",
            removed: "  - media:ro\n",
            key: "map: media:ro",
            exercise: "@VLC@/browse.json?uri=file:///media\"",
        },
        Learning {
            addon: "nginx_proxy",
            removed: "  - ssl\n",
            key: "map: ssl:ro",
            exercise: "curl -sk --max-time 5 --resolve \"proxy.test:443:$IP\" https://proxy.test/",
        },
    ]
}

/// The exercise script: the add-on's address, its ready.sh until it answers (or its container
/// stops: a right it needs at start refused), then the client's work.
fn exercise_script(l: &Learning) -> String {
    let work = l
        .exercise
        .replace("@SSH@", SSH)
        .replace("@SMB@", engine_vm::SMB)
        .replace("@VLC@", engine_vm::VLC);
    format!(
        r#"IP=$(docker inspect -f '{{{{range .NetworkSettings.Networks}}}}{{{{.IPAddress}}}}{{{{end}}}}' "$ADDON_CONTAINER")
GW=172.30.232.1
export IP GW
i=0
until sh /payload/addons/{addon}/ready.sh >/dev/null 2>&1; do
  if [ "$(docker inspect -f '{{{{.State.Running}}}}' "$ADDON_CONTAINER")" != true ]; then
    echo "the add-on stopped before it was ready:"; docker logs --tail 40 "$ADDON_CONTAINER" 2>&1; exit 0
  fi
  i=$((i+1)); [ "$i" -ge 960 ] && {{ echo "not ready in 480 s"; exit 1; }}
  sleep 0.5
done
{work}
"#,
        addon = l.addon
    )
}

/// `/payload/learn/<label>/`: the config (the add-on's, as the official case edits it, maybe
/// with one line removed) and the exercise.
fn learn_folder(payload: &Path, label: &str, l: &Learning, removed: bool) {
    let case = engine_vm::cases()
        .into_iter()
        .find(|c| c.addon == l.addon)
        .unwrap();
    let own =
        std::fs::read_to_string(official::shared_official(l.addon).join("config.yaml")).unwrap();
    let mut config = (case.config)(own);
    if removed {
        assert!(
            config.contains(l.removed),
            "{}: no {:?} in its config",
            l.addon,
            l.removed
        );
        config = config.replacen(l.removed, "", 1);
    }
    let dir = payload.join("learn").join(label);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("config.yaml"), config).unwrap();
    std::fs::write(dir.join("exercise.sh"), exercise_script(l)).unwrap();
}

fn selected() -> Vec<Learning> {
    let only = std::env::var("LEARN_VM_ONLY").unwrap_or_default();
    learnings()
        .into_iter()
        .filter(|l| only.is_empty() || only.split(',').any(|o| o == l.addon))
        .collect()
}

/// One VM at a time: two emulated machines on this host's two cores would starve each other.
static ONE_VM: Mutex<()> = Mutex::new(());

#[test]
fn learn_names_exactly_the_removed_right_of_real_addons_in_the_apparmor_vm() {
    let Some(root) = common::vm_engine_root() else {
        return;
    };
    if !common::docker_available() {
        return;
    }
    let _one = ONE_VM.lock().unwrap_or_else(|e| e.into_inner());
    // Every stand-in, as official_vm builds them: the images' disk is then the same one.
    let cases = engine_vm::cases();
    let Some((built, docker)) = engine_vm::stand_ins_and_disk(&root, &cases) else {
        return;
    };
    let learnings = selected();
    let dir = tempfile::tempdir().unwrap();
    engine_vm::payload(dir.path(), &built, &|case, image| {
        learnings
            .iter()
            .filter(|l| l.addon == case.addon)
            .map(|l| {
                format!(
                    "learn_case {a}-own {a} {image}\nlearn_case {a}-without {a} {image}\n",
                    a = l.addon
                )
            })
            .collect()
    });
    for l in &learnings {
        learn_folder(dir.path(), &format!("{}-own", l.addon), l, false);
        learn_folder(dir.path(), &format!("{}-without", l.addon), l, true);
    }
    let deadline = Duration::from_secs(300 + 1200 * learnings.len() as u64);
    let report = engine_vm::boot(&root, dir.path(), docker, deadline, "learn-vm");
    let mut failures = Vec::new();
    let mut times = Vec::new();
    for l in &learnings {
        for (label, want) in [
            (format!("{}-own", l.addon), None),
            (format!("{}-without", l.addon), Some(l.key)),
        ] {
            match judge(&report.lines, &label, want) {
                Ok(t) => times.push(format!("{label} {t} s")),
                Err(e) => failures.push(format!("{label}: {e}")),
            }
        }
    }
    eprintln!(
        "learn_vm: {:.0} s in the VM; {}",
        report.elapsed.as_secs_f64(),
        times.join("; ")
    );
    assert!(
        failures.is_empty(),
        "learn in the AppArmor VM:\n{}\n--- harness lines:\n{}",
        failures.join("\n"),
        report.lines.join("\n")
    );
}

/// `learn --vm`: the command itself, on this host (whose kernel does not enforce AppArmor),
/// runs the learning in the VM and judges its records here. dnsmasq maps no folder and asks
/// for no capability; a write into `/share` and a `nice -n -5` through `docker exec` (which
/// runs under the container's profile) are named: the map and the capability.
#[test]
fn learn_with_vm_runs_in_the_apparmor_vm_and_judges_here() {
    let Some(root) = common::vm_engine_root() else {
        return;
    };
    if !common::docker_available() {
        return;
    }
    let case = engine_vm::cases()
        .into_iter()
        .find(|c| c.addon == "dnsmasq")
        .unwrap();
    let Some(image) = official::stand_in(case.addon, case.suite) else {
        return;
    };
    let _one = ONE_VM.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("dnsmasq");
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::copy(
        official::shared_official("dnsmasq").join("config.yaml"),
        folder.join("config.yaml"),
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_addon-sandbox"))
        .args(["learn", "--json", "--vm"])
        .arg(root.disk.parent().unwrap())
        .args(["--image", &image, "--options", case.options, "--for", "2"])
        .args([
            "--exercise",
            "docker exec \"$ADDON_CONTAINER\" sh -c 'echo learned > /share/learned.txt'",
            // A capability: raising its own priority needs SYS_NICE, which the learning plan
            // gives only with `--widen capabilities` (the VM is disposable).
            "--exercise",
            "docker exec \"$ADDON_CONTAINER\" nice -n -5 true",
            "--widen",
            "maps,devices,capabilities",
        ])
        .arg(&folder)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "learn --vm failed:\n{stderr}");
    assert!(stderr.contains("booting the AppArmor VM"), "{stderr}");
    let v: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
    assert_eq!(v["container"], "app_local_dnsmasq", "{v}");
    assert_eq!(v["exercises"][0][1], 0, "{v}\n{stderr}");
    assert_eq!(v["exercises"][1][1], 0, "{v}\n{stderr}");
    let keys: Vec<&str> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["need"]["kind"] != "never_needed")
        .map(|f| f["need"]["key"].as_str().unwrap_or("(not a key)"))
        .collect();
    assert_eq!(keys, ["map: share:rw", "privileged: SYS_NICE"], "{v}");
    assert_eq!(v["dropped_records"], false);
}

/// One run's lines: learn ended well, the client's work succeeded where the config allows it,
/// and the reading names `want` (exactly, and nothing else to do) or nothing at all. Returns
/// the run's time.
fn judge(lines: &[String], label: &str, want: Option<&str>) -> Result<String, String> {
    let step = |s: &str| {
        lines
            .iter()
            .find_map(|l| l.strip_prefix(&format!("learn {label} {s} ")))
    };
    let run = step("rc=0").map(str::to_owned).ok_or_else(|| {
        format!(
            "learn did not end with 0: {:?}",
            lines
                .iter()
                .find(|l| l.starts_with(&format!("learn {label} rc=")))
        )
    })?;
    let json: Value = step("json")
        .and_then(|j| serde_json::from_str(j).ok())
        .ok_or("no JSON reading")?;
    let exercises = json["exercises"].as_array().ok_or("no exercises")?;
    // The client's work succeeds under the own config; without the right it may fail.
    if want.is_none() && exercises.iter().any(|e| e[1] != 0) {
        return Err(format!(
            "the exercise failed under the own config: {exercises:?}"
        ));
    }
    let findings = json["findings"].as_array().ok_or("no findings")?;
    let mut keys: Vec<&str> = Vec::new();
    for f in findings {
        match f["need"]["kind"].as_str() {
            Some("never_needed") => {}
            Some("config_key") => {
                let key = f["need"]["key"].as_str().unwrap_or("?");
                if !keys.contains(&key) {
                    keys.push(key);
                }
            }
            _ => return Err(format!("a grant or a profile gap: {f}")),
        }
    }
    let expected: Vec<&str> = want.into_iter().collect();
    if keys != expected {
        return Err(format!(
            "learn named {keys:?}, expected {expected:?}: {}",
            serde_json::to_string_pretty(&json).unwrap_or_default()
        ));
    }
    Ok(run.split_whitespace().next().unwrap_or("?").to_owned())
}

/// The judge on made-up lines: a reading naming another key, or a gap, or none at all fails.
#[test]
fn the_learn_judge_wants_exactly_the_key() {
    let line = |label: &str, findings: &str| {
        vec![
            format!("learn {label} rc=0 61.5"),
            format!(
                r#"learn {label} json {{"profile":"local_ssh","rating":5,"records":2,"findings":[{findings}],"container":"app_local_ssh","exercises":[["sh x",0]]}}"#
            ),
        ]
    };
    let share = r#"{"need":{"kind":"config_key","key":"map: share:rw"}}"#;
    let never = r#"{"need":{"kind":"never_needed"}}"#;
    let gap = r#"{"need":{"kind":"profile_gap","justified_by":"map"}}"#;
    assert_eq!(
        judge(&line("a", share), "a", Some("map: share:rw")),
        Ok("61.5".into())
    );
    assert!(judge(&line("a", share), "a", Some("map: ssl:ro")).is_err());
    assert!(judge(&line("a", never), "a", Some("map: share:rw")).is_err());
    assert!(judge(&line("a", never), "a", None).is_ok());
    assert!(judge(&line("a", gap), "a", None).is_err());
    assert!(judge(&line("a", share), "a", None).is_err());
    assert!(judge(&["learn a rc=1 3.0".to_owned()], "a", None).is_err());
}
