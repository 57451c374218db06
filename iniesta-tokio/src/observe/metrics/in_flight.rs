//! The bookkeeping behind the in-flight gauge.

use std::collections::HashMap;
use std::sync::Arc;

use super::labels::shared;
use super::names;

/// The handlers running now that this observer raised the gauge for, by SQS
/// message id, with the `event` label each was counted under.
///
/// The gauge moves only when this changes: an end the observer saw no start
/// for (it was added while handlers ran) or a second end for one start
/// leaves it alone, so the gauge cannot drift below what this observer
/// raised, and whatever is still counted comes down when the consumer
/// stops or the observer is dropped. Only the handler's end brings it down
/// ([`Event::Succeeded`], [`Event::Failed`]): an abort is only asked for
/// ([`Event::Aborting`]) and the handler runs until it has stopped.
///
/// [`Event::Succeeded`]: iniesta_core::Event::Succeeded
/// [`Event::Failed`]: iniesta_core::Event::Failed
/// [`Event::Aborting`]: iniesta_core::Event::Aborting
#[derive(Debug, Default)]
pub(super) struct InFlight {
    running: HashMap<String, Running>,
}

#[derive(Debug)]
struct Running {
    label: Arc<str>,
    /// More than one when a copy of the message (a redelivery of the same
    /// SQS message) started before the first copy's handler ended.
    count: u32,
}

impl InFlight {
    /// A handler of message `sqs_id` started.
    pub(super) fn started(&mut self, sqs_id: &str, label: &Arc<str>) {
        let running = self
            .running
            .entry(sqs_id.to_owned())
            .or_insert_with(|| Running {
                label: Arc::clone(label),
                count: 0,
            });
        running.count += 1;
        gauge(&running.label).increment(1.0);
    }

    /// A handler of message `sqs_id` has stopped, whatever its outcome.
    pub(super) fn finished(&mut self, sqs_id: &str) {
        let Some(running) = self.running.get_mut(sqs_id) else {
            return;
        };
        running.count -= 1;
        gauge(&running.label).decrement(1.0);
        if running.count == 0 {
            self.running.remove(sqs_id);
        }
    }

    /// Takes everything still counted off the gauge: nothing runs any more
    /// (the consumer stopped), or nothing will report its end to this
    /// observer (it is being dropped).
    pub(super) fn clear(&mut self) {
        for (_, running) in self.running.drain() {
            gauge(&running.label).decrement(f64::from(running.count));
        }
    }
}

fn gauge(label: &Arc<str>) -> metrics::Gauge {
    metrics::gauge!(names::IN_FLIGHT, "event" => shared(label))
}

/// Makes the series of `label` exist (at its current value), so an exporter
/// shows 0 rather than nothing before the first handler of that route runs.
pub(super) fn register(label: &Arc<str>) {
    gauge(label).increment(0.0);
}
