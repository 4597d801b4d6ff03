//! Official add-ons (dnsmasq, mariadb, mosquitto) as stand-in images under `addon-sandbox run`,
//! strict policy: each reaches its ready state and answers a real client from the host, and
//! `stop` + `rm` leave nothing but its data. Start-to-ready times are measured against plain
//! `docker run` of the same image (interleaved, 3 rounds) and printed. Then once more under
//! `--policy supervisor` (the Supervisor's own choices): the same client check.
//!
//! Gated like the bashio test: without the base image (and without REQUIRE_WORKLOADS=1) the
//! tests skip; run them under the shared lock:
//! `flock /tmp/addon-sandbox-docker.lock env REQUIRE_DOCKER=1 REQUIRE_WORKLOADS=1 cargo test --test official_services`

mod common;
#[path = "common/official.rs"]
mod official;

use std::time::{Duration, Instant};

use official::{Official, client, range, require_client, wait_ready};

const ROUNDS: usize = 3;

/// What one add-on's test needs: how to see it ready from the host (given the container's
/// address) and what else to check once it is.
struct Case<'a> {
    options: &'a str,
    ports: &'a [&'a str],
    ready: &'a dyn Fn(&str) -> Result<(), String>,
    check: &'a dyn Fn(&Official, &str),
}

/// `ROUNDS` times: the add-on under `addon-sandbox run` until ready, its checks, then the same
/// image under plain `docker run` until ready, then `stop` + `rm` leaving nothing. Prints the
/// start-to-ready ranges.
fn exercise(official: &Official, case: &Case) {
    let (mut sandboxed, mut plain) = (Vec::new(), Vec::new());
    for round in 1..=ROUNDS {
        let started = Instant::now();
        official.run(case.options);
        let container = official.container();
        let address = official.address(&container);
        let step = format!("round {round}: ready under addon-sandbox run");
        sandboxed.push(wait_ready(
            official,
            &step,
            &container,
            started,
            &mut || (case.ready)(&address),
        ));
        (case.check)(official, &address);

        // The timer starts after the sandboxed container is stopped: its shutdown is not part
        // of the plain start.
        let token = official.docker_stop_keeping_token();
        let started = Instant::now();
        let name = official.plain_run(case.ports, &token);
        let address = official.address(&name);
        let step = format!("round {round}: ready under plain docker run");
        plain.push(wait_ready(official, &step, &name, started, &mut || {
            (case.ready)(&address)
        }));
        let _ = std::process::Command::new("docker")
            .args(["rm", "-f", &name])
            .output();
        official.stop_and_rm();
    }
    eprintln!(
        "{}: start-to-ready over {ROUNDS} rounds: addon-sandbox run {} ({:?}); plain docker run {} ({:?})",
        official.addon,
        range(&sandboxed),
        sandboxed,
        range(&plain),
        plain
    );
    // The Supervisor's own choices: the same client check once, then nothing left.
    let started = Instant::now();
    official.run_under(case.options, "supervisor");
    let container = official.container();
    let address = official.address(&container);
    let took = wait_ready(
        official,
        "ready under addon-sandbox run --policy supervisor",
        &container,
        started,
        &mut || (case.ready)(&address),
    );
    (case.check)(official, &address);
    official.stop_and_rm();
    eprintln!(
        "{}: start to ready under addon-sandbox run --policy supervisor: {took:?}",
        official.addon
    );
}

