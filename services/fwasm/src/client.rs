//! The CLI's client commands, speaking the public gRPC API.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, bail};
use fwasm_proto::pb::functions_client::FunctionsClient;
use fwasm_proto::pb::{
    CallRef, CallStatus, CreateTokenRequest, FileRef, FunctionRef, FunctionSettings, InvokeRequest,
    ListFilesRequest, ListFunctionsRequest, ListKeysRequest, ListTokensRequest, QuotaRef,
    SetStateRequest, StateKey, Subscription, TokenRef, UploadRequest, UserQuota, WaitCallRequest,
};
use tonic::Status;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig};

/// Splits `USER/NAME`.
pub fn parse_target(target: &str) -> anyhow::Result<(String, String)> {
    match target.split_once('/') {
        Some((user, name)) if !user.is_empty() && !name.is_empty() && !name.contains('/') => {
            Ok((user.to_string(), name.to_string()))
        }
        _ => bail!("expected USER/NAME (for example demo/echo), got {target:?}"),
    }
}

/// Splits `USER/KEY` (a key may itself contain '/').
fn parse_state_target(target: &str) -> anyhow::Result<(String, String)> {
    match target.split_once('/') {
        Some((user, key)) if !user.is_empty() && !key.is_empty() => {
            Ok((user.to_string(), key.to_string()))
        }
        _ => bail!("expected USER/KEY (for example demo/counter), got {target:?}"),
    }
}

/// `fwasm state list USER [--prefix P]`: the user's keys, one per line, every page.
pub async fn state_list(
    server: impl Into<Server>,
    user: &str,
    prefix: &str,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let mut client = connect(server.into()).await?;
    let mut after = String::new();
    loop {
        let page = client
            .list_keys(ListKeysRequest {
                user: user.into(),
                prefix: prefix.into(),
                after: after.clone(),
                limit: 0,
            })
            .await
            .map_err(|status| anyhow::anyhow!("state list failed: {}", status.message()))?
            .into_inner();
        for key in &page.keys {
            writeln!(out, "{key}")?;
        }
        match (page.truncated, page.keys.last()) {
            (true, Some(last)) => after = last.clone(),
            _ => return Ok(()),
        }
    }
}

/// `fwasm state rm USER/KEY`: removes the key's value and append list.
pub async fn state_rm(
    server: impl Into<Server>,
    target: &str,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let (user, key) = parse_state_target(target)?;
    connect(server.into())
        .await?
        .delete_state(StateKey {
            user: user.clone(),
            key: key.clone(),
        })
        .await
        .map_err(|status| anyhow::anyhow!("state rm failed: {}", status.message()))?;
    writeln!(out, "Deleted {user}'s {key:?}")?;
    Ok(())
}

/// `fwasm files list [--user USER] [--prefix P]`: `SIZE PATH` lines, every page.
pub async fn files_list(
    server: impl Into<Server>,
    user: &str,
    prefix: &str,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let mut client = connect(server.into()).await?;
    let mut after = String::new();
    loop {
        let page = client
            .list_files(ListFilesRequest {
                user: user.into(),
                prefix: prefix.into(),
                after: after.clone(),
                limit: 0,
            })
            .await
            .map_err(|status| anyhow::anyhow!("files list failed: {}", status.message()))?
            .into_inner();
        for file in &page.files {
            writeln!(out, "{:>10}  {}", file.size, file.path)?;
        }
        match (page.truncated, page.files.last()) {
            (true, Some(last)) => after = last.path.clone(),
            _ => return Ok(()),
        }
    }
}

/// `fwasm files rm PATH [--user USER]`: removes the shared file.
pub async fn files_rm(
    server: impl Into<Server>,
    user: &str,
    path: &str,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    connect(server.into())
        .await?
        .delete_file(FileRef {
            user: user.into(),
            path: path.into(),
            or_common: false,
        })
        .await
        .map_err(|status| anyhow::anyhow!("files rm failed: {}", status.message()))?;
    match user {
        "" => writeln!(out, "Deleted the common file {path:?}")?,
        user => writeln!(out, "Deleted {user}'s file {path:?}")?,
    }
    Ok(())
}

