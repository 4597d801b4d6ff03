//! The profile generator on hand-made add-ons: template injection, `--explain`, byte
//! stability, the committed example profiles, the `/sys` exemption chain and the escaper,
//! with the real parser wherever a question is about what AppArmor allows.

mod common;

use std::path::PathBuf;

use addon_sandbox::addon;
use addon_sandbox::apparmor::probe::{Probe, check};
use addon_sandbox::plan::SandboxPlan;
use addon_sandbox::policy::{self, HostFacts, PlanOptions, PolicyError};
use addon_sandbox::profile::{self, ProfileError, escape::escape};

fn plan(yaml: &str, options: &PlanOptions) -> Result<SandboxPlan, PolicyError> {
    let dir = common::addon_dir(yaml);
    let a = addon::load(dir.path());
    assert!(a.valid(), "test config invalid: {:?}", a.diagnostics);
    policy::decide(a.config.as_ref().unwrap(), false, options)
}

fn unprotected() -> PlanOptions {
    PlanOptions {
        protected: false,
        ..PlanOptions::default()
    }
}

const INJECTIONS: [&str; 14] = [
    "/share/x/** rw, /** rwix, #",
    "/share/x\n/** rwix,",
    "/share/\"x\"",
    "/share/{x,y}",
    "/share/x,y",
    "/share/#x",
    "/share/@{HOME}",
    "/share/*",
    "/share/../etc",
    "/share/x ",
    "/share/x\t",
    "/share/x\u{1}",
    "/share/[ab]",
    "/share/x\\y",
];

#[test]
fn map_paths_that_could_inject_rules_are_rejected_with_a_clear_error() {
    for bad in INJECTIONS {
        let yaml = common::minimal(&format!(
            "map:\n  - type: share\n    read_only: false\n    path: {}\n",
            serde_json::to_string(bad).unwrap()
        ));
        let err = plan(&yaml, &PlanOptions::default()).expect_err(bad);
        let msg = err.to_string();
        assert!(
            matches!(err, PolicyError::BadMapPath { .. })
                && msg.starts_with("map entry 'share': target path"),
            "{bad:?}: {msg}"
        );
    }
}

#[test]
fn device_paths_that_could_inject_rules_are_rejected() {
    for bad in INJECTIONS {
        let dev = bad.replacen("/share", "/dev", 1);
        let yaml = common::minimal(&format!(
            "devices:\n  - {}\n",
            serde_json::to_string(&dev).unwrap()
        ));
        let dir = common::addon_dir(&yaml);
        let a = addon::load(dir.path());
        if !a.valid() {
            continue; // the schema already refuses it
        }
        let err = policy::decide(a.config.as_ref().unwrap(), false, &PlanOptions::default())
            .expect_err(&dev);
        assert!(
            matches!(err, PolicyError::BadDevicePath { .. }),
            "{dev:?}: {err}"
        );
        assert!(err.to_string().starts_with("device '"), "{err}");
    }
}

#[test]
fn the_generator_rejects_injected_paths_even_if_a_plan_carries_them() {
    // A plan built by other code (or edited JSON) is checked again when rendering.
    let base = plan(
        &common::minimal("map: [share:rw]\ndevices: [/dev/ttyUSB0]\n"),
        &PlanOptions::default(),
    )
    .unwrap();
    for bad in INJECTIONS {
        let mut p = base.clone();
        p.mounts
            .iter_mut()
            .find(|m| m.target == "/share")
            .unwrap()
            .target = bad.to_owned();
        let err = profile::generate(&p).expect_err(bad);
        assert!(matches!(err, ProfileError::BadPath(_)), "{bad:?}: {err}");
        assert!(
            err.to_string()
                .contains("cannot go into an AppArmor profile")
        );

        let mut p = base.clone();
        p.devices[0].path_in_container = bad.replacen("/share", "/dev", 1);
        assert!(
            matches!(profile::generate(&p), Err(ProfileError::BadPath(_))),
            "{bad:?}"
        );
    }
    for bad_name in [
        "local_x\n/** rwix,",
        "local_x\"",
        "local_{x}",
        "_x",
        "",
        "a b",
    ] {
        let mut p = base.clone();
        p.apparmor_profile = Some(bad_name.to_owned());
        assert!(
            matches!(profile::generate(&p), Err(ProfileError::BadName(_))),
            "{bad_name:?}"
        );
    }
}

