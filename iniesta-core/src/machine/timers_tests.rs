//! Unit tests of [`timers`](super).

use super::*;

/// The queue gives items in the order a heap alone gives them, however
/// pushes (in order or not) and pops interleave.
#[test]
fn the_queue_pops_in_heap_order() {
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    let mut q = Queue::default();
    let mut reference = BinaryHeap::new();
    let mut now = 0;
    for _ in 0..20_000 {
        match next(4) {
            0 | 1 => {
                // Mostly later than all before; now and then earlier.
                now += next(3);
                let t = if next(5) == 0 {
                    now - next(now + 1)
                } else {
                    now
                };
                let item = (Time::from_millis(t), MessageId(next(50)));
                q.push(item);
                reference.push(Reverse(item));
            }
            2 => assert_eq!(q.pop(), reference.pop().map(|Reverse(i)| i)),
            _ => {
                let cut = MessageId(next(50));
                q.retain(|_, id| id != cut);
                reference.retain(|Reverse((_, id))| *id != cut);
            }
        }
        assert_eq!(q.first(), reference.peek().map(|Reverse(i)| *i));
        assert_eq!(q.len(), reference.len());
    }
    assert!(!q.run.is_empty() && !q.heap.is_empty(), "both sides used");
}
