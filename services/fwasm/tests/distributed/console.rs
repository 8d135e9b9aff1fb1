//! The web console, in headless Chromium (Debian's, driven by Playwright's core from npm)
//! against a real `fwasm up` with tokens: the page lists a user's function, state key and an
//! earlier call, makes a call from its form, refuses another user's, shows the admin every
//! user, and fetches nothing from elsewhere. The test keeps a screenshot of the page.

use std::path::Path;
use std::process::Command;

use crate::sdks::{app, installed, run_app, tokens_for, up_for_apps_with};
use crate::support::{GatewayPorts, upload_as};

const CHROMIUM: &str = "/usr/bin/chromium";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_shows_a_users_functions_and_calls_and_calls_from_its_form() {
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: run scripts/test, which installs Debian's chromium"
    );
    let admin = "an-admin-token-long-enough-for-the-check-of-its-length";
    let dir = tempfile::tempdir().unwrap();
    let (_up, ready) = up_for_apps_with(dir.path(), &[], Some(admin)).await;
    let ports = GatewayPorts::of(&ready);
    let tokens = tokens_for(&ready, admin, &["alice", "bob"]).await;
    let alice = tokens["alice"].clone();
    let http = crate::support::http_client();
    let echo = fwasm::up::DEMOS.iter().find(|d| d.1 == "echo").unwrap().2;
    upload_as(&http, ports, "alice/echo", echo.to_vec(), Some(&alice)).await;
    let upload = format!("http://127.0.0.1:{}", ports.upload);
    let key = http.put(format!("{upload}/s/alice/greeting")).body("hello");
    let key = key.bearer_auth(&alice).send().await.unwrap();
    assert_eq!(key.status(), 200);
    let earlier = http
        .post(format!("http://{}/f/alice/echo", ready.addr("invoke")))
        .bearer_auth(&alice)
        .body("earlier")
        .send()
        .await
        .unwrap();
    assert_eq!(earlier.status(), 200);
    let earlier = earlier.headers()["x-fwasm-call-id"].to_str().unwrap();

    let screenshot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("console.png");
    let _ = std::fs::remove_file(&screenshot);
    let mut check = Command::new("node");
    check
        .arg(app("console_check.js"))
        .env("NODE_PATH", installed("FWASM_TEST_NODE_PATH"))
        .env("CHROMIUM", CHROMIUM)
        .env("CONSOLE_URL", format!("{upload}/"))
        .env("USER_NAME", "alice")
        .env("USER_TOKEN", &alice)
        .env("ADMIN_TOKEN", admin)
        .env("EARLIER_CALL", earlier)
        .env("SCREENSHOT", &screenshot);
    let said = tokio::task::spawn_blocking(move || run_app(check, "console: ok"))
        .await
        .unwrap();

    // The form's call is a real one, alice's, with what was typed as its input.
    let call: u64 = said
        .split("call=")
        .nth(1)
        .and_then(|id| id.trim().parse().ok())
        .unwrap_or_else(|| panic!("no call id in {said:?}"));
    let server = fwasm::client::Server {
        addr: ready.addr("grpc"),
        token: Some(alice),
        ..Default::default()
    };
    let mut out = Vec::new();
    fwasm::client::status(server, call, false, &mut out)
        .await
        .unwrap();
    assert_eq!(out, b"SUCCESS: from the console\n");
    let png = std::fs::read(&screenshot).unwrap();
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "{}",
        png.len()
    );
    println!("console screenshot: {}", screenshot.display());
}
