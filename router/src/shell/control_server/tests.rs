use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use super::limits::{read_request, ReadError};
use super::*;
use crate::protocol;

fn default_cluster() -> Cluster {
    control::config::parse(include_str!(
        "../../../../control/tests/fixtures/cluster.toml"
    ))
    .expect("default config")
}

/// A socket path of its own for each test.
fn socket_path() -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    std::env::temp_dir().join(format!(
        "ksr-control-test-{}-{}.sock",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ))
}

/// A control server on a fresh socket, with a stand-in packet loop that
/// answers nothing it should not get.
struct Server {
    path: PathBuf,
    // Kept alive: the waker wakes this poll.
    _poll: mio::Poll,
}

impl Server {
    fn start(cluster: Cluster) -> Server {
        Self::serving(Served::File(cluster))
    }

    fn serving(served: Served) -> Server {
        let path = socket_path();
        let poll = mio::Poll::new().expect("poll");
        let waker = Arc::new(mio::Waker::new(poll.registry(), mio::Token(0)).expect("waker"));
        let (tx, rx) = crossbeam_channel::bounded::<Query>(4);
        thread::spawn(move || {
            for q in rx {
                let _ = q.reply.send(Response::Error(ProtocolError::Misrouted));
            }
        });
        let state = ControlState {
            node: "mac-master".into(),
            served,
            config: PathBuf::from("config.toml"),
        };
        spawn(&path, state, tx, waker).expect("control server");
        Server { path, _poll: poll }
    }

