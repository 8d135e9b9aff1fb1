//! One MPI world, kept by the executor of its rank 0: its ranks' mailboxes, the rounds of its
//! collectives, and how each rank's call ended. A message is handed over in memory: queued,
//! or given straight to a receive that waits for it (which wakes its parked call, or answers
//! the gRPC request of a rank on another executor).
//!
//! A world breaks when a rank fails, ends without `MPI_Finalize`, or calls `MPI_Abort`: every
//! rank waiting in it is woken with the reason, and every later operation fails with it, so
//! no rank is left blocked.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use bytes::Bytes;
use fwasm_proto::pb::{CallStatus, MpiRank};
use tokio::sync::oneshot;

use super::collective::{Collective, Pieces};

/// Why a world can no longer be used: read by every rank that tries.
pub(crate) type Broken = String;

/// `MPI_COMM_WORLD`'s context: every rank, in rank order.
pub(crate) const WORLD_CONTEXT: u32 = 1;
/// The first context a communicator made in a world gets (below it: Faasm's ids of the world,
/// of `MPI_COMM_NULL` and the like).
const FIRST_MADE_CONTEXT: u32 = 16;

/// A point-to-point message. Ranks are the world's; the context is its communicator's, and
/// only a receive in the same communicator takes it.
#[derive(Debug, Clone)]
pub(crate) struct Message {
    pub(crate) source: u32,
    pub(crate) tag: i32,
    pub(crate) context: u32,
    pub(crate) data: Bytes,
}

/// What a receive (or probe) accepts: `None` is MPI's wildcard; messages of its communicator
/// (`context`) only.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Matching {
    pub(crate) source: Option<u32>,
    pub(crate) tag: Option<i32>,
    pub(crate) context: u32,
}

/// Which round a rank enters: its communicator's `seq`-th collective, among `members` (the
/// world ranks of the communicator, in its rank order).
#[derive(Debug, Clone)]
pub(crate) struct Among {
    pub(crate) context: u32,
    pub(crate) seq: u64,
    pub(crate) members: Arc<[u32]>,
}

impl Among {
    fn key(&self) -> (u32, u64) {
        (self.context, self.seq)
    }
}

impl Matching {
    fn accepts(&self, message: &Message) -> bool {
        self.context == message.context
            && self.source.is_none_or(|s| s == message.source)
            && self.tag.is_none_or(|t| t == message.tag)
    }

    /// `rank R with tag T`, `any rank`, for messages.
    pub(crate) fn describe(&self) -> String {
        let source = self
            .source
            .map_or("any rank".into(), |s| format!("rank {s}"));
        match self.tag {
            Some(tag) => format!("{source} with tag {tag}"),
            None => source,
        }
    }

    /// Whether some message could be accepted by both.
    pub(crate) fn overlaps(&self, other: &Matching) -> bool {
        fn either<T: PartialEq>(a: Option<T>, b: Option<T>) -> bool {
            a.is_none() || b.is_none() || a == b
        }
        self.context == other.context
            && either(self.source, other.source)
            && either(self.tag, other.tag)
    }
}

pub(crate) struct World {
    pub(crate) id: u64,
    pub(crate) size: u32,
    /// When rank 0 made the world: `MPI_Wtime` counts from it, as on Faasm.
    pub(crate) created: Instant,
    /// Most bytes of messages sent and not yet received the world holds.
    max_queued_bytes: usize,
    inner: Mutex<Inner>,
    /// Woken when the last rank's call ends.
    all_ended: tokio::sync::Notify,
}

struct Inner {
    /// Messages not yet received, per receiving rank, in the order they were sent.
    inboxes: Vec<VecDeque<Message>>,
    /// Their bytes together.
    queued_bytes: usize,
    /// The receive each rank waits in, if it does (a rank runs one thread: at most one).
    waiting: Vec<Option<Receive>>,
    /// Collectives some ranks have entered and not all, by communicator and sequence number.
    rounds: HashMap<(u32, u64), Round>,
    /// The context the next communicator made in this world gets.
    next_context: u32,
    /// Every communicator of the world, by context: its world ranks, in its order.
    contexts: HashMap<u32, Arc<[u32]>>,
    finalized: Vec<bool>,
    /// Which ranks' calls have ended.
    ended: Vec<bool>,
    /// Which ranks have joined (called `MPI_Init`): once each.
    joined: Vec<bool>,
    /// Rank 0's `MPI_Finalize`, waiting for the other ranks to end.
    rank0_waits: Option<oneshot::Sender<Result<(), Broken>>>,
    broken: Option<Broken>,
    /// The code a rank's `MPI_Abort` ended the world with.
    aborted: Option<i32>,
    /// Each rank's call, and how it ended once it has: what the world's call record lists.
    ranks: Vec<MpiRank>,
}

struct Receive {
    matching: Matching,
    /// A probe looks without taking the message.
    takes: bool,
    reply: Reply<Message>,
    /// Which wait it is, for its expiry.
    token: u64,
}

/// How a waiting rank gets what it waits for (a message, its share of a round).
enum Reply<T> {
    /// A task on the async runtime awaits it.
    Channel(oneshot::Sender<Result<T, Broken>>),
    /// Handed over on the sender's thread: a parked call of this executor resumes from there,
    /// with no trip through the async runtime.
    Deliver(Deliver<T>),
}