/// `fwasm state get USER/KEY`: the value's bytes go to `out` as they are.
pub async fn state_get(
    server: impl Into<Server>,
    target: &str,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let (user, key) = parse_state_target(target)?;
    let value = connect(server.into())
        .await?
        .get_state(StateKey {
            user: user.clone(),
            key: key.clone(),
        })
        .await
        .map_err(|status| anyhow::anyhow!("state get failed: {}", status.message()))?
        .into_inner();
    if !value.exists {
        bail!("{user} has no state value {key:?}; set one with `fwasm state set {target} VALUE`");
    }
    out.write_all(&value.value)?;
    out.flush()?;
    Ok(())
}

/// `fwasm state set USER/KEY VALUE`.
pub async fn state_set(
    server: impl Into<Server>,
    target: &str,
    value: Vec<u8>,
) -> anyhow::Result<()> {
    let (user, key) = parse_state_target(target)?;
    connect(server.into())
        .await?
        .set_state(SetStateRequest {
            user,
            key,
            value: value.into(),
        })
        .await
        .map_err(|status| anyhow::anyhow!("state set failed: {}", status.message()))?;
    Ok(())
}

/// Where the CLI's requests go, and the token they bring.
#[derive(Debug, Clone, Default)]
pub struct Server {
    /// fwasm's public gRPC API (`--addr`).
    pub addr: String,
    /// Sent as `authorization: Bearer <token>` (`--token`, `FWASM_TOKEN`).
    pub token: Option<String>,
    /// For an `https://` address: the CA certificate that signed the gateway's (`--tls-ca`).
    pub tls_ca: Option<std::path::PathBuf>,
}

impl From<&str> for Server {
    fn from(addr: &str) -> Self {
        Self {
            addr: addr.to_string(),
            token: None,
            tls_ca: None,
        }
    }
}

impl From<&String> for Server {
    fn from(addr: &String) -> Self {
        Self::from(addr.as_str())
    }
}

impl From<&Server> for Server {
    fn from(server: &Server) -> Self {
        server.clone()
    }
}

/// Adds the token, if any, to every request.
#[derive(Clone)]
pub struct Bearer(Option<MetadataValue<Ascii>>);

impl Interceptor for Bearer {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, Status> {
        if let Some(value) = &self.0 {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        Ok(request)
    }
}

/// Whether `uri` is plain http to a host other than this machine (where a token could be
/// read on the way).
fn in_clear_beyond_loopback(uri: &str) -> bool {
    let Some(rest) = uri.strip_prefix("http://") else {
        return false;
    };
    let authority = rest.split('/').next().unwrap_or_default();
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => authority
            .rsplit_once(':')
            .map_or(authority, |(host, _)| host),
    };
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    !loopback
}

pub type Client = FunctionsClient<InterceptedService<Channel, Bearer>>;

pub async fn connect(server: Server) -> anyhow::Result<Client> {
    let bearer = match &server.token {
        Some(token) => Some(
            format!("Bearer {token}")
                .parse()
                .context("the token has characters a header cannot carry")?,
        ),
        None => None,
    };
    let uri = fwasm_proto::grpc::uri(&server.addr);
    if server.token.is_some() && in_clear_beyond_loopback(&uri) {
        eprintln!(
            "warning: sending the token unencrypted to {uri}: use an https:// --addr (with \
             --tls-ca) for a gateway on another machine"
        );
    }
    let mut endpoint =
        Channel::from_shared(uri.clone()).with_context(|| format!("{uri} is not an address"))?;
    if uri.starts_with("https://") {
        let Some(ca) = &server.tls_ca else {
            bail!(
                "{uri} is TLS: give --tls-ca FILE (or FWASM_TLS_CA), the CA certificate that \
                 signed the gateway's"
            );
        };
        let ca = std::fs::read(ca).with_context(|| format!("cannot read {}", ca.display()))?;
        let tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(ca));
        endpoint = endpoint.tls_config(tls)?;
    }
    let channel = endpoint.connect().await.with_context(|| {
        format!(
            "cannot reach fwasm at {uri}; is `fwasm up` running? (set another address with --addr)"
        )
    })?;
    Ok(FunctionsClient::with_interceptor(channel, Bearer(bearer))
        .max_decoding_message_size(usize::MAX)
        .max_encoding_message_size(usize::MAX))
}

