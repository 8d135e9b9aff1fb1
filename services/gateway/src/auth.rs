//! Who is calling: API tokens, checked on every door of a gateway started with `--auth`.
//!
//! A token is `fwasm_<id>_<secret>`: the id names it in listings and revocations, the secret
//! is 32 random bytes. The state service keeps only the SHA-256 of the whole token, compared
//! in constant time. The operator's admin token may be any text (`FWASM_ADMIN_TOKEN`, a
//! Kubernetes Secret): a token that is not in fwasm's form is checked against the record
//! with the id `admin`.
//!
//! Each request's caller is set for the handling of that request (see [`Caller::scope`]), and
//! the gateway's operations check it against the user they touch, so every protocol that
//! reaches an operation is checked the same way.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use fwasm_proto::api::StateApi;
use fwasm_proto::pb::{TokenRecord, TokenRef};
use fwasm_proto::{ApiError, ErrorCode};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The id of the operator's admin token.
pub const ADMIN_TOKEN_ID: &str = "admin";

const PREFIX: &str = "fwasm_";

/// How long a checked token is taken on trust before it is looked up again: a token revoked
/// through another gateway stops working within this.
const TRUSTED_FOR: Duration = Duration::from_secs(5);

/// The most checked tokens remembered (then all are forgotten and looked up again).
const MAX_REMEMBERED: usize = 10_000;

/// Who a request comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// Tokens are off (Faasm's research setting): everything is reachable.
    Open,
    Admin,
    User(String),
}

tokio::task_local! {
    static CALLER: Caller;
}

impl Caller {
    /// Runs `handling` with `self` as the caller its checks see.
    pub fn scope<F: Future>(self, handling: F) -> impl Future<Output = F::Output> {
        CALLER.scope(self, handling)
    }

    /// The caller of the request being handled. Outside any request (a bug: every door sets
    /// one) nothing is reachable.
    pub fn current() -> Result<Caller, ApiError> {
        CALLER
            .try_with(Caller::clone)
            .map_err(|_| ApiError::internal("a request reached the gateway without a caller"))
    }

    /// Whether this caller may touch what belongs to `user`.
    pub fn reaches(&self, user: &str) -> bool {
        match self {
            Caller::Open | Caller::Admin => true,
            Caller::User(own) => own == user,
        }
    }
}

/// PERMISSION_DENIED unless the current caller may touch `user`'s `what`.
pub fn check_user(user: &str, what: &str) -> Result<(), ApiError> {
    let caller = Caller::current()?;
    match caller.reaches(user) {
        true => Ok(()),
        false => Err(denied(&caller, &format!("{user}'s {what}"))),
    }
}

/// PERMISSION_DENIED unless the current caller is an admin (or tokens are off).
pub fn check_admin(what: &str) -> Result<(), ApiError> {
    match Caller::current()? {
        Caller::Open | Caller::Admin => Ok(()),
        caller => Err(denied(&caller, what)),
    }
}

/// Whether the current caller may see a call of `user`: another user's call is as good as
/// unknown to it, so call ids reveal nothing.
pub fn sees_call_of(user: &str) -> Result<bool, ApiError> {
    Ok(Caller::current()?.reaches(user))
}

fn denied(caller: &Caller, what: &str) -> ApiError {
    let who = match caller {
        Caller::User(user) => format!("a token of {user}"),
        _ => "this token".into(),
    };
    ApiError::permission_denied(format!("{who} does not reach {what}"))
}

/// A new token and the record the state service keeps of it.
pub fn new_token(user: &str, admin: bool) -> Result<(String, TokenRecord), ApiError> {
    let mut random = [0u8; 40];
    getrandom::fill(&mut random)
        .map_err(|e| ApiError::internal(format!("no randomness for a token: {e}")))?;
    let (id, secret) = random.split_at(8);
    let id = hex::encode(id);
    let token = format!("{PREFIX}{id}_{}", hex::encode(secret));
    let record = record(&id, user, admin, &token);
    Ok((token, record))
}

/// The record of `token` under `id`.
pub fn record(id: &str, user: &str, admin: bool, token: &str) -> TokenRecord {
    TokenRecord {
        id: id.into(),
        user: if admin { String::new() } else { user.into() },
        admin,
        secret_sha256: Sha256::digest(token.as_bytes()).to_vec().into(),
        created_unix_millis: SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64),
    }
}

/// The id a presented token names.
fn token_id(token: &str) -> &str {
    let named = token
        .strip_prefix(PREFIX)
        .and_then(|rest| rest.split_once('_'));
    match named {
        Some((id, _)) if !id.is_empty() => id,
        _ => ADMIN_TOKEN_ID,
    }
}

/// Checks presented tokens against the state service's records.
pub struct Tokens {
    state: Arc<dyn StateApi>,
    /// Checked tokens by their hash: who they are, their id, and when they were looked up.
    trusted: Mutex<HashMap<[u8; 32], (Caller, String, Instant)>>,
    /// How many times a token was forgotten: a lookup that saw another count began before
    /// a revocation, and its answer is not kept.
    forgets: AtomicU64,
}

impl Tokens {
    pub fn new(state: Arc<dyn StateApi>) -> Self {
        Self {
            state,
            trusted: Mutex::default(),
            forgets: AtomicU64::new(0),
        }
    }