/// What a wait answered on another thread gets. It is handed over with the world unlocked
/// (what takes it may end a call, which reports to the world).
pub(crate) enum Delivery<T> {
    Ready(T),
    /// The world broke, maybe by an `MPI_Abort` with this code.
    Broken(Broken, Option<i32>),
    /// Its time ran out first.
    TimedOut,
}

pub(crate) type Deliver<T> = Box<dyn FnOnce(Delivery<T>) + Send>;

impl<T> Reply<T> {
    fn is_closed(&self) -> bool {
        match self {
            Reply::Channel(reply) => reply.is_closed(),
            Reply::Deliver(_) => false,
        }
    }

    /// Hands `value` over; gives it back if the receiver has stopped waiting.
    fn send(self, value: T) -> Option<T> {
        match self {
            Reply::Channel(reply) => reply.send(Ok(value)).err().and_then(Result::ok),
            Reply::Deliver(deliver) => {
                deliver(Delivery::Ready(value));
                None
            }
        }
    }

    /// Tells the receiver the world broke.
    fn broken(self, why: &Broken, abort_code: Option<i32>) {
        match self {
            Reply::Channel(reply) => drop(reply.send(Err(why.clone()))),
            Reply::Deliver(deliver) => deliver(Delivery::Broken(why.clone(), abort_code)),
        }
    }
}

struct Round {
    collective: Collective,
    /// The world ranks taking part, in their communicator's order.
    members: Arc<[u32]>,
    /// Who called it first, for the message if another rank calls something else.
    first: u32,
    /// By rank in the communicator.
    contributions: Vec<Option<Pieces>>,
    arrived: usize,
    /// The ranks waiting for their share (by rank in the communicator), each with its wait's
    /// token.
    waiters: Vec<(usize, Reply<Pieces>, u64)>,
}

/// Waits as a task on the async runtime: `register` answers at once, or leaves the channel
/// reply it is given waiting, and this awaits what comes through it.
async fn by_channel<T>(
    register: impl FnOnce(&mut dyn FnMut() -> Reply<T>) -> Result<Option<T>, Broken>,
) -> Result<T, Broken> {
    let mut waiting = None;
    let answered = register(&mut || {
        let (reply, receiver) = oneshot::channel();
        waiting = Some(receiver);
        Reply::Channel(reply)
    })?;
    if let Some(value) = answered {
        return Ok(value);
    }
    let Some(waiting) = waiting else {
        return Err("the wait was neither answered nor registered".into());
    };
    waiting
        .await
        .unwrap_or_else(|_| Err("the MPI world ended while a rank waited".into()))
}

fn lock(inner: &Mutex<Inner>) -> MutexGuard<'_, Inner> {
    // Nothing here panics while holding the lock; if something did, the data is still whole.
    inner.lock().unwrap_or_else(PoisonError::into_inner)
}

impl World {
    /// A world of `size` ranks that holds at most `max_queued_bytes` of messages sent and not
    /// yet received.
    pub(crate) fn new(id: u64, size: u32, max_queued_bytes: usize) -> Self {
        let ranks = size as usize;
        Self {
            id,
            size,
            created: Instant::now(),
            max_queued_bytes,
            inner: Mutex::new(Inner {
                inboxes: (0..ranks).map(|_| VecDeque::new()).collect(),
                queued_bytes: 0,
                waiting: (0..ranks).map(|_| None).collect(),
                rounds: HashMap::new(),
                next_context: FIRST_MADE_CONTEXT,
                contexts: HashMap::from([(WORLD_CONTEXT, (0..size).collect())]),
                finalized: vec![false; ranks],
                ended: vec![false; ranks],
                joined: vec![false; ranks],
                rank0_waits: None,
                broken: None,
                aborted: None,
                ranks: (0..size)
                    .map(|rank| MpiRank {
                        rank,
                        status: CallStatus::Running as i32,
                        ..MpiRank::default()
                    })
                    .collect(),
            }),
            all_ended: tokio::sync::Notify::new(),
        }
    }

    /// Sends `message` to rank `to`: handed to its receive if that waits for it, else queued.
    /// Never blocks (sends are buffered).
    pub(crate) fn send(&self, to: u32, message: Message) -> Result<(), Broken> {
        let mut inner = lock(&self.inner);
        if let Some(why) = &inner.broken {
            return Err(why.clone());
        }
        let to = to as usize;
        let mut message = message;
        loop {
            let waits = inner.waiting[to].as_ref().is_some_and(|receive| {
                receive.matching.accepts(&message) && !receive.reply.is_closed()
            });
            if !waits {
                return self.queue(&mut inner, to, message);
            }
            let takes = inner.waiting[to]
                .as_ref()
                .is_some_and(|receive| receive.takes);
            if !takes {
                // A probe: the message stays queued (if it fits), and the probe sees it.
                self.queue(&mut inner, to, message.clone())?;
            }
            let Some(receive) = inner.waiting[to].take() else {
                return Ok(());
            };
            // Handed over with the world unlocked: what the receiver runs may report to it.
            drop(inner);
            match receive.reply.send(message) {
                Some(back) if takes => {
                    // The receiver has just stopped waiting (its time ran out): the message
                    // goes to whoever waits now, or in line for whoever asks next.
                    message = back;
                    inner = lock(&self.inner);
                }
                _ => return Ok(()),
            }
        }
    }

    /// Puts `message` in rank `to`'s inbox, within the world's bound on what it holds.
    fn queue(&self, inner: &mut Inner, to: usize, message: Message) -> Result<(), Broken> {
        let len = message.data.len();
        if inner.queued_bytes + len > self.max_queued_bytes {
            return Err(format!(
                "a message of {len} bytes to rank {to} would take the world's messages not yet \
                 received past {} bytes (its ranks' memory limits together)",
                self.max_queued_bytes
            ));
        }
        inner.queued_bytes += len;
        inner.inboxes[to].push_back(message);
        Ok(())
    }

