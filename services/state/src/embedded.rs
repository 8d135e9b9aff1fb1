//! The embedded backend: a redb file under the data directory. redb commits are durable
//! (fsync'd) before they return; its blocking I/O runs on tokio's blocking pool.

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use redb::{Database, ReadableDatabase, TableDefinition};

use crate::backend::{Backend, BackendError, FunctionRecord};

/// `user/function` -> (module hash, module size).
const FUNCTIONS: TableDefinition<&str, (&str, u64)> = TableDefinition::new("functions");
/// module hash -> module bytes.
const MODULES: TableDefinition<&str, &[u8]> = TableDefinition::new("modules");

pub const FILE_NAME: &str = "fwasm.redb";

pub struct EmbeddedBackend {
    db: Arc<Database>,
}

impl EmbeddedBackend {
    /// Opens (or creates) the store in `dir`.
    pub fn open(dir: &Path) -> Result<Self, BackendError> {
        let path = dir.join(FILE_NAME);
        let open_error = |reason: String| BackendError::Open {
            path: path.display().to_string(),
            reason,
        };
        std::fs::create_dir_all(dir).map_err(|e| open_error(e.to_string()))?;
        let db = Database::create(&path).map_err(|e| open_error(e.to_string()))?;
        // Create the tables up front so readers never meet a missing table.
        let txn = db.begin_write().map_err(storage)?;
        txn.open_table(FUNCTIONS).map_err(storage)?;
        txn.open_table(MODULES).map_err(storage)?;
        txn.commit().map_err(storage)?;
        Ok(Self { db: Arc::new(db) })
    }

    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Database) -> Result<T, BackendError> + Send + 'static,
    ) -> Result<T, BackendError> {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || work(&db))
            .await
            .map_err(|e| BackendError::Storage(format!("store task failed: {e}")))?
    }
}

fn storage(err: impl std::fmt::Display) -> BackendError {
    BackendError::Storage(err.to_string())
}

fn function_key(user: &str, function: &str) -> String {
    format!("{user}/{function}")
}

#[async_trait]
impl Backend for EmbeddedBackend {
    async fn put_function(
        &self,
        user: &str,
        function: &str,
        record: &FunctionRecord,
        wasm: Bytes,
    ) -> Result<(), BackendError> {
        let key = function_key(user, function);
        let record = record.clone();
        self.blocking(move |db| {
            let txn = db.begin_write().map_err(storage)?;
            {
                let mut modules = txn.open_table(MODULES).map_err(storage)?;
                modules
                    .insert(record.module_hash.as_str(), wasm.as_ref())
                    .map_err(storage)?;
                let mut functions = txn.open_table(FUNCTIONS).map_err(storage)?;
                functions
                    .insert(key.as_str(), (record.module_hash.as_str(), record.size))
                    .map_err(storage)?;
            }
            txn.commit().map_err(storage)
        })
        .await
    }

    async fn function(
        &self,
        user: &str,
        function: &str,
    ) -> Result<Option<FunctionRecord>, BackendError> {
        let key = function_key(user, function);
        self.blocking(move |db| {
            let txn = db.begin_read().map_err(storage)?;
            let table = txn.open_table(FUNCTIONS).map_err(storage)?;
            Ok(table.get(key.as_str()).map_err(storage)?.map(|entry| {
                let (module_hash, size) = entry.value();
                FunctionRecord {
                    module_hash: module_hash.to_string(),
                    size,
                }
            }))
        })
        .await
    }

    async fn module(&self, module_hash: &str) -> Result<Option<Bytes>, BackendError> {
        let key = module_hash.to_string();
        self.blocking(move |db| {
            let txn = db.begin_read().map_err(storage)?;
            let table = txn.open_table(MODULES).map_err(storage)?;
            Ok(table
                .get(key.as_str())
                .map_err(storage)?
                .map(|entry| Bytes::copy_from_slice(entry.value())))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(hash: &str, size: u64) -> FunctionRecord {
        FunctionRecord {
            module_hash: hash.into(),
            size,
        }
    }

    #[tokio::test]
    async fn stores_and_reads_back_functions_and_modules() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedBackend::open(dir.path()).unwrap();
        assert_eq!(store.function("u", "f").await.unwrap(), None);
        store
            .put_function("u", "f", &record("h1", 3), Bytes::from_static(b"abc"))
            .await
            .unwrap();
        assert_eq!(
            store.function("u", "f").await.unwrap(),
            Some(record("h1", 3))
        );
        assert_eq!(
            store.module("h1").await.unwrap().as_deref(),
            Some(&b"abc"[..])
        );
        assert_eq!(store.module("h2").await.unwrap(), None);
        assert_eq!(store.function("u", "g").await.unwrap(), None);
    }

    #[tokio::test]
    async fn acknowledged_writes_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = EmbeddedBackend::open(dir.path()).unwrap();
            store
                .put_function("u", "f", &record("h1", 2), Bytes::from_static(b"v1"))
                .await
                .unwrap();
            store
                .put_function("u", "f", &record("h2", 2), Bytes::from_static(b"v2"))
                .await
                .unwrap();
        }
        let store = EmbeddedBackend::open(dir.path()).unwrap();
        assert_eq!(
            store.function("u", "f").await.unwrap(),
            Some(record("h2", 2))
        );
        assert_eq!(
            store.module("h1").await.unwrap().as_deref(),
            Some(&b"v1"[..])
        );
    }

    #[test]
    fn a_data_dir_that_cannot_be_created_is_a_clear_error() {
        let file = tempfile::NamedTempFile::new().unwrap();
        let err = EmbeddedBackend::open(&file.path().join("sub"))
            .err()
            .expect("open fails");
        assert!(
            err.to_string().starts_with("cannot open the store at"),
            "{err}"
        );
    }
}
