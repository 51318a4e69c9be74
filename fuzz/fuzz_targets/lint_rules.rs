//! A rule file (or any YAML `poolc lint` reads: PrometheusRules, KEDA
//! objects, ServiceMonitors) through every check, with the default catalog.

#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| common::lint_file("rules/fuzz.yaml", data));
