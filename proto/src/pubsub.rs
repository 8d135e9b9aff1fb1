//! Publish and subscribe. An event published on a user's topic starts one background call of
//! every function of that user subscribed to the topic. The function receives the event as
//! Dapr delivers it to a subscriber: a CloudEvents 1.0 JSON envelope with the data inside, so
//! handlers written for Dapr read it unchanged.

use base64::Engine as _;
use bytes::Bytes;
use serde_json::{Map, Value, json};

use crate::api::{SchedulerApi, StateApi};
use crate::pb::{Call, Header, ListSubscriptionsRequest, SubmitRequest};
use crate::{ApiError, names};

/// The content type of a CloudEvents JSON envelope.
pub const CLOUD_EVENTS_JSON: &str = "application/cloudevents+json";
/// The `type` of an event Dapr (and fwasm) wraps.
const EVENT_TYPE: &str = "com.dapr.event.sent";

/// An event to publish.
#[derive(Debug, Clone)]
pub struct Event {
    /// The user whose topic it is (Dapr's `pubsubname`).
    pub user: String,
    pub topic: String,
    pub data: Bytes,
    /// The data's content type; empty means `text/plain`. `application/cloudevents+json`
    /// data is an envelope already, which fwasm completes instead of wrapping.
    pub content_type: String,
    /// Who published it: the envelope's `source`.
    pub source: String,
    /// Deliver the data as published, without an envelope (Dapr's `rawPayload`).
    pub raw: bool,
}

/// The call a function's `publish` came from.
#[derive(Debug, Clone, Copy)]
pub struct Publisher {
    pub call_id: u64,
    /// The call from outside its tree grew from.
    pub root_id: u64,
    pub depth: u32,
    /// How many more calls it may start (its fan-out limit less those it started).
    pub room: u32,
}

/// A publish refused before it reached every subscribed function: the calls it had started
/// by then keep running.
#[derive(Debug)]
pub struct Unpublished {
    pub started: Vec<u64>,
    pub error: ApiError,
}

impl From<ApiError> for Unpublished {
    fn from(error: ApiError) -> Self {
        Unpublished {
            started: Vec::new(),
            error,
        }
    }
}

/// Checks a topic's name: a topic is a name, like a function's.
pub fn check_topic(topic: &str) -> Result<(), ApiError> {
    names::check_name("topic", topic)
}

impl Event {
    /// What each subscribed function receives: its input and that input's content type.
    pub fn delivery(&self) -> Result<(Bytes, String), ApiError> {
        if self.raw {
            let content_type = match self.content_type.as_str() {
                "" => "application/octet-stream".to_string(),
                given => given.to_string(),
            };
            return Ok((self.data.clone(), content_type));
        }
        let envelope = match media_type(&self.content_type).as_str() {
            CLOUD_EVENTS_JSON => self.completed_envelope()?,
            _ => self.new_envelope(),
        };
        let bytes = serde_json::to_vec(&Value::Object(envelope))
            .map_err(|e| ApiError::internal(format!("cannot encode the event: {e}")))?;
        Ok((bytes.into(), CLOUD_EVENTS_JSON.to_string()))
    }

    /// An envelope around data that is not one.
    fn new_envelope(&self) -> Map<String, Value> {
        let content_type = match self.content_type.as_str() {
            "" => "text/plain",
            given => given,
        };
        let mut envelope = Map::new();
        envelope.insert("datacontenttype".into(), json!(content_type));
        let text = std::str::from_utf8(&self.data).ok();
        let data = match (media_type(content_type).as_str(), text) {
            ("application/json", Some(text)) => match serde_json::from_str(text) {
                Ok(value) => ("data", value),
                Err(_) => ("data", json!(text)),
            },
            ("application/octet-stream", _) | (_, None) => {
                let encoded = base64::engine::general_purpose::STANDARD.encode(&self.data);
                ("data_base64", json!(encoded))
            }
            (_, Some(text)) => ("data", json!(text)),
        };
        envelope.insert(data.0.into(), data.1);
        self.complete(&mut envelope);
        envelope
    }

