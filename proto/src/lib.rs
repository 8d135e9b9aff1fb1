//! fwasm's protocol: the generated gRPC types (package `fwasm.v1`), one Rust trait per internal
//! service, and adapters both ways between each trait and gRPC.
//!
//! Every service implements its trait once. `fwasm up` hands those implementations to each
//! other directly (no socket, no serialisation); in distributed mode [`grpc`] serves an
//! implementation over tonic and a tonic client implements the same trait on the other side.

pub mod api;
pub mod directory;
mod error;
pub mod grpc;
pub mod leases;
pub mod metrics;
pub mod names;
pub mod outbound;
pub mod outcome;
pub mod pubsub;
pub mod python;
pub mod timestamps;
pub mod tls;
pub mod trace;

pub use error::{ApiError, ErrorCode};

/// Types generated from `proto/fwasm/v1/*.proto`.
#[allow(clippy::large_enum_variant)]
pub mod pb {
    tonic::include_proto!("fwasm.v1");
}

/// Layotto's runtime API (`spec.proto.runtime.v1.Runtime`), the part fwasm serves.
pub mod layotto {
    tonic::include_proto!("spec.proto.runtime.v1");
}

/// Dapr's runtime API (`dapr.proto.runtime.v1.Dapr`), the part fwasm serves. Nested as the
/// packages are, so the generated code finds `dapr.proto.common.v1`.
pub mod dapr {
    pub mod proto {
        pub mod common {
            pub mod v1 {
                tonic::include_proto!("dapr.proto.common.v1");
            }
        }
        pub mod runtime {
            pub mod v1 {
                tonic::include_proto!("dapr.proto.runtime.v1");
            }
        }
    }
}
