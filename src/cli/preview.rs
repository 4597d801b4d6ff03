//! `preview`: boot a real AppArmor kernel (qemu) with the add-on's generated profile and show
//! what it is denied: the standard attacks and needs, plus the user's own probes.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;

use addon_sandbox::vm::{self, VmProbe};
use addon_sandbox::{policy, profile};

use super::flags::PlanFlags;
use super::output::{one_plan, status};

#[derive(Args)]
pub struct PreviewArgs {
    /// The add-on folder (or its config file).
    path: PathBuf,
    /// An extra probe, "OP PATH" with OP one of read, write, create, exec, mmap, mount,
    /// connect, device (repeatable), e.g. --probe "write /share/notes.txt".
    #[arg(long = "probe", value_name = "OP PATH")]
    probes: Vec<String>,
    #[command(flatten)]
    plan: PlanFlags,
}

pub fn exec(args: PreviewArgs, out: &mut impl Write) -> Result<ExitCode> {
    let options = args.plan.options(None)?;
    let Some((_, plan)) = one_plan(&args.path, &options, "preview")? else {
        return Ok(ExitCode::from(1));
    };
    let text = profile::generate(&plan)?.render(false)?;
    let name = plan.full_slug.clone();
    let mut probes = vm::standard_probes(&plan, &name);
    let standard = probes.len();
    for p in &args.probes {
        probes.push(user_probe(&name, p)?);
    }
    let kernel = vm::kernel()?;
    eprintln!("booting the AppArmor VM (qemu, software emulation: about a minute)...");
    let report = vm::run(&kernel, &[(name.clone(), text)], &probes, None)?;
    if !report.load_failures.is_empty() {
        anyhow::bail!(
            "the profile did not load: {}",
            report.load_failures.join("; ")
        );
    }
    writeln!(out, "{name} in a real AppArmor kernel:")?;
    let unix_mediated = report.extra.iter().any(|l| l == "UNIX yes");
    let mut surprises = 0;
    for (i, (p, outcome)) in probes.iter().zip(&report.outcomes).enumerate() {
        surprises += print_outcome(out, p, outcome, i < standard, unix_mediated)? as usize;
    }
    Ok(status(surprises == 0))
}

/// `--probe "OP PATH"` as a probe of profile `name`, expected allowed.
fn user_probe(name: &str, p: &str) -> Result<VmProbe> {
    let (op, target) = p
        .split_once(' ')
        .with_context(|| format!("--probe {p:?}: expected \"OP PATH\""))?;
    let op: &'static str = match op {
        "read" => "read",
        "write" => "write",
        "create" => "create",
        "exec" => "exec",
        "mmap" => "mmap",
        "mount" => "mount",
        "connect" => "connect",
        "device" => "device",
        other => anyhow::bail!("--probe: unknown operation {other:?}"),
    };
    policy::check_literal_path(target)
        .map_err(|why| anyhow::anyhow!("--probe path {target:?} {why}"))?;
    Ok(VmProbe {
        profile: name.to_owned(),
        op,
        path: target.to_owned(),
        expect_allowed: true,
    })
}

/// One probe's line; true when a standard probe did not get the outcome it expects.
fn print_outcome(
    out: &mut impl Write,
    p: &VmProbe,
    outcome: &str,
    standard: bool,
    unix_mediated: bool,
) -> Result<bool> {
    let expected = if !standard {
        "yours"
    } else if p.expect_allowed {
        "need"
    } else {
        "attack"
    };
    // A blocked access was not refused at once: for what it proves it counts as allowed.
    let blocked = outcome.starts_with("BLOCKED");
    let allowed = outcome == "OK" || blocked;
    let surprise = standard && allowed != p.expect_allowed && p.op != "connect";
    writeln!(
        out,
        "  {:<7} {:<8} {:<52} {}{}",
        expected,
        p.op,
        p.path,
        if blocked {
            format!(
                "blocked (no answer in {} s; not refused)",
                vm::PROBE_SECONDS
            )
        } else if allowed {
            "allowed".to_owned()
        } else {
            format!("denied ({})", outcome.trim_start_matches("ERR "))
        },
        if surprise {
            "   <-- unexpected"
        } else if p.op == "connect" && !unix_mediated {
            "   (this kernel does not mediate unix sockets; the plan does not mount it)"
        } else {
            ""
        }
    )?;
    Ok(surprise)
}
