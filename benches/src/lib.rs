//! Benchmarks for rbdj (see `benches/`).
