//! Blocking MPI calls in a world kept here (a receive, a collective), answered on the thread
//! that completes them: the parked rank is queued for a worker by the worker whose rank sends
//! its message or completes its round, with no trip through the async runtime and back, as a
//! chained call of this executor resumes its caller. A wait's expiry is a timer on the
//! runtime, taken back once the answer comes.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering, fence};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use tokio::task::AbortHandle;

use super::World;
use super::collective::{Collective, Pieces};
use super::world::{Among, Broken, Deliver, Delivery, Message};
use crate::call::CallTask;
use crate::host::mpi::{Landing, MpiDone, MpiFailure, Posted, rank_name};
use crate::host::park::OpResult;
use crate::parked::ParkedCall;

/// Waits in `world` for rank `rank`'s receive `posted`, for `parked`. Hands the call back if
/// it can run on at once (the message was there, or the world had broken).
pub(crate) fn receive_here(
    world: &Arc<World>,
    rank: u32,
    posted: Posted,
    parked: ParkedCall,
    runtime: &tokio::runtime::Handle,
) -> Option<CallTask> {
    // Messages are written only when a wait fails, never on the way of a message.
    let world_id = world.id;
    let who = move || rank_name(rank, world_id);
    let matching = posted.matching;
    let answer = move |delivery: Delivery<Message>| match delivery {
        Delivery::Ready(message) => {
            let (write, status) = posted.received(message);
            Ok(MpiDone::Wrote {
                writes: vec![write],
                completed: vec![status],
            })
        }
        Delivery::Broken(why, code) => Err(MpiFailure::stopped(&who(), &why, code)),
        Delivery::TimedOut => Err(MpiFailure::timed_out(&who(), &posted.waiting_for())),
    };
    let expiring = world.clone();
    answered_here(
        world,
        parked,
        runtime,
        answer,
        |token, deliver| world.take_or_deliver(rank, matching, token, deliver),
        move |token| expiring.expire(rank, token),
    )
}

/// What a rank entering a collective hands in, and where its share goes.
pub(crate) struct Entering {
    pub(crate) rank: u32,
    pub(crate) among: Among,
    pub(crate) collective: Collective,
    pub(crate) contribution: Pieces,
    pub(crate) landing: Landing,
}

/// Enters a collective in `world` for `parked`: hands the call back if it completed the round
/// (or the world had broken), else it waits for the rank that completes it.
pub(crate) fn collective_here(
    world: &Arc<World>,
    entering: Entering,
    parked: ParkedCall,
    runtime: &tokio::runtime::Handle,
) -> Option<CallTask> {
    let Entering {
        rank,
        among,
        collective,
        contribution,
        landing,
    } = entering;
    let (world_id, name) = (world.id, collective.describe());
    let who = move || rank_name(rank, world_id);
    let answer = move |delivery: Delivery<Pieces>| match delivery {
        Delivery::Ready(share) => Ok(landing.land(share)),
        Delivery::Broken(why, code) => Err(MpiFailure::stopped(&who(), &why, code)),
        Delivery::TimedOut => {
            let waiting = format!("in {name} for the other ranks");
            Err(MpiFailure::timed_out(&who(), &waiting))
        }
    };
    let expiring = world.clone();
    let entering_among = among.clone();
    let mut entered = Some((collective, contribution));
    answered_here(
        world,
        parked,
        runtime,
        answer,
        |token, deliver| match entered.take() {
            Some((collective, contribution)) => world.enter_or_deliver(
                rank,
                entering_among,
                collective,
                contribution,
                token,
                deliver,
            ),
            None => Err("the collective was entered twice".into()),
        },
        move |token| expiring.expire_round(&among, rank, token),
    )
}

