//! `Node::handle_packet` on what the TUN device delivers: any bytes.
#![no_main]

use dataplane::engine::Ingress;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    fuzz::with_harness(|h| h.handle(Ingress::Tun, data));
});
