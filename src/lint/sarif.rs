//! SARIF 2.1.0 for code scanning: one run, every rule with its help text and help URI, each
//! finding a result with its region, and the one-line edits as fixes. Columns are code
//! points (`columnKind`), as our positions count them. Typed and borrowed, serialised
//! straight to the writer: a log of the whole corpus is 2,400 results.

use std::borrow::Cow;

use serde::Serialize;

use super::rules::{self, Rule};
use super::{Finding, Report};

pub const SCHEMA: &str = "https://json.schemastore.org/sarif-2.1.0.json";

#[derive(Serialize)]
pub struct Log<'a> {
    #[serde(rename = "$schema")]
    schema: &'static str,
    version: &'static str,
    runs: [Run<'a>; 1],
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Run<'a> {
    tool: Tool,
    column_kind: &'static str,
    results: Vec<SarifResult<'a>>,
}

#[derive(Serialize)]
struct Tool {
    driver: Driver,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Driver {
    name: &'static str,
    semantic_version: String,
    rules: Vec<Descriptor>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Descriptor {
    id: &'static str,
    name: String,
    short_description: Text<'static>,
    full_description: Text<'static>,
    help: Text<'static>,
    help_uri: &'static str,
    default_configuration: Configuration,
}

#[derive(Serialize)]
struct Configuration {
    level: &'static str,
}

#[derive(Serialize)]
struct Text<'a> {
    text: Cow<'a, str>,
}

fn text<'a>(s: impl Into<Cow<'a, str>>) -> Text<'a> {
    Text { text: s.into() }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SarifResult<'a> {
    rule_id: &'static str,
    rule_index: usize,
    level: &'static str,
    message: Text<'a>,
    locations: [Location<'a>; 1],
    #[serde(skip_serializing_if = "Option::is_none")]
    properties: Option<Properties>,
    #[serde(skip_serializing_if = "Option::is_none")]
    fixes: Option<[SarifFix<'a>; 1]>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Location<'a> {
    physical_location: Physical<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Physical<'a> {
    artifact_location: Artifact,
    #[serde(skip_serializing_if = "Option::is_none")]
    region: Option<Region<'a>>,
}

#[derive(Serialize)]
struct Artifact {
    uri: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Region<'a> {
    start_line: u32,
    start_column: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    end_line: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    end_column: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    snippet: Option<Text<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Properties {
    rating_before: u8,
    rating_after: u8,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SarifFix<'a> {
    description: Text<'a>,
    artifact_changes: [Change<'a>; 1],
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Change<'a> {
    artifact_location: Artifact,
    replacements: [Replacement<'a>; 1],
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Replacement<'a> {
    deleted_region: Region<'a>,
    inserted_content: Text<'a>,
}

/// The SARIF log of these reports.
pub fn document<'a>(reports: &'a [Report], version: &str) -> Log<'a> {
    Log {
        schema: SCHEMA,
        version: "2.1.0",
        runs: [Run {
            tool: Tool {
                driver: Driver {
                    name: "addon-sandbox",
                    semantic_version: version.to_owned(),
                    rules: rules::ALL.iter().map(|r| descriptor(r)).collect(),
                },
            },
            column_kind: "unicodeCodePoints",
            results: reports
                .iter()
                .flat_map(|r| &r.findings)
                .map(result)
                .collect(),
        }],
    }
}

fn descriptor(r: &'static Rule) -> Descriptor {
    let help = format!(
        "{}: {}. Every finding says where, why and the fix, with the rating change the fix brings. See {}.",
        r.title, r.why, r.help_uri
    );
    Descriptor {
        id: r.id,
        name: name(r.id),
        short_description: text(r.title),
        full_description: text(r.why),
        help: text(help),
        help_uri: r.help_uri,
        default_configuration: Configuration {
            level: r.level.name(),
        },
    }
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

fn result(f: &Finding) -> SarifResult<'_> {
    let rule_index = rules::ALL
        .iter()
        .position(|r| r.id == f.rule.id)
        .unwrap_or_default();
    let message = match &f.fix {
        None => Cow::Borrowed(f.message.as_str()),
        Some(fix) => {
            let rating = f
                .rating
                .map(|r| format!(" (rating {} → {})", r.before, r.after))
                .unwrap_or_default();
            Cow::Owned(format!("{}. Fix: {}{rating}", f.message, fix.description))
        }
    };
    let region = (f.line > 0).then(|| Region {
        start_line: f.line,
        start_column: f.column.max(1),
        end_line: None,
        end_column: None,
        snippet: f.snippet.as_deref().map(text),
    });
    let fixes = f.fix.as_ref().and_then(|fix| {
        let edit = fix.edit.as_ref()?;
        Some([SarifFix {
            description: text(fix.description.as_str()),
            artifact_changes: [Change {
                artifact_location: Artifact {
                    uri: uri(&edit.file),
                },
                replacements: [Replacement {
                    deleted_region: Region {
                        start_line: edit.line,
                        start_column: 1,
                        end_line: Some(edit.line),
                        end_column: Some(edit.end_column()),
                        snippet: None,
                    },
                    inserted_content: text(edit.new.as_str()),
                }],
            }],
        }])
    });
    SarifResult {
        rule_id: f.rule.id,
        rule_index,
        level: f.level.name(),
        message: text(message),
        locations: [Location {
            physical_location: Physical {
                artifact_location: Artifact { uri: uri(&f.file) },
                region,
            },
        }],
        properties: f.rating.map(|r| Properties {
            rating_before: r.before,
            rating_after: r.after,
        }),
        fixes,
    }
}

/// A path as a URI reference: relative paths stay relative, absolute ones become `file://`
/// URIs; anything outside the unreserved characters and `/` is percent-encoded.
pub fn uri(path: &str) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(path.len() + 8);
    if path.starts_with('/') {
        out.push_str("file://");
    }
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
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
