//! TLS on the public ports, and mutual TLS in the mesh, with certificates the tests make.

use std::sync::Arc;

use fwasm_proto::pb::functions_client::FunctionsClient;
use fwasm_proto::pb::{ExecutorHeartbeat, InvokeRequest, SetStateRequest, StateKey, UploadRequest};
use fwasm_proto::tls::Tls;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

use crate::support::{mesh_with_tls, test_gateway_config, up_with_gateway};

/// A certificate authority, and certificates it signs for 127.0.0.1 and localhost.
pub(crate) struct Authority {
    pub(crate) pem: String,
    issuer: Issuer<'static, KeyPair>,
}

/// A certificate and its key, in PEM.
pub(crate) struct Signed {
    cert: String,
    key: String,
}

impl Authority {
    pub(crate) fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate().unwrap();
        let pem = params.self_signed(&key).unwrap().pem();
        Self {
            pem,
            issuer: Issuer::new(params, key),
        }
    }

    /// For servers and clients alike, as every service of the mesh is both.
    pub(crate) fn sign(&self) -> Signed {
        let mut params = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        params
            .subject_alt_names
            .push(SanType::IpAddress("127.0.0.1".parse().unwrap()));
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Signed {
            cert: cert.pem(),
            key: key.serialize_pem(),
        }
    }

    pub(crate) fn tls(&self, signed: &Signed, mutual: bool) -> Tls {
        let ca = mutual.then(|| self.pem.clone().into_bytes());
        Tls::from_pem(signed.cert.clone().into(), signed.key.clone().into(), ca).unwrap()
    }
}

/// One HTTP/1.1 request over TLS, trusting `ca`: the response's status line and body.
async fn https(addr: &str, ca: &str, request: &str) -> std::io::Result<String> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_slice_iter(ca.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::try_from("localhost").unwrap();
    let mut tls = TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await?;
    tls.write_all(request.as_bytes()).await?;
    let mut response = String::new();
    tls.read_to_string(&mut response).await?;
    Ok(response)
}

async fn grpc_over_tls(
    addr: &str,
    tls: ClientTlsConfig,
) -> Result<Channel, tonic::transport::Error> {
    Channel::from_shared(format!("https://{addr}"))
        .unwrap()
        .tls_config(tls)?
        .connect()
        .await
}

/// Whether the state service at `addr` refuses a client with `tls`: at the handshake, or at
/// its first request (TLS 1.3 tells a client its certificate was refused only then).
async fn refuses(addr: &str, tls: ClientTlsConfig, key: &StateKey) -> bool {
    match grpc_over_tls(addr, tls).await {
        Err(_) => true,
        Ok(channel) => {
            let mut client = fwasm_proto::pb::state_client::StateClient::new(channel);
            client.get_state(key.clone()).await.is_err()
        }
    }
}

fn echo_call() -> InvokeRequest {
    InvokeRequest {
        user: "demo".into(),
        function: "echo".into(),
        input: "over tls".into(),
        ..InvokeRequest::default()
    }
}