#[test]
fn slugs_and_repositories_that_could_inject_are_rejected() {
    let yaml = common::minimal("");
    for repo in [
        "local\n", "lo\"cal", "a,b", "a{b}", "a b", "#x", "@{x}", "a*",
    ] {
        let options = PlanOptions {
            repository: repo.to_owned(),
            ..PlanOptions::default()
        };
        let err = plan(&yaml, &options).expect_err(repo);
        assert!(
            matches!(err, PolicyError::BadRepository(_)),
            "{repo:?}: {err}"
        );
    }
    // The schema's slug pattern lets a final line break through (Python's `$`).
    let dir = common::addon_dir(
        "name: T\nversion: \"1\"\nslug: \"evil\\n\"\ndescription: d\narch: [amd64]\n",
    );
    let a = addon::load(dir.path());
    if a.valid() {
        let err = policy::decide(a.config.as_ref().unwrap(), false, &PlanOptions::default())
            .expect_err("slug with a line break");
        assert!(matches!(err, PolicyError::BadSlug(_)), "{err}");
    }
}

#[test]
fn an_injected_path_would_have_granted_everything_had_it_not_been_quoted_and_checked() {
    // The golden negative of reference/apparmor.md §5.4: written raw, the map path turns into
    // `/** rwix`. The parser oracle confirms the danger, so the rejection above matters.
    let Some(parser) = common::parser() else {
        return;
    };
    let raw = "abi <abi/3.0>,\ninclude <tunables/global>\nprofile \"t\" {\n  /share/x/** rw, /** rwix, # rw,\n}\n";
    let allowed = check(&parser, raw, &[Probe::exec("/data/evil")]).unwrap();
    assert_eq!(
        allowed,
        [true],
        "raw injection should grant exec everywhere"
    );
    // Escaped and quoted, the same text is one odd literal path that grants nothing else.
    let safe = format!(
        "abi <abi/3.0>,\ninclude <tunables/global>\nprofile \"t\" {{\n  \"{}\" rw,\n}}\n",
        escape("/share/x/** rw, /** rwix, #")
    );
    let allowed = check(
        &parser,
        &safe,
        &[
            Probe::exec("/data/evil"),
            Probe::write("/share/x/y"),
            Probe::write("/share/x/** rw, /** rwix, #"),
        ],
    )
    .unwrap();
    assert_eq!(allowed, [false, false, true]);
}

#[test]
fn escaped_pattern_characters_match_only_themselves() {
    let Some(parser) = common::parser() else {
        return;
    };
    let text = format!(
        "abi <abi/3.0>,\nprofile \"t\" {{\n  \"{}\" w,\n  \"{}\" w,\n}}\n",
        escape("/data/a*b"),
        escape("/data/@{HOME}[x]")
    );
    let allowed = check(
        &parser,
        &text,
        &[
            Probe::write("/data/a*b"),
            Probe::write("/data/axyzb"),
            Probe::write("/data/@{HOME}[x]"),
            Probe::write("/data/@{HOME}x"),
        ],
    )
    .unwrap();
    assert_eq!(allowed, [true, false, true, false]);
}

