//! `router get conntrack`: the router's conntrack table like `conntrack -L`
//! (or as JSON), filtered like `conntrack -L -p PROTO -s SRC -d DST`.

use std::net::Ipv4Addr;

use dataplane::conntrack::FlowRecord;

/// `-p`, `-s`, `-d`.
pub struct Filter {
    /// Only this protocol (`tcp`, `udp`, `icmp`).
    pub proto: Option<String>,
    /// Only flows with this source in either tuple.
    pub src: Option<Ipv4Addr>,
    /// Only flows with this destination in either tuple.
    pub dst: Option<Ipv4Addr>,
}

impl Filter {
    /// The records that pass.
    pub fn apply(&self, mut records: Vec<FlowRecord>) -> Vec<FlowRecord> {
        records.retain(|r| {
            self.proto.as_deref().is_none_or(|p| r.protocol_name() == p)
                && self
                    .src
                    .is_none_or(|ip| r.original.src == ip || r.reply.src == ip)
                && self
                    .dst
                    .is_none_or(|ip| r.original.dst == ip || r.reply.dst == ip)
        });
        records
    }
}

/// The listing and `conntrack`'s summary line.
pub fn render(records: &[FlowRecord], capacity: usize) -> String {
    let mut out = String::new();
    for r in records {
        out.push_str(&r.to_string());
        out.push('\n');
    }
    out.push_str(&format!(
        "conntrack v1 (router): {} flow entries have been shown (capacity {capacity}).\n",
        records.len()
    ));
    out
}

/// The records as JSON: `{"capacity": N, "flows": [FlowRecord...]}`, each
/// flow with its protocol number and name, TCP state, seconds left, both
/// tuples, `unreplied`/`assured` and counters.
pub fn json(records: &[FlowRecord], capacity: usize) -> Result<String, serde_json::Error> {
    let flows: Vec<serde_json::Value> = records
        .iter()
        .map(|r| {
            let mut v = serde_json::to_value(r)?;
            if let Some(o) = v.as_object_mut() {
                o.insert("protocolName".into(), r.protocol_name().into());
            }
            Ok(v)
        })
        .collect::<Result<_, serde_json::Error>>()?;
    let mut s = serde_json::to_string_pretty(&serde_json::json!({
        "capacity": capacity,
        "flows": flows,
    }))?;
    s.push('\n');
    Ok(s)
}
