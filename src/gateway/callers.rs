//! Who is calling: the token of a request mapped to Home Assistant (the core token) or to an
//! add-on started by `addon-sandbox run` (its record and token in the state directory).
//!
//! The state directory is the only source: the launcher writes a token and a record when it
//! starts an add-on and removes them on `rm`. The gateway keeps a snapshot and reloads it at
//! most once per [`REFRESH`], and at once (but not more often than [`MISS_RELOAD`]) when a token
//! is unknown, so a freshly started add-on is served on its first request and a removed one
//! loses access within a second.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use crate::config::Role;
use crate::launch::state::StateDir;

pub const REFRESH: Duration = Duration::from_secs(1);
pub const MISS_RELOAD: Duration = Duration::from_millis(100);

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
}

#[derive(Default)]
struct Snapshot {
    by_token: HashMap<String, Arc<AddonCaller>>,
    by_ingress_token: HashMap<String, Arc<AddonCaller>>,
}

pub struct Registry {
    state_dir: PathBuf,
    snapshot: RwLock<Arc<Snapshot>>,
    loaded_at: Mutex<Option<Instant>>,
}

fn load(state_dir: &PathBuf) -> Snapshot {
    let mut snapshot = Snapshot::default();
    let Ok(state) = StateDir::open(state_dir) else {
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
        let snapshot = load(&state_dir);
        Registry {
            state_dir,
            snapshot: RwLock::new(Arc::new(snapshot)),
            loaded_at: Mutex::new(Some(Instant::now())),
        }
    }

    /// Reload when the snapshot is older than `max_age`.
    fn refresh(&self, max_age: Duration) {
        let mut loaded_at = self.loaded_at.lock().unwrap_or_else(|e| e.into_inner());
        if loaded_at.is_some_and(|t| t.elapsed() < max_age) {
            return;
        }
        let fresh = Arc::new(load(&self.state_dir));
        *self.snapshot.write().unwrap_or_else(|e| e.into_inner()) = fresh;
        *loaded_at = Some(Instant::now());
    }

    fn current(&self) -> Arc<Snapshot> {
        self.refresh(REFRESH);
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
        if let Some(hit) = pick(&self.current()).get(key) {
            return Some(hit.clone());
        }
        self.refresh(MISS_RELOAD);
        pick(&self.current()).get(key).cloned()
    }

    pub fn by_token(&self, token: &str) -> Option<Arc<AddonCaller>> {
        self.find(token, |s| &s.by_token)
    }

    pub fn by_ingress_token(&self, token: &str) -> Option<Arc<AddonCaller>> {
        self.find(token, |s| &s.by_ingress_token)
    }
}
