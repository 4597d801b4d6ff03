//! Deciding what each recorded access needs, with the real parser as the judge.

use std::collections::{BTreeMap, BTreeSet};

use super::access::Access;
use super::audit::Record;
use super::edit::{Edit, candidates};
use super::{Finding, LearnError, LearnReport, Need};
use crate::apparmor::Parser;
use crate::apparmor::probe::{Probe, check_many};
use crate::config::AddonConfig;
use crate::plan::{MountKind, PolicyMode, SandboxPlan};
use crate::policy::{self, PlanOptions, Right};
use crate::profile;
use crate::rating::{ApparmorMode, rate};

/// One access as read from the records.
struct Seen {
    access: Access,
    records: usize,
    programs: BTreeSet<String>,
    record: String,
}

/// A profile to ask the oracle about: the config (maybe with one key added), planned with
/// maybe some grants.
struct Variant {
    edit: Option<Edit>,
    grants: Vec<String>,
    text: String,
    /// (index of the access, its probe).
    probes: Vec<(usize, Probe)>,
}

/// Read the records of `config`'s profile (planned with `options`) and decide what each
/// access needs. `raw` holds each record's line, in the order of `records`.
pub fn analyse(
    config: &AddonConfig,
    ships_profile: bool,
    options: &PlanOptions,
    records: &[(Record, String)],
    parser: &Parser,
) -> Result<LearnReport, LearnError> {
    let plan = policy::decide(config, ships_profile, options)?;
    let name = profile::generate(&plan)?.name;
    let seen = collect(&name, records);
    let variants = all_variants(config, ships_profile, options, &plan, &seen)?;
    let work: Vec<(String, Vec<Probe>)> = variants
        .iter()
        .map(|v| {
            (
                v.text.clone(),
                v.probes.iter().map(|(_, p)| p.clone()).collect(),
            )
        })
        .collect();
    let verdicts = check_many(parser, &work)?;
    let allows = |v: usize, access: usize| {
        variants[v]
            .probes
            .iter()
            .position(|(i, _)| *i == access)
            .is_some_and(|j| verdicts[v][j])
    };
    let before = rate(config, ApparmorMode::of(config, ships_profile)).rating;
    let mut findings = Vec::new();
    for (i, s) in seen.iter().enumerate() {
        // A record of an access this profile allows came from another profile's run.
        if allows(0, i) {
            continue;
        }
        let need = if let Some(why) = justified(&plan, &s.access) {
            Need::ProfileGap { justified_by: why }
        } else if let Some(v) =
            (1..variants.len()).find(|&v| variants[v].edit.is_none() && allows(v, i))
        {
            Need::OperatorGrant {
                grant: variants[v].grants.join(", "),
            }
        } else {
            best_edit(config, ships_profile, before, &variants, |v| allows(v, i))
        };
        findings.push(Finding {
            access: s.access.clone(),
            need,
            records: s.records,
            programs: s.programs.iter().cloned().collect(),
            record: s.record.clone(),
        });
    }
    fold_into_writable_maps(&mut findings);
    Ok(LearnReport {
        profile: name,
        rating: before,
        records: seen.iter().map(|s| s.records).sum(),
        findings,
    })
}

/// The profiles to ask about: the config's own (first), each withheld right granted (strict
/// policy), and each candidate key added.
fn all_variants(
    config: &AddonConfig,
    ships_profile: bool,
    options: &PlanOptions,
    plan: &SandboxPlan,
    seen: &[Seen],
) -> Result<Vec<Variant>, LearnError> {
    let mut variants = vec![variant(config, ships_profile, options, None, &[], seen)?];
    if options.policy == PolicyMode::Strict {
        for w in &plan.withheld {
            let Ok(right) = Right::parse(&w.right) else {
                continue;
            };
            let v = variant(config, ships_profile, options, None, &[right], seen)?;
            variants.push(v);
        }
    }
    let mut edits: BTreeSet<Edit> = BTreeSet::new();
    for s in seen {
        edits.extend(
            candidates(&s.access)
                .into_iter()
                .filter(|e| !e.present_in(config)),
        );
    }
    for edit in edits {
        variants.extend(edit_variants(
            config,
            ships_profile,
            options,
            plan,
            edit,
            seen,
        ));
    }
    Ok(variants)
}

/// A folder needed writable by one access and read-only by another is one key: the writable
/// map, which allows the reading too (a client that writes a file lists the folder first).
fn fold_into_writable_maps(findings: &mut [Finding]) {
    let writable: Vec<Need> = findings
        .iter()
        .filter(|f| {
            matches!(
                f.need,
                Need::ConfigKey {
                    edit: Edit::Map {
                        read_only: false,
                        ..
                    },
                    ..
                }
            )
        })
        .map(|f| f.need.clone())
        .collect();
    for f in findings.iter_mut() {
        let Need::ConfigKey {
            edit: Edit::Map {
                folder,
                read_only: true,
            },
            ..
        } = &f.need
        else {
            continue;
        };
        let same = writable.iter().find(|n| {
            matches!(n, Need::ConfigKey { edit: Edit::Map { folder: other, .. }, .. } if other == folder)
        });
        if let Some(need) = same {
            f.need = need.clone();
        }
    }
}

