//! How far a Deployment's ReplicaSets are scaled in one step of a rollout,
//! as the deployment controller computes it: RollingUpdate lets the total
//! exceed the desired count by maxSurge and the available pods fall below it
//! by maxUnavailable; Recreate removes every old pod before the new
//! ReplicaSet grows. A pure function over counts, so it is tested alone.

use serde_json::Value;

/// A Deployment's strategy with its limits resolved to pod counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// `Recreate`.
    Recreate,
    /// `RollingUpdate` with maxSurge and maxUnavailable as counts.
    Rolling {
        /// Pods allowed above the desired count.
        surge: i64,
        /// Pods allowed to be unavailable below it.
        unavailable: i64,
    },
}

/// An int-or-percent of `total`, percentages rounded up (surge) or down.
fn resolve(value: Option<&Value>, total: i64, round_up: bool, default_percent: i64) -> i64 {
    let percent = |p: i64| {
        let scaled = total * p;
        if round_up {
            (scaled + 99) / 100
        } else {
            scaled / 100
        }
    };
    match value {
        Some(Value::Number(n)) => n.as_i64().unwrap_or(0),
        Some(Value::String(s)) => {
            percent(s.trim_end_matches('%').parse().unwrap_or(default_percent))
        }
        _ => percent(default_percent),
    }
}

impl Strategy {
    /// The strategy of a Deployment (RollingUpdate 25%/25% by default).
    pub fn of(deployment: &Value, desired: i64) -> Strategy {
        let strategy = deployment.pointer("/spec/strategy");
        if strategy.and_then(|s| s["type"].as_str()) == Some("Recreate") {
            return Strategy::Recreate;
        }
        let rolling = strategy.and_then(|s| s.get("rollingUpdate"));
        let surge = resolve(rolling.and_then(|r| r.get("maxSurge")), desired, true, 25);
        let mut unavailable = resolve(
            rolling.and_then(|r| r.get("maxUnavailable")),
            desired,
            false,
            25,
        );
        // Both zero would never progress; Kubernetes allows one unavailable.
        if surge == 0 && unavailable == 0 {
            unavailable = 1;
        }
        Strategy::Rolling { surge, unavailable }
    }
}

/// One ReplicaSet's counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counts {
    /// Its name.
    pub name: String,
    /// `.spec.replicas`.
    pub spec: i64,
    /// Pods that exist (`.status.replicas`).
    pub current: i64,
    /// Available pods.
    pub available: i64,
}

/// The target replicas of the new ReplicaSet and of each old one (oldest
/// first in `old`), for one step towards `desired`.
pub fn plan(
    desired: i64,
    strategy: Strategy,
    new: &Counts,
    old: &[Counts],
) -> (i64, Vec<(String, i64)>) {
    match strategy {
        Strategy::Recreate => {
            let old_left: i64 = old.iter().map(|o| o.spec.max(o.current)).sum();
            let new_target = if old_left > 0 { 0 } else { desired };
            (
                new_target,
                old.iter().map(|o| (o.name.clone(), 0)).collect(),
            )
        }
        Strategy::Rolling { surge, unavailable } => {
            let total: i64 = new.spec + old.iter().map(|o| o.spec).sum::<i64>();
            let new_target = if new.spec >= desired {
                desired
            } else {
                desired.min(new.spec + (desired + surge - total).max(0))
            };
            let available: i64 = new.available + old.iter().map(|o| o.available).sum::<i64>();
            let mut removable = (available - (desired - unavailable)).max(0);
            let mut targets = Vec::new();
            for o in old {
                // Unavailable old pods go first and cost no availability.
                let unhealthy = (o.spec - o.available).max(0);
                let healthy_cut = removable.min(o.spec - unhealthy);
                removable -= healthy_cut;
                targets.push((o.name.clone(), (o.spec - unhealthy - healthy_cut).max(0)));
            }
            (new_target, targets)
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn rs(name: &str, spec: i64, available: i64) -> Counts {
        Counts {
            name: name.into(),
            spec,
            current: spec,
            available,
        }
    }

    #[test]
    fn strategies_resolve_percentages() {
        let d = json!({"spec": {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}}}});
        assert_eq!(
            Strategy::of(&d, 10),
            Strategy::Rolling {
                surge: 3,
                unavailable: 2
            }
        );
        let d = json!({"spec": {"strategy": {"rollingUpdate": {"maxSurge": 0, "maxUnavailable": "10%"}}}});
        assert_eq!(
            Strategy::of(&d, 2),
            Strategy::Rolling {
                surge: 0,
                unavailable: 1
            }
        );
        assert_eq!(
            Strategy::of(&json!({"spec": {"strategy": {"type": "Recreate"}}}), 3),
            Strategy::Recreate
        );
        assert_eq!(
            Strategy::of(&json!({}), 4),
            Strategy::Rolling {
                surge: 1,
                unavailable: 1
            }
        );
    }

    #[test]
    fn a_first_rollout_goes_straight_to_desired() {
        let s = Strategy::Rolling {
            surge: 1,
            unavailable: 0,
        };
        assert_eq!(plan(3, s, &rs("new", 0, 0), &[]), (3, vec![]));
    }

    #[test]
    fn a_rolling_update_surges_then_removes_as_pods_become_available() {
        let s = Strategy::Rolling {
            surge: 1,
            unavailable: 0,
        };
        // Step 1: one surge pod, nothing removed (all 4 needed available).
        assert_eq!(
            plan(4, s, &rs("new", 0, 0), &[rs("old", 4, 4)]),
            (1, vec![("old".into(), 4)])
        );
        // The new pod is available: one old pod may go, no new one yet.
        assert_eq!(
            plan(4, s, &rs("new", 1, 1), &[rs("old", 4, 4)]),
            (1, vec![("old".into(), 3)])
        );
        // Room again: the new ReplicaSet grows.
        assert_eq!(
            plan(4, s, &rs("new", 1, 1), &[rs("old", 3, 3)]),
            (2, vec![("old".into(), 3)])
        );
        // Done: the old one at zero.
        assert_eq!(
            plan(4, s, &rs("new", 4, 4), &[rs("old", 0, 0)]),
            (4, vec![("old".into(), 0)])
        );
    }

    #[test]
    fn unavailable_old_pods_go_first_and_recreate_waits() {
        let s = Strategy::Rolling {
            surge: 0,
            unavailable: 1,
        };
        assert_eq!(
            plan(2, s, &rs("new", 0, 0), &[rs("old", 2, 1)]),
            (0, vec![("old".into(), 1)])
        );
        assert_eq!(
            plan(2, s, &rs("new", 0, 0), &[rs("old", 1, 1)]),
            (1, vec![("old".into(), 1)])
        );
        let old = [Counts {
            name: "old".into(),
            spec: 0,
            current: 1,
            available: 0,
        }];
        assert_eq!(
            plan(2, Strategy::Recreate, &rs("new", 0, 0), &old),
            (0, vec![("old".into(), 0)])
        );
        assert_eq!(
            plan(2, Strategy::Recreate, &rs("new", 0, 0), &[rs("old", 0, 0)]),
            (2, vec![("old".into(), 0)])
        );
    }
}
