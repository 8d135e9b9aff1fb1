//! The CLI's client commands, speaking the public gRPC API.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, bail};
use fwasm_proto::pb::functions_client::FunctionsClient;
use fwasm_proto::pb::{
    CallRef, CallStatus, FunctionSettings, InvokeRequest, SetStateRequest, StateKey, Subscription,
    UploadRequest, WaitCallRequest,
};
use tonic::transport::Channel;

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

/// `fwasm state get USER/KEY`: the value's bytes go to `out` as they are.
pub async fn state_get(addr: &str, target: &str, out: &mut impl Write) -> anyhow::Result<()> {
    let (user, key) = parse_state_target(target)?;
    let value = connect(addr)
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
pub async fn state_set(addr: &str, target: &str, value: Vec<u8>) -> anyhow::Result<()> {
    let (user, key) = parse_state_target(target)?;
    connect(addr)
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

async fn connect(addr: &str) -> anyhow::Result<FunctionsClient<Channel>> {
    let uri = fwasm_proto::grpc::uri(addr);
    let client = FunctionsClient::connect(uri.clone())
        .await
        .with_context(|| format!("cannot reach fwasm at {uri}; is `fwasm up` running? (set another address with --addr)"))?;
    Ok(client
        .max_decoding_message_size(usize::MAX)
        .max_encoding_message_size(usize::MAX))
}

/// `fwasm upload USER/NAME FILE`.
pub async fn upload(
    addr: &str,
    target: &str,
    file: &Path,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    upload_with_settings(addr, target, file, None, out).await
}

/// `fwasm upload USER/NAME FILE --env KEY=VALUE ...`: the settings every call of it gets.
pub async fn upload_with_settings(
    addr: &str,
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
    let reply = connect(addr)
        .await?
        .upload(UploadRequest {
            user: user.clone(),
            function: function.clone(),
            wasm: wasm.into(),
            settings,
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
    addr: &str,
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
    let mut client = connect(addr).await?;
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

/// What a call of `fwasm invoke` passes: its input, and a program's command line.
#[derive(Debug, Default)]
pub struct CallInput {
    pub input: Vec<u8>,
    pub cmdline: String,
}

impl From<Vec<u8>> for CallInput {
    fn from(input: Vec<u8>) -> Self {
        Self {
            input,
            ..Self::default()
        }
    }
}

fn invoke_request(target: &str, input: impl Into<CallInput>) -> anyhow::Result<InvokeRequest> {
    let (user, function) = parse_target(target)?;
    let CallInput { input, cmdline } = input.into();
    Ok(InvokeRequest {
        user,
        function,
        input: input.into(),
        headers: vec![],
        cmdline,
    })
}

/// `fwasm invoke USER/NAME [--input ...] [--cmdline ...]`: the output goes to `out` byte for
/// byte.
pub async fn invoke(
    addr: &str,
    target: &str,
    input: impl Into<CallInput>,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let result = connect(addr)
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
    addr: &str,
    target: &str,
    input: impl Into<CallInput>,
    out: &mut impl Write,
) -> anyhow::Result<u64> {
    let reply = connect(addr)
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
    addr: &str,
    id: u64,
    wait: bool,
    out: &mut impl Write,
) -> anyhow::Result<CallStatus> {
    let mut client = connect(addr).await?;
    let record = if wait {
        client
            .wait_call(WaitCallRequest {
                id,
                ..WaitCallRequest::default()
            })
            .await
    } else {
        client.get_call(CallRef { id }).await
    }
    .map_err(|status| anyhow::anyhow!("status failed: {}", status.message()))?
    .into_inner();
    match record.status() {
        CallStatus::Success => {
            out.write_all(b"SUCCESS: ")?;
            out.write_all(&record.output)?;
            writeln!(out)?;
        }
        CallStatus::Failed => writeln!(out, "FAILED: {}", record.error)?,
        _ => writeln!(out, "RUNNING")?,
    }
    out.flush()?;
    Ok(record.status())
}
