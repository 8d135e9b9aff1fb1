//! MPI's datatypes and reduction operations, as Faasm's guests name them (the ids of faabric's
//! `mpi.h`), applied to little-endian buffers element by element.

/// A datatype as a guest's `MPI_Datatype` object holds it: an id and a size in bytes (more
/// than the element's for a contiguous type, which keeps its element's id).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Datatype {
    pub(crate) id: i32,
    pub(crate) size: i32,
}

impl Datatype {
    #[cfg(test)]
    pub(crate) const INT: Datatype = Datatype { id: 4, size: 4 };
    pub(crate) const DOUBLE_INT_ID: i32 = 16;
}

/// What an element of a datatype is, by its id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Element {
    I8,
    I16,
    I32,
    I64,
    U8,
    U16,
    U32,
    U64,
    F32,
    F64,
    /// `{double value; int index}`, padded to 16 bytes: MAXLOC's and MINLOC's pair.
    DoubleInt,
}

impl Element {
    fn of(datatype: Datatype) -> Result<Self, String> {
        Ok(match datatype.id {
            1 | 17 => Element::I8,
            2 => Element::I16,
            3 | 4 | 11 => Element::I32,
            5 | 12 | 13 => Element::I64,
            6 | 18 | 19 => Element::U8,
            7 => Element::U16,
            8 | 9 => Element::U32,
            10 => Element::U64,
            14 => Element::F32,
            15 => Element::F64,
            Datatype::DOUBLE_INT_ID => Element::DoubleInt,
            id => return Err(format!("MPI datatype {id} cannot be reduced")),
        })
    }
}

/// A reduction operation, by Faasm's ids (`MPI_MAX` 1 ... `MPI_MINLOC` 10).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Max,
    Min,
    Sum,
    Prod,
    LogicalAnd,
    LogicalOr,
    BitAnd,
    BitOr,
    MaxLoc,
    MinLoc,
}

impl Op {
    /// Faasm's id of the operation.
    pub(crate) fn id(self) -> i32 {
        match self {
            Op::Max => 1,
            Op::Min => 2,
            Op::Sum => 3,
            Op::Prod => 4,
            Op::LogicalAnd => 5,
            Op::LogicalOr => 6,
            Op::BitAnd => 7,
            Op::BitOr => 8,
            Op::MaxLoc => 9,
            Op::MinLoc => 10,
        }
    }

    pub(crate) fn from_id(id: i32) -> Result<Self, String> {
        Ok(match id {
            1 => Op::Max,
            2 => Op::Min,
            3 => Op::Sum,
            4 => Op::Prod,
            5 => Op::LogicalAnd,
            6 => Op::LogicalOr,
            7 => Op::BitAnd,
            8 => Op::BitOr,
            9 => Op::MaxLoc,
            10 => Op::MinLoc,
            // sdk-c's MPI_Op_create: its mpi.c applies the operation in the function itself.
            100 => {
                return Err(
                    "a user-defined operation reached the host: sdk-c's mpi.h applies \
                            them in the function (rebuild it with `fwasm build`)"
                        .into(),
                );
            }
            id => return Err(format!("MPI operation {id} is not one fwasm knows")),
        })
    }
}

/// `into[i] = op(into[i], other[i])` for every element.
pub(crate) fn apply(
    op: Op,
    datatype: Datatype,
    into: &mut [u8],
    other: &[u8],
) -> Result<(), String> {
    let element = Element::of(datatype)?;
    macro_rules! each {
        ($t:ty, $f:expr) => {{
            const W: usize = std::mem::size_of::<$t>();
            for (a, b) in into.chunks_exact_mut(W).zip(other.chunks_exact(W)) {
                let x = <$t>::from_le_bytes(a.try_into().expect("W bytes"));
                let y = <$t>::from_le_bytes(b.try_into().expect("W bytes"));
                let f: fn($t, $t) -> $t = $f;
                a.copy_from_slice(&f(x, y).to_le_bytes());
            }
            Ok(())
        }};
    }
    macro_rules! integer {
        ($t:ty) => {
            match op {
                Op::Max => each!($t, |x, y| x.max(y)),
                Op::Min => each!($t, |x, y| x.min(y)),
                Op::Sum => each!($t, |x, y| x.wrapping_add(y)),
                Op::Prod => each!($t, |x, y| x.wrapping_mul(y)),
                Op::LogicalAnd => each!($t, |x, y| (x != 0 && y != 0) as $t),
                Op::LogicalOr => each!($t, |x, y| (x != 0 || y != 0) as $t),
                Op::BitAnd => each!($t, |x, y| x & y),
                Op::BitOr => each!($t, |x, y| x | y),
                Op::MaxLoc | Op::MinLoc => Err(pairs_only(op)),
            }
        };
    }
    macro_rules! float {
        ($t:ty) => {
            match op {
                Op::Max => each!($t, |x, y| x.max(y)),
                Op::Min => each!($t, |x, y| x.min(y)),
                Op::Sum => each!($t, |x, y| x + y),
                Op::Prod => each!($t, |x, y| x * y),
                Op::LogicalAnd => each!($t, |x, y| (x != 0.0 && y != 0.0) as u8 as $t),
                Op::LogicalOr => each!($t, |x, y| (x != 0.0 || y != 0.0) as u8 as $t),
                Op::BitAnd | Op::BitOr => Err(format!("{op:?} does not apply to floating point")),
                Op::MaxLoc | Op::MinLoc => Err(pairs_only(op)),
            }
        };
    }
    match element {
        Element::I8 => integer!(i8),
        Element::I16 => integer!(i16),
        Element::I32 => integer!(i32),
        Element::I64 => integer!(i64),
        Element::U8 => integer!(u8),
        Element::U16 => integer!(u16),
        Element::U32 => integer!(u32),
        Element::U64 => integer!(u64),
        Element::F32 => float!(f32),
        Element::F64 => float!(f64),
        Element::DoubleInt => located(op, into, other),
    }
}

