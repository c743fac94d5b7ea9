use etherparse::PacketBuilder;
use proptest::prelude::*;

use super::*;
use crate::wire::offload::{finish_checksum, segment, Gso};

const MSS: usize = 1400;

/// Sets the IP identifier and recomputes the IP checksum.
fn with_ip_id(mut p: Vec<u8>, id: u16) -> Vec<u8> {
    p[4..6].copy_from_slice(&id.to_be_bytes());
    p[10..12].copy_from_slice(&[0, 0]);
    let c = checksum::checksum(0, &p[..20]);
    p[10..12].copy_from_slice(&c.to_be_bytes());
    p
}

/// A data segment of flow `port` (the server's reply direction), as a
/// sender's GSO would cut them: IP ids counting up with `index`.
fn seg(port: u16, seq: u32, len: usize, psh: bool, index: u16) -> Vec<u8> {
    let payload: Vec<u8> = (0..len).map(|i| (i as u32 * 7 + seq) as u8).collect();
    let b = PacketBuilder::ipv4([10, 10, 1, 2], [10, 10, 0, 5], 64)
        .tcp(80, port, seq, 502)
        .ack(77);
    let b = if psh { b.psh() } else { b };
    let mut out = Vec::new();
    b.write(&mut out, &payload).expect("build");
    with_ip_id(out, index)
}

/// The batch as written: each packet with its description.
fn run(packets: &[Vec<u8>]) -> Vec<(Vec<u8>, Option<SuperPacket>)> {
    let mut c = Coalescer::new();
    for p in packets {
        c.push(p);
    }
    let mut out = Vec::new();
    c.drain(|p, sp| out.push((p.to_vec(), sp)));
    assert!(c.is_empty());
    out
}

/// What the kernel does with a written packet: a super-packet is cut
/// back into its segments (software GSO), the rest stays.
fn resegment(written: &[(Vec<u8>, Option<SuperPacket>)]) -> Vec<Vec<u8>> {
    let mut all = Vec::new();
    for (p, sp) in written {
        match sp {
            Some(sp) => {
                let mut out = Vec::new();
                let segs = segment(p, Gso::Tcp { mss: sp.mss }, &[], &mut out).expect("segments");
                all.extend(segs.iter(&out).map(<[u8]>::to_vec));
            }
            None => all.push(p.clone()),
        }
    }
    all
}

/// A stream of `sizes` from sequence number 1000, the last with PSH.
fn stream(port: u16, sizes: &[usize]) -> Vec<Vec<u8>> {
    let mut seq = 1000u32;
    let n = sizes.len();
    sizes
        .iter()
        .enumerate()
        .map(|(i, &len)| {
            let p = seg(port, seq, len, i + 1 == n, i as u16);
            seq += len as u32;
            p
        })
        .collect()
}

#[test]
fn consecutive_segments_become_one_super_packet_that_segments_back() {
    let mut sizes = vec![MSS; 10];
    sizes.push(500);
    let packets = stream(40000, &sizes);
    let written = run(&packets);
    assert_eq!(written.len(), 1, "one write for the whole stream");
    let (sp_bytes, sp) = &written[0];
    assert_eq!(
        *sp,
        Some(SuperPacket {
            mss: MSS as u16,
            header_len: 40,
            csum_start: 20
        })
    );
    assert_eq!(sp_bytes.len(), 40 + 10 * MSS + 500);
    // Finishing the partial checksum gives the super-packet's full one.
    let mut full = sp_bytes.clone();
    finish_checksum(&mut full);
    let sliced = etherparse::SlicedPacket::from_ip(&full).expect("parses");
    let Some(etherparse::TransportSlice::Tcp(tcp)) = sliced.transport else {
        panic!("tcp");
    };
    assert_eq!(
        tcp.checksum(),
        tcp.calc_checksum_ipv4([10, 10, 1, 2], [10, 10, 0, 5])
            .expect("calc")
    );
    assert!(tcp.psh(), "the last segment's PSH is the super-packet's");
    // Cut again, it is the segments that came, byte for byte.
    assert_eq!(resegment(&written), packets);
}

