//! Unit tests of [`workers`](super): the contract in the module docs,
//! on tokio's current-thread runtime.

use std::future::Future;
use std::sync::atomic::AtomicUsize;
use std::time::Duration;

use futures::future::BoxFuture;

use super::*;
use crate::handler::DeliveryBuilder;
use crate::time::Time;
use crate::HandlerError;

struct Tokio;

impl Runtime for Tokio {
    fn now(&self) -> Time {
        Time::ZERO
    }
    fn sleep_until(&self, _deadline: Time) -> BoxFuture<'static, ()> {
        Box::pin(std::future::pending())
    }
    fn spawn<F>(&self, future: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        drop(tokio::spawn(future));
    }
}

/// A handler that counts its calls and then runs `body`.
struct Counted<F> {
    calls: Arc<AtomicUsize>,
    body: F,
}

#[async_trait::async_trait]
impl<F, Fut> Handler for Counted<F>
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<(), HandlerError>> + Send,
{
    async fn handle(&self, _delivery: Delivery) -> Result<(), HandlerError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        (self.body)().await
    }
}

fn counted<F, Fut>(body: F) -> (Arc<dyn Handler>, Arc<AtomicUsize>)
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<(), HandlerError>> + Send + 'static,
{
    let calls = Arc::new(AtomicUsize::new(0));
    let handler = Counted {
        calls: calls.clone(),
        body,
    };
    (Arc::new(handler), calls)
}

fn delivery() -> Delivery {
    DeliveryBuilder::new("Tested.workers").build()
}

