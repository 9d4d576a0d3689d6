//! The `sluice` binary: command-line flags and subcommands, wiring only.
//!
//! `sluice --config config.yaml` (or `sluice serve ...`) runs the gateway with LiteLLM's flags;
//! `sluice mock` runs the fake provider, `sluice load` the load generator, and `sluice check`
//! validates a config without serving it.

mod access_line;
#[cfg(not(feature = "system-allocator"))]
mod allocator;
mod logs;
mod open_files;
mod probe;

use clap::{Args, Parser, Subcommand};
use sluice_server::config::{Config, ConfigError};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

// mimalloc: measurably less CPU per request than the system allocator. The `system-allocator`
// feature drops it so that heap profilers, which intercept malloc, see every allocation.
#[cfg(not(feature = "system-allocator"))]
#[global_allocator]
static GLOBAL: allocator::MiMalloc = allocator::MiMalloc;

#[derive(Parser, Debug)]
#[command(name = "sluice", version, about = "An LLM gateway: a drop-in replacement for the LiteLLM Proxy")]
#[command(args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Subcommand, Debug)]
#[allow(clippy::large_enum_variant)] // parsed once at start-up
enum Command {
    /// Run the gateway (the default when no subcommand is given).
    Serve(ServeArgs),
    /// Run the fake LLM provider used by tests and benchmarks.
    Mock(sluice_mock::MockArgs),
    /// Generate load against a gateway (locust-compatible flags).
    Load(sluice_load::LoadArgs),
    /// Validate a config and print what it holds and what sluice ignores.
    Check(CheckArgs),
    /// Copy keys, users, teams and budgets from a LiteLLM PostgreSQL database into sluice's.
    #[command(name = "import-litellm")]
    ImportLitellm(ImportArgs),
    /// Probe a URL (default: the local gateway's liveness): exit 0 when it answers 2xx. The
    /// container image's HEALTHCHECK, which has no curl.
    Health(probe::HealthArgs),
}

#[derive(Args, Debug)]
struct ImportArgs {
    /// The LiteLLM database, e.g. postgresql://user:pass@host:5432/litellm.
    #[arg(long = "database-url", alias = "database_url")]
    database_url: String,
    /// sluice's database (default: the config's database_url, else DATABASE_URL, else the
    /// embedded SQLite file).
    #[arg(long = "into")]
    into: Option<String>,
    /// The sluice config.yaml whose database to fill.
    #[arg(long, short = 'c', env = "CONFIG_FILE_PATH")]
    config: Option<PathBuf>,
}

/// Flags as `litellm` takes them.
#[derive(Args, Debug, Clone)]
struct ServeArgs {
    /// Path to a LiteLLM config.yaml.
    #[arg(long, short = 'c', env = "CONFIG_FILE_PATH")]
    config: Option<PathBuf>,
    /// Address to listen on.
    #[arg(long, env = "HOST", default_value = "0.0.0.0")]
    host: String,
    /// Port to listen on (0 picks a free one and prints it).
    #[arg(long, env = "PORT", default_value_t = 4000)]
    port: u16,
    /// Worker threads (LiteLLM's worker processes; sluice uses threads). Default: available cores.
    #[arg(long = "num_workers", alias = "num-workers", env = "NUM_WORKERS")]
    num_workers: Option<usize>,
    /// Log as JSON lines, every line (also `litellm_settings.json_logs: true` or JSON_LOGS=True).
    #[arg(long = "json_logs", alias = "json-logs")]
    json_logs: bool,
    /// Verbose logs (LiteLLM's --debug).
    #[arg(long)]
    debug: bool,
    /// Very verbose logs (LiteLLM's --detailed_debug).
    #[arg(long = "detailed_debug", alias = "detailed-debug")]
    detailed_debug: bool,
    #[command(flatten)]
    unenforced: Unenforced,
}

/// The way past a config that names settings sluice would not enforce.
#[derive(Args, Debug, Clone)]
struct Unenforced {
    /// Start even when the config sets something that would deny or limit requests (guardrails,
    /// route restrictions, budgets...) that sluice does not enforce; each is logged as a warning.
    #[arg(
        long = "allow-unenforced-settings",
        alias = "allow_unenforced_settings",
        env = "SLUICE_ALLOW_UNENFORCED_SETTINGS",
        action = clap::ArgAction::SetTrue,
        value_parser = clap::builder::FalseyValueParser::new()
    )]
    allow: bool,
}

#[derive(Args, Debug)]
struct CheckArgs {
    /// Path to a LiteLLM config.yaml.
    #[arg(long, short = 'c', env = "CONFIG_FILE_PATH")]
    config: PathBuf,
    /// Exit non-zero when anything is ignored, refused or unusable, so CI can gate on it.
    #[arg(long)]
    strict: bool,
    #[command(flatten)]
    unenforced: Unenforced,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The gateway, the mock and the load generator each hold a descriptor per connection.
    let open_files = open_files::raise();
    match cli.command {
        None => serve(cli.serve, open_files),
        Some(Command::Serve(args)) => serve(args, open_files),
        Some(Command::Mock(args)) => match sluice_mock::run(args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("sluice mock: {e}");
                ExitCode::FAILURE
            }
        },
        Some(Command::Load(args)) => ExitCode::from(sluice_load::run(args).clamp(0, 255) as u8),
        Some(Command::Check(args)) => check(&args),
        Some(Command::ImportLitellm(args)) => import_litellm(args),
        Some(Command::Health(args)) => probe::run(&args),
    }
}

