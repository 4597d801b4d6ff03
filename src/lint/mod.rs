//! `lint`: Home Assistant's secure add-on practices as rules over a checked add-on, each
//! finding with its place, why it matters, the fix and what the fix does to the rating.
//!
//! Pure: it reads an [`Addon`] loaded with its source ([`crate::addon::load_with_source`])
//! and, for the API rule, the add-on's `rootfs/` scripts. The rating change of a fix is
//! [`crate::rating::rate`] of the config with the fix applied, never a number written here.
//! One file per rule family: `confinement` (AppArmor), `host` (rights that reach the host),
//! `maps`, `api` (+ `scripts`, the rootfs scan), `credentials`, `signing`, `deprecated`.

mod api;
mod confinement;
mod credentials;
mod deprecated;
pub mod edit;
mod host;
mod maps;
pub mod render;
pub mod rules;
pub mod sarif;
mod scripts;
mod signing;

use serde::Serialize;

use crate::addon::Addon;
use crate::config::AddonConfig;
use crate::diag::{Diagnostic, Severity, display_path};
use crate::plan::SandboxPlan;
use crate::rating::{self, ApparmorMode};
use crate::source::{Node, Pos};

pub use edit::{Edit, EditError};
pub use rules::{Level, Rule};

/// What a fix does to the Supervisor's rating.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct RatingChange {
    pub before: u8,
    pub after: u8,
}

impl RatingChange {
    pub fn delta(self) -> i32 {
        i32::from(self.after) - i32::from(self.before)
    }
}

/// The fix of a finding: always in words, and as a line edit where one line says it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Fix {
    pub description: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub edit: Option<Edit>,
}

/// One finding.
#[derive(Clone, Debug, Serialize)]
pub struct Finding {
    #[serde(serialize_with = "rule_id")]
    pub rule: &'static Rule,
    pub level: Level,
    pub file: String,
    /// 1-based; 0 when the finding is about a file as a whole.
    pub line: u32,
    pub column: u32,
    pub message: String,
    pub why: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<Fix>,
    /// The rating before and after the fix (present whenever the rule has a fix).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rating: Option<RatingChange>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snippet: Option<String>,
}

fn rule_id<S: serde::Serializer>(rule: &&'static Rule, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(rule.id)
}

/// The findings of one add-on.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub path: String,
    pub slug: Option<String>,
    /// The rating as written (None for an invalid add-on).
    pub rating: Option<u8>,
    /// The rating with every fix applied at once.
    pub rating_fixed: Option<u8>,
    pub findings: Vec<Finding>,
    /// The rating with every fix of one rule applied, by rule (for surveys).
    #[serde(skip)]
    pub rating_fixed_by_rule: Vec<(&'static str, u8)>,
}

impl Report {
    /// The most serious level of its findings.
    pub fn worst(&self) -> Option<Level> {
        self.findings.iter().map(|f| f.level).min()
    }
}

/// A change a fix makes to the parsed config (and to whether the add-on ships a profile).
type Change = Box<dyn Fn(&mut AddonConfig, &mut ApparmorMode)>;

/// One add-on being linted.
pub(crate) struct Ctx<'a> {
    pub addon: &'a Addon,
    pub config: &'a AddonConfig,
    pub root: &'a Node,
    pub text: edit::Text<'a>,
    pub apparmor: ApparmorMode,
    /// The strict plan, made when a rule first asks (most add-ons need none).
    plan: std::cell::OnceCell<Option<SandboxPlan>>,
    rating: u8,
    changes: Vec<(&'static str, Change)>,
    findings: Vec<Finding>,
}

impl<'a> Ctx<'a> {
    /// The key and value nodes of a top-level key as written.
    pub fn entry(&self, key: &str) -> Option<(&'a Node, &'a Node)> {
        self.root.get_entry(key)
    }

    /// Our plan under the strict policy with protection on (None when it refuses the add-on).
    pub fn plan(&self) -> Option<&SandboxPlan> {
        self.plan
            .get_or_init(|| {
                let ships = self.addon.apparmor_profile.is_some();
                crate::policy::decide(self.config, ships, &crate::policy::PlanOptions::default())
                    .ok()
            })
            .as_ref()
    }

