//! Functions' outbound HTTP (the `fwasm_http` imports): requests a call sends to the hosts its
//! function's allow-list names (`fwasm upload --allow-host`), within the platform's own
//! (`--allow-outbound`), deny by default. The executor sends them on its async runtime (the
//! call parks, holding no thread), over one pool of connections reused across calls.
//!
//! A name resolves only to public addresses: loopback, private, link-local and cloud metadata
//! addresses are reached only through an allow-list entry that names the address itself. The
//! check is made on the addresses the connection is made to (the client's resolver drops the
//! others), so a name cannot be rebound to one between a check and the connection.
//!
//! https URLs are verified against the system's trust roots (and any the operator adds with
//! `--outbound-ca`), with rustls on ring as on fwasm's own ports.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use fwasm_abi::HostStatus;
use fwasm_proto::outbound::{HostPattern, special_address};
use fwasm_proto::tls::ring_provider;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use rustls::pki_types::CertificateDer;

use crate::host::park::Refusal;

/// The longest an outbound request may take, whatever time its call has left.
pub(crate) const MAX_REQUEST_TIME: Duration = Duration::from_secs(30);
/// Headers the host sets itself: the target (from the URL), the framing (from the body) and
/// the connection's, which the pool shares between calls.
const OWN_HEADERS: &[&str] = &[
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "upgrade",
    "te",
    "trailer",
    "proxy-connection",
    "proxy-authorization",
];

/// How long before its call's deadline a request gives up, so the call still hears why: a
/// tenth of the time left, between these (room for a loaded machine to resume the call).
const BEFORE_DEADLINE: (Duration, Duration) = (Duration::from_millis(100), Duration::from_secs(1));

/// How long one request or socket operation may take when its call has `time` left.
pub(crate) fn time_for(time: Duration) -> Duration {
    time.saturating_sub((time / 10).clamp(BEFORE_DEADLINE.0, BEFORE_DEADLINE.1))
        .min(MAX_REQUEST_TIME)
}

/// A request a call sends, checked against its allow-list and the platform's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OutboundRequest {
    pub(crate) method: String,
    pub(crate) url: String,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Bytes,
    /// The most bytes of response body the call takes.
    pub(crate) max_response_bytes: usize,
}

impl OutboundRequest {
    /// What the request sends that counts against the call's budget: its URL, its headers
    /// and its body.
    pub(crate) fn bytes_out(&self) -> usize {
        let headers: usize = self.headers.iter().map(|(n, v)| n.len() + v.len()).sum();
        self.url.len() + headers + self.body.len()
    }
}

/// The executor's side: the platform's allow-list and the client.
pub(crate) struct Outbound {
    platform: Arc<[HostPattern]>,
    client: reqwest::Client,
    /// Why https URLs cannot be reached, when no trust roots could be loaded.
    no_https: Option<String>,
}

/// What a request gets back.
pub(crate) struct OutboundResponse {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Bytes,
}

impl Outbound {
    /// With the platform's allow-list, and trust roots beyond the system's (`extra_roots`).
    pub(crate) fn new(
        platform: Vec<HostPattern>,
        extra_roots: Vec<CertificateDer<'static>>,
    ) -> Self {
        let (tls, no_https) = match client_tls(extra_roots) {
            Ok(tls) => (tls, None),
            Err(why) => {
                tracing::warn!(%why, "functions cannot reach https URLs");
                (untrusting_tls(), Some(why))
            }
        };
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .dns_resolver(Arc::new(PublicOnly))
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .pool_idle_timeout(Duration::from_secs(30))
            .build()
            .expect("a client with its TLS made here and no proxies always builds");
        Outbound {
            platform: platform.into(),
            client,
            no_https,
        }
    }

