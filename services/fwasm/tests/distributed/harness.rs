//! The harness itself: a child process that cannot start fails the test at once, and the
//! failure carries the child's own words.

use crate::support::*;

#[tokio::test]
#[should_panic(expected = "error: unexpected argument '--no-such-flag' found")]
async fn a_child_that_cannot_start_fails_the_test_with_its_own_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut state = Process::spawn(dir.path(), "state", &["state", "--no-such-flag"], &[]);
    state.ready().await;
}