    /// The author stated the need on the finding's line of the config:
    /// `# lint: allow(RULE[, RULE...]) why`. The finding, its fix and its rating change go.
    fn allowed(&self, rule: &Rule, file: &str, pos: Pos) -> bool {
        if file != self.text.file {
            return false;
        }
        let Some(line) = self.text.source.line(pos.line) else {
            return false;
        };
        let Some((_, comment)) = line.split_once('#') else {
            return false;
        };
        let Some((_, list)) = comment.split_once("lint: allow(") else {
            return false;
        };
        let list = list.split(')').next().unwrap_or_default();
        list.split(',').any(|id| id.trim() == rule.id)
    }

    /// The rating of the config with `change` applied.
    pub fn rated(&self, change: &dyn Fn(&mut AddonConfig, &mut ApparmorMode)) -> RatingChange {
        let mut config = self.config.clone();
        let mut mode = self.apparmor;
        change(&mut config, &mut mode);
        RatingChange {
            before: self.rating,
            after: rating::rate(&config, mode).rating,
        }
    }

    /// A finding in the config file with its fix: the words, the edit where one line says
    /// it, and the change to the parsed config the rating is computed from.
    pub fn fix(
        &mut self,
        rule: &'static Rule,
        pos: Pos,
        message: String,
        fix: Fix,
        change: impl Fn(&mut AddonConfig, &mut ApparmorMode) + 'static,
    ) {
        let file = self.text.file.to_owned();
        self.fix_in(rule, file, pos, message, fix, change);
    }

    /// [`Ctx::fix`] for a finding in another file of the add-on.
    pub fn fix_in(
        &mut self,
        rule: &'static Rule,
        file: String,
        pos: Pos,
        message: String,
        fix: Fix,
        change: impl Fn(&mut AddonConfig, &mut ApparmorMode) + 'static,
    ) {
        if self.allowed(rule, &file, pos) {
            return;
        }
        let rating = self.rated(&change);
        self.changes.push((rule.id, Box::new(change)));
        self.push_at(rule, file, pos, message, Some(fix), Some(rating));
    }

    /// [`Ctx::fix_in`] for a fix that leaves the parsed config as it is (a type in the
    /// schema, a key the Supervisor drops or rewrites to the same value, the profile's text):
    /// the rating of the unchanged config is the rating, no copy needed.
    pub fn fix_unchanged_in(
        &mut self,
        rule: &'static Rule,
        file: String,
        pos: Pos,
        message: String,
        fix: Fix,
    ) {
        if self.allowed(rule, &file, pos) {
            return;
        }
        let rating = RatingChange {
            before: self.rating,
            after: self.rating,
        };
        self.push_at(rule, file, pos, message, Some(fix), Some(rating));
    }

    /// [`Ctx::fix_unchanged_in`] in the config file.
    pub fn fix_unchanged(&mut self, rule: &'static Rule, pos: Pos, message: String, fix: Fix) {
        let file = self.text.file.to_owned();
        self.fix_unchanged_in(rule, file, pos, message, fix);
    }

    pub fn push_at(
        &mut self,
        rule: &'static Rule,
        file: String,
        pos: Pos,
        message: String,
        fix: Option<Fix>,
        rating: Option<RatingChange>,
    ) {
        let snippet = (file == self.text.file)
            .then(|| self.text.source.line(pos.line))
            .flatten()
            .map(str::to_owned);
        self.findings.push(Finding {
            rule,
            level: rule.level,
            file,
            line: pos.line,
            column: pos.column,
            message,
            why: rule.why,
            fix,
            rating,
            snippet,
        });
    }
}

