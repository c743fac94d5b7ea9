//! The cluster DNS responder (`dataplane::dns::answer` for TCP,
//! `answer_udp` for UDP) on any query bytes, answering from the default
//! cluster: no panic; an answer for every query message (a DNS header, not
//! a response), none otherwise; the answer is a response with the query's
//! ID that the DNS library decodes; a UDP answer fits the UDP limit.
//!
//! Found by this target and fixed: a query with many questions (QDCOUNT
//! 15) got a UDP answer over the limit; the responder now answers FORMERR
//! without the questions (RFC 9619), kept as a seed in corpus/dns.
#![no_main]

use dataplane::dns::proto::op::{Message, MessageType};
use dataplane::dns::{answer, answer_udp, MAX_UDP_PAYLOAD};
use libfuzzer_sys::fuzz_target;

/// A DNS header: ID, flags (QR is the top bit), four counts.
const HEADER_LEN: usize = 12;

fuzz_target!(|data: &[u8]| {
    let cluster = fuzz::cluster();
    let is_query = data.len() >= HEADER_LEN && data[2] & 0x80 == 0;
    for (response, limit) in [
        (answer(data, cluster), usize::from(u16::MAX)),
        (answer_udp(data, cluster), usize::from(MAX_UDP_PAYLOAD)),
    ] {
        assert_eq!(
            response.is_some(),
            is_query,
            "answered a non-query or not a query"
        );
        let Some(response) = response else { continue };
        assert!(
            response.len() <= limit,
            "{} bytes over the limit {limit}",
            response.len()
        );
        let m = match Message::from_vec(&response) {
            Ok(m) => m,
            Err(e) => panic!("undecodable response ({e}): {response:02x?}"),
        };
        assert_eq!(m.metadata.message_type, MessageType::Response);
        assert_eq!(m.metadata.id, u16::from_be_bytes([data[0], data[1]]));
    }
});
