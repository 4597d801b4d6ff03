//! The command line: one file per command (as cargo keeps `commands/<name>.rs`), the flags
//! several commands share in `flags`, what the analysis commands share in `output`, what the
//! running commands share in `engine`. The only place with `anyhow`.

mod check;
mod compare;
mod completions;
mod engine;
mod flags;
mod kube;
mod learn;
mod learn_vm;
mod lint;
mod logs;
mod man;
mod node;
mod options;
mod output;
mod plan;
mod preview;
mod profile;
mod ps;
mod rate;
mod run;
mod serve;
mod stop;
mod trust;

use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};

use addon_sandbox::native;

#[derive(Parser)]
#[command(
    name = "addon-sandbox",
    version,
    about = "Least-privilege sandboxing for Home Assistant add-ons"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Validate add-on folders (or repositories of them) exactly as the Supervisor does.
    #[command(after_help = EXAMPLES_CHECK)]
    Check(check::CheckArgs),
    /// Check plus the secure add-on practices: every finding with its fix and the rating
    /// change the fix brings (human, JSON, SARIF or GitHub Actions output).
    #[command(after_help = EXAMPLES_LINT)]
    Lint(lint::LintArgs),
    /// The Supervisor's security rating (1-8) and the factors that moved it.
    #[command(after_help = EXAMPLES_RATE)]
    Rate(rate::RateArgs),
    /// The sandbox plan: granted and withheld rights, mounts, capabilities, namespaces.
    #[command(after_help = EXAMPLES_PLAN)]
    Plan(plan::PlanArgs),
    /// The generated AppArmor profile of an add-on (least privilege, from its sandbox plan).
    #[command(after_help = EXAMPLES_PROFILE)]
    Profile(profile::ProfileArgs),
    /// Validate an add-on's options as the Supervisor does and print options.json.
    #[command(after_help = EXAMPLES_OPTIONS)]
    Options(options::OptionsArgs),
    /// Validate, plan, load the profile, create and start the container, attest it.
    #[command(after_help = EXAMPLES_RUN)]
    Run(run::RunArgs),
    /// Run an add-on with its generated profile in complain mode, exercise it, and tell which
    /// config keys (or operator grants) the accesses its enforced profile would refuse need.
    #[command(after_help = EXAMPLES_LEARN)]
    Learn(learn::LearnArgs),
    /// (internal) The native backend's sandbox setup; reads its spec on standard input.
    #[command(name = "__native-init", hide = true)]
    NativeInit,
    /// Stop a started add-on (its container stays, so `logs` still works).
    #[command(after_help = EXAMPLES_STOP)]
    Stop(stop::SlugArgs),
    /// Remove a started add-on: container, loaded profile, token. Its data stays.
    #[command(after_help = EXAMPLES_RM)]
    Rm(stop::SlugArgs),
    /// The add-ons started by addon-sandbox, with their state and confinement.
    #[command(after_help = EXAMPLES_PS)]
    Ps(ps::PsArgs),
    /// The output of a started add-on.
    #[command(after_help = EXAMPLES_LOGS)]
    Logs(logs::LogsArgs),
    /// The Supervisor API gateway (roles, `/auth`) and the ingress proxy, on one listener.
    /// Prints {"listen": "ADDR"} once it accepts connections; runs until SIGINT or SIGTERM.
    #[command(after_help = EXAMPLES_SERVE)]
    Serve(serve::ServeArgs),
    /// Boot a real AppArmor kernel (qemu) with the add-on's generated profile and show what it
    /// is denied: the standard attacks and needs, plus your own probes.
    #[command(after_help = EXAMPLES_PREVIEW)]
    Preview(preview::PreviewArgs),
    /// Compare the generated profile with the add-on's own apparmor.txt: what each allows
    /// that the other does not, and the attacker probes each lets through.
    #[command(after_help = EXAMPLES_COMPARE)]
    Compare(compare::CompareArgs),
    /// The plan as Kubernetes manifests: the exact profile in a ConfigMap, a Deployment per
    /// add-on, the loader DaemonSet; the Pod Security level and what cannot be expressed.
    #[command(after_help = EXAMPLES_KUBE)]
    Kube(kube::KubeArgs),
    /// What runs on a Kubernetes node: `node load-profiles` (the loader DaemonSet's command).
    #[command(after_help = EXAMPLES_NODE)]
    Node(node::NodeArgs),
    /// Image trust: `trust fetch IMAGE` stores an image's manifests and signatures in the
    /// trust cache (online); `trust verify IMAGE` is the verdict `run` reaches from it.
    #[command(after_help = EXAMPLES_TRUST)]
    Trust(trust::TrustArgs),
    /// Shell completions for bash, zsh, fish, elvish or PowerShell, on standard output.
    #[command(after_help = EXAMPLES_COMPLETIONS)]
    Completions(completions::CompletionsArgs),
    /// The manual pages (roff): the main page on standard output, or one page per command
    /// into a folder.
    #[command(after_help = EXAMPLES_MAN)]
    Man(man::ManArgs),
}