fn pairs_only(op: Op) -> String {
    format!("{op:?} applies to MPI_DOUBLE_INT pairs only")
}

/// MAXLOC and MINLOC over `{double value; int index}` pairs: the greater (lesser) value, and
/// on a tie the lower index, as MPI defines them.
fn located(op: Op, into: &mut [u8], other: &[u8]) -> Result<(), String> {
    let keep_other: fn(f64, f64) -> bool = match op {
        Op::MaxLoc => |mine, theirs| theirs > mine,
        Op::MinLoc => |mine, theirs| theirs < mine,
        op => return Err(format!("{op:?} does not apply to MPI_DOUBLE_INT pairs")),
    };
    for (a, b) in into.chunks_exact_mut(16).zip(other.chunks_exact(16)) {
        let value = |p: &[u8]| f64::from_le_bytes(p[..8].try_into().expect("8 bytes"));
        let index = |p: &[u8]| i32::from_le_bytes(p[8..12].try_into().expect("4 bytes"));
        let (mine, theirs) = (value(a), value(b));
        if keep_other(mine, theirs) || (mine == theirs && index(b) < index(a)) {
            a[..12].copy_from_slice(&b[..12]);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes<const N: usize>(values: [[u8; N]; 2]) -> Vec<u8> {
        values.concat()
    }

    #[test]
    fn integers_and_doubles_combine_element_by_element() {
        let mut a = bytes([3i32.to_le_bytes(), (-7i32).to_le_bytes()]);
        let b = bytes([5i32.to_le_bytes(), 2i32.to_le_bytes()]);
        apply(Op::Max, Datatype::INT, &mut a, &b).unwrap();
        assert_eq!(a, bytes([5i32.to_le_bytes(), 2i32.to_le_bytes()]));
        let double = Datatype { id: 15, size: 8 };
        let mut x = bytes([1.5f64.to_le_bytes(), 2.0f64.to_le_bytes()]);
        let y = bytes([0.25f64.to_le_bytes(), 3.0f64.to_le_bytes()]);
        apply(Op::Prod, double, &mut x, &y).unwrap();
        assert_eq!(x, bytes([0.375f64.to_le_bytes(), 6.0f64.to_le_bytes()]));
    }

    #[test]
    fn maxloc_keeps_the_greater_value_and_on_a_tie_the_lower_index() {
        let pair = |v: f64, i: i32| [&v.to_le_bytes()[..], &i.to_le_bytes(), &[0; 4]].concat();
        let double_int = Datatype { id: 16, size: 16 };
        let mut a = pair(2.0, 3);
        apply(Op::MaxLoc, double_int, &mut a, &pair(2.0, 1)).unwrap();
        assert_eq!(a, pair(2.0, 1));
        apply(Op::MaxLoc, double_int, &mut a, &pair(1.0, 0)).unwrap();
        assert_eq!(a, pair(2.0, 1));
        apply(Op::MinLoc, double_int, &mut a, &pair(1.0, 0)).unwrap();
        assert_eq!(a, pair(1.0, 0));
    }

    #[test]
    fn bitwise_operations_on_floats_are_refused() {
        let float = Datatype { id: 14, size: 4 };
        let err = apply(Op::BitOr, float, &mut [0; 4], &[0; 4]).unwrap_err();
        assert_eq!(err, "BitOr does not apply to floating point");
    }
}