#[test]
fn what_cannot_join_is_written_as_it_came_and_in_order() {
    // A gap in the sequence.
    let a = seg(40000, 1000, MSS, false, 0);
    let gap = seg(40000, 1000 + 2 * MSS as u32, MSS, false, 1);
    assert_eq!(
        run(&[a.clone(), gap.clone()]),
        vec![(a.clone(), None), (gap, None)]
    );

    // Another acknowledgement number, another window.
    let mut other_ack = seg(40000, 1000 + MSS as u32, MSS, false, 1);
    other_ack[20 + 11] ^= 1;
    other_ack = fix_tcp_checksum(other_ack);
    assert_eq!(run(&[a.clone(), other_ack.clone()]).len(), 2);
    let mut other_window = seg(40000, 1000 + MSS as u32, MSS, false, 1);
    other_window[20 + 15] ^= 1;
    other_window = fix_tcp_checksum(other_window);
    assert_eq!(run(&[a.clone(), other_window.clone()]).len(), 2);

    // PSH ends a super-packet; so does a short segment; a longer one
    // than the first does not join.
    let psh = seg(40000, 1000, MSS, true, 0);
    let next = seg(40000, 1000 + MSS as u32, MSS, false, 1);
    assert_eq!(run(&[psh.clone(), next.clone()]).len(), 2);
    let short = seg(40000, 1000, 500, false, 0);
    let longer = seg(40000, 1500, MSS, false, 1);
    assert_eq!(
        run(&[short.clone(), longer.clone()]),
        vec![(short, None), (longer, None)]
    );
    let three = stream(40000, &[MSS, 500, MSS]);
    let mut three_fixed = three.clone();
    three_fixed[2] = seg(40000, 1000 + MSS as u32 + 500, MSS, false, 2);
    let written = run(&three_fixed);
    assert_eq!(written.len(), 2, "the short segment closes the first");
    assert_eq!(resegment(&written), three_fixed);
}

/// Recomputes the TCP checksum after a test changed the header.
fn fix_tcp_checksum(mut p: Vec<u8>) -> Vec<u8> {
    p[36..38].copy_from_slice(&[0, 0]);
    let pseudo =
        checksum::pseudo_header_sum([10, 10, 1, 2], [10, 10, 0, 5], 6, (p.len() - 20) as u16);
    let c = checksum::checksum(pseudo, &p[20..]);
    p[36..38].copy_from_slice(&c.to_be_bytes());
    p
}

#[test]
fn a_corrupted_segment_is_not_hidden_in_a_super_packet() {
    let packets = stream(40000, &[MSS, MSS, MSS, MSS]);
    let mut bad = packets.clone();
    bad[2][100] ^= 0xff;
    let written = run(&bad);
    // The first two coalesce; the corrupted one passes unchanged for the
    // kernel to drop; the last cannot join across it.
    assert_eq!(written.len(), 3);
    assert!(written[0].1.is_some());
    assert_eq!(written[1], (bad[2].clone(), None));
    assert_eq!(written[2], (bad[3].clone(), None));
}

#[test]
fn control_segments_and_other_protocols_pass_unchanged() {
    let mut fin = Vec::new();
    PacketBuilder::ipv4([10, 10, 1, 2], [10, 10, 0, 5], 64)
        .tcp(80, 40000, 5000, 502)
        .ack(77)
        .fin()
        .write(&mut fin, b"bye")
        .expect("build");
    let mut pure_ack = Vec::new();
    PacketBuilder::ipv4([10, 10, 1, 2], [10, 10, 0, 5], 64)
        .tcp(80, 40000, 1000, 502)
        .ack(77)
        .write(&mut pure_ack, b"")
        .expect("build");
    let mut udp = Vec::new();
    PacketBuilder::ipv4([10, 10, 1, 2], [10, 10, 0, 5], 64)
        .udp(53, 40000)
        .write(&mut udp, &[1u8; 1400])
        .expect("build");
    let input = vec![fin, pure_ack, udp.clone(), udp];
    let written = run(&input);
    let expected: Vec<_> = input.into_iter().map(|p| (p, None)).collect();
    assert_eq!(written, expected);
}

