use super::*;

#[test]
fn push_and_pull_headers() {
    let mut b = PacketBuf::from_slice(&[1, 2, 3]);
    assert_eq!(b.data(), &[1, 2, 3]);
    let h = b.push_front::<2>().expect("headroom");
    *h = [9, 8];
    assert_eq!(b.data(), &[9, 8, 1, 2, 3]);
    b.pull_front(2);
    assert_eq!(b.data(), &[1, 2, 3]);
    assert!(
        b.push_front::<{ HEADROOM + 1 }>().is_none(),
        "beyond the headroom"
    );
    b.truncate(1);
    assert_eq!(b.data(), &[1]);
    b.pull_front(10);
    assert!(b.is_empty());
}
