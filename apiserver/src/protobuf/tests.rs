use serde_json::json;

use super::*;

/// A minimal encoder for the tests.
fn varint(mut v: u64, out: &mut Vec<u8>) {
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

fn bytes(tag: u64, b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    varint(tag << 3 | 2, &mut out);
    varint(b.len() as u64, &mut out);
    out.extend_from_slice(b);
    out
}

fn int(tag: u64, v: u64) -> Vec<u8> {
    let mut out = Vec::new();
    varint(tag << 3, &mut out);
    varint(v, &mut out);
    out
}

fn envelope(api_version: &str, kind: &str, raw: &[u8]) -> Vec<u8> {
    let meta = [bytes(1, api_version.as_bytes()), bytes(2, kind.as_bytes())].concat();
    [
        b"k8s\0".to_vec(),
        bytes(1, &meta),
        bytes(2, raw),
        bytes(3, b""),
        bytes(4, b""),
    ]
    .concat()
}

#[test]
fn a_namespace_as_kubectl_create_sends_it() {
    // metadata{name, generateName "", labels{a: b}}, spec{}, status{}
    let meta = [
        bytes(1, b"demo"),
        bytes(2, b""),
        bytes(11, &[bytes(1, b"a"), bytes(2, b"b")].concat()),
    ]
    .concat();
    let raw = [bytes(1, &meta), bytes(2, b""), bytes(3, b"")].concat();
    let object = decode(Resource::Namespaces, &envelope("v1", "Namespace", &raw)).expect("decodes");
    assert_eq!(
        object,
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "demo", "labels": {"a": "b"}}})
    );
}

#[test]
fn a_service_with_ports_selector_and_int_or_string() {
    let named = [int(1, 1), bytes(3, b"http")].concat();
    let number = [int(1, 0), int(2, 8080)].concat();
    let port = |name: &[u8], p: u64, target: &[u8]| {
        [
            bytes(1, name),
            bytes(2, b"TCP"),
            int(3, p),
            bytes(4, target),
            int(5, 0),
        ]
        .concat()
    };
    let spec = [
        bytes(1, &port(b"web", 80, &named)),
        bytes(1, &port(b"alt", 81, &number)),
        bytes(2, &[bytes(1, b"app"), bytes(2, b"web")].concat()),
        bytes(4, b"ClusterIP"),
        int(13, 0),
    ]
    .concat();
    let raw = [bytes(1, &bytes(1, b"web")), bytes(2, &spec)].concat();
    let object = decode(Resource::Services, &envelope("v1", "Service", &raw)).expect("decodes");
    assert_eq!(
        object["spec"],
        json!({
            "ports": [
                {"name": "web", "protocol": "TCP", "port": 80, "targetPort": "http", "nodePort": 0},
                {"name": "alt", "protocol": "TCP", "port": 81, "targetPort": 8080, "nodePort": 0}
            ],
            "selector": {"app": "web"},
            "type": "ClusterIP",
            "publishNotReadyAddresses": false
        })
    );
}

#[test]
fn a_deployment_keeps_zero_replicas_and_times_decode() {
    let time = [int(1, 1_700_000_000), int(2, 0)].concat();
    let meta = [bytes(1, b"d"), bytes(8, &time)].concat();
    let container = [
        bytes(1, b"c"),
        bytes(2, b"nginx"),
        bytes(
            8,
            &bytes(
                1,
                &[bytes(1, b"cpu"), bytes(2, &bytes(1, b"100m"))].concat(),
            ),
        ),
    ]
    .concat();
    let template = [
        bytes(1, &bytes(11, &[bytes(1, b"app"), bytes(2, b"d")].concat())),
        bytes(2, &bytes(2, &container)),
    ]
    .concat();
    let spec = [int(1, 0), bytes(3, &template), bytes(4, b"")].concat();
    let raw = [bytes(1, &meta), bytes(2, &spec)].concat();
    let object = decode(
        Resource::Deployments,
        &envelope("apps/v1", "Deployment", &raw),
    )
    .expect("decodes");
    assert_eq!(
        object["metadata"]["creationTimestamp"],
        "2023-11-14T22:13:20Z"
    );
    assert_eq!(object["spec"]["replicas"], 0);
    assert!(
        object["spec"].get("strategy").is_none(),
        "an empty message is unset"
    );
    assert_eq!(
        object["spec"]["template"]["spec"]["containers"][0]["resources"],
        json!({"limits": {"cpu": "100m"}})
    );
}

#[test]
fn refusals() {
    let raw = bytes(1, &bytes(1, b"x"));
    assert_eq!(
        decode(Resource::Pods, &envelope("v1", "Service", &raw)).map_err(|e| e.code),
        Err(400)
    );
    assert_eq!(
        decode(Resource::Pods, b"{\"json\":1}").map_err(|e| e.code),
        Err(400)
    );
    let truncated = &envelope("v1", "Pod", &raw)[..12];
    assert_eq!(
        decode(Resource::Pods, truncated).map_err(|e| e.code),
        Err(400)
    );
}
