//! Workspace integration tests for rbdj (see the `tests/` folder).

pub mod corrupt;
pub mod crash_model;
pub mod kill_switch;
