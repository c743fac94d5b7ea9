//! TLS, bearer tokens and read-only routers, with real kubectl and the
//! files `ksr-apiserver init` writes.

mod common;

use std::time::Duration;

use apiserver::init::{init, InitOptions};
use apiserver::Config;
use common::*;

#[test]
fn tls_tokens_and_roles() {
    let dir = TempDir::new("tls");
    // Bind first to learn a free port, then write kubeconfigs for it.
    let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("probe");
    let port = probe.local_addr().expect("addr").port();
    drop(probe);
    let files = init(&InitOptions {
        dir: dir.0.join("pki"),
        addresses: vec!["127.0.0.1".parse().expect("ip")],
        names: Vec::new(),
        port,
        routers: vec!["mac-worker".into()],
    })
    .expect("init");
    let server = Server::start(Config {
        listen: vec![([127, 0, 0, 1], port).into()],
        tls: Some((files.cert.clone(), files.key.clone())),
        tokens: Some(files.tokens.clone()),
        ..Config::default()
    });

    let admin = files.admin_kubeconfig.clone();
    let svc = ok(&admin, &["get", "svc"]);
    assert!(row(&svc, "kubernetes").is_some(), "{svc}");
    assert_eq!(apply(&admin, SERVICE).trim(), "service/nginx-svc created");

    let router = dir.0.join("pki/router-mac-worker.kubeconfig");
    assert!(ok(&router, &["get", "svc"]).contains("nginx-svc"));
    let out = kubectl(&router, &["delete", "svc", "nginx-svc"], None);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("Error from server (Forbidden): services \"nginx-svc\" is forbidden: User \"system:ksr-router:mac-worker\" cannot delete resource \"services\""),
        "{stderr}"
    );
    assert!(ok(&admin, &["get", "svc"]).contains("nginx-svc"));

    let wrong = dir.0.join("wrong.kubeconfig");
    let text = std::fs::read_to_string(&admin).expect("admin kubeconfig");
    let token = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("token: "))
        .expect("token");
    std::fs::write(&wrong, text.replace(token, "not-a-token")).expect("write");
    let out = kubectl(&wrong, &["get", "svc"], None);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("Unauthorized"), "{stderr}");

    // The CA is checked: without it kubectl refuses the certificate.
    let no_ca = dir.0.join("no-ca.kubeconfig");
    let stripped: String = text
        .lines()
        .filter(|l| !l.contains("certificate-authority-data"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&no_ca, stripped).expect("write");
    let out = kubectl(&no_ca, &["get", "svc"], None);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("certificate"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    server.stop();
}

#[test]
fn anonymous_requests_get_401() {
    let dir = TempDir::new("anon");
    let tokens = dir.0.join("tokens.csv");
    std::fs::write(&tokens, "admintoken,admin,admin,\"system:masters\"\n").expect("tokens");
    let server = Server::start(Config {
        tokens: Some(tokens),
        ..Config::default()
    });
    let response = http(
        server.address(),
        "GET /api/v1/namespaces/default/services HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        Duration::from_secs(5),
    );
    assert!(response.starts_with("HTTP/1.1 401"), "{response}");
    assert!(
        response.contains("\"reason\":\"Unauthorized\""),
        "{response}"
    );
    let response = http(
        server.address(),
        "GET /api/v1/namespaces/default/services HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer admintoken\r\nConnection: close\r\n\r\n",
        Duration::from_secs(5),
    );
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    server.stop();
}