    /// The publisher's own envelope, with what it left out filled in.
    fn completed_envelope(&self) -> Result<Map<String, Value>, ApiError> {
        let parsed: Value = serde_json::from_slice(&self.data).map_err(|e| {
            ApiError::invalid_argument(format!(
                "the event says it is {CLOUD_EVENTS_JSON} but is not JSON: {e}"
            ))
        })?;
        let Value::Object(mut envelope) = parsed else {
            return Err(ApiError::invalid_argument(format!(
                "the event says it is {CLOUD_EVENTS_JSON} but is not a JSON object"
            )));
        };
        self.complete(&mut envelope);
        Ok(envelope)
    }

    /// Sets the topic, the pub/sub and the trace context, and the envelope's required fields
    /// where the publisher gave none.
    fn complete(&self, envelope: &mut Map<String, Value>) {
        let mut default = |field: &str, value: Value| {
            envelope.entry(field).or_insert(value);
        };
        default("specversion", json!("1.0"));
        default("id", json!(uuid::Uuid::new_v4().to_string()));
        default("source", json!(self.source));
        default("type", json!(EVENT_TYPE));
        let now = humantime::format_rfc3339_seconds(std::time::SystemTime::now());
        default("time", json!(now.to_string()));
        envelope.insert("topic".into(), json!(self.topic));
        envelope.insert("pubsubname".into(), json!(self.user));
        let trace = crate::trace::current_context();
        let traceparent = trace.get("traceparent").cloned().unwrap_or_default();
        envelope.insert("traceid".into(), json!(traceparent));
        envelope.insert("traceparent".into(), json!(traceparent));
        let tracestate = trace.get("tracestate").cloned().unwrap_or_default();
        envelope.insert("tracestate".into(), json!(tracestate));
    }
}

/// A content type's media type, lowercase and without parameters.
fn media_type(content_type: &str) -> String {
    let media = content_type.split(';').next().unwrap_or_default();
    media.trim().to_ascii_lowercase()
}

/// Starts a background call of every function subscribed to the event's topic, each with the
/// event as its input; returns their call ids once the scheduler has recorded them all. A
/// call published by a function (`parent`) is its child, one level deeper, and is refused
/// whole when the topic has more subscribers than the function may still start calls, so
/// events that publish events are held to the same depth and fan-out limits as chains.
#[tracing::instrument(name = "publish", skip_all, fields(user = %event.user, topic = %event.topic))]
pub async fn publish(
    state: &dyn StateApi,
    scheduler: &dyn SchedulerApi,
    event: &Event,
    parent: Option<Publisher>,
) -> Result<Vec<u64>, Unpublished> {
    let meters = crate::metrics::meters();
    let started = start_calls(state, scheduler, event, parent).await;
    match &started {
        Ok(ids) => {
            meters.events_accepted.increment(1);
            meters.event_calls.increment(ids.len() as u64);
        }
        Err(unpublished) => {
            meters.events_refused.increment(1);
            meters
                .event_calls
                .increment(unpublished.started.len() as u64);
        }
    }
    started
}

