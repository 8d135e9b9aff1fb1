//! Collectives as rounds: each rank hands in its contribution (a list of byte pieces), and the
//! last to arrive works out every rank's share at once. A rank's call waits (parked) for its
//! share in one step, however many ranks take part.

use bytes::{Bytes, BytesMut};
use fwasm_proto::pb::{MpiCollectiveKind as Kind, MpiContribution};

use super::reduce::{self, Datatype, Op};

/// What a rank hands in, and what it gets back: byte pieces, in rank order where there is one
/// per rank.
pub(crate) type Pieces = Vec<Bytes>;

#[derive(Debug, Clone)]
pub(crate) enum Collective {
    Barrier,
    /// The root hands in the buffer; every rank gets it.
    Bcast {
        root: u32,
    },
    /// The root hands in one piece per rank; rank i gets piece i.
    Scatter {
        root: u32,
    },
    /// Every rank hands in one piece; the root gets all of them (`MPI_Gather(v)`).
    Gather {
        root: u32,
    },
    /// Every rank hands in one piece; every rank gets all of them (`MPI_Allgather(v)`).
    Allgather,
    /// Every rank hands in one piece per rank; rank i gets every rank's piece i
    /// (`MPI_Alltoall(v)`).
    Alltoall,
    /// Every rank hands in a buffer; the root gets them combined element by element.
    Reduce {
        root: u32,
        op: Op,
        datatype: Datatype,
    },
    Allreduce {
        op: Op,
        datatype: Datatype,
    },
    /// Rank i gets the buffers of ranks 0..=i combined.
    Scan {
        op: Op,
        datatype: Datatype,
    },
    /// The buffers combined, then split: rank i gets `bytes[i]` bytes of it.
    ReduceScatter {
        op: Op,
        datatype: Datatype,
        bytes: Vec<usize>,
    },
    /// New communicators (`MPI_Comm_split`, and what `MPI_Comm_dup` and `MPI_Comm_create`
    /// make with it): every rank hands in its color and key; each gets its communicator (see
    /// [`split_shares`]). The world gives each color its context.
    Split,
    /// `MPI_Win_fence`: every rank hands in its window (see [`fence_shares`]) and the puts
    /// and gets it made since the last fence; each gets the writes into its memory that
    /// complete them.
    Fence,
}