    /// The first message for rank `at` that `matching` accepts, taken from its inbox (or
    /// only looked at, for a probe): at once if there is one, else once it comes.
    pub(crate) async fn receive(
        &self,
        at: u32,
        matching: Matching,
        takes: bool,
    ) -> Result<Message, Broken> {
        by_channel(|channel| self.take_or_wait(at, matching, takes, 0, channel)).await
    }

    /// The first message for rank `at` that `matching` accepts, taken at once; else `None`
    /// and `deliver` waits for it on the sender's thread (`token` names the wait for
    /// [`World::expire`]).
    pub(crate) fn take_or_deliver(
        &self,
        at: u32,
        matching: Matching,
        token: u64,
        deliver: impl FnOnce() -> Deliver<Message>,
    ) -> Result<Option<Message>, Broken> {
        self.take_or_wait(at, matching, true, token, || Reply::Deliver(deliver()))
    }

    /// Takes rank `at`'s wait `token` out, if it still waits: its time ran out.
    pub(crate) fn expire(&self, at: u32, token: u64) -> Option<Deliver<Message>> {
        let mut inner = lock(&self.inner);
        let waiting = inner.waiting[at as usize].take_if(|r| r.token == token)?;
        match waiting.reply {
            Reply::Deliver(deliver) => Some(deliver),
            reply => {
                inner.waiting[at as usize] = Some(Receive { reply, ..waiting });
                None
            }
        }
    }

    fn take_or_wait(
        &self,
        at: u32,
        matching: Matching,
        takes: bool,
        token: u64,
        reply: impl FnOnce() -> Reply<Message>,
    ) -> Result<Option<Message>, Broken> {
        {
            let mut inner = lock(&self.inner);
            if let Some(why) = &inner.broken {
                return Err(why.clone());
            }
            let inbox = &mut inner.inboxes[at as usize];
            if let Some(found) = inbox.iter().position(|m| matching.accepts(m)) {
                if !takes {
                    return Ok(Some(inbox[found].clone()));
                }
                let message = inbox.remove(found).expect("found in the inbox");
                inner.queued_bytes -= message.data.len();
                return Ok(Some(message));
            }
            if let Some(source) = matching.source
                && inner.ended[source as usize]
            {
                return Err(format!(
                    "rank {source} has ended: no message from it can come"
                ));
            }
            if inner.waiting[at as usize]
                .as_ref()
                .is_some_and(|waiting| !waiting.reply.is_closed())
            {
                return Err(format!("rank {at} is waiting for a message already"));
            }
            inner.waiting[at as usize] = Some(Receive {
                matching,
                takes,
                reply: reply(),
                token,
            });
        }
        Ok(None)
    }

    /// Rank `rank` enters the round `among` names with its contribution; every member gets
    /// its share once all have entered. Ranks that call different collectives in the same
    /// place break the world.
    pub(crate) async fn collective(
        &self,
        rank: u32,
        among: Among,
        collective: Collective,
        contribution: Pieces,
    ) -> Result<Pieces, Broken> {
        by_channel(|channel| self.enter(rank, among, collective, contribution, 0, channel)).await
    }

    /// [`World::collective`], its share handed over on the thread of the rank that completes
    /// the round (`token` names the wait for [`World::expire_round`]).
    pub(crate) fn enter_or_deliver(
        &self,
        rank: u32,
        among: Among,
        collective: Collective,
        contribution: Pieces,
        token: u64,
        deliver: impl FnOnce() -> Deliver<Pieces>,
    ) -> Result<Option<Pieces>, Broken> {
        let reply = || Reply::Deliver(deliver());
        self.enter(rank, among, collective, contribution, token, reply)
    }

    /// Takes rank `rank`'s wait `token` for the round `among` names out, if it still waits:
    /// its time ran out.
    pub(crate) fn expire_round(
        &self,
        among: &Among,
        rank: u32,
        token: u64,
    ) -> Option<Deliver<Pieces>> {
        let mut inner = lock(&self.inner);
        let round = inner.rounds.get_mut(&among.key())?;
        let member = round.members.iter().position(|m| *m == rank)?;
        let at = round.waiters.iter().position(|(r, reply, t)| {
            *r == member && *t == token && matches!(reply, Reply::Deliver(_))
        })?;
        match round.waiters.swap_remove(at).1 {
            Reply::Deliver(deliver) => Some(deliver),
            Reply::Channel(_) => None,
        }
    }

