//! Edge cases of the Supervisor's config schema (reference/supervisor.md §a): every coercion,
//! legacy form, silently dropped entry and hard error, checked through `addon::load` on a
//! real folder. Each test asserts validity, the typed value that results, and for problems
//! the diagnostic's line and the key it names.

mod common;

use addon_sandbox::addon::{self, Addon};
use addon_sandbox::config::{
    AddonConfig, BackupMode, Boot, Capability, IngressPort, MapEntry, MapType, PortSpec, Protocol,
    Role, Stage, Startup, Ulimit,
};
use addon_sandbox::diag::{Diagnostic, Severity};
use addon_sandbox::plan::{PolicyMode, SandboxPlan};
use addon_sandbox::policy::{PlanOptions, decide};

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// The lines of `common::minimal`, one key each, so a test can leave one out.
const BASE: [&str; 5] = [
    "name: Test",
    "version: \"1.0.0\"",
    "slug: test",
    "description: A test add-on",
    "arch: [amd64, aarch64]",
];

/// A loaded add-on folder, its config text (for line look-ups) and the folder kept alive.
struct Loaded {
    _dir: tempfile::TempDir,
    text: String,
    addon: Addon,
}

impl Loaded {
    fn dump(&self) -> String {
        self.addon
            .diagnostics
            .iter()
            .map(|d| d.to_string())
            .collect::<Vec<_>>()
            .join("")
    }

    /// The 1-based line holding `needle`; it must occur on exactly one line.
    fn line(&self, needle: &str) -> u32 {
        let hits: Vec<u32> = self
            .text
            .lines()
            .enumerate()
            .filter(|(_, l)| l.contains(needle))
            .map(|(i, _)| i as u32 + 1)
            .collect();
        assert_eq!(
            hits.len(),
            1,
            "{needle:?} must be on exactly one line of:\n{}",
            self.text
        );
        hits[0]
    }

    /// Valid, with no error diagnostic; the typed config.
    fn valid(&self) -> &AddonConfig {
        assert!(
            self.addon.valid(),
            "expected a valid config; diagnostics:\n{}\n--- config ---\n{}",
            self.dump(),
            self.text
        );
        assert_eq!(self.addon.errors().count(), 0, "{}", self.dump());
        self.addon.config.as_ref().expect("valid config")
    }

    fn invalid(&self) {
        assert!(
            !self.addon.valid(),
            "expected an invalid config:\n{}",
            self.text
        );
        assert!(
            self.addon.errors().count() > 0,
            "an invalid config must have an error diagnostic"
        );
    }

    fn find(&self, severity: Severity, needle: &str, mentions: &[&str]) -> &Diagnostic {
        let line = self.line(needle);
        self.addon
            .diagnostics
            .iter()
            .find(|d| {
                d.severity == severity
                    && d.line == line
                    && mentions.iter().all(|m| d.message.contains(m))
            })
            .unwrap_or_else(|| {
                panic!(
                    "no {severity:?} at line {line} ({needle:?}) mentioning {mentions:?}; diagnostics:\n{}",
                    self.dump()
                )
            })
    }

    /// Invalid, with an error on the line holding `needle` whose message has every `mentions`.
    fn error_at(&self, needle: &str, mentions: &[&str]) -> &Diagnostic {
        self.invalid();
        self.find(Severity::Error, needle, mentions)
    }

    /// A warning on the line holding `needle` whose message has every `mentions`.
    fn warning_at(&self, needle: &str, mentions: &[&str]) -> &Diagnostic {
        self.find(Severity::Warning, needle, mentions)
    }

    fn no_warnings(&self) {
        assert_eq!(self.addon.warnings().count(), 0, "{}", self.dump());
    }

    fn error_count(&self) -> usize {
        self.addon.errors().count()
    }
}

fn load_text(file: &str, text: &str) -> Loaded {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join(file), text).expect("write config");
    let addon = addon::load(dir.path());
    Loaded {
        _dir: dir,
        text: text.to_owned(),
        addon,
    }
}

/// Load a whole `config.yaml`.
fn yaml(text: &str) -> Loaded {
    let dir = common::addon_dir(text);
    let addon = addon::load(dir.path());
    Loaded {
        _dir: dir,
        text: text.to_owned(),
        addon,
    }
}

/// The minimal valid config plus `extra` lines.
fn with(extra: &str) -> Loaded {
    yaml(&common::minimal(extra))
}

/// The minimal config without the line of `key`, plus `extra` lines.
fn without(key: &str, extra: &str) -> Loaded {
    let prefix = format!("{key}:");
    let mut text: String = BASE
        .iter()
        .filter(|l| !l.starts_with(&prefix))
        .map(|l| format!("{l}\n"))
        .collect();
    text.push_str(extra);
    yaml(&text)
}

/// The plan the Supervisor would make (supervisor mode, protection on).
fn supervisor_plan(loaded: &Loaded) -> SandboxPlan {
    let options = PlanOptions {
        policy: PolicyMode::Supervisor,
        protected: true,
        ..PlanOptions::default()
    };
    decide(
        loaded.valid(),
        loaded.addon.apparmor_profile.is_some(),
        &options,
    )
    .expect("plan")
}

fn mount_targets(plan: &SandboxPlan) -> Vec<&str> {
    plan.mounts.iter().map(|m| m.target.as_str()).collect()
}

fn entry(kind: MapType, read_only: bool) -> MapEntry {
    MapEntry {
        kind,
        read_only,
        path: None,
    }
}

// ---------------------------------------------------------------------------------------------
// Defaults and the shape of the file
// ---------------------------------------------------------------------------------------------

#[test]
fn minimal_config_gets_the_supervisor_defaults() {
    let l = with("");
    let c = l.valid();
    l.no_warnings();
    assert_eq!(c.name, "Test");
    assert_eq!(c.version, "1.0.0");
    assert_eq!(c.startup, Startup::Application);
    assert_eq!(c.boot, Boot::Auto);
    assert_eq!(c.stage, Stage::Stable);
    assert!(c.init);
    assert!(c.apparmor);
    assert!(c.panel_admin);
    assert!(!c.ingress);
    assert_eq!(c.ingress_port, IngressPort::Fixed(8099));
    assert_eq!(c.panel_icon, "mdi:puzzle");
    assert_eq!(c.hassio_role, Role::Default);
    assert_eq!(c.backup, BackupMode::Hot);
    assert_eq!(c.timeout, 10);
    assert!(!c.tmpfs && !c.uart && !c.host_network);
    assert!(c.map.is_empty() && c.ports.is_empty() && c.machine.is_empty());
    assert!(c.needs_build());
}

#[test]
fn config_that_is_not_a_mapping_is_invalid() {
    let l = yaml("- name\n- version\n");
    l.invalid();
    assert!(l.addon.config.is_none());
    assert!(
        l.addon.errors().any(|d| d.message.contains("mapping")),
        "{}",
        l.dump()
    );
}

#[test]
fn two_config_files_in_one_folder_are_reported() {
    let dir = common::addon_dir(&common::minimal(""));
    std::fs::write(
        dir.path().join("config.json"),
        r#"{"name": "Test", "version": "1", "slug": "test", "description": "d", "arch": []}"#,
    )
    .unwrap();
    let addon = addon::load(dir.path());
    assert!(!addon.valid());
    assert!(addon.config.is_none());
    assert!(
        addon
            .errors()
            .any(|d| d.message.contains("config.json") && d.message.contains("config.yaml")),
        "{:?}",
        addon.diagnostics
    );
}

