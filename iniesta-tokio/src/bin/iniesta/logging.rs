//! Logs via `tracing` to stderr.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// Installs the stderr logger: `RUST_LOG` when set, else `base` raised one
/// level per `-v`.
pub fn init(verbose: u8, base: u8) {
    let filter = match std::env::var("RUST_LOG") {
        Ok(spec) if !spec.trim().is_empty() => EnvFilter::new(spec),
        _ => {
            let level = match base.saturating_add(verbose) {
                0 => "warn",
                1 => "info",
                2 => "debug",
                _ => "trace",
            };
            EnvFilter::new(level)
        }
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}
