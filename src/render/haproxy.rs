//! (being written)

use super::RenderError;
use crate::fileset::File;
use crate::model::Cluster;

pub fn render(_cluster: &Cluster) -> Result<Vec<File>, RenderError> {
    Ok(Vec::new())
}

/// The HAProxy config, also the key of the LB's ConfigMap.
pub const CONFIG_FILE: &str = "haproxy.cfg";

pub fn config_map_name(cluster: &Cluster) -> String {
    format!("{}-config", cluster.lb.name)
}