/// `fwasm upload USER/NAME FILE`.
pub async fn upload(
    server: impl Into<Server>,
    target: &str,
    file: &Path,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    upload_with_settings(server, target, file, None, out).await
}

/// `fwasm upload USER/NAME FILE --env KEY=VALUE ...`: the settings every call of it gets.
pub async fn upload_with_settings(
    server: impl Into<Server>,
    target: &str,
    file: &Path,
    settings: Option<FunctionSettings>,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let (user, function) = parse_target(target)?;
    let wasm = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    writeln!(
        out,
        "Uploading {} ({} KiB) as {user}/{function} ...",
        file.display(),
        wasm.len().div_ceil(1024)
    )?;
    let reply = connect(server.into())
        .await?
        .upload(UploadRequest {
            user: user.clone(),
            function: function.clone(),
            wasm: wasm.into(),
            settings,
            python: file.extension().is_some_and(|ext| ext == "py"),
        })
        .await
        .map_err(|status| anyhow::anyhow!("upload failed: {}", status.message()))?
        .into_inner();
    writeln!(
        out,
        "Uploaded {user}/{function}: ABI {}, sha256 {}",
        reply.abi, reply.module_hash
    )?;
    if !reply.proxy_id.is_empty() {
        writeln!(out, "Its proxy-wasm id (proxy_get_id): {}", reply.proxy_id)?;
    }
    writeln!(
        out,
        "Invoke it: fwasm invoke {user}/{function} --input hello"
    )?;
    Ok(())
}

/// `fwasm subscribe USER/FUNCTION TOPIC` (or with `subscribed` false, `fwasm unsubscribe`).
pub async fn subscribe(
    server: impl Into<Server>,
    target: &str,
    topic: &str,
    subscribed: bool,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let (user, function) = parse_target(target)?;
    let request = Subscription {
        user: user.clone(),
        topic: topic.to_string(),
        function: function.clone(),
    };
    let mut client = connect(server.into()).await?;
    if subscribed {
        client
            .subscribe(request)
            .await
            .map_err(|status| anyhow::anyhow!("subscribe failed: {}", status.message()))?;
        writeln!(out, "{user}/{function} is subscribed to {topic}")?;
        writeln!(
            out,
            "Publish to it: curl -X POST localhost:8080/v1.0/publish/{user}/{topic} -d '{{\"hello\": 1}}' -H 'content-type: application/json'"
        )?;
    } else {
        client
            .unsubscribe(request)
            .await
            .map_err(|status| anyhow::anyhow!("unsubscribe failed: {}", status.message()))?;
        writeln!(out, "{user}/{function} is no longer subscribed to {topic}")?;
    }
    Ok(())
}

