//! The sidecar beside an executor (`--sidecar ADDR --sidecar-api layotto|dapr`): a Layotto or
//! Dapr runtime whose building blocks the executor's guests reach (state stores, service
//! invocation, pub/sub, output bindings, secrets), each request sent verbatim in that
//! runtime's own API. A request gives up a moment before its call's deadline, so a slow or
//! unreachable sidecar ends with a status and a reason, never a hung call.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use fwasm_abi::HostStatus;
use fwasm_proto::dapr::proto::common::v1 as dapr_common;
use fwasm_proto::dapr::proto::runtime::v1 as dapr;
use fwasm_proto::dapr::proto::runtime::v1::dapr_client::DaprClient;
use fwasm_proto::layotto;
use fwasm_proto::layotto::runtime_client::RuntimeClient;
use fwasm_proto::trace::outgoing;
use prost_types::Any;
use tonic::transport::{Channel, Endpoint};
use tracing::Instrument;

use crate::host::park::Refusal;

/// Which runtime API the sidecar speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SidecarApi {
    /// `spec.proto.runtime.v1.Runtime`.
    Layotto,
    /// `dapr.proto.runtime.v1.Dapr`.
    Dapr,
}

impl FromStr for SidecarApi {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, String> {
        match name {
            "layotto" => Ok(Self::Layotto),
            "dapr" => Ok(Self::Dapr),
            other => Err(format!(
                "{other:?} is not a sidecar API: use layotto or dapr"
            )),
        }
    }
}

impl fmt::Display for SidecarApi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Layotto => "layotto",
            Self::Dapr => "dapr",
        })
    }
}

/// Where the sidecar is and what it speaks.
#[derive(Debug, Clone)]
pub struct SidecarConfig {
    /// `host:port` of its gRPC API.
    pub addr: String,
    pub api: SidecarApi,
    /// The longest one request may take (less when the call's deadline is nearer).
    pub timeout: Duration,
}

impl SidecarConfig {
    pub fn new(addr: impl Into<String>, api: SidecarApi) -> Self {
        Self {
            addr: addr.into(),
            api,
            timeout: Duration::from_secs(10),
        }
    }
}

/// A request of a guest to the sidecar, in the building blocks' own terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SidecarRequest {
    GetState {
        store: String,
        key: String,
    },
    SaveState {
        store: String,
        key: String,
        value: Bytes,
    },
    DeleteState {
        store: String,
        key: String,
    },
    Invoke {
        app: String,
        method: String,
        data: Bytes,
    },
    Publish {
        pubsub: String,
        topic: String,
        data: Bytes,
    },
    InvokeBinding {
        name: String,
        operation: String,
        data: Bytes,
    },
    GetSecret {
        store: String,
        key: String,
    },
}

impl SidecarRequest {
    /// The runtime API's method, for traces and messages.
    fn method(&self) -> &'static str {
        match self {
            Self::GetState { .. } => "GetState",
            Self::SaveState { .. } => "SaveState",
            Self::DeleteState { .. } => "DeleteState",
            Self::Invoke { .. } => "InvokeService",
            Self::Publish { .. } => "PublishEvent",
            Self::InvokeBinding { .. } => "InvokeBinding",
            Self::GetSecret { .. } => "GetSecret",
        }
    }
}

/// Time left for the call to hear why its request ended, once the sidecar gave up.
const ANSWER_MARGIN: Duration = Duration::from_millis(100);
/// How long connecting to the sidecar may take before it counts as unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// The executor's client of its sidecar.
pub(crate) struct Sidecar {
    config: SidecarConfig,
    /// Or why the address cannot be used, for every request.
    channel: Result<Channel, String>,
}

impl Sidecar {
    /// A client that connects on first use.
    pub(crate) fn new(config: SidecarConfig) -> Self {
        let channel = Endpoint::from_shared(fwasm_proto::grpc::uri(&config.addr))
            .map(|endpoint| endpoint.connect_timeout(CONNECT_TIMEOUT).connect_lazy())
            .map_err(|e| format!("the sidecar address {:?} is not usable: {e}", config.addr));
        Self { config, channel }
    }

    /// Sends `request`; the answer's bytes (a value, a reply, a binding's output, a secret),
    /// empty for requests that answer nothing.
    pub(crate) async fn send(
        &self,
        request: &SidecarRequest,
        deadline: Instant,
    ) -> Result<Bytes, Refusal> {
        let (addr, api, method) = (&self.config.addr, self.config.api, request.method());
        let channel = match &self.channel {
            Ok(channel) => channel.clone(),
            Err(reason) => return Err(Refusal::new(HostStatus::Unavailable, reason.clone())),
        };
        let span = tracing::info_span!("sidecar.request", sidecar.addr = %addr, sidecar.api = %api, rpc.method = method);
        let limit = deadline
            .saturating_duration_since(Instant::now())
            .saturating_sub(ANSWER_MARGIN)
            .min(self.config.timeout);
        let sent = async {
            match api {
                SidecarApi::Layotto => layotto(channel, request.clone()).await,
                SidecarApi::Dapr => dapr(channel, request.clone()).await,
            }
        };
        match tokio::time::timeout(limit, sent).instrument(span).await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(status)) => Err(refusal(method, addr, status)),
            Err(_) => Err(Refusal::new(
                HostStatus::Timeout,
                format!("the sidecar at {addr} did not answer {method} within {limit:?}"),
            )),
        }
    }
}

