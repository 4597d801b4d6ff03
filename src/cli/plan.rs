//! `plan`: the sandbox plan, granted and withheld rights, mounts, capabilities, namespaces.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use serde::Serialize;

use addon_sandbox::addon::Addon;
use addon_sandbox::launch::TrustSettings;
use addon_sandbox::plan::SandboxPlan;
use addon_sandbox::{report, trust};

use super::flags::{DataRootFlag, PlanFlags, TrustFlags, state_dir_or_default};
use super::output::{plan_each, status};

#[derive(Args)]
pub struct PlanArgs {
    /// Add-on folders, config files, or repository folders (every add-on below is read).
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// One JSON object per add-on per line.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    plan: PlanFlags,
    #[command(flatten)]
    data_root: DataRootFlag,
    #[command(flatten)]
    trust: TrustFlags,
    /// The state directory whose trust cache `trust fetch` filled [default: as for `run`].
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
}

/// The image's trust as the plan reports it: checked, or why it could not be.
#[derive(Serialize)]
#[serde(untagged)]
enum TrustReport {
    Checked(trust::ImageTrust),
    Unchecked { status: &'static str, error: String },
}

pub fn exec(args: PlanArgs, out: &mut impl Write) -> Result<ExitCode> {
    let options = args.plan.options(args.data_root.get())?;
    let settings = args.trust.settings(options.host.arch.as_deref())?;
    let cache = trust::Cache::of_state(&state_dir_or_default(args.state_dir.as_deref())?);
    let (mut each, mut ok) = plan_each(&args.paths, &options);
    for planned in &mut each {
        let a = &planned.addon;
        let trust = match (&mut planned.plan, a.config.as_ref()) {
            (Ok(plan), Some(config)) => Some(image_trust(plan, a, config, &settings, &cache)),
            _ => None,
        };
        match &planned.plan {
            Ok(plan) if args.json => {
                let r = report::PlanReport {
                    path: a.dir.display().to_string(),
                    plan,
                };
                let mut v = serde_json::to_value(&r)?;
                v["image_trust"] = serde_json::to_value(&trust)?;
                writeln!(out, "{v}")?;
            }
            Ok(plan) => {
                print_plan(out, a, plan)?;
                if let Some(t) = &trust {
                    print_trust(out, t)?;
                }
            }
            Err(_) => {
                ok = false;
                planned.print_why();
                if args.json {
                    let r = report::not_planned(a, planned.refusal());
                    writeln!(out, "{}", serde_json::to_string(&r)?)?;
                }
            }
        }
    }
    Ok(status(ok))
}

/// The verdict on the plan's image from the trust cache (offline), and the plan rated with it.
fn image_trust(
    plan: &mut SandboxPlan,
    addon: &Addon,
    config: &addon_sandbox::config::AddonConfig,
    settings: &TrustSettings,
    cache: &trust::Cache,
) -> TrustReport {
    let verdict = trust::check(
        &settings.policy,
        cache,
        &plan.image,
        &settings.arch,
        settings.root.as_ref(),
    );
    match verdict {
        Ok(verdict) => TrustReport::Checked(trust::rate_plan(
            plan,
            config,
            verdict,
            addon.declared.clone(),
        )),
        Err(e) => TrustReport::Unchecked {
            status: "unchecked",
            error: e.to_string(),
        },
    }
}

fn print_trust(out: &mut impl Write, t: &TrustReport) -> Result<()> {
    let t = match t {
        TrustReport::Checked(t) => t,
        TrustReport::Unchecked { error, .. } => {
            writeln!(out, "  image trust: not checked: {error}")?;
            return Ok(());
        }
    };
    let counted = if t.counts_in_rating {
        " (counted in the rating: +1)"
    } else {
        ""
    };
    writeln!(
        out,
        "  image trust: {}{counted}",
        super::trust::summary(&t.verdict)
    )?;
    if let Some(c) = &t.declared.codenotary {
        writeln!(
            out,
            "    codenotary: {c} is what the add-on says of itself: never used to trust"
        )?;
    }
    if let Some(id) = &t.declared.cosign_identity {
        writeln!(
            out,
            "    build file: its CI signs with cosign as {id}: a keyless signer your trust policy can pin"
        )?;
    }
    Ok(())
}

fn print_plan(out: &mut impl Write, a: &Addon, p: &SandboxPlan) -> Result<()> {
    writeln!(out, "{} ({})", p.full_slug, a.dir.display())?;
    writeln!(
        out,
        "  policy {}, protection {}, rating {}/8, image {}",
        p.policy.name(),
        if p.protected { "on" } else { "off" },
        p.rating,
        p.image
    )?;
    print_rights(out, p)?;
    writeln!(out, "  mounts:")?;
    for m in &p.mounts {
        let mode = if m.read_only { "ro" } else { "rw" };
        let prop = m
            .propagation
            .as_deref()
            .map(|p| format!(", {p}"))
            .unwrap_or_default();
        writeln!(out, "    {} -> {} ({mode}{prop})", m.source, m.target)?;
    }
    print_isolation(out, p)?;
    print_reach(out, p)?;
    for note in &p.notes {
        writeln!(out, "  note: {note}")?;
    }
    Ok(())
}

/// The granted rights, then the withheld ones with the flag that grants each.
fn print_rights(out: &mut impl Write, p: &SandboxPlan) -> Result<()> {
    writeln!(out, "  granted:")?;
    for g in &p.granted {
        writeln!(out, "    {g}")?;
    }
    if !p.withheld.is_empty() {
        writeln!(out, "  WITHHELD:")?;
        for w in &p.withheld {
            writeln!(
                out,
                "    {}: {} (grant with {})",
                w.right, w.reason, w.grant_with
            )?;
        }
    }
    Ok(())
}

/// Capabilities, namespaces, security options and devices.
fn print_isolation(out: &mut impl Write, p: &SandboxPlan) -> Result<()> {
    writeln!(
        out,
        "  capabilities: drop [{}] add [{}]",
        p.cap_drop.join(", "),
        p.cap_add.join(", ")
    )?;
    writeln!(
        out,
        "  namespaces: network {}, pid {}, uts {}, ipc {}",
        p.network_mode,
        p.pid_mode.as_deref().unwrap_or("private"),
        p.uts_mode.as_deref().unwrap_or("private"),
        p.ipc_mode.as_deref().unwrap_or("docker default")
    )?;
    writeln!(out, "  security options: {}", p.security_opt.join(", "))?;
    if !p.device_cgroup_rules.is_empty() || !p.devices.is_empty() {
        let devices: Vec<&str> = p.devices.iter().map(|d| d.path_on_host.as_str()).collect();
        writeln!(
            out,
            "  devices: [{}] cgroup rules [{}]",
            devices.join(", "),
            p.device_cgroup_rules.join(", ")
        )?;
    }
    Ok(())
}

/// What reaches the add-on from the network, and what it runs with: published ports, ingress,
/// tmpfs, ulimits and the environment's keys (never their values).
fn print_reach(out: &mut impl Write, p: &SandboxPlan) -> Result<()> {
    let ports: Vec<String> = p
        .ports
        .iter()
        .map(|b| match b.host {
            Some(host) => format!("{} -> host {host}", b.container),
            None => format!("{} (not published)", b.container),
        })
        .collect();
    writeln!(out, "  ports: [{}]", ports.join(", "))?;
    if let Some(port) = p.ingress_port {
        writeln!(out, "  ingress: container port {port}")?;
    }
    if !p.tmpfs.is_empty() {
        let tmpfs: Vec<String> = p.tmpfs.iter().map(|(t, o)| format!("{t} ({o})")).collect();
        writeln!(out, "  tmpfs: [{}]", tmpfs.join(", "))?;
    }
    if !p.ulimits.is_empty() {
        let limits: Vec<String> = p
            .ulimits
            .iter()
            .map(|u| format!("{} {}/{}", u.name, u.soft, u.hard))
            .collect();
        writeln!(out, "  ulimits (soft/hard): [{}]", limits.join(", "))?;
    }
    writeln!(out, "  environment keys: [{}]", p.env_keys.join(", "))?;
    Ok(())
}