#[test]
fn explain_annotates_every_rule_and_changes_nothing_else() {
    let yaml = common::minimal(
        "map: [share:rw, ssl]\nprivileged: [NET_RAW]\nuart: true\ndevices: [/dev/ttyACM0]\n",
    );
    let options = PlanOptions {
        grants: [policy::Right::parse("NET_RAW").unwrap()].into(),
        ..PlanOptions::default()
    };
    let p = plan(&yaml, &options).unwrap();
    let prof = profile::generate(&p).unwrap();
    let plain = prof.render(false).unwrap();
    let explained = prof.render(true).unwrap();
    let mut rules = 0;
    for line in explained.lines() {
        let t = line.trim_start();
        if t.ends_with('}') || t.starts_with('#') || t.is_empty() || !line.starts_with("  ") {
            continue;
        }
        if t.starts_with("include ") {
            continue;
        }
        rules += 1;
        assert!(line.contains(",  # "), "rule without a reason: {line}");
    }
    assert!(rules > 40, "{rules}");
    let stripped: Vec<&str> = explained
        .lines()
        .map(|l| l.split(",  # ").next().unwrap())
        .collect();
    let plain_lines: Vec<String> = plain
        .lines()
        .map(|l| l.strip_suffix(',').unwrap_or(l).to_owned())
        .collect();
    assert_eq!(stripped.len(), plain_lines.len());
    for (a, b) in stripped.iter().zip(&plain_lines) {
        assert_eq!(a.strip_suffix(',').unwrap_or(a), b);
    }
    for (needle, reason) in [
        ("\"/share{,/**}\" rwlk", "map: share"),
        ("\"/ssl{,/**}\" wl", "map: ssl"),
        ("capability net_raw", "granted: NET_RAW"),
        ("network packet raw", "granted: NET_RAW"),
        ("\"/dev/ttyACM0{,/**}\" rwk", "devices: /dev/ttyACM0"),
        ("/dev/tty{S,USB,ACM,AMA,SAC}[0-9]*", "uart"),
        ("deny mount", "base"),
    ] {
        let line = explained
            .lines()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no rule {needle}"));
        assert!(line.contains(&format!("# {reason}")), "{line}");
    }
}

#[test]
fn output_is_byte_stable_and_independent_of_map_order() {
    let a = common::minimal("map: [share:rw, ssl, media, backup:rw]\nusb: true\n");
    let b = common::minimal("map: [backup:rw, media, ssl, share:rw]\nusb: true\n");
    let pa = plan(&a, &PlanOptions::default()).unwrap();
    let pb = plan(&b, &PlanOptions::default()).unwrap();
    let ta = profile::generate(&pa).unwrap().render(true).unwrap();
    assert_eq!(ta, profile::generate(&pa).unwrap().render(true).unwrap());
    assert_eq!(ta, profile::generate(&pb).unwrap().render(true).unwrap());
}

#[test]
fn withheld_rights_leave_no_trace_in_the_profile() {
    let yaml = common::minimal(
        "docker_api: true\nhost_dbus: true\nfull_access: true\nprivileged: [SYS_ADMIN, NET_RAW]\n",
    );
    let strict = profile::generate(&plan(&yaml, &PlanOptions::default()).unwrap())
        .unwrap()
        .render(false)
        .unwrap();
    for absent in [
        "capability sys_admin",
        "capability net_raw",
        "network packet raw",
        "\"/dev/**\" rwk",
        "\"/run/docker.sock\" rw",
    ] {
        assert!(
            !strict.contains(absent),
            "{absent} in the protected profile"
        );
    }
    let open = profile::generate(&plan(&yaml, &unprotected()).unwrap())
        .unwrap()
        .render(false)
        .unwrap();
    for present in [
        "capability sys_admin",
        "\"/dev/**\" rwk",
        "\"/run/docker.sock\" rw",
    ] {
        assert!(
            open.contains(present),
            "{present} missing with protection off"
        );
    }
}

#[test]
fn granted_host_rights_are_allowed_and_only_those() {
    let Some(parser) = common::parser() else {
        return;
    };
    let yaml = common::minimal("docker_api: true\nhost_dbus: true\n");
    let on = profile::generate(&plan(&yaml, &PlanOptions::default()).unwrap())
        .unwrap()
        .render(false)
        .unwrap();
    let off = profile::generate(&plan(&yaml, &unprotected()).unwrap())
        .unwrap()
        .render(false)
        .unwrap();
    let probes = [
        Probe::write("/run/docker.sock"),
        Probe::write("/run/dbus/system_bus_socket"),
        Probe::UnixConnectHost,
        Probe::write("/run/other.sock"),
    ];
    assert_eq!(
        check(&parser, &on, &probes).unwrap(),
        [false, false, false, true]
    );
    assert_eq!(
        check(&parser, &off, &probes).unwrap(),
        [true, true, true, true]
    );
}