    /// Checks `request` against `allowed` (the function's entries) and the platform's: the
    /// parsed URL, or why it is refused.
    pub(crate) fn check(
        &self,
        request: &OutboundRequest,
        function: &str,
        allowed: &[HostPattern],
    ) -> Result<reqwest::Url, Refusal> {
        let url = reqwest::Url::parse(&request.url).map_err(|e| {
            Refusal::new(
                HostStatus::InvalidArgument,
                format!("{:?} is not a URL: {e}", request.url),
            )
        })?;
        match (url.scheme(), &self.no_https) {
            ("http", _) | ("https", None) => {}
            ("https", Some(why)) => {
                return Err(Refusal::new(
                    HostStatus::Unavailable,
                    format!("https URLs cannot be reached from this executor: {why}"),
                ));
            }
            (other, _) => {
                return Err(Refusal::new(
                    HostStatus::InvalidArgument,
                    format!("{other}: URLs are not a scheme fwasm sends (http, https)"),
                ));
            }
        }
        let host = url.host_str().unwrap_or_default();
        let port = url.port_or_known_default().unwrap_or(80);
        self.check_target("request", host, port, function, allowed)?;
        Ok(url)
    }

    /// Checks an outbound `what` (a request, a connection) to `host` (a name, or an address
    /// as written in a URL) on `port` against `allowed` (the function's entries) and the
    /// platform's.
    pub(crate) fn check_target(
        &self,
        what: &str,
        host: &str,
        port: u16,
        function: &str,
        allowed: &[HostPattern],
    ) -> Result<(), Refusal> {
        let refused = |why: String| Refusal::new(HostStatus::PermissionDenied, why);
        if !allowed.iter().any(|entry| entry.matches(host, port)) {
            return Err(refused(format!(
                "outbound {what} to {host}:{port} refused: {function} may not reach it (upload \
                 it with --allow-host {host}:{port})"
            )));
        }
        if !self.platform.iter().any(|entry| entry.matches(host, port)) {
            return Err(refused(format!(
                "outbound {what} to {host}:{port} refused: the platform does not allow it \
                 (the executor's --allow-outbound)"
            )));
        }
        // An address no name may lead to is reached only where both lists name it itself.
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let address = bare.parse::<std::net::IpAddr>().ok();
        if let Some(address) = address
            && let Some(kind) = special_address(address)
        {
            let named = |list: &[HostPattern]| list.iter().any(|e| e.names_address(address, port));
            if !named(allowed) || !named(&self.platform) {
                return Err(refused(format!(
                    "outbound {what} to {host}:{port} refused: {address} is {kind}, reached \
                     only where both {function}'s allow-list and the platform's name it itself"
                )));
            }
        }
        Ok(())
    }

    /// Checks a name lookup: both lists must allow the name on some port.
    pub(crate) fn check_name(
        &self,
        name: &str,
        function: &str,
        allowed: &[HostPattern],
    ) -> Result<(), Refusal> {
        let refused = |why: String| Refusal::new(HostStatus::PermissionDenied, why);
        if !allowed.iter().any(|entry| entry.matches_any_port(name)) {
            return Err(refused(format!(
                "looking up {name} refused: {function} may not reach it (upload it with \
                 --allow-host {name}:PORT)"
            )));
        }
        if !self
            .platform
            .iter()
            .any(|entry| entry.matches_any_port(name))
        {
            return Err(refused(format!(
                "looking up {name} refused: the platform does not allow it (the executor's \
                 --allow-outbound)"
            )));
        }
        Ok(())
    }

