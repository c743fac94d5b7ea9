//! A Service's allocated fields on every write: the ClusterIP and the
//! NodePorts kept from the manifest or the previous version (and checked),
//! allocated when missing, dropped when the type does not use them (a
//! ClusterIP -> NodePort change keeps the ClusterIP; NodePort -> ClusterIP
//! frees the ports, as the real API server's dropTypeDependentFields).

use serde_json::{json, Value};

use super::{AllocError, ServiceAllocator};
use crate::status::{ApiError, Cause};
use crate::store::ObjectKey;

/// Fills a Service's ClusterIP and NodePorts: keeps given or previous
/// values (checked), allocates the missing ones, drops what the type does
/// not use.
pub(super) fn allocate(
    alloc: &mut ServiceAllocator,
    key: &ObjectKey,
    current: Option<&Value>,
    svc: &mut Value,
) -> Result<(), ApiError> {
    let kind = svc
        .pointer("/spec/type")
        .and_then(Value::as_str)
        .unwrap_or("ClusterIP")
        .to_string();
    let fail = |field: &str, value: Value, e: AllocError| {
        let cause = Cause {
            reason: "FieldValueInvalid",
            message: format!("Invalid value: {value}: {e}"),
            field: field.to_string(),
        };
        ApiError::invalid(key.resource, &key.name, vec![cause])
    };
    let spec = &mut svc["spec"];
    if kind == "ExternalName" {
        if let Some(s) = spec.as_object_mut() {
            s.remove("clusterIP");
            s.remove("clusterIPs");
        }
    } else {
        let given = spec["clusterIP"].as_str().unwrap_or("").to_string();
        let previous = current
            .and_then(|c| c.pointer("/spec/clusterIP"))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let ip = match (given.as_str(), previous.as_str()) {
            ("None", _) => "None".to_string(),
            ("", p) if !p.is_empty() => p.to_string(),
            ("", _) => alloc
                .allocate_ip()
                .map_err(|e| fail("spec.clusterIPs", json!([]), e))?
                .to_string(),
            (g, _) => {
                if let Ok(addr) = g.parse() {
                    alloc
                        .check_ip(key, addr)
                        .map_err(|e| fail("spec.clusterIPs", json!([g]), e))?;
                }
                g.to_string()
            }
        };
        spec["clusterIP"] = json!(ip);
        spec["clusterIPs"] = json!([ip]);
    }
    let wants_node_ports = kind == "NodePort" || kind == "LoadBalancer";
    let old_ports = current
        .and_then(|c| c.pointer("/spec/ports"))
        .and_then(Value::as_array)
        .cloned();
    if let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut) {
        for (i, port) in ports.iter_mut().enumerate() {
            if !wants_node_ports {
                if let Some(p) = port.as_object_mut() {
                    p.remove("nodePort");
                }
                continue;
            }
            let given = port["nodePort"].as_u64().filter(|p| *p != 0);
            let previous = old_ports
                .iter()
                .flatten()
                .find(|o| o["port"] == port["port"] && o["protocol"] == port["protocol"])
                .and_then(|o| o["nodePort"].as_u64());
            let field = format!("spec.ports[{i}].nodePort");
            let chosen = match given.or(previous) {
                Some(p) => {
                    let p = u16::try_from(p)
                        .map_err(|_| fail(&field, json!(p), AllocError::PortOutOfRange))?;
                    alloc
                        .check_port(key, p)
                        .map_err(|e| fail(&field, json!(p), e))?;
                    p
                }
                None => alloc
                    .allocate_port()
                    .map_err(|e| fail(&field, json!(0), e))?,
            };
            port["nodePort"] = json!(chosen);
        }
    }
    Ok(())
}
