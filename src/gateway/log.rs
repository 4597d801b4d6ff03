//! The request log: one line per request on standard error (standard output carries only the
//! `{"listen": ...}` line), as text or JSON.
//!
//! A line names the caller as the gateway identified it (`addon:<slug>`, `homeassistant`,
//! `user:<id>` for an ingress session, `unknown` for a token nobody has, `none`), never by
//! its token, cookie or credentials; the path is the canonical one that was decided on (the
//! raw path only when there is none, and an ingress token replaced by its add-on's slug); no
//! query and no header is written. Lines go through a bounded queue to a writer thread, so a
//! slow reader of standard error drops lines (counted, and the count reported) instead of
//! stalling requests.

use std::io::Write;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{SyncSender, TrySendError};
use std::time::{SystemTime, UNIX_EPOCH};

/// Which requests are logged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogLevel {
    /// Nothing.
    #[default]
    None,
    /// Requests the gateway refused or could not serve.
    Denials,
    /// Those, and every request forwarded or answered.
    All,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// `key=value` words after a timestamp and the event.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// What the gateway knows about a request once it has been decided; filled as it goes.
#[derive(Debug, Default, Clone)]
pub struct Seen {
    pub path: Option<String>,
    pub caller: Option<String>,
    pub role: Option<&'static str>,
}

/// Why the gateway itself answered: carried on its own responses so the log can tell them
/// from the upstream's.
#[derive(Debug, Clone)]
pub struct Answered {
    pub reason: Option<String>,
}

/// Lines waiting for the writer thread at most; beyond that they are dropped and counted.
const QUEUE: usize = 4096;

pub struct Logger {
    level: LogLevel,
    format: LogFormat,
    tx: Option<SyncSender<String>>,
    dropped: AtomicU64,
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` for a time since the epoch (days to a civil date as in Howard
/// Hinnant's `civil_from_days`).
fn timestamp(now: SystemTime) -> String {
    let since = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let days = (secs / 86_400) as i64 + 719_468;
    let era = days.div_euclid(146_097);
    let doe = days.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let rem = secs % 86_400;
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        since.subsec_millis()
    )
}

/// A text value: bare when it is one visible word, else quoted with escapes, so a line always
/// splits back into the same words.
fn word(value: &str) -> String {
    let plain = !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'=' && b != b'\\');
    if plain {
        value.to_owned()
    } else {
        format!("{value:?}")
    }
}

/// One request's line.
pub struct Line<'a> {
    pub event: &'static str,
    pub status: u16,
    pub peer: IpAddr,
    pub method: &'a str,
    pub seen: &'a Seen,
    pub reason: Option<&'a str>,
}

impl Logger {
    pub fn new(level: LogLevel, format: LogFormat) -> Logger {
        let tx = (level != LogLevel::None).then(|| {
            let (tx, rx) = std::sync::mpsc::sync_channel::<String>(QUEUE);
            std::thread::spawn(move || {
                for line in rx {
                    let mut err = std::io::stderr().lock();
                    let _ = err.write_all(line.as_bytes());
                }
            });
            tx
        });
        Logger {
            level,
            format,
            tx,
            dropped: AtomicU64::new(0),
        }
    }

    /// Whether a request with this outcome is logged at all (checked before any formatting).
    pub fn wants(&self, denied: bool) -> bool {
        match self.level {
            LogLevel::None => false,
            LogLevel::Denials => denied,
            LogLevel::All => true,
        }
    }

    pub fn write(&self, line: &Line) {
        let Some(tx) = &self.tx else { return };
        let mut text = self.format(line, SystemTime::now());
        let dropped = self.dropped.swap(0, Ordering::Relaxed);
        if dropped > 0 {
            text = format!("{}{text}", self.format_dropped(dropped));
        }
        if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) = tx.try_send(text) {
            self.dropped.fetch_add(1 + dropped, Ordering::Relaxed);
        }
    }

    fn format_dropped(&self, n: u64) -> String {
        let ts = timestamp(SystemTime::now());
        match self.format {
            LogFormat::Text => format!("{ts} dropped lines={n}\n"),
            LogFormat::Json => {
                let v = serde_json::json!({"time": ts, "event": "dropped", "lines": n});
                format!("{v}\n")
            }
        }
    }

    fn format(&self, line: &Line, now: SystemTime) -> String {
        let seen = line.seen;
        let path = seen.path.as_deref().unwrap_or("");
        let caller = seen.caller.as_deref().unwrap_or("none");
        match self.format {
            LogFormat::Json => {
                let v = serde_json::json!({
                    "time": timestamp(now),
                    "event": line.event,
                    "status": line.status,
                    "caller": caller,
                    "role": seen.role,
                    "peer": line.peer.to_string(),
                    "method": line.method,
                    "path": path,
                    "reason": line.reason,
                });
                format!("{v}\n")
            }
            LogFormat::Text => format!(
                "{} {} status={} caller={} role={} peer={} method={} path={} reason={}\n",
                timestamp(now),
                line.event,
                line.status,
                word(caller),
                seen.role.unwrap_or("-"),
                line.peer,
                word(line.method),
                word(path),
                word(line.reason.unwrap_or("-")),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn timestamps_are_utc_civil_dates() {
        let t = |s: u64| timestamp(UNIX_EPOCH + Duration::from_millis(s));
        assert_eq!(t(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(t(951_782_400_123), "2000-02-29T00:00:00.123Z");
        assert_eq!(t(1_796_083_199_000), "2026-11-30T23:59:59.000Z");
    }

    #[test]
    fn text_values_split_back_into_words() {
        assert_eq!(word("/addons/self/info"), "/addons/self/info");
        assert_eq!(word("a b"), "\"a b\"");
        assert_eq!(word("x=\"y\""), "\"x=\\\"y\\\"\"");
        assert_eq!(word(""), "\"\"");
    }
}