#[test]
fn gpio_sysfs_is_writable_and_the_rest_of_sys_is_not() {
    let Some(parser) = common::parser() else {
        return;
    };
    let options = PlanOptions {
        host: HostFacts {
            gpio_sysfs: true,
            ..HostFacts::default()
        },
        ..PlanOptions::default()
    };
    let p = plan(&common::minimal("gpio: true\n"), &options).unwrap();
    let text = profile::generate(&p).unwrap().render(false).unwrap();
    assert!(
        !text.contains("deny \"/sys/**\" wlkx"),
        "the blanket deny would block gpio"
    );
    let probes = [
        Probe::write("/sys/class/gpio/export"),
        Probe::write("/sys/class/gpio/gpio17/value"),
        Probe::write("/sys/devices/platform/soc/3f200000.gpio/gpio/gpio17/value"),
        Probe::write("/sys/kernel/uevent_helper"),
        Probe::write("/sys/class/gpiox"),
        Probe::write("/sys/class/net/eth0/mtu"),
        Probe::write("/sys/devices/platform/socx/y"),
        Probe::write("/sys/c"),
        Probe::write("/sys/kernel/security/apparmor/.load"),
        Probe::write("/sys/fs/cgroup/x"),
        Probe::write("/dev/gpiochip0"),
        Probe::write("/dev/mem"),
    ];
    let got = check(&parser, &text, &probes).unwrap();
    let want = [
        true, true, true, false, false, false, false, false, false, false, true, false,
    ];
    for ((p, g), w) in probes.iter().zip(&got).zip(want) {
        assert_eq!(*g, w, "{p}");
    }
}

fn profiles_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("profiles")
}

/// Every right `--grant` knows except running unconfined: the profiles that show each config
/// key's rules.
fn all_granted() -> PlanOptions {
    PlanOptions {
        grants: policy::Right::all()
            .into_iter()
            .filter(|r| *r != policy::Right::Unconfined)
            .collect(),
        ..PlanOptions::default()
    }
}

/// `profiles/` holds the generated profiles of the examples: protection on (the default), and
/// in `profiles/granted/` with every right granted but `unconfined`, so that every config key
/// shows its rules. `UPDATE_SNAPSHOTS=1` rewrites them.
#[test]
fn committed_example_profiles_are_current() {
    let update = std::env::var("UPDATE_SNAPSHOTS").as_deref() == Ok("1");
    let mut checked = 0;
    for (sub, options) in [("", PlanOptions::default()), ("granted", all_granted())] {
        let dir = profiles_dir().join(sub);
        for example in common::example_dirs() {
            let a = addon::load(&example);
            let p = policy::decide(
                a.config.as_ref().unwrap(),
                a.apparmor_profile.is_some(),
                &options,
            )
            .unwrap();
            let Ok(prof) = profile::generate(&p) else {
                continue; // unconfined by a grant: no profile
            };
            let text = prof.render(true).unwrap();
            let file = dir.join(&p.full_slug);
            if update {
                std::fs::create_dir_all(&dir).unwrap();
                std::fs::write(&file, &text).unwrap();
            }
            let committed = std::fs::read_to_string(&file)
                .unwrap_or_else(|_| panic!("{} missing (UPDATE_SNAPSHOTS=1)", file.display()));
            assert_eq!(
                committed,
                text,
                "{} is stale (UPDATE_SNAPSHOTS=1)",
                file.display()
            );
            checked += 1;
        }
    }
    assert!(checked >= 5, "{checked}");
}

