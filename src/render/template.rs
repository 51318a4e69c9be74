//! The minijinja environment for the text formats poolc writes (haproxy.cfg,
//! the drain hook). Templates live in `templates/` and are compiled into the
//! binary, so `poolc` runs from any directory. Undefined variables are errors:
//! a misspelled field must fail the build, not render an empty string.

use std::sync::OnceLock;

use minijinja::{Environment, UndefinedBehavior};
use serde::Serialize;

use super::RenderError;

const TEMPLATES: &[(&str, &str)] = &[
    (
        "haproxy.cfg.j2",
        include_str!("../../templates/haproxy.cfg.j2"),
    ),
    ("drain.sh.j2", include_str!("../../templates/drain.sh.j2")),
    (
        "soft_stop.sh.j2",
        include_str!("../../templates/soft_stop.sh.j2"),
    ),
];

/// The environment, and the compile error of any template that failed to load.
type Loaded = (Environment<'static>, Vec<(&'static str, String)>);

fn environment() -> &'static Loaded {
    static ENV: OnceLock<Loaded> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        env.set_keep_trailing_newline(true);
        let mut broken = Vec::new();
        for (name, source) in TEMPLATES {
            if let Err(e) = env.add_template(name, source) {
                broken.push((*name, format!("{e:#}")));
            }
        }
        (env, broken)
    })
}

/// Renders `name` with `context`, whose struct documents the template's inputs.
pub fn render<C: Serialize>(name: &str, context: &C) -> Result<String, RenderError> {
    let fail = |e: minijinja::Error| RenderError::Template {
        name: name.to_string(),
        message: format!("{e:#}"),
    };
    let (env, broken) = environment();
    if let Some((_, message)) = broken.iter().find(|(n, _)| *n == name) {
        return Err(RenderError::Template {
            name: name.to_string(),
            message: message.clone(),
        });
    }
    let template = env.get_template(name).map_err(fail)?;
    template.render(context).map_err(fail)
}