impl Collective {
    /// The MPI function, for messages.
    pub(crate) fn describe(&self) -> &'static str {
        match self {
            Collective::Barrier => "MPI_Barrier",
            Collective::Bcast { .. } => "MPI_Bcast",
            Collective::Scatter { .. } => "MPI_Scatter",
            Collective::Gather { .. } => "MPI_Gather",
            Collective::Allgather => "MPI_Allgather",
            Collective::Alltoall => "MPI_Alltoall",
            Collective::Reduce { .. } => "MPI_Reduce",
            Collective::Allreduce { .. } => "MPI_Allreduce",
            Collective::Scan { .. } => "MPI_Scan",
            Collective::ReduceScatter { .. } => "MPI_Reduce_scatter",
            Collective::Split => "MPI_Comm_split",
            Collective::Fence => "MPI_Win_fence",
        }
    }

    /// Whether two ranks' calls are the same collective (its root and operation too).
    pub(crate) fn same_as(&self, other: &Collective) -> bool {
        use Collective::*;
        match (self, other) {
            (Barrier, Barrier)
            | (Allgather, Allgather)
            | (Alltoall, Alltoall)
            | (Split, Split)
            | (Fence, Fence) => true,
            (Bcast { root: a }, Bcast { root: b })
            | (Scatter { root: a }, Scatter { root: b })
            | (Gather { root: a }, Gather { root: b }) => a == b,
            (
                Reduce {
                    root: a,
                    op: x,
                    datatype: s,
                },
                Reduce {
                    root: b,
                    op: y,
                    datatype: t,
                },
            ) => a == b && x == y && s == t,
            (Allreduce { op: x, datatype: s }, Allreduce { op: y, datatype: t })
            | (Scan { op: x, datatype: s }, Scan { op: y, datatype: t })
            | (
                ReduceScatter {
                    op: x, datatype: s, ..
                },
                ReduceScatter {
                    op: y, datatype: t, ..
                },
            ) => x == y && s == t,
            _ => false,
        }
    }

    /// Every rank's share, from every rank's contribution (in rank order).
    pub(crate) fn shares(&self, contributions: Vec<Pieces>) -> Result<Vec<Pieces>, String> {
        let size = contributions.len();
        let piece = |rank: usize, at: usize| -> Result<Bytes, String> {
            contributions[rank]
                .get(at)
                .cloned()
                .ok_or_else(|| format!("rank {rank} handed {} too few pieces", self.describe()))
        };
        let column = |at: usize| -> Result<Pieces, String> {
            (0..size).map(|rank| piece(rank, at)).collect()
        };
        Ok(match self {
            Collective::Split => return Err("a split's shares are its world's to work out".into()),
            Collective::Fence => fence_shares(&contributions)?,
            Collective::Barrier => vec![Vec::new(); size],
            Collective::Bcast { root } => vec![vec![piece(*root as usize, 0)?]; size],
            Collective::Scatter { root } => {
                let root = *root as usize;
                (0..size)
                    .map(|rank| piece(root, rank).map(|p| vec![p]))
                    .collect::<Result<_, _>>()?
            }
            Collective::Gather { root } => {
                let mut shares = vec![Vec::new(); size];
                shares[*root as usize] = column(0)?;
                shares
            }
            Collective::Allgather => vec![column(0)?; size],
            Collective::Alltoall => (0..size).map(column).collect::<Result<_, _>>()?,
            Collective::Reduce { root, op, datatype } => {
                let mut shares = vec![Vec::new(); size];
                shares[*root as usize] = vec![combine(*op, *datatype, &column(0)?)?];
                shares
            }
            Collective::Allreduce { op, datatype } => {
                vec![vec![combine(*op, *datatype, &column(0)?)?]; size]
            }
            Collective::Scan { op, datatype } => {
                // A running prefix: each rank's share is the one before it combined with its own.
                let mut shares: Vec<Pieces> = Vec::with_capacity(size);
                for buffer in column(0)? {
                    let prefix = match shares.last() {
                        Some(before) => combine(*op, *datatype, &[before[0].clone(), buffer])?,
                        None => buffer,
                    };
                    shares.push(vec![prefix]);
                }
                shares
            }
            Collective::ReduceScatter {
                op,
                datatype,
                bytes,
            } => {
                let combined = combine(*op, *datatype, &column(0)?)?;
                let total = bytes.iter().try_fold(0usize, |sum, n| sum.checked_add(*n));
                if bytes.len() != size || total.is_none_or(|total| total > combined.len()) {
                    return Err(format!(
                        "MPI_Reduce_scatter's counts ask for more than the {} bytes reduced",
                        combined.len()
                    ));
                }
                let mut at = 0;
                bytes
                    .iter()
                    .map(|n| {
                        at += n;
                        vec![combined.slice(at - n..at)]
                    })
                    .collect()
            }
        })
    }
}

impl Collective {
    /// A rank's contribution as it goes to the world's home executor.
    pub(crate) fn contribution(
        &self,
        world_id: u64,
        rank: u32,
        among: &super::world::Among,
        pieces: Pieces,
    ) -> MpiContribution {
        let mut out = MpiContribution {
            world_id,
            rank,
            seq: among.seq,
            context: among.context,
            members: among.members.to_vec(),
            pieces,
            ..MpiContribution::default()
        };
        let reduction = |out: &mut MpiContribution, op: &Op, datatype: &Datatype| {
            out.op = op.id();
            out.datatype_id = datatype.id;
            out.datatype_size = datatype.size;
        };
        let kind = match self {
            Collective::Barrier => Kind::Barrier,
            Collective::Bcast { root } => {
                out.root = *root;
                Kind::Bcast
            }
            Collective::Scatter { root } => {
                out.root = *root;
                Kind::Scatter
            }
            Collective::Gather { root } => {
                out.root = *root;
                Kind::Gather
            }
            Collective::Allgather => Kind::Allgather,
            Collective::Alltoall => Kind::Alltoall,
            Collective::Reduce { root, op, datatype } => {
                out.root = *root;
                reduction(&mut out, op, datatype);
                Kind::Reduce
            }
            Collective::Allreduce { op, datatype } => {
                reduction(&mut out, op, datatype);
                Kind::Allreduce
            }
            Collective::Scan { op, datatype } => {
                reduction(&mut out, op, datatype);
                Kind::Scan
            }
            Collective::ReduceScatter {
                op,
                datatype,
                bytes,
            } => {
                reduction(&mut out, op, datatype);
                out.split = bytes.iter().map(|b| *b as u64).collect();
                Kind::ReduceScatter
            }
            Collective::Split => Kind::Split,
            Collective::Fence => Kind::Fence,
        };
        out.set_kind(kind);
        out
    }