/// Parks `parked` in a wait that `wait` makes (with its token, and the hand-over for the
/// thread that answers it), answered by `answer`; `expire` takes the wait back once the
/// call's time is up. Hands the call back if `wait` answered at once.
fn answered_here<T: 'static>(
    world: &Arc<World>,
    parked: ParkedCall,
    runtime: &tokio::runtime::Handle,
    answer: impl FnOnce(Delivery<T>) -> Result<MpiDone, MpiFailure> + Send + 'static,
    wait: impl FnOnce(u64, Box<dyn FnOnce() -> Deliver<T> + '_>) -> Result<Option<T>, Broken>,
    expire: impl FnOnce(u64) -> Option<Deliver<T>> + Send + 'static,
) -> Option<CallTask> {
    static TOKENS: AtomicU64 = AtomicU64::new(1);
    let token = TOKENS.fetch_add(1, Ordering::Relaxed);
    let deadline = Instant::now() + parked.task().time_left();
    let cancel = parked.task().cancel().token().clone();
    let timer: Arc<OnceLock<AbortHandle>> = Arc::default();
    // Set once answered: an answer that comes before the timer is set stops it just after.
    let delivered = Arc::new(AtomicBool::new(false));
    let mut waiting = Some((parked, answer));
    let hand_over = {
        let (waiting, timer, delivered) = (&mut waiting, timer.clone(), delivered.clone());
        Box::new(move || -> Deliver<T> {
            match waiting.take() {
                Some((parked, answer)) => Box::new(move |delivery| {
                    // SeqCst on both sides: each sees the other's write (the timer's setting,
                    // this flag), so one of them always stops the timer.
                    delivered.store(true, Ordering::SeqCst);
                    fence(Ordering::SeqCst);
                    if let Some(timer) = timer.get() {
                        timer.abort();
                    }
                    parked.resume(OpResult::Mpi(answer(own_account_first(delivery, deadline))));
                }),
                // Asked for once only: nothing else can be waiting.
                None => Box::new(|_| {}),
            }
        })
    };
    let answered = wait(token, hand_over);
    let Some((parked, answer)) = waiting else {
        // Waiting: it expires at the call's deadline (or once cancelled: the call then ends
        // as cancelled) unless answered first.
        let expiry = runtime.spawn(async move {
            tokio::select! {
                _ = tokio::time::sleep_until(deadline.into()) => {}
                _ = cancel.cancelled() => {}
            }
            if let Some(deliver) = expire(token) {
                deliver(Delivery::TimedOut);
            }
        });
        let _ = timer.set(expiry.abort_handle());
        fence(Ordering::SeqCst);
        if delivered.load(Ordering::SeqCst) {
            expiry.abort();
        }
        return None;
    };
    let delivery = match answered {
        Ok(Some(value)) => Delivery::Ready(value),
        Ok(None) => Delivery::Broken("the wait was neither answered nor registered".into(), None),
        Err(why) => Delivery::Broken(why, world.abort_code()),
    };
    Some(parked.complete(OpResult::Mpi(answer(delivery))))
}

/// A rank woken because the world broke once its own time was up too (a rank that started
/// after it timed out just after it) ran out of time itself: its own account comes first.
fn own_account_first<T>(delivery: Delivery<T>, deadline: Instant) -> Delivery<T> {
    match delivery {
        Delivery::Broken(..) if Instant::now() >= deadline => Delivery::TimedOut,
        delivery => delivery,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_rank_woken_by_a_break_after_its_own_deadline_ran_out_of_time_itself() {
        let broken = || Delivery::<()>::Broken("rank 1 failed".into(), None);
        let past = Instant::now() - Duration::from_millis(1);
        let later = Instant::now() + Duration::from_secs(60);
        assert!(matches!(
            own_account_first(broken(), past),
            Delivery::TimedOut
        ));
        assert!(matches!(
            own_account_first(broken(), later),
            Delivery::Broken(..)
        ));
        assert!(matches!(
            own_account_first(Delivery::Ready(()), past),
            Delivery::Ready(())
        ));
    }
}
