//! `replicate sandbox`: an in-memory emulation of the Airbyte public API (SPEC §7).
//!
//! It accepts what real Airbyte accepts and refuses what it refuses, with the same error bodies,
//! so plans can be tried and the tool tested with no Airbyte at hand. The pieces:
//! [`seed`] (the starting state, YAML or code) → [`seeding`] (builds the store from it) →
//! [`store`] (state and indices, paged through [`positions`]) ← [`routes`] (HTTP handlers)
//! using [`request`] (parsing), [`validate`] (create and patch rules), [`tags`] (tag rules),
//! [`jobs`] (sync and reset jobs, on the clock), [`auth`] (tokens),
//! [`stats`] (the accounting layer and `/_sandbox/stats`), [`faults`] (the fault knobs, for
//! reliability tests; [`churn`] applies `--churn-rate` to the store) and [`problem`] (error
//! bodies). Each layer holds its own state, so no
//! module below [`routes`] imports it.
//! It shares only [`crate::wire`], [`crate::cron`], [`crate::yaml`] and [`crate::secret`] with the
//! rest of the crate, never the planner.

mod auth;
mod catalog;
mod churn;
mod delay;
mod faults;
mod jobs;
mod listen;
mod positions;
mod problem;
mod request;
mod routes;
pub mod seed;
mod seeding;
mod stats;
mod store;
mod tags;
mod validate;

pub use catalog::{DestinationSyncMode, SourceSyncMode};
pub use listen::ListenAddr;
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
    /// Address to listen on, HOST:PORT (an IP address or a host name); port 0 picks a free port.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8006")]
    pub listen: ListenAddr,
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
    /// Fault: answer this share of API requests (0 to 1) with 500 or 503, without effect.
    #[arg(long, value_name = "F", default_value_t = 0.0, value_parser = parse_rate)]
    pub fail_rate: f64,
    /// Fault: lose the answer to this share (0 to 1) of successful writes of connections
    /// (create, patch), tags (create, patch, delete) and job starts, after they took effect: the
    /// connection is closed, or 504 is answered.
    #[arg(long, value_name = "F", default_value_t = 0.0, value_parser = parse_rate)]
    pub lost_response_rate: f64,
    /// Fault: at most N requests per second per bearer token (bursts of N); above it, 429.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub rate_limit: Option<u32>,
    /// Lifetime of tokens from `/applications/token`, e.g. `15m`, `30s`.
    #[arg(long, value_name = "DURATION", default_value = "15m", value_parser = crate::duration::parse)]
    pub token_ttl: Duration,
    /// Fault: every `POST /connections` takes this much longer, and writes at the end.
    #[arg(long, value_name = "DURATION", default_value = "0ms", value_parser = crate::duration::parse)]
    pub create_delay: Duration,
    /// Fault: on this share (0 to 1) of `GET /connections` pages, delete an unrelated connection
    /// the listing already passed, or create one, so that offset paging shifts.
    #[arg(long, value_name = "F", default_value_t = 0.0, value_parser = parse_rate)]
    pub churn_rate: f64,
    /// How long a job started with `POST /jobs` takes: pending for its first tenth, then
    /// running, then succeeded (or failed, see `--job-fail-rate`).
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = crate::duration::parse)]
    pub job_duration: Duration,
    /// Fault: this share (0 to 1) of started jobs ends `failed` instead of `succeeded`.
    #[arg(long, value_name = "F", default_value_t = 0.0, value_parser = parse_rate)]
    pub job_fail_rate: f64,
    /// Seed of the fault dice, to repeat a run's faults; without it, a random seed (printed).
    #[arg(long, value_name = "N")]
    pub fault_seed: Option<u64>,
    /// Refuse a create or patch whose streams would write to the destination tables of another
    /// active connection (Airbyte's `ValidateConflictingDestinationStreams` flag).
    #[arg(long)]
    pub refuse_conflicting_streams: bool,
}

/// A probability on the command line: a number from 0 to 1.
fn parse_rate(text: &str) -> Result<f64, String> {
    let rate: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a number"))?;
    if rate_is_valid(rate) {
        Ok(rate)
    } else {
        Err(format!("{rate} is not between 0 and 1"))
    }
}

fn rate_is_valid(rate: f64) -> bool {
    (0.0..=1.0).contains(&rate)
}

