//! Reading what curl, ping and /proc say.

use std::net::Ipv4Addr;
use std::process::Output;

use crate::env::{curl, lab_exec, stdout};

/// Whether `text` contains `ip` as a whole address (10.10.1.4 is not in
/// 10.10.1.40).
pub fn contains_ip(text: &str, ip: &str) -> bool {
    text.match_indices(ip).any(|(i, _)| {
        let before = text[..i].chars().next_back();
        let rest = &text[i + ip.len()..];
        let digit_after = rest.starts_with(|c: char| c.is_ascii_digit())
            || (rest.starts_with('.') && rest[1..].starts_with(|c: char| c.is_ascii_digit()));
        !before.is_some_and(|c| c.is_ascii_digit() || c == '.') && !digit_after
    })
}

/// The address part of a `/clientip` answer (`10.10.1.100:41234`).
pub fn client_ip_of(body: &str) -> Option<&str> {
    body.trim().rsplit_once(':').map(|(ip, _)| ip)
}

/// The veth of a pod on its node, as `scripts/lab` names it.
pub fn veth_name(ip: &str) -> String {
    let ip: Ipv4Addr = ip.parse().expect("pod IP");
    let o = ip.octets();
    format!("ksr{:02x}{:02x}{:02x}{:02x}", o[0], o[1], o[2], o[3])
}

/// A counter of `/proc/net/netstat` (`TcpExt: ... IPReversePathFilter`) in
/// a lab netns.
pub fn netstat_counter(target: &str, name: &str) -> Option<u64> {
    let text = stdout(&lab_exec(target, &["cat", "/proc/net/netstat"]));
    let lines: Vec<&str> = text.lines().collect();
    lines.windows(2).find_map(|w| {
        let (keys, values) = (w[0], w[1]);
        let prefix = keys.split_whitespace().next()?;
        if !values.starts_with(prefix) {
            return None;
        }
        let i = keys.split_whitespace().position(|k| k == name)?;
        values.split_whitespace().nth(i)?.parse().ok()
    })
}

/// The non-empty lines of an HTTP body.
pub fn http_lines(body: &str) -> Vec<&str> {
    body.lines().filter(|l| !l.trim().is_empty()).collect()
}

/// Whether a `GET /` answer is the 4 lines srv/host/uri/date.
pub fn is_full_answer(out: &Output) -> bool {
    let body = stdout(out);
    let lines = http_lines(&body);
    out.status.success()
        && lines.len() == 4
        && ["srv :", "host:", "uri :", "date:"]
            .iter()
            .zip(&lines)
            .all(|(p, l)| l.starts_with(p))
}

/// The `host:` line of a `GET /` answer.
pub fn host_of(body: &str) -> Option<String> {
    body.lines()
        .find_map(|l| l.strip_prefix("host:"))
        .map(|h| h.trim().to_string())
}

/// `curl http://URL/hostname`-style: the body's trimmed text, if curl
/// succeeded.
pub fn hostname_via(target: &str, url: &str) -> Option<String> {
    let out = curl(target, url, &[]);
    out.status
        .success()
        .then(|| stdout(&out).trim().to_string())
}

/// One UDP `hostname` datagram from `target` to `ip:port` (optionally from
/// a fixed source port), waiting `wait` for the answer.
pub fn udp_hostname(target: &str, ip: &str, port: u16, source: Option<u16>, wait: &str) -> Output {
    let src = source
        .map(|p| format!(",sourceport={p}"))
        .unwrap_or_default();
    lab_exec(
        target,
        &[
            "sh",
            "-c",
            &format!("printf hostname | timeout 5 socat -t {wait} - UDP4:{ip}:{port}{src}"),
        ],
    )
}
