//! Settings from the `INIESTA_*` environment.
