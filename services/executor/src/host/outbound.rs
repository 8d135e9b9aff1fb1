//! A call's side of its network use (outbound HTTP, see [`crate::outbound`], and sockets,
//! [`crate::sockets`]): its function's allow-list, how many requests and connections it has
//! made and how many bytes it has sent and received against its limits, and the last answer,
//! which the guest reads once its request has parked and resumed.

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
    /// Requests sent and connections opened.
    sent: u32,
    max_requests: u32,
    /// The most bytes of response body a request takes: the call's memory limit.
    max_response_bytes: usize,
    bytes_in: usize,
    bytes_out: usize,
    max_bytes: usize,
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
            bytes_in: 0,
            bytes_out: 0,
            max_bytes: limits.max_outbound_bytes,
            answer: Bytes::new(),
        }
    }

    /// Counts a request, a connection or a name lookup against the call's limit: the
    /// allow-list to check it against.
    pub(crate) fn take_turn(&mut self) -> Result<Arc<[HostPattern]>, Refusal> {
        if self.sent >= self.max_requests {
            return Err(Refusal::new(
                HostStatus::LimitExceeded,
                format!(
                    "this call has made its {} outbound requests, connections and lookups, \
                     the most a call may",
                    self.max_requests
                ),
            ));
        }
        self.sent += 1;
        Ok(self.allowed.clone())
    }

    /// Counts `len` bytes about to be sent against the call's limit.
    pub(crate) fn send_bytes(&mut self, len: usize) -> Result<(), Refusal> {
        if self.bytes_out.saturating_add(len) > self.max_bytes {
            return Err(Refusal::new(
                HostStatus::LimitExceeded,
                format!(
                    "sending {len} more bytes would pass the {} bytes a call may send",
                    self.max_bytes
                ),
            ));
        }
        self.bytes_out += len;
        Ok(())
    }

    /// The most bytes the call may still receive (for one response: at most its memory
    /// limit), or why none.
    pub(crate) fn room_to_receive(&self, one_response: bool) -> Result<usize, Refusal> {
        let room = self.max_bytes.saturating_sub(self.bytes_in);
        if room == 0 {
            return Err(Refusal::new(
                HostStatus::LimitExceeded,
                format!(
                    "this call has received the {} bytes a call may",
                    self.max_bytes
                ),
            ));
        }
        Ok(match one_response {
            true => room.min(self.max_response_bytes),
            false => room,
        })
    }

    /// Counts `len` bytes received.
    pub(crate) fn received(&mut self, len: usize) {
        self.bytes_in = self.bytes_in.saturating_add(len);
    }
}