    fn cluster(&self) -> Cluster {
        match protocol::request(&self.path, &Request::State).expect("state") {
            Response::State { cluster, .. } => cluster,
            other => panic!("unexpected answer {other:?}"),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// A state pushed over the socket (the removed object-file store's way)
/// is not a request any more: the router's objects come from its file,
/// fixed, or from the Kubernetes API.
#[test]
fn a_file_router_serves_its_file_and_refuses_a_pushed_state() {
    let before = default_cluster();
    let server = Server::start(before.clone());
    assert_eq!(server.cluster(), before);
    let mut s = UnixStream::connect(&server.path).expect("connect");
    let push = serde_json::json!({ "Apply": { "cluster": before.clone() } });
    s.write_all(format!("{push}\n").as_bytes()).expect("write");
    let mut answer = String::new();
    s.read_to_string(&mut answer).expect("read");
    let r: Response = serde_json::from_str(&answer).expect("json");
    assert!(
        matches!(&r, Response::Error(ProtocolError::BadRequest(e)) if e.contains("Apply")),
        "{r:?}"
    );
    assert_eq!(server.cluster(), before);
}

#[test]
fn a_watched_router_answers_from_its_model() {
    let mut watched = default_cluster();
    watched.deployments.clear();
    watched.endpoint_slices = Some(Vec::new());
    let model = Arc::new(RwLock::new(Model::from_cluster(&watched)));
    let server = Server::serving(Served::Watched(Arc::clone(&model)));
    assert_eq!(server.cluster(), watched);
    let gone = watched.services.remove(0);
    model
        .write()
        .expect("model")
        .apply_change(&cluster::ClusterChange::ServiceDeleted(
            cluster::ObjectKey::new(gone.namespace, gone.name),
        ));
    assert_eq!(
        server.cluster(),
        watched,
        "the model's change shows at once"
    );
}

#[test]
fn garbage_is_a_bad_request() {
    let server = Server::start(default_cluster());
    let mut s = UnixStream::connect(&server.path).expect("connect");
    s.write_all(b"{\"Nope\":1}\n").expect("write");
    let mut answer = String::new();
    s.read_to_string(&mut answer).expect("read");
    let r: Response = serde_json::from_str(&answer).expect("json");
    assert!(
        matches!(r, Response::Error(ProtocolError::BadRequest(_))),
        "{r:?}"
    );
}

#[test]
fn an_oversized_request_is_refused_and_the_server_goes_on() {
    let before = default_cluster();
    let server = Server::start(before.clone());
    let mut s = UnixStream::connect(&server.path).expect("connect");
    let junk = vec![b' '; MAX_REQUEST + 1];
    s.write_all(&junk).expect("write");
    let mut answer = String::new();
    s.read_to_string(&mut answer).expect("read");
    let r: Response = serde_json::from_str(&answer).expect("json");
    assert_eq!(
        r,
        Response::Error(ProtocolError::TooLarge { limit: MAX_REQUEST })
    );
    assert_eq!(server.cluster(), before);
}

/// A pair of connected sockets: the server's end and the client's.
fn pair() -> (UnixStream, UnixStream) {
    UnixStream::pair().expect("socket pair")
}

#[test]
fn reads_one_line() {
    let (server, mut client) = pair();
    client.write_all(b"{\"a\":1}\nrest").expect("write");
    let got = read_request(&server, 100, Duration::from_secs(1)).expect("request");
    assert_eq!(got, b"{\"a\":1}");
}

#[test]
fn a_request_cut_by_end_of_file_is_taken_as_it_is() {
    let (server, mut client) = pair();
    client.write_all(b"State").expect("write");
    drop(client);
    let got = read_request(&server, 100, Duration::from_secs(1)).expect("request");
    assert_eq!(got, b"State");
}

#[test]
fn too_large_without_a_newline() {
    let (server, mut client) = pair();
    client.write_all(&[b'x'; 11]).expect("write");
    let got = read_request(&server, 10, Duration::from_secs(1));
    assert!(matches!(got, Err(ReadError::TooLarge)), "{got:?}");
}

#[test]
fn too_large_before_the_newline() {
    let (server, mut client) = pair();
    client.write_all(b"0123456789ab\n").expect("write");
    let got = read_request(&server, 10, Duration::from_secs(1));
    assert!(matches!(got, Err(ReadError::TooLarge)), "{got:?}");
}

#[test]
fn a_silent_client_times_out() {
    let (server, _client) = pair();
    let start = Instant::now();
    let got = read_request(&server, 100, Duration::from_millis(200));
    assert!(matches!(got, Err(ReadError::Timeout)), "{got:?}");
    assert!(start.elapsed() < Duration::from_secs(2));
}

/// The deadline is for the whole request: a byte every 50 ms does not
/// extend it.
#[test]
fn a_dripping_client_times_out() {
    let (server, mut client) = pair();
    let drip = thread::spawn(move || {
        for _ in 0..40 {
            if client.write_all(b"x").is_err() {
                break;
            }
            thread::sleep(Duration::from_millis(50));
        }
    });
    let start = Instant::now();
    let got = read_request(&server, 1000, Duration::from_millis(300));
    assert!(matches!(got, Err(ReadError::Timeout)), "{got:?}");
    assert!(start.elapsed() < Duration::from_secs(1));
    drop(server);
    let _ = drip.join();
}

/// A Service's AGE counts from its own creation time; objects without one
/// (what the router does not watch) from when the router first saw them,
/// and gone objects are forgotten.
#[test]
fn ages_come_from_the_services_creation_times() {
    let mut cluster = default_cluster();
    let svc = cluster.services[0].clone();
    cluster.services[0].created = Some(1_000);
    let mut created = BTreeMap::new();
    stamp(&mut created, &cluster, 5_000);
    let key = format!("service/{}/{}", svc.namespace, svc.name);
    assert_eq!(created.get(&key), Some(&1_000));
    let other = &cluster.services[1];
    let other_key = format!("service/{}/{}", other.namespace, other.name);
    assert_eq!(created.get(&other_key), Some(&5_000));
    // Seen again later: the first sighting stays.
    stamp(&mut created, &cluster, 9_000);
    assert_eq!(created.get(&other_key), Some(&5_000));
    cluster.services.remove(1);
    stamp(&mut created, &cluster, 9_000);
    assert_eq!(created.get(&other_key), None);
}
