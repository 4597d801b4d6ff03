//! `serve`: the Supervisor API gateway (roles, `/auth`) and the ingress proxy on one listener.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};

use addon_sandbox::gateway;
use addon_sandbox::gateway::log::{LogFormat, LogLevel};

use super::flags::state_dir_or_default;

#[derive(Args)]
pub struct ServeArgs {
    /// Address to listen on; port 0 takes a free port (the bound address is printed).
    #[arg(long, default_value = "127.0.0.1:8099")]
    listen: std::net::SocketAddr,
    /// Where allowed API requests go, e.g. http://172.30.32.2:80.
    #[arg(long, value_name = "URL")]
    upstream: String,
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
    let config = gateway::GatewayConfig {
        upstream: args.upstream,
        upstream_token: read_secret(args.upstream_token_file)?,
        core_token: read_secret(args.core_token_file)?,
        state_dir: state_dir_or_default(args.state_dir.as_deref())?,
        auth_backend: args.auth_backend,
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
    serve(args.listen, config, args.threads)
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

fn serve(
    listen: std::net::SocketAddr,
    config: gateway::GatewayConfig,
    threads: usize,
) -> Result<ExitCode> {
    let gateway = std::sync::Arc::new(gateway::Gateway::new(config)?);
    let runtime = if threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()?
    };
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("listening on {listen}"))?;
        let bound = listener.local_addr()?;
        println!("{}", serde_json::json!({"listen": bound.to_string()}));
        std::io::stdout().flush()?;
        gateway.serve(listener, shutdown_signal()).await?;
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