fn load_config(path: Option<&Path>) -> Result<Config, ConfigError> {
    match path {
        Some(p) => Config::load(p),
        None => Config::from_yaml_str("{}", sluice_server::config::Env::process()),
    }
}

fn serve(args: ServeArgs, open_files: Option<u64>) -> ExitCode {
    // The config is read before the logs start: it may ask for JSON lines.
    let loaded = load_config(args.config.as_deref());
    let json = args.json_logs
        || logs::json_from_env(&sluice_server::config::Env::process())
        || loaded.as_ref().is_ok_and(|c| c.litellm.json_logs);
    // Held until the process returns: dropping it writes out the lines still queued.
    let log_guard = logs::init(&logs::Settings { json, debug: args.debug, detailed_debug: args.detailed_debug });
    let logs = &log_guard;
    let fatal = |message: String| logs::fatal(logs, json, &message);
    if let Some(advice) = open_files.and_then(open_files::advice) {
        tracing::warn!("{advice}");
    }
    let config = match loaded {
        Ok(c) => c,
        Err(e) => {
            let path = args.config.as_deref().map(|p| p.display().to_string()).unwrap_or_default();
            fatal(format!("sluice: invalid config {path}\n  {e}"));
            return ExitCode::from(2);
        }
    };
    if args.config.is_none() {
        tracing::warn!(
            "no --config given: serving with no models. Pass --config config.yaml (a LiteLLM config works as is)."
        );
    }
    if let Some(refusal) = config.refusal() {
        if !args.unenforced.allow {
            fatal(format!("sluice: {refusal}"));
            return ExitCode::from(2);
        }
        for line in &config.refused {
            tracing::warn!("NOT ENFORCED (started with --allow-unenforced-settings): {line}");
        }
    }
    for w in &config.warnings {
        tracing::warn!("{w}");
    }
    if !config.ignored.is_empty() {
        tracing::warn!(
            "these settings are read but not acted on by this version of sluice:\n  {}",
            config.ignored.join("\n  ")
        );
    }
    if config.general.master_key.is_none() {
        tracing::warn!(
            "NO MASTER KEY IS SET: every caller is admitted without a key. Set general_settings.master_key (or LITELLM_MASTER_KEY) before exposing this port."
        );
    }

    let workers = args
        .num_workers
        .filter(|n| *n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1));
    let runtime = match workers {
        1 => tokio::runtime::Builder::new_current_thread().enable_all().build(),
        n => tokio::runtime::Builder::new_multi_thread().worker_threads(n).enable_all().build(),
    };
    let runtime = match runtime {
        Ok(r) => r,
        Err(e) => {
            fatal(format!("sluice: cannot start the async runtime: {e}"));
            return ExitCode::FAILURE;
        }
    };
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        config = args.config.as_deref().map(|p| p.display().to_string()).unwrap_or_default(),
        models = config.deployments.len(),
        "sluice starting"
    );
    runtime.block_on(async move {
        let app = match sluice_server::App::start(&config, &sluice_server::config::Env::process()).await {
            Ok(a) => a,
            Err(e) => {
                fatal(format!("sluice: invalid config\n  {e}"));
                return ExitCode::from(2);
            }
        };
        let listener = match tokio::net::TcpListener::bind((args.host.as_str(), args.port)).await {
            Ok(l) => l,
            Err(e) => {
                fatal(format!(
                    "sluice: cannot listen on {}:{}: {e}. Pick another --port or stop what is using it.",
                    args.host, args.port
                ));
                return ExitCode::FAILURE;
            }
        };
        #[cfg(not(feature = "system-allocator"))]
        tokio::spawn(allocator::give_back_when_quiet());
        let shutdown = shutdown_signal();
        let addr = listener.local_addr().map(|a| a.to_string()).unwrap_or_default();
        logs::announce(logs, json, &format!("sluice listening on http://{addr}"));
        tracing::info!(models = config.deployments.len(), workers, "sluice listening on http://{addr}");
        tracing::info!(
            access_log = config.sluice.access_log,
            "ready: serving on http://{addr} (/health/readiness tells whether the database is connected)"
        );
        let settings = sluice_server::listen::ListenSettings {
            header_timeout: std::time::Duration::from_secs_f64(config.sluice.client_header_timeout),
            read_buffer_max: (config.sluice.client_read_buffer_kb * 1024.0) as usize,
        };
        let serving = app.clone();
        sluice_server::listen::serve(listener, sluice_server::Gateway::new(serving), settings, shutdown).await;
        // Spend still in memory goes to the database before the process ends.
        tracing::info!("shutdown: writing spend still in memory to the database");
        app.shutdown().await;
        tracing::info!("shutdown complete");
        ExitCode::SUCCESS
    })
}

