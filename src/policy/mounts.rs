//! The `map` folders (DESIGN §4): which data folder each map type binds, at which target,
//! read-only or not, in the Supervisor's order. A target the config moves is checked
//! ([`check_target_path`]) and no two mounts may share one, since they would shadow each other.
//! Also the mount helpers every other family adds its binds with.

use std::collections::BTreeSet;

use crate::config::{MapEntry, MapType};
use crate::plan::{DATA_MOUNT_ORIGIN, Mount, MountKind};

use super::paths::normalise_target;
use super::{Decision, PolicyError, Right, check_target_path};

/// The image's code directories (the profile's `CODE_DIRS`): a writable map inside one would
/// be writable and executable unless W^X is kept for it.
const CODE_DIRS: [&str; 11] = [
    "/app", "/bin", "/command", "/lib", "/lib32", "/lib64", "/libx32", "/opt", "/package", "/sbin",
    "/usr",
];

impl<'a> Decision<'a> {
    /// A path under the data root.
    pub(super) fn root(&self, rel: &str) -> String {
        [self.options.data_root.trim_end_matches('/'), "/", rel].concat()
    }

    pub(super) fn mount(&mut self, source: String, target: &str, read_only: bool, origin: &str) {
        self.mount_kind(source, target, MountKind::Directory, read_only, origin);
    }

    pub(super) fn mount_kind(
        &mut self,
        source: String,
        target: &str,
        kind: MountKind,
        read_only: bool,
        origin: &str,
    ) {
        self.mounts.push(Mount {
            source,
            target: target.to_owned(),
            read_only,
            kind,
            propagation: None,
            non_recursive: false,
            exec: false,
            origin: origin.to_owned(),
        });
    }

    /// DESIGN §4: the map types, in the Supervisor's order.
    pub(super) fn map_mounts(&mut self) -> Result<(), PolicyError> {
        let data_target = self.map_target(MapType::Data, "/data")?;
        let data_source = self.root(&["apps/data/", &self.full_slug].concat());
        self.mount(data_source, &data_target, false, DATA_MOUNT_ORIGIN);
        self.config_maps()?;
        self.shared_maps()?;
        self.check_distinct_targets()
    }

    /// `config`, or else the add-on's own config folder and Home Assistant's.
    fn config_maps(&mut self) -> Result<(), PolicyError> {
        let config = self.config;
        if let Some(entry) = config.map_entry(MapType::Config) {
            let source = self.root("homeassistant");
            return self.map_folder(MapType::Config, entry, "/config", source);
        }
        if let Some((kind, entry)) = self.pick(MapType::AppConfig, MapType::AddonConfig) {
            let source = self.root(&["app_configs/", &self.full_slug].concat());
            self.map_folder(kind, entry, "/config", source)?;
        }
        if let Some(entry) = config.map_entry(MapType::HomeassistantConfig) {
            let source = self.root("homeassistant");
            self.map_folder(
                MapType::HomeassistantConfig,
                entry,
                "/homeassistant",
                source,
            )?;
        }
        Ok(())
    }

    /// The folders shared between add-ons: every add-on's config, ssl, local add-ons, backups,
    /// share and media.
    fn shared_maps(&mut self) -> Result<(), PolicyError> {
        let config = self.config;
        if let Some((kind, entry)) = self.pick(MapType::AllAppConfigs, MapType::AllAddonConfigs) {
            let default = if kind == MapType::AllAppConfigs {
                "/app_configs"
            } else {
                "/addon_configs"
            };
            self.map_folder(kind, entry, default, self.root("app_configs"))?;
        }
        if let Some(entry) = config.map_entry(MapType::Ssl) {
            self.map_folder(MapType::Ssl, entry, "/ssl", self.root("ssl"))?;
        }
        if let Some((kind, entry)) = self.pick(MapType::LocalApps, MapType::Addons) {
            let default = if kind == MapType::LocalApps {
                "/local_apps"
            } else {
                "/addons"
            };
            self.map_folder(kind, entry, default, self.root("apps/local"))?;
        }
        if let Some(entry) = config.map_entry(MapType::Backup) {
            self.map_folder(MapType::Backup, entry, "/backup", self.root("backup"))?;
        }
        for (kind, default) in [(MapType::Share, "/share"), (MapType::Media, "/media")] {
            if let Some(entry) = config.map_entry(kind) {
                self.map_folder(kind, entry, default, self.root(kind.name()))?;
                if let Some(m) = self.mounts.last_mut() {
                    m.propagation = Some("rslave".into());
                }
            }
        }
        Ok(())
    }

