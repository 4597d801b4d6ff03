//! `node load-profiles`: what the loader DaemonSet runs on every node (see `kube`): the
//! profiles loaded, then the node labelled with what is loaded so that pods wait for it.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};

use addon_sandbox::apparmor::Parser;
use addon_sandbox::kube::apiserver::{self, Client, Server};
use addon_sandbox::kube::{self, node, profile_label};

#[derive(Args)]
pub struct NodeArgs {
    #[command(subcommand)]
    command: NodeCommand,
}

#[derive(Subcommand)]
enum NodeCommand {
    /// Load, replace and unload AppArmor profiles so the kernel holds exactly the profiles of
    /// a folder (one file per profile, named by the profile; a mounted ConfigMap), and label
    /// the node with what is loaded (in a cluster).
    LoadProfiles(LoadArgs),
}

#[derive(Args)]
struct LoadArgs {
    /// The profile texts.
    #[arg(long, value_name = "DIR")]
    dir: PathBuf,
    /// The texts loaded so far (to replace and unload them).
    #[arg(long, value_name = "DIR", default_value = kube::LOADER_STATE_DIR)]
    state: PathBuf,
    /// One pass, then exit (status 1 if a profile failed or the node could not be labelled).
    #[arg(long)]
    once: bool,
    /// Seconds between passes.
    #[arg(long, value_name = "SECONDS", default_value = "10")]
    interval: u64,
    /// Do not touch the kernel: compile each profile into DIR/<name>.bin (removed on unload).
    #[arg(long, value_name = "DIR")]
    compile_to: Option<PathBuf>,
    /// Refuse to run (status 2) unless the node can be labelled (an API server is known).
    #[arg(long)]
    label_node: bool,
    /// This node's name [default: $NODE_NAME, the downward API's spec.nodeName].
    #[arg(long, value_name = "NAME")]
    node_name: Option<String>,
    /// The API server, https://HOST[:PORT] [default: $KUBERNETES_SERVICE_HOST and
    /// $KUBERNETES_SERVICE_PORT, as in every pod].
    #[arg(long, value_name = "URL")]
    api_server: Option<String>,
    /// The service account's token (read again for every request).
    #[arg(
        long,
        value_name = "FILE",
        default_value = "/var/run/secrets/kubernetes.io/serviceaccount/token"
    )]
    token_file: PathBuf,
    /// The CA the API server's certificate must chain to (the only one trusted).
    #[arg(
        long,
        value_name = "FILE",
        default_value = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt"
    )]
    ca_file: PathBuf,
}

