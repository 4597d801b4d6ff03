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