#[test]
fn a_pure_ack_between_segments_keeps_its_place() {
    let a = seg(40000, 1000, MSS, false, 0);
    let mut ack = Vec::new();
    PacketBuilder::ipv4([10, 10, 1, 2], [10, 10, 0, 5], 64)
        .tcp(80, 40000, 1000 + MSS as u32, 502)
        .ack(77)
        .write(&mut ack, b"")
        .expect("build");
    let b = seg(40000, 1000 + MSS as u32, MSS, false, 1);
    let written = run(&[a.clone(), ack.clone(), b.clone()]);
    assert_eq!(written, vec![(a, None), (ack, None), (b, None)]);
}

#[test]
fn a_super_packet_stays_within_64_kib() {
    let packets = stream(40000, &[MSS; 60]);
    let written = run(&packets);
    assert!(written.len() >= 2);
    assert!(written.iter().all(|(p, _)| p.len() <= MAX_PACKET_LEN));
    assert_eq!(resegment(&written), packets);
}

#[test]
fn interleaved_flows_coalesce_each() {
    let a = stream(40000, &[MSS, MSS, MSS]);
    let b = stream(40001, &[MSS, MSS, 700]);
    let mixed: Vec<Vec<u8>> = a
        .iter()
        .zip(&b)
        .flat_map(|(x, y)| [x.clone(), y.clone()])
        .collect();
    let written = run(&mixed);
    assert_eq!(written.len(), 2);
    let mut again = resegment(&written);
    again.sort();
    let mut want = mixed.clone();
    want.sort();
    assert_eq!(again, want);
}

#[test]
fn buffers_are_reused_between_batches() {
    let mut c = Coalescer::new();
    for round in 0..3 {
        for p in stream(40000 + round, &[MSS, MSS, 300]) {
            c.push(&p);
        }
        let mut n = 0;
        c.drain(|_, sp| {
            assert!(sp.is_some());
            n += 1;
        });
        assert_eq!(n, 1);
    }
    assert_eq!(c.bufs.len(), 1, "one buffer served every batch");
    assert_eq!(c.merged(), 6);
}

proptest! {
    /// Any interleaving of a few flows' streams, with segments dropped
    /// (gaps) and some corrupted: cut back into segments, what is written
    /// is what came, and each flow's packets keep their order.
    #[test]
    fn writing_coalesced_changes_no_flows_bytes_or_order(
        flows in proptest::collection::vec(
            proptest::collection::vec((1usize..=MSS, any::<bool>(), 0u8..20), 1..30),
            1..4,
        ),
        order in proptest::collection::vec(0usize..4, 0..120),
    ) {
        // Each flow: segments of MSS (or a short one when asked), some
        // dropped (a gap) or corrupted.
        let mut per_flow: Vec<Vec<Vec<u8>>> = Vec::new();
        for (f, spec) in flows.iter().enumerate() {
            let mut seq = 1000u32;
            let mut out = Vec::new();
            for (i, &(len, short, fate)) in spec.iter().enumerate() {
                let len = if short { len } else { MSS };
                let mut p = seg(40000 + f as u16, seq, len, fate == 1, i as u16);
                seq = seq.wrapping_add(len as u32);
                match fate {
                    2 => continue,
                    3 => {
                        let last = p.len() - 1;
                        p[last] ^= 0x55;
                    }
                    _ => {}
                }
                out.push(p);
            }
            per_flow.push(out);
        }
        // Interleave: `order` picks the next flow; the rest follow.
        let mut next = vec![0usize; per_flow.len()];
        let mut input = Vec::new();
        for pick in order.iter().chain((0..per_flow.len()).cycle().take(4 * 30 * 4).collect::<Vec<_>>().iter()) {
            let f = pick % per_flow.len();
            if let Some(p) = per_flow[f].get(next[f]) {
                input.push(p.clone());
                next[f] += 1;
            }
        }
        prop_assert_eq!(input.len(), per_flow.iter().map(Vec::len).sum::<usize>());
        let again = resegment(&run(&input));
        for (f, want) in per_flow.iter().enumerate() {
            let port = (40000 + f as u16).to_be_bytes();
            let got: Vec<&Vec<u8>> = again.iter().filter(|p| p[22..24] == port).collect();
            let want: Vec<&Vec<u8>> = want.iter().collect();
            prop_assert_eq!(got, want);
        }
    }
}