// ---------------------------------------------------------------------------------------------
// vol.Boolean()
// ---------------------------------------------------------------------------------------------

#[test]
fn boolean_strings_in_any_case_are_coerced() {
    let l = with(concat!(
        "host_network: \"True\"\n",
        "host_pid: \"yes\"\n",
        "host_ipc: \"ON\"\n",
        "host_uts: \"enable\"\n",
        "udev: \"1\"\n",
        "init: \"0\"\n",
        "apparmor: \"Disable\"\n",
        "ingress_stream: \"FALSE\"\n",
        "panel_admin: \"Off\"\n",
        "stdin: \"No\"\n",
    ));
    let c = l.valid();
    assert!(c.host_network && c.host_pid && c.host_ipc && c.host_uts && c.udev);
    assert!(!c.init, "\"0\" is false");
    assert!(!c.apparmor, "\"Disable\" is false");
    assert!(!c.ingress_stream && !c.panel_admin && !c.stdin);
}

#[test]
fn boolean_unknown_string_is_an_error_at_its_line() {
    let l = with("init: true\nhost_network: maybe\n");
    l.error_at("host_network: maybe", &["host_network", "maybe"]);
    assert_eq!(l.error_count(), 1, "{}", l.dump());
}

#[test]
fn boolean_empty_string_is_an_error() {
    let l = with("host_network: \"\"\n");
    l.error_at("host_network", &["host_network"]);
}

#[test]
fn boolean_numbers_follow_python_truthiness() {
    let l = with("host_network: 2\ninit: 0\nudev: -1\nvideo: 0.0\n");
    let c = l.valid();
    assert!(c.host_network, "2 is true");
    assert!(!c.init, "0 is false");
    assert!(c.udev, "-1 is true");
    assert!(!c.video, "0.0 is false");
}

#[test]
fn yaml_1_1_unquoted_yes_no_are_booleans() {
    let l = with("host_network: yes\ninit: off\n");
    let c = l.valid();
    assert!(c.host_network);
    assert!(!c.init);
}

#[test]
fn yaml_1_1_numbers_octal_hex_sexagesimal_and_underscores() {
    // PyYAML: `010` is octal 8, `0x1F` is 31, `1:30` is 90 and `1_0` is 10.
    let c = with("timeout: 1_0\ningress: true\ningress_port: 0x1F90\n")
        .valid()
        .clone();
    assert_eq!(c.timeout, 10);
    assert_eq!(c.ingress_port, IngressPort::Fixed(8080));
    assert_eq!(with("timeout: 1:30\n").valid().timeout, 90);
    assert_eq!(with("timeout: 020\n").valid().timeout, 16);
    // `080` is not octal, so it stays a string, which an integer field coerces in base 10.
    assert_eq!(with("timeout: 080\n").valid().timeout, 80);
}

#[test]
fn yaml_dates_are_not_strings() {
    // PyYAML reads `2024-01-02` as a date: `vol.Coerce(str)` (version) writes it back, a plain
    // `str` field (name) rejects it.
    let l = without("version", "version: 2024-01-02\n");
    assert_eq!(l.valid().version, "2024-01-02");
    let l = without("name", "name: 2024-01-02\n");
    l.invalid();
    // An impossible date is not a config at all: PyYAML fails to construct it.
    let l = without("version", "version: 2023-02-29\n");
    l.error_at(
        "version: 2023-02-29",
        &["invalid YAML", "day is out of range"],
    );
}

#[test]
fn yaml_merge_keys_and_aliases() {
    let l = with("x-common: &common\n  host_network: true\nmap:\n  - share:rw\n<<: *common\n");
    assert!(l.valid().host_network, "{}", l.dump());
}

// ---------------------------------------------------------------------------------------------
// apparmor
// ---------------------------------------------------------------------------------------------

#[test]
fn apparmor_profile_name_makes_the_config_invalid() {
    let l = with("apparmor: myprofile\n");
    l.error_at("apparmor: myprofile", &["apparmor", "myprofile"]);
    assert!(l.addon.config.is_none());
}

#[test]
fn apparmor_quoted_no_is_false_and_yes_is_true() {
    let l = with("apparmor: \"no\"\n");
    assert!(!l.valid().apparmor);
    let l = with("apparmor: \"yes\"\n");
    assert!(l.valid().apparmor);
}

// ---------------------------------------------------------------------------------------------
// startup / boot / stage
// ---------------------------------------------------------------------------------------------

#[test]
fn startup_before_becomes_services_with_a_warning() {
    let l = with("startup: before\n");
    assert_eq!(l.valid().startup, Startup::Services);
    l.warning_at("startup: before", &["startup", "services"]);
}

#[test]
fn startup_after_becomes_application_with_a_warning() {
    let l = with("startup: after\n");
    assert_eq!(l.valid().startup, Startup::Application);
    l.warning_at("startup: after", &["startup", "application"]);
}

#[test]
fn startup_known_values_have_no_warning() {
    let l = with("startup: initialize\n");
    assert_eq!(l.valid().startup, Startup::Initialize);
    l.no_warnings();
}

#[test]
fn startup_unknown_value_is_an_error() {
    let l = with("startup: sometimes\n");
    l.error_at("startup: sometimes", &["startup", "sometimes"]);
    // Coerce(AppStartup) is case-sensitive.
    let l = with("startup: Services\n");
    l.error_at("startup: Services", &["startup"]);
}

#[test]
fn boot_values() {
    assert_eq!(with("boot: manual_only\n").valid().boot, Boot::ManualOnly);
    assert_eq!(with("boot: manual\n").valid().boot, Boot::Manual);
    with("boot: never\n").error_at("boot: never", &["boot", "never"]);
}

#[test]
fn stage_values() {
    assert_eq!(
        with("stage: experimental\n").valid().stage,
        Stage::Experimental
    );
    with("stage: beta\n").error_at("stage: beta", &["stage", "beta"]);
}

// ---------------------------------------------------------------------------------------------
// Legacy renames and rewrites
// ---------------------------------------------------------------------------------------------

#[test]
fn auto_uart_becomes_uart_with_a_warning() {
    let l = with("auto_uart: true\n");
    assert!(l.valid().uart);
    l.warning_at("auto_uart: true", &["auto_uart", "uart"]);
}

#[test]
fn auto_uart_string_boolean_is_coerced_after_the_rename() {
    let l = with("auto_uart: \"on\"\n");
    assert!(l.valid().uart);
}

#[test]
fn devices_legacy_form_keeps_only_the_host_path() {
    let l = with("devices:\n  - \"/dev/ttyUSB0:/dev/ttyUSB0:rwm\"\n  - /dev/ttyACM0\n");
    let c = l.valid();
    assert_eq!(c.devices, vec!["/dev/ttyUSB0", "/dev/ttyACM0"]);
    // A block list's position is its first item.
    l.warning_at("/dev/ttyUSB0:/dev/ttyUSB0:rwm", &["devices"]);
}

#[test]
fn devices_plain_paths_are_kept_without_warning() {
    let l = with("devices: [/dev/ttyAMA0, /dev/mem]\n");
    assert_eq!(l.valid().devices, vec!["/dev/ttyAMA0", "/dev/mem"]);
    l.no_warnings();
}

#[test]
fn tmpfs_legacy_string_means_true() {
    let l = with("tmpfs: \"size=10m\"\n");
    assert!(l.valid().tmpfs);
    l.warning_at("tmpfs:", &["tmpfs"]);
}

