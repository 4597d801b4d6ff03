//! Add-on options against the Supervisor's own answers (`expected-options/options.jsonl`:
//! what the real `AppOptions` said for 1,679 cases), through the library and, for a sample,
//! through the binary's `options --as-given --json`.

mod common;

use std::path::{Path, PathBuf};

use addon_sandbox::options::{AddonOptions, AppOptions, Device, DeviceTable, Secrets};
use serde_json::Value;

/// The host the answers were taken on (the corpus README's table).
fn readme_devices() -> DeviceTable {
    let dev = |path: &str, subsystem: &str, links: &[&str], sysfs: &str| Device {
        path: path.into(),
        subsystem: subsystem.into(),
        links: links.iter().map(PathBuf::from).collect(),
        sysfs: sysfs.into(),
    };
    DeviceTable {
        devices: vec![
            dev(
                "/dev/ttyUSB0",
                "tty",
                &[
                    "/dev/serial/by-id/usb-XYZ",
                    "/dev/serial/by-path/pci-0000:00:14.0-usb-0:1:1.0-port0",
                ],
                "/sys/devices/pci0000:00/usb1/1-1/ttyUSB0/tty/ttyUSB0",
            ),
            dev(
                "/dev/ttyACM0",
                "tty",
                &[],
                "/sys/devices/pci0000:00/usb1/1-2/tty/ttyACM0",
            ),
            dev(
                "/dev/sda",
                "block",
                &["/dev/disk/by-id/ata-FAKE_DISK_123"],
                "/sys/block/sda",
            ),
            dev(
                "/dev/video0",
                "video4linux",
                &["/dev/v4l/by-id/usb-CAM-video-index0"],
                "/sys/class/video4linux/video0",
            ),
            dev("/dev/net/tun", "misc", &[], "/sys/devices/virtual/misc/tun"),
        ],
    }
}

fn readme_secrets() -> Secrets {
    let mut secrets = Secrets::default();
    secrets
        .values
        .insert("db_password".into(), Value::String("s3cret".into()));
    secrets
}

fn cases(corpus: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(corpus.join("expected-options/options.jsonl")).unwrap();
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn addon_dir(corpus: &Path, case: &Value) -> PathBuf {
    let dir = case["dir"].as_str().unwrap();
    corpus.join(dir.strip_prefix("shared/corpus/").unwrap())
}

/// The answer for one case, or why it differs from the Supervisor's.
fn check_case(
    corpus: &Path,
    case: &Value,
    devices: &DeviceTable,
    secrets: &Secrets,
) -> Result<(), String> {
    let addon = addon_sandbox::addon::load(&addon_dir(corpus, case));
    let config = AddonOptions::of(&addon).map_err(|e| e.to_string())?;
    let (name, slug) = (
        case["name"].as_str().unwrap(),
        case["slug"].as_str().unwrap(),
    );
    let ours =
        AppOptions::new(&config.schema, name, slug, devices, secrets).validate(&case["options"]);
    compare(case, ours.map(|v| v.options).map_err(|e| e.to_string()))
}

fn compare(case: &Value, ours: Result<Value, String>) -> Result<(), String> {
    match (case["valid"].as_bool().unwrap(), ours) {
        (true, Ok(out)) if out == case["output"] => Ok(()),
        (true, Ok(out)) => Err(format!("output {out} != {}", case["output"])),
        (true, Err(e)) => Err(format!("refused: {e}")),
        (false, Ok(_)) => Err(format!("accepted; expected {}", case["error"])),
        (false, Err(e)) => {
            let variants = case["error_variants"].as_array();
            let ok = e == case["error"].as_str().unwrap()
                || variants.is_some_and(|v| v.iter().any(|t| t.as_str() == Some(&e)));
            if ok {
                Ok(())
            } else {
                Err(format!("error {e:?}\n   expected {:?}", case["error"]))
            }
        }
    }
}

#[test]
#[cfg_attr(
    not(corpus),
    ignore = "no corpus: set ADDON_SANDBOX_CORPUS (see docs/testing.md)"
)]
fn every_case_matches_the_supervisor() {
    let Some(corpus) = common::corpus_dir() else {
        return;
    };
    let (devices, secrets) = (readme_devices(), readme_secrets());
    let all = cases(&corpus);
    assert!(all.len() >= 1679, "{} cases", all.len());
    let failures: Vec<String> = all
        .iter()
        .filter_map(|case| {
            check_case(&corpus, case, &devices, &secrets)
                .err()
                .map(|why| {
                    format!(
                        "{} [{}] {}: {why}",
                        case["slug"], case["case"], case["mutation"]
                    )
                })
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} differ:\n{}",
        failures.len(),
        all.len(),
        failures
            .iter()
            .take(30)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// A sample of the cases through the binary: `options --as-given --json` prints the same
/// answer (every 7th case, so each kind of case is in it).
#[test]
#[cfg_attr(
    not(corpus),
    ignore = "no corpus: set ADDON_SANDBOX_CORPUS (see docs/testing.md)"
)]
fn the_binary_gives_the_same_answers() {
    let Some(corpus) = common::corpus_dir() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let secrets = tmp.path().join("secrets.yaml");
    std::fs::write(&secrets, "db_password: s3cret\n").unwrap();
    let mut checked = 0;
    for case in cases(&corpus).iter().step_by(7) {
        // The host's own devices are not the README's: device cases run through the library.
        if case["case"].as_str().unwrap().starts_with("device") {
            continue;
        }
        let slug = case["slug"].as_str().unwrap();
        let (repository, _) = slug.split_once('_').unwrap();
        let options = serde_json::to_string(&case["options"]).unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_addon-sandbox"))
            .args([
                "options",
                "--as-given",
                "--json",
                "--repository",
                repository,
            ])
            .arg("--secrets")
            .arg(&secrets)
            .args(["--options", &options])
            .arg(addon_dir(&corpus, case))
            .output()
            .unwrap();
        let answer: Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|_| panic!("{slug}: {}", String::from_utf8_lossy(&out.stderr)));
        let valid = answer["valid"].as_bool().unwrap();
        assert_eq!(out.status.code(), Some(if valid { 0 } else { 1 }), "{slug}");
        let ours = if valid {
            Ok(answer["options"].clone())
        } else {
            Err(answer["error"].as_str().unwrap().to_owned())
        };
        compare(case, ours).unwrap_or_else(|why| panic!("{slug} [{}]: {why}", case["case"]));
        checked += 1;
    }
    assert!(checked > 200, "only {checked} cases ran");
}

