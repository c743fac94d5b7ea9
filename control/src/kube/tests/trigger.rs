//! The trigger time a slice carries (kube-proxy's programming latency
//! starts there).

use std::time::{Duration, UNIX_EPOCH};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::kube::{trigger_time, TRIGGER_TIME};

fn meta(value: &str) -> ObjectMeta {
    ObjectMeta {
        annotations: Some([(TRIGGER_TIME.to_owned(), value.to_owned())].into()),
        ..ObjectMeta::default()
    }
}

#[test]
fn rfc3339_trigger_times_with_and_without_fractions() {
    assert_eq!(
        trigger_time(&meta("2026-11-29T21:00:00Z")),
        Some(UNIX_EPOCH + Duration::from_secs(1_795_986_000))
    );
    assert_eq!(
        trigger_time(&meta("2026-11-29T21:00:00.000123456Z")),
        Some(UNIX_EPOCH + Duration::from_secs(1_795_986_000) + Duration::from_nanos(123_456))
    );
    assert_eq!(trigger_time(&meta("yesterday")), None);
    assert_eq!(trigger_time(&ObjectMeta::default()), None);
}
