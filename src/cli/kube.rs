//! `kube`: the plan as Kubernetes manifests (the profile's ConfigMap and a Deployment per
//! add-on, the loader DaemonSet with `--emit-loader`), with the Pod Security level each meets
//! and everything Kubernetes cannot express.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};

use addon_sandbox::kube::{self, AddonManifests, DeviceMode, KubeOptions, Storage};
use addon_sandbox::launch;

use super::flags::{DataRootFlag, PlanFlags};
use super::output::{plan_each, status};

#[derive(Clone, Copy, ValueEnum)]
enum StorageArg {
    Hostpath,
    Pvc,
}

#[derive(Clone, Copy, ValueEnum)]
enum DevicesArg {
    Plugin,
    Privileged,
}

#[derive(Args)]
pub struct KubeArgs {
    /// Add-on folders, config files, or repository folders (every add-on below is read).
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// The namespace of every object.
    #[arg(long, default_value = "addon-sandbox")]
    namespace: String,
    /// Data folders as the nodes' own folders (hostPath) or as subPaths of one claim (pvc).
    #[arg(long, value_enum, default_value = "hostpath")]
    storage: StorageArg,
    /// The ReadWriteMany claim holding the data root, with --storage pvc.
    #[arg(long, value_name = "NAME", default_value = "addon-sandbox-data")]
    claim: String,
    /// Devices as device-plugin resources, or (loudly reported) `privileged: true`.
    #[arg(long, value_enum, default_value = "plugin")]
    devices: DevicesArg,
    /// DEVICE=RESOURCE or CLASS=RESOURCE (repeatable): a device's or a device class's
    /// extended resource, e.g. /dev/ttyUSB0=squat.ai/zigbee, uart=squat.ai/serial.
    #[arg(long = "device-resource", value_name = "MAP")]
    device_resources: Vec<String>,
    /// The domain of the default resource names (generic-device-plugin's naming):
    /// DOMAIN/video, /serial, /usb, /gpio, /<device file name>.
    #[arg(long, value_name = "DOMAIN", default_value = "squat.ai")]
    device_domain: String,
    /// The gateway's address (`addon-sandbox serve`): `supervisor` and `hassio` resolve to it.
    #[arg(long, value_name = "IP")]
    gateway_ip: Option<String>,
    /// Home Assistant's address for `homeassistant` [default: the gateway's].
    #[arg(long, value_name = "IP")]
    homeassistant_ip: Option<String>,
    /// The add-on's TZ.
    #[arg(long, value_name = "TZ", default_value = "UTC")]
    timezone: String,
    /// Also the security-profiles-operator's AppArmorProfile (an abstract allow-list: lossy;
    /// what it loses is reported).
    #[arg(long)]
    spo: bool,
    /// Also the DaemonSet that loads every profile on every node.
    #[arg(long)]
    emit_loader: bool,
    /// Profiles are loaded by other means (a node image, the security-profiles-operator): pods
    /// do not wait for the loader's label [default with --spo and no --emit-loader].
    #[arg(long)]
    no_wait_for_loader: bool,
    /// The loader's image (holding addon-sandbox and apparmor_parser).
    #[arg(long, value_name = "IMAGE", default_value = concat!("addon-sandbox:", env!("CARGO_PKG_VERSION")))]
    loader_image: String,
    /// Write <slug>.yaml per add-on (and profile-loader.yaml, report.json) into DIR instead of
    /// one stream on standard output.
    #[arg(short = 'o', long = "out", value_name = "DIR")]
    out_dir: Option<PathBuf>,
    #[command(flatten)]
    plan: PlanFlags,
    #[command(flatten)]
    data_root: DataRootFlag,
}

fn kube_options(args: &KubeArgs, data_root: String) -> Result<KubeOptions> {
    let mut options = KubeOptions {
        namespace: args.namespace.clone(),
        storage: match args.storage {
            StorageArg::Hostpath => Storage::HostPath,
            StorageArg::Pvc => Storage::Pvc {
                claim: args.claim.clone(),
            },
        },
        data_root,
        devices: match args.devices {
            DevicesArg::Plugin => DeviceMode::Plugin,
            DevicesArg::Privileged => DeviceMode::Privileged,
        },
        device_domain: args.device_domain.clone(),
        gateway_ip: args.gateway_ip.clone(),
        homeassistant_ip: args.homeassistant_ip.clone(),
        timezone: args.timezone.clone(),
        // With --spo alone, the operator loads its own AppArmorProfile: no loader labels nodes.
        wait_for_loader: !args.no_wait_for_loader && (!args.spo || args.emit_loader),
        ..KubeOptions::default()
    };
    for entry in &args.device_resources {
        options.add_device_resource(entry)?;
    }
    for ip in [&args.gateway_ip, &args.homeassistant_ip]
        .into_iter()
        .flatten()
    {
        ip.parse::<std::net::IpAddr>()
            .with_context(|| format!("{ip:?} is not an IP address"))?;
    }
    Ok(options)
}

