//! The generated LB config on a real HAProxy, with fake workers behind it
//! and build clients in front of it (tests/support/live_haproxy.rs).

mod common;
#[path = "support/live_haproxy.rs"]
mod live_haproxy;

use std::time::Duration;

use common::repo_fileset;
use live_haproxy::{haproxy, local_config, BuildClient, FakeWorker, Lb, Seen};

const BACKEND: &str = "bk_amd64";
const FRONTEND: &str = "ft_amd64";

/// The staging LB with `n` listening workers behind bk_amd64, started
/// before HAProxy so its first health checks find them.
fn staging_lb(n: usize) -> Option<(Lb, Vec<FakeWorker>)> {
    let bin = haproxy()?;
    let set = repo_fileset();
    let generated = set.get("staging/haproxy.cfg").expect("staging/haproxy.cfg");
    let config = local_config(generated, n);
    let workers = config
        .server_ports(BACKEND)
        .into_iter()
        .map(FakeWorker::listen)
        .collect();
    Some((Lb::start(&bin, config), workers))
}

/// Two workers, three builds: one build per worker, the third queues (and is
/// counted in current_sessions), and is served when a build finishes.
#[test]
fn one_build_per_worker_and_the_next_queues() {
    let Some((lb, workers)) = staging_lb(2) else {
        return;
    };
    let port = lb.port(FRONTEND);
    let a = BuildClient::connect(port, 1);
    let b = BuildClient::connect(port, 2);
    assert_eq!(a.wait_served(Duration::from_secs(5)), Seen::Served);
    assert_eq!(b.wait_served(Duration::from_secs(5)), Seen::Served);
    let c = BuildClient::connect(port, 3);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(c.seen(), Seen::Waiting);
    assert_eq!(lb.backend_queue(BACKEND), 1.0);
    assert_eq!(lb.backend_sessions(BACKEND), 3.0);
    for w in &workers {
        assert_eq!(w.max_running(), 1, "worker {} ran {:?}", w.port, w.builds());
    }
    let first = workers.iter().find(|w| w.builds().contains(&1)).unwrap();
    first.finish(1);
    assert_eq!(c.wait_served(Duration::from_secs(5)), Seen::Served);
    assert!(first.builds().contains(&3));
    assert_eq!(lb.backend_queue(BACKEND), 0.0);
    for w in &workers {
        assert_eq!(w.max_running(), 1);
    }
}
