//! Devices are decided by what they are: the name table at plan time, host facts when the
//! caller read them, and the launch-time check on real nodes (made with mknod in a temporary
//! directory standing in for /dev; these tests run as root).

mod common;

use std::os::unix::fs::symlink;
use std::path::Path;
use std::time::Duration;

use addon_sandbox::addon;
use addon_sandbox::launch::devices::{self, DeviceError};
use addon_sandbox::launch::state::StateDir;
use addon_sandbox::launch::{LaunchError, Launcher, RunOptions};
use addon_sandbox::native::ConfinementChoice;
use addon_sandbox::native::run::NativeOptions;
use addon_sandbox::plan::{PolicyMode, SandboxPlan};
use addon_sandbox::policy::{
    self, NodeClass, NodeFact, NodeKind, PlanOptions, Right, class_by_name, class_by_number,
};
use nix::sys::stat::{Mode, SFlag, makedev, mknod};

fn plan(yaml: &str, options: &PlanOptions) -> SandboxPlan {
    let dir = common::addon_dir(yaml);
    let a = addon::load(dir.path());
    assert!(a.valid(), "test config invalid: {:?}", a.diagnostics);
    policy::decide(a.config.as_ref().unwrap(), false, options).unwrap()
}

fn devices_plan(paths: &[&str], options: &PlanOptions) -> SandboxPlan {
    plan(
        &common::minimal(&format!(
            "devices: [{}]\n",
            paths
                .iter()
                .map(|p| format!("'{p}'"))
                .collect::<Vec<_>>()
                .join(", ")
        )),
        options,
    )
}

fn granting(rights: &[&str]) -> PlanOptions {
    PlanOptions {
        grants: rights.iter().map(|r| Right::parse(r).unwrap()).collect(),
        ..PlanOptions::default()
    }
}

/// Every name of the security review that a prefix list let through, with its class.
const WITHHELD_BY_NAME: [(&str, NodeClass, &str); 24] = [
    ("/dev/vg0/root", NodeClass::Unknown, "unknown_devices"),
    ("/dev/sg0", NodeClass::ScsiGeneric, "raw_devices"),
    ("/dev/bsg/nvme0", NodeClass::ScsiGeneric, "raw_devices"),
    ("/dev/ng0n1", NodeClass::NvmeGeneric, "raw_devices"),
    ("/dev/nvme0", NodeClass::NvmeGeneric, "raw_devices"),
    ("/dev/mtd0", NodeClass::Mtd, "raw_devices"),
    ("/dev/mtdblock0", NodeClass::Block, "raw_devices"),
    ("/dev/ram0", NodeClass::Block, "raw_devices"),
    ("/dev/zd0", NodeClass::Block, "raw_devices"),
    ("/dev/rbd0", NodeClass::Block, "raw_devices"),
    ("/dev/pmem0", NodeClass::Block, "raw_devices"),
    ("/dev/cpu/0/msr", NodeClass::CpuRegisters, "raw_devices"),
    ("/dev/cpu/0/cpuid", NodeClass::CpuRegisters, "raw_devices"),
    ("/dev/kmsg", NodeClass::Kmsg, "raw_devices"),
    ("/dev/tty1", NodeClass::Console, "host_console"),
    ("/dev/tty63", NodeClass::Console, "host_console"),
    ("/dev/console", NodeClass::Console, "host_console"),
    ("/dev/vcs", NodeClass::Vcs, "host_console"),
    ("/dev/vcs1", NodeClass::Vcs, "host_console"),
    ("/dev/vcsa1", NodeClass::Vcs, "host_console"),
    ("/dev/pts/0", NodeClass::Devpts, "host_console"),
    ("/dev/mem", NodeClass::Memory, "raw_devices"),
    ("/dev/sda1", NodeClass::Block, "raw_devices"),
    ("/dev/watchdog", NodeClass::Unknown, "unknown_devices"),
];