/// Resolves at SIGTERM or Ctrl-C. SIGTERM's handler is installed by this call, not at the first
/// poll: a SIGTERM that comes right after the "listening" line still stops the gateway cleanly
/// instead of ending it on the spot.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    let term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        if let Some(mut term) = term {
            tokio::select! {
                _ = ctrl_c => tracing::info!("shutdown: SIGINT received; no new connections, finishing requests in flight"),
                _ = term.recv() => tracing::info!("shutdown: SIGTERM received; no new connections, finishing requests in flight"),
            }
            return;
        }
        let _ = ctrl_c.await;
        tracing::info!("shutdown: Ctrl-C received; no new connections, finishing requests in flight");
    }
}

fn import_litellm(args: ImportArgs) -> ExitCode {
    let config = match load_config(args.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("sluice import-litellm: invalid config\n  {e}");
            return ExitCode::from(2);
        }
    };
    let into =
        args.into.unwrap_or_else(|| sluice_server::App::database_url(&config, &sluice_server::config::Env::process()));
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("sluice import-litellm: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let store = match sluice_store::Store::open(&into, 2).await {
            Ok(s) => s,
            Err(e) => {
                eprintln!("sluice import-litellm: cannot open sluice's database: {e}");
                return ExitCode::FAILURE;
            }
        };
        match sluice_store::import_litellm(&args.database_url, &store).await {
            Ok(n) => {
                println!(
                    "imported {} keys, {} users, {} teams, {} end users, {} organizations from LiteLLM",
                    n.keys, n.users, n.teams, n.end_users, n.organizations
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("sluice import-litellm: {e}");
                ExitCode::FAILURE
            }
        }
    })
}

/// Exit status of `sluice check` when the config names settings sluice would refuse to start on.
const CHECK_REFUSED: u8 = 3;
/// Exit status of `sluice check --strict` when the config loads but something in it is ignored or
/// cannot serve.
const CHECK_NOT_STRICT: u8 = 4;

fn check(args: &CheckArgs) -> ExitCode {
    let path = args.config.as_path();
    let config = match Config::load(path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{}: invalid config\n  {e}", path.display());
            return ExitCode::from(2);
        }
    };
    println!("{}: OK", path.display());
    println!("deployments ({}):", config.deployments.len());
    for d in &config.deployments {
        let base = d.api_base.as_deref().unwrap_or("(provider default)");
        let kind = if d.mock_response.is_some() { " [mock_response]" } else { "" };
        println!("  {} -> {}/{} at {base} (id {}){kind}", d.model_name, d.model.provider.name, d.model.upstream, d.id);
        if d.unusable.is_some() {
            println!("    cannot serve: see the warning below; its requests get a 500 naming it");
        } else if sluice_providers::catalogue::not_served(d.model.provider.name).is_some() {
            println!(
                "    cannot serve: provider {} is not implemented in sluice (see the warning below); its requests get a 400",
                d.model.provider.name
            );
        }
    }
    println!(
        "master key: {}",
        if config.general.master_key.is_some() { "set" } else { "NOT SET (open to every caller)" }
    );
    let prices = sluice_providers::pricing::SOURCE;
    println!(
        "prices: LiteLLM {}'s model price map ({} models, sha256 {})",
        prices.litellm, prices.models, prices.sha256
    );
    let unpriced: Vec<String> = config.deployments.iter().filter_map(|d| d.unpriced()).collect();
    if unpriced.is_empty() {
        println!("unpriced deployments: none");
    } else {
        println!("unpriced deployments ({}):", unpriced.len());
        for why in &unpriced {
            println!("  {why}");
        }
    }
    for w in &config.warnings {
        println!("warning: {w}");
    }
    if config.ignored.is_empty() {
        println!("ignored settings: none");
    } else {
        println!("ignored settings ({}):", config.ignored.len());
        for line in &config.ignored {
            println!("  {line}");
        }
    }
    // What cannot serve: deployments the config could not place, and those naming a provider
    // sluice does not implement.
    let unusable: Vec<&str> = config
        .deployments
        .iter()
        .filter(|d| d.unusable.is_some() || sluice_providers::catalogue::not_served(d.model.provider.name).is_some())
        .map(|d| d.id.as_str())
        .collect();
    if !config.refused.is_empty() {
        let verdict = if args.unenforced.allow {
            "sluice starts on them only because --allow-unenforced-settings is given"
        } else {
            "sluice refuses to start on them; remove them or pass --allow-unenforced-settings"
        };
        println!("not enforced, and they would deny or limit something ({}): {verdict}", config.refused.len());
        for line in &config.refused {
            println!("  {line}");
        }
        if !args.unenforced.allow {
            return ExitCode::from(CHECK_REFUSED);
        }
    }
    if args.strict && (!config.ignored.is_empty() || !config.refused.is_empty() || !unusable.is_empty()) {
        println!(
            "--strict: {} ignored, {} not enforced, {} deployment(s) that cannot serve",
            config.ignored.len(),
            config.refused.len(),
            unusable.len()
        );
        return ExitCode::from(CHECK_NOT_STRICT);
    }
    ExitCode::SUCCESS
}
