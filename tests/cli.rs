//! The command line as other tools use it: exit codes, JSON field names, human output.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn bin() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_addon-sandbox"));
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"));
    cmd
}

fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("run addon-sandbox")
}

fn json_lines(out: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
        .collect()
}

fn keys(v: &Value) -> Vec<String> {
    v.as_object().unwrap().keys().cloned().collect()
}

#[test]
fn check_json_has_the_documented_fields_and_exit_status() {
    let ok = run(&[
        "check",
        "--json",
        "examples/mqtt-bridge",
        "examples/network-monitor",
    ]);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let lines = json_lines(&ok);
    assert_eq!(lines.len(), 2);
    assert_eq!(
        keys(&lines[0]),
        ["path", "slug", "valid", "errors", "warnings"]
    );
    assert_eq!(lines[0]["slug"], "mqtt_bridge");
    assert_eq!(lines[0]["valid"], true);

    let bad = run(&[
        "check",
        "--json",
        "tests/fixtures/bad-addon",
        "examples/mqtt-bridge",
    ]);
    assert_eq!(bad.status.code(), Some(1));
    let lines = json_lines(&bad);
    assert_eq!(lines[0]["valid"], false);
    assert_eq!(lines[0]["slug"], "bad addon");
    let error = &lines[0]["errors"][0];
    assert_eq!(
        keys(error),
        ["message", "file", "line", "column", "snippet"]
    );
    assert!(error["file"].as_str().unwrap().ends_with("config.yaml"));
    assert_eq!(lines[1]["valid"], true);
}

#[test]
fn check_reports_every_error_of_the_bad_fixture_at_once() {
    let out = run(&["check", "--json", "tests/fixtures/bad-addon"]);
    let report = &json_lines(&out)[0];
    let lines: Vec<u64> = report["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["line"].as_u64().unwrap())
        .collect();
    // slug, arch, init, apparmor, ports x2, map read_only, environment, privileged, image
    for line in [4, 6, 7, 9, 11, 12, 16, 19, 21, 22] {
        assert!(lines.contains(&line), "no error on line {line}: {lines:?}");
    }
    let warnings: Vec<&str> = report["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["message"].as_str().unwrap())
        .collect();
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("device-tree") && w.contains("devicetree")),
        "{warnings:?}"
    );
    assert!(
        warnings.iter().any(|w| w.contains("share:RW")),
        "{warnings:?}"
    );
    assert!(
        warnings.iter().any(|w| w.contains("no 'type'")),
        "{warnings:?}"
    );
    assert!(
        warnings.iter().any(|w| w.contains("startup: before")),
        "{warnings:?}"
    );
}

