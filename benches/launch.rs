//! `addon-sandbox run` end to end against the raw engine: in one run, interleaved, N times:
//!
//! * ours: the `addon-sandbox run` process (parse, plan, connect, checks, create, start,
//!   attest, record);
//! * raw: `create` + `start` of the identical body through the engine API in this process;
//! * cli: `docker run -d` of the same container.
//!
//! Prints medians and the ratios ours/raw and ours/cli. Needs a Docker engine and busybox.
//! Run with `scripts/bench-launch [N]`.

use std::process::Command;
use std::time::{Duration, Instant};

use addon_sandbox::launch::body::{AppArmorMode, StartSpec, create_body};
use addon_sandbox::{addon, policy};

// The test image of the integration tests: one builder, so the bench and the tests never
// leave each other an image under the same tag with different contents.
#[path = "../tests/common/mod.rs"]
mod common;

const IMAGE: &str = common::TEST_IMAGE;

fn rm(name: &str) {
    let _ = Command::new("docker").args(["rm", "-f", name]).output();
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let n: usize = std::env::var("BENCH_N")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    common::ensure_test_image();
    let dir = tempfile::tempdir().unwrap();
    let addon_dir = dir.path().join("addon");
    std::fs::create_dir(&addon_dir).unwrap();
    std::fs::write(
        addon_dir.join("config.yaml"),
        "name: Bench\nversion: \"1\"\nslug: bench\ndescription: d\narch: [amd64, aarch64]\nmap: [share, \"media:rw\"]\nports:\n  8080/tcp: null\n",
    )
    .unwrap();
    let data = dir.path().join("data");
    let state = dir.path().join("state");
    let a = addon::load(&addon_dir);
    let options = policy::PlanOptions {
        data_root: data.to_string_lossy().into_owned(),
        ..policy::PlanOptions::default()
    };
    let plan = policy::decide(a.config.as_ref().unwrap(), false, &options).unwrap();
    for m in &plan.mounts {
        std::fs::create_dir_all(&m.source).unwrap();
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let docker = rt.block_on(async {
        bollard::Docker::connect_with_local_defaults()
            .unwrap()
            .negotiate_version()
            .await
            .unwrap()
    });
    let bin = env!("CARGO_BIN_EXE_addon-sandbox");
    let (mut ours, mut raw, mut cli) = (Vec::new(), Vec::new(), Vec::new());
    let name = plan.container_name.clone();
    for i in 0..=n {
        // ours
        rm(&name);
        let t = Instant::now();
        let out = Command::new(bin)
            .args([
                "run",
                addon_dir.to_str().unwrap(),
                "--allow-unconfined",
                "--image",
                IMAGE,
                "--data-root",
                data.to_str().unwrap(),
                "--state-dir",
                state.to_str().unwrap(),
                "--command",
                "/bin/sleep",
                "600",
            ])
            .output()
            .unwrap();
        let d_ours = t.elapsed();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        rm(&name);

        // raw engine: the identical body, create + start
        let spec = StartSpec {
            image: IMAGE.into(),
            command: Some(vec!["/bin/sleep".into(), "600".into()]),
            token: "0".repeat(64),
            timezone: "UTC".into(),
            apparmor: AppArmorMode::Unconfined,
            recursive_read_only: false,
            network: None,
            extra_hosts: Vec::new(),
        };
        let mut body = create_body(&plan, &spec);
        // The launcher binds without propagation where the host mount is private.
        if let Some(ms) = body.host_config.as_mut().and_then(|h| h.mounts.as_mut()) {
            for m in ms {
                m.bind_options = None;
            }
        }
        let t = Instant::now();
        rt.block_on(async {
            let opts = bollard::query_parameters::CreateContainerOptionsBuilder::new()
                .name(&name)
                .build();
            let r = docker.create_container(Some(opts), body).await.unwrap();
            docker.start_container(&r.id, None).await.unwrap();
        });
        let d_raw = t.elapsed();
        rm(&name);

        // docker run -d of the same container
        let mut args: Vec<String> = vec!["run".into(), "-d".into(), "--name".into(), name.clone()];
        args.push("--cap-drop=ALL".into());
        for c in &plan.cap_add {
            args.push(format!("--cap-add={c}"));
        }
        args.push("--security-opt=no-new-privileges:true".into());
        args.push("--security-opt=apparmor=unconfined".into());
        args.push("--ipc=private".into());
        args.push("--init".into());
        args.push("--tmpfs=/dev/shm:rw,nosuid,nodev,noexec".into());
        for m in &plan.mounts {
            let ro = if m.read_only { ":ro" } else { "" };
            args.push(format!("-v={}:{}{ro}", m.source, m.target));
        }
        args.push(IMAGE.into());
        args.push("/bin/sleep".into());
        args.push("600".into());
        let t = Instant::now();
        let out = Command::new("docker").args(&args).output().unwrap();
        let d_cli = t.elapsed();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        rm(&name);
        if i > 0 {
            // The first round warms caches and is not counted.
            ours.push(d_ours);
            raw.push(d_raw);
            cli.push(d_cli);
        }
    }
    let (o, r, c) = (median(&mut ours), median(&mut raw), median(&mut cli));
    println!("launch of one add-on, median of {n} (interleaved, first round not counted):");
    println!(
        "  addon-sandbox run (end to end, new process)  {:>8.1} ms",
        o.as_secs_f64() * 1e3
    );
    println!(
        "  raw engine create + start (same body)        {:>8.1} ms",
        r.as_secs_f64() * 1e3
    );
    println!(
        "  docker run -d (same container)               {:>8.1} ms",
        c.as_secs_f64() * 1e3
    );
    println!(
        "  ratio ours / raw engine: {:.2}x",
        o.as_secs_f64() / r.as_secs_f64()
    );
    println!(
        "  ratio ours / docker run: {:.2}x",
        o.as_secs_f64() / c.as_secs_f64()
    );
}
