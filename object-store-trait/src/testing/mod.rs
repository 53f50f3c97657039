//! Test support, behind the `testing` feature: a conformance suite any [`crate::ObjectStore`]
//! must pass, and wrappers that simulate crashes ([`CrashStore`]) and faults ([`FaultyStore`]).
//!
//! Other crates use it from their tests with
//! `object-store-trait = { workspace = true, features = ["testing"] }` in `[dev-dependencies]`.

pub mod conformance;
mod crash;
mod faulty;

pub use crash::{CrashMode, CrashStore};
pub use faulty::{FaultyOptions, FaultyStore};
