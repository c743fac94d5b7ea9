//! The cost of one watch event in the data plane: an EndpointSlice change
//! (one endpoint replaced, so one Maglev table rebuilt) applied with
//! `Node::apply_change` to a node serving 1,000 and 10,000 Services of 5
//! endpoints each. The target is at most 1 ms, the same at both sizes.
//!
//! Run: `cargo bench -p dataplane --bench changes`.

// A benchmark measures wall time.
#![allow(clippy::disallowed_methods)]

#[path = "../tests/common/scale.rs"]
mod scale;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};

use dataplane::engine::DataplaneConfig;
use dataplane::node::Node;

fn endpoint_change(c: &mut Criterion) {
    let mut group = c.benchmark_group("endpoint_slice_change");
    for services in [1_000u32, 10_000] {
        let cluster = scale::cluster(services);
        let mut node = Node::new(&DataplaneConfig::default(), &cluster, "n1").expect("node");
        let mut round = 0u32;
        group.bench_with_input(BenchmarkId::from_parameter(services), &services, |b, &n| {
            b.iter(|| {
                round = round.wrapping_add(1);
                node.apply_change(&scale::replace_endpoint(n, round))
                    .expect("apply");
            });
        });
    }
    group.finish();
}

criterion_group!(benches, endpoint_change);
criterion_main!(benches);