/// Who labels the node, if anyone.
enum Labeller {
    /// Not in a cluster: why the labels are not set.
    Off(&'static str),
    On {
        client: Client,
        node: String,
        /// The labels set by the last successful patch (None: none yet, or it failed).
        set: Option<BTreeMap<String, String>>,
    },
}

fn labeller(args: &LoadArgs) -> Result<Labeller> {
    let server = match &args.api_server {
        Some(url) => Some(Server::parse(url)),
        None => Server::in_cluster(
            std::env::var("KUBERNETES_SERVICE_HOST").ok(),
            std::env::var("KUBERNETES_SERVICE_PORT").ok(),
        ),
    };
    let Some(server) = server else {
        if args.label_node {
            bail!(
                "--label-node: no API server (KUBERNETES_SERVICE_HOST is unset and no --api-server given)"
            );
        }
        return Ok(Labeller::Off(
            "not set: no API server (not in a cluster: KUBERNETES_SERVICE_HOST unset, no --api-server)",
        ));
    };
    let server = server?;
    let node = args
        .node_name
        .clone()
        .or_else(|| std::env::var("NODE_NAME").ok())
        .filter(|n| !n.is_empty())
        .with_context(|| {
            format!(
                "the API server is {} but this node's name is unknown: give --node-name or NODE_NAME (the downward API's spec.nodeName)",
                server.authority()
            )
        })?;
    let client = Client::new(server, &args.token_file, &args.ca_file)?;
    Ok(Labeller::On {
        client,
        node,
        set: None,
    })
}

/// The node's labels brought to `loaded` (profile → hash8): read, then one merge patch of
/// the labels that differ (none when nothing does). What the report says of it.
fn label(
    client: &Client,
    node: &str,
    loaded: &BTreeMap<String, String>,
) -> Result<(BTreeMap<String, String>, serde_json::Value), apiserver::ApiError> {
    let (wanted, clashes) = profile_label::node_labels(loaded);
    let current = client.node_labels(node)?;
    let changes = profile_label::label_changes(&current, &wanted);
    if !changes.is_empty() {
        let after = client.patch_node(node, &profile_label::merge_patch(&changes))?;
        // The API server's answer is the node as stored: it must now say what we set.
        let ours: BTreeMap<String, String> = after
            .into_iter()
            .filter(|(k, _)| k.starts_with(profile_label::PROFILE_LABEL_PREFIX))
            .collect();
        if ours != wanted {
            return Err(apiserver::ApiError::BadAnswer {
                method: "PATCH",
                path: format!("/api/v1/nodes/{node}"),
                detail: format!("the node's labels are {ours:?} after the patch, not {wanted:?}"),
            });
        }
    }
    let set: BTreeMap<&String, &Option<String>> =
        changes.iter().filter(|(_, v)| v.is_some()).collect();
    let removed: Vec<&String> = changes
        .iter()
        .filter(|(_, v)| v.is_none())
        .map(|(k, _)| k)
        .collect();
    let outcome = serde_json::json!({
        "node": node,
        "set": set,
        "removed": removed,
        "clashes": clashes,
    });
    Ok((wanted, outcome))
}

pub fn exec(args: NodeArgs, out: &mut impl Write) -> Result<ExitCode> {
    let NodeCommand::LoadProfiles(args) = args.command;
    let parser = Parser::find()?;
    let mut labeller = labeller(&args)?;
    let mut apply: Box<dyn node::Apply> = match &args.compile_to {
        Some(dir) => {
            std::fs::create_dir_all(dir)?;
            Box::new(node::CompileTo {
                dir: dir.clone(),
                parser: parser.clone(),
            })
        }
        None => Box::new(node::Kernel {
            cache: args.state.join(".cache"),
        }),
    };
    let mut first = true;
    let mut retry: BTreeSet<String> = BTreeSet::new();
    loop {
        let force = |name: &str| first || retry.contains(name);
        let report = node::sync(&args.dir, &args.state, &parser, apply.as_mut(), &force)?;
        retry = report.failed.iter().map(|(n, _)| n.clone()).collect();
        let changed = !(report.loaded.is_empty()
            && report.replaced.is_empty()
            && report.unloaded.is_empty()
            && report.failed.is_empty());
        // A label failure comes after the pass: what was loaded stays loaded.
        let (labels, label_error) = pass_labels(&mut labeller, &report.hash8);
        if first || changed || labels.is_some() {
            let mut json = serde_json::to_value(&report)?;
            json["labels"] = labels.unwrap_or_else(|| match &labeller {
                Labeller::Off(why) => (*why).into(),
                Labeller::On { .. } => "unchanged".into(),
            });
            writeln!(out, "{json}")?;
            out.flush()?;
        }
        for (name, why) in &report.failed {
            eprintln!("error: {name}: {why}");
        }
        if let Some(e) = &label_error {
            eprintln!("error: labelling the node: {e}");
        }
        if args.once {
            return Ok(super::output::status(
                report.failed.is_empty() && label_error.is_none(),
            ));
        }
        if let Some(e) = label_error.filter(|e| e.is_permanent()) {
            // Retrying cannot mend a wrong CA, token, role or node name: exit, and the
            // DaemonSet shows it; the profiles stay loaded (a restart loads them again).
            return Err(e).context("labelling the node (the profiles stay loaded)");
        }
        first = false;
        std::thread::sleep(Duration::from_secs(args.interval.max(1)));
    }
}

/// Labels the node when what is loaded differs from what was last labelled (or labelling
/// failed before). The outcome for the report (None: nothing to do), and the error.
fn pass_labels(
    labeller: &mut Labeller,
    loaded: &BTreeMap<String, String>,
) -> (Option<serde_json::Value>, Option<apiserver::ApiError>) {
    let Labeller::On { client, node, set } = labeller else {
        return (None, None);
    };
    let wanted = profile_label::node_labels(loaded).0;
    if set.as_ref() == Some(&wanted) {
        return (None, None);
    }
    match label(client, node, loaded) {
        Ok((labels, outcome)) => {
            *set = Some(labels);
            (Some(outcome), None)
        }
        Err(e) => {
            *set = None;
            let outcome = serde_json::json!({ "node": node, "error": e.to_string() });
            (Some(outcome), Some(e))
        }
    }
}
