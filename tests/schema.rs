//! The spec's JSON Schema accepts every spec poolc accepts (the committed
//! specs and the `init` starter) and rejects what poolc rejects for its shape.

use serde_json::Value;

fn validator() -> jsonschema::Validator {
    let schema: Value = serde_json::from_str(&poolc::spec::json_schema()).expect("schema is JSON");
    jsonschema::validator_for(&schema).expect("schema compiles")
}

fn yaml(text: &str) -> Value {
    serde_saphyr::from_str(text).expect("spec is YAML")
}

fn errors(v: &jsonschema::Validator, instance: &Value) -> Vec<String> {
    v.iter_errors(instance)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect()
}

#[test]
fn every_spec_in_specs_validates() {
    let v = validator();
    let mut count = 0;
    for entry in std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/specs")).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let errs = errors(&v, &yaml(&text));
        assert!(errs.is_empty(), "{}: {errs:?}", path.display());
        count += 1;
    }
    assert!(count >= 2, "expected the staging and production specs");
}

#[test]
fn the_starter_spec_validates() {
    let v = validator();
    let text = poolc::starter::starter_spec("demo").unwrap();
    assert_eq!(errors(&v, &yaml(&text)), Vec::<String>::new());
}

#[test]
fn the_schema_rejects_unknown_fields_and_wrong_types() {
    let v = validator();
    let text = poolc::starter::starter_spec("demo").unwrap();
    let typo = text.replacen("    min: 2", "    minimum: 2", 1);
    assert!(
        !errors(&v, &yaml(&typo)).is_empty(),
        "unknown field accepted"
    );
    let wrong = text.replacen("    max: 16", "    max: sixteen", 1);
    assert!(!errors(&v, &yaml(&wrong)).is_empty(), "string max accepted");
    let mode = text.replacen("    mode: jobs", "    mode: batch", 1);
    assert!(
        !errors(&v, &yaml(&mode)).is_empty(),
        "unknown mode accepted"
    );
}

#[test]
fn the_committed_schema_is_current() {
    let committed = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/generated/poolc.schema.json"
    ))
    .expect("generated/poolc.schema.json: run `just generate`");
    assert_eq!(committed, poolc::spec::json_schema(), "run `just generate`");
}
