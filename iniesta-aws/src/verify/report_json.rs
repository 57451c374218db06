//! The report as JSON, for CI pipelines (`iniesta verify --format json`).
//!
//! Written by hand rather than derived, so that the names stay what
//! pipelines read however the Rust types change: a check is
//! `{"name", "title", "status", "message", "fix"}` with `status` one of
//! `pass`, `warn`, `fail`, `skip` and `fix` `null` unless it failed or
//! warned; a report is
//! `{"scope", "status", "failed", "warnings", "checks", "queue_url",
//! "queue_arn", "subscription_arn", "delivery_mode", "queue_kind"}` with
//! `status` one of `pass`, `warn`, `fail`, `queue_kind` one of `fifo`,
//! `standard`, and `null` for what was not found.

use iniesta_core::DeliveryMode;
use serde::ser::{Serialize, SerializeStruct, Serializer};

use super::report::{Check, CheckResult, VerificationReport};

/// A check serializes as its stable [`name`](Check::name).
impl Serialize for Check {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

impl Serialize for CheckResult {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut out = serializer.serialize_struct("CheckResult", 5)?;
        out.serialize_field("name", &self.check)?;
        out.serialize_field("title", self.check.title())?;
        out.serialize_field("status", self.status.as_str())?;
        out.serialize_field("message", self.status.message())?;
        out.serialize_field("fix", &self.status.fix())?;
        out.end()
    }
}

impl Serialize for VerificationReport {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut out = serializer.serialize_struct("VerificationReport", 10)?;
        out.serialize_field("scope", self.scope().as_setting())?;
        out.serialize_field("status", self.status())?;
        out.serialize_field("failed", &self.failures().len())?;
        out.serialize_field("warnings", &self.warnings().len())?;
        out.serialize_field("checks", self.results())?;
        out.serialize_field("queue_url", &self.queue_url())?;
        out.serialize_field("queue_arn", &self.queue_arn())?;
        out.serialize_field("subscription_arn", &self.subscription_arn())?;
        let mode = self.delivery_mode().map(|mode| match mode {
            DeliveryMode::Raw => "raw",
            DeliveryMode::Envelope => "envelope",
        });
        out.serialize_field("delivery_mode", &mode)?;
        let kind = self
            .queue_is_fifo()
            .map(|fifo| if fifo { "fifo" } else { "standard" });
        out.serialize_field("queue_kind", &kind)?;
        out.end()
    }
}
