fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos = [
        "proto/fwasm/v1/call.proto",
        "proto/fwasm/v1/state.proto",
        "proto/fwasm/v1/scheduler.proto",
        "proto/fwasm/v1/executor.proto",
        "proto/fwasm/v1/functions.proto",
        // The sidecar runtime APIs fwasm answers: Layotto's and Dapr's.
        "proto/spec/proto/runtime/v1/runtime.proto",
        "proto/dapr/proto/common/v1/common.proto",
        "proto/dapr/proto/runtime/v1/dapr.proto",
    ];
    // protox compiles in pure Rust, so nobody needs protoc installed.
    let descriptors = protox::compile(protos, ["proto"])?;
    // Kept for gRPC reflection, so grpcurl and friends can discover every service.
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out.join("fwasm_descriptor.bin"),
        prost::Message::encode_to_vec(&descriptors),
    )?;
    tonic_prost_build::configure()
        .bytes(".")
        .compile_fds(descriptors)?;
    for proto in protos {
        println!("cargo:rerun-if-changed={proto}");
    }
    Ok(())
}
