//! `Node::handle_packet` on an overlay datagram's payload (VXLAN, Ethernet,
//! IPv4) from the peer node: any bytes.
#![no_main]

use dataplane::engine::Ingress;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    fuzz::with_harness(|h| {
        let from = h.peer;
        h.handle(Ingress::Overlay { from }, data);
    });
});
