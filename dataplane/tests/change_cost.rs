//! How long one EndpointSlice change (one endpoint replaced) takes to
//! apply to a node serving 1,000 and 10,000 Services of 5 endpoints
//! (`common/scale.rs`). Indicative wall-clock figures, not a benchmark
//! (`benches/changes.rs` is); ignored by default, run in release:
//! `cargo test -p dataplane --release --test change_cost -- --ignored --nocapture`.

// A timing needs the clock; the core itself never reads it.
#![allow(clippy::disallowed_methods)]

#[path = "common/scale.rs"]
mod scale;

use std::time::Instant;

use dataplane::engine::DataplaneConfig;
use dataplane::node::Node;

#[test]
#[ignore = "a timing: run in release with --ignored"]
fn one_endpoint_change_costs_the_same_at_1k_and_10k_services() {
    const ROUNDS: u32 = 100;
    for services in [1_000, 10_000] {
        let cluster = scale::cluster(services);
        let started = Instant::now();
        let mut node = match Node::new(&DataplaneConfig::default(), &cluster, "n1") {
            Ok(n) => n,
            Err(e) => panic!("{e}"),
        };
        let built = started.elapsed();
        let started = Instant::now();
        for round in 0..ROUNDS {
            if let Err(e) = node.apply_change(&scale::replace_endpoint(services, round)) {
                panic!("{e}");
            }
        }
        let per_change = started.elapsed() / ROUNDS;
        println!("{services} Services: node built in {built:?}, one endpoint change applied in {per_change:?}");
    }
}
