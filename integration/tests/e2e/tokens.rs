//! Tokens on every door (`fwasm up --auth`): each endpoint asked by no token, an unknown token,
//! another user's, the owner's and the admin's, with the exact status each gets.

use std::future::Future;

use fwasm_proto::dapr::proto::runtime::v1 as dapr;
use fwasm_proto::dapr::proto::runtime::v1::dapr_client::DaprClient;
use fwasm_proto::layotto;
use fwasm_proto::layotto::runtime_client::RuntimeClient;
use fwasm_proto::pb::functions_client::FunctionsClient;
use fwasm_proto::pb::{
    CallRef, CallStatus, CreateTokenRequest, FunctionRef, InvokeRequest, ListCallsRequest,
    ListFunctionsRequest, ListKeysRequest, ListSubscriptionsRequest, ListTokensRequest,
    ListUsersRequest, QuotaRef, SetStateRequest, StateKey, Subscription, TokenRef, UploadRequest,
    UserQuota, WaitCallRequest,
};
use reqwest::Method;
use tonic::Code;
use tonic::transport::Channel;

use crate::support::{Platform, test_gateway_config, up_with_gateway, up_with_tokens};

const ADMIN: &str = "the-operators-own-admin-token";
const UNKNOWN: &str =
    "fwasm_0123456789abcdef_0000000000000000000000000000000000000000000000000000000000000000";

/// The five callers, in the order the expected statuses list them.
struct Callers {
    bob: String,
    alice: String,
}

impl Callers {
    fn all(&self) -> [(&'static str, Option<&str>); 5] {
        [
            ("no token", None),
            ("an unknown token", Some(UNKNOWN)),
            ("another user's token", Some(self.bob.as_str())),
            ("the owner's token", Some(self.alice.as_str())),
            ("the admin token", Some(ADMIN)),
        ]
    }
}

/// What a user's own endpoint answers each caller.
const USERS: [u16; 5] = [401, 401, 403, 200, 200];
/// ... a call's: another user's call is unknown to it.
const CALLS: [u16; 5] = [401, 401, 404, 200, 200];
/// ... cancelling a call that has ended: its caller (and an admin) learn it has.
const ENDED_CALLS: [u16; 5] = [401, 401, 404, 409, 409];
/// ... an admin-only one.
const ADMINS: [u16; 5] = [401, 401, 403, 403, 200];
/// ... one that holds nothing: anyone, token or not.
const OPEN: [u16; 5] = [200, 200, 200, 200, 200];
/// ... one that belongs to no user: any caller fwasm knows.
const ANYONE: [u16; 5] = [401, 401, 200, 200, 200];

fn grpc_codes(statuses: [u16; 5]) -> [Code; 5] {
    statuses.map(|status| match status {
        401 => Code::Unauthenticated,
        403 => Code::PermissionDenied,
        404 => Code::NotFound,
        409 => Code::FailedPrecondition,
        _ => Code::Ok,
    })
}

/// Asks `ask` as each caller and compares what each got with `expected`.
async fn matrix<F, Fut>(callers: &Callers, what: &str, expected: [u16; 5], ask: F)
where
    F: Fn(Option<String>) -> Fut,
    Fut: Future<Output = u16>,
{
    let mut got = Vec::new();
    for (_, token) in callers.all() {
        got.push(ask(token.map(str::to_string)).await);
    }
    let named: Vec<String> = callers
        .all()
        .iter()
        .zip(&got)
        .map(|((who, _), status)| format!("{who}: {status}"))
        .collect();
    assert_eq!(got, expected, "{what}: {named:?}");
}

/// The same for a gRPC method, by status code.
async fn grpc_matrix<F, Fut>(callers: &Callers, what: &str, expected: [u16; 5], ask: F)
where
    F: Fn(Option<String>) -> Fut,
    Fut: Future<Output = Code>,
{
    let expected = grpc_codes(expected);
    let mut got = Vec::new();
    for (_, token) in callers.all() {
        got.push(ask(token.map(str::to_string)).await);
    }
    assert_eq!(got, expected, "{what}");
}

/// `message` with the token as `authorization: Bearer` metadata (or Dapr's `dapr-api-token`).
fn request<T>(message: T, token: &Option<String>, dapr_style: bool) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    if let Some(token) = token {
        let (name, value) = match dapr_style {
            true => ("dapr-api-token", token.clone()),
            false => ("authorization", format!("Bearer {token}")),
        };
        request.metadata_mut().insert(name, value.parse().unwrap());
    }
    request
}

fn code<T>(result: Result<tonic::Response<T>, tonic::Status>) -> Code {
    result.map_or_else(|status| status.code(), |_| Code::Ok)
}

async fn send(builder: reqwest::RequestBuilder, token: &Option<String>) -> u16 {
    let builder = match token {
        Some(token) => builder.bearer_auth(token),
        None => builder,
    };
    let status = builder.send().await.unwrap().status().as_u16();
    // 204s of Dapr's API count as success.
    if status == 204 { 200 } else { status }
}

async fn channel(p: &Platform) -> Channel {
    Channel::from_shared(p.grpc.clone())
        .unwrap()
        .connect()
        .await
        .unwrap()
}

