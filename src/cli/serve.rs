//! `serve`: the Supervisor API gateway (roles, `/auth`) and the ingress proxy. Without
//! `--upstream` it is the whole standalone runtime: the add-ons' network (the stand-in for the
//! Supervisor's `hassio` bridge), a second listener on its gateway address that add-ons reach
//! as `http://supervisor`, and the add-on's own endpoints answered from the state directory.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};

use addon_sandbox::gateway;
use addon_sandbox::gateway::log::{LogFormat, LogLevel};
use addon_sandbox::launch::network::{self, GatewayRecord};

use super::flags::state_dir_or_default;

#[derive(Args)]
pub struct ServeArgs {
    /// Address to listen on; port 0 takes a free port (the bound address is printed).
    #[arg(long, default_value = "127.0.0.1:8099")]
    listen: std::net::SocketAddr,
    /// Where allowed API requests go, e.g. http://172.30.32.2:80. Without it the gateway is
    /// standalone: it answers the add-on's own endpoints and the services registry itself.
    #[arg(long, value_name = "URL")]
    upstream: Option<String>,
    /// Home Assistant's URL on a standalone host (e.g. http://172.30.232.1:8123): answers
    /// /core/info and names it `homeassistant` in the add-ons' hosts.
    #[arg(long, value_name = "URL")]
    homeassistant: Option<String>,
    /// Standalone: the add-ons' network (a bridge like the Supervisor's `hassio`), made when
    /// absent.
    #[arg(long, value_name = "NAME", default_value = network::DEFAULT_NETWORK)]
    network_name: String,
    /// Standalone: the network's subnet; must not overlap another network. The gateway listens
    /// on its first address.
    #[arg(long, value_name = "CIDR", default_value = network::DEFAULT_SUBNET)]
    subnet: String,
    /// Standalone: the port add-ons reach the gateway at on the network (bashio's
    /// http://supervisor is port 80).
    #[arg(long, value_name = "PORT", default_value = "80")]
    supervisor_port: u16,
    /// Standalone without the network: only --listen (add-ons in containers cannot reach it).
    #[arg(long)]
    no_network: bool,
    /// File holding the gateway's own upstream credential (sent as a Bearer token in
    /// place of the add-on's token, which is never forwarded).
    #[arg(long, value_name = "FILE")]
    upstream_token_file: Option<PathBuf>,
    /// File holding Home Assistant's token: unrestricted, and the only caller that may
    /// create ingress sessions.
    #[arg(long, value_name = "FILE")]
    core_token_file: Option<PathBuf>,
    /// Credential backend for `/auth`: an http URL with Home Assistant's hassio_auth
    /// contract (POST {username, password, addon}; 200 = match). Without it `/auth` is 503.
    #[arg(long, value_name = "URL")]
    auth_backend: Option<String>,
    /// Seconds an ingress session lives, fixed when it is created.
    #[arg(long, value_name = "SECONDS", default_value = "900")]
    session_ttl: u64,
    /// Tokens and records of started add-ons [default: as for run].
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
    /// Worker threads; 1 keeps a request and its upstream call on one core, which is
    /// fastest unless one core cannot carry the load.
    #[arg(long, value_name = "N", default_value = "1")]
    threads: usize,
    /// Which requests are logged to standard error: `denials` (refused or failed: caller,
    /// method, canonical path, role, reason), `all` (forwarded and answered ones too), `none`.
    /// Tokens, cookies and credentials are never logged.
    #[arg(long, value_enum, value_name = "WHICH", default_value = "denials")]
    log: LogWhich,
    /// Log lines as `text` (key=value words) or `json` (one object per line).
    #[arg(long, value_enum, value_name = "FORMAT", default_value = "text")]
    log_format: LogFormatArg,
    /// Connections one client address may hold at once; more are answered 503 and closed.
    /// (Home Assistant proxies every browser's ingress from one address.)
    #[arg(long, value_name = "N", default_value = "256", value_parser = clap::value_parser!(u32).range(1..))]
    max_connections_per_peer: u32,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogWhich {
    Denials,
    All,
    None,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormatArg {
    Text,
    Json,
}

pub fn exec(args: ServeArgs) -> Result<ExitCode> {
    let state_dir = state_dir_or_default(args.state_dir.as_deref())?;
    let mut config = gateway::GatewayConfig {
        upstream: args.upstream.clone(),
        homeassistant: args.homeassistant.clone(),
        network: None,
        upstream_token: read_secret(args.upstream_token_file.clone())?,
        core_token: read_secret(args.core_token_file.clone())?,
        state_dir: state_dir.clone(),
        auth_backend: args.auth_backend.clone(),
        session_ttl: std::time::Duration::from_secs(args.session_ttl.max(1)),
        auth_limits: gateway::limit::AuthLimits::default(),
        log_level: match args.log {
            LogWhich::Denials => LogLevel::Denials,
            LogWhich::All => LogLevel::All,
            LogWhich::None => LogLevel::None,
        },
        log_format: match args.log_format {
            LogFormatArg::Text => LogFormat::Text,
            LogFormatArg::Json => LogFormat::Json,
        },
        conn_limits: gateway::conn::ConnLimits {
            per_peer: args.max_connections_per_peer as usize,
            ..Default::default()
        },
    };
    config.state_dir = state_dir;
    let runtime = build_runtime(args.threads)?;
    let network = if args.upstream.is_none() && !args.no_network {
        let (made, facts) = runtime.block_on(make_network(&args, &config.state_dir))?;
        config.network = Some(facts);
        Some(made)
    } else {
        None
    };
    let listeners = Listeners {
        local: args.listen,
        network,
    };
    serve(&runtime, listeners, config)
}

/// Where the gateway listens: `--listen`, and on a standalone host the network's gateway.
struct Listeners {
    local: std::net::SocketAddr,
    network: Option<(String, std::net::SocketAddr, Option<String>)>,
}

/// The add-ons' network (made when absent) and the address on it that add-ons reach as
/// `supervisor`; with the address `homeassistant` names, and what `/network/info` says of it.
async fn make_network(
    args: &ServeArgs,
    state_dir: &std::path::Path,
) -> Result<(
    (String, std::net::SocketAddr, Option<String>),
    gateway::network::AddonNetwork,
)> {
    let subnet = network::Subnet::parse(&args.subnet)?;
    let launcher =
        addon_sandbox::launch::Launcher::connect(state_dir, std::time::Duration::from_secs(30))
            .await?;
    let gateway = launcher
        .ensure_network(&args.network_name, subnet)
        .await
        .context("the add-ons' network (or --no-network)")?;
    let core = match &args.homeassistant {
        None => None,
        Some(url) => Some(core_address(url, gateway)?),
    };
    let addr = std::net::SocketAddr::from((gateway, args.supervisor_port));
    // Only a host-network add-on sees the bridge; without it, it is told of no interface.
    let bridge = launcher.bridge_interface(&args.network_name).await.ok();
    let facts = gateway::network::AddonNetwork {
        name: args.network_name.clone(),
        base: subnet.base,
        prefix: subnet.len,
        gateway,
        bridge,
    };
    Ok(((args.network_name.clone(), addr, core), facts))
}

/// The address `homeassistant` names: the URL's own IP, or the network's gateway when Home
/// Assistant runs on this host (a loopback address or a name), as the Supervisor's Core does.
fn core_address(url: &str, gateway: std::net::Ipv4Addr) -> Result<String> {
    let uri: http::Uri = url
        .parse()
        .with_context(|| format!("--homeassistant {url:?}"))?;
    let host = uri
        .host()
        .context("--homeassistant needs http://host:port")?;
    Ok(
        match host.trim_matches(['[', ']']).parse::<std::net::IpAddr>() {
            Ok(ip) if !ip.is_loopback() => ip.to_string(),
            _ => gateway.to_string(),
        },
    )
}

/// A credential file's text, trimmed.
fn read_secret(file: Option<PathBuf>) -> Result<Option<String>> {
    file.map(|f| {
        std::fs::read_to_string(&f)
            .map(|t| t.trim().to_owned())
            .with_context(|| format!("reading {}", f.display()))
    })
    .transpose()
}

fn build_runtime(threads: usize) -> Result<tokio::runtime::Runtime> {
    Ok(if threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()?
    })
}

async fn bind(addr: std::net::SocketAddr) -> Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("listening on {addr}"))
}