#[test]
fn tmpfs_any_non_bool_means_true() {
    // `not isinstance(value, bool)`: even 0 and "false" become True.
    assert!(with("tmpfs: 0\n").valid().tmpfs);
    assert!(with("tmpfs: \"false\"\n").valid().tmpfs);
    let l = with("tmpfs: false\n");
    assert!(!l.valid().tmpfs);
    l.no_warnings();
}

#[test]
fn snapshot_keys_become_backup_keys() {
    let l = with(concat!(
        "snapshot_exclude: [\"*.log\", tmp]\n",
        "snapshot_pre: /pre.sh\n",
        "snapshot_post: /post.sh\n",
        "snapshot: hot\n",
    ));
    let c = l.valid();
    assert_eq!(c.backup_exclude, vec!["*.log", "tmp"]);
    assert_eq!(c.backup_pre.as_deref(), Some("/pre.sh"));
    assert_eq!(c.backup_post.as_deref(), Some("/post.sh"));
    assert_eq!(c.backup, BackupMode::Hot);
    for key in [
        "snapshot_exclude",
        "snapshot_pre",
        "snapshot_post",
        "snapshot:",
    ] {
        l.warning_at(key, &[key.trim_end_matches(':')]);
    }
}

#[test]
fn snapshot_cold_becomes_backup_cold_and_overrides_backup() {
    // config["backup"] = config.pop("snapshot"): the legacy key wins.
    let l = with("backup: hot\nsnapshot: cold\n");
    assert_eq!(l.valid().backup, BackupMode::Cold);
    l.warning_at("snapshot: cold", &["snapshot", "backup"]);
}

#[test]
fn snapshot_bad_value_is_an_error_under_its_new_name() {
    let l = with("snapshot: lukewarm\n");
    l.error_at("snapshot: lukewarm", &["backup", "lukewarm"]);
}

// ---------------------------------------------------------------------------------------------
// map
// ---------------------------------------------------------------------------------------------

#[test]
fn map_strings_become_entries_bare_is_read_only() {
    let l = with("map: [share, \"ssl:ro\", \"media:rw\"]\n");
    let c = l.valid();
    assert_eq!(
        c.map,
        vec![
            entry(MapType::Share, true),
            entry(MapType::Ssl, true),
            entry(MapType::Media, false),
        ]
    );
    l.no_warnings();

    let l = with("map:\n  - \"share:rw\"\n");
    assert_eq!(l.valid().map, vec![entry(MapType::Share, false)]);
}

#[test]
fn map_bad_strings_are_skipped_with_a_warning() {
    let l = with("map:\n  - share\n  - \"share:RW\"\n  - bogus\n  - \"Share\"\n");
    let c = l.valid();
    // Only the bare `share` survives: had `share:RW` been read, share would be writable.
    assert_eq!(c.map, vec![entry(MapType::Share, true)]);
    assert!(c.map_entry(MapType::Share).unwrap().read_only);
    l.warning_at("share:RW", &["share:RW"]);
    l.warning_at("bogus", &["bogus"]);
    l.warning_at("\"Share\"", &["Share"]);
}

#[test]
fn map_of_only_bad_strings_is_still_valid_and_empty() {
    // The Supervisor always replaces `map` with the migrated list, even when it is empty.
    let l = with("map: [bogus, \"ssl:w\"]\n");
    assert!(l.valid().map.is_empty());
    assert_eq!(l.addon.warnings().count(), 2, "{}", l.dump());
}

#[test]
fn map_dict_without_type_is_skipped_with_a_warning() {
    let l = with("map:\n  - read_only: false\n    path: /stuff\n  - type: ssl\n");
    assert_eq!(l.valid().map, vec![entry(MapType::Ssl, true)]);
    l.warning_at("read_only: false", &["type"]);
}

#[test]
fn map_dict_read_only_as_string_is_invalid() {
    let l = with("map:\n  - type: share\n    read_only: \"false\"\n");
    l.error_at("read_only: \"false\"", &["read_only"]);
}

#[test]
fn map_dict_read_only_as_int_is_invalid() {
    // `bool` is a type check: 0 is an int, not a bool.
    let l = with("map:\n  - type: share\n    read_only: 0\n");
    l.error_at("read_only: 0", &["read_only"]);
}

#[test]
fn map_dict_defaults_to_read_only_and_takes_a_path() {
    let l = with(concat!(
        "map:\n",
        "  - type: share\n",
        "    read_only: false\n",
        "    path: /mnt/shared\n",
        "  - type: media\n",
    ));
    let c = l.valid();
    assert_eq!(
        c.map,
        vec![
            MapEntry {
                kind: MapType::Share,
                read_only: false,
                path: Some("/mnt/shared".into()),
            },
            entry(MapType::Media, true),
        ]
    );
    let plan = supervisor_plan(&l);
    let share = plan
        .mounts
        .iter()
        .find(|m| m.target == "/mnt/shared")
        .expect("share mounted at its path");
    assert!(!share.read_only);
    assert!(!mount_targets(&plan).contains(&"/share"));
}

#[test]
fn map_dict_with_unknown_type_is_invalid() {
    // Unlike a string, a dict entry is validated by Coerce(MappingType).
    let l = with("map:\n  - type: bogus\n");
    l.error_at("type: bogus", &["map", "bogus"]);
}

#[test]
fn map_dict_with_extra_key_is_invalid() {
    let l = with("map:\n  - type: share\n    mode: rw\n");
    l.error_at("mode: rw", &["mode"]);
}

#[test]
fn map_int_and_list_entries_are_dropped_with_a_warning() {
    let l = with("map:\n  - 5\n  - [ssl]\n  - share\n");
    assert_eq!(l.valid().map, vec![entry(MapType::Share, true)]);
    l.warning_at("- 5", &["skipped"]);
    l.warning_at("[ssl]", &["skipped"]);
}

#[test]
fn map_legacy_names_are_accepted_with_a_warning() {
    let l = with("map:\n  - addons\n  - all_addon_configs\n  - \"addon_config:rw\"\n");
    let c = l.valid();
    assert_eq!(
        c.map,
        vec![
            entry(MapType::Addons, true),
            entry(MapType::AllAddonConfigs, true),
            entry(MapType::AddonConfig, false),
        ]
    );
    l.warning_at("- addons", &["addons", "local_apps"]);
    l.warning_at(
        "all_addon_configs",
        &["all_addon_configs", "all_app_configs"],
    );
    l.warning_at("addon_config:rw", &["addon_config", "app_config"]);

    let plan = supervisor_plan(&l);
    let targets = mount_targets(&plan);
    for t in ["/addons", "/addon_configs", "/config"] {
        assert!(targets.contains(&t), "{t} in {targets:?}");
    }
    let config = plan.mounts.iter().find(|m| m.target == "/config").unwrap();
    assert!(!config.read_only);
    assert!(
        config.source.ends_with("app_configs/local_test"),
        "{config:?}"
    );
}

#[test]
fn map_app_config_wins_over_addon_config() {
    let l = with("map:\n  - \"app_config:rw\"\n  - addon_config\n");
    let c = l.valid();
    assert_eq!(
        c.map_entry(MapType::AppConfig),
        Some(&entry(MapType::AppConfig, false))
    );
    assert!(c.map_entry(MapType::AddonConfig).is_some());
    l.warning_at("- addon_config", &["addon_config", "ignored"]);

    let plan = supervisor_plan(&l);
    let configs: Vec<_> = plan
        .mounts
        .iter()
        .filter(|m| m.target == "/config")
        .collect();
    assert_eq!(configs.len(), 1, "{:?}", plan.mounts);
    assert!(!configs[0].read_only, "the app_config entry (rw) is used");
}