const EXAMPLES_CHECK: &str = "Examples:\n  addon-sandbox check examples/mqtt-bridge\n  addon-sandbox check --json ../my-addons    # every add-on of a repository";
const EXAMPLES_LINT: &str = "Examples:\n  addon-sandbox lint examples/network-monitor\n  addon-sandbox lint --format sarif ../my-addons > lint.sarif\n  addon-sandbox lint --format github --fail-on warning .";
const EXAMPLES_RATE: &str = "Examples:\n  addon-sandbox rate examples/network-monitor\n  addon-sandbox rate --json ../my-addons";
const EXAMPLES_PLAN: &str = "Examples:\n  addon-sandbox plan examples/media-server\n  addon-sandbox plan --json --policy supervisor examples/media-server\n  addon-sandbox plan --grant host_network --data-root /srv/ha examples/network-monitor";
const EXAMPLES_PROFILE: &str = "Examples:\n  addon-sandbox profile --explain examples/mqtt-bridge\n  addon-sandbox profile -o mqtt.apparmor examples/mqtt-bridge\n  addon-sandbox profile --out profiles/ ../my-addons";
const EXAMPLES_RUN: &str = "Examples:\n  addon-sandbox run examples/mqtt-bridge --image busybox --command sleep 600\n  addon-sandbox run --json --allow-unconfined examples/mqtt-bridge   # a host without AppArmor\n  addon-sandbox run --backend native --rootfs /srv/rootfs examples/mqtt-bridge --command /bin/sh";
const EXAMPLES_LEARN: &str = "Examples:\n  addon-sandbox learn ../my-addons/ssh --for 60 --exercise 'ssh -p 2222 root@127.0.0.1 touch /share/x'\n  addon-sandbox learn ../my-addons/ssh --from-log /var/log/audit/audit.log --json";
const EXAMPLES_OPTIONS: &str = "Examples:\n  addon-sandbox options examples/mqtt-bridge\n  addon-sandbox options examples/mqtt-bridge --options '{\"port\": 1884}' --secrets /config/secrets.yaml\n  addon-sandbox options --as-given --json --options my-options.json examples/mqtt-bridge";
const EXAMPLES_STOP: &str = "Examples:\n  addon-sandbox stop local_mqtt_bridge";
const EXAMPLES_RM: &str = "Examples:\n  addon-sandbox rm local_mqtt_bridge";
const EXAMPLES_PS: &str = "Examples:\n  addon-sandbox ps\n  addon-sandbox ps --json";
const EXAMPLES_LOGS: &str =
    "Examples:\n  addon-sandbox logs local_mqtt_bridge\n  addon-sandbox logs -f mqtt_bridge";
const EXAMPLES_SERVE: &str = "Examples:\n  addon-sandbox serve --upstream http://172.30.32.2:80 --core-token-file /run/ha-token\n  addon-sandbox serve --listen 127.0.0.1:0 --upstream http://127.0.0.1:8123";
const EXAMPLES_PREVIEW: &str = "Examples:\n  addon-sandbox preview examples/mqtt-bridge\n  addon-sandbox preview examples/mqtt-bridge --probe \"write /share/notes.txt\"";
const EXAMPLES_COMPARE: &str = "Examples:\n  addon-sandbox compare ../shared/corpus/official/ssh\n  addon-sandbox compare --json --attacks-only ../my-addons";
const EXAMPLES_KUBE: &str = "Examples:\n  addon-sandbox kube --gateway-ip 10.96.0.10 ../shared/corpus/official/mosquitto\n  addon-sandbox kube --emit-loader -o manifests/ ../my-addons\n  addon-sandbox kube --storage pvc --claim ha-data --devices privileged --policy supervisor ../my-addons";
const EXAMPLES_NODE: &str = "Examples:\n  addon-sandbox node load-profiles --dir /profiles\n  addon-sandbox node load-profiles --dir profiles/ --state /tmp/loaded --compile-to /tmp/bin --once";
const EXAMPLES_TRUST: &str = "Examples:\n  addon-sandbox trust fetch ghcr.io/home-assistant/amd64-addon-ssh:9.14.0\n  addon-sandbox trust verify --trust-policy /etc/addon-sandbox/trust-policy.yaml ghcr.io/home-assistant/amd64-addon-ssh:9.14.0";
const EXAMPLES_COMPLETIONS: &str = "Examples:\n  addon-sandbox completions bash > /etc/bash_completion.d/addon-sandbox\n  addon-sandbox completions zsh > ~/.zfunc/_addon-sandbox";
const EXAMPLES_MAN: &str = "Examples:\n  addon-sandbox man | man -l -\n  addon-sandbox man --out /usr/local/share/man/man1";

pub fn dispatch(cli: Cli) -> Result<ExitCode> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match cli.command {
        Command::Check(args) => check::exec(args, &mut out),
        Command::Lint(args) => lint::exec(args, &mut out),
        Command::Rate(args) => rate::exec(args, &mut out),
        Command::Plan(args) => plan::exec(args, &mut out),
        Command::Profile(args) => profile::exec(args, &mut out),
        Command::Options(args) => options::exec(args, &mut out),
        Command::Run(args) => run::exec(args, &mut out),
        Command::Trust(args) => trust::exec(args, &mut out),
        Command::Learn(args) => learn::exec(args, &mut out),
        Command::NativeInit => Ok(ExitCode::from(native::init::main())),
        Command::Stop(args) => stop::stop(args, &mut out),
        Command::Rm(args) => stop::rm(args, &mut out),
        Command::Ps(args) => ps::exec(args),
        Command::Logs(args) => logs::exec(args, &mut out),
        Command::Serve(args) => serve::exec(args),
        Command::Preview(args) => preview::exec(args, &mut out),
        Command::Compare(args) => compare::exec(args, &mut out),
        Command::Kube(args) => kube::exec(args, &mut out),
        Command::Node(args) => node::exec(args, &mut out),
        Command::Completions(args) => completions::exec(args, &mut out),
        Command::Man(args) => man::exec(args, &mut out),
    }
}
