//! Snapshots shared between executors through the state service, beside their modules: an
//! executor that has none for a function restores the one another took instead of running the
//! initialisation again, when the initialisation costs more than fetching would.
//!
//! A shared snapshot is a cache. One that is missing, unreadable, or does not fit the module
//! (a garbled record, another memory limit) is ignored, with a warning, and the executor
//! initialises on its own; sharing runs after the call that took the snapshot, off its path.

use std::time::Duration;

use fwasm_proto::api::StateApi;
use fwasm_proto::pb::{PutSnapshotRequest, SnapshotImage, SnapshotRef};
use prost::Message;
use sha2::{Digest, Sha256};

use crate::cache::Compiled;
use crate::snapshot::Snapshot;

/// How long fetching a shared snapshot may take before initialising here instead.
const FETCH_PATIENCE: Duration = Duration::from_secs(5);

/// When a snapshot is shared: its initialisation used at least this much fuel, plus
/// [`SHARE_FUEL_PER_BYTE`] for each byte it holds. Fuel, not time, so the choice is the same on
/// every machine and every run. From BENCHMARKS.md ("Snapshots across executors"): wasmi burns
/// 0.5 to 1 ns per fuel, and an executor's first fetch of a 4 MiB snapshot from the state
/// service in another process took about 15 ms, 3.5 ns a byte (later fetches on the same
/// connection, about 1 ns): a Rust init that used 4 fuel a byte was faster to run again.
const SHARE_FIXED_FUEL: u64 = 500_000;
const SHARE_FUEL_PER_BYTE: u64 = 6;

/// The format of shared snapshots and of the executor's rewrite of the globals they name.
const SHARED_FORMAT: &str = "v1";

/// Where a function's snapshot is kept in the state service: under its user and function, and
/// a key of its format, module and settings (which initialisation sees), so a snapshot is only
/// ever restored into what it was taken of.
pub fn shared_ref(
    user: &str,
    function: &str,
    module_hash: &str,
    env: &[(String, String)],
) -> SnapshotRef {
    let mut settings = Sha256::new();
    for (name, value) in env {
        for part in [name, value] {
            settings.update((part.len() as u64).to_le_bytes());
            settings.update(part.as_bytes());
        }
    }
    SnapshotRef {
        user: user.to_string(),
        function: function.to_string(),
        key: format!(
            "{SHARED_FORMAT}/{module_hash}/{}",
            hex::encode(settings.finalize())
        ),
    }
}

/// Whether other executors would restore `snapshot` sooner than they could initialise.
pub(crate) fn worth_sharing(snapshot: &Snapshot) -> bool {
    let bytes = snapshot.changed_bytes() as u64;
    let fetching = SHARE_FIXED_FUEL.saturating_add(bytes.saturating_mul(SHARE_FUEL_PER_BYTE));
    snapshot.init_fuel() >= fetching
}

/// The snapshot another executor shared for `of`, if there is one that fits `compiled`'s
/// module.
pub(crate) async fn fetch(
    state: &dyn StateApi,
    of: &SnapshotRef,
    compiled: &Compiled,
    max_pages: u64,
) -> Option<Snapshot> {
    let started = std::time::Instant::now();
    let stored = match tokio::time::timeout(FETCH_PATIENCE, state.get_snapshot(of.clone())).await {
        Ok(Ok(stored)) if stored.found => stored,
        Ok(Ok(_)) => return None,
        Ok(Err(err)) => {
            tracing::warn!(error = %err, "could not fetch a shared snapshot; initialising here");
            return None;
        }
        Err(_) => {
            tracing::warn!(patience = ?FETCH_PATIENCE, "fetching a shared snapshot took too long; initialising here");
            return None;
        }
    };
    let bytes = stored.image.len();
    let (module, segments) = (compiled.module.clone(), compiled.segments.clone());
    // Megabytes to decode and write into an image: off the async workers.
    let decoding = tokio::task::spawn_blocking(move || {
        SnapshotImage::decode(stored.image)
            .map_err(|e| e.to_string())
            .and_then(|image| Snapshot::from_image(image, &module, max_pages))
            .map(|snapshot| snapshot.mapped_if_worth_it(segments, None))
    });
    let snapshot = decoding
        .await
        .unwrap_or_else(|e| Err(format!("decoding it failed: {e}")));
    match snapshot {
        Ok(snapshot) => {
            let elapsed = started.elapsed();
            tracing::info!(
                bytes,
                ?elapsed,
                "restoring a snapshot another executor shared"
            );
            Some(snapshot)
        }
        Err(why) => {
            tracing::warn!(%why, "ignoring a shared snapshot that does not fit; initialising here");
            None
        }
    }
}

/// Keeps `snapshot` in the state service for other executors.
pub(crate) async fn share(state: &dyn StateApi, of: SnapshotRef, snapshot: SnapshotImage) {
    // Megabytes to copy: off the async workers.
    let image = match tokio::task::spawn_blocking(move || snapshot.encode_to_vec()).await {
        Ok(image) => image,
        Err(e) => return tracing::warn!(error = %e, "could not encode the snapshot to share"),
    };
    let put = PutSnapshotRequest {
        snapshot: Some(of),
        image: image.into(),
    };
    let bytes = put.image.len();
    match state.put_snapshot(put).await {
        Ok(()) => tracing::info!(bytes, "shared the snapshot with other executors"),
        Err(err) => tracing::warn!(error = %err, "could not share the snapshot"),
    }
}

#[cfg(test)]
mod tests {
    use fwasm_proto::pb::SnapshotPage;
    use wasmi::Module;

    use super::*;

    #[test]
    fn only_an_initialisation_that_costs_more_than_a_fetch_is_shared() {
        let wasm = wat::parse_str("(module (memory 2))").unwrap();
        let module = Module::new(&wasmi::Engine::default(), &wasm).unwrap();
        let page = SnapshotPage {
            index: 1,
            data: vec![1; 65536].into(),
        };
        let image = SnapshotImage {
            pages: 2,
            changed: vec![page],
            globals: vec![],
        };
        let used = |fuel| {
            let snapshot = Snapshot::from_image(image.clone(), &module, 2).unwrap();
            worth_sharing(&snapshot.with_init_fuel(fuel))
        };
        let fetching = SHARE_FIXED_FUEL + 65536 * SHARE_FUEL_PER_BYTE;
        assert!(!used(0));
        assert!(!used(fetching - 1));
        assert!(used(fetching));
    }

    #[test]
    fn the_key_names_the_module_and_the_settings() {
        let env = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let key = |hash, pairs| shared_ref("u", "f", hash, &env(pairs)).key;
        assert_eq!(key("m1", &[]), key("m1", &[]));
        assert_ne!(key("m1", &[]), key("m2", &[]));
        assert_ne!(key("m1", &[("A", "1")]), key("m1", &[("A", "2")]));
        // Lengths are hashed too: a name's end cannot pass for a value's start.
        assert_ne!(key("m1", &[("AB", "C")]), key("m1", &[("A", "BC")]));
        assert!(key("m1", &[]).starts_with("v1/m1/"));
    }
}
