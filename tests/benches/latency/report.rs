//! The latency bench's tables, as markdown on stdout.

use std::time::Duration;

use super::stats::today_utc;
use super::{four_trip_bound, receive_bound, two_trip_bound, Point, Settings, SLOW_EVERY};

/// The shortest time a consumer that waits for a whole receive batch before
/// receiving again would need for the slow messages alone: each receive loop
/// meets its share of slow messages one batch after another.
fn batch_barrier_bound(p: &Point, slow_handler: Duration) -> f64 {
    (p.slow.div_ceil(p.config.concurrent_receives)) as f64 * slow_handler.as_secs_f64()
}

pub fn print_tables(s: &Settings, uniform: &[Point], slow: &[Point]) {
    println!();
    println!(
        "Round trip {} ms per queue/lock call, handler {} ms, waits on the {}, {} run(s) per \
         point (median), tokio multi-thread runtime on {} core(s); measured {}.",
        s.latency.as_millis(),
        s.handler.as_millis(),
        s.timer.name(),
        s.runs,
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        today_utc(),
    );
    println!();
    println!("Uniform handlers:");
    println!();
    println!(
        "| max_in_flight | consumer | receives outstanding | messages | msgs/s (median) | runs (msgs/s) | \
         steady msgs/s | time, s | 2-trip bound | of it (steady) | 4-trip bound | of it | receive ceiling | \
         slots held | slot time, ms | CPU |"
    );
    println!("|---:|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for p in uniform {
        let two = two_trip_bound(s, p.mif);
        let four = four_trip_bound(s, p.mif);
        println!(
            "| {} | {} | {} | {} | {:.1} | {} | {:.1} | {:.2}{} | {:.0} | **{:.0} %** ({:.0} %) | {:.0} | {:.0} % | {:.0} | {:.0} % | {:.1} | {} |",
            p.mif,
            s.consumers[p.variant].label(),
            p.config.concurrent_receives,
            p.messages,
            p.rate,
            p.rates
                .iter()
                .map(|r| format!("{r:.1}"))
                .collect::<Vec<_>>()
                .join(", "),
            p.steady_rate,
            p.elapsed,
            if p.all_drained { "" } else { " (not drained)" },
            two,
            100.0 * p.rate / two,
            100.0 * p.steady_rate / two,
            four,
            100.0 * p.rate / four,
            receive_bound(s, &p.config),
            100.0 * p.slots_held,
            p.slot_ms,
            p.cpu.map_or("—".to_owned(), |c| format!("{:.0} %", 100.0 * c)),
        );
    }
    println!();
    println!(
        "Where a slot's time goes (uniform handlers; per message, ms). The calls and the \
         handler take longer than their nominal waits (by the time the runtime takes to poll \
         a woken task and, on tokio's timer, the rounding of each sleep up to the next \
         millisecond); the rest is the consumer's own turnaround \
         between the steps. The last two columns hold the consumer to a bound with the waits \
         as measured, `max_in_flight / (acquire + handler + complete)`:"
    );
    println!();
    println!(
        "| max_in_flight | consumer | slot time | acquire call | handler | complete call | the rest | \
         bound with these waits, msgs/s | steady of it |"
    );
    println!("|---:|---|---:|---:|---:|---:|---:|---:|---:|");
    for p in uniform {
        let waits = p.acquire_ms + p.handler_ms + p.complete_ms;
        let bound = p.mif as f64 / (waits / 1000.0).max(1e-9);
        println!(
            "| {} | {} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.0} | {:.0} % |",
            p.mif,
            s.consumers[p.variant].label(),
            p.slot_ms,
            p.acquire_ms,
            p.handler_ms,
            p.complete_ms,
            p.slot_ms - waits,
            bound,
            100.0 * p.steady_rate / bound,
        );
    }
    println!();
    println!(
        "One handler in every {SLOW_EVERY} takes {} s ({}):",
        s.slow_handler.as_secs_f64(),
        s.consumers[0].label()
    );
    println!();
    println!("| max_in_flight | messages (slow) | fast msgs/s | vs uniform | slots held by slow handlers | uniform × free slots | fast vs that | time, s | uniform time + one slow handler, s | batch-at-a-time needs ≥, s |");
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for p in slow {
        let Some(u) = uniform
            .iter()
            .find(|u| u.mif == p.mif && u.variant == p.variant)
        else {
            continue;
        };
        let expected = u.rate * (1.0 - p.slow_share);
        println!(
            "| {} | {} ({}) | {:.1} | {:.0} % | {:.0} % | {:.1} | {:.0} % | {:.2}{} | {:.2} | {:.0} |",
            p.mif,
            p.messages,
            p.slow,
            p.fast_rate,
            100.0 * p.fast_rate / u.rate,
            100.0 * p.slow_share,
            expected,
            100.0 * p.fast_rate / expected,
            p.elapsed,
            if p.all_drained { "" } else { " (not drained)" },
            u.elapsed + s.slow_handler.as_secs_f64(),
            batch_barrier_bound(p, s.slow_handler),
        );
    }
    println!();
    println!(
        "2-trip bound: max_in_flight / (handler + 2 round trips), a slot held from acquire to \
         completion record. 4-trip bound: max_in_flight / (handler + 4 round trips), a slot \
         held from receive to delete. Steady: from a tenth to nine tenths of the messages \
         deleted (without the first receive's and the last delete's waits). Receive ceiling: \
         receives outstanding × 10 per round trip. Slots held: mean share of max_in_flight held \
         over the run; slot time: mean time a message held one (acquire call to complete \
         answer). CPU: share of one core the bench used."
    );
}
