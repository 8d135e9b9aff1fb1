//! Publishing: a function publishes an event on a topic of its own user, and every
//! function subscribed to it is called in the background (see [`fwasm_proto::pubsub`]). Like
//! `chain`, it needs the scheduler, so it parks the call; the calls it starts count against
//! the caller's fan-out and depth limits, so events that publish events cannot run away.

use bytes::Bytes;
use fwasm_abi::HostStatus;

use super::HostState;
use super::park::{HostOp, Refusal};

/// The content type a function's event has: JSON, text or bytes, by what it holds.
pub(crate) fn content_type(data: &[u8]) -> &'static str {
    if serde_json::from_slice::<serde_json::Value>(data).is_ok() {
        "application/json"
    } else if std::str::from_utf8(data).is_ok() {
        "text/plain"
    } else {
        "application/octet-stream"
    }
}

/// The publish request a guest made, or why it is refused. `data` is read from the guest after
/// the topic and the room are checked, and its own refusal (out of bounds) comes after theirs.
pub(crate) fn publish_request(
    host: &HostState,
    topic: &str,
    data: Result<&[u8], Refusal>,
) -> Result<HostOp, Refusal> {
    fwasm_proto::pubsub::check_topic(topic).map_err(|e| {
        Refusal::new(
            HostStatus::InvalidArgument,
            format!("publish refused: {}", e.message),
        )
    })?;
    host.chaining.check_room("publish")?;
    let data = data?;
    let max = host.chaining.max_input_bytes;
    if data.len() > max {
        return Err(Refusal::new(
            HostStatus::LimitExceeded,
            format!(
                "publish refused: an event of {} bytes is over the limit of {max} bytes",
                data.len()
            ),
        ));
    }
    Ok(HostOp::Publish {
        topic: topic.to_string(),
        data: Bytes::copy_from_slice(data),
        room: host.chaining.room(),
    })
}

/// `publish`'s return value once the event's calls are recorded (the calls it started count
/// against the fan-out limit even when it was refused part way).
pub(crate) fn published(host: &mut HostState, started: Result<u32, (u32, Refusal)>) -> i32 {
    let (started, refused) = match started {
        Ok(started) => (started, None),
        Err((started, refusal)) => (started, Some(refusal)),
    };
    host.chaining.chained = host.chaining.chained.saturating_add(started);
    match refused {
        None => started.min(i32::MAX as u32) as i32,
        Some(refusal) => host.refuse(refusal.status, refusal.message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_events_content_type_is_what_its_data_holds() {
        assert_eq!(content_type(br#"{"order": 7}"#), "application/json");
        assert_eq!(content_type(b"42"), "application/json");
        assert_eq!(content_type(b"hello"), "text/plain");
        assert_eq!(content_type(b"\xff\x00"), "application/octet-stream");
    }
}
