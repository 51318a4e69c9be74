//! A spec from arbitrary bytes: loading (size, encoding, YAML budgets) and,
//! when it loads, validation into a Model, rendering and the PromQL gate
//! over what would be written.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(file) = poolc::spec::load_bytes("specs/fuzz.yaml", data) else {
        return;
    };
    let Ok(model) = poolc::model::build(&[file]) else {
        return;
    };
    if let Ok(set) = poolc::render::render(&model) {
        let _ = poolc::lint::lint_fileset(&model, &set);
    }
});