/// `fwasm list USER`: the user's functions, a line each: name, size, ABI, hash, when
/// uploaded, settings.
pub async fn list_functions(
    server: impl Into<Server>,
    user: &str,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let list = connect(server.into())
        .await?
        .list_functions(ListFunctionsRequest { user: user.into() })
        .await
        .map_err(|status| anyhow::anyhow!("list failed: {}", status.message()))?
        .into_inner();
    if list.functions.is_empty() {
        writeln!(
            out,
            "{user} has no functions; upload one with fwasm upload {user}/NAME FILE"
        )?;
        return Ok(());
    }
    let rows: Vec<[String; 6]> = list
        .functions
        .iter()
        .map(|f| {
            let settings = f.settings.clone().unwrap_or_default();
            let mut env: Vec<String> = settings
                .env
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            env.sort();
            let mut shown: Vec<String> = env.into_iter().map(|e| format!("env {e}")).collect();
            shown.extend(settings.allow_hosts.iter().map(|h| format!("allow {h}")));
            if settings.timeout_seconds > 0 {
                shown.push(format!("timeout {} s", settings.timeout_seconds));
            }
            if settings.memory_mib > 0 {
                shown.push(format!("memory {} MiB", settings.memory_mib));
            }
            [
                f.function.clone(),
                format!("{} B", f.size),
                if f.abi.is_empty() {
                    "-".into()
                } else {
                    f.abi.clone()
                },
                f.module_hash.chars().take(12).collect(),
                fwasm_proto::timestamps::rfc3339_from_unix_ms(f.uploaded_at_ms)
                    .unwrap_or_else(|| "-".into()),
                shown.join(", "),
            ]
        })
        .collect();
    let header = ["NAME", "SIZE", "ABI", "HASH", "UPLOADED", "SETTINGS"].map(String::from);
    let mut widths = header.clone().map(|h| h.len());
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    for row in std::iter::once(&header).chain(&rows) {
        let cells: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(cell, width)| format!("{cell:width$}"))
            .collect();
        writeln!(out, "{}", cells.join("  ").trim_end())?;
    }
    Ok(())
}

/// `fwasm logs ID`: the call's log lines, as they were kept.
pub async fn logs(server: impl Into<Server>, id: u64, out: &mut impl Write) -> anyhow::Result<()> {
    let record = connect(server.into())
        .await?
        .get_call(CallRef {
            id,
            ..CallRef::default()
        })
        .await
        .map_err(|status| anyhow::anyhow!("logs failed: {}", status.message()))?
        .into_inner();
    out.write_all(&record.logs)?;
    out.flush()?;
    Ok(())
}

/// `fwasm cancel ID`: cancels the call and says how it ended.
pub async fn cancel(
    server: impl Into<Server>,
    id: u64,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let record = connect(server.into())
        .await?
        .cancel_call(CallRef {
            id,
            ..CallRef::default()
        })
        .await
        .map_err(|status| anyhow::anyhow!("cancel failed: {}", status.message()))?
        .into_inner();
    match record.status() {
        CallStatus::Failed => writeln!(out, "Cancelled call {id}: {}", record.error)?,
        CallStatus::Success => {
            anyhow::bail!("cancel failed: call {id} succeeded before the cancel took effect")
        }
        status => writeln!(
            out,
            "Call {id} is being cancelled (still {}); `fwasm status {id} --wait` shows when it \
             ends",
            fwasm_proto::outcome::status_word(status)
        )?,
    }
    Ok(())
}

/// `fwasm rm USER/NAME`: removes the function.
pub async fn delete_function(
    server: impl Into<Server>,
    target: &str,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let (user, function) = parse_target(target)?;
    connect(server.into())
        .await?
        .delete_function(FunctionRef {
            user: user.clone(),
            function: function.clone(),
        })
        .await
        .map_err(|status| anyhow::anyhow!("rm failed: {}", status.message()))?;
    writeln!(out, "Deleted {user}/{function}")?;
    Ok(())
}

/// What a call of `fwasm invoke` passes: its input, and a program's command line.
#[derive(Debug, Default)]
pub struct CallInput {
    pub input: Vec<u8>,
    pub cmdline: String,
    /// Ranks of the MPI world the call starts; 0: not an MPI call.
    pub mpi_world_size: u32,
}

impl From<Vec<u8>> for CallInput {
    fn from(input: Vec<u8>) -> Self {
        Self {
            input,
            ..Self::default()
        }
    }
}

pub(crate) fn invoke_request(
    target: &str,
    input: impl Into<CallInput>,
) -> anyhow::Result<InvokeRequest> {
    let (user, function) = parse_target(target)?;
    let CallInput {
        input,
        cmdline,
        mpi_world_size,
    } = input.into();
    Ok(InvokeRequest {
        user,
        function,
        input: input.into(),
        headers: vec![],
        cmdline,
        mpi_world_size,
    })
}

