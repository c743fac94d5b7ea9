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
