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

#[test]
fn a_vec_is_wrapped_and_given_back_without_headroom_games() {
    let v = vec![1, 2, 3, 4];
    let ptr = v.as_ptr();
    let mut b = PacketBuf::from_vec(v);
    assert_eq!(b.data(), &[1, 2, 3, 4]);
    assert!(b.push_front::<1>().is_none(), "no headroom");
    b.truncate(3);
    let back = b.into_vec();
    assert_eq!(back, [1, 2, 3]);
    assert_eq!(back.as_ptr(), ptr, "not copied");

    let mut b = PacketBuf::from_vec(vec![7, 8]);
    b.reserve_front(HEADROOM);
    *b.push_front::<2>().expect("reserved") = [5, 6];
    assert_eq!(b.data(), &[5, 6, 7, 8]);
    assert_eq!(b.into_vec(), [5, 6, 7, 8]);
    let mut b = PacketBuf::from_vec(vec![1]);
    assert_eq!(
        b.recv_area().len(),
        FULL - HEADROOM,
        "grows to a full buffer"
    );
}