    /// Sends a checked request within `time`, the time its call has left (less a moment, and
    /// at most [`MAX_REQUEST_TIME`]), with the call's trace context.
    pub(crate) async fn send(
        &self,
        url: reqwest::Url,
        request: &OutboundRequest,
        time: Duration,
    ) -> Result<OutboundResponse, Refusal> {
        let invalid = |why: String| Refusal::new(HostStatus::InvalidArgument, why);
        let method = reqwest::Method::from_bytes(request.method.as_bytes())
            .ok()
            .filter(|method| *method != reqwest::Method::CONNECT)
            .ok_or_else(|| {
                invalid(format!(
                    "{:?} is not an HTTP method fwasm sends",
                    request.method
                ))
            })?;
        let mut headers = reqwest::header::HeaderMap::new();
        for (name, value) in &request.headers {
            let name = reqwest::header::HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| invalid(format!("{name:?} is not an HTTP header name")))?;
            if OWN_HEADERS.contains(&name.as_str()) {
                return Err(invalid(format!(
                    "the header {name} is the host's to set (from the URL and the body)"
                )));
            }
            let value = reqwest::header::HeaderValue::from_str(value)
                .map_err(|_| invalid(format!("the value of header {name} is not valid in HTTP")))?;
            headers.append(name, value);
        }
        // The called service joins the call's trace (this context, not one the guest set).
        for (name, value) in fwasm_proto::trace::current_context() {
            if let (Ok(name), Ok(value)) = (
                reqwest::header::HeaderName::from_bytes(name.as_bytes()),
                reqwest::header::HeaderValue::from_str(&value),
            ) {
                headers.insert(name, value);
            }
        }
        let target = format!(
            "{}:{}",
            url.host_str().unwrap_or_default(),
            url.port_or_known_default().unwrap_or(80)
        );
        let builder = self
            .client
            .request(method, url)
            .timeout(time_for(time))
            .headers(headers)
            .body(request.body.clone());
        let failed = |e: reqwest::Error| failure(&target, e);
        let mut response = builder.send().await.map_err(failed)?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(name, value)| {
                let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
                (name.to_string(), value)
            })
            .collect();
        let mut body = Vec::new();
        loop {
            let chunk = match response.chunk().await {
                Ok(Some(chunk)) => chunk,
                Ok(None) => break,
                Err(e) => return Err(failed(e).after_receiving(body.len())),
            };
            if body.len() + chunk.len() > request.max_response_bytes {
                let refusal = Refusal::new(
                    HostStatus::LimitExceeded,
                    format!(
                        "the response from {target} is over the call's limit of {} bytes",
                        request.max_response_bytes
                    ),
                );
                return Err(refusal.after_receiving(body.len() + chunk.len()));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(OutboundResponse {
            status,
            headers,
            body: body.into(),
        })
    }
}

/// TLS for https URLs: the system's trust roots and `extra_roots`, HTTP/1.1.
fn client_tls(extra_roots: Vec<CertificateDer<'static>>) -> Result<rustls::ClientConfig, String> {
    let provider = ring_provider();
    let verifier =
        rustls_platform_verifier::Verifier::new_with_extra_roots(extra_roots, provider.clone())
            .map_err(|e| {
                format!(
                    "no trust roots ({e}): install the system's CA certificates \
                 (ca-certificates) or give the executor --outbound-ca"
                )
            })?;
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// TLS that trusts nothing, for an executor without trust roots (its https URLs are refused
/// before any connection).
fn untrusting_tls() -> rustls::ClientConfig {
    rustls::ClientConfig::builder_with_provider(ring_provider())
        .with_safe_default_protocol_versions()
        .expect("ring supports the default versions")
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth()
}

/// The refusal for a request that failed on its way.
fn failure(target: &str, error: reqwest::Error) -> Refusal {
    if error.is_timeout() {
        return Refusal::new(
            HostStatus::Timeout,
            format!("the request to {target} took longer than the call allows"),
        );
    }
    // The resolver's own refusal names the addresses it dropped.
    let mut source: Option<&dyn std::error::Error> = Some(&error);
    while let Some(cause) = source {
        if let Some(refused) = cause.downcast_ref::<NoPublicAddress>() {
            return Refusal::new(HostStatus::PermissionDenied, refused.to_string());
        }
        source = cause.source();
    }
    Refusal::new(
        HostStatus::Unavailable,
        format!("the request to {target} failed: {}", error_chain(&error)),
    )
}

pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Resolves names to their public addresses only.
struct PublicOnly;

#[derive(Debug, thiserror::Error)]
#[error(
    "{name} resolves only to addresses no name may lead to ({why}); to reach one, allow the \
     address itself"
)]
struct NoPublicAddress {
    name: String,
    why: String,
}

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        let name = name.as_str().to_string();
        Box::pin(async move {
            let public = public_addresses(&name).await?;
            Ok(Box::new(public.into_iter().map(|ip| SocketAddr::new(ip, 0))) as Addrs)
        })
    }
}

