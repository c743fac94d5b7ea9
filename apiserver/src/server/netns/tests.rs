use super::*;

#[test]
fn parses_path_and_address() {
    let spec: NetnsListen = "/run/netns/ksr-mac-master=192.168.191.144:6443"
        .parse()
        .expect("valid");
    assert_eq!(spec.netns, PathBuf::from("/run/netns/ksr-mac-master"));
    assert_eq!(
        spec.addr,
        "192.168.191.144:6443".parse::<SocketAddr>().expect("addr")
    );
}

#[test]
fn refuses_what_is_not_path_and_address() {
    for bad in [
        "192.168.191.144:6443",
        "=192.168.191.144:6443",
        "/run/netns/x=192.168.191.144",
    ] {
        let err = bad.parse::<NetnsListen>().expect_err(bad);
        assert!(!err.is_empty(), "{bad}");
    }
}

#[test]
fn a_missing_namespace_says_so() {
    let spec: NetnsListen = "/nonexistent/netns=127.0.0.1:0".parse().expect("valid");
    let err = bind(&spec).expect_err("no such namespace");
    assert!(
        err.to_string()
            .contains("cannot open network namespace /nonexistent/netns"),
        "{err}"
    );
}
