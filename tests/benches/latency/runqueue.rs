//! How many woken tasks wait in tokio's injection queue during a run
//! (`LATENCY_SAMPLE_QUEUE=1`): the simulated waits are woken from the timer
//! thread, so every woken task passes through that queue, and its depth
//! shows how bursty the wake-ups are (messages that went through a round
//! together wait equally long and wake together).
//!
//! Sampled from a thread of its own every 200 µs, which is load of its own:
//! off by default, so that the timed runs do not pay for it. The precise
//! timer's lateness is logged with it, to tell a late clock from a late
//! poll.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// The depth of the injection queue over a run, mean and peak, and how
/// late the precise timer answered its waits on average.
#[derive(Debug, Clone, Copy)]
pub struct Depth {
    pub mean: f64,
    pub max: usize,
    pub timer_late: Option<Duration>,
}

/// A running sampler; [`stop`](Self::stop) ends it and says what it saw.
pub struct Sampler {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<Depth>,
}

impl Sampler {
    pub fn start(runtime: tokio::runtime::Handle) -> Self {
        // The timer's lateness from here on.
        let _ = super::timer::take_lateness();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::spawn(move || {
            let (mut samples, mut sum, mut max) = (0u64, 0u64, 0usize);
            while !stopped.load(Ordering::Relaxed) {
                let depth = runtime.metrics().global_queue_depth();
                samples += 1;
                sum += depth as u64;
                max = max.max(depth);
                std::thread::sleep(Duration::from_micros(200));
            }
            Depth {
                mean: sum as f64 / samples.max(1) as f64,
                max,
                timer_late: super::timer::take_lateness(),
            }
        });
        Sampler { stop, thread }
    }

    pub fn stop(self) -> Depth {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().expect("the sampler thread")
    }
}