/// How to run a sandbox: the validated form of [`SandboxArgs`], or built in code by tests.
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    pub listen: ListenAddr,
    pub seed: Seed,
    /// `--sources N`.
    pub extra_sources: usize,
    /// `--latency`.
    pub latency: Duration,
    /// `--token-ttl`: lifetime of tokens from `/applications/token` (`expires_in`, rounded up to
    /// whole seconds); 900 s like Airbyte's default. Must not be zero.
    pub token_ttl: Duration,
    /// `--fail-rate`: share of API requests answered 500 or 503 without effect, 0 to 1.
    pub fail_rate: f64,
    /// `--lost-response-rate`: share of successful connection creates and patches, and tag
    /// creates, patches and deletes, and job starts, whose answer is lost after they took
    /// effect, 0 to 1.
    pub lost_response_rate: f64,
    /// `--rate-limit`: requests per second per bearer token (a bucket of this many, refilled at
    /// this rate); `None` for no limit. At least 1.
    pub rate_limit: Option<u32>,
    /// `--create-delay`: added to every `POST /connections`, before its write.
    pub create_delay: Duration,
    /// `--churn-rate`: share of `GET /connections` pages on which an unrelated connection is
    /// deleted or created (see the README's fault knobs), 0 to 1.
    pub churn_rate: f64,
    /// `--job-duration`: how long a started job takes (2 s by default).
    pub job_duration: Duration,
    /// `--job-fail-rate`: share of started jobs that end `failed`, 0 to 1.
    pub job_fail_rate: f64,
    /// `--fault-seed`: seed of the fault dice; `None` draws one (see [`Sandbox::fault_seed`]).
    pub fault_seed: Option<u64>,
    /// `--refuse-conflicting-streams`.
    pub refuse_conflicting_streams: bool,
}

/// The most sources `--sources` may add (20,000 is the benchmark's size).
const MAX_EXTRA_SOURCES: usize = 1_000_000;

impl SandboxConfig {
    pub fn from_args(args: &SandboxArgs) -> Result<Self, SandboxError> {
        let seed = match &args.seed {
            Some(path) => {
                let bytes = crate::input::read(path).map_err(|error| SandboxError::ReadSeed {
                    path: path.clone(),
                    error: Arc::new(error),
                })?;
                Seed::from_yaml(path, &bytes)?
            }
            None => Seed::default_seed(),
        };
        let config = Self {
            listen: args.listen.clone(),
            seed,
            extra_sources: args.sources,
            latency: args.latency,
            token_ttl: args.token_ttl,
            fail_rate: args.fail_rate,
            lost_response_rate: args.lost_response_rate,
            rate_limit: args.rate_limit,
            create_delay: args.create_delay,
            churn_rate: args.churn_rate,
            job_duration: args.job_duration,
            job_fail_rate: args.job_fail_rate,
            fault_seed: args.fault_seed,
            refuse_conflicting_streams: args.refuse_conflicting_streams,
        };
        config.validate()?;
        Ok(config)
    }

    /// Checks the values the flags' parsers check, for configs built in code.
    pub fn validate(&self) -> Result<(), SandboxError> {
        if self.extra_sources > MAX_EXTRA_SOURCES {
            return Err(SandboxError::TooManySources(self.extra_sources));
        }
        for (flag, rate) in [
            ("--fail-rate", self.fail_rate),
            ("--lost-response-rate", self.lost_response_rate),
            ("--churn-rate", self.churn_rate),
            ("--job-fail-rate", self.job_fail_rate),
        ] {
            if !rate_is_valid(rate) {
                return Err(SandboxError::Rate { flag, rate });
            }
        }
        if self.rate_limit == Some(0) {
            return Err(SandboxError::ZeroRateLimit);
        }
        if self.token_ttl.is_zero() {
            return Err(SandboxError::ZeroTokenTtl);
        }
        Ok(())
    }

    /// The fault knobs that are on, as flags, e.g. `["--fail-rate 0.1", "--rate-limit 5"]`.
    pub fn active_faults(&self) -> Vec<String> {
        let mut on = Vec::new();
        if self.fail_rate > 0.0 {
            on.push(format!("--fail-rate {}", self.fail_rate));
        }
        if self.lost_response_rate > 0.0 {
            on.push(format!("--lost-response-rate {}", self.lost_response_rate));
        }
        if let Some(n) = self.rate_limit {
            on.push(format!("--rate-limit {n}"));
        }
        if self.token_ttl != DEFAULT_TOKEN_TTL {
            on.push(format!("--token-ttl {:?}", self.token_ttl));
        }
        if !self.create_delay.is_zero() {
            on.push(format!("--create-delay {:?}", self.create_delay));
        }
        if self.churn_rate > 0.0 {
            on.push(format!("--churn-rate {}", self.churn_rate));
        }
        if self.job_fail_rate > 0.0 {
            on.push(format!("--job-fail-rate {}", self.job_fail_rate));
        }
        on
    }

