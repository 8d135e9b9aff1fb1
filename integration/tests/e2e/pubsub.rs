//! Publish and subscribe: functions subscribed to a user's topic (over HTTP, gRPC) are called
//! with every event published there, from Dapr's and Layotto's gRPC APIs, Dapr's HTTP API and
//! functions themselves (Rust and C guests), in a CloudEvents envelope as Dapr delivers them.

use std::time::{Duration, Instant};

use fwasm_proto::dapr::proto::runtime::v1 as dapr;
use fwasm_proto::dapr::proto::runtime::v1::dapr_client::DaprClient;
use fwasm_proto::layotto;
use fwasm_proto::layotto::runtime_client::RuntimeClient;
use fwasm_proto::pb::{ListSubscriptionsRequest, Subscription};
use serde_json::Value;
use tonic::Code;

use crate::support::{Platform, each_backend, test_executor_config, test_limits, up, up_with};

/// Waits until the state key `user/key` holds something containing `marker`; its text.
async fn seen(p: &Platform, user_key: &str, marker: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, body) = p.get_state(user_key).await;
        if status == 200 && body.contains(marker) {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "{user_key} never held {marker:?}; last {status} {body:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn envelope(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

fn subscription(user: &str, topic: &str, function: &str) -> Subscription {
    Subscription {
        user: user.into(),
        topic: topic.into(),
        function: function.into(),
    }
}

async fn sub_request(p: &Platform, method: reqwest::Method, path: &str) -> (u16, String) {
    let response = p
        .http
        .request(method, format!("{}/sub/{path}", p.upload))
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

#[tokio::test]
async fn events_from_every_door_reach_every_subscribed_function() {
    for (backend, p) in each_backend().await {
        p.upload_testkit("ps", &["subscriber", "subscriber.two", "publisher"])
            .await;
        let mut functions = p.grpc_client().await;
        let put = reqwest::Method::PUT;
        assert_eq!(
            sub_request(&p, put.clone(), "ps/orders/subscriber").await,
            (200, "ps/subscriber is subscribed to orders\n".into()),
            "{backend}"
        );
        let again = sub_request(&p, put.clone(), "ps/orders/subscriber").await;
        assert_eq!(again.0, 200, "subscribing twice is one subscription");
        functions
            .subscribe(subscription("ps", "orders", "subscriber.two"))
            .await
            .unwrap();
        let (status, body) = sub_request(&p, put.clone(), "ps/orders/missing").await;
        assert_eq!(status, 404, "{body}");
        assert!(body.contains("upload it first"), "{body}");
        let bad = functions
            .subscribe(subscription("ps", "no topic", "subscriber"))
            .await
            .unwrap_err();
        assert_eq!(bad.code(), Code::InvalidArgument, "{bad:?}");
        assert_eq!(
            sub_request(&p, reqwest::Method::GET, "ps").await,
            (200, "orders subscriber\norders subscriber.two\n".into())
        );
        let listed = functions
            .list_subscriptions(ListSubscriptionsRequest {
                user: "ps".into(),
                topic: "orders".into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(listed.subscriptions.len(), 2);

        let channel = tonic::transport::Channel::from_shared(p.grpc.clone())
            .unwrap()
            .connect()
            .await
            .unwrap();
        let (mut dapr, mut layotto) = (
            DaprClient::new(channel.clone()),
            RuntimeClient::new(channel),
        );

        // Dapr's gRPC: JSON data arrives as JSON inside the envelope, at both functions.
        let event = dapr::PublishEventRequest {
            pubsub_name: "ps".into(),
            topic: "orders".into(),
            data: br#"{"order": 7}"#.to_vec().into(),
            data_content_type: "application/json".into(),
            ..Default::default()
        };
        dapr.publish_event(event).await.unwrap();
        for function in ["subscriber", "subscriber.two"] {
            let got = envelope(&seen(&p, &format!("ps/seen.{function}"), "\"order\"").await);
            assert_eq!(got["data"]["order"], 7, "{backend}: {got}");
            assert_eq!(got["topic"], "orders");
            assert_eq!(got["pubsubname"], "ps");
            assert_eq!(got["type"], "com.dapr.event.sent");
            assert_eq!(got["datacontenttype"], "application/json");
        }
        let (_, content_type) = p.get_state("ps/last-event-type").await;
        assert_eq!(content_type, "application/cloudevents+json");

        // Layotto's gRPC: text stays text.
        let event = layotto::PublishEventRequest {
            pubsub_name: "ps".into(),
            topic: "orders".into(),
            data: b"from layotto".to_vec().into(),
            data_content_type: "text/plain".into(),
            ..Default::default()
        };
        layotto.publish_event(event).await.unwrap();
        // Each event is awaited at both functions before the next is published, so no older
        // event can land after a newer one.
        for function in ["subscriber", "subscriber.two"] {
            let key = format!("ps/seen.{function}");
            let got = envelope(&seen(&p, &key, "from layotto").await);
            assert_eq!(got["data"], "from layotto");
        }

        // Dapr's HTTP API, with and without an envelope.
        let publish = |query: &'static str, body: &'static str| {
            p.http
                .post(format!("{}/v1.0/publish/ps/orders{query}", p.invoke))
                .header("content-type", "text/plain")
                .body(body)
                .send()
        };
        let reply = publish("", "over http").await.unwrap();
        assert_eq!(reply.status().as_u16(), 204);
        for function in ["subscriber", "subscriber.two"] {
            let key = format!("ps/seen.{function}");
            let got = envelope(&seen(&p, &key, "over http").await);
            assert_eq!(got["data"], "over http");
        }
        let reply = publish("?metadata.rawPayload=true", "raw bytes")
            .await
            .unwrap();
        assert_eq!(reply.status().as_u16(), 204);
        for function in ["subscriber", "subscriber.two"] {
            let key = format!("ps/seen.{function}");
            assert_eq!(seen(&p, &key, "raw bytes").await, "raw bytes");
        }

        // A function publishes: its event reaches both, from it.
        assert_eq!(
            p.call("ps/publisher", r#"orders {"n": 1}"#).await,
            (200, "started 2".into()),
            "{backend}"
        );
        for function in ["subscriber", "subscriber.two"] {
            let key = format!("ps/seen.{function}");
            let got = envelope(&seen(&p, &key, "\"n\"").await);
            let from = (&got["data"]["n"], &got["source"]);
            assert_eq!(from, (&1.into(), &"ps/publisher".into()));
        }
        let refused = p.call("ps/publisher", "no/topic data").await;
        assert!(refused.1.starts_with("refused: "), "{refused:?}");

        // Unsubscribed functions get no more events.
        let delete = reqwest::Method::DELETE;
        assert_eq!(
            sub_request(&p, delete.clone(), "ps/orders/subscriber")
                .await
                .0,
            200
        );
        assert_eq!(
            sub_request(&p, delete, "ps/orders/subscriber").await.0,
            404,
            "not subscribed anymore"
        );
        functions
            .unsubscribe(subscription("ps", "orders", "subscriber.two"))
            .await
            .unwrap();
        assert_eq!(
            p.call("ps/publisher", "orders x").await,
            (200, "started 0".into())
        );

        // Bad input: a precise status, and the server goes on.
        let bad = dapr::PublishEventRequest {
            pubsub_name: "not/a/user".into(),
            topic: "orders".into(),
            ..Default::default()
        };
        let err = dapr.publish_event(bad).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
        let bad = layotto::PublishEventRequest {
            pubsub_name: "ps".into(),
            topic: String::new(),
            ..Default::default()
        };
        let err = layotto.publish_event(bad).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
        let broken = p
            .http
            .post(format!("{}/v1.0/publish/ps/orders", p.invoke))
            .header("content-type", "application/cloudevents+json")
            .body("{not json")
            .send()
            .await
            .unwrap();
        assert_eq!(broken.status().as_u16(), 400);
        let body = broken.text().await.unwrap();
        assert!(body.contains("ERR_PUBSUB_PUBLISH_MESSAGE"), "{body}");
        p.stop().await;
    }
}

#[tokio::test]
async fn a_c_function_publishes_with_the_c_sdk() {
    let p = up().await;
    p.upload_testkit("c", &["subscriber"]).await;
    p.upload("c/publish", crate::c_guests::c_guest("publish.c"))
        .await;
    let mut functions = p.grpc_client().await;
    functions
        .subscribe(subscription("c", "c-orders", "subscriber"))
        .await
        .unwrap();
    assert_eq!(
        p.call("c/publish", "from C").await,
        (200, "started 1".into())
    );
    let got = envelope(&seen(&p, "c/seen.subscriber", "from C").await);
    assert_eq!(
        (&got["data"], &got["source"]),
        (&"from C".into(), &"c/publish".into())
    );
    p.stop().await;
}

#[tokio::test]
async fn a_function_cannot_publish_past_its_fan_out_limit() {
    let config = fwasm_executor::ExecutorConfig {
        limits: fwasm_executor::Limits {
            max_chained_calls: 1,
            ..test_limits()
        },
        ..test_executor_config()
    };
    let p = up_with(config).await;
    p.upload_testkit("fan", &["publisher", "subscriber", "subscriber.two"])
        .await;
    let mut functions = p.grpc_client().await;
    functions
        .subscribe(subscription("fan", "wide", "subscriber"))
        .await
        .unwrap();
    assert_eq!(
        p.call("fan/publisher", "wide one").await,
        (200, "started 1".into()),
        "one call of room, one subscriber"
    );
    functions
        .subscribe(subscription("fan", "wide", "subscriber.two"))
        .await
        .unwrap();
    let (status, reply) = p.call("fan/publisher", "wide two").await;
    assert_eq!(status, 200);
    assert!(
        reply.starts_with("refused: ") && reply.contains("more than the 1 calls"),
        "two subscribers, room for one: refused whole, {reply}"
    );
    p.stop().await;
}
