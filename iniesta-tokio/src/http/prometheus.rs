//! The process's Prometheus recorder: installed once, by the first
//! [`listen`](crate::Iniesta::listen)ing consumer, and shared by every
//! later one.

use std::sync::{Mutex, PoisonError};

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use super::HttpError;
use crate::observe::names;

/// The handle of the recorder this module installed, once it has.
static INSTALLED: Mutex<Option<PrometheusHandle>> = Mutex::new(None);

/// The handle of the global Prometheus recorder, installing it first if
/// this process has none: the histograms get the buckets of
/// [`names::HISTOGRAM_BUCKETS`].
///
/// `metrics` takes one global recorder per process, for good. A second
/// consumer (or a consumer started again) reuses the one installed here;
/// a recorder installed by anyone else cannot be read from, so that is
/// [`HttpError::RecorderTaken`].
pub(super) fn handle() -> Result<PrometheusHandle, HttpError> {
    // Held across the installation, so two consumers starting at once
    // cannot both try.
    let mut installed = INSTALLED.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(handle) = installed.as_ref() {
        return Ok(handle.clone());
    }
    let mut builder = PrometheusBuilder::new();
    for (name, buckets) in names::HISTOGRAM_BUCKETS {
        builder = builder
            .set_buckets_for_metric(Matcher::Full((*name).to_owned()), buckets)
            .map_err(|e| HttpError::Buckets {
                metric: name,
                message: e.to_string(),
            })?;
    }
    let recorder = builder.build_recorder();
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder).map_err(|_| HttpError::RecorderTaken)?;
    *installed = Some(handle.clone());
    Ok(handle)
}
