use serde_json::json;

use super::*;

fn labels(v: Value) -> Value {
    json!({ "metadata": { "name": "p", "labels": v }, "spec": { "nodeName": "n1" } })
}

#[test]
fn equality_and_inequality() {
    let s = LabelSelector::parse("app=nginx,tier!=db").expect("parses");
    assert!(s.matches_object(&labels(json!({"app": "nginx"}))));
    assert!(s.matches_object(&labels(json!({"app": "nginx", "tier": "web"}))));
    assert!(!s.matches_object(&labels(json!({"app": "nginx", "tier": "db"}))));
    assert!(!s.matches_object(&labels(json!({"app": "other"}))));
}

#[test]
fn set_and_existence() {
    let s = LabelSelector::parse("env in (prod, dev),!canary,app").expect("parses");
    assert!(s.matches_object(&labels(json!({"env": "dev", "app": "x"}))));
    assert!(!s.matches_object(&labels(json!({"env": "qa", "app": "x"}))));
    assert!(!s.matches_object(&labels(json!({"env": "dev", "app": "x", "canary": "1"}))));
    assert!(!s.matches_object(&labels(json!({"env": "dev"}))));
    let n = LabelSelector::parse("env notin (prod)").expect("parses");
    assert!(n.matches_object(&labels(json!({}))));
    assert!(!n.matches_object(&labels(json!({"env": "prod"}))));
}

#[test]
fn empty_matches_all_and_garbage_is_refused() {
    assert!(LabelSelector::parse("").expect("parses").matches(None));
    assert_eq!(LabelSelector::parse("a b").map_err(|e| e.code), Err(400));
}

#[test]
fn field_selector_name_and_node() {
    let f = FieldSelector::parse("metadata.name=p,spec.nodeName!=n2").expect("parses");
    assert_eq!(f.name(), Some("p"));
    assert!(f.matches(&labels(json!({}))));
    let g = FieldSelector::parse("spec.nodeName=n2").expect("parses");
    assert!(!g.matches(&labels(json!({}))));
    assert_eq!(
        FieldSelector::parse("spec.bogus=1").map_err(|e| e.code),
        Err(400)
    );
}