fn serve(
    runtime: &tokio::runtime::Runtime,
    listeners: Listeners,
    config: gateway::GatewayConfig,
) -> Result<ExitCode> {
    let state_dir = config.state_dir.clone();
    let gateway = std::sync::Arc::new(gateway::Gateway::new(config)?);
    runtime.block_on(async move {
        let local = bind(listeners.local).await?;
        let mut said = serde_json::json!({"listen": local.local_addr()?.to_string()});
        let second = match &listeners.network {
            Some((name, addr, core)) => {
                let listener = bind(*addr).await?;
                said["supervisor"] = listener.local_addr()?.to_string().into();
                said["network"] = name.clone().into();
                GatewayRecord {
                    pid: std::process::id(),
                    network: Some(name.clone()),
                    address: Some(addr.ip().to_string()),
                    homeassistant: core.clone(),
                }
                .write(&state_dir)
                .context("writing gateway.json in the state directory")?;
                Some(listener)
            }
            None => None,
        };
        println!("{said}");
        std::io::stdout().flush()?;
        let result = match second {
            // Each loop runs until the signal; the select ends both at once.
            Some(second) => tokio::select! {
                r = gateway.clone().serve(local, std::future::pending()) => r,
                r = gateway.clone().serve(second, std::future::pending()) => r,
                _ = shutdown_signal() => Ok(()),
            },
            None => gateway.serve(local, shutdown_signal()).await,
        };
        GatewayRecord::remove(&state_dir, std::process::id());
        result?;
        Ok(ExitCode::SUCCESS)
    })
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