/// The human output of `check` for the bad fixture, compared with a reviewed snapshot.
/// Regenerate with `UPDATE_SNAPSHOTS=1 cargo test --test cli` and review the diff.
#[test]
fn check_human_output_snapshot() {
    let out = run(&["check", "tests/fixtures/bad-addon"]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8(out.stdout).unwrap();
    let snapshot =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots/check-bad-addon.txt");
    if std::env::var("UPDATE_SNAPSHOTS").as_deref() == Ok("1") {
        std::fs::write(&snapshot, &text).unwrap();
    }
    let expected =
        std::fs::read_to_string(&snapshot).expect("snapshot exists (UPDATE_SNAPSHOTS=1 to create)");
    assert_eq!(
        text, expected,
        "check output changed; review and UPDATE_SNAPSHOTS=1 if intended"
    );
}

#[test]
fn rate_json_factors_add_up() {
    let out = run(&[
        "rate",
        "--json",
        "examples/network-monitor",
        "examples/mqtt-bridge",
    ]);
    assert!(out.status.success());
    let lines = json_lines(&out);
    assert_eq!(keys(&lines[0]), ["path", "slug", "rating", "factors"]);
    for line in &lines {
        let sum: i64 = 5 + line["factors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["delta"].as_i64().unwrap())
            .sum::<i64>();
        assert_eq!(Some(sum), line["rating"].as_i64(), "{line}");
    }
    // docker_api and full_access pin the rating to 1; ingress + auth_api + nothing risky is 7.
    assert_eq!(lines[0]["rating"], 1);
    assert_eq!(lines[1]["rating"], 7);
    // The override says what it is: the rating set to 1, not a delta to add.
    let pin = lines[0]["factors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["reason"].as_str().unwrap().contains("docker_api"))
        .expect("the docker_api factor");
    assert_eq!(pin["sets"], 1);
    let text = String::from_utf8(run(&["rate", "examples/network-monitor"]).stdout).unwrap();
    let line = text.lines().find(|l| l.contains("docker_api")).unwrap();
    assert!(line.trim_start().starts_with("=1 "), "{line}");
    assert!(!line.contains('+'), "{text}");
}

const PLAN_FIELDS: [&str; 23] = [
    "path",
    "full_slug",
    "rating",
    "policy",
    "protected",
    "granted",
    "withheld",
    "mounts",
    "cap_add",
    "cap_drop",
    "network_mode",
    "pid_mode",
    "uts_mode",
    "ipc_mode",
    "security_opt",
    "device_cgroup_rules",
    "devices",
    "tmpfs",
    "ulimits",
    "env_keys",
    "ports",
    "container_name",
    "image",
];

fn plan(args: &[&str]) -> Value {
    let out = run(&[&["plan", "--json", "--data-root", "/srv/ha"], args].concat());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    json_lines(&out).remove(0)
}

#[test]
fn plan_json_strict_withholds_host_rights() {
    let p = plan(&["examples/network-monitor"]);
    for field in PLAN_FIELDS {
        assert!(p.get(field).is_some(), "missing {field}");
    }
    assert_eq!(p["full_slug"], "local_network_monitor");
    assert_eq!(p["policy"], "strict");
    assert_eq!(p["protected"], true);
    assert_eq!(p["network_mode"], "default");
    assert_eq!(p["pid_mode"], Value::Null);
    assert_eq!(p["cap_drop"], serde_json::json!(["ALL"]));
    let withheld: Vec<&str> = p["withheld"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["right"].as_str().unwrap())
        .collect();
    for right in [
        "host_network",
        "host_pid",
        "docker_api",
        "SYS_ADMIN",
        "NET_RAW",
        "full_access",
        "admin_role",
        "unconfined",
    ] {
        assert!(
            withheld.contains(&right),
            "{right} not withheld: {withheld:?}"
        );
    }
    let w = &p["withheld"][0];
    assert_eq!(keys(w), ["right", "reason", "grant_with"]);
    assert!(
        !p["cap_add"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c == "SYS_ADMIN")
    );
    let mount = &p["mounts"][0];
    assert_eq!(
        keys(mount),
        ["source", "target", "read_only", "propagation", "kind"]
    );
    assert_eq!(mount["kind"], "directory");
    assert_eq!(mount["source"], "/srv/ha/apps/data/local_network_monitor");
    assert!(
        !p["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["target"] == "/run/docker.sock")
    );
    assert!(
        p["security_opt"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o == "no-new-privileges:true")
    );
}

#[test]
fn plan_grants_and_protection_off() {
    let granted = plan(&[
        "examples/network-monitor",
        "--grant",
        "host_network",
        "--grant",
        "sys_admin",
    ]);
    assert_eq!(granted["network_mode"], "host");
    assert!(
        granted["cap_add"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c == "SYS_ADMIN")
    );
    assert!(
        !granted["cap_add"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c == "NET_RAW")
    );
    assert_eq!(granted["pid_mode"], Value::Null);

    let off = plan(&["examples/network-monitor", "--protection", "off"]);
    assert_eq!(off["withheld"], serde_json::json!([]));
    assert_eq!(off["pid_mode"], "host");
    assert_eq!(off["ipc_mode"], "host");
    assert!(
        off["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["target"] == "/run/docker.sock")
    );
    assert_eq!(off["device_cgroup_rules"], serde_json::json!(["a *:* rwm"]));

    let bad = run(&["plan", "examples/network-monitor", "--grant", "root_please"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unknown right 'root_please'"));
}

#[test]
fn plan_supervisor_mode_and_repository() {
    let p = plan(&[
        "examples/network-monitor",
        "--policy",
        "supervisor",
        "--repository",
        "core",
    ]);
    assert_eq!(p["full_slug"], "core_network_monitor");
    assert_eq!(p["cap_drop"], serde_json::json!([]));
    assert_eq!(p["network_mode"], "host");
    assert_eq!(
        p["security_opt"],
        serde_json::json!(["seccomp=unconfined", "apparmor=unconfined"])
    );
    let bad = run(&[
        "plan",
        "examples/network-monitor",
        "--policy",
        "supervisor",
        "--grant",
        "host_pid",
    ]);
    assert_eq!(bad.status.code(), Some(1));
}

#[test]
fn repository_folder_is_searched() {
    let out = run(&["check", "--json", "examples"]);
    assert!(out.status.success());
    let slugs: Vec<String> = json_lines(&out)
        .iter()
        .map(|l| l["slug"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(slugs, ["media_server", "mqtt_bridge", "network_monitor"]);
    let missing = run(&["check", "no/such/folder"]);
    assert_eq!(missing.status.code(), Some(1));
    let _ = PathBuf::new();
}

#[test]
fn slug_with_a_trailing_line_break_is_valid_but_cannot_be_planned() {
    // Python's `$` matches before a final line break, so the Supervisor accepts this slug;
    // it must not reach a container or profile name.
    let dir = common::addon_dir(&common::minimal("").replace("slug: test\n", "slug: |\n  test\n"));
    let path = dir.path().to_str().unwrap();
    assert!(run(&["check", path]).status.success());
    let out = run(&["plan", path]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("line break"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn profile_prints_one_profile_and_writes_files_on_request() {
    let out = run(&["profile", "examples/mqtt-bridge"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains(
            "profile \"local_mqtt_bridge\" flags=(attach_disconnected,mediate_deleted) {"
        )
    );
    assert!(!text.contains("  # base"), "no reasons without --explain");

    let explained = run(&["profile", "--explain", "examples/mqtt-bridge"]);
    assert!(String::from_utf8_lossy(&explained.stdout).contains("# map: share"));

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("p");
    let out = run(&[
        "profile",
        "examples/mqtt-bridge",
        "-o",
        file.to_str().unwrap(),
    ]);
    assert!(out.status.success());
    assert!(out.stdout.is_empty());
    assert_eq!(std::fs::read_to_string(&file).unwrap(), text);

    // Several add-ons need --out DIR; each file is named by the full slug.
    let many = run(&["profile", "examples"]);
    assert_eq!(many.status.code(), Some(2), "several add-ons without --out");
    assert!(String::from_utf8_lossy(&many.stderr).contains("--out DIR"));
    let out_dir = dir.path().join("all");
    let out = run(&[
        "profile",
        "examples",
        "--repository",
        "a0d7b954",
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut names: Vec<String> = std::fs::read_dir(&out_dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "a0d7b954_media_server",
            "a0d7b954_mqtt_bridge",
            "a0d7b954_network_monitor"
        ]
    );
}

#[test]
fn profile_refuses_plans_without_a_generated_profile() {
    let out = run(&["profile", "--policy", "supervisor", "examples/mqtt-bridge"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("does not use a generated profile"), "{err}");
    assert!(out.stdout.is_empty());

    let dir = common::addon_dir(&common::minimal(
        "map:\n  - type: share\n    path: \"/share/x/** rw, /** rwix, #\"\n",
    ));
    let out = run(&["profile", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("must not contain '*'"), "{err}");
    assert!(out.stdout.is_empty(), "nothing printed for a rejected path");
}

#[test]
fn compare_reports_both_directions_and_the_attacks() {
    if common::parser().is_none() {
        return;
    }
    let out = run(&["compare", "--json", "examples/media-server"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 1);
    let c = &lines[0];
    assert_eq!(c["slug"], "local_media_server");
    let outcomes = c["outcomes"].as_array().unwrap();
    let find = |probe: &str| {
        outcomes
            .iter()
            .find(|o| o["probe"] == probe)
            .unwrap_or_else(|| panic!("no probe {probe}"))
    };
    // The example's apparmor.txt is `file,` plus a few rules: it lets everything through.
    for attack in [
        "write /proc/sysrq-trigger",
        "exec /data/x",
        "write /usr/bin/x",
    ] {
        assert_eq!(find(attack)["theirs"], true, "{attack}");
        assert_eq!(find(attack)["ours"], false, "{attack}");
    }
    assert_eq!(find("write /media/x")["ours"], true, "media is mapped rw");
    assert_eq!(
        find("write /share/x")["ours"],
        false,
        "share is mapped read-only"
    );
    assert!(c["ours_compile_ms"].as_f64().unwrap() > 0.0);

    let human = run(&["compare", "examples/media-server"]);
    let text = String::from_utf8_lossy(&human.stdout);
    assert!(text.contains("theirs allows, ours does not:"), "{text}");
    assert!(text.contains("attacker probes allowed: theirs"), "{text}");
}

/// An upstream that answers every request with 200 and the request line it saw.
fn tiny_upstream() -> std::net::SocketAddr {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut writer = stream;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let request_line = line.trim().to_owned();
                    loop {
                        line.clear();
                        match reader.read_line(&mut line) {
                            Ok(0) | Err(_) => return,
                            Ok(_) if line == "\r\n" => break,
                            Ok(_) => {}
                        }
                    }
                    let body = format!("saw {request_line}");
                    let _ = write!(
                        writer,
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                        body.len()
                    );
                }
            });
        }
    });
    addr
}

/// One request over a fresh connection, the whole answer as text.
fn http_get(addr: &str, path: &str, token: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: x\r\nX-Supervisor-Token: {token}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    stream.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn serve_prints_its_address_and_gates_the_api() {
    use std::io::BufRead;
    let upstream = tiny_upstream();
    let dir = tempfile::tempdir().unwrap();
    let core = dir.path().join("core-token");
    std::fs::write(&core, "the-core-token\n").unwrap();
    let mut child = bin()
        .args(["serve", "--listen", "127.0.0.1:0", "--upstream"])
        .arg(format!("http://{upstream}"))
        .arg("--state-dir")
        .arg(dir.path().join("state"))
        .arg("--core-token-file")
        .arg(&core)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let listen: Value = serde_json::from_str(&first).expect("one JSON line");
    let addr = listen["listen"].as_str().unwrap().to_owned();

    let allowed = http_get(&addr, "/addons/x/sys_options", "the-core-token");
    let unknown = http_get(&addr, "/host/info", "a-token-nobody-has");
    let _ = child.kill();
    let _ = child.wait();
    assert!(allowed.starts_with("HTTP/1.1 200"), "{allowed}");
    assert!(
        allowed.ends_with("saw GET /addons/x/sys_options HTTP/1.1"),
        "{allowed}"
    );
    assert!(unknown.starts_with("HTTP/1.1 403"), "{unknown}");

    let bad = run(&["serve", "--upstream", "ftp://example"]);
    assert_eq!(bad.status.code(), Some(2));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("upstream url \"ftp://example\" must be http://host:port"),
        "{err}"
    );
}

#[test]
fn plan_and_rate_json_write_an_object_with_the_errors_for_an_addon_without_a_plan() {
    // An invalid config, a valid one the policy refuses, and a good one: one object each, in
    // the order given, exit 1.
    let refused =
        common::addon_dir(&common::minimal("").replace("slug: test\n", "slug: |\n  test\n"));
    let refused = refused.path().to_str().unwrap();
    let out = run(&[
        "plan",
        "--json",
        "tests/fixtures/bad-addon",
        refused,
        "examples/mqtt-bridge",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert_eq!(keys(&lines[0]), ["path", "slug", "valid", "errors"]);
    assert_eq!(lines[0]["valid"], false);
    let bad_lines: Vec<u64> = lines[0]["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["line"].as_u64().unwrap())
        .collect();
    assert!(bad_lines.contains(&4), "{bad_lines:?}");
    assert_eq!(lines[1]["valid"], true);
    let why = lines[1]["errors"][0]["message"].as_str().unwrap();
    assert!(why.contains("line break"), "{why}");
    assert_eq!(lines[2]["full_slug"], "local_mqtt_bridge");

    let out = run(&[
        "rate",
        "--json",
        "tests/fixtures/bad-addon",
        "examples/mqtt-bridge",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["valid"], false);
    assert!(!lines[0]["errors"].as_array().unwrap().is_empty());
    assert_eq!(lines[1]["slug"], "mqtt_bridge");
}

#[test]
fn plan_text_shows_what_reaches_the_network_and_what_it_runs_with() {
    let out = run(&["plan", "examples/media-server"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let json = plan(&["examples/media-server"]);
    // Every published port, tmpfs, ulimit and environment key of the plan is in the text.
    for port in json["ports"].as_array().unwrap() {
        let line = format!(
            "{} -> host {}",
            port["container"].as_str().unwrap(),
            port["host"]
        );
        assert!(text.contains(&line), "{line} missing:\n{text}");
    }
    for (target, _) in json["tmpfs"].as_object().unwrap() {
        assert!(text.contains(&format!("{target} (")), "{target}:\n{text}");
    }
    for limit in json["ulimits"].as_array().unwrap() {
        let line = format!(
            "{} {}/{}",
            limit["name"].as_str().unwrap(),
            limit["soft"],
            limit["hard"]
        );
        assert!(text.contains(&line), "{line}:\n{text}");
    }
    let keys: Vec<&str> = json["env_keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap())
        .collect();
    assert!(
        text.contains(&format!("environment keys: [{}]", keys.join(", "))),
        "{text}"
    );
}

#[test]
fn plan_warns_when_the_addon_is_unreachable_or_gets_no_ingress() {
    let notes = |extra: &str, flags: &[&str]| -> Vec<String> {
        let dir = common::addon_dir(&common::minimal(extra));
        let mut args = vec![dir.path().to_str().unwrap()];
        args.extend_from_slice(flags);
        plan(&args)["notes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n.as_str().unwrap().to_owned())
            .collect()
    };
    let unreachable = |n: &Vec<String>| n.iter().any(|n| n.starts_with("unreachable:"));
    let no_ingress = |n: &Vec<String>| n.iter().any(|n| n.starts_with("no ingress:"));
    assert!(unreachable(&notes("host_network: true\n", &[])));
    // Granted, published, or reached through ingress: reachable.
    assert!(!unreachable(&notes(
        "host_network: true\n",
        &["--grant", "host_network"]
    )));
    assert!(!unreachable(&notes(
        "host_network: true\nports:\n  80/tcp: 8080\n",
        &[]
    )));
    assert!(!unreachable(&notes(
        "host_network: true\ningress: true\n",
        &[]
    )));
    assert!(!unreachable(&notes("", &[])));
    assert!(no_ingress(&notes("ingress: true\ningress_port: 0\n", &[])));
    assert!(!no_ingress(&notes(
        "ingress: true\ningress_port: 8099\n",
        &[]
    )));
}

/// The visible commands, as the top-level help lists them.
fn commands() -> Vec<String> {
    let help = String::from_utf8(run(&["--help"]).stdout).unwrap();
    help.lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .map(|l| l.split_whitespace().next().unwrap().to_owned())
        .filter(|c| c != "help")
        .collect()
}

#[test]
fn every_command_describes_every_argument_and_shows_examples() {
    let commands = commands();
    assert!(commands.len() >= 14, "{commands:?}");
    for command in &commands {
        let out = run(&[command, "--help"]);
        assert!(out.status.success(), "{command}");
        let help = String::from_utf8(out.stdout).unwrap();
        assert!(
            help.contains(&format!("Examples:\n  addon-sandbox {command}")),
            "{command} --help has no example:\n{help}"
        );
        // Every entry of Arguments and Options: a name, then (after two spaces) what it does.
        let mut section = false;
        for line in help.lines() {
            if line == "Arguments:" || line == "Options:" {
                section = true;
                continue;
            }
            if !line.starts_with("  ") {
                section = false;
            }
            let entry = line.trim_start();
            if section && (entry.starts_with('-') || entry.starts_with('<')) {
                assert!(
                    entry.contains("  "),
                    "{command}: {entry:?} has no description"
                );
            }
        }
    }
}

#[test]
fn completions_and_man_pages_come_from_the_command_line_itself() {
    let bash = run(&["completions", "bash"]);
    assert!(bash.status.success());
    let bash = String::from_utf8(bash.stdout).unwrap();
    for command in commands() {
        assert!(bash.contains(&command), "no completion for {command}");
    }
    assert!(bash.contains("--attacks-only"));
    assert!(run(&["completions", "tcsh"]).status.code() == Some(2));

    let page = String::from_utf8(run(&["man"]).stdout).unwrap();
    assert!(
        page.starts_with(".ie") || page.contains(".TH addon-sandbox 1"),
        "{page}"
    );
    let dir = tempfile::tempdir().unwrap();
    let out = run(&["man", "--out", dir.path().to_str().unwrap()]);
    assert!(out.status.success());
    let plan = std::fs::read_to_string(dir.path().join("addon-sandbox-plan.1")).unwrap();
    assert!(plan.contains("addon\\-sandbox plan"), "{plan}");
    assert!(plan.contains("\\-\\-grant"));
    for command in commands() {
        assert!(
            dir.path()
                .join(format!("addon-sandbox-{command}.1"))
                .exists()
        );
    }
}

#[test]
fn a_flag_is_taken_only_where_it_changes_what_the_command_does() {
    // The profile (and what compare and preview judge) never names a host folder.
    for command in ["profile", "compare", "preview"] {
        let out = run(&[command, "examples/mqtt-bridge", "--data-root", "/srv"]);
        assert_eq!(out.status.code(), Some(2), "{command}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("--data-root"));
    }
    let out = run(&["plan", "examples/mqtt-bridge", "--data-root", "/srv"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("/srv/"));
}

#[test]
fn a_closed_pipe_ends_the_output_quietly() {
    use std::io::Read;
    // Many add-ons' plans into a reader that stops after the first line.
    let mut child = bin()
        .args(["plan", "examples", "examples", "examples", "examples"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 16];
    stdout.read_exact(&mut first).unwrap();
    drop(stdout);
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}: {stderr}");
    assert!(
        !stderr.contains("Broken pipe") && !stderr.contains("panicked"),
        "{stderr}"
    );
}

#[test]
fn errors_come_in_one_order_in_every_command_and_format() {
    // The bad fixture's checks find the `apparmor` error (line 9) after later lines; every
    // output lists them by file, line and column.
    let places = |v: &Value| -> Vec<(u64, u64)> {
        v["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| (e["line"].as_u64().unwrap(), e["column"].as_u64().unwrap()))
            .collect()
    };
    let check = &json_lines(&run(&["check", "--json", "tests/fixtures/bad-addon"]))[0];
    let order = places(check);
    let mut sorted = order.clone();
    sorted.sort();
    assert_eq!(order, sorted);
    assert!(order.len() >= 10, "{order:?}");
    let plan = &json_lines(&run(&["plan", "--json", "tests/fixtures/bad-addon"]))[0];
    assert_eq!(places(plan), order);
    let rate = &json_lines(&run(&["rate", "--json", "tests/fixtures/bad-addon"]))[0];
    assert_eq!(places(rate), order);
    // The text of rate (standard error) in the same order.
    let text = String::from_utf8(run(&["rate", "tests/fixtures/bad-addon"]).stderr).unwrap();
    let lines: Vec<(u64, u64)> = text
        .lines()
        .filter_map(|l| l.strip_prefix("error: "))
        .filter_map(|l| {
            let mut parts = l.split(':').skip(1);
            Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
        })
        .collect();
    assert_eq!(lines, order);
}

#[test]
fn compare_without_apparmor_txt_is_nothing_to_compare_not_a_failure() {
    if common::parser().is_none() {
        return;
    }
    let out = run(&["compare", "--attacks-only", "examples/mqtt-bridge"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("no apparmor.txt, nothing to compare"));
    assert!(out.stdout.is_empty());
}

#[test]
#[cfg_attr(
    not(corpus),
    ignore = "no corpus: set ADDON_SANDBOX_CORPUS (see docs/testing.md)"
)]
fn compare_streams_its_results_while_it_works() {
    use std::io::BufRead;
    let (Some(corpus), Some(_)) = (common::corpus_dir(), common::parser()) else {
        return;
    };
    // 134 add-ons with their own apparmor.txt: the first results arrive long before the end.
    let repo = corpus.join("community/alexbelgium__hassio-addons");
    let mut child = bin()
        .args(["compare", "--json", "--attacks-only"])
        .arg(&repo)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut first = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let still_running = child.try_wait().unwrap().is_none();
    let _ = child.kill();
    let _ = child.wait();
    let first: Value = serde_json::from_str(&first).expect("a whole JSON result");
    assert!(first["slug"].is_string(), "{first}");
    assert!(still_running, "the first result came only at the end");
}

#[test]
fn profile_out_refuses_two_addons_that_would_write_one_file() {
    let repo = tempfile::tempdir().unwrap();
    for folder in ["one", "two"] {
        std::fs::create_dir(repo.path().join(folder)).unwrap();
        std::fs::write(
            repo.path().join(folder).join("config.yaml"),
            common::minimal(""),
        )
        .unwrap();
    }
    let out_dir = repo.path().join("profiles");
    let out = run(&[
        "profile",
        repo.path().to_str().unwrap(),
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("one") && err.contains("two") && err.contains("local_test"),
        "{err}"
    );
    assert!(!out_dir.exists(), "nothing is written");
}

/// A native sandbox is found by its short name like an engine container, and stopping it
/// revokes its token: here one whose process has ended (nothing to signal), so no engine and
/// no sandbox are needed.
#[test]
fn a_native_sandbox_is_found_by_its_short_name_and_stop_revokes_its_token() {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let addon = state.join("addons/local_shortnative");
    std::fs::create_dir_all(&addon).unwrap();
    let record = serde_json::json!({
        "full_slug": "local_shortnative", "container_name": "app_local_shortnative",
        "container_id": "native:2147483600:1", "image": "rootfs:/nowhere", "confinement": "landlock",
        "role": "default", "hassio_api": false, "homeassistant_api": false, "auth_api": false,
        "ingress_port": null
    });
    std::fs::write(addon.join("record.json"), record.to_string()).unwrap();
    std::fs::write(addon.join("token"), "t").unwrap();
    let out = run(&[
        "stop",
        "shortnative",
        "--state-dir",
        state.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "stopped local_shortnative (its token is revoked)\n"
    );
    assert!(!addon.join("token").exists(), "the token outlived stop");
    let out = run(&["rm", "shortnative", "--state-dir", state.to_str().unwrap()]);
    assert!(out.status.success());
    assert!(!addon.exists(), "lock file or folder left after rm");
}
