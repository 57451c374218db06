//! Unit tests of [`execute`](super).

use super::*;

#[test]
fn a_short_batch_answer_is_padded_with_failures_for_every_kind() {
    let batch = BatchId(7);
    let mut inputs = Vec::new();
    Answer::Deleted {
        batch,
        n: 3,
        results: vec![Ok(())],
    }
    .push_into(&mut inputs);
    let indices: Vec<_> = inputs
        .iter()
        .map(|i| match i {
            Input::Deleted { index, result, .. } => (*index, result.is_ok()),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(indices, [(0, true), (1, false), (2, false)]);

    inputs.clear();
    Answer::Completed {
        batch,
        n: 1,
        results: vec![Ok(()), Ok(())],
    }
    .push_into(&mut inputs);
    assert_eq!(
        inputs,
        [Input::Completed {
            batch,
            index: 0,
            result: Ok(())
        }],
        "extra results are dropped"
    );

    inputs.clear();
    Answer::Acquired {
        batch,
        answered: vec![true, false, true],
    }
    .push_into(&mut inputs);
    assert!(
        matches!(
            &inputs[..],
            [Input::Acquired {
                index: 1,
                outcome: AcquireOutcome::Unavailable(_),
                ..
            }]
        ),
        "{inputs:?}"
    );
}
