//! Futures begun on the thread that makes them, and handed to the async runtime only if they
//! have to wait.
//!
//! A parked call's op, or a chained call's start, often needs nothing it must wait for (a
//! scheduler in the same process, a module and snapshot already here): polled once where it
//! is made, it is done or has queued its work before any other thread is woken. Only a future
//! that is still pending goes to the runtime, which polls it from then on with a real waker
//! (futures register the waker of every poll, so the first poll's is never needed).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use tracing::instrument::WithSubscriber;

use crate::call::subscriber_of;

/// Polls `future` once, here. Must run within the runtime's context (for its timers).
pub(crate) fn poll_once<F: Future + Unpin>(future: &mut F) -> Poll<F::Output> {
    let mut cx = Context::from_waker(Waker::noop());
    Pin::new(future).poll(&mut cx)
}

/// Runs `future` here until it first has to wait, then on `runtime`, in the subscriber that
/// has `span`.
pub(crate) fn start_here(
    runtime: &tokio::runtime::Handle,
    span: &tracing::Span,
    future: impl Future<Output = ()> + Send + 'static,
) {
    let _in_runtime = runtime.enter();
    let mut future = Box::pin(future);
    if poll_once(&mut future).is_pending() {
        spawn_in_subscriber_of(runtime, span, future);
    }
}

/// Spawns `future` on `runtime`, polled in the subscriber that has `span` (which need not be
/// the runtime threads' default: a subscriber scoped to one thread, as in tests).
pub(crate) fn spawn_in_subscriber_of(
    runtime: &tokio::runtime::Handle,
    span: &tracing::Span,
    future: impl Future<Output = ()> + Send + 'static,
) {
    match subscriber_of(span) {
        Some(dispatch) => runtime.spawn(future.with_subscriber(dispatch)),
        None => runtime.spawn(future),
    };
}