    /// Who `token` (as sent: `None` if the request had none) stands for.
    pub async fn caller(&self, token: Option<&str>) -> Result<Caller, ApiError> {
        let token = token.ok_or_else(|| {
            ApiError::unauthenticated(
                "this fwasm requires a token: send `Authorization: Bearer <token>` (or \
                 `dapr-api-token`); an admin makes one with `fwasm token create USER`",
            )
        })?;
        let hash: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        if let Some((caller, _, at)) = self.trusted.lock().unwrap().get(&hash)
            && at.elapsed() < TRUSTED_FOR
        {
            return Ok(caller.clone());
        }
        let forgets_before = self.forgets.load(Ordering::Acquire);
        // A token in fwasm's form names its record; an operator's own admin token (any
        // text, which may look like one) is the `admin` record's.
        let mut ids = vec![token_id(token)];
        if ids[0] != ADMIN_TOKEN_ID {
            ids.push(ADMIN_TOKEN_ID);
        }
        for id in ids {
            let record = match self.state.get_token(TokenRef { id: id.into() }).await {
                Ok(record) => record,
                // An id that is no token's, or is not an id at all: the token is unknown.
                Err(err)
                    if matches!(err.code, ErrorCode::NotFound | ErrorCode::InvalidArgument) =>
                {
                    continue;
                }
                Err(err) => return Err(err),
            };
            if !bool::from(record.secret_sha256.as_ref().ct_eq(&hash[..])) {
                continue;
            }
            let caller = match record.admin {
                true => Caller::Admin,
                false => Caller::User(record.user),
            };
            let mut trusted = self.trusted.lock().unwrap();
            // A token revoked while it was looked up is not trusted on that old answer.
            if self.forgets.load(Ordering::Acquire) == forgets_before {
                if trusted.len() >= MAX_REMEMBERED {
                    trusted.clear();
                }
                trusted.insert(hash, (caller.clone(), id.to_string(), Instant::now()));
            }
            return Ok(caller);
        }
        Err(unknown())
    }

    /// Forgets the checked token `id` (it was just revoked here).
    pub fn forget(&self, id: &str) {
        self.trusted
            .lock()
            .unwrap()
            .retain(|_, (_, of, _)| of != id);
    }
}

fn unknown() -> ApiError {
    ApiError::unauthenticated("the token is not one fwasm knows (revoked, or mistyped)")
}

/// The token a request sends: `authorization: Bearer <token>`, else Dapr's
/// `dapr-api-token: <token>`.
pub fn presented<'a>(header: impl Fn(&str) -> Option<&'a str>) -> Option<&'a str> {
    let bearer = header("authorization").and_then(|value| {
        let (scheme, token) = value.trim().split_once(' ')?;
        scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
    });
    bearer
        .or_else(|| header("dapr-api-token").map(str::trim))
        .filter(|token| !token.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_name_their_id_and_others_are_the_admins() {
        let (token, record) = new_token("alice", false).unwrap();
        assert!(token.starts_with("fwasm_"), "{token}");
        assert_eq!(token.len(), "fwasm_".len() + 16 + 1 + 64);
        assert_eq!(token_id(&token), record.id);
        assert_eq!(record.user, "alice");
        assert_eq!(
            record.secret_sha256.as_ref(),
            &Sha256::digest(token.as_bytes())[..]
        );
        assert_eq!(token_id("my-operator-secret"), ADMIN_TOKEN_ID);
        assert_eq!(token_id("fwasm__x"), ADMIN_TOKEN_ID);
        let (other, _) = new_token("alice", false).unwrap();
        assert_ne!(token, other);
    }

    #[test]
    fn the_bearer_header_wins_over_daprs() {
        let headers = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| pairs.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
        };
        assert_eq!(
            presented(headers(&[("authorization", "Bearer abc")])),
            Some("abc")
        );
        assert_eq!(
            presented(headers(&[("authorization", "bearer  abc ")])),
            Some("abc")
        );
        assert_eq!(
            presented(headers(&[("dapr-api-token", "xyz")])),
            Some("xyz")
        );
        assert_eq!(
            presented(headers(&[
                ("authorization", "Bearer abc"),
                ("dapr-api-token", "xyz")
            ])),
            Some("abc")
        );
        assert_eq!(presented(headers(&[("authorization", "Basic abc")])), None);
        assert_eq!(presented(headers(&[("dapr-api-token", " ")])), None);
        assert_eq!(presented(headers(&[])), None);
    }

    #[tokio::test]
    async fn checks_see_the_caller_of_their_request() {
        let alice = Caller::User("alice".into());
        alice
            .scope(async {
                assert!(check_user("alice", "state").is_ok());
                let err = check_user("bob", "state").unwrap_err();
                assert_eq!(err.code, ErrorCode::PermissionDenied);
                assert_eq!(err.message, "a token of alice does not reach bob's state");
                assert_eq!(
                    check_admin("tokens").unwrap_err().code,
                    ErrorCode::PermissionDenied
                );
                assert!(!sees_call_of("bob").unwrap());
            })
            .await;
        Caller::Admin
            .scope(async { assert!(check_user("bob", "state").is_ok()) })
            .await;
        assert_eq!(
            check_user("bob", "state").unwrap_err().code,
            ErrorCode::Internal
        );
    }
}