/// The add-on's entry in `<state>/services.json`, waited for (the add-on publishes it after
/// it is ready).
fn service(official: &Official, name: &str) -> serde_json::Value {
    let file = official.state().join("services.json");
    let started = Instant::now();
    loop {
        let all: serde_json::Value = std::fs::read(&file)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        if !all[name].is_null() {
            return all[name].clone();
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{}: `{name}` never registered in {}: {all}\n--- container log:\n{}\n--- serve log:\n{}",
            official.addon,
            file.display(),
            official.logs(&official.container()),
            official.serve_log()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn dnsmasq_answers_its_configured_records_over_the_published_port() {
    if !common::docker_available() {
        return;
    }
    let Some(image) = official::stand_in("dnsmasq", "bookworm") else {
        return;
    };
    require_client("dig", "bind9-dnsutils");
    let official = Official::new("dnsmasq", image);
    let options = r#"{"defaults":["8.8.8.8"],"forwards":[],"hosts":[{"host":"sandbox.test","ip":"10.11.12.13"}],"services":[],"cnames":[],"txts":[{"name":"sandbox.test","value":"from-the-sandbox"}],"ptrs":[],"log_queries":false,"cache_size":150}"#;
    let dig = |kind: &str| {
        client(
            "dig",
            &[
                "+short",
                "+time=1",
                "+tries=1",
                "-p",
                "53",
                "@127.0.0.1",
                "sandbox.test",
                kind,
            ],
        )
    };
    let ready = |_: &str| match dig("A")? {
        a if a == "10.11.12.13" => Ok(()),
        other => Err(format!("dig A sandbox.test said {other:?}")),
    };
    let check = |o: &Official, _: &str| {
        let txt = dig("TXT");
        assert_eq!(
            txt.as_deref(),
            Ok("\"from-the-sandbox\""),
            "{}: the configured TXT record over 127.0.0.1:53/udp",
            o.addon
        );
    };
    exercise(
        &official,
        &Case {
            options,
            ports: &["53:53/tcp", "53:53/udp"],
            ready: &ready,
            check: &check,
        },
    );
}

#[test]
fn mariadb_answers_sql_with_the_configured_login_and_registers_mysql() {
    if !common::docker_available() {
        return;
    }
    let Some(image) = official::stand_in("mariadb", "bookworm") else {
        return;
    };
    require_client("mariadb", "mariadb-client");
    let official = Official::new("mariadb", image);
    let options = r#"{"databases":["homeassistant"],"logins":[{"username":"homeassistant","password":"s3cret-login"}],"rights":[{"database":"homeassistant","username":"homeassistant"}]}"#;
    let sql = |address: &str, query: &str| {
        client(
            "mariadb",
            &[
                "-h",
                address,
                "-P",
                "3306",
                "-u",
                "homeassistant",
                "-ps3cret-login",
                "--connect-timeout=2",
                "-N",
                "-B",
                "homeassistant",
                "-e",
                query,
            ],
        )
    };
    let ready = |address: &str| match sql(address, "SELECT 6*7")? {
        a if a == "42" => Ok(()),
        other => Err(format!("SELECT 6*7 said {other:?}")),
    };
    let check = |o: &Official, address: &str| {
        let rows = sql(
            address,
            "CREATE TABLE IF NOT EXISTS t (v TEXT); INSERT INTO t VALUES ('kept'); SELECT COUNT(*) > 0 FROM t WHERE v = 'kept';",
        );
        assert_eq!(
            rows.as_deref(),
            Ok("1"),
            "{}: a table written and read by the configured login",
            o.addon
        );
        let mysql = service(o, "mysql");
        assert_eq!(
            mysql["port"], 3306,
            "{}: the mysql service {mysql}",
            o.addon
        );
        assert_eq!(
            mysql["username"], "service",
            "{}: the mysql service {mysql}",
            o.addon
        );
    };
    exercise(
        &official,
        &Case {
            options,
            ports: &[],
            ready: &ready,
            check: &check,
        },
    );
}

#[test]
fn mosquitto_carries_a_message_for_the_configured_login_and_registers_mqtt() {
    if !common::docker_available() {
        return;
    }
    let Some(image) = official::stand_in("mosquitto", "trixie") else {
        return;
    };
    require_client("mosquitto_pub", "mosquitto-clients");
    let official = Official::new("mosquitto", image);
    let options = r#"{"logins":[{"username":"sensor","password":"s3cret-mqtt"}],"log_dest":[],"log_type":[],"require_certificate":false,"certfile":"fullchain.pem","keyfile":"privkey.pem","customize":{"active":false,"folder":"mosquitto"}}"#;
    let mqtt = |program: &str, password: &str, extra: &[&str]| {
        let mut args = vec![
            "-h",
            "127.0.0.1",
            "-p",
            "1883",
            "-u",
            "sensor",
            "-P",
            password,
            "-t",
            "sandbox/check",
        ];
        args.extend_from_slice(extra);
        client(program, &args)
    };
    let ready = |_: &str| mqtt("mosquitto_pub", "s3cret-mqtt", &["-m", "ready"]).map(drop);
    let check = |o: &Official, _: &str| {
        mqtt(
            "mosquitto_pub",
            "s3cret-mqtt",
            &["-r", "-q", "1", "-m", "hello"],
        )
        .unwrap_or_else(|e| panic!("{}: publish with the configured login: {e}", o.addon));
        let got = mqtt("mosquitto_sub", "s3cret-mqtt", &["-C", "1", "-W", "10"]);
        assert_eq!(
            got.as_deref(),
            Ok("hello"),
            "{}: subscribe with the configured login",
            o.addon
        );
        assert!(
            mqtt("mosquitto_pub", "wrong", &["-m", "x"]).is_err(),
            "{}: a wrong password must be refused",
            o.addon
        );
        let broker = service(o, "mqtt");
        assert_eq!(
            broker["port"], 1883,
            "{}: the mqtt service {broker}",
            o.addon
        );
        assert_eq!(
            broker["username"], "addons",
            "{}: the mqtt service {broker}",
            o.addon
        );
    };
    exercise(
        &official,
        &Case {
            options,
            ports: &["1883:1883", "1884:1884", "8883:8883", "8884:8884"],
            ready: &ready,
            check: &check,
        },
    );
}