    /// One map entry: its target checked, the right recorded, the folder bound.
    fn map_folder(
        &mut self,
        kind: MapType,
        entry: &MapEntry,
        default: &str,
        source: String,
    ) -> Result<(), PolicyError> {
        let target = self.map_target(kind, default)?;
        self.map_right(kind.name(), entry.read_only);
        self.mount(
            source,
            &target,
            entry.read_only,
            &["map: ", kind.name()].concat(),
        );
        if !entry.read_only && self.strict() && in_code_dir(&target) {
            self.map_exec(kind, &target);
        }
        Ok(())
    }

    /// Strict mode, a writable map inside a code directory: mounted, but W^X keeps it
    /// non-executable unless the operator grants `map_exec`; either way the plan says so.
    fn map_exec(&mut self, kind: MapType, target: &str) {
        let entry = ["map_exec:", kind.name(), ":", target].concat();
        let reason = format!(
            "{target} is writable, so the profile keeps it non-executable (W^X) although the image runs code from there"
        );
        if self.options.grants.contains(&Right::MapExec) {
            self.used_grants.insert(Right::MapExec);
            self.granted.push(entry);
            if let Some(m) = self.mounts.last_mut() {
                m.exec = true;
            }
        } else {
            self.withheld.push(crate::plan::Withheld {
                right: entry,
                reason,
                grant_with: ["--grant ", Right::MapExec.name()].concat(),
            });
        }
    }

    /// Where a map type is bound: the config's `path`, checked, or the default.
    fn map_target(&self, kind: MapType, default: &str) -> Result<String, PolicyError> {
        let path = self
            .config
            .map_entry(kind)
            .and_then(|m| m.path.as_deref())
            .map_or_else(|| default.to_owned(), |p| normalise_target(p).to_owned());
        if path != default {
            check_target_path(&path).map_err(|why| PolicyError::BadMapPath {
                kind: kind.name(),
                path: path.clone(),
                why,
            })?;
        }
        Ok(path)
    }

    /// Prefer the modern name of a pair; the legacy entry is ignored when both are given.
    fn pick(&self, modern: MapType, legacy: MapType) -> Option<(MapType, &'a MapEntry)> {
        let config = self.config;
        config
            .map_entry(modern)
            .map(|m| (modern, m))
            .or_else(|| config.map_entry(legacy).map(|m| (legacy, m)))
    }

    fn map_right(&mut self, kind: &str, read_only: bool) {
        self.grant(["map:", kind, if read_only { ":ro" } else { ":rw" }].concat());
    }

    /// Two entries with one target would shadow each other.
    fn check_distinct_targets(&self) -> Result<(), PolicyError> {
        let mut seen = BTreeSet::new();
        for m in &self.mounts {
            if !seen.insert(m.target.clone()) {
                return Err(PolicyError::BadMapPath {
                    kind: "map",
                    path: m.target.clone(),
                    why: "is the target of two mounts".into(),
                });
            }
        }
        Ok(())
    }
}

/// Whether a target lies inside (or is) one of the image's code directories.
fn in_code_dir(target: &str) -> bool {
    CODE_DIRS.iter().any(|dir| {
        target
            .strip_prefix(dir)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    })
}

/// Whether `plan` withheld execution for the writable map target `target` (strict mode,
/// inside a code directory), for the profile's reason.
pub fn exec_withheld(plan: &crate::plan::SandboxPlan, target: &str) -> bool {
    plan.withheld.iter().any(|w| {
        w.right
            .strip_prefix("map_exec:")
            .and_then(|rest| rest.split_once(':'))
            .is_some_and(|(_, t)| t == target)
    })
}
