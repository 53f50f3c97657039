//! Placeholder, replaced by the NBD write benchmark.
fn main() {}
