//! `redis-server` processes for tests.
