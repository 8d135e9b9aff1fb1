//! A call's side of outbound HTTP (see [`crate::outbound`]): its function's allow-list, how
//! many requests it has sent against its limit, and the last answer, which the guest reads
//! once its request has parked and resumed.

use std::sync::Arc;

use bytes::Bytes;
use fwasm_abi::HostStatus;
use fwasm_proto::outbound::HostPattern;
use fwasm_proto::pb::Call;

use super::park::Refusal;
use crate::limits::Limits;

pub(crate) struct CallOutbound {
    /// The function's allow-list (entries that do not parse were refused at upload).
    allowed: Arc<[HostPattern]>,
    sent: u32,
    max_requests: u32,
    /// The most bytes of response body a request takes: the call's memory limit.
    pub(crate) max_response_bytes: usize,
    pub(crate) answer: Bytes,
}

impl CallOutbound {
    pub(crate) fn new(call: &Call, limits: &Limits) -> Self {
        let allowed = call
            .settings
            .iter()
            .flat_map(|settings| &settings.allow_hosts)
            .filter_map(|entry| entry.parse().ok())
            .collect();
        CallOutbound {
            allowed,
            sent: 0,
            max_requests: limits.max_outbound_requests,
            max_response_bytes: limits.max_memory_bytes,
            answer: Bytes::new(),
        }
    }

    /// Counts a request against the call's limit: the allow-list to check it against.
    pub(crate) fn take_turn(&mut self) -> Result<Arc<[HostPattern]>, Refusal> {
        if self.sent >= self.max_requests {
            return Err(Refusal::new(
                HostStatus::LimitExceeded,
                format!(
                    "this call has sent its {} outbound requests, the most a call may",
                    self.max_requests
                ),
            ));
        }
        self.sent += 1;
        Ok(self.allowed.clone())
    }
}