const ALLOWED_BY_NAME: [(&str, NodeClass); 20] = [
    ("/dev/ttyUSB0", NodeClass::Serial),
    ("/dev/ttyACM0", NodeClass::Serial),
    ("/dev/ttyS0", NodeClass::Serial),
    ("/dev/ttyAMA0", NodeClass::Serial),
    (
        "/dev/serial/by-id/usb-ITead_Sonoff_Zigbee-if00-port0",
        NodeClass::Serial,
    ),
    ("/dev/video0", NodeClass::Video),
    ("/dev/dri", NodeClass::Video),
    ("/dev/dri/renderD128", NodeClass::Video),
    ("/dev/dvb/adapter0/frontend0", NodeClass::Video),
    ("/dev/vchiq", NodeClass::Video),
    ("/dev/vcsm-cma", NodeClass::Video),
    ("/dev/snd/controlC0", NodeClass::Sound),
    ("/dev/input/event0", NodeClass::Input),
    ("/dev/hidraw0", NodeClass::Input),
    ("/dev/gpiochip0", NodeClass::Gpio),
    ("/dev/i2c-1", NodeClass::I2c),
    ("/dev/spidev0.0", NodeClass::Spi),
    ("/dev/bus/usb/001/002", NodeClass::Usb),
    ("/dev/net/tun", NodeClass::NetTun),
    ("/dev/fuse", NodeClass::Fuse),
];

#[test]
fn name_table_classes_every_reviewed_name() {
    for (path, class, grant) in WITHHELD_BY_NAME {
        assert_eq!(class_by_name(path), class, "{path}");
        assert_eq!(class.right().map(Right::name), Some(grant), "{path}");
        assert!(policy::raw_device(path), "{path}");
    }
    for (path, class) in ALLOWED_BY_NAME {
        assert_eq!(class_by_name(path), class, "{path}");
        assert_eq!(class.right(), None, "{path}");
    }
}

#[test]
fn strict_plan_withholds_each_reviewed_name_with_its_grant() {
    let paths: Vec<&str> = WITHHELD_BY_NAME.iter().map(|(p, _, _)| *p).collect();
    let p = devices_plan(&paths, &PlanOptions::default());
    assert!(p.devices.is_empty(), "passed: {:?}", p.devices);
    for (path, class, grant) in WITHHELD_BY_NAME {
        let w = p
            .withheld
            .iter()
            .find(|w| w.right == format!("device:{path}"))
            .unwrap_or_else(|| panic!("{path} not withheld: {:?}", p.withheld));
        assert_eq!(w.grant_with, format!("--grant {grant}"), "{path}");
        assert!(w.reason.contains(class.name()), "{path}: {}", w.reason);
    }
    // Each grant lets in exactly its classes.
    let p = devices_plan(&paths, &granting(&["host_console"]));
    let passed: Vec<&str> = p.devices.iter().map(|d| d.path_on_host.as_str()).collect();
    let console: Vec<&str> = WITHHELD_BY_NAME
        .iter()
        .filter(|(_, _, g)| *g == "host_console")
        .map(|(p, _, _)| *p)
        .collect();
    assert_eq!(passed, console);
    // The supervisor policy and protection off pass them all, as before.
    let off = PlanOptions {
        protected: false,
        ..PlanOptions::default()
    };
    assert_eq!(devices_plan(&paths, &off).devices.len(), paths.len());
    let sup = PlanOptions {
        policy: PolicyMode::Supervisor,
        ..PlanOptions::default()
    };
    let p = devices_plan(&paths, &sup);
    assert!(p.withheld.is_empty(), "{:?}", p.withheld);
}

