//! `router get stats`: the data path's counters and its drops by reason.

use dataplane::stats::{DropReason, Stats};

use super::CliError;

/// The counters, one per line, then every drop reason that counted.
pub fn render(s: &Stats, flows: usize) -> String {
    let mut out = format!(
        "received      {}\nforwarded     {}\nencapsulated  {}\ndecapsulated  {}\ntranslated    {}\n\
         generated     {}\nuntracked     {}\nflows         {flows} (created {}, expired {}, evicted {})\n\
         conntrack     insert_failed={} early_drop={} drop={} half_open={}\n\
         tun-write-dropped {}\noverlay-send-dropped {}\ntun-queue-dropped {} (by the kernel, before the router read them)\n\
         tun-read-errors {}\ntun-offload-dropped {}\noverlay-recv-errors {}\nrouting-restored {}\n\
         tun-coalesced {} (segments from the overlay merged into super-packets)\n\
         dns-tcp       open={} half_open={} shed={}\n\
         dropped       {}\n",
        s.received,
        s.forwarded,
        s.encapsulated,
        s.decapsulated,
        s.translated,
        s.generated,
        s.untracked,
        s.flows_created,
        s.flows_expired,
        s.flows_evicted,
        s.dropped(DropReason::NatPortsExhausted),
        s.flows_evicted,
        s.dropped(DropReason::ConntrackFull),
        s.flows_half_open,
        s.tun_write_dropped,
        s.overlay_send_dropped,
        s.tun_queue_dropped,
        s.tun_read_errors,
        s.tun_offload_dropped,
        s.overlay_recv_errors,
        s.routing_restored,
        s.tun_segments_coalesced,
        s.dns_tcp_open,
        s.dns_tcp_half_open,
        s.dns_tcp_shed,
        s.dropped_total()
    );
    for r in DropReason::ALL {
        let n = s.dropped(r);
        if n > 0 {
            out.push_str(&format!("  {:<26} {n}\n", r.as_str()));
        }
    }
    out
}

/// `-o json`: every counter of [`Stats`] under its field name
/// (`received`, `flows_created`, ...), plus `flows` (entries now),
/// `dropped_total`, and `dropped`: every drop reason by its name
/// (`spoofed-source`, ...), zeros included, so a consumer can tell a
/// reason that did not count from one that does not exist.
pub fn json(s: &Stats, flows: usize) -> Result<String, CliError> {
    let mut value = serde_json::to_value(s)?;
    if let Some(fields) = value.as_object_mut() {
        let dropped: serde_json::Map<String, serde_json::Value> = DropReason::ALL
            .iter()
            .map(|&r| (r.as_str().to_owned(), s.dropped(r).into()))
            .collect();
        fields.insert("dropped".into(), dropped.into());
        fields.insert("dropped_total".into(), s.dropped_total().into());
        fields.insert("flows".into(), flows.into());
    }
    Ok(format!("{}\n", serde_json::to_string_pretty(&value)?))
}
