//! Call ids handed out in blocks (placement leases), until the calls given them are recorded.
//! A gateway records the calls it starts from a lease in batches, after sending them to their
//! executor, so the table may hear of such a call late: its executor's report may even come
//! first. Knowing which ids are out lets the table tell "not recorded yet" from "unknown".

use std::collections::{HashMap, VecDeque};
use std::ops::Range;
use std::time::Instant;

use fwasm_proto::pb::CallResult;

#[derive(Default)]
pub(crate) struct LeasedIds {
    /// Blocks of ids, in the order of the times their calls must be recorded by.
    blocks: VecDeque<Block>,
    /// Reports of calls not recorded yet, each kept until its block's time.
    early: HashMap<u64, (CallResult, Instant)>,
}

struct Block {
    ids: Range<u64>,
    /// When its calls must be recorded by.
    until: Instant,
    /// For chained calls: the root of the tree whose limit the block was reserved from (0:
    /// each call is a root).
    root: u64,
}

impl LeasedIds {
    /// Hands out `ids`, whose calls are recorded by `until` or never; `root`: the tree they
    /// belong to, or 0 for calls from outside.
    pub(crate) fn lease(&mut self, ids: Range<u64>, until: Instant, root: u64) {
        self.forget_past(Instant::now());
        self.blocks.push_back(Block { ids, until, root });
    }

    /// The open block `id` was given out in.
    fn block(&self, id: u64) -> Option<&Block> {
        let now = Instant::now();
        // Newest first: the id asked about is most likely from a recent lease.
        self.blocks
            .iter()
            .rev()
            .find(|block| block.ids.contains(&id) && block.until > now)
    }

    fn deadline(&self, id: u64) -> Option<Instant> {
        self.block(id).map(|block| block.until)
    }

    pub(crate) fn is_out(&self, id: u64) -> bool {
        self.block(id).is_some()
    }

    /// The root of the tree call `id`'s block was reserved from (`id` itself for a call from
    /// outside); `None` if `id` is not out.
    pub(crate) fn root_of(&self, id: u64) -> Option<u64> {
        self.block(id)
            .map(|block| if block.root == 0 { id } else { block.root })
    }

    /// Keeps the report of a leased call that is not recorded yet; false if `result.id` is
    /// not out in a lease.
    pub(crate) fn hold_early(&mut self, result: &CallResult) -> bool {
        let Some(until) = self.deadline(result.id) else {
            return false;
        };
        self.early.insert(result.id, (result.clone(), until));
        true
    }

    /// The report that came before call `id` was recorded.
    pub(crate) fn take_early(&mut self, id: u64) -> Option<CallResult> {
        if self.early.is_empty() {
            return None;
        }
        self.early.remove(&id).map(|(result, _)| result)
    }

    fn forget_past(&mut self, now: Instant) {
        while self.blocks.front().is_some_and(|block| block.until <= now) {
            self.blocks.pop_front();
        }
        if !self.early.is_empty() {
            self.early.retain(|_, (_, until)| *until > now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn ids_are_out_until_their_deadline() {
        let mut leased = LeasedIds::default();
        let now = Instant::now();
        leased.lease(10..20, now + Duration::from_secs(60), 0);
        leased.lease(20..30, now, 0);
        leased.lease(30..40, now + Duration::from_secs(60), 7);
        assert!(leased.is_out(10) && leased.is_out(19));
        assert!(!leased.is_out(9) && !leased.is_out(20), "past its deadline");
        assert_eq!(
            (leased.root_of(12), leased.root_of(31), leased.root_of(22)),
            (Some(12), Some(7), None)
        );
        let result = CallResult {
            id: 15,
            ..CallResult::default()
        };
        assert!(leased.hold_early(&result));
        assert!(!leased.hold_early(&CallResult {
            id: 25,
            ..CallResult::default()
        }));
        assert_eq!(leased.take_early(15), Some(result));
        assert_eq!(leased.take_early(15), None);
    }
}