    /// Enters rank `rank` in the round `among` names: its share at once if it completes the
    /// round, else `None` and `reply` waits for it.
    fn enter(
        &self,
        rank: u32,
        among: Among,
        collective: Collective,
        contribution: Pieces,
        token: u64,
        reply: impl FnOnce() -> Reply<Pieces>,
    ) -> Result<Option<Pieces>, Broken> {
        {
            let mut inner = lock(&self.inner);
            if let Some(why) = &inner.broken {
                return Err(why.clone());
            }
            let Some(member) = among.members.iter().position(|m| *m == rank) else {
                return Err(format!(
                    "rank {rank} called {} in a communicator it is not in",
                    collective.describe()
                ));
            };
            if let Some(gone) = among.members.iter().find(|m| inner.ended[**m as usize]) {
                return Err(format!(
                    "rank {gone} has ended, so {} can never complete",
                    collective.describe()
                ));
            }
            let key = among.key();
            let misplaced = match inner.rounds.get(&key) {
                Some(round) if !round.collective.same_as(&collective) => Some(format!(
                    "rank {rank} called {} where rank {} called {}: every rank must call the \
                     same collectives in the same order",
                    collective.describe(),
                    round.first,
                    round.collective.describe()
                )),
                Some(round) if round.members != among.members => Some(format!(
                    "rank {rank} called {} in a communicator of other ranks than rank {}'s",
                    collective.describe(),
                    round.first
                )),
                Some(round) if round.contributions[member].is_some() => Some(format!(
                    "rank {rank} entered the same {} twice",
                    collective.describe()
                )),
                _ => None,
            };
            if let Some(why) = misplaced {
                return Err(self.break_and_tell(inner, why));
            }
            let size = among.members.len();
            let round = inner.rounds.entry(key).or_insert_with(|| Round {
                collective: collective.clone(),
                members: among.members.clone(),
                first: rank,
                contributions: vec![None; size],
                arrived: 0,
                waiters: Vec::new(),
            });
            round.contributions[member] = Some(contribution);
            round.arrived += 1;
            if round.arrived < size {
                round.waiters.push((member, reply(), token));
                return Ok(None);
            }
            let round = inner.rounds.remove(&key).expect("the round just entered");
            // A split's new communicators get their contexts now, under the lock.
            let contexts = match round.collective {
                Collective::Split => match Self::allocate_contexts(&mut inner, &round) {
                    Ok(contexts) => Some(contexts),
                    Err(why) => return Err(self.break_and_tell(inner, why)),
                },
                _ => None,
            };
            drop(inner);
            self.complete(round, member, contexts).map(Some)
        }
    }

    /// A context for each color of a split round that makes a communicator, by color.
    fn allocate_contexts(inner: &mut Inner, round: &Round) -> Result<BTreeMap<i32, u32>, Broken> {
        let mut contexts = BTreeMap::new();
        for contribution in round.contributions.iter().flatten() {
            if let Some((color, _)) = super::collective::split_request(contribution)
                && color >= 0
            {
                contexts.entry(color).or_insert(0);
            }
        }
        for context in contexts.values_mut() {
            // Guests hold a context as a positive i32.
            if inner.next_context > i32::MAX as u32 {
                return Err("the world has made every communicator it can".into());
            }
            *context = inner.next_context;
            inner.next_context += 1;
        }
        Ok(contexts)
    }

    /// Communicator `context`'s world ranks, if the world has it.
    pub(crate) fn members_of(&self, context: u32) -> Option<Arc<[u32]>> {
        lock(&self.inner).contexts.get(&context).cloned()
    }

    /// Keeps the communicators a split made (each member's share: context, size, ranks).
    fn keep_made(&self, shares: &[Pieces]) {
        let mut inner = lock(&self.inner);
        for piece in shares.iter().filter_map(|share| share.first()) {
            let words: Vec<u32> = piece
                .chunks_exact(4)
                .map(|w| u32::from_le_bytes(w.try_into().expect("four bytes")))
                .collect();
            if let [context, _, members @ ..] = &words[..]
                && *context != 0
            {
                inner
                    .contexts
                    .entry(*context)
                    .or_insert_with(|| members.into());
            }
        }
    }

    /// Works out every member's share of a round all have entered (outside the world's lock:
    /// a reduction may be long) and hands the waiting ones theirs; `member`'s own is
    /// returned.
    fn complete(
        &self,
        round: Round,
        member: usize,
        contexts: Option<BTreeMap<i32, u32>>,
    ) -> Result<Pieces, Broken> {
        let contributions = round.contributions.into_iter().flatten().collect();
        let shares = match contexts {
            Some(contexts) => {
                let made =
                    super::collective::split_shares(&round.members, contributions, &contexts);
                if let Ok(shares) = &made {
                    self.keep_made(shares);
                }
                made
            }
            None => round.collective.shares(contributions),
        };
        let mut shares = match shares {
            Ok(shares) => shares,
            Err(why) => {
                for (_, reply, _) in round.waiters {
                    reply.broken(&why, None);
                }
                return Err(self.break_and_tell(lock(&self.inner), why));
            }
        };
        for (waiter, reply, _) in round.waiters {
            let _ = reply.send(std::mem::take(&mut shares[waiter]));
        }
        Ok(std::mem::take(&mut shares[member]))
    }

    /// Rank `rank` calls `MPI_Finalize`. Rank 0's returns once every other rank's call has
    /// ended (the world's call ends with all of its ranks), or with why the world broke.
    pub(crate) async fn finalize(&self, rank: u32) -> Result<(), Broken> {
        let waiting = {
            let mut inner = lock(&self.inner);
            if let Some(why) = &inner.broken {
                return Err(why.clone());
            }
            inner.finalized[rank as usize] = true;
            if rank != 0 || inner.ended[1..].iter().all(|e| *e) {
                return Ok(());
            }
            let (reply, waiting) = oneshot::channel();
            inner.rank0_waits = Some(reply);
            waiting
        };
        waiting
            .await
            .unwrap_or_else(|_| Err("the MPI world ended while rank 0 waited".into()))
    }