/// The public addresses `name` resolves to; an error if it has none (naming the addresses
/// dropped, if it had only others).
pub(crate) async fn public_addresses(
    name: &str,
) -> Result<Vec<IpAddr>, Box<dyn std::error::Error + Send + Sync>> {
    let found: Vec<IpAddr> = tokio::net::lookup_host((name, 0))
        .await?
        .map(|addr| addr.ip())
        .collect();
    let (public, special): (Vec<IpAddr>, Vec<IpAddr>) = found
        .into_iter()
        .partition(|ip| special_address(*ip).is_none());
    if public.is_empty() && special.is_empty() {
        return Err(format!("{name} has no address").into());
    }
    if public.is_empty() {
        let why = special
            .iter()
            .map(|ip| format!("{ip} is {}", special_address(*ip).unwrap_or("")))
            .collect::<Vec<_>>()
            .join(", ");
        return Err(Box::new(NoPublicAddress {
            name: name.to_string(),
            why,
        }));
    }
    Ok(public)
}

/// A name lookup's failure as a refusal: the addresses dropped, or why it failed.
pub(crate) fn lookup_failure(name: &str, error: &(dyn std::error::Error + 'static)) -> Refusal {
    match error.downcast_ref::<NoPublicAddress>() {
        Some(refused) => Refusal::new(HostStatus::PermissionDenied, refused.to_string()),
        None => Refusal::new(
            HostStatus::NotFound,
            format!("cannot look up {name}: {}", error_chain(error)),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(method: &str, headers: &[(&str, &str)]) -> OutboundRequest {
        OutboundRequest {
            method: method.into(),
            url: "http://127.0.0.1:9/".into(),
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            body: Bytes::new(),
            max_response_bytes: 1 << 20,
        }
    }

    /// Refused before anything is sent: nothing listens on port 9 to tell otherwise.
    async fn refusal(request: OutboundRequest) -> Refusal {
        let outbound = Outbound::new(vec!["127.0.0.1:*".parse().unwrap()], Vec::new());
        let url = reqwest::Url::parse(&request.url).unwrap();
        match outbound.send(url, &request, Duration::from_secs(5)).await {
            Ok(_) => panic!("sent"),
            Err(refusal) => refusal,
        }
    }

    #[test]
    fn https_trusts_the_systems_roots() {
        // scripts/test installs Debian's ca-certificates.
        let outbound = Outbound::new(Vec::new(), Vec::new());
        assert_eq!(outbound.no_https, None);
    }

    #[test]
    fn without_roots_https_is_refused_saying_what_to_install() {
        let outbound = Outbound {
            no_https: Some("no trust roots".into()),
            ..Outbound::new(Vec::new(), Vec::new())
        };
        let request = OutboundRequest {
            url: "https://example.com/".into(),
            ..request("GET", &[])
        };
        let refused = outbound.check(&request, "u/f", &[]).unwrap_err();
        assert_eq!(refused.status, HostStatus::Unavailable);
        assert_eq!(
            refused.message,
            "https URLs cannot be reached from this executor: no trust roots"
        );
    }

    #[tokio::test]
    async fn headers_the_host_sets_and_bad_ones_are_refused_before_sending() {
        for (headers, why) in [
            (
                &[("Host", "elsewhere")][..],
                "the header host is the host's to set",
            ),
            (
                &[("Transfer-Encoding", "chunked")][..],
                "the header transfer-encoding is the host's",
            ),
            (
                &[("bad name", "x")][..],
                "\"bad name\" is not an HTTP header name",
            ),
            (
                &[("x-ok", "line\nbreak")][..],
                "the value of header x-ok is not valid in HTTP",
            ),
        ] {
            let refused = refusal(request("GET", headers)).await;
            assert_eq!(refused.status, HostStatus::InvalidArgument, "{why}");
            assert!(refused.message.contains(why), "{}", refused.message);
        }
        for method in ["CONNECT", "BAD METHOD"] {
            let refused = refusal(request(method, &[])).await;
            assert!(
                refused
                    .message
                    .contains("is not an HTTP method fwasm sends"),
                "{method}"
            );
        }
    }
}
