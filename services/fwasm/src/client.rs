//! The CLI's client commands, speaking the public gRPC API.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, bail};
use fwasm_proto::pb::functions_client::FunctionsClient;
use fwasm_proto::pb::{CallStatus, InvokeRequest, UploadRequest};
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
        })
        .await
        .map_err(|status| anyhow::anyhow!("upload failed: {}", status.message()))?
        .into_inner();
    writeln!(
        out,
        "Uploaded {user}/{function}: ABI {}, sha256 {}",
        reply.abi, reply.module_hash
    )?;
    writeln!(
        out,
        "Invoke it: fwasm invoke {user}/{function} --input hello"
    )?;
    Ok(())
}

/// `fwasm invoke USER/NAME [--input ...]`: the output goes to `out` byte for byte.
pub async fn invoke(
    addr: &str,
    target: &str,
    input: Vec<u8>,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let (user, function) = parse_target(target)?;
    let result = connect(addr)
        .await?
        .invoke(InvokeRequest {
            user,
            function,
            input: input.into(),
            headers: vec![],
        })
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
