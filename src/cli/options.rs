//! `options`: validate an add-on's options as the Supervisor does before a start and print
//! what `/data/options.json` would hold, without running anything. `run` takes the same
//! `--options`/`--secrets` flags (see [`OptionsFlags`]).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;

use addon_sandbox::addon::{self, Addon};
use addon_sandbox::options::{self, DeviceTable, OptionsError, Secrets, Validated};

/// The options a start validates: the user's (merged over the config's defaults) and the
/// secrets `!secret NAME` names.
#[derive(Args, Clone)]
pub struct OptionsFlags {
    /// The user's options: a JSON file (or YAML by its extension) or inline JSON
    /// (`'{"port": 8080}'`) [default: none, so the config's defaults].
    #[arg(long = "options", value_name = "FILE|JSON")]
    user_options: Option<String>,
    /// Home Assistant's `secrets.yaml`, for `!secret NAME` values.
    #[arg(long, value_name = "FILE")]
    secrets: Option<PathBuf>,
}

impl OptionsFlags {
    /// Validate the add-on's options against this host's devices.
    pub fn validate(
        &self,
        addon: &Addon,
        full_slug: &str,
        as_given: bool,
    ) -> Result<Result<Validated, OptionsError>> {
        let user = self
            .user_options
            .as_deref()
            .map(options::read_user_options)
            .transpose()?;
        let secrets = match &self.secrets {
            Some(path) => Secrets::load(path)?,
            None => Secrets::default(),
        };
        let devices = DeviceTable::from_host();
        Ok(options::validate_addon(
            addon, full_slug, user, as_given, &devices, &secrets,
        ))
    }
}

#[derive(Args)]
pub struct OptionsArgs {
    /// The add-on folder (or its config file).
    path: PathBuf,
    #[command(flatten)]
    flags: OptionsFlags,
    /// Validate exactly the dict given, without the defaults merged in (the Supervisor's
    /// `POST /addons/<slug>/options/validate`).
    #[arg(long)]
    as_given: bool,
    /// Repository name: the full slug (in the messages) is REPOSITORY_SLUG.
    #[arg(long, default_value = "local")]
    repository: String,
    /// One JSON object: valid, options or error, warnings, devices.
    #[arg(long)]
    json: bool,
}

pub fn exec(args: OptionsArgs, out: &mut impl Write) -> Result<ExitCode> {
    let addon = load_one(&args.path)?;
    let Some(config) = addon.config.as_ref().filter(|_| addon.valid()) else {
        for d in addon.errors() {
            eprint!("{d}");
        }
        return Ok(ExitCode::from(1));
    };
    let full_slug = format!("{}_{}", args.repository, config.slug);
    match args.flags.validate(&addon, &full_slug, args.as_given)? {
        Ok(valid) => {
            for w in &valid.warnings {
                eprintln!("warning: {w}");
            }
            if args.json {
                let body = serde_json::json!({"valid": true, "options": valid.options,
                    "warnings": valid.warnings, "devices": valid.devices});
                writeln!(out, "{body}")?;
            } else {
                writeln!(out, "{}", serde_json::to_string_pretty(&valid.options)?)?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(OptionsError::Invalid(error)) => {
            if args.json {
                writeln!(
                    out,
                    "{}",
                    serde_json::json!({"valid": false, "error": error})
                )?;
            } else {
                eprintln!("App {full_slug} has invalid options: {error}");
            }
            Ok(ExitCode::from(1))
        }
        Err(other) => Err(other.into()),
    }
}

/// The one add-on a path names.
fn load_one(path: &Path) -> Result<Addon> {
    let dirs = addon::resolve(path).map_err(|d| anyhow::anyhow!("{}", d.to_string().trim_end()))?;
    let [dir] = dirs.as_slice() else {
        anyhow::bail!(
            "{} names {} add-ons; options takes one",
            path.display(),
            dirs.len()
        );
    };
    Ok(addon::load(dir))
}
