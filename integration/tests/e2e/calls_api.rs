//! Users and calls as JSON on the upload port, as the console and scripts read them: a
//! user's recent calls newest first with filters and pages, one call with its output and
//! logs, a call made there, the users with functions; bad queries say what is wrong. The
//! console page itself is served there, kept to its own origin.

use fwasm_proto::pb::CallStatus;
use serde_json::Value;

use crate::support::each_platform;

#[tokio::test]
async fn calls_and_users_are_listed_as_json_and_a_call_is_made_there() {
    for (mode, p) in each_platform().await {
        p.upload_testkit("alice", &["upper", "inspect"]).await;
        p.upload_testkit("bob", &["upper"]).await;
        let (_, _, first) = p.call_with_id("alice/upper", "one").await;
        let (_, _, second) = p.call_with_id("alice/inspect", "two").await;
        let (_, _, bobs) = p.call_with_id("bob/upper", "bob's").await;
        // Listed once their executors have reported them (after the answers).
        for id in [first, second, bobs] {
            assert_eq!(p.record(id).await.status(), CallStatus::Success, "{mode}");
        }
        let get = |path: String| {
            let http = p.http.clone();
            let url = format!("{}{path}", p.upload);
            async move {
                let reply = http.get(url).send().await.unwrap();
                let status = reply.status().as_u16();
                (status, reply.text().await.unwrap())
            }
        };
        let json = |text: &str| serde_json::from_str::<Value>(text).unwrap();
        let ids = |list: &Value| -> Vec<u64> {
            let calls = list.as_array().unwrap();
            calls.iter().map(|c| c["id"].as_u64().unwrap()).collect()
        };

        let (status, listed) = get("/calls?user=alice".into()).await;
        assert_eq!(status, 200, "{mode}: {listed}");
        let listed = json(&listed);
        assert_eq!(ids(&listed), [second, first], "{mode}");
        let call = &listed[1];
        assert_eq!(
            (call["user"].as_str(), call["function"].as_str()),
            (Some("alice"), Some("upper"))
        );
        assert_eq!(call["status"], "SUCCESS");
        assert_eq!(call["failure"], "");
        assert!(call["exec_micros"].as_u64().unwrap() > 0, "{call}");
        assert!(
            call["submitted_at"].as_str().unwrap().ends_with('Z'),
            "{call}"
        );
        assert!(call["finished_at"].is_string() && call.get("output").is_none());
        let (_, only) = get("/calls?user=alice&function=upper&status=success".into()).await;
        assert_eq!(ids(&json(&only)), [first], "{mode}");
        let (_, page) = get(format!("/calls?user=alice&limit=1&before={second}")).await;
        assert_eq!(ids(&json(&page)), [first], "{mode}");
        let (_, everyone) = get("/calls".into()).await;
        assert_eq!(ids(&json(&everyone)).len(), 3, "{mode}");

        // One call, with what it answered and logged.
        let (status, one) = get(format!("/calls/{second}")).await;
        assert_eq!(status, 200, "{mode}");
        let one = json(&one);
        assert!(
            one["output"].as_str().unwrap().contains("body=two"),
            "{one}"
        );
        assert_eq!(one["logs"], "INFO inspect called\n");

        // A call made on the upload port answers how it went as JSON, failed or not.
        let made = p
            .http
            .post(format!("{}/invoke/alice/upper", p.upload))
            .body("made here")
            .send()
            .await
            .unwrap();
        assert_eq!(made.status(), 200, "{mode}");
        let made = json(&made.text().await.unwrap());
        assert_eq!(
            (made["status"].as_str(), made["output"].as_str()),
            (Some("SUCCESS"), Some("MADE HERE"))
        );
        let made = made["id"].as_u64().unwrap();
        p.record(made).await;
        let (_, latest) = get("/calls?user=alice&limit=1".into()).await;
        assert_eq!(ids(&json(&latest)), [made]);
        let missing = p.http.post(format!("{}/invoke/alice/nothing", p.upload));
        assert_eq!(missing.send().await.unwrap().status(), 404, "{mode}");

        let (status, users) = get("/users".into()).await;
        assert_eq!(status, 200, "{mode}");
        // (`fwasm up`'s own demo user too.)
        let users = json(&users)["users"].clone();
        let users: Vec<&str> = users
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u.as_str().unwrap())
            .collect();
        assert_eq!(
            users.iter().filter(|u| **u != "demo").collect::<Vec<_>>(),
            [&"alice", &"bob"],
            "{mode}"
        );

        // Bad asks are answered with what is wrong.
        for (path, status, said) in [
            (
                "/calls?status=done",
                400,
                "unknown status \"done\": one of queued, running, success, failed",
            ),
            (
                "/calls?limit=many",
                400,
                "limit must be a number, not \"many\"",
            ),
            (
                "/calls?colour=red",
                400,
                "unknown parameter \"colour\": calls are listed by user, function, status, limit and before",
            ),
            (
                "/calls/soon",
                400,
                "\"soon\" is not a call id (a number, as `fwasm invoke --async` prints)",
            ),
            (
                "/calls/987654321",
                404,
                "no call with id 987654321 is known (finished calls are kept for 3600s)",
            ),
        ] {
            assert_eq!(
                get(path.into()).await,
                (status, format!("{said}\n")),
                "{mode}: {path}"
            );
        }

        // The console: a page of this origin alone.
        let page = p.http.get(format!("{}/", p.upload)).send().await.unwrap();
        assert_eq!(page.status(), 200);
        let policy = page.headers()["content-security-policy"].to_str().unwrap();
        assert!(
            policy.starts_with("default-src 'self'; script-src 'self';"),
            "{policy}"
        );
        assert!(
            page.text()
                .await
                .unwrap()
                .contains("<script src=\"/console.js\"")
        );
        for asset in ["/console.js", "/console.css"] {
            let (status, _) = get(asset.into()).await;
            assert_eq!(status, 200, "{asset}");
        }
        p.stop().await;
    }
}