/// `async fn $name(channel, request)`: sends `request` in one sidecar API, whose client is
/// `$client`, whose requests are in `$api`, and whose state items and invoke request
/// (`$invoke`) are in `$common`. Layotto's and Dapr's APIs differ only in those names.
macro_rules! sender {
    ($name:ident, $client:ident, $api:ident, $common:ident, $invoke:ident) => {
        async fn $name(channel: Channel, request: SidecarRequest) -> Result<Bytes, tonic::Status> {
            let mut client = $client::new(channel);
            Ok(match request {
                SidecarRequest::GetState { store, key } => {
                    let request = $api::GetStateRequest {
                        store_name: store,
                        key,
                        ..Default::default()
                    };
                    client.get_state(outgoing(request)).await?.into_inner().data
                }
                SidecarRequest::SaveState { store, key, value } => {
                    let request = $api::SaveStateRequest {
                        store_name: store,
                        states: vec![$common::StateItem {
                            key,
                            value,
                            ..Default::default()
                        }],
                    };
                    client.save_state(outgoing(request)).await?;
                    Bytes::new()
                }
                SidecarRequest::DeleteState { store, key } => {
                    let request = $api::DeleteStateRequest {
                        store_name: store,
                        key,
                        ..Default::default()
                    };
                    client.delete_state(outgoing(request)).await?;
                    Bytes::new()
                }
                SidecarRequest::Invoke { app, method, data } => {
                    let request = $api::InvokeServiceRequest {
                        id: app,
                        message: Some($common::$invoke {
                            method,
                            data: Some(any(data)),
                            ..Default::default()
                        }),
                    };
                    let reply = client.invoke_service(outgoing(request)).await?.into_inner();
                    reply.data.map_or_else(Bytes::new, |any| any.value.into())
                }
                SidecarRequest::Publish {
                    pubsub,
                    topic,
                    data,
                } => {
                    let request = $api::PublishEventRequest {
                        pubsub_name: pubsub,
                        topic,
                        data,
                        ..Default::default()
                    };
                    client.publish_event(outgoing(request)).await?;
                    Bytes::new()
                }
                SidecarRequest::InvokeBinding {
                    name,
                    operation,
                    data,
                } => {
                    let request = $api::InvokeBindingRequest {
                        name,
                        data,
                        operation,
                        metadata: HashMap::new(),
                    };
                    client
                        .invoke_binding(outgoing(request))
                        .await?
                        .into_inner()
                        .data
                }
                SidecarRequest::GetSecret { store, key } => {
                    let request = $api::GetSecretRequest {
                        store_name: store,
                        key: key.clone(),
                        metadata: HashMap::new(),
                    };
                    secret(
                        &key,
                        client
                            .get_secret(outgoing(request))
                            .await?
                            .into_inner()
                            .data,
                    )
                }
            })
        }
    };
}

// Sends `request` in Layotto's API.
sender!(
    layotto,
    RuntimeClient,
    layotto,
    layotto,
    CommonInvokeRequest
);
// Sends `request` in Dapr's API.
sender!(dapr, DaprClient, dapr, dapr_common, InvokeRequest);

fn any(data: Bytes) -> Any {
    Any {
        type_url: String::new(),
        value: data.into(),
    }
}

/// A secret as a guest gets it: the value under its own key (the usual answer of a secret
/// store), else the whole map as a JSON object (a store that answers with several values).
fn secret(key: &str, mut data: HashMap<String, String>) -> Bytes {
    match data.remove(key) {
        Some(value) => value.into(),
        None => serde_json::to_vec(&data).unwrap_or_default().into(),
    }
}

/// The status a guest sees for a failed request, and why.
fn refusal(method: &str, addr: &str, status: tonic::Status) -> Refusal {
    use tonic::Code;
    let code = match status.code() {
        Code::NotFound => HostStatus::NotFound,
        Code::InvalidArgument | Code::OutOfRange | Code::FailedPrecondition => {
            HostStatus::InvalidArgument
        }
        Code::PermissionDenied | Code::Unauthenticated => HostStatus::PermissionDenied,
        Code::DeadlineExceeded => HostStatus::Timeout,
        Code::ResourceExhausted => HostStatus::LimitExceeded,
        _ => HostStatus::Unavailable,
    };
    let reason = match status.code() {
        Code::Unavailable => format!("the sidecar at {addr} is unreachable: {}", status.message()),
        code => format!(
            "the sidecar at {addr} answered {method} with {code:?}: {}",
            status.message()
        ),
    };
    Refusal::new(code, reason)
}