#[test]
fn map_modern_names_win_over_every_legacy_pair() {
    let l = with(concat!(
        "map:\n",
        "  - local_apps\n",
        "  - \"addons:rw\"\n",
        "  - all_app_configs\n",
        "  - \"all_addon_configs:rw\"\n",
    ));
    l.valid();
    l.warning_at("addons:rw", &["addons", "ignored"]);
    l.warning_at("all_addon_configs:rw", &["all_addon_configs", "ignored"]);
    let plan = supervisor_plan(&l);
    let targets = mount_targets(&plan);
    assert!(targets.contains(&"/local_apps") && targets.contains(&"/app_configs"));
    assert!(!targets.contains(&"/addons") && !targets.contains(&"/addon_configs"));
    for t in ["/local_apps", "/app_configs"] {
        let m = plan.mounts.iter().find(|m| m.target == t).unwrap();
        assert!(m.read_only, "{t}: the modern (read-only) entry is used");
    }
}

#[test]
fn map_config_disables_homeassistant_config_and_app_config() {
    let l = with("map:\n  - \"config:rw\"\n  - homeassistant_config\n  - app_config\n");
    l.valid();
    l.warning_at("config:rw", &["config", "ignored"]);
    let plan = supervisor_plan(&l);
    let targets = mount_targets(&plan);
    assert!(!targets.contains(&"/homeassistant"), "{targets:?}");
    let configs: Vec<_> = plan
        .mounts
        .iter()
        .filter(|m| m.target == "/config")
        .collect();
    assert_eq!(configs.len(), 1, "{:?}", plan.mounts);
    assert!(configs[0].source.ends_with("/homeassistant"));
    assert!(!configs[0].read_only);
}

#[test]
fn map_config_alone_is_deprecated() {
    let l = with("map: [config]\n");
    assert_eq!(l.valid().map, vec![entry(MapType::Config, true)]);
    l.warning_at("map:", &["config", "homeassistant_config"]);
    let plan = supervisor_plan(&l);
    let m = plan.mounts.iter().find(|m| m.target == "/config").unwrap();
    assert!(m.read_only && m.source.ends_with("/homeassistant"));
}

// ---------------------------------------------------------------------------------------------
// ingress
// ---------------------------------------------------------------------------------------------

#[test]
fn ingress_dynamic_port_with_port_in_dynamic_range_is_a_hard_error() {
    let l = with("ingress: true\ningress_port: 0\nports:\n  \"63000/tcp\": 63000\n");
    l.error_at("\"63000/tcp\"", &["63000", "ingress_port: 0"]);
    assert!(l.addon.config.is_none());
}

#[test]
fn ingress_dynamic_range_bounds_are_inclusive() {
    let l = with(concat!(
        "ingress: true\n",
        "ingress_port: 0\n",
        "ports:\n",
        "  \"61999/tcp\": 1\n",
        "  \"62000\": 2\n",
        "  \"65500/udp\": null\n",
        "  \"65501/tcp\": 4\n",
    ));
    l.error_at("\"62000\"", &["62000"]);
    l.error_at("\"65500/udp\"", &["65500"]);
    assert_eq!(l.error_count(), 2, "{}", l.dump());
}

#[test]
fn ingress_dynamic_port_without_conflict_is_valid() {
    let l = with("ingress: true\ningress_port: 0\nports:\n  \"8080/tcp\": 8080\n");
    let c = l.valid();
    assert!(c.ingress);
    assert_eq!(c.ingress_port, IngressPort::Dynamic);
}

#[test]
fn ingress_dynamic_port_conflict_needs_ingress_on() {
    let l = with("ingress: false\ningress_port: 0\nports:\n  \"63000/tcp\": 63000\n");
    assert_eq!(l.valid().ingress_port, IngressPort::Dynamic);
}

#[test]
fn ingress_conflict_check_reads_ingress_before_coercion() {
    // `_warn_app_config` runs before the schema: `config.get("ingress")` is the raw value,
    // and the string "false" is truthy in Python.
    let l = with("ingress: \"false\"\ningress_port: 0\nports:\n  \"63000/tcp\": 63000\n");
    l.error_at("\"63000/tcp\"", &["63000"]);
}

#[test]
fn ingress_port_false_is_dynamic_and_checked_for_conflicts() {
    // Python: False == 0, so vol.Equal(0) accepts it and the conflict check applies.
    let l = with("ingress: true\ningress_port: false\n");
    assert_eq!(l.valid().ingress_port, IngressPort::Dynamic);
    let l = with("ingress: true\ningress_port: false\nports:\n  \"64000/tcp\": 8080\n");
    l.error_at("\"64000/tcp\"", &["64000"]);
}

#[test]
fn ingress_port_string_zero_is_invalid() {
    let l = with("ingress: true\ningress_port: \"0\"\n");
    l.error_at("ingress_port: \"0\"", &["ingress_port"]);
}

#[test]
fn ingress_port_out_of_range_is_invalid() {
    let l = with("ingress: true\ningress_port: 70000\n");
    l.error_at("ingress_port: 70000", &["ingress_port", "70000"]);
    let l = with("ingress_port: -1\n");
    l.error_at("ingress_port: -1", &["ingress_port"]);
}

#[test]
fn ingress_port_string_number_is_coerced() {
    let l = with("ingress: true\ningress_port: \"8080\"\n");
    assert_eq!(l.valid().ingress_port, IngressPort::Fixed(8080));
}

// ---------------------------------------------------------------------------------------------
// Required keys, version, slug, arch, machine, url
// ---------------------------------------------------------------------------------------------

#[test]
fn version_unquoted_float_loses_its_trailing_zero() {
    let l = without("version", "version: 1.10\n");
    assert_eq!(l.valid().version, "1.1");
}

#[test]
fn version_int_and_quoted_string() {
    assert_eq!(without("version", "version: 2\n").valid().version, "2");
    assert_eq!(
        without("version", "version: \"1.10\"\n").valid().version,
        "1.10"
    );
}

#[test]
fn homeassistant_minimum_version_is_a_version_tag() {
    let l = with("homeassistant: 2023.10\n");
    assert_eq!(l.valid().homeassistant.as_deref(), Some("2023.1"));
    let l = with("homeassistant: \"2023.10.0\"\n");
    assert_eq!(l.valid().homeassistant.as_deref(), Some("2023.10.0"));
}

#[test]
fn slug_with_space_or_slash_is_invalid() {
    let l = without("slug", "slug: my addon\n");
    l.error_at("slug: my addon", &["slug"]);
    let l = without("slug", "slug: my/addon\n");
    l.error_at("slug: my/addon", &["slug"]);
    let l = without("slug", "slug: my-addon_1.0\n");
    assert_eq!(l.valid().slug, "my-addon_1.0");
}

#[test]
fn missing_name_is_an_error() {
    let l = without("name", "");
    l.invalid();
    let errors: Vec<_> = l.addon.errors().collect();
    assert_eq!(errors.len(), 1, "reported once: {}", l.dump());
    assert!(errors[0].message.contains("name"), "{}", l.dump());
}

#[test]
fn empty_name_is_an_error_at_its_line() {
    let l = without("name", "name: \"\"\n");
    l.error_at("name: \"\"", &["name"]);
    let l = without("name", "name:\n");
    l.error_at("name:", &["name"]);
}

#[test]
fn name_must_be_a_string() {
    let l = without("name", "name: 5\n");
    l.error_at("name: 5", &["name"]);
}

