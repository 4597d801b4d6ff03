//! The human report: grouped by what to do, with the YAML to add.

use std::fmt::Write as _;

use super::{Finding, LearnReport, Need};

/// The report for people. `verbose` also lists the accesses nothing needs.
pub fn human(report: &LearnReport, verbose: bool) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "learn: profile {} (rating {}), {} record(s), {} access(es) its enforced profile would refuse",
        report.profile,
        report.rating,
        report.records,
        report.findings.len()
    );
    let keys = report.keys_to_add();
    if !keys.is_empty() {
        out.push_str("\nAdd to the config:\n");
        for key in keys {
            key_section(&mut out, report, key);
        }
    }
    let grants: Vec<&Finding> = of(report, |n| matches!(n, Need::OperatorGrant { .. }));
    if !grants.is_empty() {
        out.push_str("\nOperator grants (the config asks for it; the policy withheld it):\n");
        for f in grants {
            if let Need::OperatorGrant { grant } = &f.need {
                let _ = writeln!(out, "  --grant {grant}: {}", line(f));
            }
        }
    }
    let gaps: Vec<&Finding> = of(report, |n| matches!(n, Need::ProfileGap { .. }));
    if !gaps.is_empty() {
        out.push_str("\nProfile gaps (the config allows it and the generated profile refuses it: a bug in addon-sandbox, please report it):\n");
        for f in gaps {
            if let Need::ProfileGap { justified_by } = &f.need {
                let _ = writeln!(
                    out,
                    "  {}\n    allowed by: {justified_by}\n    record: {}",
                    line(f),
                    f.record.trim()
                );
            }
        }
    }
    let never: Vec<&Finding> = of(report, |n| matches!(n, Need::NeverNeeded));
    if verbose && !never.is_empty() {
        out.push_str(
            "\nNever needed (tried, refused by any config; the add-on runs without it):\n",
        );
        for f in &never {
            let _ = writeln!(out, "  {}", line(f));
        }
    }
    if report.needs_nothing() {
        let _ = writeln!(
            out,
            "\nNothing to add: every access the add-on made is allowed by its config{}.",
            if never.is_empty() {
                String::new()
            } else {
                format!(
                    " ({} never-needed access(es) not shown; --verbose)",
                    never.len()
                )
            }
        );
    }
    out
}

fn of(report: &LearnReport, want: impl Fn(&Need) -> bool) -> Vec<&Finding> {
    report.findings.iter().filter(|f| want(&f.need)).collect()
}

fn line(f: &Finding) -> String {
    format!(
        "{} ({} record(s): {})",
        f.access.describe(),
        f.records,
        f.programs.join(", ")
    )
}

fn key_section(out: &mut String, report: &LearnReport, key: &str) {
    let mut first = true;
    for f in &report.findings {
        let Need::ConfigKey {
            key: k,
            yaml,
            rating_before,
            rating_after,
            grants,
            ..
        } = &f.need
        else {
            continue;
        };
        if k != key {
            continue;
        }
        if first {
            let grant = if grants.is_empty() {
                String::new()
            } else {
                format!(
                    ", and --grant {} under this policy",
                    grants.join(" --grant ")
                )
            };
            let _ = writeln!(
                out,
                "  {key}   (rating {rating_before} -> {rating_after}{grant})"
            );
            for l in yaml.lines() {
                let _ = writeln!(out, "      {l}");
            }
            out.push_str("    for:\n");
            first = false;
        }
        let _ = writeln!(out, "      {}", line(f));
    }
}
