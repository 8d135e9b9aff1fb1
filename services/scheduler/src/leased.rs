//! Call ids handed out in blocks (placement leases), until the calls given them are recorded.
//! A gateway or executor records the calls it starts from a lease in batches, after sending
//! them on, so the table may hear of such a call late: its executor's report may even come
//! first. Knowing which ids are out tells "not recorded yet" from "unknown"; knowing which of
//! them were recorded keeps a batch sent twice from recording a call twice, and gives the
//! places a lease reserved in a call tree's limit back for the ids it never used.

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use fwasm_proto::pb::CallResult;

/// Most ids in one lease (the width of a block's record of recorded ids).
pub(crate) const MAX_IDS: u64 = 64;

#[derive(Default)]
pub(crate) struct LeasedIds {
    /// Blocks by their first id. Ids grow with time and every block is open as long, so the
    /// first block is always the first to close.
    blocks: BTreeMap<u64, Block>,
    /// Reports of calls not recorded yet (the first for each), each kept while its block is
    /// open.
    early: HashMap<u64, (CallResult, Instant)>,
}

struct Block {
    len: u64,
    /// When its calls must be recorded by.
    until: Instant,
    /// For chained calls: the root of the tree whose limit the block was reserved from (0:
    /// each call is a root).
    root: u64,
    /// Which of its ids were recorded, by offset.
    recorded: u64,
}

/// A place in a tree's limit a closed block reserved and never used.
pub(crate) struct Unused {
    pub(crate) root: u64,
    pub(crate) places: u64,
}

impl LeasedIds {
    /// Hands out `len` (at most [`MAX_IDS`]) ids from `first`, whose calls are recorded by
    /// `until` or never; `root`: the tree they belong to, or 0 for calls from outside.
    pub(crate) fn lease(&mut self, first: u64, len: u64, until: Instant, root: u64) {
        debug_assert!(len <= MAX_IDS);
        let block = Block {
            len: len.min(MAX_IDS),
            until,
            root,
            recorded: 0,
        };
        self.blocks.insert(first, block);
    }

    /// The open block `id` was given out in, with `id`'s offset in it.
    fn block(&self, id: u64) -> Option<(&Block, u64)> {
        let now = Instant::now();
        let (first, block) = self.blocks.range(..=id).next_back()?;
        let offset = id - first;
        (offset < block.len && block.until > now).then_some((block, offset))
    }

    pub(crate) fn is_out(&self, id: u64) -> bool {
        self.block(id).is_some()
    }

    /// Marks `id` recorded: the root of its tree (`id` itself for a call from outside), or
    /// `None` if `id` is not out or was recorded already.
    pub(crate) fn take_for_record(&mut self, id: u64) -> Option<u64> {
        let now = Instant::now();
        let (first, block) = self.blocks.range_mut(..=id).next_back()?;
        let offset = id - first;
        let bit = 1u64.checked_shl(offset as u32)?;
        if offset >= block.len || block.until <= now || block.recorded & bit != 0 {
            return None;
        }
        block.recorded |= bit;
        Some(if block.root == 0 { id } else { block.root })
    }

    /// Keeps the report of a leased call that is not recorded yet (the first one only, as for
    /// recorded calls); false if `result.id` is not out in a lease.
    pub(crate) fn hold_early(&mut self, result: &CallResult) -> bool {
        let Some((block, _)) = self.block(result.id) else {
            return false;
        };
        let until = block.until;
        self.early
            .entry(result.id)
            .or_insert_with(|| (result.clone(), until));
        true
    }

    /// The report that came before call `id` was recorded.
    pub(crate) fn take_early(&mut self, id: u64) -> Option<CallResult> {
        if self.early.is_empty() {
            return None;
        }
        self.early.remove(&id).map(|(result, _)| result)
    }

    /// Closes the blocks past their time, with the reports held for them; returns the places
    /// in trees' limits the closed blocks reserved and never used.
    pub(crate) fn close_past(&mut self, now: Instant) -> Vec<Unused> {
        let mut unused = Vec::new();
        while let Some(entry) = self.blocks.first_entry() {
            if entry.get().until > now {
                break;
            }
            let block = entry.remove();
            let places = block.len - u64::from(block.recorded.count_ones());
            if block.root != 0 && places > 0 {
                unused.push(Unused {
                    root: block.root,
                    places,
                });
            }
        }
        if !self.early.is_empty() {
            self.early.retain(|_, (_, until)| *until > now);
        }
        unused
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn ids_are_out_until_their_deadline_and_recorded_once() {
        let mut leased = LeasedIds::default();
        let now = Instant::now();
        leased.lease(10, 10, now + Duration::from_secs(60), 0);
        leased.lease(20, 10, now, 0);
        leased.lease(30, 10, now + Duration::from_secs(60), 7);
        assert!(leased.is_out(10) && leased.is_out(19));
        assert!(!leased.is_out(9) && !leased.is_out(20), "past its deadline");
        assert_eq!(leased.take_for_record(12), Some(12));
        assert_eq!(leased.take_for_record(12), None, "recorded already");
        assert_eq!(leased.take_for_record(31), Some(7));
        assert_eq!(leased.take_for_record(22), None);

        let result = |id, error: &str| CallResult {
            id,
            error: error.into(),
            ..CallResult::default()
        };
        assert!(leased.hold_early(&result(15, "first")));
        assert!(leased.hold_early(&result(15, "second")));
        assert!(!leased.hold_early(&result(25, "")));
        assert_eq!(leased.take_early(15), Some(result(15, "first")));
        assert_eq!(leased.take_early(15), None);
    }

    #[test]
    fn a_closed_block_gives_back_the_tree_places_it_did_not_use() {
        let mut leased = LeasedIds::default();
        let now = Instant::now();
        // Deadlines far off, and closed by telling the time: no wait on the clock.
        let until = now + Duration::from_secs(60);
        leased.lease(100, 64, until, 7);
        leased.lease(200, 8, until, 0);
        leased.lease(300, 4, until + Duration::from_secs(60), 9);
        for id in [100, 101, 163] {
            leased.take_for_record(id).unwrap();
        }
        let unused = leased.close_past(until);
        let unused: Vec<(u64, u64)> = unused.iter().map(|u| (u.root, u.places)).collect();
        assert_eq!(
            unused,
            [(7, 61)],
            "calls from outside reserve nothing; 300 is open"
        );
        assert!(!leased.blocks.contains_key(&100) && leased.is_out(300));
    }
}
