//! Cross-crate tests of iniesta-rs: the property tests of the consumer's
//! invariants, the consumer wired to Redlock and SQS, the end-to-end tests of
//! the `iniesta` binary (in `tests/`), and the benchmarks (in `benches/`).
//! The library itself holds nothing.
