//! Reading one request off the control socket within a size and a time
//! bound.

use std::io::Read;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

/// The largest request the server reads: the questions are a few dozen
/// bytes (`State`, `Stats`, `Conntrack`, a conntrack chunk), so this only
/// stops a runaway client.
pub const MAX_REQUEST: usize = 64 << 10;

/// How long a client has to send its whole request (and to take the
/// answer): one deadline for the whole request, not per read, so a client
/// dripping one byte at a time cannot hold the control thread.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(5);

/// Why no request was read.
#[derive(Debug)]
pub enum ReadError {
    /// More than the limit without a newline.
    TooLarge,
    /// No newline before the deadline.
    Timeout,
    /// The connection broke.
    Io(std::io::Error),
}

/// Reads one newline-terminated request (without the newline) of at most
/// `limit` bytes within `timeout`. A request cut off by end of file is
/// taken as it is (the JSON decoder then says what is wrong with it).
pub fn read_request(
    mut stream: &UnixStream,
    limit: usize,
    timeout: Duration,
) -> Result<Vec<u8>, ReadError> {
    let deadline = Instant::now() + timeout;
    let mut request = Vec::new();
    let mut chunk = [0u8; 64 * 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(ReadError::Timeout);
        }
        stream.set_read_timeout(Some(left)).map_err(ReadError::Io)?;
        let n = match stream.read(&mut chunk) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return Err(ReadError::Timeout)
            }
            Err(e) => return Err(ReadError::Io(e)),
        };
        if n == 0 {
            return Ok(request);
        }
        let got = &chunk[..n];
        if let Some(end) = got.iter().position(|&b| b == b'\n') {
            request.extend_from_slice(&got[..end]);
            return if request.len() > limit {
                Err(ReadError::TooLarge)
            } else {
                Ok(request)
            };
        }
        request.extend_from_slice(got);
        if request.len() > limit {
            return Err(ReadError::TooLarge);
        }
    }
}