#[test]
fn committed_example_profiles_compile_and_name_one_profile() {
    let Some(parser) = common::parser() else {
        return;
    };
    for sub in ["", "granted"] {
        for entry in std::fs::read_dir(profiles_dir().join(sub))
            .unwrap()
            .flatten()
        {
            let path = entry.path();
            if !path.is_file() || path.extension().is_some() {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let r = parser.check(&text).unwrap();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            assert_eq!(r.names, [name], "{}", path.display());
            assert!(
                r.warnings.is_empty(),
                "{}: {:?}",
                path.display(),
                r.warnings
            );
        }
    }
}

#[test]
fn devices_the_old_prefix_list_let_through_are_withheld() {
    let names = [
        "/dev/vg0/root",
        "/dev/sg0",
        "/dev/ng0n1",
        "/dev/mtd0",
        "/dev/mtdblock0",
        "/dev/ram0",
        "/dev/zd0",
        "/dev/rbd0",
        "/dev/pmem0",
        "/dev/cpu/0/msr",
        "/dev/kmsg",
        "/dev/tty1",
        "/dev/tty63",
        "/dev/console",
        "/dev/vcs1",
        "/dev/vcsa1",
        "/dev/pts/0",
    ];
    let yaml = common::minimal(&format!("devices: [{}, /dev/ttyUSB0]\n", names.join(", ")));
    let p = plan(&yaml, &PlanOptions::default()).unwrap();
    let devices: Vec<&str> = p
        .devices
        .iter()
        .map(|d| d.path_in_container.as_str())
        .collect();
    assert_eq!(devices, ["/dev/ttyUSB0"]);
    for name in names {
        assert!(
            p.withheld
                .iter()
                .any(|w| w.right == format!("device:{name}")),
            "{name} not withheld"
        );
    }
    let text = profile::generate(&p).unwrap().render(false).unwrap();
    assert!(
        !text.contains("\"/dev/kmsg"),
        "a withheld node in the profile"
    );
}

#[test]
fn raw_devices_are_withheld_unless_granted() {
    let yaml = common::minimal("devices: [/dev/sda, /dev/ttyUSB0, /dev/mem, /dev/nvme0n1p2]\n");
    let p = plan(&yaml, &PlanOptions::default()).unwrap();
    let devices: Vec<&str> = p
        .devices
        .iter()
        .map(|d| d.path_in_container.as_str())
        .collect();
    assert_eq!(devices, ["/dev/ttyUSB0"]);
    for raw in ["/dev/sda", "/dev/mem", "/dev/nvme0n1p2"] {
        let w = p
            .withheld
            .iter()
            .find(|w| w.right == format!("device:{raw}"))
            .unwrap_or_else(|| panic!("{raw} not withheld: {:?}", p.withheld));
        assert_eq!(w.grant_with, "--grant raw_devices");
        assert!(!p.granted.contains(&format!("device:{raw}")));
    }
    let text = profile::generate(&p).unwrap().render(false).unwrap();
    assert!(
        !text.contains("\"/dev/sda"),
        "a withheld disk in the profile"
    );
    assert!(text.contains("deny \"/dev/mem\""), "/dev/mem stays denied");

    let granted = PlanOptions {
        grants: [policy::Right::parse("raw_devices").unwrap()].into(),
        ..PlanOptions::default()
    };
    let p = plan(&yaml, &granted).unwrap();
    assert_eq!(p.devices.len(), 4);
    assert!(p.notes.is_empty(), "the grant was used: {:?}", p.notes);
    let text = profile::generate(&p).unwrap().render(false).unwrap();
    assert!(text.contains("\"/dev/sda{,/**}\" rwk"));
    assert!(
        !text.contains("deny \"/dev/mem\""),
        "a granted /dev/mem is not denied"
    );
    // Protection off grants them too; the supervisor policy passes them as the Supervisor does.
    let p = plan(&yaml, &unprotected()).unwrap();
    assert_eq!(p.devices.len(), 4);
}

/// Item: map targets the Supervisor accepts. A writable map at `/usr/local` (inside the
/// image's code directories, which are executable) is writable and, by W^X, not executable in
/// the strict profile, as the parser compiles it; the plan says so and names the grant, and
/// `--grant map_exec` makes exactly that target executable.
#[test]
fn a_writable_map_in_a_code_directory_is_writable_but_not_executable() {
    let Some(parser) = common::parser() else {
        return;
    };
    let yaml = common::minimal(
        "map:\n  - type: share\n    read_only: false\n    path: /usr/local/\n  - type: ssl\n    path: /etc/app\n",
    );
    let p = plan(&yaml, &PlanOptions::default()).unwrap();
    let usr_local = p.mounts.iter().find(|m| m.target == "/usr/local").unwrap();
    assert!(!usr_local.read_only && !usr_local.exec, "{usr_local:?}");
    assert!(
        p.mounts
            .iter()
            .any(|m| m.target == "/etc/app" && m.read_only)
    );
    let w = p
        .withheld
        .iter()
        .find(|w| w.right == "map_exec:share:/usr/local")
        .expect("the plan names the withheld execution");
    assert_eq!(w.grant_with, "--grant map_exec");
    let explained = profile::generate(&p).unwrap().render(true).unwrap();
    assert!(
        explained.contains("W\\^X; --grant map_exec lifts it"),
        "{explained}"
    );
    let text = profile::generate(&p).unwrap().render(false).unwrap();
    let probes = [
        Probe::write("/usr/local/bin/tool"),
        Probe::exec("/usr/local/bin/tool"),
        Probe::exec("/usr/bin/env"),
        Probe::read("/etc/app/cert.pem"),
        Probe::write("/etc/app/cert.pem"),
    ];
    assert_eq!(
        check(&parser, &text, &probes).unwrap(),
        [true, false, true, true, false]
    );

    let granted = PlanOptions {
        grants: [policy::Right::MapExec].into(),
        ..PlanOptions::default()
    };
    let p = plan(&yaml, &granted).unwrap();
    assert!(p.is_granted("map_exec:share:/usr/local"), "{:?}", p.granted);
    let text = profile::generate(&p).unwrap().render(false).unwrap();
    assert_eq!(
        check(&parser, &text, &probes[..2]).unwrap(),
        [true, true],
        "granted: writable and executable"
    );
}

/// Security review: the write-and-execute exception for s6-overlay under the writable `/run`
/// is exactly the four places s6-overlay 3 generates scripts into and runs them from
/// (docs/workloads.md), with `ix` and never `m`. The old `/run/{s6,s6-rc*,service}/**` also let
/// the add-on run what it wrote to `/run/s6/db`, `/run/s6/container_environment` or a
/// directory of its own named `/run/s6-rcX`.
#[test]
fn only_the_scripts_s6_overlay_generates_under_run_are_executable() {
    let Some(parser) = common::parser() else {
        return;
    };
    let p = plan(&common::minimal(""), &PlanOptions::default()).unwrap();
    let text = profile::generate(&p).unwrap().render(false).unwrap();
    let executable = [
        "/run/s6/basedir/bin/init",
        "/run/s6/basedir/scripts/rc.init",
        "/run/service/.s6-svscan/SIGTERM",
        "/run/service/s6-linux-init-shutdownd/run",
        "/run/s6-rc:s6-rc-init:abc/servicedirs/probe/run",
        "/run/s6-rc:s6-rc-init:abc/servicedirs/probe/finish",
        "/run/s6/legacy-services/x/finish",
        "/run/s6/legacy-services/x/run",
        // A script of the service folder its `run` starts (mosquitto's `./discovery &`):
        // the kernel denied it in tests/official_vm.rs before the rule covered the folder.
        "/run/s6/legacy-services/x/discovery",
    ];
    let not_executable = [
        "/run/s6/db/x",
        "/run/s6/container_environment/X",
        "/run/s6/workdir",
        "/run/x",
        "/run/s6-rc:s6-rc-init:abc/x",
        "/run/s6-rc:s6-rc-init:abc/servicedirs/probe/data/x",
        "/run/s6-rcX/servicedirs/probe/run",
        "/run/s6-rc:evil/servicedirs/probe/run",
        "/run/s6/legacy-services/x/data/run",
        "/run/service-evil/x",
        "/run/s6-linux-init-container-results/exitcode",
        "/var/run/x",
    ];
    let mmap = |p: &str| Probe::file(p, addon_sandbox::profile::rule::FilePerms::MMAP_EXEC);
    let mut expected: Vec<(Probe, bool)> = Vec::new();
    expected.extend(executable.iter().map(|p| (Probe::exec(p), true)));
    expected.extend(not_executable.iter().map(|p| (Probe::exec(p), false)));
    // Nothing is mapped executable from /run: every file there that runs is a `#!` script.
    expected.extend(
        executable
            .iter()
            .chain(&not_executable)
            .map(|p| (mmap(p), false)),
    );
    // Everything under /run stays writable for s6 and the add-on.
    for p in ["/run/s6/db/x", "/run/service/x/supervise/lock", "/run/x"] {
        expected.push((Probe::write(p), true));
    }
    assert_verdicts(&parser, &text, &expected);
}

/// Found by tests/official_vm.rs in the real kernel: busybox crond logging to `/dev/stderr`
/// (opened with O_CREAT) on the container's pipe was denied as a create of
/// `/proc/<pid>/fd/2`. The standard streams are writable by name; other descriptors and other
/// files under `/proc/<pid>` are not.
#[test]
fn the_standard_streams_are_writable_by_name_and_nothing_else_in_proc() {
    let Some(parser) = common::parser() else {
        return;
    };
    let p = plan(&common::minimal(""), &PlanOptions::default()).unwrap();
    let text = profile::generate(&p).unwrap().render(false).unwrap();
    let expected = [
        (Probe::write("/proc/61/fd/2"), true),
        (Probe::write("/proc/1/fd/1"), true),
        (Probe::write("/proc/61/fd/0"), true),
        (Probe::write("/proc/61/fd/3"), false),
        (Probe::write("/proc/61/fd/20"), false),
        (Probe::write("/proc/61/mem"), false),
        (Probe::write("/proc/61/attr/current"), false),
        (Probe::write("/proc/sysrq-trigger"), false),
        (Probe::exec("/proc/61/fd/2"), false),
    ];
    assert_verdicts(&parser, &text, &expected);
}

/// Found by tests/official_vm.rs in the real kernel: ssh's cont-init makes `/config` a link
/// to `/homeassistant` (the folder's place before the `homeassistant_config` map), denied as a
/// create in `/`. With that map, and nothing mounted at `/config`, the one path may be
/// created; without the map, or with `addon_config` at `/config`, the rule is absent, and no
/// other new entry in `/` is allowed either way.
#[test]
fn the_legacy_config_link_follows_the_homeassistant_config_map() {
    let Some(parser) = common::parser() else {
        return;
    };
    let allowed = |yaml: &str| {
        let p = plan(&common::minimal(yaml), &PlanOptions::default()).unwrap();
        let text = profile::generate(&p).unwrap().render(false).unwrap();
        let probes = [
            Probe::write("/config"),
            Probe::write("/evil"),
            Probe::write("/configx"),
        ];
        check(&parser, &text, &probes).unwrap()
    };
    assert_eq!(
        allowed("map:\n  - homeassistant_config:rw\n"),
        vec![true, false, false]
    );
    assert_eq!(
        allowed("map:\n  - homeassistant_config:ro\n"),
        vec![true, false, false]
    );
    assert_eq!(allowed(""), vec![false, false, false]);
    assert_eq!(allowed("map:\n  - share:rw\n"), vec![false, false, false]);
    // `/config` is the add-on's own config folder there: its map's rules, not the link's.
    let both = "map:\n  - homeassistant_config:rw\n  - addon_config:ro\n";
    let p = plan(&common::minimal(both), &PlanOptions::default()).unwrap();
    let text = profile::generate(&p).unwrap().render(false).unwrap();
    assert!(!text.contains("made a link"), "{text}");
}

/// Found in the real kernel (tests/official_vm.rs, samba): an add-on's `enable-check.sh`
/// switches optional services on and off by creating and removing the user bundle's entries
/// under `/etc/s6-overlay/s6-rc.d/user/contents.d` before s6-rc compiles it. The explicit deny
/// of writes to s6-overlay's code is not audited, so the refusal was silent (nmbd and wsdd ran
/// although the options turned them off). Those entries, and nothing else there, are writable,
/// and never executable.
#[test]
fn the_s6_user_bundle_entries_are_writable_and_nothing_else_of_s6_overlay() {
    let Some(parser) = common::parser() else {
        return;
    };
    let p = plan(&common::minimal(""), &PlanOptions::default()).unwrap();
    let text = profile::generate(&p).unwrap().render(false).unwrap();
    let bundle = "/etc/s6-overlay/s6-rc.d/user/contents.d";
    let expected = [
        (Probe::write(&format!("{bundle}/nmbd")), true),
        (Probe::write(&format!("{bundle}/wsdd")), true),
        (Probe::read(&format!("{bundle}/nmbd")), true),
        (Probe::exec(&format!("{bundle}/nmbd")), false),
        (
            Probe::file(
                &format!("{bundle}/nmbd"),
                addon_sandbox::profile::rule::FilePerms::MMAP_EXEC,
            ),
            false,
        ),
        (Probe::write("/etc/s6-overlay/s6-rc.d/nmbd/run"), false),
        (Probe::write("/etc/s6-overlay/s6-rc.d/user/type"), false),
        (Probe::write("/etc/s6-overlay/s6-rc.d/user/contents"), false),
        (
            Probe::write("/etc/s6-overlay/s6-rc.d/user/contents.dx"),
            false,
        ),
        (
            Probe::write("/etc/s6-overlay/scripts/enable-check.sh"),
            false,
        ),
        (
            Probe::write("/etc/s6-overlay/s6-rc.d/user2/contents.d/x"),
            false,
        ),
        (Probe::exec("/etc/s6-overlay/scripts/enable-check.sh"), true),
    ];
    assert_verdicts(&parser, &text, &expected);
}

/// The real parser's verdict on every probe of `profile` is the expected one; the message lists
/// every probe that differs.
fn assert_verdicts(
    parser: &addon_sandbox::apparmor::Parser,
    profile: &str,
    expected: &[(Probe, bool)],
) {
    let probes: Vec<Probe> = expected.iter().map(|(p, _)| p.clone()).collect();
    let got = check(parser, profile, &probes).unwrap();
    let wrong: Vec<String> = expected
        .iter()
        .zip(&got)
        .filter(|((_, want), allowed)| want != *allowed)
        .map(|((probe, _), allowed)| format!("{probe}: allowed={allowed}"))
        .collect();
    assert!(wrong.is_empty(), "{wrong:#?}");
}

/// The Supervisor's shared folders are reachable only through a map: unmapped, reading and
/// writing them are refused (learn reads such a refusal as the map to add); mapped read-only
/// they are readable and not writable; an image's own `/config` stays readable either way.
#[test]
fn shared_folders_are_refused_unless_mapped() {
    let Some(parser) = common::parser() else {
        return;
    };
    let none = plan(&common::minimal(""), &PlanOptions::default()).unwrap();
    let text = profile::generate(&none).unwrap().render(false).unwrap();
    let mut expected = Vec::new();
    for folder in ["ssl", "share", "media", "backup"] {
        expected.push((Probe::read(&format!("/{folder}/fullchain.pem")), false));
        expected.push((Probe::read(&format!("/{folder}/")), false));
        expected.push((Probe::write(&format!("/{folder}/x")), false));
    }
    expected.push((Probe::read("/config/app.conf"), true));
    expected.push((Probe::read("/sharex/file"), true));
    assert_verdicts(&parser, &text, &expected);

    let mapped = plan(
        &common::minimal("map:\n  - ssl\n  - share:rw\n"),
        &PlanOptions::default(),
    )
    .unwrap();
    let text = profile::generate(&mapped).unwrap().render(false).unwrap();
    let expected = [
        (Probe::read("/ssl/fullchain.pem"), true),
        (Probe::write("/ssl/fullchain.pem"), false),
        (Probe::read("/share/notes.txt"), true),
        (Probe::write("/share/notes.txt"), true),
        (Probe::read("/media/tune.ogg"), false),
    ];
    assert_verdicts(&parser, &text, &expected);
}
