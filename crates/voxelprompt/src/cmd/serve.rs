//! `voxelprompt serve`: a local web app and HTTP API (docs/api.md) over one model loaded once.
//! Scans are uploaded into sessions under `--data DIR/<random id>/`; each question runs as a
//! model call on a blocking thread, one at a time, with a short queue and "busy" answers beyond
//! it; the steps of an answer in progress stream as server-sent events.
//!
//! Safety: binds to loopback by default; any other host needs `--token` (then every request
//! needs `Authorization: Bearer TOKEN`, or the cookie `/?token=TOKEN` sets); without a token,
//! requests must name a loopback host (a DNS-rebinding guard); bodies are limited to
//! `--max-upload-mb`; client file names never become paths; idle sessions are deleted.

mod api;
mod gate;
mod page;
mod sessions;
mod upload;

use anyhow::{Context, Result};
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use train::inference::AnswerOptions;

use crate::cmd::args::ModelArgs;
use crate::cmd::exit::{Exit, EXIT_BAD_INPUT};
use crate::cmd::run::LoadedModel;

/// Arguments of `serve`.
#[derive(clap::Args)]
pub struct ServeArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Address to listen on; anything but loopback requires --token.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Port (0: any free port; the address is printed on stdout).
    #[arg(long, default_value_t = 8765)]
    port: u16,
    /// Directory for the sessions' uploads and outputs (default ~/.cache/voxelprompt/serve).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Secret every request must carry as `Authorization: Bearer TOKEN`.
    #[arg(long)]
    token: Option<String>,
    /// Largest request body (all scans of one upload together), MiB.
    #[arg(long, default_value_t = 512)]
    max_upload_mb: u64,
    /// Sessions unused this long are deleted with their files.
    #[arg(long, default_value_t = 30.0)]
    session_idle_minutes: f64,
    /// Most sessions kept; a new one beyond that deletes the least recently used.
    #[arg(long, default_value_t = 64)]
    max_sessions: usize,
    /// Model calls that may wait behind the running one; more get 503 "busy".
    #[arg(long, default_value_t = 4)]
    queue: usize,
    /// Where scripts/fetch_web.sh put the viewer (default ~/.cache/voxelprompt/web).
    #[arg(long)]
    web: Option<PathBuf>,
}

/// What every handler shares.
pub(crate) struct AppState {
    /// The model, loaded once for the life of the process.
    pub loaded: &'static LoadedModel,
    /// Live sessions.
    pub sessions: sessions::Store,
    /// One model call at a time.
    pub gate: gate::Gate,
    /// Limits of each answer.
    pub options: AnswerOptions,
    /// `--token`.
    pub token: Option<String>,
    /// `--max-sessions`.
    pub max_sessions: usize,
    /// `--max-upload-mb` in bytes.
    pub max_upload_bytes: usize,
    /// Directory holding `niivue.umd.js`.
    pub web_dir: PathBuf,
}

/// Shared state as handlers receive it.
pub(crate) type Shared = Arc<AppState>;

fn cache_dir(leaf: &str) -> PathBuf {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("voxelprompt").join(leaf)
}

fn parse_host(host: &str) -> Result<IpAddr> {
    if host == "localhost" {
        return Ok(IpAddr::V4(Ipv4Addr::LOCALHOST));
    }
    host.trim_matches(|c| c == '[' || c == ']')
        .parse()
        .map_err(|_| Exit::new(EXIT_BAD_INPUT, format!("--host {host}: not an IP address")).into())
}

/// The routes of docs/api.md and the page.
pub(crate) fn router(state: Shared) -> Router {
    Router::new()
        .route("/", get(page::index))
        .route("/app.js", get(page::script))
        .route("/app.css", get(page::style))
        .route("/vendor/niivue.js", get(page::niivue))
        .route("/api/health", get(api::health))
        .route("/api/run", post(api::run))
        .route("/api/sessions", post(api::create_session))
        .route("/api/sessions/{id}", get(api::session_info))
        .route("/api/sessions/{id}/ask", post(api::ask))
        .route("/api/sessions/{id}/code", post(api::code))
        .route("/api/sessions/{id}/events", get(api::events))
        .route("/api/sessions/{id}/files/{*name}", get(api::file))
        .fallback(api::not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            api::guard,
        ))
        .layer(DefaultBodyLimit::max(state.max_upload_bytes))
        .with_state(state)
}

pub fn run(args: &ServeArgs) -> Result<()> {
    let ip = parse_host(&args.host)?;
    let token = args.token.clone().filter(|t| !t.is_empty());
    if !ip.is_loopback() && token.is_none() {
        return Err(Exit::new(
            EXIT_BAD_INPUT,
            format!(
                "--host {} is reachable from other machines: give --token SECRET (clients then \
                 send Authorization: Bearer SECRET)",
                args.host
            ),
        )
        .into());
    }
    if !args.session_idle_minutes.is_finite() || args.session_idle_minutes <= 0.0 {
        return Err(Exit::new(EXIT_BAD_INPUT, "--session-idle-minutes must be positive").into());
    }
    let data = args.data.clone().unwrap_or_else(|| cache_dir("serve"));
    std::fs::create_dir_all(&data).with_context(|| format!("creating {}", data.display()))?;
    let loaded: &'static LoadedModel = Box::leak(Box::new(args.model.load()?));
    let idle = Duration::from_secs_f64(args.session_idle_minutes * 60.0);
    let state = Arc::new(AppState {
        loaded,
        sessions: sessions::Store::new(data),
        gate: gate::Gate::new(args.queue),
        options: args.model.answer_options(),
        token,
        max_sessions: args.max_sessions,
        max_upload_bytes: (args.max_upload_mb.max(1) as usize).saturating_mul(1 << 20),
        web_dir: args.web.clone().unwrap_or_else(|| cache_dir("web")),
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let result = runtime.block_on(serve(state.clone(), SocketAddr::new(ip, args.port), idle));
    state.sessions.remove_all();
    // Model calls still running on blocking threads are abandoned, not awaited.
    runtime.shutdown_background();
    result
}

async fn serve(state: Shared, addr: SocketAddr, idle: Duration) -> Result<()> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| Exit::new(EXIT_BAD_INPUT, format!("cannot listen on {addr}: {e}")))?;
    let local = listener.local_addr()?;
    let mut stdout = std::io::stdout();
    writeln!(
        stdout,
        "voxelprompt serve: model {} loaded in {:.1} s; listening on http://{local}",
        state.loaded.manifest.model, state.loaded.load_seconds
    )?;
    stdout.flush()?;
    let sweeper = state.clone();
    tokio::spawn(async move {
        let every = (idle / 4).clamp(Duration::from_millis(200), Duration::from_secs(60));
        loop {
            tokio::time::sleep(every).await;
            let store = sweeper.clone();
            let _ = tokio::task::spawn_blocking(move || store.sessions.sweep(idle)).await;
        }
    });
    let app = router(state);
    tokio::select! {
        r = axum::serve(listener, app) => r.context("serving")?,
        _ = shutdown_signal() => eprintln!("voxelprompt serve: stopping; sessions deleted"),
    }
    Ok(())
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => return std::future::pending().await,
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
