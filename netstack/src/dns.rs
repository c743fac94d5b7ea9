//! DNS transport for virtual hosts: the handler a DNS server calls, and the
//! two-byte length framing of DNS over TCP (RFC 1035 4.2.2, RFC 7766).
//!
//! The messages themselves are opaque bytes here: whoever supplies the
//! [`DnsHandler`] parses and builds them (the router's cluster DNS uses
//! hickory-proto). See [`crate::VirtualHost::serve_dns`] for the server.

/// How a DNS query arrived: the answer's size limit depends on it (a UDP
/// answer too large for the client is sent truncated).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DnsTransport {
    /// One datagram per message.
    Udp,
    /// A stream of length-prefixed messages.
    Tcp,
}

/// Answers one DNS message: `Some(response)`, or `None` to send nothing
/// (over TCP, `None` also closes the connection).
pub type DnsHandler = Box<dyn FnMut(&[u8], DnsTransport) -> Option<Vec<u8>> + Send>;

/// `message` with its two-byte length prefix; `None` if it is longer than
/// 65535 bytes.
pub fn frame(message: &[u8]) -> Option<Vec<u8>> {
    let len = u16::try_from(message.len()).ok()?;
    let mut out = Vec::with_capacity(2 + message.len());
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(message);
    Some(out)
}

/// Takes the first whole message off the front of a TCP byte stream, if
/// one has arrived entirely.
pub fn take_frame(stream: &mut Vec<u8>) -> Option<Vec<u8>> {
    let len = usize::from(u16::from_be_bytes([*stream.first()?, *stream.get(1)?]));
    let message = stream.get(2..2 + len)?.to_vec();
    stream.drain(..2 + len);
    Some(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framing_round_trip_in_pieces() {
        let mut stream = Vec::new();
        for m in [&b"first"[..], b"", b"third message"] {
            stream.extend(frame(m).expect("small"));
        }
        let mut got = Vec::new();
        let mut partial = Vec::new();
        // One byte at a time, as a slow TCP peer might deliver them.
        for b in stream {
            partial.push(b);
            while let Some(m) = take_frame(&mut partial) {
                got.push(m);
            }
        }
        assert_eq!(
            got,
            vec![b"first".to_vec(), vec![], b"third message".to_vec()]
        );
        assert!(partial.is_empty());
        assert_eq!(frame(&vec![0; 65536]), None);
        assert_eq!(frame(&vec![0; 65535]).map(|f| f.len()), Some(65537));
    }
}
