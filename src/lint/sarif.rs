//! SARIF 2.1.0 for code scanning: one run, every rule with its help text and help URI, each
//! finding a result with its region, and the one-line edits as fixes. Columns are code
//! points (`columnKind`), as our positions count them.

use serde_json::{Value, json};

use super::rules::{self, Rule};
use super::{Finding, Report};

pub const SCHEMA: &str = "https://json.schemastore.org/sarif-2.1.0.json";

/// The SARIF log of these reports.
pub fn document(reports: &[Report], version: &str) -> Value {
    let rules: Vec<Value> = rules::ALL.iter().map(|r| rule(r)).collect();
    let results: Vec<Value> = reports
        .iter()
        .flat_map(|r| &r.findings)
        .map(result)
        .collect();
    json!({
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "addon-sandbox",
                "semanticVersion": version,
                "rules": rules,
            }},
            "columnKind": "unicodeCodePoints",
            "results": results,
        }],
    })
}

fn rule(r: &Rule) -> Value {
    let help = format!(
        "{}: {}. Every finding says where, why and the fix, with the rating change the fix brings. See {}.",
        r.title, r.why, r.help_uri
    );
    json!({
        "id": r.id,
        "name": name(r.id),
        "shortDescription": {"text": r.title},
        "fullDescription": {"text": r.why},
        "help": {"text": help},
        "helpUri": r.help_uri,
        "defaultConfiguration": {"level": r.level.name()},
    })
}

/// `host-network` → `HostNetwork`, SARIF's convention for rule names.
fn name(id: &str) -> String {
    id.split('-')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}

fn result(f: &Finding) -> Value {
    let index = rules::ALL
        .iter()
        .position(|r| r.id == f.rule.id)
        .unwrap_or_default();
    let mut message = f.message.clone();
    if let Some(fix) = &f.fix {
        message.push_str(". Fix: ");
        message.push_str(&fix.description);
        if let Some(r) = f.rating {
            message.push_str(&format!(" (rating {} → {})", r.before, r.after));
        }
    }
    let mut location = json!({"artifactLocation": {"uri": uri(&f.file)}});
    if f.line > 0 {
        let mut region = json!({"startLine": f.line, "startColumn": f.column.max(1)});
        if let Some(snippet) = &f.snippet {
            region["snippet"] = json!({"text": snippet});
        }
        location["region"] = region;
    }
    let mut out = json!({
        "ruleId": f.rule.id,
        "ruleIndex": index,
        "level": f.level.name(),
        "message": {"text": message},
        "locations": [{"physicalLocation": location}],
    });
    if let Some(r) = f.rating {
        out["properties"] = json!({"ratingBefore": r.before, "ratingAfter": r.after});
    }
    if let Some(fix) = &f.fix
        && let Some(edit) = &fix.edit
    {
        out["fixes"] = json!([{
            "description": {"text": fix.description},
            "artifactChanges": [{
                "artifactLocation": {"uri": uri(&edit.file)},
                "replacements": [{
                    "deletedRegion": {
                        "startLine": edit.line,
                        "startColumn": 1,
                        "endLine": edit.line,
                        "endColumn": edit.end_column(),
                    },
                    "insertedContent": {"text": edit.new},
                }],
            }],
        }]);
    }
    out
}

/// A path as a URI reference: relative paths stay relative, absolute ones become `file://`
/// URIs; anything outside the unreserved characters and `/` is percent-encoded.
pub fn uri(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    if path.starts_with('/') {
        out.push_str("file://");
    }
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_and_names() {
        assert_eq!(uri("a b/config.yaml"), "a%20b/config.yaml");
        assert_eq!(uri("/x/é"), "file:///x/%C3%A9");
        assert_eq!(name("host-network"), "HostNetwork");
    }
}