#[test]
fn character_majors_are_classified_by_the_kernel_table() {
    let drivers = policy::parse_proc_devices(
        "Character devices:\n  1 mem\n 10 misc\n241 hidraw\n242 nvme-generic\n254 gpiochip\n\nBlock devices:\n  7 loop\n",
    );
    assert_eq!(drivers.get(&241).map(String::as_str), Some("hidraw"));
    assert!(
        !drivers.contains_key(&7),
        "a block major read as a character one"
    );
    let cases = [
        ((1, 1), NodeClass::Memory),
        ((1, 2), NodeClass::Memory),
        ((1, 4), NodeClass::Memory),
        ((1, 3), NodeClass::Standard),
        ((1, 9), NodeClass::Standard),
        ((1, 11), NodeClass::Kmsg),
        ((4, 1), NodeClass::Console),
        ((4, 63), NodeClass::Console),
        ((4, 64), NodeClass::Serial),
        ((5, 0), NodeClass::Standard),
        ((5, 1), NodeClass::Console),
        ((5, 2), NodeClass::Standard),
        ((7, 1), NodeClass::Vcs),
        ((7, 129), NodeClass::Vcs),
        ((10, 200), NodeClass::NetTun),
        ((10, 184), NodeClass::CpuRegisters),
        ((10, 223), NodeClass::Unknown),
        ((13, 64), NodeClass::Input),
        ((21, 0), NodeClass::ScsiGeneric),
        ((29, 0), NodeClass::Video),
        ((81, 0), NodeClass::Video),
        ((89, 1), NodeClass::I2c),
        ((90, 0), NodeClass::Mtd),
        ((116, 0), NodeClass::Sound),
        ((136, 3), NodeClass::Devpts),
        ((153, 0), NodeClass::Spi),
        ((166, 0), NodeClass::Serial),
        ((180, 0), NodeClass::Usb),
        ((188, 0), NodeClass::Serial),
        ((189, 1), NodeClass::Usb),
        ((202, 0), NodeClass::CpuRegisters),
        ((203, 0), NodeClass::CpuRegisters),
        ((204, 64), NodeClass::Serial),
        ((226, 128), NodeClass::Video),
        ((241, 0), NodeClass::Input),
        ((242, 0), NodeClass::NvmeGeneric),
        ((254, 0), NodeClass::Gpio),
        ((250, 0), NodeClass::Unknown),
    ];
    for ((major, minor), class) in cases {
        assert_eq!(
            class_by_number(major, minor, &drivers),
            class,
            "{major}:{minor}"
        );
    }
}

#[test]
fn plan_time_host_facts_decide_by_type_not_name() {
    let mut options = PlanOptions::default();
    let fact = |kind, major, minor, resolved: &str| NodeFact {
        kind,
        major,
        minor,
        resolved: resolved.into(),
    };
    let nodes = &mut options.host.devices.nodes;
    nodes.insert(
        "/dev/ttyUSB9".into(),
        fact(NodeKind::Block, 7, 0, "/dev/ttyUSB9"),
    );
    nodes.insert(
        "/dev/zigbee".into(),
        fact(NodeKind::Char, 188, 0, "/dev/ttyUSB0"),
    );
    let p = devices_plan(&["/dev/ttyUSB9", "/dev/zigbee"], &options);
    let passed: Vec<&str> = p.devices.iter().map(|d| d.path_on_host.as_str()).collect();
    assert_eq!(passed, ["/dev/zigbee"]);
    let w = &p.withheld[0];
    assert_eq!(w.right, "device:/dev/ttyUSB9");
    assert_eq!(w.grant_with, "--grant raw_devices");
}

/// A fake /dev: a block node (loop 7:0) named like a USB serial adapter, an LVM-style link to
/// it, a link loop, a real serial node (188:0) and a VT (4:1) named like a serial port.
fn fake_dev() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let node = |name: &str, kind: SFlag, major, minor| {
        mknod(
            &root.join(name),
            kind,
            Mode::from_bits_truncate(0o600),
            makedev(major, minor),
        )
        .unwrap_or_else(|e| panic!("mknod {name} (these tests run as root): {e}"));
    };
    node("ttyUSB9", SFlag::S_IFBLK, 7, 0);
    node("ttyUSB0", SFlag::S_IFCHR, 188, 0);
    node("ttyS0", SFlag::S_IFCHR, 4, 1);
    std::fs::create_dir_all(root.join("vg0")).unwrap();
    symlink(root.join("ttyUSB9"), root.join("vg0/root")).unwrap();
    std::fs::create_dir_all(root.join("serial/by-id")).unwrap();
    symlink("../../ttyUSB9", root.join("serial/by-id/usb-disk")).unwrap();
    symlink("cycle-b", root.join("cycle-a")).unwrap();
    symlink("cycle-a", root.join("cycle-b")).unwrap();
    std::fs::create_dir_all(root.join("dvb/adapter0")).unwrap();
    node("dvb/adapter0/frontend0", SFlag::S_IFBLK, 7, 1);
    dir
}