    /// The collective a contribution from another executor is for, checked against a world
    /// of `size` ranks.
    pub(crate) fn of(contribution: &MpiContribution, size: u32) -> Result<Self, String> {
        let root = contribution.root;
        if root >= size {
            return Err(format!("root {root} is not in the world of {size} ranks"));
        }
        let reduction = || -> Result<(Op, Datatype), String> {
            let datatype = Datatype {
                id: contribution.datatype_id,
                size: contribution.datatype_size,
            };
            if datatype.size <= 0 {
                return Err(format!(
                    "datatype {} has size {}",
                    datatype.id, datatype.size
                ));
            }
            Ok((Op::from_id(contribution.op)?, datatype))
        };
        Ok(match contribution.kind() {
            Kind::Unspecified => return Err("a contribution to no collective".into()),
            Kind::Barrier => Collective::Barrier,
            Kind::Split => Collective::Split,
            Kind::Fence => Collective::Fence,
            Kind::Bcast => Collective::Bcast { root },
            Kind::Scatter => Collective::Scatter { root },
            Kind::Gather => Collective::Gather { root },
            Kind::Allgather => Collective::Allgather,
            Kind::Alltoall => Collective::Alltoall,
            Kind::Reduce => {
                let (op, datatype) = reduction()?;
                Collective::Reduce { root, op, datatype }
            }
            Kind::Allreduce => {
                let (op, datatype) = reduction()?;
                Collective::Allreduce { op, datatype }
            }
            Kind::Scan => {
                let (op, datatype) = reduction()?;
                Collective::Scan { op, datatype }
            }
            Kind::ReduceScatter => {
                let (op, datatype) = reduction()?;
                if contribution.split.len() != size as usize {
                    return Err(format!(
                        "MPI_Reduce_scatter's counts name {} ranks of {size}",
                        contribution.split.len()
                    ));
                }
                let bytes = contribution.split.iter().map(|b| *b as usize).collect();
                Collective::ReduceScatter {
                    op,
                    datatype,
                    bytes,
                }
            }
        })
    }
}

/// A rank's contribution to a split: its color and key (two little-endian i32).
pub(crate) fn split_request(contribution: &Pieces) -> Option<(i32, i32)> {
    let piece = contribution.first()?;
    let color = i32::from_le_bytes(piece.get(0..4)?.try_into().ok()?);
    let key = i32::from_le_bytes(piece.get(4..8)?.try_into().ok()?);
    Some((color, key))
}

/// What a split gives each member of the communicator split (`members`: world ranks, in its
/// order): one piece, its new communicator's context and size, then its world ranks in their
/// new order (by key, then by rank in the old), all little-endian u32. A member whose color is
/// negative (`MPI_UNDEFINED`) gets context 0: no communicator. `contexts`: each color's.
pub(crate) fn split_shares(
    members: &[u32],
    contributions: Vec<Pieces>,
    contexts: &std::collections::BTreeMap<i32, u32>,
) -> Result<Vec<Pieces>, String> {
    let mut asked = Vec::with_capacity(contributions.len());
    for (member, contribution) in contributions.iter().enumerate() {
        let (color, key) = split_request(contribution)
            .ok_or_else(|| format!("rank {member} handed MPI_Comm_split no color and key"))?;
        asked.push((color, key, member));
    }
    let mut ordered = asked.clone();
    ordered.sort_by_key(|(color, key, member)| (*color, *key, *member));
    Ok(asked
        .iter()
        .map(|(color, _, _)| {
            let mut share = BytesMut::new();
            match contexts.get(color).filter(|_| *color >= 0) {
                Some(context) => {
                    let group: Vec<u32> = ordered
                        .iter()
                        .filter(|(c, _, _)| c == color)
                        .map(|(_, _, member)| members[*member])
                        .collect();
                    share.extend_from_slice(&context.to_le_bytes());
                    share.extend_from_slice(&(group.len() as u32).to_le_bytes());
                    for rank in group {
                        share.extend_from_slice(&rank.to_le_bytes());
                    }
                }
                None => share.extend_from_slice(&[0; 8]),
            }
            vec![share.freeze()]
        })
        .collect())
}

