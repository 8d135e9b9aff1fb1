//! A blocking receive in a world kept here, answered on the sender's thread: the parked call
//! is resumed (queued for a worker) by the worker whose rank sends the message, with no trip
//! through the async runtime and back, as a chained call of this executor resumes its
//! caller. Its expiry is a timer on the runtime, taken back once the message comes.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use tokio::task::AbortHandle;

use super::World;
use super::world::{Deliver, Delivery};
use crate::call::CallTask;
use crate::host::mpi::{MpiDone, MpiFailure, Posted};
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
    static TOKENS: AtomicU64 = AtomicU64::new(1);
    let token = TOKENS.fetch_add(1, Ordering::Relaxed);
    let deadline = Instant::now() + parked.task().time_left();
    let who = format!("rank {rank} of MPI world {}", world.id);
    let timer: Arc<OnceLock<AbortHandle>> = Arc::default();
    let answer = Answer {
        posted: posted.clone(),
        who,
    };
    let mut waiting = Some((parked, answer));
    let taken = world.take_or_deliver(rank, posted.matching, token, || {
        let deliver: Deliver = match waiting.take() {
            Some((parked, answer)) => {
                let timer = timer.clone();
                Box::new(move |delivery| {
                    if let Some(timer) = timer.get() {
                        timer.abort();
                    }
                    parked.resume(OpResult::Mpi(answer.of(delivery)));
                })
            }
            // Asked for once only: nothing else can be waiting.
            None => Box::new(|_| {}),
        };
        deliver
    });
    let Some((parked, answer)) = waiting else {
        // Waiting: it expires at the call's deadline unless the message comes first.
        let world = world.clone();
        let expiry = runtime.spawn(async move {
            tokio::time::sleep_until(deadline.into()).await;
            if let Some(deliver) = world.expire(rank, token) {
                deliver(Delivery::TimedOut);
            }
        });
        let _ = timer.set(expiry.abort_handle());
        return None;
    };
    let delivery = match taken {
        Ok(Some(message)) => Delivery::Message(message),
        Ok(None) => Delivery::Broken(
            "the receive was neither answered nor left waiting".into(),
            None,
        ),
        Err(why) => Delivery::Broken(why, world.abort_code()),
    };
    Some(parked.complete(OpResult::Mpi(answer.of(delivery))))
}

/// What a receive answers its call with.
struct Answer {
    posted: Posted,
    who: String,
}

impl Answer {
    fn of(self, delivery: Delivery) -> Result<MpiDone, MpiFailure> {
        match delivery {
            Delivery::Message(message) => {
                let (write, status) = self.posted.received(message);
                Ok(MpiDone::Wrote {
                    writes: vec![write],
                    completed: vec![status],
                })
            }
            Delivery::Broken(why, code) => Err(MpiFailure::stopped(&self.who, &why, code)),
            Delivery::TimedOut => Err(MpiFailure::timed_out(&self.who, &self.posted.waiting_for())),
        }
    }
}
