//! Where the kernel's AppArmor records of one run are: `/dev/kmsg` (records after a mark),
//! and, where auditd runs and takes them from the kernel, the lines its log gained.

use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// auditd's log, where the records go instead of the kernel log while auditd runs.
pub const AUDIT_LOG: &str = "/var/log/audit/audit.log";

/// The position in both logs before a run.
#[derive(Debug)]
pub struct Mark {
    /// The sequence number of the newest kernel log record (None: the log was empty).
    kmsg_seq: Option<u64>,
    audit_log: PathBuf,
    audit_len: u64,
}

#[derive(Debug, thiserror::Error)]
#[error(
    "reading the kernel log /dev/kmsg (learn mode needs root, or kernel.dmesg_restrict=0): {0}"
)]
pub struct KernelLogError(#[from] std::io::Error);

impl Mark {
    /// Now: later records are the run's.
    pub fn now(audit_log: &Path) -> Result<Mark, KernelLogError> {
        let kmsg_seq = read_kmsg(None)?.last().map(|(seq, _)| *seq);
        let audit_len = std::fs::metadata(audit_log).map_or(0, |m| m.len());
        Ok(Mark {
            kmsg_seq,
            audit_log: audit_log.to_path_buf(),
            audit_len,
        })
    }

    /// The lines both logs gained since the mark.
    pub fn since(&self) -> Result<Vec<String>, KernelLogError> {
        let mut lines: Vec<String> = read_kmsg(self.kmsg_seq)?
            .into_iter()
            .map(|(_, line)| line)
            .collect();
        if let Ok(mut f) = std::fs::File::open(&self.audit_log) {
            // A rotated log is shorter than the mark: then all of it is new.
            let len = f.metadata().map_or(0, |m| m.len());
            let from = if len >= self.audit_len {
                self.audit_len
            } else {
                0
            };
            f.seek(SeekFrom::Start(from))?;
            let mut text = String::new();
            f.read_to_string(&mut text)?;
            lines.extend(text.lines().map(str::to_owned));
        }
        Ok(lines)
    }
}

/// Whether the kernel said, in `lines`, that it dropped audit records: without auditd they
/// reach the log through printk, which rate-limits them (`audit: printk limit exceeded`,
/// `kauditd_printk_skb: N callbacks suppressed`); with auditd too slow, the backlog overflows
/// (`audit: backlog limit exceeded`, `audit_lost=`). A reading after such a loss may miss a key.
pub fn dropped_records(lines: &[String]) -> bool {
    const SIGNS: [&str; 4] = [
        "audit: printk limit exceeded",
        "kauditd_printk_skb:",
        "audit: backlog limit exceeded",
        "audit: audit_lost=",
    ];
    lines
        .iter()
        .any(|l| SIGNS.iter().any(|sign| l.contains(sign)))
}

/// Every record `/dev/kmsg` holds after `after`, as (sequence, message). Each read of the
/// device returns one record, `prio,seq,usec,flags;message`; the end is `EAGAIN`, and `EPIPE`
/// says records were overwritten before they were read (the next read goes on).
fn read_kmsg(after: Option<u64>) -> Result<Vec<(u64, String)>, KernelLogError> {
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NONBLOCK)
        .open("/dev/kmsg")?;
    let mut out = Vec::new();
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                if let Some((seq, msg)) = parse_kmsg(&buf[..n])
                    && after.is_none_or(|a| seq > a)
                {
                    out.push((seq, msg));
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
            Err(e) if e.raw_os_error() == Some(nix::libc::EPIPE) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Ok(out)
}

/// `prio,seq,usec,flags;message\n` (continuation lines, ` KEY=value`, dropped).
fn parse_kmsg(record: &[u8]) -> Option<(u64, String)> {
    let text = String::from_utf8_lossy(record);
    let (head, message) = text.split_once(';')?;
    let seq = head.split(',').nth(1)?.parse().ok()?;
    let message = message.lines().next().unwrap_or("").to_owned();
    Some((seq, message))
}

#[cfg(test)]
mod tests {
    use super::{dropped_records, parse_kmsg};

    #[test]
    fn dropped_records_are_noticed() {
        let lines = |l: &[&str]| l.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(!dropped_records(&lines(&[
            "audit: type=1400 apparmor=\"ALLOWED\""
        ])));
        assert!(dropped_records(&lines(&[
            "kauditd_printk_skb: 12 callbacks suppressed"
        ])));
        assert!(dropped_records(&lines(&["audit: printk limit exceeded"])));
        assert!(dropped_records(&lines(&[
            "audit: audit_lost=3 audit_rate_limit=0 audit_backlog_limit=64"
        ])));
    }

    #[test]
    fn kmsg_records() {
        let r =
            b"5,1234,99887766,-;audit: type=1400 audit(1.2:3): apparmor=\"DENIED\"\n SUBSYSTEM=x\n";
        let (seq, msg) = parse_kmsg(r).unwrap();
        assert_eq!(seq, 1234);
        assert_eq!(msg, "audit: type=1400 audit(1.2:3): apparmor=\"DENIED\"");
        assert!(parse_kmsg(b"garbage").is_none());
        assert!(parse_kmsg(b"5,x,1,-;m").is_none());
    }
}
