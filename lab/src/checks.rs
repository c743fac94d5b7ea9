//! Collecting failed checks, so one test reports all of them.

use std::fmt::Write as _;

/// Collects failed checks so one lab run reports all of them.
#[derive(Default)]
pub struct Checks {
    failures: Vec<String>,
}

impl Checks {
    #[track_caller]
    /// Records a failure unless `ok`; returns `ok`.
    pub fn check(&mut self, ok: bool, msg: impl FnOnce() -> String) -> bool {
        if !ok {
            let loc = std::panic::Location::caller();
            let msg = msg();
            eprintln!("FAILED at {loc}: {msg}\n");
            self.failures.push(format!("{loc}: {msg}"));
        }
        ok
    }

    #[track_caller]
    /// Records the error of `r`, if any, as a failure; returns whether it
    /// was `Ok`.
    pub fn ok<T>(&mut self, r: Result<T, String>) -> bool {
        match r {
            Ok(_) => true,
            Err(e) => self.check(false, || e),
        }
    }

    /// Fails (panics) with every recorded failure, if any.
    pub fn finish(self) {
        if !self.failures.is_empty() {
            let mut report = format!("{} lab check(s) failed:\n\n", self.failures.len());
            for f in &self.failures {
                let _ = writeln!(report, "* {f}\n");
            }
            panic!("{report}");
        }
    }
}
