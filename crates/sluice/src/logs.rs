//! The gateway's logs: tracing to stderr, as text or (with `--json_logs`,
//! `litellm_settings.json_logs: true` or `JSON_LOGS=True`, as LiteLLM takes them) as one JSON
//! object per line — every line: the ones written before the process can serve (a config it
//! refuses, a port it cannot take), its one line on stdout, and a panic's message too.

use sluice_server::config::Env;

pub struct Settings {
    pub json: bool,
    pub debug: bool,
    pub detailed_debug: bool,
}

/// LiteLLM's `JSON_LOGS` switch.
pub fn json_from_env(env: &Env) -> bool {
    env.get("JSON_LOGS").is_some_and(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "true" | "1" | "yes"))
}

pub fn init(settings: &Settings) {
    let default = if settings.detailed_debug {
        "debug"
    } else if settings.debug {
        "info,sluice=debug"
    } else {
        "info"
    };
    let filter = std::env::var("RUST_LOG")
        .or_else(|_| std::env::var("LITELLM_LOG").map(|l| l.to_ascii_lowercase()))
        .unwrap_or_else(|_| default.to_string());
    let filter =
        tracing_subscriber::EnvFilter::try_new(&filter).unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let ansi = !settings.json
        && std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none();
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi);
    if settings.json {
        builder.json().flatten_event(true).init();
        // A panic's message as a log line, not as free text on stderr.
        std::panic::set_hook(Box::new(|info| {
            let location = info.location().map(|l| format!("{}:{}", l.file(), l.line())).unwrap_or_default();
            let message = info
                .payload()
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| info.payload().downcast_ref::<String>().cloned())
                .unwrap_or_default();
            tracing::error!(location, "panic: {message}");
        }));
    } else {
        builder.init();
    }
}

/// A message that ends the process: as before on stderr, or as an error line in JSON.
pub fn fatal(json: bool, message: &str) {
    if json {
        tracing::error!("{message}");
    } else {
        eprintln!("{message}");
    }
}

/// The one line on stdout that scripts wait for (`sluice listening on http://ADDR`): as text,
/// or in JSON mode as an object whose `message` holds the same text.
pub fn announce(json: bool, message: &str) {
    if json {
        println!("{}", serde_json::json!({ "level": "INFO", "message": message }));
    } else {
        println!("{message}");
    }
}
