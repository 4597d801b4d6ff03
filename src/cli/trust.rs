//! `trust fetch IMAGE` (online: the image's manifests and signatures into the trust cache) and
//! `trust verify IMAGE` (offline: the verdict `run` would reach, from the cache alone).

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use clap::{Args, Subcommand};

use addon_sandbox::trust::{self, Mode, Outcome, Verdict};

use super::engine::runtime;
use super::flags::{EngineFlags, TrustFlags, state_dir_or_default};

#[derive(Args)]
pub struct TrustArgs {
    #[command(subcommand)]
    command: TrustCommand,
}

#[derive(Subcommand)]
enum TrustCommand {
    /// Store an image's index, manifests and signatures in the trust cache (online).
    Fetch(FetchArgs),
    /// The verdict `run` would reach for an image, from the trust cache alone (offline).
    Verify(VerifyArgs),
}

#[derive(Args)]
struct FetchArgs {
    /// The image reference (registry/repository:tag or @sha256:...).
    image: String,
    /// CA certificates (PEM) trusted for the registry besides the system's: a private
    /// registry's own CA.
    #[arg(long, value_name = "FILE")]
    ca_file: Option<std::path::PathBuf>,
    #[command(flatten)]
    engine: EngineFlags,
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct VerifyArgs {
    image: String,
    #[command(flatten)]
    engine: EngineFlags,
    #[command(flatten)]
    trust: TrustFlags,
    /// The architecture whose platform manifest is checked [default: this machine's].
    #[arg(long, value_name = "ARCH")]
    arch: Option<String>,
    #[arg(long)]
    json: bool,
}

pub fn exec(args: TrustArgs, out: &mut impl Write) -> Result<ExitCode> {
    match args.command {
        TrustCommand::Fetch(args) => fetch(args, out),
        TrustCommand::Verify(args) => verify(args, out),
    }
}

fn fetch(args: FetchArgs, out: &mut impl Write) -> Result<ExitCode> {
    let state = args.engine.state_dir()?;
    // The cache lives in the state directory, which is owner-only like every other use.
    addon_sandbox::launch::state::StateDir::open(&state)?;
    let cache = trust::Cache::of_state(&state);
    let timeout = Duration::from_secs(args.engine.timeout_secs());
    let result = runtime()?.block_on(trust::fetch::fetch(
        &cache,
        &args.image,
        timeout,
        args.ca_file.as_deref(),
    ));
    match result {
        Ok(fetched) if args.json => writeln!(out, "{}", serde_json::to_string(&fetched)?)?,
        Ok(f) => writeln!(
            out,
            "fetched {} ({}): {} platform manifest(s), {} legacy signature manifest(s), {} Sigstore bundle(s) (referrers from the {}), into {}",
            f.image,
            f.digest,
            f.platform_manifests,
            f.legacy_signatures,
            f.bundles,
            if f.referrers_from == "api" {
                "referrers API"
            } else {
                "fallback tag"
            },
            cache.root().display()
        )?,
        Err(e) => {
            eprintln!("error: trust fetch {}: {e}", args.image);
            return Ok(ExitCode::from(1));
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn verify(args: VerifyArgs, out: &mut impl Write) -> Result<ExitCode> {
    let settings = args.trust.settings(args.arch.as_deref())?;
    let state = state_dir_or_default(args.engine.state_dir().ok().as_deref())?;
    let cache = trust::Cache::of_state(&state);
    let verdict = match trust::check(
        &settings.policy,
        &cache,
        &args.image,
        &settings.arch,
        settings.root.as_ref(),
    ) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("error: {}: {e}", args.image);
            return Ok(ExitCode::from(1));
        }
    };
    if args.json {
        writeln!(out, "{}", serde_json::to_string(&verdict)?)?;
    } else {
        writeln!(out, "{}: {}", verdict.image, summary(&verdict))?;
        let hint = format!(" --state-dir {}", state.display());
        if let Some(problem) = verdict.problem(&hint) {
            writeln!(out, "  {problem}")?;
        }
    }
    let refused = verdict.mode == Mode::Require && !verdict.verified();
    Ok(if refused {
        ExitCode::from(3)
    } else {
        ExitCode::SUCCESS
    })
}

/// One line for people: the outcome, who signed, the mode and the rule.
pub fn summary(verdict: &Verdict) -> String {
    let rule = verdict
        .rule
        .as_deref()
        .map_or_else(|| "the default".to_owned(), |r| format!("rule {r}"));
    let mode = match verdict.mode {
        Mode::Off => "off",
        Mode::Warn => "warn",
        Mode::Require => "require",
    };
    match &verdict.outcome {
        Outcome::Off => format!("not checked ({rule}: off)"),
        Outcome::Verified { signer } => format!(
            "verified, signed by {signer} ({rule}: {mode}; runs as {})",
            verdict.config.as_deref().unwrap_or("?")
        ),
        Outcome::NotFetched => format!("NOT verified: never fetched ({rule}: {mode})"),
        Outcome::Missing => format!("NOT verified: no signature ({rule}: {mode})"),
        Outcome::Refused { .. } => format!("NOT verified: no trusted signature ({rule}: {mode})"),
    }
}