/// `fwasm invoke USER/NAME [--input ...] [--cmdline ...]`: the output goes to `out` byte for
/// byte.
pub async fn invoke(
    server: impl Into<Server>,
    target: &str,
    input: impl Into<CallInput>,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let result = connect(server.into())
        .await?
        .invoke(invoke_request(target, input)?)
        .await
        .map_err(|status| anyhow::anyhow!("invoke failed: {}", status.message()))?
        .into_inner();
    if result.status() != CallStatus::Success {
        bail!("call {} failed: {}", result.id, result.error);
    }
    out.write_all(&result.output)?;
    out.flush()?;
    Ok(())
}

/// `fwasm invoke --async USER/NAME`: prints the call id alone, so scripts can capture it.
pub async fn invoke_async(
    server: impl Into<Server>,
    target: &str,
    input: impl Into<CallInput>,
    out: &mut impl Write,
) -> anyhow::Result<u64> {
    let reply = connect(server.into())
        .await?
        .invoke_async(invoke_request(target, input)?)
        .await
        .map_err(|status| anyhow::anyhow!("invoke failed: {}", status.message()))?
        .into_inner();
    writeln!(out, "{}", reply.call_id)?;
    Ok(reply.call_id)
}

/// `fwasm status ID [--wait]`: prints `RUNNING`, `SUCCESS: <output>` or `FAILED: <reason>`
/// (the lines of Faasm's status poll) and returns the status.
pub async fn status(
    server: impl Into<Server>,
    id: u64,
    wait: bool,
    out: &mut impl Write,
) -> anyhow::Result<CallStatus> {
    let mut client = connect(server.into()).await?;
    let record = if wait {
        client
            .wait_call(WaitCallRequest {
                id,
                ..WaitCallRequest::default()
            })
            .await
    } else {
        client
            .get_call(CallRef {
                id,
                ..CallRef::default()
            })
            .await
    }
    .map_err(|status| anyhow::anyhow!("status failed: {}", status.message()))?
    .into_inner();
    match record.status() {
        CallStatus::Success => {
            out.write_all(b"SUCCESS: ")?;
            out.write_all(&record.output)?;
            writeln!(out)?;
        }
        CallStatus::Failed => {
            writeln!(out, "FAILED: {}", record.error)?;
            // What it logged on the way often says why.
            if !record.logs.is_empty() {
                writeln!(out, "its logs:")?;
                out.write_all(&record.logs)?;
            }
        }
        _ => writeln!(out, "RUNNING")?,
    }
    // An MPI world's call: how each rank ended, and where it ran.
    for rank in &record.mpi_ranks {
        let status = fwasm_proto::outcome::status_word(rank.status());
        let place = match rank.executor_id.as_str() {
            "" => String::new(),
            executor => format!(" on {executor}"),
        };
        let why = match rank.error.as_str() {
            "" => String::new(),
            error => format!(": {error}"),
        };
        let took = rank.exec_micros;
        writeln!(
            out,
            "  rank {}: {status}{place} in {took} µs{why}",
            rank.rank
        )?;
    }
    out.flush()?;
    Ok(record.status())
}

/// `fwasm token create USER [--admin]`: the token alone on `out` (so scripts can capture it),
/// what it is on `note`.
pub async fn token_create(
    server: impl Into<Server>,
    user: &str,
    admin: bool,
    out: &mut impl Write,
    note: &mut impl Write,
) -> anyhow::Result<()> {
    let created = connect(server.into())
        .await?
        .create_token(CreateTokenRequest {
            user: user.to_string(),
            admin,
        })
        .await
        .map_err(|status| anyhow::anyhow!("token create failed: {}", status.message()))?
        .into_inner();
    writeln!(out, "{}", created.token)?;
    out.flush()?;
    let whose = match created.admin {
        true => "an admin token".to_string(),
        false => format!("a token of {}", created.user),
    };
    writeln!(
        note,
        "Created {whose}, id {}. It is shown this once: keep it secret; send it as \
         `Authorization: Bearer <token>` or set FWASM_TOKEN. Revoke it with `fwasm token revoke {}`.",
        created.id, created.id
    )?;
    Ok(())
}

