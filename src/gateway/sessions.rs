//! Ingress sessions: created by Home Assistant for a user, checked on every ingress request.
//!
//! The Supervisor adds 15 minutes to a session's expiry on every validation, so a session that
//! is validated often lives for ever and ever longer. Here the expiry is fixed when the session
//! is made and nothing extends it; the frontend asks for a new session when one lapses.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The user a session identifies to the add-on (`X-Remote-User-*`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SessionUser {
    pub id: String,
    pub name: Option<String>,
    pub display_name: Option<String>,
}

struct Session {
    user: Option<SessionUser>,
    expires: Instant,
}

/// At most this many live sessions; creating one more first drops the expired ones, then the
/// one closest to expiry.
pub const MAX_SESSIONS: usize = 10_000;

pub struct Sessions {
    ttl: Duration,
    live: Mutex<HashMap<String, Session>>,
}

/// 64 random bytes in hex, as the Supervisor's `secrets.token_hex(64)`.
fn new_session_id() -> std::io::Result<String> {
    let mut bytes = [0u8; 64];
    getrandom::fill(&mut bytes).map_err(std::io::Error::other)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

impl Sessions {
    pub fn new(ttl: Duration) -> Sessions {
        Sessions {
            ttl,
            live: Mutex::new(HashMap::new()),
        }
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    pub fn create(&self, user: Option<SessionUser>) -> std::io::Result<String> {
        let id = new_session_id()?;
        let now = Instant::now();
        let mut live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        if live.len() >= MAX_SESSIONS {
            live.retain(|_, s| s.expires > now);
        }
        if live.len() >= MAX_SESSIONS
            && let Some(oldest) = live
                .iter()
                .min_by_key(|(_, s)| s.expires)
                .map(|(k, _)| k.clone())
        {
            live.remove(&oldest);
        }
        live.insert(
            id.clone(),
            Session {
                user,
                expires: now + self.ttl,
            },
        );
        Ok(id)
    }

    /// The session's user when the session exists and has not expired; `Some(None)` for a
    /// valid session without user data. Never extends the expiry.
    pub fn check(&self, id: &str) -> Option<Option<SessionUser>> {
        let mut live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        let session = live.get(id)?;
        if session.expires <= Instant::now() {
            live.remove(id);
            return None;
        }
        Some(session.user.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_expire_at_a_fixed_time_however_often_checked() {
        let sessions = Sessions::new(Duration::from_millis(150));
        let id = sessions.create(None).unwrap();
        assert_eq!(id.len(), 128);
        for _ in 0..4 {
            assert!(sessions.check(&id).is_some());
            std::thread::sleep(Duration::from_millis(25));
        }
        std::thread::sleep(Duration::from_millis(60));
        assert!(
            sessions.check(&id).is_none(),
            "checks must not extend a session"
        );
        assert!(sessions.check("nonsense").is_none());
    }
}