#[test]
fn each_missing_required_key_is_an_error() {
    for key in ["slug", "arch", "description", "version"] {
        let l = without(key, "");
        l.invalid();
        assert!(
            l.addon
                .errors()
                .any(|d| d.message.contains(&format!("'{key}'")) && d.message.contains("missing")),
            "missing {key}: {}",
            l.dump()
        );
        assert_eq!(l.error_count(), 1, "missing {key}: {}", l.dump());
    }
}

#[test]
fn description_must_be_a_string() {
    let l = without("description", "description: [a]\n");
    l.error_at("description: [a]", &["description"]);
}

#[test]
fn empty_arch_list_is_valid() {
    let l = without("arch", "arch: []\n");
    assert!(l.valid().arch.is_empty());
}

#[test]
fn unknown_arch_is_invalid() {
    let l = without("arch", "arch:\n  - amd64\n  - x86\n");
    l.error_at("- x86", &["arch", "x86"]);
}

#[test]
fn deprecated_arch_is_a_warning() {
    let l = without("arch", "arch:\n  - amd64\n  - armv7\n");
    assert_eq!(l.valid().arch, vec!["amd64", "armv7"]);
    l.warning_at("armv7", &["armv7", "deprecated"]);
}

#[test]
fn machine_negation_and_empty_values_are_accepted() {
    let l = with("machine: [\"!qemux86-64\", \"\", \"!\", raspberrypi5-64]\n");
    assert_eq!(
        l.valid().machine,
        vec!["!qemux86-64", "", "!", "raspberrypi5-64"]
    );
    l.no_warnings();
}

#[test]
fn unknown_machine_is_invalid() {
    let l = with("machine:\n  - qemux86-64\n  - toaster\n");
    l.error_at("toaster", &["machine", "toaster"]);
}

#[test]
fn duplicate_machines_are_invalid() {
    let l = with("machine: [qemux86-64, qemux86-64]\n");
    l.error_at("machine:", &["machine", "duplicate"]);
}

#[test]
fn deprecated_machine_is_a_warning() {
    let l = with("machine:\n  - \"!raspberrypi\"\n");
    l.valid();
    l.warning_at("!raspberrypi", &["raspberrypi", "deprecated"]);
}

#[test]
fn url_needs_a_scheme_and_host() {
    let l = with("url: example.com\n");
    l.error_at("url: example.com", &["url", "example.com"]);
    let l = with("url: https://x.org\n");
    assert_eq!(l.valid().url.as_deref(), Some("https://x.org"));
}

// ---------------------------------------------------------------------------------------------
// ports
// ---------------------------------------------------------------------------------------------

#[test]
fn ports_host_port_int() {
    let l = with("ports:\n  \"8080/tcp\": 8080\n  \"53/udp\": 5353\n  \"80\": 8000\n");
    let c = l.valid();
    assert_eq!(
        c.ports,
        vec![
            (
                PortSpec {
                    key: "8080/tcp".into(),
                    port: 8080,
                    protocol: Protocol::Tcp,
                },
                Some(8080)
            ),
            (
                PortSpec {
                    key: "53/udp".into(),
                    port: 53,
                    protocol: Protocol::Udp,
                },
                Some(5353)
            ),
            (
                PortSpec {
                    key: "80".into(),
                    port: 80,
                    protocol: Protocol::Tcp,
                },
                Some(8000)
            ),
        ]
    );
}

#[test]
fn ports_null_host_port_is_valid_and_not_published() {
    let l = with("ports:\n  \"8080/tcp\": null\n  \"9090/tcp\": 9090\n");
    let c = l.valid();
    assert_eq!(c.ports[0].1, None);
    let plan = supervisor_plan(&l);
    let published: Vec<&str> = plan.ports.iter().map(|p| p.container.as_str()).collect();
    assert_eq!(published, vec!["9090/tcp"]);
}

#[test]
fn ports_host_port_zero_is_invalid() {
    let l = with("ports:\n  \"8080/tcp\": 0\n");
    l.error_at("\"8080/tcp\": 0", &["8080/tcp"]);
}

#[test]
fn ports_host_port_above_65535_is_invalid() {
    let l = with("ports:\n  \"8080/tcp\": 65536\n");
    l.error_at("\"8080/tcp\": 65536", &["8080/tcp", "65536"]);
}

#[test]
fn ports_unknown_protocol_is_invalid() {
    let l = with("ports:\n  \"8080/sctp\": 8080\n");
    l.error_at("8080/sctp", &["ports", "8080/sctp"]);
}

#[test]
fn ports_host_port_string_is_coerced() {
    let l = with("ports:\n  \"8080/tcp\": \"8080\"\n");
    assert_eq!(l.valid().ports[0].1, Some(8080));
}

#[test]
fn ports_unquoted_int_key_is_invalid() {
    let l = with("ports:\n  80: 80\n");
    l.error_at("80: 80", &["ports", "80"]);
}

#[test]
fn ports_description_values_must_be_strings() {
    let l = with("ports_description:\n  \"8080/tcp\": Web UI\n");
    l.valid();
    let l = with("ports_description:\n  \"8080/tcp\": 5\n");
    l.error_at("\"8080/tcp\": 5", &["ports_description"]);
}

// ---------------------------------------------------------------------------------------------
// watchdog / webui
// ---------------------------------------------------------------------------------------------

#[test]
fn watchdog_pattern() {
    let l = with("watchdog: \"tcp://[HOST]:[PORT:1883]\"\n");
    assert_eq!(
        l.valid().watchdog.as_deref(),
        Some("tcp://[HOST]:[PORT:1883]")
    );
    assert!(
        with("watchdog: \"http://[HOST]:8080/health\"\n")
            .addon
            .valid()
    );
    let l = with("watchdog: \"ftp://x\"\n");
    l.error_at("watchdog:", &["watchdog"]);
}

#[test]
fn webui_requires_a_port_placeholder() {
    let l = with("webui: \"http://[HOST]:[PORT:8080]/\"\n");
    assert_eq!(
        l.valid().webui.as_deref(),
        Some("http://[HOST]:[PORT:8080]/")
    );
    let l = with("webui: \"http://[HOST]:8080/\"\n");
    l.error_at("webui:", &["webui"]);
    // tcp:// is a watchdog scheme only.
    let l = with("webui: \"tcp://[HOST]:[PORT:8080]\"\n");
    l.error_at("webui:", &["webui"]);
}

// ---------------------------------------------------------------------------------------------
// environment, privileged, hassio_role, services, image
// ---------------------------------------------------------------------------------------------

#[test]
fn environment_values_must_be_strings() {
    let l = with("environment:\n  PORT: 80\n");
    l.error_at("PORT: 80", &["PORT"]);
    let l = with("environment:\n  PORT: \"80\"\n  \"weird-name.x\": \"1\"\n");
    assert_eq!(
        l.valid().environment,
        vec![
            ("PORT".to_owned(), "80".to_owned()),
            ("weird-name.x".to_owned(), "1".to_owned())
        ]
    );
}

#[test]
fn environment_bool_value_is_invalid() {
    let l = with("environment:\n  DEBUG: true\n");
    l.error_at("DEBUG: true", &["DEBUG"]);
}

#[test]
fn privileged_capabilities_are_case_sensitive() {
    let l = with("privileged: [SYS_ADMIN, NET_ADMIN]\n");
    assert_eq!(
        l.valid().privileged,
        vec![Capability::SysAdmin, Capability::NetAdmin]
    );
    let l = with("privileged:\n  - sys_admin\n");
    l.error_at("sys_admin", &["privileged", "sys_admin"]);
    let l = with("privileged:\n  - SYS_BOOT\n");
    l.error_at("SYS_BOOT", &["privileged", "SYS_BOOT"]);
}