/// `fwasm token list`: one line per token, oldest first.
pub async fn token_list(server: impl Into<Server>, out: &mut impl Write) -> anyhow::Result<()> {
    let list = connect(server.into())
        .await?
        .list_tokens(ListTokensRequest {})
        .await
        .map_err(|status| anyhow::anyhow!("token list failed: {}", status.message()))?
        .into_inner();
    writeln!(
        out,
        "{:<18} {:<24} {:<6} CREATED (unix ms)",
        "ID", "USER", "ADMIN"
    )?;
    for token in list.tokens {
        let user = if token.admin {
            "-"
        } else {
            token.user.as_str()
        };
        let admin = if token.admin { "yes" } else { "no" };
        writeln!(
            out,
            "{:<18} {user:<24} {admin:<6} {}",
            token.id, token.created_unix_millis
        )?;
    }
    Ok(())
}

/// `fwasm token revoke ID`.
pub async fn token_revoke(
    server: impl Into<Server>,
    id: &str,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    connect(server.into())
        .await?
        .revoke_token(TokenRef { id: id.to_string() })
        .await
        .map_err(|status| anyhow::anyhow!("token revoke failed: {}", status.message()))?;
    writeln!(out, "Revoked token {id}")?;
    Ok(())
}

/// `fwasm quota set USER ...`: the user's own limits (0 = the default's).
pub async fn quota_set(
    server: impl Into<Server>,
    quota: UserQuota,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let user = quota.user.clone();
    let mut client = connect(server.into()).await?;
    client
        .set_quota(quota)
        .await
        .map_err(|status| anyhow::anyhow!("quota set failed: {}", status.message()))?;
    writeln!(out, "Set {user}'s own quotas; in force now:")?;
    quota_print(&mut client, &user, out).await
}

/// `fwasm quota get USER`: the limits in force for the user.
pub async fn quota_get(
    server: impl Into<Server>,
    user: &str,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    quota_print(&mut connect(server.into()).await?, user, out).await
}

async fn quota_print(client: &mut Client, user: &str, out: &mut impl Write) -> anyhow::Result<()> {
    let quota = client
        .get_quota(QuotaRef { user: user.into() })
        .await
        .map_err(|status| anyhow::anyhow!("quota get failed: {}", status.message()))?
        .into_inner();
    let limit = |value: f64| match value {
        0.0 => "no limit".to_string(),
        value => value.to_string(),
    };
    writeln!(
        out,
        "concurrent calls: {}",
        limit(quota.max_concurrent_calls.into())
    )?;
    writeln!(out, "calls per second: {}", limit(quota.calls_per_second))?;
    let burst = match (quota.burst_calls, quota.calls_per_second) {
        (_, 0.0) => "no limit".to_string(),
        (0, rate) => format!("{} (a second's worth)", rate.ceil().max(1.0)),
        (burst, _) => burst.to_string(),
    };
    writeln!(out, "burst calls: {burst}")?;
    let usage = client
        .get_usage(QuotaRef { user: user.into() })
        .await
        .map_err(|status| anyhow::anyhow!("quota get failed: {}", status.message()))?
        .into_inner();
    let of = |used: u64, limit: u64| match limit {
        0 => format!("{used} (no limit)"),
        limit => format!("{used} of {limit}"),
    };
    writeln!(
        out,
        "stored bytes: {}",
        of(usage.stored_bytes, usage.max_stored_bytes)
    )?;
    writeln!(
        out,
        "functions: {}",
        of(usage.functions.into(), usage.max_functions.into())
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::in_clear_beyond_loopback;

    #[test]
    fn a_token_in_clear_is_flagged_only_beyond_this_machine() {
        for local in [
            "http://127.0.0.1:8081",
            "http://localhost:8081",
            "http://[::1]:8081",
            "https://gateway.example:8081",
        ] {
            assert!(!in_clear_beyond_loopback(local), "{local}");
        }
        for remote in [
            "http://10.0.0.5:8081",
            "http://gateway.example:8081",
            "http://[2001:db8::1]:1",
        ] {
            assert!(in_clear_beyond_loopback(remote), "{remote}");
        }
    }
}
