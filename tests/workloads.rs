//! Home Assistant's Debian base image, rebuilt from source by `scripts/build-base-image`, is
//! what real add-ons start from: these tests build it (cached by the hash of its inputs), check
//! it is the image home-assistant/docker-base's `debian/Dockerfile` describes, and run a probe
//! add-on on it: s6-overlay's `/init` runs a cont-init script through bashio, starts an s6-rc
//! longrun, and stops cleanly on `docker stop`.
//!
//! Opt-in, because the first build takes minutes and needs the Debian mirror: without
//! `REQUIRE_WORKLOADS=1` every test skips with a printed reason; with it, an image that cannot
//! be built is a failure. Run under the shared Docker lock:
//! `REQUIRE_WORKLOADS=1 flock /tmp/addon-sandbox-docker.lock cargo test --test workloads`.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

const BASE: &str = "addon-sandbox/base-debian";
const PROBE: &str = "addon-sandbox-test/workload-probe";
/// `docker stop`'s grace period; a clean stop exits 0 well within it (SIGKILL would be 137).
const STOP_TIMEOUT_S: u64 = 10;

fn enabled() -> bool {
    if std::env::var("REQUIRE_WORKLOADS").as_deref() == Ok("1") {
        return true;
    }
    eprintln!(
        "skipped: the workload images take minutes to build the first time \
         (set REQUIRE_WORKLOADS=1 to build them and run these tests)"
    );
    false
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Runs `scripts/build-base-image` for the suites; its output (with each step's time) is
/// printed, and a failure fails the test.
fn build_base(suites: &[&str]) -> String {
    let out = Command::new(root().join("scripts/build-base-image"))
        .args(suites)
        .output()
        .expect("run scripts/build-base-image");
    let log = text(&out);
    eprintln!("{log}");
    assert!(
        out.status.success(),
        "build-base-image {suites:?} failed:\n{log}"
    );
    log
}

fn docker(args: &[&str]) -> Output {
    Command::new("docker")
        .args(args)
        .env("DOCKER_BUILDKIT", "0")
        .output()
        .expect("run the docker CLI")
}

/// `docker <args>` that must succeed; its stdout, trimmed.
fn docker_ok(args: &[&str]) -> String {
    let out = docker(args);
    assert!(
        out.status.success(),
        "docker {args:?} failed:\n{}",
        text(&out)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A container removed when the test ends, however it ends.
struct Container(String);

impl Drop for Container {
    fn drop(&mut self) {
        let _ = docker(&["rm", "-f", &self.0]);
    }
}

fn inspect(image: &str, format: &str) -> String {
    docker_ok(&["image", "inspect", "-f", format, image])
}

/// The image is Home Assistant's Debian base: its entrypoint, environment, label, packages,
/// s6-overlay at `/`, bashio and tempio where the upstream Dockerfile puts them.
fn check_base_image(suite: &str) {
    build_base(&[suite]);
    let image = format!("{BASE}:{suite}");
    assert_eq!(
        inspect(&image, "{{json .Config.Entrypoint}}"),
        r#"["/init"]"#
    );
    let env = inspect(&image, "{{json .Config.Env}}");
    for var in [
        "LANG=C.UTF-8",
        "S6_BEHAVIOUR_IF_STAGE2_FAILS=2",
        "S6_CMD_WAIT_FOR_SERVICES_MAXTIME=0",
        "S6_CMD_WAIT_FOR_SERVICES=1",
        "S6_SERVICES_READYTIME=50",
    ] {
        assert!(
            env.contains(&format!("\"{var}\"")),
            "{image} lacks {var}: {env}"
        );
    }
    assert_eq!(
        inspect(&image, r#"{{index .Config.Labels "io.hass.type"}}"#),
        "base"
    );
    let tempio = inspect(
        &image,
        r#"{{index .Config.Labels "io.addon-sandbox.tempio"}}"#,
    );
    assert!(
        tempio.starts_with("built"),
        "{image} has no tempio: {tempio}"
    );
    // Each line proves one piece: the packages, s6-overlay's layout, bashio, tempio.
    let script = r#"set -e
        dpkg-query -W bash jq tzdata curl ca-certificates xz-utils >/dev/null
        test -x /init -a -x /command/s6-svscan -a -x /package/admin/s6-overlay/command/with-contenv
        test -L /usr/bin/with-contenv -a -L /usr/bin/s6-rc
        test "$(readlink /usr/bin/bashio)" = /usr/lib/bashio/bashio
        test -f /usr/lib/bashio/bashio.sh
        echo '{"who":"tempio"}' >/tmp/c.json
        echo '{{ .who | upper }}' >/tmp/t
        tempio -conf /tmp/c.json -template /tmp/t -out /tmp/o
        cat /tmp/o"#;
    let out = docker_ok(&[
        "run",
        "--rm",
        "--entrypoint",
        "/bin/bash",
        &image,
        "-c",
        script,
    ]);
    assert_eq!(out, "TEMPIO", "tempio rendered the template wrongly");
}

/// Polls `cat <file>` in the container until it prints `want`; false once the deadline passes
/// or the container has stopped (a failed cont-init stops it: S6_BEHAVIOUR_IF_STAGE2_FAILS=2).
fn wait_for_file(name: &str, file: &str, want: &str, deadline: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < deadline {
        let out = docker(&["exec", name, "cat", file]);
        if out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == want {
            return true;
        }
        if docker_ok(&["inspect", "-f", "{{.State.Running}}", name]) != "true" {
            return false;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    false
}

/// The probe add-on on the suite's base: cont-init through bashio, then the longrun up, then a
/// clean stop (exit 0 before the stop timeout). Prints what s6-overlay made under /run.
fn check_probe_addon(suite: &str) {
    build_base(&[suite]);
    let image = format!("{PROBE}:{suite}");
    let from = format!("BUILD_FROM={BASE}:{suite}");
    let context = root().join("tests/workloads/probe");
    docker_ok(&[
        "build",
        "-q",
        "--build-arg",
        &from,
        "-t",
        &image,
        context.to_str().expect("utf-8 path"),
    ]);
    let container = Container(format!("addon-sandbox-test-workload-{suite}"));
    let _ = docker(&["rm", "-f", &container.0]);
    docker_ok(&["run", "-d", "--name", &container.0, &image]);
    let up = wait_for_file(&container.0, "/tmp/probe-up", "up", Duration::from_secs(60));
    let logs = text(&docker(&["logs", &container.0]));
    assert!(up, "the probe service never came up; logs:\n{logs}");
    let init = logs.find("probe cont-init: bashio works");
    let service = logs.find("probe service: started");
    assert!(
        init.is_some() && service.is_some() && init < service,
        "cont-init (bashio::log.info) must run before the service; logs:\n{logs}"
    );
    let run = docker_ok(&["exec", &container.0, "find", "/run", "-maxdepth", "2"]);
    eprintln!("{suite}: /run after start:\n{run}");
    for dir in [
        "/run/s6",
        "/run/service",
        "/run/s6-rc",
        "/run/s6/container_environment",
    ] {
        assert!(
            run.lines().any(|l| l == dir),
            "{dir} missing under /run:\n{run}"
        );
    }
    let start = Instant::now();
    docker_ok(&["stop", "-t", &STOP_TIMEOUT_S.to_string(), &container.0]);
    let took = start.elapsed();
    let code = docker_ok(&["inspect", "-f", "{{.State.ExitCode}}", &container.0]);
    let logs = text(&docker(&["logs", &container.0]));
    eprintln!("{suite}: docker stop took {took:?}, exit code {code}");
    assert_eq!(code, "0", "/init did not stop cleanly; logs:\n{logs}");
    assert!(
        took < Duration::from_secs(STOP_TIMEOUT_S),
        "the stop took the whole timeout ({took:?}); logs:\n{logs}"
    );
}

#[test]
fn bookworm_base_image_is_home_assistants() {
    if enabled() {
        check_base_image("bookworm");
    }
}

#[test]
fn trixie_base_image_is_home_assistants() {
    if enabled() {
        check_base_image("trixie");
    }
}

#[test]
fn bookworm_probe_addon_starts_and_stops_cleanly() {
    if enabled() {
        check_probe_addon("bookworm");
    }
}

#[test]
fn trixie_probe_addon_starts_and_stops_cleanly() {
    if enabled() {
        check_probe_addon("trixie");
    }
}

/// Once built, the images are reused: a second run only checks their labels.
#[test]
fn a_second_build_is_cached_and_takes_seconds() {
    if !enabled() {
        return;
    }
    build_base(&["bookworm", "trixie"]);
    let start = Instant::now();
    let log = build_base(&["bookworm", "trixie"]);
    let took = start.elapsed();
    assert!(
        log.contains("nothing to build"),
        "the second run rebuilt:\n{log}"
    );
    assert!(
        took < Duration::from_secs(10),
        "the cached run took {took:?}"
    );
}