/// An admin makes tokens for alice and bob, and alice's function, state and a call of hers.
async fn setting_up(p: &Platform) -> (Callers, u64) {
    let mut admin = FunctionsClient::new(channel(p).await);
    let mut token_of = async |user: &str| {
        let create = CreateTokenRequest {
            user: user.into(),
            admin: false,
        };
        let created = admin
            .create_token(request(create, &Some(ADMIN.into()), false))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(created.user, user);
        created.token
    };
    let callers = Callers {
        bob: token_of("bob").await,
        alice: token_of("alice").await,
    };
    let as_admin = Some(ADMIN.to_string());
    let echo = p
        .http
        .put(format!("{}/f/alice/echo", p.upload))
        .body(echo());
    assert_eq!(send(echo, &as_admin).await, 200);
    let state = p.http.put(format!("{}/s/alice/k", p.upload)).body("v");
    assert_eq!(send(state, &as_admin).await, 200);
    let call = p.http.post(format!("{}/fa/alice/echo", p.invoke)).body("x");
    let call = call.bearer_auth(ADMIN).send().await.unwrap();
    let id = call.text().await.unwrap().parse().unwrap();
    // Ended before any row asks about it (cancelling it answers that it has ended).
    let wait = WaitCallRequest {
        id,
        ..WaitCallRequest::default()
    };
    let ended = admin.wait_call(request(wait, &as_admin, false)).await;
    assert_eq!(ended.unwrap().into_inner().status(), CallStatus::Success);
    (callers, id)
}

fn echo() -> Vec<u8> {
    fwasm::up::DEMOS
        .iter()
        .find(|d| d.1 == "echo")
        .unwrap()
        .2
        .to_vec()
}

