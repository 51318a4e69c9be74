//! EC2 instance facts and the pod-size formula. The built-in table holds what
//! Karpenter reports for each type (vCPU, memory, allocatable, max pods);
//! specs may declare types it lacks.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use crate::spec::Arch;

/// One instance type, with the allocatable capacity the kubelet leaves pods.
#[derive(Debug, Clone, PartialEq)]
pub struct InstanceType {
    pub name: String,
    pub arch: Arch,
    pub vcpu: u32,
    pub memory_gib: f64,
    pub allocatable_cpu_m: u64,
    pub allocatable_memory_mi: u64,
    pub max_pods: u32,
}

/// CPU and memory reserved per node for daemonsets (ci-infra's measured overhead).
const DAEMONSET_CPU_M: u64 = 300;
const DAEMONSET_MEMORY_MI: u64 = 440;
/// Pods get 90% of what is left, leaving room for spikes of system pods.
const POD_SHARE_PERCENT: u64 = 90;
/// Karpenter's default VM memory overhead: 7.5% of nominal memory is never visible.
const VM_MEMORY_OVERHEAD_PERMILLE: u64 = 75;

impl InstanceType {
    /// A type declared in a spec: allocatable follows the EKS kubelet reservation.
    pub fn declared(name: &str, arch: Arch, vcpu: u32, memory_gib: u32, max_pods: u32) -> Self {
        let vcpu64 = u64::from(vcpu);
        let reserved_cpu_m = match vcpu64 {
            0..=1 => 60,
            2 => 70,
            3..=4 => 80,
            // 2.5 millicores per vCPU above 4, truncated as the reference does.
            _ => 80 + (vcpu64 - 4) * 5 / 2,
        };
        let memory_mi = u64::from(memory_gib) * 1024 * (1000 - VM_MEMORY_OVERHEAD_PERMILLE) / 1000;
        let reserved_memory_mi = 255 + 11 * u64::from(max_pods) + 100;
        InstanceType {
            name: name.to_string(),
            arch,
            vcpu,
            memory_gib: f64::from(memory_gib),
            allocatable_cpu_m: (vcpu64 * 1000).saturating_sub(reserved_cpu_m),
            allocatable_memory_mi: memory_mi.saturating_sub(reserved_memory_mi),
            max_pods,
        }
    }

    /// CPU (millicores) and memory (MiB) left for build pods after daemonsets.
    pub fn usable(&self) -> (u64, u64) {
        (
            self.allocatable_cpu_m.saturating_sub(DAEMONSET_CPU_M),
            self.allocatable_memory_mi
                .saturating_sub(DAEMONSET_MEMORY_MI),
        )
    }

    /// The Guaranteed pod size when `pods_per_node` pods share this type:
    /// whole vCPUs and whole GiB, 90% of what daemonsets leave, split evenly.
    pub fn pod_size(&self, pods_per_node: u32) -> PodSize {
        let (cpu_m, memory_mi) = self.usable();
        let ppn = u64::from(pods_per_node.max(1));
        PodSize {
            cpu: cpu_m * POD_SHARE_PERCENT / 100 / ppn / 1000,
            memory_gib: memory_mi * POD_SHARE_PERCENT / 100 / ppn / 1024,
        }
    }

    /// How many pods of `size` fit on one node.
    pub fn pods_that_fit(&self, size: PodSize) -> u64 {
        let (cpu_m, memory_mi) = self.usable();
        let by_cpu = cpu_m.checked_div(size.cpu * 1000).unwrap_or(u64::MAX);
        let by_memory = memory_mi
            .checked_div(size.memory_gib * 1024)
            .unwrap_or(u64::MAX);
        by_cpu.min(by_memory)
    }

    /// Nominal memory in whole GiB, as NodePool limits count it.
    pub fn memory_gib_whole(&self) -> u64 {
        self.memory_gib.ceil() as u64
    }
}

/// requests = limits for a Guaranteed build pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PodSize {
    pub cpu: u64,
    pub memory_gib: u64,
}

/// The built-in table, parsed once.
pub fn builtin() -> &'static BTreeMap<String, InstanceType> {
    static TABLE: OnceLock<BTreeMap<String, InstanceType>> = OnceLock::new();
    TABLE.get_or_init(|| parse_table(include_str!("instance_types.tsv")))
}

fn parse_table(text: &str) -> BTreeMap<String, InstanceType> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|line| {
            let f: Vec<&str> = line.split('\t').collect();
            let arch = match *f.get(1)? {
                "amd64" => Arch::Amd64,
                "arm64" => Arch::Arm64,
                _ => return None,
            };
            let t = InstanceType {
                name: f.first()?.to_string(),
                arch,
                vcpu: f.get(2)?.parse().ok()?,
                memory_gib: f.get(3)?.parse().ok()?,
                allocatable_cpu_m: f.get(5)?.parse().ok()?,
                allocatable_memory_mi: f.get(6)?.parse().ok()?,
                max_pods: f.get(7)?.parse().ok()?,
            };
            Some((t.name.clone(), t))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_complete() {
        let lines = include_str!("instance_types.tsv")
            .lines()
            .filter(|l| !l.starts_with('#'))
            .count();
        assert_eq!(builtin().len(), lines, "every table row must parse");
    }

    #[test]
    fn reference_pod_sizes() {
        // The reference fleet: m6id.24xlarge @2 → 42 vCPU / 155Gi; m7gd.16xlarge @4 → 14 / 51Gi.
        let amd = &builtin()["m6id.24xlarge"];
        assert_eq!(
            amd.pod_size(2),
            PodSize {
                cpu: 42,
                memory_gib: 155
            }
        );
        let arm = &builtin()["m7gd.16xlarge"];
        assert_eq!(
            arm.pod_size(4),
            PodSize {
                cpu: 14,
                memory_gib: 51
            }
        );
    }

    #[test]
    fn declared_types_follow_the_kubelet_reservation() {
        // Same facts as the table's m6id.24xlarge: 96 vCPU, 384 GiB, 737 pods.
        let t = InstanceType::declared("x", Arch::Amd64, 96, 384, 737);
        assert_eq!(t.allocatable_cpu_m, 95690);
        assert_eq!(t.allocatable_memory_mi, 355262);
    }
}
