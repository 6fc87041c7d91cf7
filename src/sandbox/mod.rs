//! `replicate sandbox`: an in-memory emulation of the Airbyte public API (SPEC §7).
//!
//! It accepts what real Airbyte accepts and refuses what it refuses, with the same error bodies,
//! so plans can be tried and the tool tested with no Airbyte at hand. The pieces:
//! [`seed`] (the starting state, YAML or code) → [`store`] (state and indices) ←
//! [`routes`] (HTTP handlers) using [`validate`] (create and patch rules), [`auth`] (tokens),
//! [`stats`] (the accounting layer and `/_sandbox/stats`) and [`problem`] (error bodies).
//! It shares only [`crate::wire`], [`crate::cron`], [`crate::yaml`] and [`crate::secret`] with the
//! rest of the crate, never the planner.

mod auth;
mod catalog;
mod problem;
mod routes;
pub mod seed;
mod stats;
mod store;
mod validate;

pub use catalog::{DestinationSyncMode, SourceSyncMode};
pub use seed::{Seed, SeedError};

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Flags of `replicate sandbox`.
#[derive(clap::Args, Debug, Clone)]
pub struct SandboxArgs {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8006")]
    pub listen: SocketAddr,
    /// A YAML seed (workspaces, destinations, catalogs, sources, connections, credentials);
    /// without it, the default seed.
    #[arg(long, value_name = "FILE")]
    pub seed: Option<PathBuf>,
    /// Add N sources `bulk-000001`… with the template source's catalog and type.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub sources: usize,
    /// Added to every response, e.g. `20ms`, `1.5s`, `100us`.
    #[arg(long, value_name = "DURATION", default_value = "0ms", value_parser = crate::duration::parse)]
    pub latency: Duration,
}

/// How to run a sandbox: the validated form of [`SandboxArgs`], or built in code by tests.
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    pub listen: SocketAddr,
    pub seed: Seed,
    /// `--sources N`.
    pub extra_sources: usize,
    /// `--latency`.
    pub latency: Duration,
    /// Lifetime of tokens from `/applications/token` (`expires_in`); 900 s like Airbyte's
    /// default. The future `--token-ttl` sets it.
    pub token_ttl: Duration,
}

/// The most sources `--sources` may add (20,000 is the benchmark's size).
const MAX_EXTRA_SOURCES: usize = 1_000_000;

impl SandboxConfig {
    pub fn from_args(args: &SandboxArgs) -> Result<Self, SandboxError> {
        let seed = match &args.seed {
            Some(path) => {
                let bytes = std::fs::read(path).map_err(|source| SandboxError::ReadSeed {
                    path: path.clone(),
                    source: Arc::new(source),
                })?;
                Seed::from_yaml(path, &bytes)?
            }
            None => Seed::default_seed(),
        };
        if args.sources > MAX_EXTRA_SOURCES {
            return Err(SandboxError::TooManySources(args.sources));
        }
        Ok(Self {
            listen: args.listen,
            seed,
            extra_sources: args.sources,
            latency: args.latency,
            token_ttl: DEFAULT_TOKEN_TTL,
        })
    }

    /// The default seed on a free loopback port, no latency: what tests start from.
    pub fn default_on_free_port() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            seed: Seed::default_seed(),
            extra_sources: 0,
            latency: Duration::ZERO,
            token_ttl: DEFAULT_TOKEN_TTL,
        }
    }
}

const DEFAULT_TOKEN_TTL: Duration = Duration::from_secs(900);

/// Why a sandbox could not start.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SandboxError {
    #[error("cannot read the seed {}: {source}", path.display())]
    ReadSeed {
        path: PathBuf,
        source: Arc<std::io::Error>,
    },
    #[error("invalid seed: {0}")]
    Seed(#[from] SeedError),
    #[error("--sources {0} is too many (at most {MAX_EXTRA_SOURCES})")]
    TooManySources(usize),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: Arc<std::io::Error>,
    },
}

/// A running sandbox, serving on a spawned task until [`Sandbox::shutdown`] (or until dropped,
/// which stops it without waiting).
#[derive(Debug)]
pub struct Sandbox {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Sandbox {
    /// Builds the state from the seed, binds, and serves on a spawned task. Connections are
    /// accepted as soon as this returns.
    pub async fn start(config: SandboxConfig) -> Result<Sandbox, SandboxError> {
        let store = store::Store::from_seed(&config.seed, config.extra_sources)?;
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|source| SandboxError::Bind {
                addr: config.listen,
                source: Arc::new(source),
            })?;
        let addr = listener.local_addr().map_err(|source| SandboxError::Bind {
            addr: config.listen,
            source: Arc::new(source),
        })?;
        let app = Arc::new(routes::App {
            store: RwLock::new(store),
            auth: auth::Auth::new(&config.seed, config.token_ttl),
            stats: stats::Stats::default(),
            latency: config.latency,
            addr,
        });
        let (stop, stopped) = oneshot::channel::<()>();
        let server = axum::serve(listener, routes::router(app)).with_graceful_shutdown(async {
            let _ = stopped.await;
        });
        let task = tokio::spawn(async move {
            if let Err(e) = server.await {
                eprintln!("sandbox: server error: {e}");
            }
        });
        Ok(Sandbox {
            addr,
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// The API base URL, e.g. `http://127.0.0.1:8006/v1`.
    pub fn url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting, lets requests in flight finish (at most 5 s), and returns.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(mut task) = self.task.take() {
            if tokio::time::timeout(Duration::from_secs(5), &mut task)
                .await
                .is_err()
            {
                task.abort();
            }
        }
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

/// The `replicate sandbox` command: start, announce, serve until Ctrl-C, stop cleanly.
pub async fn run(args: SandboxArgs) -> anyhow::Result<()> {
    let config = SandboxConfig::from_args(&args)?;
    let seed = config.seed.clone();
    let sandbox = Sandbox::start(config).await?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "listening on {}", sandbox.url())?;
        out.flush()?;
        // Demo values from the seed, printed on purpose so the quick start can copy them.
        for app in &seed.applications {
            writeln!(out, "client id:     {}", app.client_id)?;
            writeln!(out, "client secret: {}", app.client_secret)?;
        }
        for token in &seed.tokens {
            writeln!(out, "token:         {token}")?;
        }
        writeln!(
            out,
            "stats:         http://{}/_sandbox/stats",
            sandbox.addr()
        )?;
        out.flush()?;
    }
    if seed.applications.is_empty() && seed.tokens.is_empty() {
        eprintln!(
            "sandbox: the seed has no applications and no tokens: every API call will be 401"
        );
    }
    tokio::signal::ctrl_c().await?;
    eprintln!("sandbox: stopping");
    sandbox.shutdown().await;
    Ok(())
}
