//! The embedded store keeps uploaded functions across a restart of `fwasm up`.

use crate::support::{guest, up_at};

#[tokio::test]
async fn functions_survive_a_restart() {
    let data = tempfile::tempdir().unwrap();
    let p = up_at(data.path()).await;
    p.upload("dave/upper", guest("testkit")).await;
    assert_eq!(p.call("dave/upper", "before").await, (200, "BEFORE".into()));
    p.stop().await;

    let p = up_at(data.path()).await;
    assert_eq!(p.call("dave/upper", "after").await, (200, "AFTER".into()));
    p.stop().await;
}
