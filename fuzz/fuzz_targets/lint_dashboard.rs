//! A Grafana dashboard (JSON) through every check, with the default catalog.

#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| common::lint_file("dashboards/fuzz.json", data));
