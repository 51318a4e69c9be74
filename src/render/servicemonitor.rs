//! (being written)

use super::RenderError;
use crate::fileset::File;
use crate::model::Cluster;

pub fn render(_cluster: &Cluster) -> Result<Vec<File>, RenderError> {
    Ok(Vec::new())
}