#[test]
fn hassio_role_values() {
    assert_eq!(
        with("hassio_role: manager\n").valid().hassio_role,
        Role::Manager
    );
    let l = with("hassio_role: superuser\n");
    l.error_at("hassio_role: superuser", &["hassio_role", "superuser"]);
}

#[test]
fn services_pattern() {
    let l = with("services: [\"mqtt:want\", \"mysql:need\"]\n");
    assert_eq!(l.valid().services, vec!["mqtt:want", "mysql:need"]);
    let l = with("services:\n  - \"redis:want\"\n");
    l.error_at("redis:want", &["services", "redis:want"]);
    let l = with("services:\n  - \"mqtt:use\"\n");
    l.error_at("mqtt:use", &["services"]);
}

#[test]
fn image_must_be_lowercase() {
    let l = with("image: ghcr.io/Me/thing\n");
    l.error_at("image:", &["image"]);
}

#[test]
fn image_must_not_carry_a_tag() {
    let l = with("image: ghcr.io/me/thing:latest\n");
    l.error_at("image:", &["image", "tag"]);
}

#[test]
fn image_with_arch_placeholder_is_valid() {
    let l = with("image: \"ghcr.io/me/{arch}-x\"\n");
    let c = l.valid();
    assert_eq!(c.image.as_deref(), Some("ghcr.io/me/{arch}-x"));
    assert!(!c.needs_build());
    assert_eq!(supervisor_plan(&l).image, "ghcr.io/me/amd64-x:1.0.0");
}

// ---------------------------------------------------------------------------------------------
// ulimits, timeout
// ---------------------------------------------------------------------------------------------

#[test]
fn ulimits_int_sets_soft_and_hard() {
    let l = with("ulimits:\n  nofile: 1024\n  nproc: \"64\"\n");
    assert_eq!(
        l.valid().ulimits,
        vec![
            Ulimit {
                name: "nofile".into(),
                soft: 1024,
                hard: 1024
            },
            Ulimit {
                name: "nproc".into(),
                soft: 64,
                hard: 64
            }
        ]
    );
}

#[test]
fn ulimits_soft_and_hard_mapping() {
    let l = with("ulimits:\n  nofile:\n    soft: 1\n    hard: 2\n");
    assert_eq!(
        l.valid().ulimits,
        vec![Ulimit {
            name: "nofile".into(),
            soft: 1,
            hard: 2
        }]
    );
}

#[test]
fn ulimits_mapping_needs_both_limits() {
    let l = with("ulimits:\n  nofile:\n    soft: 1\n");
    l.error_at("soft: 1", &["ulimits.nofile", "hard"]);
}

#[test]
fn ulimits_non_numeric_is_invalid() {
    let l = with("ulimits:\n  nofile: lots\n");
    l.error_at("nofile: lots", &["ulimits.nofile"]);
}

/// The plan's ulimits as (name, soft, hard).
fn limits(plan: &SandboxPlan) -> Vec<(&str, i64, i64)> {
    plan.ulimits
        .iter()
        .map(|u| (u.name.as_str(), u.soft, u.hard))
        .collect()
}

fn plan_with(loaded: &Loaded, options: &PlanOptions) -> SandboxPlan {
    decide(loaded.valid(), false, options).unwrap()
}

#[test]
fn strict_protection_clamps_ulimits_above_their_ceilings() {
    let l = with(
        "ulimits:\n  rtprio: 99\n  memlock: -1\n  nproc:\n    soft: 1024\n    hard: -1\n  nofile: 4096\n  nice: 40\n  core: -1\n",
    );
    let p = plan_with(&l, &PlanOptions::default());
    assert_eq!(
        limits(&p),
        [
            ("rtprio", 0, 0),
            ("memlock", 134217728, 134217728),
            ("nproc", 1024, 65536),
            ("nofile", 4096, 4096),
            ("nice", 0, 0),
            ("core", -1, -1),
        ]
    );
    let withheld: Vec<(&str, &str)> = p
        .withheld
        .iter()
        .map(|w| (w.right.as_str(), w.grant_with.as_str()))
        .collect();
    assert_eq!(
        withheld,
        [
            ("ulimit:rtprio", "--grant ulimits"),
            ("ulimit:memlock", "--grant ulimits"),
            ("ulimit:nproc", "--grant ulimits"),
            ("ulimit:nice", "--grant ulimits"),
        ]
    );
    let rtprio = &p.withheld[0].reason;
    assert!(
        rtprio.contains("99/99") && rtprio.contains("ceiling 0") && rtprio.contains("clamped"),
        "{rtprio}"
    );
    assert!(p.withheld[1].reason.contains("unlimited/unlimited"));

    // Granted, with protection off, or under the supervisor policy: exactly as declared.
    let declared = [
        ("rtprio", 99, 99),
        ("memlock", -1, -1),
        ("nproc", 1024, -1),
        ("nofile", 4096, 4096),
        ("nice", 40, 40),
        ("core", -1, -1),
    ];
    let granted = PlanOptions {
        grants: [addon_sandbox::policy::Right::parse("ulimits").unwrap()].into(),
        ..PlanOptions::default()
    };
    let p = plan_with(&l, &granted);
    assert_eq!(limits(&p), declared);
    assert!(p.withheld.is_empty() && p.notes.is_empty(), "{p:?}");
    let off = PlanOptions {
        protected: false,
        ..PlanOptions::default()
    };
    assert_eq!(limits(&plan_with(&l, &off)), declared);
    assert_eq!(limits(&supervisor_plan(&l)), declared);
}

#[test]
fn realtime_keeps_its_priority_and_limits_within_ceilings_pass() {
    let l = with("realtime: true\nulimits:\n  rtprio: 99\n  nofile: 1048576\n");
    let p = plan_with(&l, &PlanOptions::default());
    assert_eq!(
        limits(&p),
        [
            ("rtprio", 90, 99),
            ("memlock", 134217728, 134217728),
            ("rtprio", 99, 99),
            ("nofile", 1048576, 1048576),
        ]
    );
    assert!(p.withheld.is_empty(), "{:?}", p.withheld);
    let p = plan_with(&with("ulimits:\n  rtprio: 1\n"), &PlanOptions::default());
    assert_eq!(limits(&p), [("rtprio", 0, 0)]);
}

#[test]
fn timeout_range_and_coercion() {
    let l = with("timeout: 5\n");
    l.error_at("timeout: 5", &["timeout", "5"]);
    let l = with("timeout: 301\n");
    l.error_at("timeout: 301", &["timeout"]);
    assert_eq!(with("timeout: 300\n").valid().timeout, 300);
    assert_eq!(with("timeout: 10\n").valid().timeout, 10);
    assert_eq!(with("timeout: \"20\"\n").valid().timeout, 20);
}

// ---------------------------------------------------------------------------------------------
// schema and options
// ---------------------------------------------------------------------------------------------

#[test]
fn schema_false_is_valid() {
    with("schema: false\n").valid();
}

#[test]
fn schema_element_types() {
    let l = with(concat!(
        "schema:\n",
        "  name: \"str?\"\n",
        "  level: \"int(1,10)\"\n",
        "  ratio: \"float(0.5,)\"\n",
        "  mode: \"list(a|b|c)?\"\n",
        "  serial: \"device(subsystem=tty)\"\n",
        "  pin: \"match(^\\\\d{4}$)\"\n",
    ));
    l.valid();
}

#[test]
fn schema_unknown_element_type_is_invalid() {
    let l = with("schema:\n  name: str\n  other: string\n");
    l.error_at("other: string", &["schema.other", "string"]);
    assert_eq!(l.error_count(), 1, "{}", l.dump());
}