    /// Rank `rank` joins (its `MPI_Init`). A rank that joins twice (its call run a second
    /// time) breaks the world: it would enter every round again.
    pub(crate) fn join(&self, rank: u32) -> Result<(), Broken> {
        let mut inner = lock(&self.inner);
        if let Some(why) = &inner.broken {
            return Err(why.clone());
        }
        if !std::mem::replace(&mut inner.joined[rank as usize], true) {
            return Ok(());
        }
        let why = format!("rank {rank} joined the world twice (its call ran again)");
        Err(self.break_and_tell(inner, why))
    }

    /// Rank `rank` runs as call `call_id`.
    pub(crate) fn rank_is(&self, rank: u32, call_id: u64) {
        lock(&self.inner).ranks[rank as usize].call_id = call_id;
    }

    /// Every rank: its call, and how it ended (RUNNING if it has not).
    pub(crate) fn ranks(&self) -> Vec<MpiRank> {
        lock(&self.inner).ranks.clone()
    }

    /// A rank's call ended, as `ended` says. A rank that fails, or ends without
    /// `MPI_Finalize`, breaks the world. Returns whether every rank has ended.
    pub(crate) fn rank_ended(&self, ended: MpiRank) -> bool {
        let rank = ended.rank;
        let failed = (ended.status != CallStatus::Success as i32).then(|| ended.error.clone());
        let failed = failed.as_deref();
        let mut inner = lock(&self.inner);
        // A report of another call than the one known to be the rank (a stale one) is not
        // its end.
        let known = inner.ranks[rank as usize].call_id;
        let stale = known != 0 && ended.call_id != 0 && ended.call_id != known;
        if inner.ended[rank as usize] || stale {
            return inner.ended.iter().all(|e| *e);
        }
        inner.ended[rank as usize] = true;
        inner.ranks[rank as usize] = ended;
        let mut told = None;
        if inner.broken.is_none() {
            let why = match failed {
                Some(why) => Some(format!("rank {rank} failed: {why}")),
                None if !inner.finalized[rank as usize] => {
                    Some(format!("rank {rank} ended without calling MPI_Finalize"))
                }
                None => None,
            };
            let why = why.or_else(|| Self::left_waiting(&inner, rank));
            if let Some(why) = why {
                told = Some(self.break_locked(&mut inner, why));
            }
        }
        if inner.ended[1..].iter().all(|e| *e)
            && let Some(rank0) = inner.rank0_waits.take()
        {
            let _ = rank0.send(Ok(()));
        }
        let all = inner.ended.iter().all(|e| *e);
        drop(inner);
        if let Some(told) = told {
            told.tell();
        }
        if all {
            self.all_ended.notify_waiters();
        }
        all
    }

    /// Waits, up to `patience`, until every rank's call has ended (a broken world's ranks
    /// are being stopped): then the world's record says how each ended.
    pub(crate) async fn every_rank_ended(&self, patience: std::time::Duration) {
        let deadline = tokio::time::Instant::now() + patience;
        loop {
            let ended = self.all_ended.notified();
            tokio::pin!(ended);
            // Registered before looking, so an end in between still wakes it.
            ended.as_mut().enable();
            if lock(&self.inner).ended.iter().all(|e| *e) {
                return;
            }
            if tokio::time::timeout_at(deadline, ended).await.is_err() {
                return;
            }
        }
    }

    /// Ranks `ranks` could not be started (`why`): the world ends, and they count as ended.
    pub(crate) fn never_started(&self, ranks: std::ops::Range<u32>, why: &str) {
        let mut inner = lock(&self.inner);
        for rank in ranks {
            inner.ended[rank as usize] = true;
            let listed = &mut inner.ranks[rank as usize];
            listed.status = CallStatus::Failed as i32;
            listed.error = why.to_string();
        }
        self.break_and_tell(inner, why.to_string());
    }

    /// Rank `rank` called `MPI_Abort(code)`: the world ends, and every rank with it exits
    /// with `code`.
    pub(crate) fn abort(&self, rank: u32, code: i32) {
        let mut inner = lock(&self.inner);
        if inner.broken.is_none() {
            inner.aborted = Some(code);
            let why = format!("rank {rank} called MPI_Abort with code {code}");
            self.break_and_tell(inner, why);
        }
    }

    /// The code of the `MPI_Abort` that ended the world, if one did.
    pub(crate) fn abort_code(&self) -> Option<i32> {
        lock(&self.inner).aborted
    }

    /// Why ranks still waiting can never go on now that `rank` has ended, if they cannot: a
    /// collective it did not enter, a receive from it alone, or a receive from any rank when
    /// every other rank has ended.
    fn left_waiting(inner: &Inner, rank: u32) -> Option<Broken> {
        if let Some(round) = inner.rounds.values().find(|round| {
            let member = round.members.iter().position(|m| *m == rank);
            member.is_some_and(|member| round.contributions[member].is_none())
        }) {
            return Some(format!(
                "rank {rank} ended without entering the {} that rank {} waits in",
                round.collective.describe(),
                round.first
            ));
        }
        // Whether no member but `at` of communicator `context` is left to send.
        let alone = |at: usize, context: u32| match inner.contexts.get(&context) {
            Some(members) => members
                .iter()
                .all(|m| inner.ended[*m as usize] || *m as usize == at),
            None => inner.ended.iter().enumerate().all(|(r, e)| *e || r == at),
        };
        let waiting = inner.waiting.iter().enumerate().find(|(at, receive)| {
            receive.as_ref().is_some_and(|r| {
                let from_it = r.matching.source == Some(rank);
                let from_anyone = r.matching.source.is_none() && alone(*at, r.matching.context);
                (from_it || from_anyone) && !r.reply.is_closed()
            })
        });
        waiting.map(
            |(at, receive)| match receive.as_ref().and_then(|r| r.matching.source) {
                Some(_) => {
                    format!("rank {rank} ended while rank {at} waited for a message from it")
                }
                None => format!(
                    "rank {rank} ended while rank {at} waited for a message from any rank, and no \
                 other rank is left to send one"
                ),
            },
        )
    }

