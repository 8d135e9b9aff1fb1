//! Status codes every host import returns: the guest never has to trap to learn of an error.

/// Result of a host import, as the `i32` it returns. Zero or positive means success.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
pub enum HostStatus {
    Ok = 0,
    /// A pointer/length pair from the guest falls outside its linear memory.
    OutOfBounds = -1,
    /// Bytes that must be UTF-8 (names, keys, log text) are not.
    InvalidUtf8 = -2,
    /// An argument is malformed or out of range.
    InvalidArgument = -3,
    /// The named thing does not exist.
    NotFound = -4,
    /// A size, count or depth limit was hit.
    LimitExceeded = -5,
    /// The guest may not touch this resource (e.g. another user's function).
    PermissionDenied = -6,
    /// A deadline passed before the operation completed.
    Timeout = -7,
    /// A service the operation needs could not be reached.
    Unavailable = -8,
}

impl HostStatus {
    /// The status for a raw import return value, if it is one the ABI defines.
    pub fn from_code(code: i32) -> Option<Self> {
        Some(match code {
            0 => Self::Ok,
            -1 => Self::OutOfBounds,
            -2 => Self::InvalidUtf8,
            -3 => Self::InvalidArgument,
            -4 => Self::NotFound,
            -5 => Self::LimitExceeded,
            -6 => Self::PermissionDenied,
            -7 => Self::Timeout,
            -8 => Self::Unavailable,
            _ => return None,
        })
    }

    pub fn code(self) -> i32 {
        self as i32
    }

    /// What the status means, for messages.
    pub fn description(self) -> &'static str {
        match self {
            Self::Ok => "no error",
            Self::OutOfBounds => "a pointer and length fell outside guest memory",
            Self::InvalidUtf8 => "text passed to the host is not valid UTF-8",
            Self::InvalidArgument => "an argument is malformed or out of range",
            Self::NotFound => "not found",
            Self::LimitExceeded => "a size, count or depth limit was hit",
            Self::PermissionDenied => "permission denied",
            Self::Timeout => "the deadline passed before the operation completed",
            Self::Unavailable => "a service the operation needs could not be reached",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::HostStatus;

    #[test]
    fn every_status_round_trips_through_its_code() {
        for code in -8..=0 {
            let status = HostStatus::from_code(code).expect("defined code");
            assert_eq!(status.code(), code);
        }
        assert_eq!(HostStatus::from_code(-9), None);
        assert_eq!(HostStatus::from_code(1), None);
    }
}