async fn start_calls(
    state: &dyn StateApi,
    scheduler: &dyn SchedulerApi,
    event: &Event,
    parent: Option<Publisher>,
) -> Result<Vec<u64>, Unpublished> {
    names::check_name("user", &event.user)?;
    check_topic(&event.topic)?;
    let (input, content_type) = event.delivery()?;
    let subscribed = state
        .list_subscriptions(ListSubscriptionsRequest {
            user: event.user.clone(),
            topic: event.topic.clone(),
        })
        .await?
        .subscriptions;
    if let Some(parent) = parent
        && subscribed.len() > parent.room as usize
    {
        return Err(ApiError::resource_exhausted(format!(
            "{} functions are subscribed to {:?}, more than the {} calls this call may still start",
            subscribed.len(),
            event.topic,
            parent.room
        ))
        .into());
    }
    let mut ids = Vec::with_capacity(subscribed.len());
    for subscription in subscribed {
        let user = &event.user;
        let function = subscription.function;
        let call = Call {
            path: format!("/f/{user}/{function}"),
            user: user.clone(),
            function,
            method: "POST".into(),
            headers: vec![Header {
                name: "content-type".into(),
                value: content_type.clone(),
            }],
            input: input.clone(),
            parent_id: parent.map_or(0, |parent| parent.call_id),
            root_id: parent.map_or(0, |parent| parent.root_id),
            depth: parent.map_or(0, |parent| parent.depth + 1),
            ..Call::default()
        };
        let submitted = scheduler
            .submit(SubmitRequest {
                call: Some(call),
                busy_executor_id: String::new(),
            })
            .await;
        match submitted {
            Ok(placement) => ids.push(placement.call_id),
            Err(error) => {
                return Err(Unpublished {
                    started: ids,
                    error,
                });
            }
        }
    }
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(data: &'static [u8], content_type: &str) -> Event {
        Event {
            user: "shop".into(),
            topic: "orders".into(),
            data: Bytes::from_static(data),
            content_type: content_type.into(),
            source: "fwasm".into(),
            raw: false,
        }
    }

    fn delivered(event: &Event) -> Map<String, Value> {
        let (bytes, content_type) = event.delivery().unwrap();
        assert_eq!(content_type, CLOUD_EVENTS_JSON);
        match serde_json::from_slice(&bytes).unwrap() {
            Value::Object(envelope) => envelope,
            other => panic!("not an object: {other}"),
        }
    }

    #[test]
    fn data_goes_in_the_envelope_as_dapr_puts_it() {
        let json = delivered(&event(
            br#"{"order": 7}"#,
            "application/json; charset=utf-8",
        ));
        assert_eq!(json["data"], json!({"order": 7}));
        assert_eq!(json["datacontenttype"], "application/json; charset=utf-8");
        for (field, value) in [
            ("specversion", "1.0"),
            ("type", "com.dapr.event.sent"),
            ("source", "fwasm"),
            ("topic", "orders"),
            ("pubsubname", "shop"),
        ] {
            assert_eq!(json[field], value, "{field}");
        }
        assert_eq!(json["id"].as_str().unwrap().len(), 36, "a UUID");
        assert!(json["time"].as_str().unwrap().ends_with('Z'));

        let text = delivered(&event(b"hello", ""));
        assert_eq!(
            (&text["data"], &text["datacontenttype"]),
            (&json!("hello"), &json!("text/plain"))
        );
        let bad_json = delivered(&event(b"{not json", "application/json"));
        assert_eq!(bad_json["data"], "{not json");
        let binary = delivered(&event(b"\x00\xff", "application/octet-stream"));
        assert_eq!(binary["data_base64"], "AP8=");
        assert!(!binary.contains_key("data"));
        let not_utf8 = delivered(&event(b"\xff", "text/plain"));
        assert_eq!(not_utf8["data_base64"], "/w==");
    }

    #[test]
    fn a_published_envelope_is_completed_not_wrapped() {
        let own = br#"{"id": "mine", "source": "app", "data": 1, "topic": "spoofed", "x": true}"#;
        let json = delivered(&event(own, CLOUD_EVENTS_JSON));
        assert_eq!(json["id"], "mine");
        assert_eq!(json["source"], "app");
        assert_eq!(
            json["topic"], "orders",
            "the topic is where it was published"
        );
        assert_eq!(json["x"], true);
        assert_eq!(json["specversion"], "1.0");
        for bad in [&b"[1]"[..], b"nope"] {
            let err = Event {
                data: Bytes::copy_from_slice(bad),
                ..event(b"", CLOUD_EVENTS_JSON)
            }
            .delivery()
            .unwrap_err();
            assert_eq!(err.code, crate::ErrorCode::InvalidArgument, "{err}");
        }
    }

    #[test]
    fn a_raw_event_is_delivered_as_published() {
        let raw = Event {
            raw: true,
            ..event(b"\x01\x02", "")
        };
        let (bytes, content_type) = raw.delivery().unwrap();
        assert_eq!(
            (&bytes[..], content_type.as_str()),
            (&b"\x01\x02"[..], "application/octet-stream")
        );
    }
}
