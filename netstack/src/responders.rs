//! Request/response logic of the pod servers, independent of any transport.
//!
//! Shared by [`crate::host::VirtualHost`] (smoltcp sockets) and the
//! `pod-server` binary (real sockets). The behaviour mimics the nginx page and
//! the agnhost `netexec` endpoints used in the Kubernetes walkthroughs.

/// HTTP/1.1 request parsing and responses.
pub mod http {
    use std::fmt;
    use std::net::SocketAddrV4;

    /// Largest request head (request line and headers) accepted, in bytes.
    pub const MAX_REQUEST_LEN: usize = 16 * 1024;

    /// The parts of a request the responders look at.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Request {
        /// Request method, e.g. `GET`.
        pub method: String,
        /// Request target as sent, e.g. `/hostname?x=1`.
        pub path: String,
        /// `Host` header value without the port; empty when the request has no
        /// `Host` header (then [`respond`] uses the local IP).
        pub host: String,
    }

    /// Why a request could not be parsed.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub enum ParseError {
        /// The request line is not `METHOD TARGET HTTP/x.y`.
        BadRequestLine(String),
        /// A header line has no `:`.
        BadHeader(String),
        /// The request head is not valid UTF-8.
        NotUtf8,
        /// No end of the request head within [`MAX_REQUEST_LEN`] bytes.
        TooLarge,
    }

    impl fmt::Display for ParseError {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            match self {
                ParseError::BadRequestLine(l) => write!(f, "bad request line {l:?}"),
                ParseError::BadHeader(l) => write!(f, "bad header line {l:?}"),
                ParseError::NotUtf8 => write!(f, "request head is not UTF-8"),
                ParseError::TooLarge => {
                    write!(f, "request head longer than {MAX_REQUEST_LEN} bytes")
                }
            }
        }
    }

    impl std::error::Error for ParseError {}

    fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
        haystack.windows(needle.len()).position(|w| w == needle)
    }

    fn parse_request_line(line: &str) -> Result<(String, String), ParseError> {
        let bad = || ParseError::BadRequestLine(line.to_string());
        let mut parts = line.split(' ');
        let method = parts.next().ok_or_else(bad)?;
        let target = parts.next().ok_or_else(bad)?;
        let version = parts.next().ok_or_else(bad)?;
        if parts.next().is_some()
            || method.is_empty()
            || !method.bytes().all(|b| b.is_ascii_uppercase())
            || target.is_empty()
            || target.bytes().any(|b| b.is_ascii_control())
            || !version.starts_with("HTTP/")
        {
            return Err(bad());
        }
        Ok((method.to_string(), target.to_string()))
    }

    /// Strips the port from a `Host` header value (`h:80` -> `h`, `[::1]:80` -> `[::1]`).
    fn strip_port(host: &str) -> &str {
        if host.starts_with('[') {
            return match host.find(']') {
                Some(end) => &host[..=end],
                None => host,
            };
        }
        match host.rsplit_once(':') {
            Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
            _ => host,
        }
    }

    /// Parses a request head from the bytes received so far.
    ///
    /// `Ok(None)` means incomplete: no `\r\n\r\n` yet (and nothing wrong seen so far).
    pub fn parse_request(buf: &[u8]) -> Result<Option<Request>, ParseError> {
        let Some(end) = find(buf, b"\r\n\r\n") else {
            // Reject a garbage request line early, without waiting for the head to end.
            if let Some(line_end) = find(buf, b"\r\n") {
                let line =
                    std::str::from_utf8(&buf[..line_end]).map_err(|_| ParseError::NotUtf8)?;
                parse_request_line(line)?;
            }
            if buf.len() > MAX_REQUEST_LEN {
                return Err(ParseError::TooLarge);
            }
            return Ok(None);
        };
        if end > MAX_REQUEST_LEN {
            return Err(ParseError::TooLarge);
        }
        let head = std::str::from_utf8(&buf[..end]).map_err(|_| ParseError::NotUtf8)?;
        let mut lines = head.split("\r\n");
        let (method, path) = parse_request_line(lines.next().unwrap_or(""))?;
        let mut host = String::new();
        for line in lines {
            let (name, value) = line
                .split_once(':')
                .ok_or_else(|| ParseError::BadHeader(line.to_string()))?;
            if name.trim().eq_ignore_ascii_case("host") {
                host = strip_port(value.trim()).to_string();
            }
        }
        Ok(Some(Request { method, path, host }))
    }

    /// Formats unix seconds as ISO-8601 in UTC, e.g. `2022-06-24T06:22:10+00:00`.
    pub fn format_date(unix_secs: i64) -> String {
        let days = unix_secs.div_euclid(86_400);
        let secs = unix_secs.rem_euclid(86_400);
        let (year, month, day) = civil_from_days(days);
        format!(
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}+00:00",
            secs / 3600,
            secs / 60 % 60,
            secs % 60
        )
    }

    /// The proleptic Gregorian date of a day count since 1970-01-01
    /// (Howard Hinnant's `civil_from_days`): a few lines of arithmetic
    /// instead of a date crate (whose clock would pull libc into the core).
    fn civil_from_days(days: i64) -> (i64, i64, i64) {
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097); // day of the 400-year era, [0, 146096]
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365], from March 1st
        let mp = (5 * doy + 2) / 153; // month from March, [0, 11]
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = yoe + era * 400 + i64::from(month <= 2);
        (year, month, day)
    }

    fn response(status: &str, body: &str) -> Vec<u8> {
        format!(
            "HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    }

    /// The body answering `req` (see [`respond`]).
    pub fn body(
        req: &Request,
        local: SocketAddrV4,
        peer: SocketAddrV4,
        pod_name: &str,
        date: &str,
    ) -> String {
        let route = req.path.split(['?', '#']).next().unwrap_or("");
        match route {
            "/hostname" => pod_name.to_string(),
            "/clientip" => peer.to_string(),
            "/healthz" => "ok".to_string(),
            _ => {
                let host = if req.host.is_empty() {
                    local.ip().to_string()
                } else {
                    req.host.clone()
                };
                format!(
                    "srv : {local}\nhost: {pod_name}\nuri : {} {host} {}\ndate: {date}\n",
                    req.method, req.path
                )
            }
        }
    }

    /// The response to one request, as pod `pod_name` serving at `local` and seen
    /// from `peer`; `date` is ISO-8601 like `2022-06-24T06:22:10+00:00`.
    ///
    /// `GET /hostname` answers the pod name, `/clientip` the peer's `ip:port`,
    /// `/healthz` `ok`, and any other path four lines (`srv :`, `host:`, `uri :`,
    /// `date:`). Always `200 OK` with `Connection: close`.
    pub fn respond(
        req: &Request,
        local: SocketAddrV4,
        peer: SocketAddrV4,
        pod_name: &str,
        date: &str,
    ) -> Vec<u8> {
        response("200 OK", &body(req, local, peer, pod_name, date))
    }

    /// The `400 Bad Request` response for a request that could not be parsed.
    pub fn bad_request() -> Vec<u8> {
        response("400 Bad Request", "bad request\n")
    }

    /// Most lines one `/stream` request may ask for.
    pub const MAX_STREAM_LINES: u32 = 100_000;
    /// Longest pause between two `/stream` lines, in milliseconds.
    pub const MAX_STREAM_INTERVAL_MS: u64 = 60_000;

    /// A `GET /stream?lines=N&interval_ms=M` request: N lines, one every M
    /// ms, for checking that a long-lived connection survives changes.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct Stream {
        /// How many lines (default 10, at most [`MAX_STREAM_LINES`]).
        pub lines: u32,
        /// Pause before each line after the first, in milliseconds (default
        /// 100, at most [`MAX_STREAM_INTERVAL_MS`]).
        pub interval_ms: u64,
    }

    /// `None` unless `req` asks for `/stream`; then its parameters, or why
    /// they are bad (answer [`bad_request`]).
    pub fn stream(req: &Request) -> Option<Result<Stream, String>> {
        let (route, query) = match req.path.split_once('?') {
            Some((route, query)) => (route, query.split('#').next().unwrap_or("")),
            None => (req.path.split('#').next().unwrap_or(""), ""),
        };
        if route != "/stream" {
            return None;
        }
        let mut s = Stream {
            lines: 10,
            interval_ms: 100,
        };
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let bad = || format!("bad /stream parameter {pair:?}");
            match key {
                "lines" => match value.parse::<u32>() {
                    Ok(n) if n <= MAX_STREAM_LINES => s.lines = n,
                    _ => return Some(Err(bad())),
                },
                "interval_ms" => match value.parse::<u64>() {
                    Ok(n) if n <= MAX_STREAM_INTERVAL_MS => s.interval_ms = n,
                    _ => return Some(Err(bad())),
                },
                _ => return Some(Err(bad())),
            }
        }
        Some(Ok(s))
    }

    /// The head of a `/stream` answer: no length, the body ends when the
    /// server closes the connection.
    pub fn stream_head() -> Vec<u8> {
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n".to_vec()
    }

    /// Line `i` (1-based) of a `/stream` answer from pod `pod_name`.
    pub fn stream_line(i: u32, pod_name: &str) -> String {
        format!("line {i} from {pod_name}\n")
    }

    #[cfg(test)]
    #[allow(clippy::unwrap_used)]
    mod tests {
        use super::*;
        use std::net::Ipv4Addr;

        const LOCAL: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(10, 10, 1, 42), 80);
        const PEER: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(10, 10, 2, 7), 49152);
        const POD: &str = "nginx-deployment-756d6b7586-7plkf";
        const DATE: &str = "2022-06-24T06:22:10+00:00";

        fn req(path: &str, host: &str) -> Request {
            Request {
                method: "GET".into(),
                path: path.into(),
                host: host.into(),
            }
        }

        fn split(resp: &[u8]) -> (String, String) {
            let text = String::from_utf8(resp.to_vec()).unwrap();
            let (head, body) = text.split_once("\r\n\r\n").unwrap();
            (head.to_string(), body.to_string())
        }

        #[test]
        fn parse_incomplete() {
            assert_eq!(parse_request(b""), Ok(None));
            assert_eq!(parse_request(b"GET / HT"), Ok(None));
            assert_eq!(parse_request(b"GET / HTTP/1.1\r\nHost: a\r\n"), Ok(None));
        }

        #[test]
        fn parse_complete() {
            let r = parse_request(
                b"GET /x?y=1 HTTP/1.1\r\nhost: 10.101.182.177:80\r\nAccept: */*\r\n\r\n",
            )
            .unwrap()
            .unwrap();
            assert_eq!(r, req("/x?y=1", "10.101.182.177"));
            let r = parse_request(b"POST / HTTP/1.0\r\n\r\n").unwrap().unwrap();
            assert_eq!(r.method, "POST");
            assert_eq!(r.host, "");
            let r = parse_request(b"GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n")
                .unwrap()
                .unwrap();
            assert_eq!(r.host, "[::1]");
            let r = parse_request(b"GET / HTTP/1.1\r\nHost: web\r\n\r\n")
                .unwrap()
                .unwrap();
            assert_eq!(r.host, "web");
        }

        #[test]
        fn parse_garbage() {
            assert!(parse_request(b"hello world\r\n\r\n").is_err());
            assert!(parse_request(b"\x16\x03\x01 tls\r\n").is_err());
            assert!(parse_request(b"GET / HTTP/1.1\r\nno colon here\r\n\r\n").is_err());
            assert!(parse_request(b"GET / HTTP/1.1\r\nHost: \xff\r\n\r\n").is_err());
            assert_eq!(
                parse_request(&vec![b'A'; MAX_REQUEST_LEN + 1]),
                Err(ParseError::TooLarge)
            );
        }

        #[test]
        fn root_body_four_lines() {
            let resp = respond(&req("/", "10.101.182.177"), LOCAL, PEER, POD, DATE);
            let (head, body) = split(&resp);
            assert!(head.starts_with("HTTP/1.1 200 OK\r\n"));
            assert!(head.contains("Content-Type: text/plain"));
            assert!(head.contains("Connection: close"));
            assert!(head.contains(&format!("Content-Length: {}", body.len())));
            assert_eq!(
                body,
                "srv : 10.10.1.42:80\nhost: nginx-deployment-756d6b7586-7plkf\nuri : GET 10.101.182.177 /\ndate: 2022-06-24T06:22:10+00:00\n"
            );
        }

        #[test]
        fn missing_host_uses_local_ip() {
            let (_, body) = split(&respond(&req("/any", ""), LOCAL, PEER, POD, DATE));
            assert!(body.contains("uri : GET 10.10.1.42 /any\n"), "{body}");
        }

        #[test]
        fn netexec_paths() {
            let (_, b) = split(&respond(&req("/hostname", "x"), LOCAL, PEER, POD, DATE));
            assert_eq!(b, POD);
            let (_, b) = split(&respond(&req("/clientip", "x"), LOCAL, PEER, POD, DATE));
            assert_eq!(b, "10.10.2.7:49152");
            let (_, b) = split(&respond(&req("/healthz", "x"), LOCAL, PEER, POD, DATE));
            assert_eq!(b, "ok");
        }

        #[test]
        fn stream_parameters() {
            let s = |path: &str| stream(&req(path, "x"));
            assert_eq!(s("/"), None);
            assert_eq!(s("/streams"), None);
            assert_eq!(s("/hostname?lines=3"), None);
            assert_eq!(
                s("/stream"),
                Some(Ok(Stream {
                    lines: 10,
                    interval_ms: 100
                }))
            );
            assert_eq!(
                s("/stream?lines=60&interval_ms=250"),
                Some(Ok(Stream {
                    lines: 60,
                    interval_ms: 250
                }))
            );
            assert_eq!(
                s("/stream?interval_ms=0&lines=0#frag"),
                Some(Ok(Stream {
                    lines: 0,
                    interval_ms: 0
                }))
            );
            for bad in [
                "/stream?lines=-1",
                "/stream?lines=x",
                "/stream?lines=100001",
                "/stream?interval_ms=60001",
                "/stream?lines",
                "/stream?speed=3",
            ] {
                assert!(matches!(s(bad), Some(Err(_))), "{bad}");
            }
        }

        #[test]
        fn stream_answer() {
            let head = String::from_utf8(stream_head()).unwrap();
            assert!(head.starts_with("HTTP/1.1 200 OK\r\n"));
            assert!(head.contains("Connection: close\r\n"));
            assert!(!head.contains("Content-Length"));
            assert!(head.ends_with("\r\n\r\n"));
            assert_eq!(stream_line(1, POD), format!("line 1 from {POD}\n"));
            assert_eq!(stream_line(60, "p"), "line 60 from p\n");
        }

        #[test]
        fn bad_request_status() {
            let (head, _) = split(&bad_request());
            assert!(head.starts_with("HTTP/1.1 400 Bad Request\r\n"));
        }

        #[test]
        fn date_format() {
            assert_eq!(format_date(1_656_051_730), DATE);
            assert_eq!(format_date(0), "1970-01-01T00:00:00+00:00");
            assert_eq!(format_date(-1), "1969-12-31T23:59:59+00:00");
            assert_eq!(format_date(951_782_400), "2000-02-29T00:00:00+00:00");
            assert_eq!(format_date(1_735_689_599), "2024-12-31T23:59:59+00:00");
            assert_eq!(format_date(4_107_542_400), "2100-03-01T00:00:00+00:00");
        }
    }
}

