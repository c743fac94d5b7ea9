use super::*;

#[test]
fn all_lists_every_reason_in_declaration_order() {
    for (i, r) in DropReason::ALL.iter().enumerate() {
        assert_eq!(r.index(), i, "{r} out of place in DropReason::ALL");
    }
    let mut names: Vec<&str> = DropReason::ALL.iter().map(|r| r.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), DropReason::ALL.len(), "names are unique");
}

#[test]
fn each_decap_failure_has_its_own_counter() {
    let mut s = Stats::default();
    for e in [
        DecapError::Truncated,
        DecapError::WrongVni,
        DecapError::NotIpv4,
    ] {
        s.drop(e.into());
    }
    for r in [
        DropReason::OverlayTruncated,
        DropReason::OverlayWrongVni,
        DropReason::OverlayNotIpv4,
    ] {
        assert_eq!(s.dropped(r), 1, "{r}");
    }
}