/// A rank's part in a fence: its window as it is now, where it lies in its memory, and the
/// puts and gets it made since the last fence (targets by rank in the window's communicator).
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct FenceEntry {
    pub(crate) window: Bytes,
    pub(crate) base: u32,
    /// The window's displacement unit: what a displacement into it counts in.
    pub(crate) disp_unit: u32,
    /// Target, displacement in its window (in its unit), bytes.
    pub(crate) puts: Vec<(u32, u32, Bytes)>,
    /// Target, displacement, length, and where the bytes go in this rank's memory.
    pub(crate) gets: Vec<(u32, u32, u32, u32)>,
}

fn word(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

impl FenceEntry {
    /// As a contribution: the window, its base, the puts and the gets (little-endian u32s).
    pub(crate) fn encode(&self) -> Pieces {
        let mut puts = BytesMut::new();
        for (target, offset, bytes) in &self.puts {
            for n in [*target, *offset, bytes.len() as u32] {
                puts.extend_from_slice(&n.to_le_bytes());
            }
            puts.extend_from_slice(bytes);
        }
        let mut gets = BytesMut::new();
        for (target, offset, len, to) in &self.gets {
            for n in [*target, *offset, *len, *to] {
                gets.extend_from_slice(&n.to_le_bytes());
            }
        }
        let at = [self.base.to_le_bytes(), self.disp_unit.to_le_bytes()].concat();
        vec![self.window.clone(), at.into(), puts.freeze(), gets.freeze()]
    }

    fn decode(rank: usize, pieces: &Pieces) -> Result<Self, String> {
        let bad = || format!("rank {rank} handed MPI_Win_fence a malformed part");
        let [window, base, puts, gets] = &pieces[..] else {
            return Err(bad());
        };
        let mut entry = FenceEntry {
            window: window.clone(),
            base: word(base, 0).ok_or_else(bad)?,
            disp_unit: word(base, 4).ok_or_else(bad)?,
            ..FenceEntry::default()
        };
        let mut at = 0;
        while at < puts.len() {
            let (target, offset, len) = (word(puts, at), word(puts, at + 4), word(puts, at + 8));
            let (Some(target), Some(offset), Some(len)) = (target, offset, len) else {
                return Err(bad());
            };
            let bytes = puts.get(at + 12..at + 12 + len as usize).ok_or_else(bad)?;
            entry.puts.push((target, offset, puts.slice_ref(bytes)));
            at += 12 + len as usize;
        }
        for get in gets.chunks(16) {
            let field = |i: usize| word(get, 4 * i).ok_or_else(bad);
            entry
                .gets
                .push((field(0)?, field(1)?, field(2)?, field(3)?));
        }
        Ok(entry)
    }
}

/// Each rank's writes that complete a fence: the puts into its window (in the order of the
/// ranks that made them), then what its gets read (the windows as they were at the fence,
/// before its puts). Each write is one piece: the address in the rank's memory (u32 LE),
/// then the bytes.
pub(crate) fn fence_shares(contributions: &[Pieces]) -> Result<Vec<Pieces>, String> {
    let entries = contributions
        .iter()
        .enumerate()
        .map(|(rank, pieces)| FenceEntry::decode(rank, pieces))
        .collect::<Result<Vec<_>, _>>()?;
    let write = |addr: u32, bytes: &[u8]| {
        let mut piece = BytesMut::with_capacity(4 + bytes.len());
        piece.extend_from_slice(&addr.to_le_bytes());
        piece.extend_from_slice(bytes);
        piece.freeze()
    };
    // The part of `target`'s window at displacement `disp` (in its unit) of `len` bytes,
    // checked, and where it starts.
    let within = |origin: usize, what: &str, target: u32, disp: u32, len: u32| {
        let entry = entries.get(target as usize).ok_or_else(|| {
            format!("rank {origin} {what} rank {target}, which is not in the window's group")
        })?;
        let offset = u64::from(disp) * u64::from(entry.disp_unit);
        let end = offset + u64::from(len);
        if end > entry.window.len() as u64 {
            return Err(format!(
                "rank {origin} {what} bytes {offset}..{end} of rank {target}'s window of {} bytes",
                entry.window.len()
            ));
        }
        Ok((entry, offset as usize..end as usize))
    };
    let mut shares = vec![Vec::new(); entries.len()];
    for (origin, entry) in entries.iter().enumerate() {
        for (target, disp, bytes) in &entry.puts {
            let (into, range) = within(origin, "put into", *target, *disp, bytes.len() as u32)?;
            let at = into.base.wrapping_add(range.start as u32);
            shares[*target as usize].push(write(at, bytes));
        }
    }
    for (origin, entry) in entries.iter().enumerate() {
        for (target, disp, len, to) in &entry.gets {
            let (from, range) = within(origin, "got from", *target, *disp, *len)?;
            shares[origin].push(write(*to, &from.window[range]));
        }
    }
    Ok(shares)
}

/// The buffers combined element by element with `op`.
fn combine(op: Op, datatype: Datatype, buffers: &[Bytes]) -> Result<Bytes, String> {
    let Some((first, rest)) = buffers.split_first() else {
        return Ok(Bytes::new());
    };
    if rest.iter().any(|b| b.len() != first.len()) {
        return Err(format!(
            "ranks reduced buffers of different sizes ({} bytes and {})",
            first.len(),
            rest.iter()
                .find(|b| b.len() != first.len())
                .map_or(0, Bytes::len)
        ));
    }
    let mut into = BytesMut::from(&first[..]);
    for buffer in rest {
        reduce::apply(op, datatype, &mut into, buffer)?;
    }
    Ok(into.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::mpi::Landing;

    fn ints(values: &[i32]) -> Bytes {
        values
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect::<Vec<_>>()
            .into()
    }

    fn asked(color: i32, key: i32) -> Pieces {
        vec![Bytes::from(
            [color.to_le_bytes(), key.to_le_bytes()].concat(),
        )]
    }

    fn words(piece: &Bytes) -> Vec<u32> {
        piece
            .chunks(4)
            .map(|w| u32::from_le_bytes(w.try_into().unwrap()))
            .collect()
    }

    #[test]
    fn a_fence_writes_the_puts_into_their_targets_and_what_each_get_read() {
        let part = |window: &'static [u8], base, puts, gets| {
            FenceEntry {
                window: Bytes::from_static(window),
                base,
                disp_unit: 1,
                puts,
                gets,
            }
            .encode()
        };
        let put =
            |target, offset, bytes: &'static [u8]| (target, offset, Bytes::from_static(bytes));
        // Rank 0 puts "xy" at 1 of rank 1's window (at 500) and gets 2 bytes at 0 of it into
        // its 40; rank 1 puts "z" at 0 of rank 0's (at 100).
        let contributions = vec![
            part(b"aaaa", 100, vec![put(1, 1, b"xy")], vec![(1, 0, 2, 40)]),
            part(b"bbbb", 500, vec![put(0, 0, b"z")], vec![]),
        ];
        let shares = fence_shares(&contributions).unwrap();
        let writes = |rank: usize| -> Vec<(u32, Vec<u8>)> {
            let pieces = Landing::Said.land(shares[rank].clone());
            match pieces {
                crate::host::mpi::MpiDone::Wrote { writes, .. } => {
                    writes.into_iter().map(|(at, b)| (at, b.to_vec())).collect()
                }
                other => panic!("{other:?}"),
            }
        };
        // A get reads the window as it was at the fence, before this epoch's puts.
        assert_eq!(writes(0), [(100, b"z".to_vec()), (40, b"bb".to_vec())]);
        assert_eq!(writes(1), [(501, b"xy".to_vec())]);
        let past = vec![part(b"aaaa", 100, vec![put(0, 3, b"xy")], vec![])];
        assert_eq!(
            fence_shares(&past).unwrap_err(),
            "rank 0 put into bytes 3..5 of rank 0's window of 4 bytes"
        );
        // A displacement counts in the target's unit: 2 units of 2 bytes is byte 4.
        let wide = FenceEntry {
            disp_unit: 2,
            ..FenceEntry::decode(0, &part(b"aaaaaa", 100, vec![], vec![])).unwrap()
        };
        let into_wide = vec![
            wide.encode(),
            part(b"b", 200, vec![put(0, 2, b"zz")], vec![]),
        ];
        let shares = fence_shares(&into_wide).unwrap();
        assert_eq!(&shares[0][0][..], &[104, 0, 0, 0, b'z', b'z']);
        let nobody = vec![part(b"aaaa", 100, vec![], vec![(2, 0, 1, 0)])];
        assert_eq!(
            fence_shares(&nobody).unwrap_err(),
            "rank 0 got from rank 2, which is not in the window's group"
        );
    }

    #[test]
    fn a_split_orders_each_color_by_key_then_rank_and_leaves_out_the_undefined() {
        // World ranks 10..14 of a communicator; colors 1, 0, 1, -1 (MPI_UNDEFINED), 1.
        let members = [10, 11, 12, 13, 14];
        let contributions = vec![
            asked(1, 5),
            asked(0, 0),
            asked(1, 5),
            asked(-1, 0),
            asked(1, 2),
        ];
        let contexts = [(0, 20), (1, 21)].into_iter().collect();
        let shares = split_shares(&members, contributions, &contexts).unwrap();
        // Color 1: key 2 (rank 14) first, then the two of key 5 in their order (10, 12).
        assert_eq!(words(&shares[0][0]), [21, 3, 14, 10, 12]);
        assert_eq!(words(&shares[2][0]), [21, 3, 14, 10, 12]);
        assert_eq!(words(&shares[1][0]), [20, 1, 11]);
        assert_eq!(words(&shares[3][0]), [0, 0]);
        let bad = split_shares(&members[..1], vec![vec![]], &contexts).unwrap_err();
        assert_eq!(bad, "rank 0 handed MPI_Comm_split no color and key");
    }

    #[test]
    fn allreduce_sums_and_scan_sums_the_ranks_up_to_each() {
        let contributions: Vec<Pieces> = (1..=4).map(|r| vec![ints(&[r, 10 * r])]).collect();
        let (op, datatype) = (Op::Sum, Datatype::INT);
        let all = Collective::Allreduce { op, datatype }.shares(contributions.clone());
        assert!(all.unwrap().iter().all(|s| s == &vec![ints(&[10, 100])]));
        let scan = Collective::Scan { op, datatype }
            .shares(contributions)
            .unwrap();
        let firsts: Vec<Bytes> = scan.into_iter().map(|mut s| s.remove(0)).collect();
        assert_eq!(
            firsts,
            [
                ints(&[1, 10]),
                ints(&[3, 30]),
                ints(&[6, 60]),
                ints(&[10, 100])
            ]
        );
    }

    #[test]
    fn alltoall_gives_each_rank_its_column() {
        let contributions: Vec<Pieces> = (0..3)
            .map(|from| (0..3).map(|to| ints(&[10 * from + to])).collect())
            .collect();
        let shares = Collective::Alltoall.shares(contributions).unwrap();
        assert_eq!(shares[2], vec![ints(&[2]), ints(&[12]), ints(&[22])]);
    }

    #[test]
    fn gather_fills_only_the_roots_share_and_scatter_deals_the_roots_pieces() {
        let contributions: Vec<Pieces> = (0..3).map(|r| vec![ints(&[r])]).collect();
        let shares = Collective::Gather { root: 1 }
            .shares(contributions)
            .unwrap();
        assert!(shares[0].is_empty() && shares[2].is_empty());
        assert_eq!(shares[1], vec![ints(&[0]), ints(&[1]), ints(&[2])]);
        let mut contributions: Vec<Pieces> = vec![Vec::new(); 3];
        contributions[2] = vec![ints(&[5]), ints(&[6]), ints(&[7])];
        let shares = Collective::Scatter { root: 2 }
            .shares(contributions)
            .unwrap();
        assert_eq!(shares[0], vec![ints(&[5])]);
    }

    #[test]
    fn a_collective_crosses_to_another_executor_and_back_unchanged() {
        let reduce_scatter = Collective::ReduceScatter {
            op: Op::MinLoc,
            datatype: Datatype { id: 16, size: 16 },
            bytes: vec![16, 32],
        };
        let pieces = vec![ints(&[1, 2])];
        let among = super::super::world::Among {
            context: 1,
            seq: 3,
            members: [0, 1].into(),
        };
        let contribution = reduce_scatter.contribution(7, 1, &among, pieces.clone());
        assert_eq!(
            (contribution.world_id, contribution.rank, contribution.seq),
            (7, 1, 3)
        );
        assert_eq!(contribution.pieces, pieces);
        let back = Collective::of(&contribution, 2).unwrap();
        assert!(back.same_as(&reduce_scatter), "{back:?}");
        let bcast = Collective::Bcast { root: 1 }.contribution(7, 0, &among, vec![]);
        assert!(
            Collective::of(&bcast, 2)
                .unwrap()
                .same_as(&Collective::Bcast { root: 1 })
        );
        assert_eq!(
            Collective::of(&bcast, 1).unwrap_err(),
            "root 1 is not in the world of 1 ranks"
        );
    }

    #[test]
    fn a_scatter_root_with_too_few_pieces_is_an_error() {
        let contributions: Vec<Pieces> = vec![vec![ints(&[1])], Vec::new()];
        let err = Collective::Scatter { root: 0 }.shares(contributions);
        assert_eq!(err.unwrap_err(), "rank 0 handed MPI_Scatter too few pieces");
    }
}
