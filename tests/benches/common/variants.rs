//! Consumer variants for the system benches: each is a set of `INIESTA_*`
//! settings on top of the defaults, read by the same code as the `iniesta`
//! binary (`Settings::from_lookup`, then `ConsumerConfig::from_settings`),
//! so that a bench judges the defaults as users get them and an experiment
//! is one variable away from them.
//!
//! Written in an environment variable as variants separated by `;`, each a
//! list of `NAME=value` separated by spaces, or `defaults` for none:
//!
//! ```text
//! DRAIN_CONSUMERS="defaults; INIESTA_CONCURRENT_RECEIVES=4 INIESTA_DELETE_BATCH_WINDOW=0"
//! ```
//!
//! A variant may also hold `receives_cap=N` (not a setting): the
//! concurrent receives are derived as the settings derive them (one per
//! receive batch of `max_in_flight`) but capped at `N` instead of the
//! built-in cap, to judge another cap before changing it.

// Included by several benches, each of which uses a part.
#![allow(dead_code)]

use iniesta_core::settings::{vars, Settings};
use iniesta_core::{ConsumerConfig, DeliveryMode};

/// One consumer variant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variant {
    /// Settings, in the order given.
    pub vars: Vec<(String, String)>,
    /// `receives_cap=N`, if given.
    pub receives_cap: Option<usize>,
}

impl Variant {
    /// No setting changed.
    pub fn defaults() -> Variant {
        Variant {
            vars: Vec::new(),
            receives_cap: None,
        }
    }

    /// `defaults`, or what the variant sets.
    pub fn label(&self) -> String {
        let mut parts: Vec<String> = self.vars.iter().map(|(k, v)| format!("{k}={v}")).collect();
        if let Some(cap) = self.receives_cap {
            parts.push(format!("receives_cap={cap}"));
        }
        if parts.is_empty() {
            "defaults".to_owned()
        } else {
            parts.join(" ")
        }
    }

    /// The consumer's configuration under this variant, as `iniesta
    /// consume` would build it; `max_in_flight` overrides
    /// `INIESTA_MAX_IN_FLIGHT` when given (a bench's point), and then a
    /// variant's `INIESTA_CONCURRENT_RECEIVES` above it counts as
    /// `max_in_flight` (the settings refuse more receives than slots).
    pub fn config(
        &self,
        max_in_flight: Option<usize>,
        mode: DeliveryMode,
        queue: &str,
    ) -> Result<ConsumerConfig, String> {
        let lookup = |name: &str| -> Option<String> {
            if name == vars::MAX_IN_FLIGHT {
                if let Some(m) = max_in_flight {
                    return Some(m.to_string());
                }
            }
            let value = self
                .vars
                .iter()
                .rev()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())?;
            match (name == vars::CONCURRENT_RECEIVES, max_in_flight) {
                (true, Some(m)) => Some(
                    value
                        .parse::<usize>()
                        .map_or(value, |r| r.min(m).to_string()),
                ),
                _ => Some(value),
            }
        };
        let settings =
            Settings::from_lookup(lookup).map_err(|e| format!("{}: {e}", self.label()))?;
        let mut config = ConsumerConfig::from_settings(&settings, mode, queue);
        if let Some(cap) = self.receives_cap {
            if settings.concurrent_receives.is_none() {
                config.concurrent_receives = config
                    .max_in_flight
                    .div_ceil(config.receive_batch as usize)
                    .clamp(1, cap.max(1));
            }
        }
        Ok(config)
    }
}

/// What bounds a consumer of `config`, in its own terms.
pub fn describe(config: &ConsumerConfig) -> String {
    format!(
        "{} slots, prefetch {}, {} receive(s) outstanding, delete window {} ms",
        config.max_in_flight,
        config.prefetch_or_default(),
        config.concurrent_receives,
        config.delete_batch_window.as_millis()
    )
}

/// The variants in environment variable `name` (see the module's docs), or
/// `[defaults]` when it is unset or blank. A malformed item stops the run
/// with a message naming the variable.
pub fn variants_from_env(name: &str) -> Vec<Variant> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => v
            .split(';')
            .filter(|item| !item.trim().is_empty())
            .map(|item| parse_variant(item).unwrap_or_else(|e| panic!("{name}: {e}")))
            .collect(),
        _ => vec![Variant::defaults()],
    }
}

fn parse_variant(item: &str) -> Result<Variant, String> {
    let mut variant = Variant::defaults();
    for word in item.split_whitespace() {
        if word == "defaults" {
            continue;
        }
        let (k, v) = word
            .split_once('=')
            .ok_or_else(|| format!("{word:?} is not NAME=value"))?;
        if k == "receives_cap" {
            let cap = v
                .parse::<usize>()
                .ok()
                .filter(|c| *c > 0)
                .ok_or_else(|| format!("receives_cap={v:?} is not a positive number"))?;
            variant.receives_cap = Some(cap);
        } else if k.starts_with("INIESTA_") {
            variant.vars.push((k.to_owned(), v.to_owned()));
        } else {
            return Err(format!(
                "{k:?} is neither an INIESTA_ setting nor receives_cap"
            ));
        }
    }
    Ok(variant)
}
