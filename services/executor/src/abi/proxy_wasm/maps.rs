//! proxy-wasm's serialised header maps: a little-endian u32 count N, N pairs of u32 key and
//! value lengths, then each key and value followed by a NUL byte.

/// A header map: name and value bytes, in order, names as given.
pub(crate) type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

/// The serialised form of `pairs`; an empty map is its 4-byte zero count (the Rust SDK reads
/// the count of any non-empty answer, so a lone NUL would not do).
pub(crate) fn serialize(pairs: &Pairs) -> Vec<u8> {
    let data: usize = pairs.iter().map(|(k, v)| k.len() + v.len() + 2).sum();
    let mut out = Vec::with_capacity(4 + pairs.len() * 8 + data);
    out.extend_from_slice(&(pairs.len() as u32).to_le_bytes());
    for (key, value) in pairs {
        out.extend_from_slice(&(key.len() as u32).to_le_bytes());
        out.extend_from_slice(&(value.len() as u32).to_le_bytes());
    }
    for (key, value) in pairs {
        out.extend_from_slice(key);
        out.push(0);
        out.extend_from_slice(value);
        out.push(0);
    }
    out
}

/// The pairs of a serialised map, or `None` if it is malformed. Empty input (or a lone NUL,
/// as some hosts write) is the empty map; the byte after each key and value is skipped
/// unchecked, as the SDKs do (Layotto writes '0' there).
pub(crate) fn deserialize(bytes: &[u8]) -> Option<Pairs> {
    if bytes.len() <= 1 {
        return Some(Vec::new());
    }
    let u32_at = |at: usize| -> Option<usize> {
        let word = bytes.get(at..at + 4)?;
        Some(u32::from_le_bytes(word.try_into().ok()?) as usize)
    };
    let count = u32_at(0)?;
    let mut data = count.checked_mul(8)?.checked_add(4)?;
    if data > bytes.len() {
        return None;
    }
    let mut pairs = Vec::with_capacity(count);
    for i in 0..count {
        let key_len = u32_at(4 + i * 8)?;
        let value_len = u32_at(8 + i * 8)?;
        let key = bytes.get(data..data.checked_add(key_len)?)?.to_vec();
        data += key_len + 1;
        let value = bytes.get(data..data.checked_add(value_len)?)?.to_vec();
        data += value_len + 1;
        pairs.push((key, value));
    }
    (data <= bytes.len()).then_some(pairs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Pairs {
        list.iter()
            .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
            .collect()
    }

    #[test]
    fn maps_round_trip_in_the_sdk_layout() {
        let map = pairs(&[(":path", "/f/demo/id_1?name=book1"), ("x-empty", "")]);
        let bytes = serialize(&map);
        assert_eq!(&bytes[..4], &2u32.to_le_bytes());
        assert_eq!(&bytes[4..8], &5u32.to_le_bytes());
        assert_eq!(&bytes[20..27], b":path\0/");
        assert!(bytes.ends_with(b"x-empty\0\0"));
        assert_eq!(deserialize(&bytes), Some(map));
        assert_eq!(serialize(&Vec::new()), 0u32.to_le_bytes());
        assert_eq!(deserialize(&0u32.to_le_bytes()), Some(Vec::new()));
        assert_eq!(deserialize(b""), Some(Vec::new()));
        assert_eq!(deserialize(b"\0"), Some(Vec::new()));
    }

    #[test]
    fn malformed_maps_are_refused_not_read_past_their_end() {
        let bytes = serialize(&pairs(&[("key", "value")]));
        assert_eq!(deserialize(&bytes[..bytes.len() - 3]), None);
        assert_eq!(deserialize(&u32::MAX.to_le_bytes()), None);
        let mut huge_length = bytes.clone();
        huge_length[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(deserialize(&huge_length), None);
        assert_eq!(deserialize(&[1, 0, 0]), None);
    }
}