#[tokio::test]
async fn the_public_ports_serve_tls() {
    let ca = Authority::new("fwasm test CA");
    let server = ca.sign();
    let gateway = fwasm_gateway::GatewayConfig {
        tls: Some(ca.tls(&server, false)),
        ..test_gateway_config()
    };
    let p = up_with_gateway(gateway, "unused-admin-token").await;
    let (invoke, grpc) = (
        p.invoke.trim_start_matches("http://"),
        p.grpc.trim_start_matches("http://"),
    );
    // HTTP over TLS, as curl --cacert would.
    let request = "POST /f/demo/echo HTTP/1.1\r\nhost: localhost\r\ncontent-length: 2\r\n\
                   connection: close\r\n\r\nhi";
    let response = https(invoke, &ca.pem, request).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 200 OK"), "{response}");
    assert!(response.ends_with("\r\n\r\nhi"), "{response}");
    // Plain HTTP to a TLS port gets no answer.
    let plain = p.http.post(&p.invoke).body("hi").send().await;
    assert!(plain.is_err(), "{plain:?}");
    // A client that does not trust the CA refuses the server.
    let stranger = Authority::new("another CA");
    assert!(https(invoke, &stranger.pem, request).await.is_err());

    // gRPC over TLS, and the CLI with --tls-ca.
    let trusting = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(&ca.pem));
    let channel = grpc_over_tls(grpc, trusting).await.unwrap();
    let reply = FunctionsClient::new(channel)
        .invoke(echo_call())
        .await
        .unwrap();
    assert_eq!(&reply.into_inner().output[..], b"over tls");
    let ca_file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(ca_file.path(), &ca.pem).unwrap();
    let cli = |tls_ca: Option<std::path::PathBuf>| fwasm::client::Server {
        addr: format!("https://localhost:{}", grpc.rsplit(':').next().unwrap()),
        tls_ca,
        ..Default::default()
    };
    let mut out = Vec::new();
    fwasm::client::invoke(
        cli(Some(ca_file.path().into())),
        "demo/echo",
        b"cli".to_vec(),
        &mut out,
    )
    .await
    .unwrap();
    assert_eq!(out, b"cli");
    let without = fwasm::client::invoke(cli(None), "demo/echo", vec![], &mut Vec::new())
        .await
        .unwrap_err()
        .to_string();
    assert!(without.contains("give --tls-ca FILE"), "{without}");
    p.stop().await;
}

#[tokio::test]
async fn the_mesh_talks_mutual_tls_and_shuts_out_whoever_the_ca_did_not_sign() {
    let ca = Authority::new("fwasm mesh CA");
    let member = ca.sign();
    let p = mesh_with_tls(ca.tls(&member, true)).await;
    let grpc = p.grpc.trim_start_matches("http://").to_string();
    // A call crosses every hop (gateway, scheduler, executor, state) over mutual TLS.
    let trusting = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(&ca.pem));
    let channel = grpc_over_tls(&grpc, trusting).await.unwrap();
    let mut functions = FunctionsClient::new(channel);
    let echo = fwasm::up::DEMOS.iter().find(|d| d.1 == "echo").unwrap().2;
    let upload = UploadRequest {
        user: "demo".into(),
        function: "echo".into(),
        wasm: echo.to_vec().into(),
        settings: None,
        python: false,
    };
    functions.upload(upload).await.unwrap();
    let reply = functions.invoke(echo_call()).await.unwrap().into_inner();
    assert_eq!(&reply.output[..], b"over tls", "{reply:?}");
    let set = SetStateRequest {
        user: "demo".into(),
        key: "k".into(),
        value: "v".into(),
    };
    functions.set_state(set).await.unwrap();

    // The internal services, found through the state service's address in the mesh.
    let state_addr = p.state_addr.clone();
    let member_tls = ca.tls(&ca.sign(), true);
    let state = fwasm_proto::grpc::connect_state(&state_addr, Some(&member_tls)).unwrap();
    let key = StateKey {
        user: "demo".into(),
        key: "k".into(),
    };
    assert_eq!(&state.get_state(key.clone()).await.unwrap().value[..], b"v");

    // Outsiders: no TLS, TLS without a certificate, and a certificate another CA signed.
    let plain = fwasm_proto::grpc::connect_state(&state_addr, None).unwrap();
    assert!(plain.get_state(key.clone()).await.is_err());
    let anonymous = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(&ca.pem));
    assert!(
        refuses(&state_addr, anonymous, &key).await,
        "no certificate"
    );
    let rogue = Authority::new("rogue CA").sign();
    let impostor = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&ca.pem))
        .identity(Identity::from_pem(&rogue.cert, &rogue.key));
    assert!(
        refuses(&state_addr, impostor, &key).await,
        "another CA's certificate"
    );
    // Nor can an outsider join the mesh as an executor.
    let scheduler_addr = p.scheduler_addr.clone();
    let outsider = fwasm_proto::grpc::connect_scheduler(&scheduler_addr, None).unwrap();
    let beat = ExecutorHeartbeat {
        executor_id: "intruder".into(),
        addr: "127.0.0.1:1".into(),
        ..ExecutorHeartbeat::default()
    };
    assert!(outsider.heartbeat(beat).await.is_err());
    p.stop().await;
}
