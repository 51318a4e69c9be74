//! A `kustomization.yaml` per cluster, so `kubectl apply -k generated/<cluster>`
//! applies every Kubernetes manifest poolc wrote for it (and nothing else:
//! rule files for promtool, dashboards and the lint catalog are not
//! Kubernetes objects).

use serde::Serialize;

use super::{header, path, to_yaml, RenderError};
use crate::fileset::File;
use crate::model::Cluster;

pub const FILE: &str = "kustomization.yaml";

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Kustomization {
    api_version: &'static str,
    kind: &'static str,
    resources: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    config_map_generator: Vec<ConfigMapGenerator>,
    #[serde(skip_serializing_if = "Option::is_none")]
    generator_options: Option<GeneratorOptions>,
}

#[derive(Serialize)]
pub struct ConfigMapGenerator {
    pub name: String,
    pub namespace: String,
    pub files: Vec<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct GeneratorOptions {
    /// The LB rolls on the config checksum annotation instead, so the
    /// ConfigMap keeps a stable name that reviewers can grep for.
    disable_name_suffix_hash: bool,
}

/// Files under `<cluster>/` that hold Kubernetes objects end in `.yaml` and
/// live at the top level; everything in subdirectories is for other tools.
pub fn render(cluster: &Cluster, files: &[File]) -> Result<Vec<File>, RenderError> {
    let prefix = format!("{}/", cluster.name);
    let resources: Vec<String> = files
        .iter()
        .filter_map(|f| f.path.strip_prefix(&prefix))
        .filter(|rest| rest.ends_with(".yaml") && !rest.contains('/'))
        .filter(|rest| *rest != super::catalog::FILE)
        .map(str::to_string)
        .collect();
    let config_map_generator: Vec<ConfigMapGenerator> = files
        .iter()
        .filter(|f| f.path == path(cluster, super::haproxy::CONFIG_FILE))
        .map(|_| ConfigMapGenerator {
            name: super::haproxy::config_map_name(cluster),
            namespace: cluster.namespace.clone(),
            files: vec![super::haproxy::CONFIG_FILE.to_string()],
        })
        .collect();
    let kustomization = Kustomization {
        api_version: "kustomize.config.k8s.io/v1beta1",
        kind: "Kustomization",
        generator_options: (!config_map_generator.is_empty()).then_some(GeneratorOptions {
            disable_name_suffix_hash: true,
        }),
        resources,
        config_map_generator,
    };
    let text = header(cluster, "#") + &to_yaml(&kustomization, "kustomization.yaml")?;
    Ok(vec![File::new(path(cluster, FILE), text)])
}
