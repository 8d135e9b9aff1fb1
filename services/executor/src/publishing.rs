//! The `publish` import: a function publishes an event on a topic of its own user, and every
//! function subscribed to it is called in the background (see [`fwasm_proto::pubsub`]). Like
//! `chain`, it needs the scheduler, so it parks the call; the calls it starts count against
//! the caller's fan-out and depth limits, so events that publish events cannot run away.

use bytes::Bytes;
use fwasm_abi::{HostStatus, IMPORT_MODULE, IMPORT_PUBLISH};
use wasmi::{Caller, Linker, Val};

use crate::host::{HostState, guest_slice};
use crate::park::{HostOp, Refusal, park_or_refuse};

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

/// The publish request a guest made, or why it is refused.
fn publish_op(
    caller: &Caller<'_, HostState>,
    topic: (i32, i32),
    data: (i32, i32),
) -> Result<HostOp, Refusal> {
    let host = caller.data();
    let memory = host
        .memory
        .ok_or_else(|| Refusal::new(HostStatus::Unavailable, "publish called before start-up"))?;
    let memory = memory.data(caller);
    let out_of_bounds = |what: &str| {
        Refusal::new(
            HostStatus::OutOfBounds,
            format!("publish: the {what} lies outside the guest's memory"),
        )
    };
    let topic = guest_slice(memory, topic.0, topic.1).map_err(|_| out_of_bounds("topic"))?;
    let topic = std::str::from_utf8(topic)
        .map_err(|_| Refusal::new(HostStatus::InvalidUtf8, "publish: the topic is not UTF-8"))?;
    fwasm_proto::pubsub::check_topic(topic).map_err(|e| {
        Refusal::new(
            HostStatus::InvalidArgument,
            format!("publish refused: {}", e.message),
        )
    })?;
    host.chaining.check_room("publish")?;
    let data = guest_slice(memory, data.0, data.1).map_err(|_| out_of_bounds("data"))?;
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
pub(crate) fn published(host: &mut HostState, started: Result<u32, (u32, Refusal)>) -> Val {
    let (started, refused) = match started {
        Ok(started) => (started, None),
        Err((started, refusal)) => (started, Some(refusal)),
    };
    host.chaining.chained = host.chaining.chained.saturating_add(started);
    match refused {
        None => Val::I32(started.min(i32::MAX as u32) as i32),
        Some(refusal) => Val::I32(host.refuse(refusal.status, refusal.message)),
    }
}

pub(crate) fn define_imports(linker: &mut Linker<HostState>) {
    linker
        .func_wrap(
            IMPORT_MODULE,
            IMPORT_PUBLISH,
            |mut caller: Caller<'_, HostState>,
             topic_ptr: i32,
             topic_len: i32,
             data_ptr: i32,
             data_len: i32|
             -> Result<i32, wasmi::Error> {
                let op = publish_op(&caller, (topic_ptr, topic_len), (data_ptr, data_len));
                park_or_refuse(&mut caller, op)
            },
        )
        .expect("publish is defined once");
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
