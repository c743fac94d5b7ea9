//! The UDP responder (see [`crate::responders::udp`]) on a host.

use smoltcp::socket::udp;

use super::sockets::to_v4;
use super::VirtualHost;
use crate::responders;

impl VirtualHost {
    /// Serves the UDP responder (see [`responders::udp`]) on `port`.
    pub fn serve_udp(&mut self, port: u16) {
        match self.bind_udp(port) {
            Ok(handle) => self.udp_servers.push(handle),
            Err(e) => log::error!("{}: cannot bind UDP port {port}: {e}", self.config.name),
        }
    }

    /// Answers every datagram waiting on the UDP responder's ports.
    pub(super) fn run_udp_servers(&mut self) -> bool {
        let mut progress = false;
        for &handle in &self.udp_servers {
            let socket = self.sockets.get_mut::<udp::Socket>(handle);
            while let Ok((data, meta)) = socket.recv() {
                let peer = to_v4(meta.endpoint);
                let reply = responders::udp::respond(data, peer, &self.config.name);
                log::info!(
                    "{}: udp {peer} -> port {} {} bytes",
                    self.config.name,
                    socket.endpoint().port,
                    reply.len()
                );
                // Answer from the address the datagram was sent to.
                match socket.send_slice(&reply, meta) {
                    Ok(()) => progress = true,
                    Err(e) => log::warn!("{}: UDP reply to {peer} dropped: {e}", self.config.name),
                }
            }
        }
        progress
    }
}