/// An add-on with a schema, for `run` on the real engine.
fn run_addon(dir: &Path, slug: &str) -> PathBuf {
    let addon = dir.join("addon");
    std::fs::create_dir(&addon).unwrap();
    std::fs::write(
        addon.join("config.yaml"),
        format!(
            "name: Opt\nversion: \"1.0\"\nslug: {slug}\ndescription: d\narch: [amd64, aarch64]\n\
             options:\n  port: 1883\n  user: admin\n  nested: {{a: true}}\n\
             schema:\n  port: port\n  user: str\n  password: password?\n  nested: {{a: bool}}\n"
        ),
    )
    .unwrap();
    addon
}

fn run_cmd(dir: &Path, addon: &Path, extra: &[&str], script: &str) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_addon-sandbox"))
        .arg("run")
        .arg(addon)
        .args([
            "--json",
            "--allow-unconfined",
            "--image",
            common::TEST_IMAGE,
        ])
        .arg("--data-root")
        .arg(dir.join("data"))
        .arg("--state-dir")
        .arg(dir.join("state"))
        .args(extra)
        .args(["--command", "/bin/sh", "-c", script])
        .output()
        .unwrap()
}

/// Remove the container `name`; whether it was there (`rm -f` succeeds either way).
fn docker_rm(name: &str) -> bool {
    let docker = |args: &[&str]| {
        std::process::Command::new("docker")
            .args(args)
            .output()
            .unwrap()
            .status
            .success()
    };
    let existed = docker(&["inspect", name]);
    docker(&["rm", "-f", name]);
    existed
}

/// `run` writes the merged, validated options 0600 to the data folder before the container
/// starts: the add-on reads them at `/data/options.json`.
#[test]
fn run_writes_options_json_before_the_start() {
    if !common::docker_available() {
        return;
    }
    common::ensure_test_image();
    let tmp = tempfile::tempdir().unwrap();
    let addon = run_addon(tmp.path(), "optrun");
    let secrets = tmp.path().join("secrets.yaml");
    std::fs::write(&secrets, "db_password: s3cret\n").unwrap();
    let user = r#"{"port": "8883", "password": "!secret db_password", "nested": {"x": 1}}"#;
    let script = "cat /data/options.json > /data/seen; sleep 60";
    let flags = ["--options", user, "--secrets", secrets.to_str().unwrap()];
    let out = run_cmd(tmp.path(), &addon, &flags, script);
    let removed = docker_rm("app_local_optrun");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(removed, "the container was not there");
    let data = tmp.path().join("data/apps/data/local_optrun");
    let file = data.join("options.json");
    use std::os::unix::fs::MetadataExt;
    assert_eq!(std::fs::metadata(&file).unwrap().mode() & 0o777, 0o600);
    let written: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    let want = serde_json::json!({"port": 8883, "user": "admin", "nested": {"a": true}, "password": "s3cret"});
    assert_eq!(written, want);
    // What the add-on read inside, once it ran.
    let seen = data.join("seen");
    for _ in 0..100 {
        if std::fs::metadata(&seen).is_ok_and(|m| m.len() > 0) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let inside: Value = serde_json::from_slice(&std::fs::read(&seen).unwrap()).unwrap();
    assert_eq!(inside, want);
}

/// Invalid options: the Supervisor's text, exit 1, and nothing created (no container, no
/// data folder, no token).
#[test]
fn run_refuses_invalid_options_and_creates_nothing() {
    if !common::docker_available() {
        return;
    }
    common::ensure_test_image();
    let tmp = tempfile::tempdir().unwrap();
    let addon = run_addon(tmp.path(), "optbad");
    let out = run_cmd(
        tmp.path(),
        &addon,
        &["--options", r#"{"port": 0}"#],
        "sleep 60",
    );
    let removed = docker_rm("app_local_optbad");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("App local_optbad has invalid options: value must be at least 1. Got {'port': 0, 'user': 'admin', 'nested': {'a': True}}"),
        "{err}"
    );
    assert!(!removed, "a container was created");
    assert!(
        !tmp.path().join("data").exists(),
        "a data folder was created"
    );
    assert!(
        !tmp.path().join("state/addons/local_optbad/token").exists(),
        "a token was written"
    );
}
