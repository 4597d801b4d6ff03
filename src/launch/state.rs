//! The state directory: per add-on, the token of its current start (0600), a record of what was
//! started, and a lock so two commands never work on one add-on at once; the generated profiles
//! and the parser's cache. The API gateway reads the records to map a token to its add-on.
//!
//! ```text
//! <state>/addons/<full slug>/token        the SUPERVISOR_TOKEN of the running start (0600)
//! <state>/addons/<full slug>/record.json  container, image, confinement, role
//! <state>/addons/<full slug>/lock         held while a command changes this add-on
//! <state>/apparmor/<profile name>         the profile loaded for it
//! <state>/apparmor/cache/                 apparmor_parser's cache
//! ```

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub full_slug: String,
    pub container_name: String,
    pub container_id: String,
    pub image: String,
    /// `apparmor:<name>`, `unconfined` or `docker-default`.
    pub confinement: String,
    /// The Supervisor API role the token works with.
    pub role: String,
    pub hassio_api: bool,
    pub homeassistant_api: bool,
    pub auth_api: bool,
    pub ingress_port: Option<u16>,
    /// `strict` or `supervisor`: in strict mode an add-on may never switch off its own protection.
    #[serde(default = "strict")]
    pub policy: String,
    /// The path segment of `/ingress/<token>/`, fresh for each start.
    #[serde(default)]
    pub ingress_token: Option<String>,
    /// `host:port` where the gateway reaches the add-on's ingress server.
    #[serde(default)]
    pub ingress_address: Option<String>,
    /// What a standalone gateway tells the add-on about itself (`/addons/self/info`,
    /// `/addons/self/options/config`, the services it may use); absent in older records.
    #[serde(default)]
    pub info: Option<AddonInfo>,
}

/// The add-on's own facts as its config gave them at `run`, for a gateway with no Supervisor.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddonInfo {
    pub name: String,
    pub slug: String,
    pub version: String,
    pub description: String,
    /// `service:provide|want|need`, as in the config.
    pub services: Vec<String>,
    /// `port/proto` → host port (None: not published), as the Supervisor's `ports`.
    pub ports: std::collections::BTreeMap<String, Option<u16>>,
    pub ingress: bool,
    /// The config's `ingress_entry` (the page below the ingress root), as written.
    pub ingress_entry: Option<String>,
    pub hostname: Option<String>,
    /// The add-on's data folder on the host (`options.json` is read from it).
    pub data_dir: Option<String>,
    /// The address of the add-on on the gateway's network, once started.
    pub ip_address: Option<String>,
}

impl AddonInfo {
    /// The facts of `config` planned as `plan` (data folder and hostname from the plan).
    pub fn new(config: &crate::config::AddonConfig, plan: &crate::plan::SandboxPlan) -> AddonInfo {
        let data_target = plan.data_target();
        AddonInfo {
            name: config.name.clone(),
            slug: config.slug.clone(),
            version: config.version.clone(),
            description: config.description.clone(),
            services: config.services.clone(),
            ports: config
                .ports
                .iter()
                .map(|(spec, host)| (spec.key.clone(), *host))
                .collect(),
            ingress: config.ingress,
            ingress_entry: config.ingress_entry.clone(),
            hostname: plan.hostname.clone(),
            data_dir: plan
                .mounts
                .iter()
                .find(|m| m.target == data_target)
                .map(|m| m.source.clone()),
            ip_address: None,
        }
    }
}

fn strict() -> String {
    "strict".to_owned()
}