/// The agnhost `netexec` UDP protocol.
pub mod udp {
    use std::net::SocketAddrV4;

    /// The reply to one datagram from `peer`, as pod `pod_name`.
    ///
    /// The payload (a trailing `\n` or `\r\n` trimmed) `hostname` gives the pod
    /// name, `clientip` the peer's `ip:port`, `echo <text>` gives `<text>`;
    /// anything else is echoed unchanged.
    pub fn respond(payload: &[u8], peer: SocketAddrV4, pod_name: &str) -> Vec<u8> {
        let trimmed = payload
            .strip_suffix(b"\r\n")
            .or_else(|| payload.strip_suffix(b"\n"))
            .unwrap_or(payload);
        match trimmed {
            b"hostname" => pod_name.as_bytes().to_vec(),
            b"clientip" => peer.to_string().into_bytes(),
            _ => match trimmed.strip_prefix(b"echo ") {
                Some(text) => text.to_vec(),
                None => payload.to_vec(),
            },
        }
    }

    #[cfg(test)]
    #[allow(clippy::unwrap_used)]
    mod tests {
        use super::*;
        use std::net::Ipv4Addr;

        const PEER: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(10, 10, 2, 7), 40000);

        #[test]
        fn commands() {
            assert_eq!(respond(b"hostname", PEER, "pod-a"), b"pod-a");
            assert_eq!(respond(b"hostname\n", PEER, "pod-a"), b"pod-a");
            assert_eq!(respond(b"hostname\r\n", PEER, "pod-a"), b"pod-a");
            assert_eq!(respond(b"clientip\n", PEER, "pod-a"), b"10.10.2.7:40000");
            assert_eq!(respond(b"echo hi there\n", PEER, "pod-a"), b"hi there");
            assert_eq!(respond(b"whatever\n", PEER, "pod-a"), b"whatever\n");
            assert_eq!(respond(b"", PEER, "pod-a"), b"");
        }
    }
}
