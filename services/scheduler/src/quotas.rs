//! Per-user quotas, so one tenant cannot starve the others: how many of a user's calls may be
//! unfinished at once (checked by the call table as each call is recorded) and how fast it may
//! start them (a token bucket, here). Defaults come from the scheduler's configuration; a
//! user's own limits from the admin API, kept by the state service and loaded at start.

use std::collections::HashMap;
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

use fwasm_proto::ApiError;
use fwasm_proto::api::StateApi;
use fwasm_proto::pb::{ListQuotasRequest, UserQuota};
use tokio::sync::OnceCell;

pub(crate) struct Quotas {
    /// The limits of a user without its own (0 = none).
    defaults: UserQuota,
    /// Users' own limits; a 0 field takes the default's.
    own: RwLock<HashMap<String, UserQuota>>,
    /// Each user's token bucket: tokens left, and when it was last filled.
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
    /// Set once the users' own limits are loaded from the state service.
    loaded: OnceCell<()>,
}

impl Quotas {
    pub(crate) fn new(defaults: UserQuota) -> Self {
        Self {
            defaults,
            own: RwLock::default(),
            buckets: Mutex::default(),
            loaded: OnceCell::new(),
        }
    }

    /// Loads the users' own limits the first time it is asked (a failed load is tried again
    /// on the next call).
    pub(crate) async fn load(&self, state: &dyn StateApi) -> Result<(), ApiError> {
        self.loaded
            .get_or_try_init(|| async {
                let list = state.list_quotas(ListQuotasRequest {}).await?;
                for quota in list.quotas {
                    self.set(quota);
                }
                Ok::<(), ApiError>(())
            })
            .await
            .map(drop)
    }

    /// Gives `quota.user` its own limits (all 0: back to the defaults).
    pub(crate) fn set(&self, quota: UserQuota) {
        let user = quota.user.clone();
        let mut own = self.own.write().unwrap_or_else(|p| p.into_inner());
        let back_to_defaults = quota.max_concurrent_calls == 0
            && quota.calls_per_second == 0.0
            && quota.burst_calls == 0;
        match back_to_defaults {
            true => own.remove(&quota.user),
            false => own.insert(quota.user.clone(), quota),
        };
        // A new rate starts from a full bucket; other users' stay as they are.
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        buckets.remove(&user);
    }

    /// The limits in force for `user`.
    pub(crate) fn limits(&self, user: &str) -> UserQuota {
        let mut limits = UserQuota {
            user: user.to_string(),
            ..self.defaults.clone()
        };
        // Read in place: placing a call copies no user's quota.
        let own = self.own.read().unwrap_or_else(|p| p.into_inner());
        if let Some(own) = own.get(user) {
            if own.max_concurrent_calls > 0 {
                limits.max_concurrent_calls = own.max_concurrent_calls;
            }
            if own.calls_per_second > 0.0 {
                limits.calls_per_second = own.calls_per_second;
            }
            if own.burst_calls > 0 {
                limits.burst_calls = own.burst_calls;
            }
        }
        limits
    }
}

/// Refuses a calls-per-second limit that is not a rate: negative, not a number, or infinite.
pub fn check_rate(rate: f64) -> Result<(), ApiError> {
    match rate.is_finite() && rate >= 0.0 {
        true => Ok(()),
        false => Err(ApiError::invalid_argument(format!(
            "{rate} calls per second is not a rate: give 0 (no limit) or more"
        ))),
    }
}

impl Quotas {
    /// Takes one call from `user`'s rate, or says when it may start the next.
    pub(crate) fn take_call(&self, limits: &UserQuota) -> Result<(), ApiError> {
        let rate = limits.calls_per_second;
        if rate <= 0.0 {
            return Ok(());
        }
        // A bucket holds at least one call, and a second's worth unless told otherwise.
        let size = match limits.burst_calls {
            0 => rate.ceil().max(1.0),
            burst => f64::from(burst),
        };
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let (tokens, filled) = buckets.entry(limits.user.clone()).or_insert((size, now));
        *tokens = (*tokens + now.duration_since(*filled).as_secs_f64() * rate).min(size);
        *filled = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            return Ok(());
        }
        // However small the rate, the wait is a Duration (a day at most: retry by then).
        let wait = Duration::try_from_secs_f64((1.0 - *tokens) / rate)
            .unwrap_or(Duration::MAX)
            .min(Duration::from_secs(86_400));
        Err(ApiError::resource_exhausted(format!(
            "{} started calls faster than its quota of {rate} calls per second (quota: calls \
             per second, bursts of {size}); retry in {} ms",
            limits.user,
            wait.as_millis().max(1)
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quota(user: &str, concurrent: u32, rate: f64, burst: u32) -> UserQuota {
        UserQuota {
            user: user.into(),
            max_concurrent_calls: concurrent,
            calls_per_second: rate,
            burst_calls: burst,
            ..UserQuota::default()
        }
    }

    #[test]
    fn a_users_own_limits_fill_in_over_the_defaults() {
        let quotas = Quotas::new(quota("", 10, 100.0, 0));
        assert_eq!(quotas.limits("a"), quota("a", 10, 100.0, 0));
        quotas.set(quota("a", 2, 0.0, 5));
        assert_eq!(quotas.limits("a"), quota("a", 2, 100.0, 5));
        assert_eq!(quotas.limits("b"), quota("b", 10, 100.0, 0));
        quotas.set(quota("a", 0, 0.0, 0));
        assert_eq!(quotas.limits("a"), quota("a", 10, 100.0, 0));
    }

    #[test]
    fn a_burst_is_allowed_then_the_rate_and_the_refusal_says_when_to_retry() {
        let quotas = Quotas::new(quota("", 0, 0.0, 0));
        let limits = quota("a", 0, 2.0, 3);
        for _ in 0..3 {
            quotas.take_call(&limits).unwrap();
        }
        let refused = quotas.take_call(&limits).unwrap_err();
        assert_eq!(refused.code, fwasm_proto::ErrorCode::ResourceExhausted);
        assert!(
            refused.message.contains("quota of 2 calls per second"),
            "{refused:?}"
        );
        let wait: u64 = refused
            .message
            .rsplit("retry in ")
            .next()
            .and_then(|rest| rest.strip_suffix(" ms"))
            .and_then(|ms| ms.parse().ok())
            .unwrap();
        assert!((1..=500).contains(&wait), "{wait}");
        // Another user has its own bucket; no rate is no limit.
        quotas.take_call(&quota("b", 0, 2.0, 3)).unwrap();
        for _ in 0..100 {
            quotas.take_call(&quota("c", 0, 0.0, 0)).unwrap();
        }
        std::thread::sleep(Duration::from_millis(600));
        quotas.take_call(&limits).unwrap();
    }
}
