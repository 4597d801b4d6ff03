//! The gateway's own work per request, without the network: the Supervisor's filters, the
//! canonical path, the token lookup and the role decision, next to parsing the same request
//! target into an `http::Uri` (what any HTTP server spends on it anyway), in one run.

use std::hint::black_box;
use std::time::Instant;

use addon_sandbox::gateway::{Gateway, GatewayConfig, Presented, path};

const TARGETS: [&str; 6] = [
    "/addons/self/info",
    "/addons/core_ssh/security",
    "/backups/new/full?compressed=true",
    "/os/datadisk/wipe",
    "/v2/apps/self/logs",
    "/network/interface/eth0/info",
];

fn main() {
    let state = tempfile::tempdir().unwrap();
    let dir = addon_sandbox::launch::state::StateDir::open(state.path()).unwrap();
    dir.write_token("local_bench", "bench-token").unwrap();
    dir.write_record(&addon_sandbox::launch::state::Record {
        full_slug: "local_bench".into(),
        container_name: "c".into(),
        container_id: "0".into(),
        image: "i".into(),
        confinement: "unconfined".into(),
        role: "manager".into(),
        hassio_api: true,
        homeassistant_api: false,
        auth_api: false,
        ingress_port: None,
        policy: "strict".into(),
        ingress_token: None,
        ingress_address: None,
        info: None,
    })
    .unwrap();
    let gateway = Gateway::new(GatewayConfig::new(
        "http://127.0.0.1:9",
        state.path().to_path_buf(),
    ))
    .unwrap();
    let rounds = 200_000;
    let per = |start: Instant| start.elapsed().as_nanos() as f64 / (rounds * TARGETS.len()) as f64;

    let start = Instant::now();
    for _ in 0..rounds {
        for t in TARGETS {
            black_box(t.parse::<http::Uri>().unwrap());
        }
    }
    let uri = per(start);

    let start = Instant::now();
    for _ in 0..rounds {
        for t in TARGETS {
            let uri: http::Uri = t.parse().unwrap();
            path::check_filters(uri.path(), uri.query()).unwrap();
            let canonical = path::normalise(uri.path()).unwrap();
            let caller = gateway.caller("bench-token").expect("known token");
            black_box(gateway.decide(&canonical, Presented::Known(caller)));
        }
    }
    let decided = per(start);
    println!(
        "per request target ({} targets x {rounds} rounds):",
        TARGETS.len()
    );
    println!("  parse into http::Uri                          {uri:8.0} ns");
    println!("  parse + filters + normalise + token + decide  {decided:8.0} ns");
    println!(
        "  the gateway's decision costs {:.1}x the URI parse",
        (decided - uri) / uri
    );
}
