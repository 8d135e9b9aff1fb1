//! Times as fwasm's APIs show them to people.

use std::time::{Duration, UNIX_EPOCH};

/// `ms` since the Unix epoch in RFC 3339, UTC, to the second; `None` for 0 (not known).
pub fn rfc3339_from_unix_ms(ms: u64) -> Option<String> {
    (ms != 0).then(|| {
        let at = UNIX_EPOCH + Duration::from_millis(ms);
        humantime::format_rfc3339_seconds(at).to_string()
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn times_are_rfc_3339_in_utc_and_zero_is_unknown() {
        assert_eq!(
            super::rfc3339_from_unix_ms(1_765_000_000_000).as_deref(),
            Some("2025-12-06T05:46:40Z")
        );
        assert_eq!(super::rfc3339_from_unix_ms(0), None);
    }
}