impl Record {
    /// What a start of `plan` records, whichever backend started it; ingress fields empty.
    pub fn for_plan(
        plan: &crate::plan::SandboxPlan,
        container_id: String,
        image: String,
        confinement: String,
    ) -> Record {
        Record {
            full_slug: plan.full_slug.clone(),
            container_name: plan.container_name.clone(),
            container_id,
            image,
            confinement,
            role: plan.effective_role.name().to_owned(),
            hassio_api: plan.hassio_api,
            homeassistant_api: plan.homeassistant_api,
            auth_api: plan.auth_api,
            ingress_port: plan.ingress_port,
            policy: plan.policy.name().to_owned(),
            ingress_token: None,
            ingress_address: None,
            info: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error(
        "no add-on '{0}' was started by addon-sandbox with this state directory (see addon-sandbox ps)"
    )]
    Unknown(String),
    #[error("'{name}' is ambiguous: it is the slug of {}; give the full slug", matches.join(", "))]
    Ambiguous { name: String, matches: Vec<String> },
}

#[derive(Clone, Debug)]
pub struct StateDir {
    root: PathBuf,
}

/// Held while a command changes one add-on; released on drop.
pub struct AddonLock {
    _file: File,
    slug: String,
}

fn mkdir_private(dir: &Path) -> io::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

/// A folder of the state directory that exists already: ours, and owner-only. Loose permissions
/// (a folder made by hand, an older version) are narrowed; a folder of another user is refused,
/// since its owner could read the tokens or put links where we write.
fn owner_only(dir: &Path) -> io::Result<()> {
    let meta = fs::metadata(dir)?;
    let me = nix::unistd::geteuid().as_raw();
    if meta.uid() != me {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "{} belongs to uid {}, not to this user (uid {me}): refusing to keep tokens there (use a state directory of your own, --state-dir)",
                dir.display(),
                meta.uid()
            ),
        ));
    }
    if meta.mode() & 0o077 != 0 {
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// Write through a temporary file in the same directory and rename, with `mode`: a reader
/// never sees half a file, and concurrent writers never share a temporary name. Synced to
/// disk before the rename (for files a user asked for).
pub fn write_atomically(file: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    replace_file(file, bytes, mode, true)
}

/// Like [`write_atomically`] without the sync: for the state directory, whose tokens, records
/// and generation describe running processes that a crash ends anyway. Readers still never see
/// half a file; a start saves a millisecond per file.
fn write_state(file: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    replace_file(file, bytes, mode, false)
}

fn replace_file(file: &Path, bytes: &[u8], mode: u32, sync: bool) -> io::Result<()> {
    let dir = file
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file()
        .set_permissions(fs::Permissions::from_mode(mode))?;
    if sync {
        tmp.as_file().sync_all()?;
    }
    tmp.persist(file).map_err(|e| e.error)?;
    Ok(())
}

impl StateDir {
    /// The state directory at `root`, created owner-only; an existing one is checked and its
    /// permissions narrowed (see [`owner_only`]).
    pub fn open(root: &Path) -> io::Result<StateDir> {
        mkdir_private(&root.join("addons"))?;
        mkdir_private(&root.join("apparmor").join("cache"))?;
        for dir in [root, &root.join("addons"), &root.join("apparmor")] {
            owner_only(dir)?;
        }
        Ok(StateDir {
            root: root.to_path_buf(),
        })
    }

    /// The state directory at `root` for reading, when there is one: nothing is created, so
    /// listing sandboxes or reloading the gateway's tokens never writes to the host.
    pub fn existing(root: &Path) -> Option<StateDir> {
        root.join("addons").is_dir().then(|| StateDir {
            root: root.to_path_buf(),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn addon_dir(&self, slug: &str) -> PathBuf {
        self.root.join("addons").join(slug)
    }

    /// Wait for and take the lock of one add-on.
    pub fn lock(&self, slug: &str) -> io::Result<AddonLock> {
        self.lock_noting_wait(slug, |_| {})
    }

    /// Take the lock of one add-on; when another command holds it, `waiting` is told the lock
    /// file first (to say what is being waited for), then the lock is waited for. The file may
    /// have been removed by its holder (see [`StateDir::release`]): then the lock taken was on a
    /// file nobody else can find, and it is taken again on the new one.
    pub fn lock_noting_wait(
        &self,
        slug: &str,
        mut waiting: impl FnMut(&Path),
    ) -> io::Result<AddonLock> {
        let dir = self.addon_dir(slug);
        let path = dir.join("lock");
        loop {
            mkdir_private(&dir)?;
            let file = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o600)
                .open(&path)?;
            match file.try_lock() {
                Ok(()) => {}
                Err(fs::TryLockError::WouldBlock) => {
                    waiting(&path);
                    file.lock()?;
                }
                Err(fs::TryLockError::Error(e)) => return Err(e),
            }
            let held = file.metadata()?;
            let same = fs::metadata(&path).is_ok_and(|now| now.ino() == held.ino());
            if same {
                return Ok(AddonLock {
                    _file: file,
                    slug: slug.to_owned(),
                });
            }
        }
    }

    /// Release `lock`; when the add-on has neither token nor record left (after `rm`, or a run
    /// that failed), its lock file and then its folder go too (a native sandbox's log keeps it).
    pub fn release(&self, lock: AddonLock) {
        let dir = self.addon_dir(&lock.slug);
        if !dir.join("token").exists() && !dir.join("record.json").exists() {
            let _ = fs::remove_file(dir.join("lock"));
            let _ = fs::remove_dir(&dir);
        }
        drop(lock);
    }

    /// The record of `name`: a full slug, or a short one (the slug without the repository,
    /// `example` for `local_example`) that exactly one add-on of this state directory has.
    pub fn resolve(&self, name: &str) -> Result<Record, ResolveError> {
        if let Some(r) = self.read_record(name) {
            return Ok(r);
        }
        let mut matches: Vec<Record> = self
            .records()
            .into_iter()
            .filter(|r| r.full_slug.split_once('_').is_some_and(|(_, s)| s == name))
            .collect();
        match matches.len() {
            0 => Err(ResolveError::Unknown(name.to_owned())),
            1 => Ok(matches.remove(0)),
            _ => Err(ResolveError::Ambiguous {
                name: name.to_owned(),
                matches: matches.into_iter().map(|r| r.full_slug).collect(),
            }),
        }
    }

    pub fn token_path(&self, slug: &str) -> PathBuf {
        self.addon_dir(slug).join("token")
    }

    pub fn write_token(&self, slug: &str, token: &str) -> io::Result<()> {
        mkdir_private(&self.addon_dir(slug))?;
        write_state(&self.token_path(slug), token.as_bytes(), 0o600)
    }

    /// Revoke the token of a stopped add-on: the gateway refuses it from its next lookup on.
    pub fn revoke_token(&self, slug: &str) -> io::Result<()> {
        match fs::remove_file(self.token_path(slug)) {
            Ok(()) => self.mark_changed(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        }
    }

    pub fn read_token(&self, slug: &str) -> Option<String> {
        fs::read_to_string(self.token_path(slug)).ok()
    }

    pub fn write_record(&self, record: &Record) -> io::Result<()> {
        let json = serde_json::to_vec_pretty(record).map_err(io::Error::other)?;
        write_state(
            &self.addon_dir(&record.full_slug).join("record.json"),
            &json,
            0o600,
        )?;
        self.mark_changed()
    }

    /// `<state>/generation`: replaced (a new inode) whenever a record or token appears or goes,
    /// so a reader can tell with one `stat` whether its snapshot is stale.
    pub fn generation_path(&self) -> PathBuf {
        self.root.join("generation")
    }

    fn mark_changed(&self) -> io::Result<()> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        write_state(
            &self.generation_path(),
            now.as_nanos().to_string().as_bytes(),
            0o600,
        )
    }

    pub fn read_record(&self, slug: &str) -> Option<Record> {
        let text = fs::read(self.addon_dir(slug).join("record.json")).ok()?;
        serde_json::from_slice(&text).ok()
    }

    /// Every add-on with a record, sorted.
    pub fn records(&self) -> Vec<Record> {
        let mut out: Vec<Record> = fs::read_dir(self.root.join("addons"))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| self.read_record(&e.file_name().to_string_lossy()))
            .collect();
        out.sort_by(|a, b| a.full_slug.cmp(&b.full_slug));
        out
    }

    /// Forget a start: token and record (the add-on's data stays where it is).
    pub fn forget(&self, slug: &str) {
        let dir = self.addon_dir(slug);
        let _ = fs::remove_file(dir.join("token"));
        let _ = fs::remove_file(dir.join("record.json"));
        let _ = self.mark_changed();
    }

    pub fn profile_path(&self, name: &str) -> PathBuf {
        self.root.join("apparmor").join(name)
    }

    pub fn parser_cache(&self) -> PathBuf {
        self.root.join("apparmor").join("cache")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reading_a_state_directory_creates_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("state");
        assert!(StateDir::existing(&root).is_none());
        assert!(!root.exists(), "a reader made the directory");
        StateDir::open(&root).unwrap();
        let state = StateDir::existing(&root).expect("made by open");
        assert!(state.records().is_empty());
    }
}
