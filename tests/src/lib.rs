//! Cross-crate tests of iniesta-rs: the property tests of the consumer's
//! invariants, the consumer wired to Redlock and SQS, the end-to-end tests of
//! the `iniesta` binary (in `tests/`), and the benchmarks (in `benches/`).
//! The library holds what the tests and benchmarks share: real servers to
//! test against ([`servers`]: `redis-server` and `moto_server` on free
//! loopback ports), running the `iniesta` binary with a clean environment
//! ([`clean_command`]), and reading the benchmarks' knobs from the
//! environment.

pub mod servers;

/// The README's Rust examples, run as doctests so that they stay true.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;

use std::ffi::OsStr;
use std::process::{Command, Stdio};

/// A command for `program` with a clean environment: none of the caller's
/// `INIESTA_*`, `AWS_*`, `SERVICE_NAME`, `ENVIRONMENT` or `RUST_LOG`, no AWS
/// configuration files, no instance metadata, and no stdin. The results of
/// a run then do not depend on the machine; the caller sets what it needs.
pub fn clean_command(program: impl AsRef<OsStr>) -> Command {
    let mut cmd = Command::new(program);
    for (name, _) in std::env::vars_os() {
        let text = name.to_string_lossy();
        if text.starts_with("INIESTA_")
            || text.starts_with("AWS_")
            || ["SERVICE_NAME", "ENVIRONMENT", "RUST_LOG"].contains(&text.as_ref())
        {
            cmd.env_remove(&name);
        }
    }
    cmd.env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .stdin(Stdio::null());
    cmd
}

/// The whole number in environment variable `name`, or `default` when it is
/// unset or blank. A value that is not a whole number stops the run with a
/// message naming the variable.
pub fn env_u64(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => v
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a whole number")),
        _ => default,
    }
}

/// The comma-separated list of whole numbers in `name`, each of which must
/// pass `valid`, or `default` when unset or blank. A bad item stops the run
/// with a message naming the variable and the item.
pub fn env_list(name: &str, default: &[usize], valid: impl Fn(usize) -> bool) -> Vec<usize> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => v
            .split(',')
            .map(|x| {
                x.trim()
                    .parse::<usize>()
                    .ok()
                    .filter(|n| valid(*n))
                    .unwrap_or_else(|| panic!("{name}: bad value {x:?}"))
            })
            .collect(),
        _ => default.to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unset_variables_give_the_defaults() {
        assert_eq!(env_u64("INIESTA_TESTS_SURELY_UNSET", 7), 7);
        assert_eq!(
            env_list("INIESTA_TESTS_SURELY_UNSET", &[1, 4], |_| true),
            [1, 4]
        );
    }
}
