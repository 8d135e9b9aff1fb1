//! Per-user storage quotas: the bytes a user may store (its functions' modules, its state and
//! its files) and the functions it may have. Checked by the backends in the same atomic step
//! as each write, against the limits this keeps: the defaults from the state service's
//! configuration, and each user's own, loaded from the store once and kept in step with every
//! PutQuota this service serves (the state service is the one writer of quotas).

use std::collections::HashMap;
use std::sync::RwLock;

use fwasm_proto::ApiError;
use fwasm_proto::pb::UserQuota;
use tokio::sync::OnceCell;

use crate::backend::{Backend, StorageQuota};

pub(crate) struct StorageQuotas {
    /// Every user's limits unless it has its own (0 = none).
    default_bytes: u64,
    default_functions: u32,
    /// Users' own limits (0 in a field: the default's).
    own: RwLock<HashMap<String, (u64, u32)>>,
    loaded: OnceCell<()>,
}

impl StorageQuotas {
    pub(crate) fn new(default_bytes: u64, default_functions: u32) -> Self {
        Self {
            default_bytes,
            default_functions,
            own: RwLock::default(),
            loaded: OnceCell::new(),
        }
    }

    /// Keeps `quota` as its user's own storage limits.
    pub(crate) fn set(&self, quota: &UserQuota) {
        let mut own = self.own.write().unwrap_or_else(|p| p.into_inner());
        match (quota.max_stored_bytes, quota.max_functions) {
            (0, 0) => own.remove(&quota.user),
            limits => own.insert(quota.user.clone(), limits),
        };
    }

    /// The limits in force for `user` as (bytes, functions), 0 for none.
    pub(crate) async fn in_force(
        &self,
        user: &str,
        backend: &dyn Backend,
    ) -> Result<(u64, u32), ApiError> {
        self.loaded
            .get_or_try_init(|| async {
                for encoded in backend.quotas().await? {
                    self.set(&decode_quota(encoded)?);
                }
                Ok::<(), ApiError>(())
            })
            .await?;
        let own = self.own.read().unwrap_or_else(|p| p.into_inner());
        let (bytes, functions) = own.get(user).copied().unwrap_or_default();
        let or_default = |own: u64, default: u64| if own > 0 { own } else { default };
        Ok((
            or_default(bytes, self.default_bytes),
            or_default(functions.into(), self.default_functions.into()) as u32,
        ))
    }

    /// The limits in force for `user`, as the backends check them.
    pub(crate) async fn of(
        &self,
        user: &str,
        backend: &dyn Backend,
    ) -> Result<StorageQuota, ApiError> {
        let (bytes, functions) = self.in_force(user, backend).await?;
        let none_if_0 = |limit: u64| if limit == 0 { u64::MAX } else { limit };
        Ok(StorageQuota {
            max_bytes: none_if_0(bytes),
            max_functions: none_if_0(functions.into()),
        })
    }
}

/// A quota as the store keeps it (a `UserQuota` message).
pub(crate) fn decode_quota(bytes: bytes::Bytes) -> Result<UserQuota, ApiError> {
    <UserQuota as prost::Message>::decode(bytes)
        .map_err(|e| ApiError::internal(format!("a quota is stored garbled: {e}")))
}