/// The accesses of profile `name` (and its children), deduplicated, in the order first seen.
fn collect(name: &str, records: &[(Record, String)]) -> Vec<Seen> {
    let child = format!("{name}//");
    let mut index: BTreeMap<Access, usize> = BTreeMap::new();
    let mut seen: Vec<Seen> = Vec::new();
    for (record, line) in records {
        let p = record.profile();
        if p != name && !p.starts_with(&child) {
            continue;
        }
        let Some(access) = Access::of(record) else {
            continue;
        };
        let i = *index.entry(access.clone()).or_insert_with(|| {
            seen.push(Seen {
                access,
                records: 0,
                programs: BTreeSet::new(),
                record: line.clone(),
            });
            seen.len() - 1
        });
        seen[i].records += 1;
        if let Some(comm) = record.get("comm") {
            seen[i].programs.insert(comm.to_owned());
        }
    }
    seen
}

/// The profile of `config` (with `edit` added) planned with `grants` added, with a probe for
/// every access of `seen` that `edit` could allow (all of them without an edit).
fn variant(
    config: &AddonConfig,
    ships_profile: bool,
    options: &PlanOptions,
    edit: Option<&Edit>,
    grants: &[Right],
    seen: &[Seen],
) -> Result<Variant, LearnError> {
    let config = edit.map_or_else(|| config.clone(), |e| e.apply(config));
    let mut options = options.clone();
    options.grants.extend(grants.iter().copied());
    let plan = policy::decide(&config, ships_profile, &options)?;
    let text = profile::generate(&plan)?.render(false)?;
    let probes = seen
        .iter()
        .enumerate()
        .filter(|(_, s)| edit.is_none_or(|e| candidates(&s.access).contains(e)))
        .filter_map(|(i, s)| s.access.probe().map(|p| (i, p)))
        .collect();
    Ok(Variant {
        edit: edit.cloned(),
        grants: grants.iter().map(|g| g.name().to_owned()).collect(),
        text,
        probes,
    })
}

/// The variants of one edit: as planned, and (when the edit makes the policy withhold more)
/// with those rights granted too. An edit the policy cannot plan is no suggestion.
fn edit_variants(
    config: &AddonConfig,
    ships_profile: bool,
    options: &PlanOptions,
    plan: &SandboxPlan,
    edit: Edit,
    seen: &[Seen],
) -> Vec<Variant> {
    let mut out = Vec::new();
    let Ok(v) = variant(config, ships_profile, options, Some(&edit), &[], seen) else {
        return out;
    };
    out.push(v);
    if options.policy != PolicyMode::Strict {
        return out;
    }
    let Ok(edited) = policy::decide(&edit.apply(config), ships_profile, options) else {
        return out;
    };
    let new: Vec<Right> = edited
        .withheld
        .iter()
        .filter(|w| !plan.withheld.iter().any(|o| o.right == w.right))
        .filter_map(|w| Right::parse(&w.right).ok())
        .collect();
    if !new.is_empty()
        && let Ok(v) = variant(config, ships_profile, options, Some(&edit), &new, seen)
    {
        out.push(v);
    }
    out
}

/// The cheapest edit that allows the access (least rating lost, then the narrowest key);
/// one that needs no grant before one that does.
fn best_edit(
    config: &AddonConfig,
    ships_profile: bool,
    before: u8,
    variants: &[Variant],
    allows: impl Fn(usize) -> bool,
) -> Need {
    let mut best: Option<(bool, u8, usize, usize)> = None;
    for (v, variant) in variants.iter().enumerate() {
        let Some(edit) = &variant.edit else { continue };
        if !allows(v) {
            continue;
        }
        let edited = edit.apply(config);
        let after = rate(&edited, ApparmorMode::of(&edited, ships_profile)).rating;
        let key = (
            !variant.grants.is_empty(),
            before.saturating_sub(after),
            edit.rank(),
            v,
        );
        if best.is_none_or(|b| key < b) {
            best = Some(key);
        }
    }
    let Some((_, lost, _, v)) = best else {
        return Need::NeverNeeded;
    };
    let variant = &variants[v];
    let Some(edit) = variant.edit.clone() else {
        return Need::NeverNeeded;
    };
    Need::ConfigKey {
        key: edit.key(),
        yaml: edit.yaml(),
        rating_before: before,
        rating_after: before - lost,
        grants: variant.grants.clone(),
        edit,
    }
}

/// What in the plan already grants `access`, if anything: then a denial is our profile's bug.
fn justified(plan: &SandboxPlan, access: &Access) -> Option<String> {
    match access {
        Access::File { path, perms } => {
            if let Some(d) = plan.devices.iter().find(|d| d.path_in_container == *path) {
                return Some(format!("the plan passes device {}", d.path_on_host));
            }
            // Maps carry data: running code from one is never justified by the map alone.
            if perms.contains('x') || perms.contains('m') {
                return None;
            }
            let write = perms.contains('w') || perms.contains('l') || perms.contains('k');
            plan.mounts
                .iter()
                .filter(|m| m.kind != MountKind::Devices && (!write || !m.read_only))
                .find(|m| {
                    let t = m.target.trim_end_matches('/');
                    path == t || path.strip_prefix(t).is_some_and(|r| r.starts_with('/'))
                })
                .map(|m| {
                    let mode = if m.read_only { "read-only" } else { "writable" };
                    format!("{} ({} mounted {mode})", m.origin, m.target)
                })
        }
        Access::Capability { name } => plan
            .cap_add
            .iter()
            .find(|c| c.eq_ignore_ascii_case(name))
            .map(|c| format!("the plan adds capability {c}")),
        _ => None,
    }
}
