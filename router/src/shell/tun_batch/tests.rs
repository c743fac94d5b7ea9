use super::*;

/// `GROTable` appends a segment to its flow's first packet only when that
/// packet's buffer can already hold the coalesced result: twice the
/// offset plus the packet (tun-rs `coalesce_tcp_packets`, "We don't want
/// to allocate a new underlying array"). Every buffer of a batch may
/// become a flow's first packet, so each must have room for a whole
/// super-packet, or nothing from the overlay is coalesced.
#[test]
fn every_buffer_has_room_for_a_coalesced_super_packet() {
    let mut batch = TunBatch::default();
    let segment = [0x45u8; 1450];
    for _ in 0..IDEAL_BATCH_SIZE - 1 {
        assert!(
            !batch.push(&segment),
            "the batch is full only at IDEAL_BATCH_SIZE"
        );
    }
    assert!(batch.push(&segment));
    assert_eq!(batch.used, IDEAL_BATCH_SIZE);
    for b in &batch.bufs {
        assert_eq!(&b[VNET_HDR_LEN..], &segment[..]);
        assert!(
            b.capacity() >= 2 * VNET_HDR_LEN + 65_535,
            "a buffer of {} bytes cannot take a 64 KiB super-packet",
            b.capacity()
        );
    }
}
