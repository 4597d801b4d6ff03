//! AppArmor's audit records, read from the kernel log (`dmesg`, `/dev/kmsg`) or from auditd's
//! log (`type=AVC msg=audit(...)`): one tested parser for every source.
//!
//! The kernel writes a record as `key=value` pairs. Strings a process controls (path names,
//! `comm`, peer labels) go through `audit_log_untrustedstring`: quoted when they hold only
//! printable ASCII other than `"` and space, else written as bare upper-case hex of their bytes.
//! Numbers are bare. A bare value of a string field is therefore hex, and decoded here; a name
//! that does not decode is kept as written and marked, never guessed at.

use std::collections::BTreeMap;

/// The verdict a record reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Verdict {
    /// Enforced: the access was refused.
    Denied,
    /// Complain mode: the access went through, and an enforced profile would refuse it.
    Allowed,
    /// An `audit` rule logged an access it allowed.
    Audit,
}

/// One AppArmor record, its fields decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub verdict: Verdict,
    /// Every field, decoded, by its key (`operation`, `profile`, `name`, `requested_mask`,
    /// `denied_mask`, `capname`, `family`, `sock_type`, `peer`...).
    pub fields: BTreeMap<String, String>,
    /// Fields whose bare value was not valid hex: kept as written.
    pub undecoded: Vec<String>,
}

impl Record {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.fields.get(key).map(String::as_str)
    }

    pub fn profile(&self) -> &str {
        self.get("profile").unwrap_or("")
    }

    pub fn operation(&self) -> &str {
        self.get("operation").unwrap_or("")
    }
}

/// Fields the kernel writes with `audit_log_untrustedstring` (quoted or hex), as opposed to
/// bare numbers (`pid`, `fsuid`, `capability`, `protocol`, `error`).
const STRING_FIELDS: &[&str] = &[
    "name",
    "name2",
    "comm",
    "profile",
    "peer",
    "target",
    "srcname",
    "fstype",
    "flags",
    "addr",
    "peer_addr",
    "exe",
    "info",
    "label",
    "peer_label",
];

/// Every AppArmor record in `log` (any mix of kernel-log and auditd lines; other lines are
/// skipped).
pub fn parse_log(log: &str) -> Vec<Record> {
    log.lines().filter_map(parse_line).collect()
}

/// The record on one line, if the line holds one.
pub fn parse_line(line: &str) -> Option<Record> {
    let at = line.find("apparmor=")?;
    let pairs = split_pairs(&line[at..]);
    let verdict = match pairs.first().map(|(_, v)| v.as_str())? {
        "\"DENIED\"" => Verdict::Denied,
        "\"ALLOWED\"" => Verdict::Allowed,
        "\"AUDIT\"" => Verdict::Audit,
        _ => return None,
    };
    let mut record = Record {
        verdict,
        fields: BTreeMap::new(),
        undecoded: Vec::new(),
    };
    for (key, raw) in pairs.into_iter().skip(1) {
        let value = if let Some(quoted) = raw.strip_prefix('"') {
            quoted.strip_suffix('"').unwrap_or(quoted).to_owned()
        } else if STRING_FIELDS.contains(&key.as_str()) && raw != "none" && raw != "?" {
            match decode_hex(&raw) {
                Some(decoded) => decoded,
                None => {
                    record.undecoded.push(key.clone());
                    raw
                }
            }
        } else {
            raw
        };
        // The first of a repeated key wins: auditd appends its own fields after the kernel's.
        record.fields.entry(key).or_insert(value);
    }
    Some(record)
}

/// `key=value` pairs: a value is a quoted string (no escapes: the kernel hex-encodes anything
/// with a quote) or runs to the next space.
fn split_pairs(s: &str) -> Vec<(String, String)> {
    let mut pairs = Vec::new();
    let mut rest = s.trim_start();
    while let Some(eq) = rest.find('=') {
        let key = rest[..eq].trim();
        // A stray word without `=` before the next key: skip it.
        let key = key.rsplit(' ').next().unwrap_or(key).to_owned();
        let after = &rest[eq + 1..];
        let (value, next) = if let Some(q) = after.strip_prefix('"') {
            match q.find('"') {
                Some(end) => (&after[..end + 2], &q[end + 1..]),
                None => (after, ""),
            }
        } else {
            let end = after.find(' ').unwrap_or(after.len());
            (&after[..end], &after[end..])
        };
        if !key.is_empty() {
            pairs.push((key, value.to_owned()));
        }
        rest = next.trim_start();
    }
    pairs
}

