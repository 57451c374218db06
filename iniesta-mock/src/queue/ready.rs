//! The order receives take messages in: `(visible_at, number)`, earliest
//! first.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

use iniesta_core::Time;

/// One entry: when a message becomes visible, and its number.
pub(super) type Slot = Reverse<(Time, u64)>;

/// A priority queue of [`Slot`]s that hands out the earliest first, as a
/// `BinaryHeap<Slot>` does and in the same order: a run of entries pushed
/// in order, and a heap beside it for the others. Most entries arrive in
/// order (sends number their messages upwards on a clock that only grows;
/// a receive hides its messages until now plus the same timeout, taking
/// them in order), and the run pushes and takes those without sifting
/// through a heap of every message in the queue.
#[derive(Debug, Default)]
pub(super) struct Ready {
    /// In order: each entry no earlier than the one before it.
    run: VecDeque<Slot>,
    heap: BinaryHeap<Slot>,
}

impl Ready {
    pub(super) fn push(&mut self, slot: Slot) {
        // `Reverse` turns the order around: `back >= slot` means the back
        // is no later than the new entry.
        if self.run.back().map_or(true, |back| *back >= slot) {
            self.run.push_back(slot);
        } else {
            self.heap.push(slot);
        }
    }

    /// The earliest entry.
    pub(super) fn peek(&self) -> Option<&Slot> {
        match (self.run.front(), self.heap.peek()) {
            (Some(r), Some(h)) => Some(if r >= h { r } else { h }),
            (r, h) => r.or(h),
        }
    }

    /// Takes the earliest entry.
    pub(super) fn pop(&mut self) -> Option<Slot> {
        match (self.run.front(), self.heap.peek()) {
            (Some(r), Some(h)) if r < h => self.heap.pop(),
            (Some(_), _) => self.run.pop_front(),
            (None, _) => self.heap.pop(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn slot(ms: u64, n: u64) -> Slot {
        Reverse((Time::from_duration(Duration::from_millis(ms)), n))
    }

    /// Pushes and pops mixed in a fixed pseudo-random pattern, in order and
    /// out of it, with repeated entries: every pop and peek agrees with a
    /// binary heap's.
    #[test]
    fn hands_out_entries_in_the_order_of_a_binary_heap() {
        let mut ready = Ready::default();
        let mut heap = BinaryHeap::new();
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let mut clock = 0;
        let mut popped = 0;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            match x % 8 {
                // In order (a send, a receive's hide), or out of it (a
                // visibility change), or an entry already there.
                0..=2 => {
                    clock += x % 3;
                    let s = slot(clock, x % 50);
                    ready.push(s);
                    heap.push(s);
                }
                3 => {
                    let s = slot(clock.saturating_sub(x % 40), x % 50);
                    ready.push(s);
                    heap.push(s);
                }
                _ => {
                    assert_eq!(ready.peek(), heap.peek());
                    let got = ready.pop();
                    assert_eq!(got, heap.pop());
                    popped += usize::from(got.is_some());
                }
            }
        }
        while let Some(s) = heap.pop() {
            assert_eq!(ready.pop(), Some(s));
        }
        assert_eq!(ready.pop(), None);
        assert!(popped > 1000, "the pattern pops often: {popped}");
    }
}
