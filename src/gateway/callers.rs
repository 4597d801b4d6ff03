//! Who is calling: the token of a request mapped to Home Assistant (the core token) or to an
//! add-on started by `addon-sandbox run` (its record and token in the state directory).
//!
//! The state directory is the only source: the launcher writes a token and a record when it
//! starts an add-on and removes them on `rm`, and replaces `<state>/generation` each time. The
//! gateway keeps a snapshot and `stat`s that file when a token is unknown and otherwise at
//! most every [`RECHECK`]: a changed inode or mtime reloads the snapshot. So a started add-on
//! is served on its first request, and a removed one is refused within [`RECHECK`]. A
//! snapshot older than [`REFRESH`] is reloaded regardless, for hand edits.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use crate::config::Role;
use crate::launch::state::StateDir;

pub const REFRESH: Duration = Duration::from_secs(5);
pub const RECHECK: Duration = Duration::from_millis(50);

/// An add-on as the gateway sees it: the rights its plan granted, nothing it asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddonCaller {
    pub full_slug: String,
    pub role: Role,
    pub hassio_api: bool,
    pub homeassistant_api: bool,
    pub auth_api: bool,
    pub strict: bool,
    pub ingress_token: Option<String>,
    pub ingress_address: Option<String>,
    /// What `run` recorded of the add-on's config (for a standalone gateway).
    pub info: Option<crate::launch::state::AddonInfo>,
}

#[derive(Default)]
struct Snapshot {
    by_token: HashMap<String, Arc<AddonCaller>>,
    by_ingress_token: HashMap<String, Arc<AddonCaller>>,
}

/// Identifies one version of `<state>/generation`; `None` when it does not exist.
type Generation = Option<(u64, i64, i64)>;

fn generation(state_dir: &Path) -> Generation {
    let meta = std::fs::metadata(state_dir.join("generation")).ok()?;
    Some((meta.ino(), meta.mtime(), meta.mtime_nsec()))
}

struct Loaded {
    at: Instant,
    checked_at: Instant,
    generation: Generation,
}

pub struct Registry {
    state_dir: PathBuf,
    snapshot: RwLock<Arc<Snapshot>>,
    loaded: Mutex<Loaded>,
}

fn load(state_dir: &Path) -> Snapshot {
    let mut snapshot = Snapshot::default();
    let Some(state) = StateDir::existing(state_dir) else {
        return snapshot;
    };
    for record in state.records() {
        // A record the gateway cannot read fully grants nothing: its token stays unknown.
        let Some(role) = Role::parse(&record.role) else {
            continue;
        };
        let Some(token) = state.read_token(&record.full_slug) else {
            continue;
        };
        let token = token.trim().to_owned();
        if token.is_empty() {
            continue;
        }
        let caller = Arc::new(AddonCaller {
            full_slug: record.full_slug.clone(),
            role,
            hassio_api: record.hassio_api,
            homeassistant_api: record.homeassistant_api,
            auth_api: record.auth_api,
            strict: record.policy != "supervisor",
            ingress_token: record.ingress_token.clone(),
            ingress_address: record.ingress_address.clone(),
            info: record.info.clone(),
        });
        if let Some(ingress) = &record.ingress_token {
            snapshot
                .by_ingress_token
                .insert(ingress.clone(), caller.clone());
        }
        snapshot.by_token.insert(token, caller);
    }
    snapshot
}

impl Registry {
    pub fn new(state_dir: PathBuf) -> Registry {
        let generation = generation(&state_dir);
        let snapshot = load(&state_dir);
        Registry {
            state_dir,
            snapshot: RwLock::new(Arc::new(snapshot)),
            loaded: Mutex::new(Loaded {
                at: Instant::now(),
                checked_at: Instant::now(),
                generation,
            }),
        }
    }

    /// The snapshot, reloaded first when the state changed. `force` looks at the generation
    /// file now instead of within [`RECHECK`].
    fn current(&self, force: bool) -> Arc<Snapshot> {
        let mut loaded = self.loaded.lock().unwrap_or_else(|e| e.into_inner());
        if force || loaded.checked_at.elapsed() >= RECHECK {
            let now_generation = generation(&self.state_dir);
            loaded.checked_at = Instant::now();
            if loaded.generation != now_generation || loaded.at.elapsed() >= REFRESH {
                let fresh = Arc::new(load(&self.state_dir));
                *self.snapshot.write().unwrap_or_else(|e| e.into_inner()) = fresh;
                loaded.at = Instant::now();
                loaded.generation = now_generation;
            }
        }
        drop(loaded);
        self.snapshot
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn find(
        &self,
        key: &str,
        pick: fn(&Snapshot) -> &HashMap<String, Arc<AddonCaller>>,
    ) -> Option<Arc<AddonCaller>> {
        if let Some(hit) = pick(&self.current(false)).get(key) {
            return Some(hit.clone());
        }
        pick(&self.current(true)).get(key).cloned()
    }

    pub fn by_token(&self, token: &str) -> Option<Arc<AddonCaller>> {
        self.find(token, |s| &s.by_token)
    }

    /// Every add-on the state directory has a token for (the services' providers).
    pub fn all(&self) -> Vec<Arc<AddonCaller>> {
        let mut all: Vec<_> = self.current(false).by_token.values().cloned().collect();
        all.sort_by(|a, b| a.full_slug.cmp(&b.full_slug));
        all
    }

    pub fn by_ingress_token(&self, token: &str) -> Option<Arc<AddonCaller>> {
        self.find(token, |s| &s.by_ingress_token)
    }
}