fn refusal(err: DeviceError) -> (String, &'static str, &'static str) {
    match err {
        DeviceError::Withheld {
            device,
            class_name,
            grant,
            ..
        } => (device, class_name, grant),
        other => panic!("not a refusal by class: {other}"),
    }
}

#[test]
fn launch_check_refuses_by_type_what_the_name_allowed() {
    let dev = fake_dev();
    let root = dev.path();
    for name in [
        "/dev/ttyUSB9",
        "/dev/serial/by-id/usb-disk",
        "/dev/dvb",
        "/dev/dvb/adapter0",
    ] {
        let p = devices_plan(&[name], &PlanOptions::default());
        assert_eq!(p.devices.len(), 1, "{name} is allowed by its name");
        let err = devices::check(&p, root).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("block device") && text.contains(name),
            "{text}"
        );
        assert_eq!(refusal(err), (name.to_owned(), "block", "raw_devices"));
    }
    // A VT under a serial name needs host_console.
    let p = devices_plan(&["/dev/ttyS0"], &PlanOptions::default());
    let (_, class, grant) = refusal(devices::check(&p, root).unwrap_err());
    assert_eq!((class, grant), ("console", "host_console"));
    // The LVM link: granted as an unknown name, refused as the disk it leads to.
    let p = devices_plan(&["/dev/vg0/root"], &granting(&["unknown_devices"]));
    assert_eq!(p.devices.len(), 1);
    let (_, class, grant) = refusal(devices::check(&p, root).unwrap_err());
    assert_eq!((class, grant), ("block", "raw_devices"));
    // A link loop is refused, not followed forever.
    let p = devices_plan(&["/dev/cycle-a"], &granting(&["unknown_devices"]));
    assert!(matches!(
        devices::check(&p, root),
        Err(DeviceError::TooManyLinks(_))
    ));
}

#[test]
fn launch_check_passes_what_the_plan_allows() {
    let dev = fake_dev();
    let root = dev.path();
    // A real serial node; a missing one (the backend reports it).
    let p = devices_plan(&["/dev/ttyUSB0", "/dev/ttyUSB7"], &PlanOptions::default());
    devices::check(&p, root).unwrap();
    // The disk with its grant; everything with protection off or under the supervisor policy.
    let all = ["/dev/ttyUSB9", "/dev/vg0/root", "/dev/ttyS0", "/dev/dvb"];
    let p = devices_plan(
        &all,
        &granting(&["raw_devices", "unknown_devices", "host_console"]),
    );
    assert_eq!(p.devices.len(), all.len());
    assert!(p.notes.is_empty(), "grants reported unused: {:?}", p.notes);
    devices::check(&p, root).unwrap();
    let off = PlanOptions {
        protected: false,
        ..PlanOptions::default()
    };
    devices::check(&devices_plan(&all, &off), root).unwrap();
    let sup = PlanOptions {
        policy: PolicyMode::Supervisor,
        ..PlanOptions::default()
    };
    devices::check(&devices_plan(&all, &sup), root).unwrap();
}

#[test]
fn node_facts_follow_links_to_the_node() {
    let dev = fake_dev();
    let fact = devices::node_fact(&dev.path().join("serial/by-id/usb-disk"))
        .unwrap()
        .unwrap();
    assert_eq!((fact.kind, fact.major, fact.minor), (NodeKind::Block, 7, 0));
    assert!(Path::new(&fact.resolved).ends_with("ttyUSB9"));
    assert!(
        devices::node_fact(&dev.path().join("absent"))
            .unwrap()
            .is_none()
    );
}

/// A link in the real /dev named like a USB serial adapter that leads to a block node (loop
/// 7:0) made for the test; both removed when dropped. Made only under the shared Docker lock
/// the tests using it run under, so no other engineer's test sees it.
struct DiskLink;

const LINK: &str = "/dev/ttyUSB4242";
const DISK: &str = "/dev/addon-sandbox-test-disk";