pub fn exec(args: KubeArgs, out: &mut impl Write) -> Result<ExitCode> {
    let plan_options = args.plan.options(args.data_root.get())?;
    let options = kube_options(&args, plan_options.data_root.clone())?;
    let (each, mut ok) = plan_each(&args.paths, &plan_options);
    let mut all = Vec::new();
    for planned in &each {
        let Ok(plan) = &planned.plan else {
            ok = false;
            planned.print_why();
            continue;
        };
        let generated = match &plan.apparmor_profile {
            Some(name) => {
                launch::profile_text(plan, name, planned.addon.apparmor_text.as_deref(), None)
                    .map(Some)
                    .map_err(anyhow::Error::from)
            }
            None => Ok(None),
        }
        .and_then(|text| {
            let mut m = kube::generate(plan, text.as_deref(), &options)?;
            if args.spo {
                kube::add_spo(&mut m, plan, &options)?;
            }
            Ok(m)
        });
        match generated {
            Ok(m) => all.push(m),
            Err(err) => {
                ok = false;
                eprintln!("error: {}: {err:#}", planned.addon.dir.display());
            }
        }
    }
    write_manifests(&args, &options, &all, out)?;
    Ok(status(ok))
}

fn write_manifests(
    args: &KubeArgs,
    options: &KubeOptions,
    all: &[AddonManifests],
    out: &mut impl Write,
) -> Result<()> {
    let loader = args
        .emit_loader
        .then(|| kube::loader_documents(all, &args.loader_image, options))
        .transpose()?;
    let Some(dir) = &args.out_dir else {
        let mut docs = Vec::new();
        for m in all {
            docs.extend(m.documents()?);
        }
        docs.extend(loader.into_iter().flat_map(|(_, v)| v));
        out.write_all(kube::to_yaml(&docs)?.as_bytes())?;
        let mut err = std::io::stderr().lock();
        return print_report(&mut err, all);
    };
    let mut files = BTreeMap::new();
    for m in all {
        let file = dir.join(format!("{}.yaml", kube::dns_name(&m.full_slug)));
        if let Some(first) = files.insert(file.clone(), m) {
            anyhow::bail!(
                "{} and {} would both be {}; write them in separate runs with different --repository names",
                first.full_slug,
                m.full_slug,
                file.display()
            );
        }
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    for (file, m) in &files {
        write(file, &kube::to_yaml(&m.documents()?)?)?;
    }
    if let Some((_, values)) = loader {
        write(&dir.join("profile-loader.yaml"), &kube::to_yaml(&values)?)?;
    }
    let report: Vec<serde_json::Value> = all.iter().map(report_json).collect();
    write(
        &dir.join("report.json"),
        &serde_json::to_string_pretty(&report)?,
    )?;
    print_report(out, all)
}

fn write(file: &std::path::Path, text: &str) -> Result<()> {
    launch::state::write_atomically(file, text.as_bytes(), 0o644)
        .with_context(|| format!("writing {}", file.display()))
}

fn report_json(m: &AddonManifests) -> serde_json::Value {
    serde_json::json!({
        "full_slug": m.full_slug,
        "deployment": m.deployment.metadata.name,
        "profile_configmap": m.profile.as_ref().and_then(|c| c.metadata.name.clone()),
        "pod_security": m.level,
        "gaps": m.gaps,
        "spo_loses": m.spo.as_ref().map(|(_, lost)| lost),
    })
}

/// Per add-on: the Pod Security level with the reasons, then each gap.
fn print_report(out: &mut impl Write, all: &[AddonManifests]) -> Result<()> {
    for m in all {
        writeln!(
            out,
            "{}: Pod Security level {}",
            m.full_slug,
            m.level.level.name()
        )?;
        for r in &m.level.reasons {
            writeln!(out, "  not {}: {}: {}", r.breaks.name(), r.check, r.detail)?;
        }
        for lost in m.spo.iter().flat_map(|(_, lost)| lost) {
            writeln!(out, "  --spo AppArmorProfile loses: {lost}")?;
        }
        for g in &m.gaps {
            let effect = serde_json::to_value(g.effect)?;
            writeln!(
                out,
                "  cannot express ({}) {}: {}",
                effect.as_str().unwrap_or(""),
                g.field,
                g.detail
            )?;
        }
    }
    Ok(())
}
