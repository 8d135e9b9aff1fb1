//! Publishing events to the functions subscribed to a topic.

use crate::{Error, host};

/// Publishes `data` on `topic` of this function's user: every function subscribed to it
/// (`fwasm subscribe`) is called in the background with the event, in a CloudEvents JSON
/// envelope as Dapr delivers events (`data` holds yours: JSON as JSON, other text as a
/// string, other bytes base64-encoded in `data_base64`). Returns how many functions it
/// started once their calls are recorded; they count against this call's chaining limits.
pub fn publish(topic: &str, data: &[u8]) -> Result<u32, Error> {
    match host::publish(topic, data) {
        started if started >= 0 => Ok(started as u32),
        status => Err(Error::from_status(status.into())),
    }
}