/// The next `n` answers left in `inbox`, waiting for them (10 s at most).
async fn answers(inbox: &Inbox, n: usize) -> Vec<(MessageId, DispatchOutcome)> {
    let mut got = Vec::new();
    let all = futures::future::poll_fn(|cx| {
        inbox.drain_into(cx, &mut got);
        if got.len() < n {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    });
    // A job left unanswered fails the test instead of hanging it.
    tokio::time::timeout(Duration::from_secs(10), all)
        .await
        .expect("every job is answered");
    assert_eq!(got.len(), n, "no more answers than jobs: {got:?}");
    got.into_iter()
        .map(|input| match input {
            Input::HandlerFinished { id, outcome } => (id, outcome),
            other => panic!("not a handler's answer: {other:?}"),
        })
        .collect()
}

/// The next answer left in `inbox`, waiting for it.
async fn answer(inbox: &Inbox) -> (MessageId, DispatchOutcome) {
    answers(inbox, 1).await.remove(0)
}

#[tokio::test(flavor = "current_thread")]
async fn a_job_is_answered_once_and_its_worker_takes_the_next() {
    let inbox = Arc::new(Inbox::default());
    let mut workers = Workers::default();
    let (ok, calls) = counted(|| async { Ok(()) });
    for n in 0..3 {
        let worker = workers.run(&Tokio, &inbox, MessageId(n), ok.clone(), delivery());
        assert_eq!(worker, 0, "the idle worker is reused");
        assert_eq!(
            answer(&inbox).await,
            (MessageId(n), DispatchOutcome::Succeeded)
        );
        workers.free(worker);
    }
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    assert_eq!(workers.all.len(), 1, "one worker ran them all");
}

#[tokio::test(flavor = "current_thread")]
async fn a_busy_worker_gets_company_for_the_next_job() {
    let inbox = Arc::new(Inbox::default());
    let mut workers = Workers::default();
    let (slow, _) = counted(|| async {
        tokio::time::sleep(Duration::from_millis(20)).await;
        Ok(())
    });
    let first = workers.run(&Tokio, &inbox, MessageId(1), slow.clone(), delivery());
    let second = workers.run(&Tokio, &inbox, MessageId(2), slow, delivery());
    assert_ne!(first, second, "a worker runs one job at a time");
    let mut ids: Vec<_> = answers(&inbox, 2).await.into_iter().map(|a| a.0).collect();
    ids.sort();
    assert_eq!(ids, [MessageId(1), MessageId(2)]);
}

#[tokio::test(flavor = "current_thread")]
async fn a_stop_before_the_first_poll_answers_aborted_without_a_call() {
    let inbox = Arc::new(Inbox::default());
    let mut workers = Workers::default();
    let (ok, calls) = counted(|| async { Ok(()) });
    let worker = workers.run(&Tokio, &inbox, MessageId(1), ok, delivery());
    workers.stop(worker);
    assert_eq!(
        answer(&inbox).await,
        (MessageId(1), DispatchOutcome::Aborted)
    );
    assert_eq!(calls.load(Ordering::SeqCst), 0, "the handler never ran");
}

#[tokio::test(flavor = "current_thread")]
async fn a_stop_drops_a_running_handler_at_its_next_poll() {
    struct Dropped(Arc<AtomicBool>);
    impl Drop for Dropped {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }
    let dropped = Arc::new(AtomicBool::new(false));
    let seen = dropped.clone();
    let inbox = Arc::new(Inbox::default());
    let mut workers = Workers::default();
    let (hung, calls) = counted(move || {
        let guard = Dropped(seen.clone());
        async move {
            let _guard = guard;
            std::future::pending::<()>().await;
            Ok(())
        }
    });
    let worker = workers.run(&Tokio, &inbox, MessageId(1), hung, delivery());
    tokio::task::yield_now().await;
    assert_eq!(calls.load(Ordering::SeqCst), 1, "the handler is running");
    assert!(!dropped.load(Ordering::SeqCst));
    workers.stop(worker);
    assert_eq!(
        answer(&inbox).await,
        (MessageId(1), DispatchOutcome::Aborted)
    );
    assert!(dropped.load(Ordering::SeqCst), "its future was dropped");
}

#[tokio::test(flavor = "current_thread")]
async fn a_stop_that_comes_after_the_answer_does_not_stop_the_next_job() {
    let inbox = Arc::new(Inbox::default());
    let mut workers = Workers::default();
    let (ok, calls) = counted(|| async { Ok(()) });
    let worker = workers.run(&Tokio, &inbox, MessageId(1), ok.clone(), delivery());
    assert_eq!(answer(&inbox).await.1, DispatchOutcome::Succeeded);
    // The machine asked to abort message 1 before its answer reached it.
    workers.stop(worker);
    workers.free(worker);
    let again = workers.run(&Tokio, &inbox, MessageId(2), ok, delivery());
    assert_eq!(again, worker);
    assert_eq!(
        answer(&inbox).await,
        (MessageId(2), DispatchOutcome::Succeeded)
    );
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test(flavor = "current_thread")]
async fn a_panic_is_answered_and_the_worker_goes_on() {
    let inbox = Arc::new(Inbox::default());
    let mut workers = Workers::default();
    let (panics, _) = counted(|| async { panic!("boom") });
    let worker = workers.run(&Tokio, &inbox, MessageId(1), panics, delivery());
    assert_eq!(
        answer(&inbox).await,
        (MessageId(1), DispatchOutcome::Panicked("boom".into()))
    );
    workers.free(worker);
    let (ok, _) = counted(|| async { Ok(()) });
    assert_eq!(
        workers.run(&Tokio, &inbox, MessageId(2), ok, delivery()),
        worker
    );
    assert_eq!(answer(&inbox).await.1, DispatchOutcome::Succeeded);
}

#[tokio::test(flavor = "current_thread")]
async fn workers_end_when_the_driver_is_gone() {
    let inbox = Arc::new(Inbox::default());
    let mut workers = Workers::default();
    let (ok, _) = counted(|| async { Ok(()) });
    let worker = workers.run(&Tokio, &inbox, MessageId(1), ok, delivery());
    answer(&inbox).await;
    workers.free(worker);
    let slot = Arc::downgrade(&workers.all[worker]);
    drop(workers);
    tokio::task::yield_now().await;
    assert!(slot.upgrade().is_none(), "the idle worker ended");
}