/// Hex of a byte string, as `audit_log_n_hex` writes it; invalid UTF-8 is shown lossily.
fn decode_hex(s: &str) -> Option<String> {
    if s.is_empty() || !s.len().is_multiple_of(2) || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let bytes: Vec<u8> = (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16))
        .collect::<Result<_, _>>()
        .ok()?;
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kernel_file_denial() {
        let line = r#"[  12.345678] audit: type=1400 audit(1700000000.123:45): apparmor="DENIED" operation="open" class="file" profile="local_ssh" name="/share/notes.txt" pid=812 comm="cat" requested_mask="r" denied_mask="r" fsuid=0 ouid=0"#;
        let r = parse_line(line).unwrap();
        assert_eq!(r.verdict, Verdict::Denied);
        assert_eq!(r.operation(), "open");
        assert_eq!(r.profile(), "local_ssh");
        assert_eq!(r.get("name"), Some("/share/notes.txt"));
        assert_eq!(r.get("pid"), Some("812"));
        assert_eq!(r.get("requested_mask"), Some("r"));
        assert!(r.undecoded.is_empty());
    }

    #[test]
    fn hex_names_are_decoded() {
        // "/share/a b\"c" has a space and a quote: the kernel writes it as hex.
        let name: String = "/share/a b\"c"
            .bytes()
            .map(|b| format!("{b:02X}"))
            .collect();
        let line = format!(
            r#"audit: type=1400 audit(1.2:3): apparmor="ALLOWED" operation="mknod" profile="p" name={name} pid=1 comm=6D7920636F6D6D requested_mask="c" denied_mask="c""#
        );
        let r = parse_line(&line).unwrap();
        assert_eq!(r.verdict, Verdict::Allowed);
        assert_eq!(r.get("name"), Some("/share/a b\"c"));
        assert_eq!(r.get("comm"), Some("my comm"));
    }

    #[test]
    fn capabilities_networks_and_peers() {
        let cap = parse_line(r#"apparmor="DENIED" operation="capable" class="cap" profile="p" pid=9 comm="ip" capability=12  capname="net_admin""#).unwrap();
        assert_eq!(cap.get("capname"), Some("net_admin"));
        assert_eq!(cap.get("capability"), Some("12"));
        let net = parse_line(r#"apparmor="DENIED" operation="create" class="net" profile="p" pid=9 comm="ping" family="inet" sock_type="raw" protocol=1 requested_mask="create" denied_mask="create""#).unwrap();
        assert_eq!(net.get("family"), Some("inet"));
        assert_eq!(net.get("sock_type"), Some("raw"));
        let sig = parse_line(r#"apparmor="DENIED" operation="signal" class="signal" profile="p" pid=9 comm="kill" requested_mask="send" denied_mask="send" signal=kill peer="unconfined""#).unwrap();
        assert_eq!(sig.get("peer"), Some("unconfined"));
        assert_eq!(sig.get("signal"), Some("kill"));
    }

    #[test]
    fn auditd_lines_and_other_lines() {
        let line = r#"type=AVC msg=audit(1700000000.1:7): apparmor="DENIED" operation="exec" profile="p" name="/data/x" pid=3 comm="sh" requested_mask="x" denied_mask="x" fsuid=0 ouid=0 target="p//null-/data/x""#;
        let r = parse_line(line).unwrap();
        assert_eq!(r.operation(), "exec");
        assert_eq!(r.get("target"), Some("p//null-/data/x"));
        assert!(parse_line("[    1.0] Linux version 6.1.0").is_none());
        assert!(parse_line(r#"apparmor="STATUS" operation="profile_load""#).is_none());
        assert_eq!(
            parse_log("x\napparmor=\"DENIED\" operation=\"open\"\ny").len(),
            1
        );
    }

    #[test]
    fn bad_hex_is_kept_and_marked() {
        let r = parse_line(r#"apparmor="DENIED" operation="open" name=/not/hex pid=1"#).unwrap();
        assert_eq!(r.get("name"), Some("/not/hex"));
        assert_eq!(r.undecoded, ["name"]);
        let r = parse_line(r#"apparmor="DENIED" operation="open" name=ABC"#).unwrap();
        assert_eq!(r.undecoded, ["name"]);
    }

    #[test]
    fn truncated_lines_do_not_panic() {
        for line in [
            r#"apparmor="DENIED" operation="open" name="/unterminated"#,
            r#"apparmor="DENIED" ="x" =="#,
            r#"apparmor="#,
            r#"apparmor="DENIED"name"#,
        ] {
            let _ = parse_line(line);
        }
    }
}