    /// The default seed on a free loopback port, no latency: what tests start from.
    pub fn default_on_free_port() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)).into(),
            seed: Seed::default_seed(),
            extra_sources: 0,
            latency: Duration::ZERO,
            token_ttl: DEFAULT_TOKEN_TTL,
            fail_rate: 0.0,
            lost_response_rate: 0.0,
            rate_limit: None,
            create_delay: Duration::ZERO,
            churn_rate: 0.0,
            job_duration: DEFAULT_JOB_DURATION,
            job_fail_rate: 0.0,
            fault_seed: None,
            refuse_conflicting_streams: false,
        }
    }
}

const DEFAULT_TOKEN_TTL: Duration = Duration::from_secs(900);
const DEFAULT_JOB_DURATION: Duration = Duration::from_secs(2);

/// Why a sandbox could not start. Each message says its cause itself, so none is also a
/// `source()`: an error chain printed whole (`{:#}`) says each cause once.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SandboxError {
    #[error("cannot read the seed {}: {error}", path.display())]
    ReadSeed {
        path: PathBuf,
        error: Arc<std::io::Error>,
    },
    #[error("invalid seed: {0}")]
    Seed(SeedError),
    #[error("--sources {0} is too many (at most {MAX_EXTRA_SOURCES})")]
    TooManySources(usize),
    #[error("{flag} {rate}: a rate is a probability, between 0 and 1")]
    Rate { flag: &'static str, rate: f64 },
    #[error("--rate-limit 0: the limit must allow at least 1 request per second")]
    ZeroRateLimit,
    #[error("--token-ttl 0: tokens must live longer than that (`expires_in` rounds up to 1 s)")]
    ZeroTokenTtl,
    #[error("cannot listen on {addr}: {error}")]
    Bind {
        addr: ListenAddr,
        error: Arc<std::io::Error>,
    },
}

impl From<SeedError> for SandboxError {
    fn from(error: SeedError) -> Self {
        SandboxError::Seed(error)
    }
}

/// A running sandbox, serving on a spawned task until [`Sandbox::shutdown`] (or until dropped,
/// which stops it without waiting).
#[derive(Debug)]
pub struct Sandbox {
    addr: SocketAddr,
    fault_seed: u64,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Sandbox {
    /// Builds the state from the seed, binds, and serves on a spawned task. Connections are
    /// accepted as soon as this returns.
    pub async fn start(config: SandboxConfig) -> Result<Sandbox, SandboxError> {
        config.validate()?;
        let mut store = seeding::build(&config.seed, config.extra_sources)?;
        if config.churn_rate > 0.0 {
            churn::prepare(&mut store);
        }
        store.set_job_duration(config.job_duration);
        // Seeds are not checked: a seed may hold connections that already conflict.
        store.set_refuse_conflicting_streams(config.refuse_conflicting_streams);
        let bind_error = |error| SandboxError::Bind {
            addr: config.listen.clone(),
            error: Arc::new(error),
        };
        let listener = config.listen.bind().await.map_err(bind_error)?;
        let addr = listener.local_addr().map_err(bind_error)?;
        let fault_seed = config.fault_seed.unwrap_or_else(|| fastrand::u64(..));
        let app = Arc::new(routes::App {
            store: RwLock::new(store),
            auth: Arc::new(auth::Auth::new(&config.seed, config.token_ttl)),
            stats: Arc::new(stats::Stats::new(config.latency)),
            faults: Arc::new(
                faults::Faults::new(
                    config.fail_rate,
                    config.lost_response_rate,
                    config.rate_limit,
                    config.create_delay,
                    fault_seed,
                )
                .with_churn(config.churn_rate)
                .with_job_fail_rate(config.job_fail_rate),
            ),
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
            fault_seed,
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

    /// The seed of the fault dice: `fault_seed` from the config, or the one drawn at start.
    pub fn fault_seed(&self) -> u64 {
        self.fault_seed
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
    let faults = config.active_faults();
    let rolls_dice = config.fail_rate > 0.0
        || config.lost_response_rate > 0.0
        || config.churn_rate > 0.0
        || config.job_fail_rate > 0.0;
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
        if !faults.is_empty() {
            write!(out, "faults:        {}", faults.join(", "))?;
            if rolls_dice {
                write!(out, " (replay with --fault-seed {})", sandbox.fault_seed())?;
            }
            writeln!(out)?;
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