    /// Breaks the world (unless it broke already), unlocks it, and tells the ranks waiting in
    /// it why; returns why.
    fn break_and_tell(&self, mut inner: MutexGuard<'_, Inner>, why: Broken) -> Broken {
        if inner.broken.is_some() {
            return why;
        }
        let told = self.break_locked(&mut inner, why.clone());
        drop(inner);
        told.tell();
        why
    }

    /// Breaks the world: the ranks waiting in it are to be told (once it is unlocked).
    fn break_locked(&self, inner: &mut Inner, why: Broken) -> Told {
        tracing::info!(world = self.id, reason = %why, "MPI world broken");
        let receives = inner.waiting.iter_mut().filter_map(Option::take);
        let receives = receives.map(|receive| receive.reply).collect();
        let rounds = inner.rounds.drain().flat_map(|(_, round)| round.waiters);
        let rounds = rounds.map(|(_, reply, _)| reply).collect();
        if let Some(rank0) = inner.rank0_waits.take() {
            let _ = rank0.send(Err(why.clone()));
        }
        inner.broken = Some(why.clone());
        Told {
            why,
            abort_code: inner.aborted,
            receives,
            rounds,
        }
    }
}

/// The ranks a broken world must tell why, told once the world is unlocked (what a rank runs
/// as it hears may end its call, which reports to the world).
#[must_use]
struct Told {
    why: Broken,
    abort_code: Option<i32>,
    receives: Vec<Reply<Message>>,
    rounds: Vec<Reply<Pieces>>,
}

