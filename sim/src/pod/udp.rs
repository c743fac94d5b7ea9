//! The UDP client of a [`Pod`]: datagrams from a chosen port, and every
//! reply that port receives.

use std::net::SocketAddrV4;

use netstack::host::to_v4;
use netstack::VirtualHost;
use smoltcp::iface::SocketHandle;
use smoltcp::socket::udp;
use smoltcp::wire::IpEndpoint;

use super::{Client, ClientId, Clients, Pod};

/// A local port the pod's UDP requests are sent from.
#[derive(Debug)]
pub(super) struct UdpClientSocket {
    port: u16,
    /// `None` if the port could not be bound.
    handle: Option<SocketHandle>,
    replies: Vec<(SocketAddrV4, Vec<u8>)>,
}

impl Pod {
    /// Sends `payload` to `dst` from UDP `local_port` (bound on first use, then
    /// reused). It goes out on the next [`poll`](Self::poll).
    pub fn udp_request(&mut self, dst: SocketAddrV4, local_port: u16, payload: &[u8]) -> ClientId {
        let sockets = &mut self.clients.udp;
        let index = match sockets.iter().position(|s| s.port == local_port) {
            Some(i) => i,
            None => {
                let handle = match self.host.bind_udp(local_port) {
                    Ok(handle) => Some(handle),
                    Err(e) => {
                        log::warn!(
                            "{}: cannot bind UDP port {local_port}: {e}",
                            self.clients.name
                        );
                        None
                    }
                };
                sockets.push(UdpClientSocket {
                    port: local_port,
                    handle,
                    replies: Vec::new(),
                });
                sockets.len() - 1
            }
        };
        let first_reply = sockets[index].replies.len();
        if let Some(handle) = sockets[index].handle {
            let socket = self.host.socket_mut::<udp::Socket>(handle);
            if let Err(e) = socket.send_slice(payload, IpEndpoint::from(dst)) {
                log::warn!("{}: UDP send to {dst} failed: {e}", self.clients.name);
            }
        }
        self.clients.push(Client::Udp {
            socket: index,
            first_reply,
        })
    }

    /// Datagrams received on the request's socket since the request was made,
    /// with their senders (empty for an id that is not a UDP request).
    pub fn udp_replies(&self, id: ClientId) -> Vec<(SocketAddrV4, Vec<u8>)> {
        match self.clients.list.get(id.0) {
            Some(Client::Udp {
                socket,
                first_reply,
            }) => self
                .clients
                .udp
                .get(*socket)
                .and_then(|s| s.replies.get(*first_reply..))
                .map(<[_]>::to_vec)
                .unwrap_or_default(),
            _ => Vec::new(),
        }
    }
}

impl Clients {
    /// Collects what arrived on the UDP clients' ports.
    pub(super) fn run_udp(&mut self, host: &mut VirtualHost) {
        for entry in &mut self.udp {
            let Some(handle) = entry.handle else { continue };
            let socket = host.socket_mut::<udp::Socket>(handle);
            while let Ok((data, meta)) = socket.recv() {
                entry.replies.push((to_v4(meta.endpoint), data.to_vec()));
            }
        }
    }
}