#[test]
fn schema_nested_dict_and_list_of_dicts_are_valid() {
    let l = with(concat!(
        "schema:\n",
        "  server:\n",
        "    host: str\n",
        "    port: port\n",
        "  users:\n",
        "    - name: str\n",
        "      password: password\n",
        "  tags:\n",
        "    - \"str?\"\n",
    ));
    l.valid();
}

#[test]
fn schema_list_inside_a_list_is_invalid() {
    let l = with("schema:\n  matrix:\n    - [int]\n");
    l.error_at("- [int]", &["schema.matrix"]);
}

#[test]
fn schema_must_be_a_mapping_or_false() {
    let l = with("schema: 5\n");
    l.error_at("schema: 5", &["schema"]);
    let l = with("schema: true\n");
    l.error_at("schema: true", &["schema"]);
}

#[test]
fn schema_bad_nested_element_is_reported_with_its_path() {
    let l = with("schema:\n  server:\n    port: number\n");
    l.error_at("port: number", &["schema.server.port"]);
}

#[test]
fn options_must_be_a_mapping() {
    let l = with("options:\n  - a\n  - b\n");
    l.error_at("- a", &["options", "list"]);
    let l = with("options: [a, b]\n");
    l.error_at("options:", &["options", "list"]);
    let l = with("options:\n  level: 3\n  name: x\n");
    l.valid();
}

// ---------------------------------------------------------------------------------------------
// Unknown, retired and repeated keys; advisories
// ---------------------------------------------------------------------------------------------

#[test]
fn unknown_key_is_dropped_with_a_did_you_mean_warning() {
    let l = with("device-tree: true\n");
    let c = l.valid();
    assert!(!c.devicetree, "the misspelt key is dropped, not applied");
    l.warning_at("device-tree", &["device-tree", "devicetree"]);
}

#[test]
fn unknown_key_far_from_any_known_key_has_no_suggestion() {
    let l = with("maintainer: someone\n");
    l.valid();
    let d = l.warning_at("maintainer", &["maintainer"]);
    assert!(!d.message.contains("did you mean"), "{}", d.message);
}

#[test]
fn repeated_key_warns_and_the_last_value_wins() {
    let l = with("host_network: true\nhost_network: false\n");
    assert!(!l.valid().host_network);
    let first = l.line("host_network: true");
    assert!(
        l.addon.warnings().any(|d| d.line == first
            && d.message.contains("host_network")
            && d.message.contains("repeated")),
        "{}",
        l.dump()
    );
}

#[test]
fn repeated_key_last_invalid_value_is_the_one_checked() {
    let l = with("timeout: 5\ntimeout: 20\n");
    assert_eq!(l.valid().timeout, 20);
    let l = with("timeout: 20\ntimeout: 5\n");
    l.error_at("timeout: 5", &["timeout"]);
}

#[test]
fn advanced_is_deprecated_and_ignored() {
    let l = with("advanced: true\n");
    l.valid();
    l.warning_at("advanced", &["advanced"]);
}

#[test]
fn codenotary_is_deprecated_and_dropped() {
    let l = with("codenotary: me@example.com\n");
    l.valid();
    let line = l.line("codenotary");
    let warnings: Vec<_> = l.addon.warnings().filter(|d| d.line == line).collect();
    assert_eq!(warnings.len(), 1, "one advisory, no unknown-key warning");
    assert!(warnings[0].message.contains("codenotary"));
}

#[test]
fn full_access_with_selective_devices_is_an_advisory() {
    let l = with("full_access: true\nuart: true\n");
    let c = l.valid();
    assert!(c.full_access && c.uart);
    l.warning_at("full_access", &["full_access"]);
}

#[test]
fn cold_backup_with_pre_post_commands_is_an_advisory() {
    let l = with("backup: cold\nbackup_pre: /pre.sh\n");
    assert_eq!(l.valid().backup, BackupMode::Cold);
    l.warning_at("backup: cold", &["cold"]);
}

// ---------------------------------------------------------------------------------------------
// apparmor.txt
// ---------------------------------------------------------------------------------------------

fn with_apparmor_txt(profile: &str) -> Addon {
    let dir = common::addon_dir(&common::minimal(""));
    std::fs::write(dir.path().join("apparmor.txt"), profile).unwrap();
    addon::load(dir.path())
}

#[test]
fn apparmor_txt_with_one_profile_is_valid() {
    let addon = with_apparmor_txt(
        "#include <tunables/global>\n\nprofile myapp flags=(attach_disconnected) {\n  file,\n}\n",
    );
    assert!(addon.valid(), "{:?}", addon.diagnostics);
    assert!(addon.has_apparmor_txt);
    assert_eq!(addon.apparmor_profile.as_deref(), Some("myapp"));
    assert_eq!(
        addon.apparmor_text.as_deref(),
        Some(
            "#include <tunables/global>\n\nprofile myapp flags=(attach_disconnected) {\n  file,\n}\n"
        )
    );
}

#[test]
fn apparmor_txt_loaded_at_launch_is_the_one_checked() {
    let dir = common::addon_dir(&common::minimal(""));
    let checked = "profile mine {\n  /data/** rw,\n}\n";
    std::fs::write(dir.path().join("apparmor.txt"), checked).unwrap();
    let addon = addon::load(dir.path());
    // Changed after the check: a launch must not pick up the new text.
    std::fs::write(
        dir.path().join("apparmor.txt"),
        "profile a {\n}\nprofile b {\n}\n",
    )
    .unwrap();
    let options = PlanOptions {
        policy: PolicyMode::Supervisor,
        ..PlanOptions::default()
    };
    let plan = decide(addon.config.as_ref().unwrap(), true, &options).unwrap();
    let text =
        addon_sandbox::launch::profile_text(&plan, "local_x", addon.apparmor_text.as_deref(), None)
            .unwrap();
    assert_eq!(text, "profile local_x {\n  /data/** rw,\n}\n");
}

#[test]
fn apparmor_txt_not_utf8_is_never_loaded() {
    let dir = common::addon_dir(&common::minimal(""));
    std::fs::write(
        dir.path().join("apparmor.txt"),
        b"# caf\xe9\nprofile mine {\n}\n",
    )
    .unwrap();
    let addon = addon::load(dir.path());
    assert_eq!(addon.apparmor_profile.as_deref(), Some("mine"));
    assert_eq!(addon.apparmor_text, None);
    let options = PlanOptions {
        policy: PolicyMode::Supervisor,
        ..PlanOptions::default()
    };
    let plan = decide(addon.config.as_ref().unwrap(), true, &options).unwrap();
    // A lossy copy would load a profile other than the file: the launch refuses instead.
    assert!(
        addon_sandbox::launch::profile_text(&plan, "local_x", addon.apparmor_text.as_deref(), None)
            .is_err()
    );
}

#[test]
fn apparmor_txt_with_only_an_indented_profile_is_invalid() {
    let addon = with_apparmor_txt("#include <tunables/global>\n  profile myapp {\n  }\n");
    assert!(!addon.valid());
    assert!(addon.config.is_some(), "the config itself is fine");
    assert!(addon.apparmor_profile.is_none());
    assert!(
        addon
            .errors()
            .any(|d| d.file.ends_with("apparmor.txt") && d.message.contains("profile")),
        "{:?}",
        addon.diagnostics
    );
}