impl DiskLink {
    fn new() -> DiskLink {
        let guard = DiskLink;
        let _ = std::fs::remove_file(LINK);
        let _ = std::fs::remove_file(DISK);
        mknod(
            Path::new(DISK),
            SFlag::S_IFBLK,
            Mode::from_bits_truncate(0o600),
            makedev(7, 0),
        )
        .expect("mknod in /dev (these tests run as root)");
        symlink("addon-sandbox-test-disk", LINK).unwrap();
        guard
    }
}

impl Drop for DiskLink {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(LINK);
        let _ = std::fs::remove_file(DISK);
    }
}

/// Planned where the node was absent (no host facts): the name lets it in.
fn plan_elsewhere(slug: &str, data_root: &Path) -> SandboxPlan {
    let yaml = common::minimal("devices: [/dev/ttyUSB4242]\n")
        .replace("slug: test", &format!("slug: {slug}"));
    let options = PlanOptions {
        data_root: data_root.to_str().unwrap().to_owned(),
        ..PlanOptions::default()
    };
    let p = plan(&yaml, &options);
    assert_eq!(p.devices.len(), 1, "the name alone lets it in");
    p
}

fn assert_refused(result: Result<addon_sandbox::launch::RunReport, LaunchError>) {
    match result {
        Err(e @ LaunchError::Device(DeviceError::Withheld { .. })) => {
            let text = e.to_string();
            assert!(
                text.contains("/dev/ttyUSB4242")
                    && text.contains("block device")
                    && text.contains("--grant raw_devices"),
                "{text}"
            );
            assert_eq!(e.exit_code(), 3);
        }
        Err(other) => panic!("refused for another reason: {other}"),
        Ok(report) => panic!("started: {report:?}"),
    }
}

#[test]
fn both_backends_refuse_at_launch_a_disk_behind_a_serial_name() {
    if !common::docker_available() {
        return;
    }
    let _link = DiskLink::new();
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");

    // Docker: nothing is created, not even the container.
    let data = tmp.path().join("data");
    let p = plan_elsewhere("devcheckd", &data);
    // A container left by an earlier failed run would hide what this one does.
    let _ = std::process::Command::new("docker")
        .args(["rm", "-f", &p.container_name])
        .output();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let result = rt.block_on(async {
        let launcher = Launcher::connect(&state, Duration::from_secs(30))
            .await
            .unwrap();
        let opts = RunOptions {
            image: Some(common::TEST_IMAGE.into()),
            command: Some(vec!["true".into()]),
            allow_unconfined: true,
            data_root: data.clone(),
            ..RunOptions::default()
        };
        launcher.run(&p, &opts, std::future::pending()).await
    });
    assert_refused(result);
    let inspect = std::process::Command::new("docker")
        .args(["inspect", &p.container_name])
        .output()
        .unwrap();
    assert!(!inspect.status.success(), "a container was created");

    // Native.
    if common::native_available() {
        let p = plan_elsewhere("devcheckn", &data);
        let opts = NativeOptions {
            rootfs: tmp.path().to_owned(),
            command: vec!["true".into()],
            confinement: ConfinementChoice::Any,
            data_root: data.clone(),
            addon_profile: None,
            timezone: None,
            options: None,
            audio_server: None,
        };
        let dir = StateDir::open(&state).unwrap();
        assert_refused(addon_sandbox::native::run::run(&dir, &p, &opts));
        assert!(
            dir.read_record(&p.full_slug).is_none(),
            "a record was written"
        );
    }

    // Planned on this host, the CLI reads the node and withholds it already.
    let addon = common::addon_dir(&common::minimal("devices: [/dev/ttyUSB4242]\n"));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_addon-sandbox"))
        .args(["plan", "--json", addon.path().to_str().unwrap()])
        .output()
        .unwrap();
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(plan["devices"], serde_json::json!([]), "{plan}");
    let withheld = &plan["withheld"][0];
    assert_eq!(withheld["right"], "device:/dev/ttyUSB4242");
    assert_eq!(withheld["grant_with"], "--grant raw_devices");
}
