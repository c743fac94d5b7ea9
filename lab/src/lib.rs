//! Helpers for the lab tests in `tests/`.
