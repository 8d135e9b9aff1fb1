//! Reading bytes of a length only the host knows: imports like `call_output` copy what fits
//! and return the full length, so a second call with a buffer of exactly that length gets
//! the rest.

/// Enough for every error message and most outputs, so one import call usually suffices.
const FIRST_TRY: usize = 1024;

/// Calls `fill` (an import that copies into the buffer and returns the full length) until the
/// buffer is large enough. `Err` carries a negative status `fill` returned.
pub(crate) fn read_sized(mut fill: impl FnMut(&mut [u8]) -> i64) -> Result<Vec<u8>, i64> {
    let mut first = [0u8; FIRST_TRY];
    let len = length(fill(&mut first))?;
    if len <= FIRST_TRY {
        return Ok(first[..len].to_vec());
    }
    let mut buf = vec![0u8; len];
    loop {
        let len = length(fill(&mut buf))?;
        if len <= buf.len() {
            buf.truncate(len);
            return Ok(buf);
        }
        // The length changed between two calls; the host's data is fixed, but stay correct.
        buf.resize(len, 0);
    }
}

fn length(total: i64) -> Result<usize, i64> {
    if total < 0 {
        return Err(total);
    }
    // Only a broken host reports more than a 32-bit memory can hold; fail the call as
    // `handle` does for an undecodable request.
    Ok(usize::try_from(total)
        .unwrap_or_else(|_| panic!("the fwasm host reported a length of {total} bytes")))
}

#[cfg(test)]
mod tests {
    use super::{FIRST_TRY, read_sized};

    /// An import serving `data` the way `call_output` does.
    fn serve(data: &[u8]) -> impl FnMut(&mut [u8]) -> i64 + '_ {
        |buf| {
            let n = buf.len().min(data.len());
            buf[..n].copy_from_slice(&data[..n]);
            data.len() as i64
        }
    }

    #[test]
    fn short_and_long_data_are_read_whole() {
        for len in [0, 1, FIRST_TRY, FIRST_TRY + 1, 5 * FIRST_TRY] {
            let data: Vec<u8> = (0..len).map(|i| i as u8).collect();
            assert_eq!(read_sized(serve(&data)), Ok(data));
        }
    }

    #[test]
    fn a_negative_status_is_passed_on() {
        assert_eq!(read_sized(|_| -4), Err(-4));
    }
}
