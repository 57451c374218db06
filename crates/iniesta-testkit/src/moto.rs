//! `moto_server` processes for tests.