#[tokio::test]
async fn faasms_http_api_checks_every_request() {
    let p = up_with_tokens(ADMIN).await;
    let (callers, id) = setting_up(&p).await;
    let (invoke, upload) = (p.invoke.clone(), p.upload.clone());
    let http = &p.http;
    // Faasm's planner protocol (faasmctl's): a batch of alice's, for the status row.
    let batch = |app_id: i32| {
        let payload = format!(
            r#"{{"appId": {app_id}, "messages": [{{"user": "alice", "function": "echo"}}]}}"#
        );
        serde_json::json!({"http_type": "EXECUTE_BATCH", "payload": payload}).to_string()
    };
    let alices = http.post(format!("{invoke}/")).body(batch(4242));
    assert_eq!(send(alices, &Some(callers.alice.clone())).await, 200);
    let status = r#"{"http_type": "EXECUTE_BATCH_STATUS", "payload": "{\"appId\": 4242}"}"#;
    let cases: Vec<(&str, [u16; 5], Method, String, String)> = vec![
        (
            "upload",
            USERS,
            Method::PUT,
            format!("{upload}/f/alice/two"),
            "wasm".into(),
        ),
        (
            "download",
            USERS,
            Method::GET,
            format!("{upload}/f/alice/echo"),
            String::new(),
        ),
        (
            "upload Python",
            USERS,
            Method::PUT,
            format!("{upload}/p/alice/script"),
            "def faasm_main():\n    return 0\n".into(),
        ),
        (
            "download Python",
            USERS,
            Method::GET,
            format!("{upload}/p/alice/echo"),
            String::new(),
        ),
        (
            "invoke",
            USERS,
            Method::POST,
            format!("{invoke}/f/alice/echo"),
            "hi".into(),
        ),
        (
            "a call's logs",
            CALLS,
            Method::GET,
            format!("{invoke}/logs/{id}"),
            String::new(),
        ),
        (
            "cancel a call",
            ENDED_CALLS,
            Method::POST,
            format!("{invoke}/cancel/{id}"),
            String::new(),
        ),
        (
            "invoke /p/",
            USERS,
            Method::POST,
            format!("{invoke}/p/alice/echo"),
            "hi".into(),
        ),
        (
            "Faasm JSON Python invoke",
            USERS,
            Method::POST,
            format!("{invoke}/"),
            r#"{"python": true, "py_user": "alice", "py_func": "echo", "input_data": "hi"}"#.into(),
        ),
        (
            "invoke a path",
            USERS,
            Method::POST,
            format!("{invoke}/f/alice/echo/a/b"),
            "hi".into(),
        ),
        (
            "invoke async",
            USERS,
            Method::POST,
            format!("{invoke}/fa/alice/echo"),
            "hi".into(),
        ),
        (
            "Faasm JSON invoke",
            USERS,
            Method::POST,
            format!("{invoke}/"),
            r#"{"user": "alice", "function": "echo", "input_data": "hi"}"#.into(),
        ),
        (
            "Faasm JSON status",
            CALLS,
            Method::POST,
            format!("{invoke}/"),
            format!(r#"{{"status": true, "id": {id}}}"#),
        ),
        (
            "Faasm planner batch",
            USERS,
            Method::POST,
            format!("{invoke}/"),
            // Id 0: each caller's batch gets an app id of its own.
            batch(0),
        ),
        (
            "Faasm planner status",
            CALLS,
            Method::POST,
            format!("{invoke}/"),
            status.into(),
        ),
        (
            "set state",
            USERS,
            Method::PUT,
            format!("{upload}/s/alice/k"),
            "v".into(),
        ),
        (
            "get state",
            USERS,
            Method::GET,
            format!("{upload}/s/alice/k"),
            String::new(),
        ),
        (
            "subscribe",
            USERS,
            Method::PUT,
            format!("{upload}/sub/alice/t/echo"),
            String::new(),
        ),
        (
            "list subscriptions",
            USERS,
            Method::GET,
            format!("{upload}/sub/alice"),
            String::new(),
        ),
        (
            "list a topic",
            USERS,
            Method::GET,
            format!("{upload}/sub/alice/t"),
            String::new(),
        ),
        (
            "Dapr invoke",
            USERS,
            Method::POST,
            format!("{invoke}/v1.0/invoke/alice/method/echo"),
            "hi".into(),
        ),
        (
            "Dapr save state",
            USERS,
            Method::POST,
            format!("{invoke}/v1.0/state/alice"),
            r#"[{"key": "k", "value": "v"}]"#.into(),
        ),
        (
            "Dapr get state",
            USERS,
            Method::GET,
            format!("{invoke}/v1.0/state/alice/k"),
            String::new(),
        ),
        (
            "Dapr publish",
            USERS,
            Method::POST,
            format!("{invoke}/v1.0/publish/alice/t"),
            "{}".into(),
        ),
    ];
    for (what, expected, method, url, body) in cases {
        // The upload's body must be a module, or the owner's upload is refused as bad wasm.
        let body = match what {
            "upload" => echo(),
            _ => body.into_bytes(),
        };
        matrix(&callers, what, expected, |token| {
            let builder = http.request(method.clone(), &url).body(body.clone());
            async move { send(builder, &token).await }
        })
        .await;
    }
    matrix(&callers, "list state keys", USERS, |token| {
        let builder = http.get(format!("{upload}/s/alice"));
        async move { send(builder, &token).await }
    })
    .await;
    matrix(&callers, "delete a state key", USERS, |token| {
        let builder = http.delete(format!("{upload}/s/alice/gone"));
        async move { send(builder, &token).await }
    })
    .await;
    matrix(&callers, "list functions", USERS, |token| {
        let builder = http.get(format!("{upload}/f/alice"));
        async move { send(builder, &token).await }
    })
    .await;
    // What the console reads and does, on the upload port; its page holds nothing and is open.
    let console_doors: Vec<(&str, [u16; 5], Method, String)> = vec![
        ("list users", ADMINS, Method::GET, format!("{upload}/users")),
        (
            "list a user's calls",
            USERS,
            Method::GET,
            format!("{upload}/calls?user=alice"),
        ),
        (
            // Naming no user: the caller's own calls (an admin's: everyone's).
            "list one's calls",
            ANYONE,
            Method::GET,
            format!("{upload}/calls"),
        ),
        (
            "a call as JSON",
            CALLS,
            Method::GET,
            format!("{upload}/calls/{id}"),
        ),
        (
            "invoke as JSON",
            USERS,
            Method::POST,
            format!("{upload}/invoke/alice/echo"),
        ),
        (
            "cancel on the upload port",
            ENDED_CALLS,
            Method::POST,
            format!("{upload}/cancel/{id}"),
        ),
        ("the console page", OPEN, Method::GET, format!("{upload}/")),
        (
            "the console's script",
            OPEN,
            Method::GET,
            format!("{upload}/console.js"),
        ),
    ];
    for (what, expected, method, url) in console_doors {
        matrix(&callers, what, expected, |token| {
            let builder = http.request(method.clone(), &url);
            async move { send(builder, &token).await }
        })
        .await;
    }
    // Each deletes a function there is (the admin puts it back first).
    matrix(&callers, "delete a function", USERS, |token| {
        let put_back = http
            .put(format!("{upload}/f/alice/gone"))
            .bearer_auth(ADMIN)
            .body(echo());
        let builder = http.delete(format!("{upload}/f/alice/gone"));
        async move {
            assert_eq!(put_back.send().await.unwrap().status(), 200);
            send(builder, &token).await
        }
    })
    .await;
    // Faasm's `/file` names no user: each caller reaches its own files, an admin the common ones.
    matrix(&callers, "put a file", ANYONE, |token| {
        let body = format!("from {}", token.as_deref().unwrap_or("no one"));
        let builder = http
            .put(format!("{upload}/file"))
            .header("FilePath", "data/a.txt")
            .body(body);
        async move { send(builder, &token).await }
    })
    .await;
    for token in [callers.bob.as_str(), callers.alice.as_str(), ADMIN] {
        let got = http
            .get(format!("{upload}/file"))
            .header("FilePath", "data/a.txt")
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(got.status(), 200);
        assert_eq!(got.text().await.unwrap(), format!("from {token}"));
    }
    matrix(&callers, "get a file", ANYONE, |token| {
        let builder = http
            .get(format!("{upload}/file"))
            .header("FilePath", "data/a.txt");
        async move { send(builder, &token).await }
    })
    .await;
    matrix(&callers, "list files", ANYONE, |token| {
        let builder = http.get(format!("{upload}/files"));
        async move { send(builder, &token).await }
    })
    .await;
    // Each deletes its own (which it has: one delete each).
    matrix(&callers, "delete a file", ANYONE, |token| {
        let builder = http
            .delete(format!("{upload}/file"))
            .header("FilePath", "data/a.txt");
        async move { send(builder, &token).await }
    })
    .await;
    // Dapr's own header does what Bearer does.
    let daprs = |token: &str| {
        http.get(format!("{invoke}/v1.0/state/alice/k"))
            .header("dapr-api-token", token)
    };
    assert_eq!(daprs(&callers.alice).send().await.unwrap().status(), 200);
    assert_eq!(daprs(&callers.bob).send().await.unwrap().status(), 403);
    // Health and metrics stay open; a refusal says what to send.
    for (base, path) in [
        (&upload, "/ping"),
        (&invoke, "/ping"),
        (&invoke, "/metrics"),
    ] {
        let response = http.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
    }
    let healthz = http
        .get(format!("{invoke}/v1.0/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(healthz.status(), 204);
    let refused = http
        .post(format!("{invoke}/f/alice/echo"))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.headers()["www-authenticate"], "Bearer");
    let message = refused.text().await.unwrap();
    assert!(message.contains("Authorization: Bearer"), "{message}");
    let denied = http
        .get(format!("{upload}/s/alice/k"))
        .bearer_auth(&callers.bob)
        .send()
        .await
        .unwrap();
    assert_eq!(
        denied.text().await.unwrap(),
        "a token of bob does not reach alice's state\n"
    );
    p.stop().await;
}

#[tokio::test]
async fn the_grpc_apis_check_every_method() {
    let p = up_with_tokens(ADMIN).await;
    let (callers, id) = setting_up(&p).await;
    let functions = FunctionsClient::new(channel(&p).await);
    let as_admin = Some(ADMIN.to_string());
    let f = || functions.clone();
    grpc_matrix(&callers, "Upload", USERS, |token| async move {
        let upload = UploadRequest {
            user: "alice".into(),
            function: "two".into(),
            wasm: echo().into(),
            settings: None,
            python: false,
        };
        code(f().upload(request(upload, &token, false)).await)
    })
    .await;
    let invocation = InvokeRequest {
        user: "alice".into(),
        function: "echo".into(),
        input: "hi".into(),
        ..InvokeRequest::default()
    };
    grpc_matrix(&callers, "Invoke", USERS, |token| {
        let invocation = invocation.clone();
        async move { code(f().invoke(request(invocation, &token, false)).await) }
    })
    .await;
    // An MPI world's call (its ranks are the executor's to start) asks for the same.
    let world = InvokeRequest {
        mpi_world_size: 2,
        ..invocation.clone()
    };
    grpc_matrix(&callers, "Invoke an MPI world", USERS, |token| {
        let world = world.clone();
        async move { code(f().invoke(request(world, &token, false)).await) }
    })
    .await;
    grpc_matrix(&callers, "InvokeAsync", USERS, |token| {
        let invocation = invocation.clone();
        async move { code(f().invoke_async(request(invocation, &token, false)).await) }
    })
    .await;
    grpc_matrix(&callers, "GetCall", CALLS, |token| async move {
        let call = CallRef {
            id,
            ..CallRef::default()
        };
        code(f().get_call(request(call, &token, false)).await)
    })
    .await;
    grpc_matrix(&callers, "CancelCall", ENDED_CALLS, |token| async move {
        let call = CallRef {
            id,
            ..CallRef::default()
        };
        code(f().cancel_call(request(call, &token, false)).await)
    })
    .await;
    grpc_matrix(&callers, "WaitCall", CALLS, |token| async move {
        let wait = WaitCallRequest {
            id,
            timeout_ms: 5000,
            ..WaitCallRequest::default()
        };
        code(f().wait_call(request(wait, &token, false)).await)
    })
    .await;
    // Another user's call reads exactly as one that never was.
    let hidden = f()
        .get_call(request(
            CallRef {
                id,
                ..CallRef::default()
            },
            &Some(callers.bob.clone()),
            false,
        ))
        .await
        .unwrap_err();
    let never = f()
        .get_call(request(
            CallRef {
                id: 1,
                ..CallRef::default()
            },
            &as_admin,
            false,
        ))
        .await
        .unwrap_err();
    assert_eq!(
        hidden.message(),
        never.message().replace("id 1 ", &format!("id {id} "))
    );
    grpc_matrix(&callers, "SetState", USERS, |token| async move {
        let set = SetStateRequest {
            user: "alice".into(),
            key: "k".into(),
            value: "v".into(),
        };
        code(f().set_state(request(set, &token, false)).await)
    })
    .await;
    grpc_matrix(&callers, "GetState", USERS, |token| async move {
        let key = StateKey {
            user: "alice".into(),
            key: "k".into(),
        };
        code(f().get_state(request(key, &token, false)).await)
    })
    .await;
    let subscription = Subscription {
        user: "alice".into(),
        topic: "t".into(),
        function: "echo".into(),
    };
    grpc_matrix(&callers, "Subscribe", USERS, |token| {
        let subscription = subscription.clone();
        async move { code(f().subscribe(request(subscription, &token, false)).await) }
    })
    .await;
    grpc_matrix(&callers, "ListSubscriptions", USERS, |token| async move {
        let list = ListSubscriptionsRequest {
            user: "alice".into(),
            topic: String::new(),
        };
        code(f().list_subscriptions(request(list, &token, false)).await)
    })
    .await;
    grpc_matrix(&callers, "Unsubscribe", USERS, |token| {
        let (subscription, as_admin) = (subscription.clone(), as_admin.clone());
        async move {
            let again = request(subscription.clone(), &as_admin, false);
            f().subscribe(again).await.unwrap();
            code(f().unsubscribe(request(subscription, &token, false)).await)
        }
    })
    .await;
    grpc_matrix(&callers, "CreateToken", ADMINS, |token| async move {
        let create = CreateTokenRequest {
            user: "carol".into(),
            admin: false,
        };
        code(f().create_token(request(create, &token, false)).await)
    })
    .await;
    grpc_matrix(&callers, "ListTokens", ADMINS, |token| async move {
        code(
            f().list_tokens(request(ListTokensRequest {}, &token, false))
                .await,
        )
    })
    .await;
    grpc_matrix(&callers, "RevokeToken", ADMINS, |token| {
        let as_admin = as_admin.clone();
        async move {
            let create = CreateTokenRequest {
                user: "dave".into(),
                admin: false,
            };
            let made = f().create_token(request(create, &as_admin, false)).await;
            let id = made.unwrap().into_inner().id;
            code(
                f().revoke_token(request(TokenRef { id }, &token, false))
                    .await,
            )
        }
    })
    .await;
    grpc_matrix(&callers, "SetQuota", ADMINS, |token| async move {
        let quota = UserQuota {
            user: "alice".into(),
            max_concurrent_calls: 100,
            ..UserQuota::default()
        };
        code(f().set_quota(request(quota, &token, false)).await)
    })
    .await;
    grpc_matrix(&callers, "GetQuota", USERS, |token| async move {
        let quota = QuotaRef {
            user: "alice".into(),
        };
        code(f().get_quota(request(quota, &token, false)).await)
    })
    .await;
    grpc_matrix(&callers, "GetUsage", USERS, |token| async move {
        let quota = QuotaRef {
            user: "alice".into(),
        };
        code(f().get_usage(request(quota, &token, false)).await)
    })
    .await;
    grpc_matrix(&callers, "ListKeys", USERS, |token| async move {
        let keys = ListKeysRequest {
            user: "alice".into(),
            ..Default::default()
        };
        code(f().list_keys(request(keys, &token, false)).await)
    })
    .await;
    grpc_matrix(&callers, "DeleteState", USERS, |token| async move {
        let key = StateKey {
            user: "alice".into(),
            key: "gone".into(),
        };
        code(f().delete_state(request(key, &token, false)).await)
    })
    .await;
    grpc_matrix(&callers, "ListUsers", ADMINS, |token| async move {
        code(
            f().list_users(request(ListUsersRequest {}, &token, false))
                .await,
        )
    })
    .await;
    grpc_matrix(&callers, "ListCalls", USERS, |token| async move {
        let calls = ListCallsRequest {
            user: "alice".into(),
            ..ListCallsRequest::default()
        };
        code(f().list_calls(request(calls, &token, false)).await)
    })
    .await;
    grpc_matrix(
        &callers,
        "ListCalls naming no user",
        ANYONE,
        |token| async move {
            let calls = ListCallsRequest::default();
            code(f().list_calls(request(calls, &token, false)).await)
        },
    )
    .await;
    grpc_matrix(&callers, "ListFunctions", USERS, |token| async move {
        let user = ListFunctionsRequest {
            user: "alice".into(),
        };
        code(f().list_functions(request(user, &token, false)).await)
    })
    .await;
    // Each deletes a function there is (the admin puts it back first).
    grpc_matrix(&callers, "DeleteFunction", USERS, |token| {
        let as_admin = as_admin.clone();
        async move {
            let put_back = UploadRequest {
                user: "alice".into(),
                function: "gone".into(),
                wasm: echo().into(),
                settings: None,
                python: false,
            };
            f().upload(request(put_back, &as_admin, false))
                .await
                .unwrap();
            let gone = FunctionRef {
                user: "alice".into(),
                function: "gone".into(),
            };
            code(f().delete_function(request(gone, &token, false)).await)
        }
    })
    .await;

    let layotto = RuntimeClient::new(channel(&p).await);
    let l = || layotto.clone();
    grpc_matrix(&callers, "Layotto GetState", USERS, |token| async move {
        let get = layotto::GetStateRequest {
            store_name: "alice".into(),
            key: "k".into(),
            ..Default::default()
        };
        code(l().get_state(request(get, &token, false)).await)
    })
    .await;
    grpc_matrix(&callers, "Layotto SaveState", USERS, |token| async move {
        let save = layotto::SaveStateRequest {
            store_name: "alice".into(),
            states: vec![layotto::StateItem {
                key: "k".into(),
                value: "v".into(),
                ..Default::default()
            }],
        };
        code(l().save_state(request(save, &token, false)).await)
    })
    .await;
    grpc_matrix(
        &callers,
        "Layotto InvokeService",
        USERS,
        |token| async move {
            let invoke = layotto::InvokeServiceRequest {
                id: "alice".into(),
                message: Some(layotto::CommonInvokeRequest {
                    method: "echo".into(),
                    ..Default::default()
                }),
            };
            code(l().invoke_service(request(invoke, &token, false)).await)
        },
    )
    .await;
    grpc_matrix(&callers, "Layotto TryLock", USERS, |token| async move {
        let lock = layotto::TryLockRequest {
            store_name: "alice".into(),
            resource_id: "r".into(),
            lock_owner: "o".into(),
            expire: 1,
        };
        code(l().try_lock(request(lock, &token, false)).await)
    })
    .await;

    grpc_matrix(
        &callers,
        "Layotto GetBulkState",
        USERS,
        |token| async move {
            let get = layotto::GetBulkStateRequest {
                store_name: "alice".into(),
                keys: vec!["k".into()],
                ..Default::default()
            };
            code(l().get_bulk_state(request(get, &token, false)).await)
        },
    )
    .await;
    grpc_matrix(&callers, "Layotto DeleteState", USERS, |token| async move {
        let delete = layotto::DeleteStateRequest {
            store_name: "alice".into(),
            key: "gone".into(),
            ..Default::default()
        };
        code(l().delete_state(request(delete, &token, false)).await)
    })
    .await;
    grpc_matrix(
        &callers,
        "Layotto ExecuteStateTransaction",
        USERS,
        |token| async move {
            let transaction = layotto::ExecuteStateTransactionRequest {
                store_name: "alice".into(),
                operations: vec![layotto::TransactionalStateOperation {
                    operation_type: "upsert".into(),
                    request: Some(layotto::StateItem {
                        key: "t".into(),
                        value: "v".into(),
                        ..Default::default()
                    }),
                }],
                ..Default::default()
            };
            code(
                l().execute_state_transaction(request(transaction, &token, false))
                    .await,
            )
        },
    )
    .await;
    grpc_matrix(&callers, "Layotto Unlock", USERS, |token| async move {
        let unlock = layotto::UnlockRequest {
            store_name: "alice".into(),
            resource_id: "r".into(),
            lock_owner: "o".into(),
        };
        code(l().unlock(request(unlock, &token, false)).await)
    })
    .await;
    grpc_matrix(&callers, "Layotto GetNextId", USERS, |token| async move {
        let next = layotto::GetNextIdRequest {
            store_name: "alice".into(),
            key: "ids".into(),
            ..Default::default()
        };
        code(l().get_next_id(request(next, &token, false)).await)
    })
    .await;
    grpc_matrix(
        &callers,
        "Layotto PublishEvent",
        USERS,
        |token| async move {
            let publish = layotto::PublishEventRequest {
                pubsub_name: "alice".into(),
                topic: "t".into(),
                data: "{}".into(),
                ..Default::default()
            };
            code(l().publish_event(request(publish, &token, false)).await)
        },
    )
    .await;
    // The store names whose files: alice's are hers and the admin's to reach.
    let put_alices = |token: Option<String>| async move {
        let chunk = layotto::PutFileRequest {
            store_name: "alice".into(),
            name: "shared/x.txt".into(),
            data: "x".into(),
            ..Default::default()
        };
        let chunks = tokio_stream::iter([chunk]);
        code(l().put_file(request(chunks, &token, false)).await)
    };
    grpc_matrix(&callers, "Layotto PutFile", USERS, put_alices).await;
    let file_request = || layotto::FileRequest {
        store_name: "alice".into(),
        name: "shared/x.txt".into(),
        ..Default::default()
    };
    grpc_matrix(&callers, "Layotto ListFile", USERS, |token| async move {
        let list = layotto::ListFileRequest {
            request: Some(file_request()),
            ..Default::default()
        };
        code(l().list_file(request(list, &token, false)).await)
    })
    .await;
    grpc_matrix(&callers, "Layotto GetFile", USERS, |token| async move {
        let get = layotto::GetFileRequest {
            store_name: "alice".into(),
            name: "shared/x.txt".into(),
            ..Default::default()
        };
        code(l().get_file(request(get, &token, false)).await)
    })
    .await;
    // Alice's file (there now) is not a common one, which an admin reaches through `/file`.
    let common = p
        .http
        .get(format!("{}/file", p.upload))
        .header("FilePath", "shared/x.txt");
    assert_eq!(
        send(common, &as_admin).await,
        404,
        "alice's file is not common"
    );
    grpc_matrix(&callers, "Layotto DelFile", USERS, |token| async move {
        // There again for each caller, so a refusal is the token's, not a missing file's.
        assert_eq!(put_alices(Some(ADMIN.into())).await, Code::Ok);
        let delete = layotto::DelFileRequest {
            request: Some(file_request()),
        };
        code(l().del_file(request(delete, &token, false)).await)
    })
    .await;
    grpc_matrix(&callers, "ListFiles", USERS, |token| async move {
        let files = fwasm_proto::pb::ListFilesRequest {
            user: "alice".into(),
            ..Default::default()
        };
        code(f().list_files(request(files, &token, false)).await)
    })
    .await;
    grpc_matrix(&callers, "DeleteFile", USERS, |token| async move {
        // There again for each caller, so a refusal is the token's, not a missing file's.
        assert_eq!(put_alices(Some(ADMIN.into())).await, Code::Ok);
        let gone = fwasm_proto::pb::FileRef {
            user: "alice".into(),
            path: "shared/x.txt".into(),
            or_common: false,
        };
        code(f().delete_file(request(gone, &token, false)).await)
    })
    .await;
    let dapr = DaprClient::new(channel(&p).await);
    let d = || dapr.clone();
    grpc_matrix(&callers, "Dapr SaveState", USERS, |token| async move {
        let save = dapr::SaveStateRequest {
            store_name: "alice".into(),
            states: vec![fwasm_proto::dapr::proto::common::v1::StateItem {
                key: "k".into(),
                value: "v".into(),
                ..Default::default()
            }],
        };
        code(d().save_state(request(save, &token, true)).await)
    })
    .await;
    grpc_matrix(&callers, "Dapr GetBulkState", USERS, |token| async move {
        let get = dapr::GetBulkStateRequest {
            store_name: "alice".into(),
            keys: vec!["k".into()],
            ..Default::default()
        };
        code(d().get_bulk_state(request(get, &token, true)).await)
    })
    .await;
    grpc_matrix(&callers, "Dapr DeleteState", USERS, |token| async move {
        let delete = dapr::DeleteStateRequest {
            store_name: "alice".into(),
            key: "gone".into(),
            ..Default::default()
        };
        code(d().delete_state(request(delete, &token, true)).await)
    })
    .await;
    grpc_matrix(&callers, "Dapr InvokeService", USERS, |token| async move {
        let invoke = dapr::InvokeServiceRequest {
            id: "alice".into(),
            message: Some(fwasm_proto::dapr::proto::common::v1::InvokeRequest {
                method: "echo".into(),
                ..Default::default()
            }),
        };
        code(d().invoke_service(request(invoke, &token, true)).await)
    })
    .await;
    grpc_matrix(&callers, "Dapr UnlockAlpha1", USERS, |token| async move {
        let unlock = dapr::UnlockRequest {
            store_name: "alice".into(),
            resource_id: "r".into(),
            lock_owner: "o".into(),
        };
        code(d().unlock_alpha1(request(unlock, &token, true)).await)
    })
    .await;
    // Not a user's: any caller fwasm knows may ask.
    grpc_matrix(&callers, "Dapr GetMetadata", ANYONE, |token| async move {
        code(
            d().get_metadata(request(dapr::GetMetadataRequest {}, &token, true))
                .await,
        )
    })
    .await;
    grpc_matrix(&callers, "Dapr GetState", USERS, |token| async move {
        let get = dapr::GetStateRequest {
            store_name: "alice".into(),
            key: "k".into(),
            ..Default::default()
        };
        code(d().get_state(request(get, &token, true)).await)
    })
    .await;
    grpc_matrix(&callers, "Dapr PublishEvent", USERS, |token| async move {
        let publish = dapr::PublishEventRequest {
            pubsub_name: "alice".into(),
            topic: "t".into(),
            data: "{}".into(),
            ..Default::default()
        };
        code(d().publish_event(request(publish, &token, true)).await)
    })
    .await;
    p.stop().await;
}

#[tokio::test]
async fn the_cli_sends_its_token_and_revoked_tokens_stop_at_once() {
    let p = up_with_tokens(ADMIN).await;
    let server = |token: Option<&str>| fwasm::client::Server {
        addr: p.grpc.clone(),
        token: token.map(str::to_string),
        ..Default::default()
    };
    let (mut token, mut note) = (Vec::new(), Vec::new());
    fwasm::client::token_create(server(Some(ADMIN)), "erin", false, &mut token, &mut note)
        .await
        .unwrap();
    let token = String::from_utf8(token).unwrap().trim().to_string();
    let note = String::from_utf8(note).unwrap();
    assert!(token.starts_with("fwasm_"), "{token}");
    assert!(note.contains("a token of erin"), "{note}");
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), echo()).unwrap();
    let mut out = Vec::new();
    fwasm::client::upload(server(Some(&token)), "erin/echo", file.path(), &mut out)
        .await
        .unwrap();
    let mut out = Vec::new();
    fwasm::client::invoke(server(Some(&token)), "erin/echo", b"hi".to_vec(), &mut out)
        .await
        .unwrap();
    assert_eq!(out, b"hi");
    let without = fwasm::client::invoke(server(None), "erin/echo", vec![], &mut Vec::new())
        .await
        .unwrap_err()
        .to_string();
    assert!(without.contains("requires a token"), "{without}");
    let others = fwasm::client::invoke(server(Some(&token)), "demo/echo", vec![], &mut Vec::new())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        others.contains("a token of erin does not reach demo's functions"),
        "{others}"
    );
    let listing = fwasm::client::token_list(server(Some(&token)), &mut Vec::new())
        .await
        .unwrap_err()
        .to_string();
    assert!(listing.contains("does not reach tokens"), "{listing}");

    let mut listed = Vec::new();
    fwasm::client::token_list(server(Some(ADMIN)), &mut listed)
        .await
        .unwrap();
    let listed = String::from_utf8(listed).unwrap();
    let id = token.split('_').nth(1).unwrap();
    let line = listed.lines().find(|l| l.starts_with(id)).expect(&listed);
    assert!(line.contains("erin") && line.contains(" no "), "{line}");
    assert!(listed.lines().any(|l| l.starts_with("admin ")), "{listed}");
    assert!(
        !listed.contains(&token[id.len() + 7..]),
        "a secret listed: {listed}"
    );

    let mut out = Vec::new();
    fwasm::client::token_revoke(server(Some(ADMIN)), id, &mut out)
        .await
        .unwrap();
    assert_eq!(
        String::from_utf8(out).unwrap(),
        format!("Revoked token {id}\n")
    );
    let revoked = fwasm::client::invoke(server(Some(&token)), "erin/echo", vec![], &mut Vec::new())
        .await
        .unwrap_err()
        .to_string();
    assert!(revoked.contains("not one fwasm knows"), "{revoked}");
    let again = fwasm::client::token_revoke(server(Some(ADMIN)), id, &mut Vec::new())
        .await
        .unwrap_err()
        .to_string();
    assert!(again.contains("no token has the id"), "{again}");
    p.stop().await;
}

