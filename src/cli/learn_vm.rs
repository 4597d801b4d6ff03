//! `learn --vm DIR`: the same learning run in the AppArmor VM, for a host whose kernel does
//! not enforce AppArmor. Planned and its options validated here first (a clear error before
//! anything boots); the image saved from this host's engine; `learn` run in the VM with the
//! same flags; its kernel records judged here, as `--from-log` judges a saved log.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;

use addon_sandbox::plan::PolicyMode;
use addon_sandbox::vm;

use super::engine::runtime;
use super::learn::{LearnArgs, RunSummary, as_run_args};
use super::run::{self, Planned};

/// The records and what the run in the VM did; or the exit status after saying why not.
pub(super) fn in_vm(
    args: &LearnArgs,
    root_dir: &Path,
) -> Result<Result<(Vec<String>, RunSummary), ExitCode>> {
    if args.data_root.get().is_some() {
        bail!("--vm learns with scratch folders inside the VM: --data-root has no place there");
    }
    let root = vm::EngineRoot::at(root_dir)?;
    let image = args.image.as_deref().context("--vm needs --image")?;
    let Some(Planned {
        options,
        addon_options,
        ..
    }) = run::planned(&as_run_args(args))?
    else {
        return Ok(Err(ExitCode::from(1)));
    };
    if options.policy != PolicyMode::Strict {
        bail!("learn reads what the generated profile would refuse: use the strict policy");
    }
    let folder = if args.path.is_dir() {
        args.path.clone()
    } else {
        args.path
            .parent()
            .map(Path::to_path_buf)
            .context("the add-on's folder")?
    };
    let work = tempfile::tempdir()?;
    let tar = work.path().join("image.tar");
    eprintln!("learn --vm: saving {image} from this host's engine");
    save_image(args, image, &tar)?;
    let seconds = if args.until_exit { 3600 } else { args.seconds };
    eprintln!(
        "learn --vm: booting the AppArmor VM ({}) and learning there",
        root_dir.display()
    );
    let report = vm::learn_in_vm(&vm::LearnVm {
        root: &root,
        addon_dir: &folder,
        image_tar: &tar,
        args: inner_args(args, image, &addon_options),
        // The boot and the image's load under emulation, the add-on's start, the exercises.
        deadline: Duration::from_secs(900 + seconds),
        console_log: None,
    })?;
    for m in &report.messages {
        eprintln!("vm: {m}");
    }
    if report.status != Some(0) {
        eprintln!(
            "error: learn in the VM ended with {} after {:.0} s",
            report.status.map_or("no status".into(), |s| s.to_string()),
            report.elapsed.as_secs_f64()
        );
        return Ok(Err(ExitCode::from(
            report
                .status
                .and_then(|s| u8::try_from(s).ok())
                .unwrap_or(1),
        )));
    }
    let reading: serde_json::Value =
        serde_json::from_str(&report.reading).context("learn's reading in the VM")?;
    let summary = RunSummary {
        container: reading["container"].as_str().unwrap_or_default().to_owned(),
        exercises: serde_json::from_value(reading["exercises"].clone()).unwrap_or_default(),
    };
    Ok(Ok((report.records, summary)))
}

/// `learn`'s flags in the VM: the image by name, the options as validated here (a file or a
/// secret of this host means nothing there), the plan flags, the run's own.
fn inner_args(args: &LearnArgs, image: &str, options: &serde_json::Value) -> Vec<String> {
    let mut out = vec![
        "--image".to_owned(),
        image.to_owned(),
        "--options".to_owned(),
        options.to_string(),
    ];
    out.extend(args.plan.to_args());
    if args.until_exit {
        out.push("--until-exit".into());
    } else {
        out.extend(["--for".into(), args.seconds.to_string()]);
    }
    for e in &args.exercise {
        out.extend(["--exercise".into(), e.clone()]);
    }
    out.extend(["--widen".into(), args.widen.join(",")]);
    if let Some(a) = &args.audio_server {
        out.extend(["--audio-server".into(), a.clone()]);
    }
    out
}

/// `docker save` of `image` through this host's engine, into `tar`.
fn save_image(args: &LearnArgs, image: &str, tar: &Path) -> Result<()> {
    let rt = runtime()?;
    let saved = rt.block_on(async {
        let launcher = args.engine.launcher().await?;
        let mut stream = launcher.docker().export_image(image);
        let mut file = tokio::fs::File::create(tar).await?;
        while let Some(chunk) = stream.next().await {
            file.write_all(&chunk.with_context(|| format!("saving {image}"))?)
                .await?;
        }
        file.flush().await?;
        anyhow::Ok(())
    });
    rt.shutdown_background();
    saved
}