/// Lint one add-on. An add-on loaded without its source, or invalid, gets its check
/// diagnostics only (the practices are judged on what the Supervisor would install).
pub fn lint(addon: &Addon) -> Report {
    let mut report = Report {
        path: display_path(&addon.dir),
        slug: addon.slug().map(str::to_owned),
        rating: None,
        rating_fixed: None,
        rating_fixed_by_rule: Vec::new(),
        findings: addon.diagnostics.iter().map(from_diagnostic).collect(),
    };
    let (Some(config), Some(source), Some(file)) = (
        addon.config.as_ref().filter(|_| addon.valid()),
        addon.source.as_deref(),
        addon.config_file.as_deref(),
    ) else {
        return report;
    };
    let apparmor = ApparmorMode::of(config, addon.apparmor_profile.is_some());
    let rating = rating::rate(config, apparmor).rating;
    let file = display_path(file);
    let mut ctx = Ctx {
        addon,
        config,
        root: &source.root,
        text: edit::Text {
            file: &file,
            source: &source.text,
            yaml: crate::source::Format::from_path(std::path::Path::new(&file))
                != Some(crate::source::Format::Json),
        },
        apparmor,
        plan: std::cell::OnceCell::new(),
        rating,
        changes: Vec::new(),
        findings: Vec::new(),
    };
    confinement::check(&mut ctx);
    host::check(&mut ctx);
    maps::check(&mut ctx);
    api::check(&mut ctx);
    credentials::check(&mut ctx);
    signing::check(&mut ctx);
    deprecated::check(&mut ctx);
    report.rating = Some(rating);
    fixed_ratings(&ctx, &mut report);
    merge(&mut report, std::mem::take(&mut ctx.findings), &file);
    report
}

/// The rating with every fix applied, and with each rule's fixes applied.
fn fixed_ratings(ctx: &Ctx, report: &mut Report) {
    let fixed = |rule: Option<&str>| {
        let apply = |c: &mut AddonConfig, m: &mut ApparmorMode| {
            for (id, change) in &ctx.changes {
                if rule.is_none_or(|r| r == *id) {
                    change(c, m);
                }
            }
        };
        ctx.rated(&apply).after
    };
    report.rating_fixed = Some(fixed(None));
    let mut ids: Vec<&'static str> = ctx.changes.iter().map(|(id, _)| *id).collect();
    ids.sort_unstable();
    ids.dedup();
    report.rating_fixed_by_rule = ids.into_iter().map(|id| (id, fixed(Some(id)))).collect();
}

/// The rules' findings beside check's, in one order: the config file first, then the others
/// by name, within a file by place (stable). A deprecated key `check` already warned about is
/// said once, by the rule with the fix.
fn merge(report: &mut Report, mut linted: Vec<Finding>, config_file: &str) {
    let deprecated: Vec<(&str, u32)> = linted
        .iter()
        .filter(|f| f.rule.id == rules::DEPRECATED_KEY.id)
        .map(|f| (f.file.as_str(), f.line))
        .collect();
    report.findings.retain(|f| {
        f.rule.id != rules::CHECK_WARNING.id || !deprecated.contains(&(f.file.as_str(), f.line))
    });
    report.findings.append(&mut linted);
    fn key<'f>(f: &'f Finding, config_file: &str) -> (bool, &'f str, u32, u32) {
        (f.file != config_file, f.file.as_str(), f.line, f.column)
    }
    report
        .findings
        .sort_by(|a, b| key(a, config_file).cmp(&key(b, config_file)));
}

/// A diagnostic of `check` as a finding.
fn from_diagnostic(d: &Diagnostic) -> Finding {
    let rule = match d.severity {
        Severity::Error => &rules::CHECK_ERROR,
        Severity::Warning => &rules::CHECK_WARNING,
    };
    Finding {
        rule,
        level: rule.level,
        file: d.file.clone(),
        line: d.line,
        column: d.column,
        message: d.message.clone(),
        why: rule.why,
        fix: None,
        rating: None,
        snippet: d.snippet.clone(),
    }
}

/// A fix in words only.
pub(crate) fn advice(description: impl Into<String>) -> Fix {
    Fix {
        description: description.into(),
        edit: None,
    }
}

/// A fix in words with its line edit, when there is one.
pub(crate) fn fix(description: impl Into<String>, edit: Option<Edit>) -> Fix {
    Fix {
        description: description.into(),
        edit,
    }
}