#[tokio::test]
async fn an_operators_admin_token_is_any_text_even_one_shaped_like_fwasms() {
    for admin in [
        "fwasm_shaped_like-a-token-of-fwasms-own-making",
        "any text at all, if long",
    ] {
        let p = up_with_tokens(admin).await;
        let echo = p.http.post(format!("{}/f/demo/echo", p.invoke)).body("hi");
        assert_eq!(send(echo, &Some(admin.to_string())).await, 200, "{admin}");
        // A mistyped one, or one naming no token, is unknown: 401, not a bad request.
        for wrong in [format!("{admin}x"), "fwasm_bad/id_secret".into()] {
            let echo = p.http.post(format!("{}/f/demo/echo", p.invoke)).body("hi");
            assert_eq!(send(echo, &Some(wrong)).await, 401, "{admin}");
        }
        p.stop().await;
    }
}

#[tokio::test]
async fn faasms_own_api_may_be_opened_on_loopback_and_nothing_else_is() {
    let gateway = fwasm_gateway::GatewayConfig {
        auth: true,
        open_faasm_api: true,
        ..test_gateway_config()
    };
    let p = up_with_gateway(gateway, ADMIN).await;
    let (callers, _) = setting_up(&p).await;
    let (invoke, upload, http) = (&p.invoke, &p.upload, &p.http);
    // Faasm's clients, which send no token, are served as Faasm serves them.
    let open = [
        http.post(format!("{invoke}/f/demo/echo")).body("hi"),
        http.post(format!("{invoke}/fa/demo/echo")).body("hi"),
        http.post(format!("{invoke}/"))
            .body(r#"{"user": "demo", "function": "echo", "input_data": "hi"}"#),
        http.put(format!("{upload}/s/demo/k")).body("v"),
        http.get(format!("{upload}/s/demo/k")),
        http.put(format!("{upload}/file"))
            .header("FilePath", "a.txt")
            .body("a"),
        http.put(format!("{upload}/f/demo/two")).body(echo()),
    ];
    for request in open {
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 200, "{:?}", response.url().path());
    }
    // A token that is sent still counts: an unknown one is refused, a user's reaches its own.
    let faasm_echo = || http.post(format!("{invoke}/f/demo/echo")).body("hi");
    assert_eq!(send(faasm_echo(), &Some(UNKNOWN.into())).await, 401);
    assert_eq!(send(faasm_echo(), &Some(callers.alice.clone())).await, 403);
    // Every other door still wants a token.
    let closed = [
        http.post(format!("{invoke}/v1.0/invoke/demo/method/echo"))
            .body("hi"),
        http.get(format!("{invoke}/v1.0/state/demo/k")),
        http.get(format!("{upload}/sub/demo")),
        http.get(format!("{upload}/f/demo")),
        http.delete(format!("{upload}/f/demo/echo")),
        http.delete(format!("{upload}/p/demo/echo")),
        http.get(format!("{upload}/s/demo")),
        http.delete(format!("{upload}/s/demo/k")),
        http.get(format!("{upload}/files")),
    ];
    for request in closed {
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 401, "{:?}", response.url().path());
    }
    let mut functions = FunctionsClient::new(channel(&p).await);
    let invoke = InvokeRequest {
        user: "demo".into(),
        function: "echo".into(),
        ..InvokeRequest::default()
    };
    let refused = functions.invoke(invoke).await.unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated);
    p.stop().await;
}
