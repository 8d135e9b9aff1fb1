//! Group commit for the embedded store: one writer thread applies every write queued while the
//! previous commit was on disk in one redb transaction, so concurrent writers share one fsync
//! instead of taking turns at one each. Each write is acknowledged only after its transaction
//! is durable.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::mpsc;
use std::thread::JoinHandle;

use redb::{Database, WriteTransaction};
use tokio::sync::oneshot;

use crate::backend::BackendError;

/// A write applied inside a transaction it shares with other writes. It must return a refusal
/// (any error but [`BackendError::Storage`]) before it writes anything, so that the writes
/// batched with it still commit. A storage error aborts the whole batch.
pub type Write = Box<dyn FnOnce(&WriteTransaction) -> Result<(), BackendError> + Send>;

/// Most writes, and most bytes written, one transaction takes (a batch always takes its first
/// write), so one commit never holds back the queue for long or builds a huge transaction.
const MAX_BATCH: usize = 1024;
const MAX_BATCH_BYTES: usize = 64 << 20;

struct Queued {
    write: Write,
    bytes: usize,
    done: oneshot::Sender<Result<(), BackendError>>,
}

/// The queue in front of the writer thread. Dropping it lets the thread finish what is queued
/// and waits for it, so no write is under way once this is gone.
pub struct GroupCommit {
    queue: Option<mpsc::Sender<Queued>>,
    writer: Option<JoinHandle<()>>,
    #[cfg(test)]
    transactions: Arc<std::sync::atomic::AtomicUsize>,
}

impl GroupCommit {
    pub fn start(db: Arc<Database>) -> std::io::Result<Self> {
        let (queue, queued) = mpsc::channel();
        #[cfg(test)]
        let transactions = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        #[cfg(test)]
        let counted = transactions.clone();
        let writer = std::thread::Builder::new()
            .name("fwasm-store-writer".into())
            .spawn(move || {
                run(&db, &queued, || {
                    #[cfg(test)]
                    counted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                })
            })?;
        Ok(Self {
            queue: Some(queue),
            writer: Some(writer),
            #[cfg(test)]
            transactions,
        })
    }

    /// Queues `write`, which writes about `bytes` bytes, for the next transaction at once; the
    /// future answers with what it returned once that transaction is durable.
    pub fn write<T: Send + 'static>(
        &self,
        bytes: usize,
        write: impl FnOnce(&WriteTransaction) -> Result<T, BackendError> + Send + 'static,
    ) -> impl Future<Output = Result<T, BackendError>> + Send + 'static {
        let (done, outcome) = oneshot::channel();
        // What the write returned, handed over once its transaction is durable.
        let returned = Arc::new(std::sync::Mutex::new(None));
        let slot = returned.clone();
        let queued = Queued {
            write: Box::new(move |txn| {
                let value = write(txn)?;
                *slot.lock().unwrap_or_else(|e| e.into_inner()) = Some(value);
                Ok(())
            }),
            bytes,
            done,
        };
        let sent = self.queue.as_ref().map(|queue| queue.send(queued));
        async move {
            if !matches!(sent, Some(Ok(()))) {
                return Err(stopped());
            }
            outcome.await.map_err(|_| stopped())??;
            let value = returned.lock().unwrap_or_else(|e| e.into_inner()).take();
            value.ok_or_else(stopped)
        }
    }
}

