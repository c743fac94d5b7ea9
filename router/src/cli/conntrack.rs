//! `router get conntrack`: the router's `conntrack -L` lines, filtered like
//! `conntrack -L -p PROTO -s SRC -d DST`.

use std::net::Ipv4Addr;

/// `-p`, `-s`, `-d`.
pub struct Filter {
    /// Only this protocol (`tcp`, `udp`, `icmp`): a line's first word.
    pub proto: Option<String>,
    /// Only flows with this `src=` in either tuple.
    pub src: Option<Ipv4Addr>,
    /// Only flows with this `dst=` in either tuple.
    pub dst: Option<Ipv4Addr>,
}

impl Filter {
    /// The lines that pass.
    pub fn apply(&self, mut lines: Vec<String>) -> Vec<String> {
        lines.retain(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            self.proto
                .as_deref()
                .is_none_or(|p| words.first() == Some(&p))
                && self
                    .src
                    .is_none_or(|ip| words.contains(&format!("src={ip}").as_str()))
                && self
                    .dst
                    .is_none_or(|ip| words.contains(&format!("dst={ip}").as_str()))
        });
        lines
    }
}

/// The listing and `conntrack`'s summary line.
pub fn render(lines: Vec<String>, capacity: usize) -> String {
    format!(
        "{}{}conntrack v1 (router): {} flow entries have been shown (capacity {capacity}).\n",
        lines.join("\n"),
        if lines.is_empty() { "" } else { "\n" },
        lines.len()
    )
}
