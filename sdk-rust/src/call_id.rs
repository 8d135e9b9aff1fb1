//! The id of a call, as `chain` returns it and the platform's status API reports it.

use std::fmt;

/// Identifies one call. Ids are positive and fit in an `i64`, the type the imports pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CallId(u64);

impl CallId {
    pub fn new(id: u64) -> Self {
        Self(id)
    }

    pub fn get(self) -> u64 {
        self.0
    }

    /// The id as the imports take it.
    pub(crate) fn to_raw(self) -> i64 {
        self.0 as i64
    }
}

impl fmt::Display for CallId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::CallId;

    #[test]
    fn a_call_id_shows_and_returns_its_number() {
        let id = CallId::new(42);
        assert_eq!(id.get(), 42);
        assert_eq!(id.to_string(), "42");
        assert_eq!(id, CallId::new(42));
        assert_ne!(id, CallId::new(43));
    }

    #[test]
    fn the_largest_id_the_abi_allows_passes_unchanged() {
        let id = CallId::new(i64::MAX as u64);
        assert_eq!(id.to_raw(), i64::MAX);
        assert_eq!(id.to_string(), i64::MAX.to_string());
    }
}