#[test]
fn apparmor_txt_with_two_profiles_is_invalid() {
    let addon = with_apparmor_txt("profile a {\n}\n\nprofile b {\n}\n");
    assert!(!addon.valid());
    assert_eq!(addon.apparmor_text, None);
    let lines: Vec<u32> = addon.errors().map(|d| d.line).collect();
    assert_eq!(lines, vec![1, 4], "{:?}", addon.diagnostics);
}

#[test]
fn apparmor_txt_with_one_name_twice_is_valid() {
    let addon = with_apparmor_txt("profile a {\n}\nprofile a {\n}\n");
    assert!(addon.valid(), "{:?}", addon.diagnostics);
    assert_eq!(addon.apparmor_profile.as_deref(), Some("a"));
}

// ---------------------------------------------------------------------------------------------
// Reporting, JSON, build file
// ---------------------------------------------------------------------------------------------

#[test]
fn every_error_is_reported_at_once() {
    let l = with("host_network: maybe\ntimeout: 5\nhassio_role: superuser\n");
    l.error_at("host_network: maybe", &["host_network"]);
    l.error_at("timeout: 5", &["timeout"]);
    l.error_at("hassio_role: superuser", &["hassio_role"]);
    assert_eq!(l.error_count(), 3, "{}", l.dump());
}

#[test]
fn json_string_booleans_are_coerced() {
    let text = concat!(
        "{\n",
        "  \"name\": \"Test\",\n",
        "  \"version\": \"1.0.0\",\n",
        "  \"slug\": \"test\",\n",
        "  \"description\": \"d\",\n",
        "  \"arch\": [\"amd64\"],\n",
        "  \"init\": \"False\",\n",
        "  \"host_network\": \"True\"\n",
        "}\n",
    );
    let l = load_text("config.json", text);
    let c = l.valid();
    assert!(!c.init);
    assert!(c.host_network);
}

#[test]
fn json_errors_carry_their_line() {
    let text = concat!(
        "{\n",
        "  \"name\": \"Test\",\n",
        "  \"version\": \"1.0.0\",\n",
        "  \"slug\": \"test\",\n",
        "  \"description\": \"d\",\n",
        "  \"arch\": [\"amd64\"],\n",
        "  \"apparmor\": \"myprofile\"\n",
        "}\n",
    );
    let l = load_text("config.json", text);
    l.error_at("\"apparmor\"", &["apparmor"]);
}

#[test]
fn bad_build_file_is_a_warning_only() {
    let dir = common::addon_dir(&common::minimal(""));
    std::fs::write(
        dir.path().join("build.yaml"),
        "build_from: alpine\nsquash: true\n",
    )
    .unwrap();
    let addon = addon::load(dir.path());
    assert!(addon.valid(), "{:?}", addon.diagnostics);
    let build: Vec<_> = addon
        .warnings()
        .filter(|d| d.file.ends_with("build.yaml"))
        .collect();
    assert!(build.iter().any(|d| d.message.contains("deprecated")));
    assert!(
        build
            .iter()
            .any(|d| d.line == 1 && d.message.contains("alpine"))
    );
    assert!(
        build
            .iter()
            .any(|d| d.line == 2 && d.message.contains("squash"))
    );
}

// ---------------------------------------------------------------------------------------------
// Discovery, availability and map targets as the Supervisor's store and Docker layer see them
// ---------------------------------------------------------------------------------------------

/// One add-on folder holding `yaml` as its config, read.
fn load_one(yaml: &str) -> Addon {
    let dir = common::addon_dir(yaml);
    addon::load(dir.path())
}

/// The store reads every `config.*` of a folder and skips an invalid one: one valid file among
/// invalid ones is the add-on (installed), with the skipped file warned about; two valid files
/// are refused (the Supervisor's pick depends on the filesystem's listing order).
#[test]
fn a_folder_with_two_config_files_is_read_as_the_store_reads_it() {
    let dir = common::addon_dir(&common::minimal(""));
    std::fs::write(dir.path().join("config.json"), "{\"name\": \"broken\"}").unwrap();
    let a = addon::load(dir.path());
    assert!(a.valid(), "{:?}", a.diagnostics);
    assert_eq!(a.config_file, Some(dir.path().join("config.yaml")));
    let warned: Vec<&Diagnostic> = a.warnings().collect();
    assert!(
        warned.iter().any(|d| d
            .message
            .starts_with("config.json is also here but invalid")
            && d.message.contains("installs the add-on from config.yaml")),
        "{warned:?}"
    );

    std::fs::write(
        dir.path().join("config.json"),
        "{\"name\": \"T\", \"version\": \"1\", \"slug\": \"other\", \"description\": \"d\", \"arch\": [\"amd64\"]}",
    )
    .unwrap();
    let a = addon::load(dir.path());
    assert!(!a.valid());
    let err = a.errors().next().unwrap();
    assert!(
        err.message.starts_with(
            "more than one valid config file (config.yaml, config.json, slugs test, other)"
        ),
        "{}",
        err.message
    );
}

/// `arch` without the host's architecture: `check` keeps the config valid, but no plan is
/// made in either policy, and the message says why and how to choose another architecture.
#[test]
fn an_addon_for_another_architecture_has_no_plan_in_either_policy() {
    let a = load_one(&common::minimal("").replace("arch: [amd64, aarch64]", "arch: [armv7]"));
    assert!(a.valid(), "{:?}", a.diagnostics);
    for policy in [PolicyMode::Strict, PolicyMode::Supervisor] {
        let mut options = PlanOptions {
            policy,
            ..PlanOptions::default()
        };
        options.host.arch = Some("amd64".into());
        let err = decide(a.config.as_ref().unwrap(), false, &options).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the add-on is not available on amd64: its `arch` lists armv7 (the Supervisor does not offer it on this architecture; --arch chooses another)"
        );
        options.host.arch = Some("armv7".into());
        assert!(decide(a.config.as_ref().unwrap(), false, &options).is_ok());
    }
}

/// Map targets the Supervisor accepts are mounted where the config says, in both policies (a
/// trailing slash dropped); only what cannot be made safe is refused, with the reason.
#[test]
fn map_targets_the_supervisor_accepts_are_mounted_there() {
    let targets = [
        "/usr/local/",
        "/etc/app",
        "/home/node/",
        "/root/x",
        "/opt/y",
    ];
    let yaml = common::minimal(&format!(
        "map:\n{}",
        ["share", "ssl", "media", "backup", "addon_config"]
            .iter()
            .zip(targets)
            .map(|(t, p)| format!("  - type: {t}\n    read_only: false\n    path: {p}\n"))
            .collect::<String>()
    ));
    let a = load_one(&yaml);
    for policy in [PolicyMode::Strict, PolicyMode::Supervisor] {
        let options = PlanOptions {
            policy,
            ..PlanOptions::default()
        };
        let plan = decide(a.config.as_ref().unwrap(), false, &options).unwrap();
        for t in targets {
            let t = t.trim_end_matches('/');
            assert!(
                plan.mounts.iter().any(|m| m.target == t && !m.read_only),
                "{t}"
            );
        }
    }
    for (target, why) in [
        ("/", "must not be '/'"),
        ("/proc/x", "must not be inside /proc"),
        ("/dev", "must not be inside /dev"),
        ("/usr", "must not replace /usr as a whole"),
        ("/usr/bin", "must not replace /usr/bin as a whole"),
    ] {
        let a = load_one(&common::minimal(&format!(
            "map:\n  - type: share\n    path: {target}\n"
        )));
        let err = decide(a.config.as_ref().unwrap(), false, &PlanOptions::default()).unwrap_err();
        assert!(err.to_string().contains(why), "{target}: {err}");
    }
}