impl Told {
    fn tell(self) {
        for reply in self.receives {
            reply.broken(&self.why, self.abort_code);
        }
        for reply in self.rounds {
            reply.broken(&self.why, self.abort_code);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(source: u32, tag: i32, data: &'static [u8]) -> Message {
        Message {
            source,
            tag,
            context: WORLD_CONTEXT,
            data: Bytes::from_static(data),
        }
    }

    /// The world's `seq`-th collective in `MPI_COMM_WORLD`.
    fn whole(world: &World, seq: u64) -> Among {
        Among {
            context: WORLD_CONTEXT,
            seq,
            members: (0..world.size).collect(),
        }
    }

    fn from(source: Option<u32>, tag: Option<i32>) -> Matching {
        Matching {
            source,
            tag,
            context: WORLD_CONTEXT,
        }
    }

    fn ended(rank: u32, failed: Option<&str>) -> MpiRank {
        MpiRank {
            rank,
            status: match failed {
                None => CallStatus::Success,
                Some(_) => CallStatus::Failed,
            } as i32,
            error: failed.unwrap_or_default().into(),
            ..MpiRank::default()
        }
    }

    #[tokio::test]
    async fn communicators_keep_their_messages_and_rounds_apart() {
        let world = World::new(1, 3, 1 << 20);
        // A message of another communicator is not one a world receive takes.
        let other = Message {
            context: 20,
            ..message(0, 5, b"other")
        };
        world.send(1, other).unwrap();
        world.send(1, message(0, 5, b"world")).unwrap();
        let got = world.receive(1, from(None, None), true).await.unwrap();
        assert_eq!(&got.data[..], b"world");
        let theirs = Matching {
            context: 20,
            ..from(Some(0), None)
        };
        assert_eq!(
            &world.receive(1, theirs, true).await.unwrap().data[..],
            b"other"
        );
        // A round of ranks 2 and 0 (in that order) completes without rank 1; its root is
        // its rank 0, world rank 2.
        let pair = Among {
            context: 20,
            seq: 0,
            members: [2, 0].into(),
        };
        let bcast = Collective::Bcast { root: 0 };
        let waiting = {
            let (world, pair, bcast) = (Arc::new(world), pair.clone(), bcast.clone());
            let answer = {
                let (world, pair) = (world.clone(), pair.clone());
                tokio::spawn(async move { world.collective(0, pair, bcast, vec![]).await })
            };
            let root = vec![Bytes::from_static(b"from 2")];
            let own = world.collective(2, pair.clone(), Collective::Bcast { root: 0 }, root);
            assert_eq!(&own.await.unwrap()[0][..], b"from 2");
            // Rank 1 is in no round of that communicator.
            let outside = world.collective(1, pair, Collective::Barrier, vec![]).await;
            assert!(outside.unwrap_err().contains("not in"));
            answer
        };
        assert_eq!(&waiting.await.unwrap().unwrap()[0][..], b"from 2");
    }

    #[tokio::test]
    async fn messages_match_by_source_and_tag_in_the_order_sent() {
        let world = World::new(1, 3, 1 << 20);
        world.send(2, message(0, 7, b"a")).unwrap();
        world.send(2, message(1, 7, b"b")).unwrap();
        world.send(2, message(0, 8, b"c")).unwrap();
        world.send(2, message(0, 7, b"d")).unwrap();
        let got = world
            .receive(2, from(Some(0), Some(8)), true)
            .await
            .unwrap();
        assert_eq!(&got.data[..], b"c");
        let got = world.receive(2, from(Some(1), None), true).await.unwrap();
        assert_eq!(&got.data[..], b"b");
        let peeked = world.receive(2, from(None, Some(7)), false).await.unwrap();
        assert_eq!(&peeked.data[..], b"a");
        for expected in [b"a", b"d"] {
            let got = world
                .receive(2, from(Some(0), Some(7)), true)
                .await
                .unwrap();
            assert_eq!(&got.data[..], expected);
        }
    }

    #[tokio::test]
    async fn messages_not_yet_received_are_bounded() {
        let world = World::new(1, 2, 8);
        world.send(1, message(0, 0, b"12345")).unwrap();
        let err = world.send(1, message(0, 0, b"6789")).unwrap_err();
        assert!(
            err.starts_with("a message of 4 bytes to rank 1 would take"),
            "{err}"
        );
        world.receive(1, from(None, None), true).await.unwrap();
        world.send(1, message(0, 0, b"6789")).unwrap();
    }

    #[tokio::test]
    async fn a_waiting_receive_gets_the_message_sent_after_it() {
        let world = std::sync::Arc::new(World::new(1, 2, 1 << 20));
        let waiting = {
            let world = world.clone();
            tokio::spawn(async move { world.receive(1, from(Some(0), None), true).await })
        };
        tokio::task::yield_now().await;
        world.send(1, message(1, 0, b"not for it")).unwrap();
        world.send(1, message(0, 3, b"for it")).unwrap();
        let got = waiting.await.unwrap().unwrap();
        assert_eq!((&got.data[..], got.tag), (&b"for it"[..], 3));
        let left = world.receive(1, from(None, None), true).await.unwrap();
        assert_eq!(&left.data[..], b"not for it");
    }

    #[tokio::test]
    async fn a_failed_rank_wakes_every_waiting_rank_with_its_reason() {
        let world = std::sync::Arc::new(World::new(9, 3, 1 << 20));
        let receive = {
            let world = world.clone();
            tokio::spawn(async move { world.receive(1, from(None, None), true).await })
        };
        let barrier = {
            let world = world.clone();
            tokio::spawn(async move {
                world
                    .collective(2, whole(&world, 0), Collective::Barrier, vec![])
                    .await
            })
        };
        tokio::task::yield_now().await;
        assert!(!world.rank_ended(ended(0, Some("it trapped"))));
        for woken in [
            receive.await.unwrap().map(drop),
            barrier.await.unwrap().map(drop),
        ] {
            assert_eq!(woken.unwrap_err(), "rank 0 failed: it trapped");
        }
        let later = world.send(1, message(2, 0, b"x"));
        assert_eq!(later.unwrap_err(), "rank 0 failed: it trapped");
    }

    #[tokio::test]
    async fn rank_0_finalizes_once_the_other_ranks_have_ended() {
        let world = std::sync::Arc::new(World::new(9, 2, 1 << 20));
        let rank0 = {
            let world = world.clone();
            tokio::spawn(async move { world.finalize(0).await })
        };
        tokio::task::yield_now().await;
        assert!(!rank0.is_finished());
        world.finalize(1).await.unwrap();
        assert!(!world.rank_ended(ended(1, None)));
        rank0.await.unwrap().unwrap();
        assert!(world.rank_ended(ended(0, None)));
    }

    #[test]
    fn a_receive_handed_over_on_the_senders_thread_gets_its_message_or_the_abort() {
        let world = World::new(3, 3, 1 << 20);
        let (delivered, got) = std::sync::mpsc::channel();
        let deliver = |delivered: std::sync::mpsc::Sender<String>| {
            move || -> Deliver<Message> {
                Box::new(move |delivery| {
                    let text = match delivery {
                        Delivery::Ready(m) => String::from_utf8_lossy(&m.data).into_owned(),
                        Delivery::Broken(why, code) => format!("{why} ({code:?})"),
                        Delivery::TimedOut => "timed out".into(),
                    };
                    delivered.send(text).unwrap();
                })
            }
        };
        let waits = world.take_or_deliver(1, from(Some(0), None), 7, deliver(delivered.clone()));
        assert!(waits.unwrap().is_none());
        world.send(1, message(0, 0, b"hello")).unwrap();
        assert_eq!(got.try_recv().unwrap(), "hello");
        // Expired: taken out by its token, once.
        let waits = world.take_or_deliver(1, from(Some(0), None), 8, deliver(delivered.clone()));
        assert!(waits.unwrap().is_none());
        assert!(world.expire(1, 7).is_none());
        world.expire(1, 8).unwrap()(Delivery::TimedOut);
        assert_eq!(got.try_recv().unwrap(), "timed out");
        // Broken by an abort while it waits: the code comes with the reason.
        let waits = world.take_or_deliver(2, from(None, None), 9, deliver(delivered));
        assert!(waits.unwrap().is_none());
        world.abort(0, 7);
        assert_eq!(
            got.try_recv().unwrap(),
            "rank 0 called MPI_Abort with code 7 (Some(7))"
        );
    }

    #[test]
    fn a_rounds_share_is_handed_over_by_the_rank_that_completes_it() {
        let world = World::new(3, 2, 1 << 20);
        let (delivered, got) = std::sync::mpsc::channel();
        let deliver = |delivered: std::sync::mpsc::Sender<String>| {
            move || -> Deliver<Pieces> {
                Box::new(move |delivery| {
                    let text = match delivery {
                        Delivery::Ready(share) => format!("{} pieces", share.len()),
                        Delivery::Broken(why, _) => why,
                        Delivery::TimedOut => "timed out".into(),
                    };
                    delivered.send(text).unwrap();
                })
            }
        };
        let bcast = Collective::Bcast { root: 1 };
        let entered = world.enter_or_deliver(
            0,
            whole(&world, 0),
            bcast.clone(),
            vec![],
            1,
            deliver(delivered.clone()),
        );
        assert!(entered.unwrap().is_none());
        let root = vec![Bytes::from_static(b"x")];
        let own = world.enter_or_deliver(
            1,
            whole(&world, 0),
            bcast.clone(),
            root,
            2,
            deliver(delivered.clone()),
        );
        assert_eq!(own.unwrap().unwrap().len(), 1);
        assert_eq!(got.try_recv().unwrap(), "1 pieces");
        // A wait whose time runs out is taken out by its token.
        let entered =
            world.enter_or_deliver(0, whole(&world, 1), bcast, vec![], 3, deliver(delivered));
        assert!(entered.unwrap().is_none());
        assert!(world.expire_round(&whole(&world, 1), 0, 4).is_none());
        world.expire_round(&whole(&world, 1), 0, 3).unwrap()(Delivery::TimedOut);
        assert_eq!(got.try_recv().unwrap(), "timed out");
    }

    #[tokio::test]
    async fn a_rank_that_ends_normally_wakes_whoever_waits_for_it_alone() {
        let world = std::sync::Arc::new(World::new(9, 3, 1 << 20));
        let receive = {
            let world = world.clone();
            tokio::spawn(async move { world.receive(2, from(Some(1), None), true).await })
        };
        tokio::task::yield_now().await;
        world.finalize(1).await.unwrap();
        world.rank_ended(ended(1, None));
        let err = receive.await.unwrap().unwrap_err();
        assert_eq!(
            err,
            "rank 1 ended while rank 2 waited for a message from it"
        );
    }

    #[test]
    fn a_rank_that_joins_or_enters_a_round_twice_breaks_the_world() {
        let world = World::new(3, 2, 1 << 20);
        world.join(1).unwrap();
        let err = world.join(1).unwrap_err();
        assert_eq!(err, "rank 1 joined the world twice (its call ran again)");
        let world = World::new(4, 2, 1 << 20);
        let first = world.enter(0, whole(&world, 0), Collective::Barrier, vec![], 1, || {
            Reply::Deliver(Box::new(|_| {}))
        });
        assert!(first.unwrap().is_none());
        let again = world.enter(0, whole(&world, 0), Collective::Barrier, vec![], 2, || {
            Reply::Deliver(Box::new(|_| {}))
        });
        assert_eq!(
            again.unwrap_err(),
            "rank 0 entered the same MPI_Barrier twice"
        );
    }

    #[test]
    fn a_second_wait_of_one_rank_is_refused_not_dropped() {
        let world = World::new(5, 2, 1 << 20);
        let deliver = || -> Deliver<Message> { Box::new(|_| {}) };
        let first = world.take_or_deliver(1, from(None, None), 1, deliver);
        assert!(first.unwrap().is_none());
        let second = world.take_or_deliver(1, from(None, None), 2, deliver);
        assert_eq!(
            second.unwrap_err(),
            "rank 1 is waiting for a message already"
        );
    }

    #[tokio::test]
    async fn a_receive_from_any_rank_ends_once_no_other_rank_is_left() {
        let world = std::sync::Arc::new(World::new(9, 2, 1 << 20));
        let receive = {
            let world = world.clone();
            tokio::spawn(async move { world.receive(0, from(None, None), true).await })
        };
        tokio::task::yield_now().await;
        world.finalize(1).await.unwrap();
        world.rank_ended(ended(1, None));
        let err = receive.await.unwrap().unwrap_err();
        assert!(err.contains("no other rank is left to send one"), "{err}");
    }

    #[test]
    fn a_report_of_another_call_is_not_the_ranks_end() {
        let world = World::new(9, 2, 1 << 20);
        world.rank_is(1, 77);
        let stale = MpiRank {
            call_id: 76,
            ..ended(1, Some("an old run"))
        };
        world.rank_ended(stale);
        assert!(world.ranks()[1].status == CallStatus::Running as i32);
        world.rank_ended(MpiRank {
            call_id: 77,
            ..ended(1, None)
        });
        assert!(world.ranks()[1].status == CallStatus::Success as i32);
    }

    #[tokio::test]
    async fn a_rank_that_ends_without_finalizing_breaks_the_world() {
        let world = World::new(9, 2, 1 << 20);
        world.rank_ended(ended(1, None));
        let finalized = world.finalize(0).await;
        assert_eq!(
            finalized.unwrap_err(),
            "rank 1 ended without calling MPI_Finalize"
        );
    }

    #[tokio::test]
    async fn ranks_calling_different_collectives_break_the_world() {
        let world = std::sync::Arc::new(World::new(9, 2, 1 << 20));
        let barrier = {
            let world = world.clone();
            tokio::spawn(async move {
                world
                    .collective(0, whole(&world, 0), Collective::Barrier, vec![])
                    .await
            })
        };
        tokio::task::yield_now().await;
        let bcast = Collective::Bcast { root: 0 };
        let err = world
            .collective(1, whole(&world, 0), bcast, vec![])
            .await
            .unwrap_err();
        assert!(
            err.contains("rank 1 called MPI_Bcast where rank 0 called MPI_Barrier"),
            "{err}"
        );
        assert_eq!(barrier.await.unwrap().unwrap_err(), err);
    }
}
