use super::*;

/// The batch asks to be flushed after [`BATCH_PACKETS`] pushes, whatever
/// they coalesce into.
#[test]
fn a_batch_is_full_after_batch_packets_pushes() {
    let mut batch = TunBatch::default();
    let packet = [0x45u8; 60];
    for _ in 0..BATCH_PACKETS - 1 {
        assert!(!batch.push(&packet), "full only at BATCH_PACKETS");
    }
    assert!(batch.push(&packet));
}

/// What `take_merged` reports is what was merged since the last call.
#[test]
fn merges_are_reported_once() {
    let mut batch = TunBatch::default();
    // Two consecutive data segments of one flow, valid checksums: the
    // second joins the first.
    let seg = |seq: u32| {
        let mut p = Vec::new();
        etherparse::PacketBuilder::ipv4([10, 10, 1, 2], [10, 10, 0, 5], 64)
            .tcp(80, 40000, seq, 502)
            .ack(1)
            .write(&mut p, &[7u8; 1000])
            .expect("build");
        p
    };
    batch.push(&seg(1000));
    batch.push(&seg(2000));
    assert_eq!(batch.take_merged(), 1);
    assert_eq!(batch.take_merged(), 0);
}