impl Drop for GroupCommit {
    fn drop(&mut self) {
        drop(self.queue.take());
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

fn stopped() -> BackendError {
    BackendError::Storage("the embedded store's writer stopped before committing".into())
}

/// Commits batches until the queue closes; `on_batch` runs before each one (tests count them).
fn run(db: &Database, queued: &mpsc::Receiver<Queued>, on_batch: impl Fn()) {
    let mut next = None;
    while let Some(first) = next.take().or_else(|| queued.recv().ok()) {
        let mut bytes = first.bytes;
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            let Ok(write) = queued.try_recv() else { break };
            if bytes + write.bytes > MAX_BATCH_BYTES {
                next = Some(write);
                break;
            }
            bytes += write.bytes;
            batch.push(write);
        }
        on_batch();
        // A panic would be a bug in a write or in redb: its batch is answered as failed (the
        // senders drop) and the writer goes on with the next one.
        if std::panic::catch_unwind(AssertUnwindSafe(|| commit(db, batch))).is_err() {
            tracing::error!("the embedded store's writer panicked; a batch of writes failed");
        }
    }
}

/// Applies `batch` in one transaction, commits it, then answers every write.
fn commit(db: &Database, batch: Vec<Queued>) {
    let txn = match db.begin_write() {
        Ok(txn) => txn,
        Err(err) => return answer_all(batch, &err.to_string()),
    };
    let mut applied = Vec::with_capacity(batch.len());
    let mut broken = None;
    for Queued { write, done, .. } in batch {
        let outcome = match broken {
            // Not applied: the batch is aborted and this write is answered with its failure.
            Some(_) => Ok(()),
            None => write(&txn),
        };
        if let Err(BackendError::Storage(reason)) = &outcome {
            broken = Some(reason.clone());
        }
        applied.push((done, outcome));
    }
    let failure = match broken {
        Some(reason) => {
            drop(txn); // aborts
            Some(reason)
        }
        None => txn.commit().err().map(|err| err.to_string()),
    };
    for (done, outcome) in applied {
        // Once the batch failed, even a refusal is answered with the failure: it may have been
        // decided by a write that is now undone.
        let outcome = match &failure {
            Some(reason) => Err(BackendError::Storage(reason.clone())),
            None => outcome,
        };
        let _ = done.send(outcome);
    }
}

fn answer_all(batch: Vec<Queued>, reason: &str) {
    for queued in batch {
        let _ = queued
            .done
            .send(Err(BackendError::Storage(reason.to_string())));
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use redb::{ReadableDatabase, ReadableTable, TableDefinition};

    use super::*;

    const TABLE: TableDefinition<u64, u64> = TableDefinition::new("t");

    fn put(n: u64) -> Write {
        Box::new(move |txn| {
            let mut table = txn.open_table(TABLE).map_err(storage)?;
            table.insert(n, n).map_err(storage)?;
            Ok(())
        })
    }

    fn storage(err: impl std::fmt::Display) -> BackendError {
        BackendError::Storage(err.to_string())
    }

    /// A writer whose first transaction (writing 0) holds until `go`, so that every write
    /// queued meanwhile lands in the second transaction.
    struct Held {
        // Dropped first, so a failing test lets the held transaction go instead of hanging.
        go: mpsc::Sender<()>,
        writes: GroupCommit,
        db: Arc<Database>,
        _dir: tempfile::TempDir,
    }

    async fn held_writer() -> Held {
        let dir = tempfile::tempdir().unwrap();
        let db = Arc::new(Database::create(dir.path().join("db.redb")).unwrap());
        let writes = GroupCommit::start(db.clone()).unwrap();
        let (go, hold) = mpsc::channel::<()>();
        let (entered, inside) = oneshot::channel();
        let first = writes.write(8, move |txn| {
            entered.send(()).unwrap();
            hold.recv().unwrap();
            put(0)(txn)
        });
        tokio::spawn(async move { first.await.unwrap() });
        inside.await.unwrap();
        Held {
            go,
            writes,
            db,
            _dir: dir,
        }
    }

    impl Held {
        fn stored(&self) -> Vec<u64> {
            let txn = self.db.begin_read().unwrap();
            let table = txn.open_table(TABLE).unwrap();
            let entries = table.iter().unwrap();
            entries.map(|entry| entry.unwrap().0.value()).collect()
        }

        fn transactions(&self) -> usize {
            self.writes.transactions.load(Ordering::Relaxed)
        }
    }

    #[tokio::test]
    async fn writes_queued_together_share_one_transaction() {
        let held = held_writer().await;
        let pending: Vec<_> = (1..=50).map(|n| held.writes.write(8, put(n))).collect();
        held.go.send(()).unwrap();
        for write in pending {
            write.await.unwrap();
        }
        assert_eq!(held.stored(), (0..=50).collect::<Vec<_>>());
        assert_eq!(held.transactions(), 2);
    }

    #[tokio::test]
    async fn a_batch_stops_at_its_byte_budget() {
        let held = held_writer().await;
        let half = MAX_BATCH_BYTES / 2;
        let pending = [
            held.writes.write(half, put(1)),
            held.writes.write(half, put(2)),
            held.writes.write(half, put(3)),
        ];
        held.go.send(()).unwrap();
        for write in pending {
            write.await.unwrap();
        }
        assert_eq!(held.stored(), vec![0, 1, 2, 3]);
        // The held one, then 1 and 2 (exactly the budget), then 3.
        assert_eq!(held.transactions(), 3);
    }

    #[tokio::test]
    async fn a_refused_write_leaves_the_rest_of_its_batch_alone() {
        let held = held_writer().await;
        let kept = held.writes.write(8, put(1));
        let refused = held
            .writes
            .write(0, |_| Err::<(), _>(BackendError::TooManyKeys { max: 1 }));
        let also_kept = held.writes.write(8, put(2));
        held.go.send(()).unwrap();
        kept.await.unwrap();
        let refusal = refused.await;
        assert!(
            matches!(refusal, Err(BackendError::TooManyKeys { max: 1 })),
            "{refusal:?}"
        );
        also_kept.await.unwrap();
        assert_eq!(held.stored(), vec![0, 1, 2]);
        assert_eq!(held.transactions(), 2);
    }

    #[tokio::test]
    async fn a_storage_failure_aborts_its_batch_and_the_writer_goes_on() {
        let held = held_writer().await;
        let lost = held.writes.write(8, put(1));
        let failing = held.writes.write(8, |txn| {
            put(2)(txn)?;
            Err(BackendError::Storage("disk on fire".into()))
        });
        let skipped = held.writes.write(8, put(3));
        held.go.send(()).unwrap();
        for outcome in [lost.await, failing.await, skipped.await] {
            assert!(
                matches!(&outcome, Err(BackendError::Storage(reason)) if reason == "disk on fire"),
                "{outcome:?}"
            );
        }
        held.writes.write(8, put(4)).await.unwrap();
        assert_eq!(held.stored(), vec![0, 4]);
    }
}
