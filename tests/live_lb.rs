//! The generated LB on a real HAProxy: the staging `haproxy.cfg`, rewritten
//! only as tests/support/live_haproxy.rs documents, with fake workers behind
//! it and gRPC-like build clients in front of it. Each test is a way builds
//! were cut or misrouted in production.

mod common;
#[path = "support/live_haproxy.rs"]
mod live_haproxy;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::{documents, repo_fileset, tool};
use live_haproxy::{
    free_port, haproxy, local_config, wait_until, BuildClient, FakeWorker, Lb, Seen,
};

const BACKEND: &str = "bk_amd64";
const FRONTEND: &str = "ft_amd64";
const SECOND: Duration = Duration::from_secs(1);

fn staging_config() -> String {
    repo_fileset()
        .get("staging/haproxy.cfg")
        .expect("staging/haproxy.cfg")
        .to_string()
}

/// The staging LB with `n` servers behind bk_amd64, of which the first
/// `listening` have a worker listening before HAProxy starts (so its first
/// health checks find them up).
fn staging_lb(n: usize, listening: usize) -> Option<(Lb, Vec<FakeWorker>, Vec<u16>)> {
    let bin = haproxy()?;
    let config = local_config(&staging_config(), n);
    let ports = config.server_ports(BACKEND);
    let workers = ports[..listening]
        .iter()
        .map(|p| FakeWorker::listen(*p))
        .collect();
    Some((Lb::start(&bin, config), workers, ports))
}

/// No session of the backend ended in `SC` (the server refused or never
/// answered and the retries ran out): that is a build that failed at once.
fn assert_no_sc(lb: &Lb) {
    let cut: Vec<_> = lb
        .sessions_logged(BACKEND)
        .into_iter()
        .filter(|s| s.termination.starts_with("SC"))
        .collect();
    assert!(
        cut.is_empty(),
        "sessions ended in SC: {cut:?}\n{}",
        lb.log()
    );
}

/// Two workers, three builds: one build per worker; the third queues and
/// counts in current_sessions; it runs when a build finishes.
#[test]
fn one_build_per_worker_and_the_next_queues() {
    let Some((lb, workers, _)) = staging_lb(2, 2) else {
        return;
    };
    let port = lb.port(FRONTEND);
    let a = BuildClient::connect(port, 1);
    let b = BuildClient::connect(port, 2);
    assert_eq!(a.wait_served(5 * SECOND), Seen::Served);
    assert_eq!(b.wait_served(5 * SECOND), Seen::Served);
    let c = BuildClient::connect(port, 3);
    assert!(wait_until(5 * SECOND, || lb.backend_queue(BACKEND) == 1.0));
    assert_eq!(c.seen(), Seen::Waiting);
    assert_eq!(lb.backend_sessions(BACKEND), 3.0);
    for w in &workers {
        assert_eq!(w.max_running(), 1, "worker {} ran {:?}", w.port, w.builds());
    }
    let first = workers.iter().find(|w| w.builds().contains(&1)).unwrap();
    first.finish(1);
    assert!(a.wait_closed(5 * SECOND));
    assert_eq!(a.seen(), Seen::Finished);
    assert_eq!(c.wait_served(5 * SECOND), Seen::Served);
    assert!(first.builds().contains(&3), "{:?}", first.builds());
    assert_eq!(lb.backend_queue(BACKEND), 0.0);
    for w in &workers {
        assert_eq!(w.max_running(), 1, "worker {} ran {:?}", w.port, w.builds());
    }
    assert_no_sc(&lb);
}

/// One worker, a running build and three queued: each freed worker takes
/// the build that waited longest.
#[test]
fn queued_builds_are_served_in_arrival_order() {
    let Some((lb, workers, _)) = staging_lb(1, 1) else {
        return;
    };
    let port = lb.port(FRONTEND);
    let running = BuildClient::connect(port, 1);
    assert_eq!(running.wait_served(5 * SECOND), Seen::Served);
    let mut queued = Vec::new();
    for id in 2..=4 {
        queued.push(BuildClient::connect(port, id));
        // Arrival order is what HAProxy sees, so leave no doubt about it.
        let expected = f64::from(id as u32 - 1);
        assert!(wait_until(5 * SECOND, || lb.backend_queue(BACKEND) == expected));
    }
    assert_eq!(lb.backend_sessions(BACKEND), 4.0);
    for id in 1..=3 {
        workers[0].finish(id);
        let next = &queued[id as usize - 1];
        assert_eq!(
            next.wait_served(5 * SECOND),
            Seen::Served,
            "build {}",
            next.id
        );
    }
    assert_eq!(workers[0].builds(), vec![1, 2, 3, 4]);
    assert_eq!(workers[0].max_running(), 1);
    assert_no_sc(&lb);
}

/// A worker that HAProxy still counts as up, but whose pod is gone: the
/// build must go back to the queue and run on the next free worker, not
/// fail with SC after three refused connects.
#[test]
fn a_dead_worker_requeues_the_build() {
    let Some((lb, mut workers, _)) = staging_lb(2, 2) else {
        return;
    };
    let port = lb.port(FRONTEND);
    let busy = BuildClient::connect(port, 1);
    assert_eq!(busy.wait_served(5 * SECOND), Seen::Served);
    let (busy_at, dead_at) = if workers[0].builds() == vec![1] {
        (0, 1)
    } else {
        (1, 0)
    };
    // The idle pod is deleted; HAProxy's checks have not noticed yet, and
    // leastconn prefers it because it is empty.
    workers[dead_at].kill();
    let server = format!("w{}", dead_at + 1);
    assert!(
        lb.server_up(BACKEND, &server),
        "{server} should still be up"
    );
    let next = BuildClient::connect(port, 2);
    std::thread::sleep(4 * SECOND);
    assert_eq!(
        next.seen(),
        Seen::Waiting,
        "the build failed instead of queueing"
    );
    assert!(!lb.server_up(BACKEND, &server), "{server} not marked down");
    workers[busy_at].finish(1);
    assert_eq!(next.wait_served(5 * SECOND), Seen::Served);
    assert_eq!(workers[busy_at].builds(), vec![1, 2]);
    assert_no_sc(&lb);
}

/// A worker that is in rotation before it listens (a pod resolved before
/// buildkitd is up) while the other worker is busy: the build waits in the
/// queue and runs once the late worker comes up, instead of failing with SC.
#[test]
fn a_late_worker_requeues_the_build_and_then_serves_it() {
    let Some((lb, mut workers, ports)) = staging_lb(2, 2) else {
        return;
    };
    let port = lb.port(FRONTEND);
    let busy = BuildClient::connect(port, 1);
    assert_eq!(busy.wait_served(5 * SECOND), Seen::Served);
    let late_at = usize::from(workers[0].builds() == vec![1]);
    // The pod at this address is replaced: up for HAProxy, not listening.
    workers[late_at].kill();
    let server = format!("w{}", late_at + 1);
    assert!(lb.server_up(BACKEND, &server));
    let build = BuildClient::connect(port, 7);
    std::thread::sleep(4 * SECOND);
    assert_eq!(
        build.seen(),
        Seen::Waiting,
        "the build failed instead of queueing"
    );
    assert_eq!(lb.backend_queue(BACKEND), 1.0);
    let late = FakeWorker::listen(ports[late_at]);
    // Back up after `rise` good checks (2 × inter 5s).
    assert_eq!(build.wait_served(20 * SECOND), Seen::Served);
    assert_eq!(late.builds(), vec![7]);
    assert_eq!(busy.seen(), Seen::Served);
    assert_no_sc(&lb);
}

/// A client that gives up while queued (grpc-go does after 20s) must leave
/// the queue and the session count at once: both feed KEDA and the backlog
/// alert.
#[test]
fn an_abandoned_queued_build_leaves_the_queue_and_the_sessions() {
    let Some((lb, _workers, _)) = staging_lb(1, 1) else {
        return;
    };
    let port = lb.port(FRONTEND);
    let running = BuildClient::connect(port, 1);
    assert_eq!(running.wait_served(5 * SECOND), Seen::Served);
    let waiting = BuildClient::connect(port, 2);
    let gives_up = BuildClient::connect(port, 3);
    assert!(wait_until(5 * SECOND, || lb.backend_queue(BACKEND) == 2.0));
    assert_eq!(lb.backend_sessions(BACKEND), 3.0);
    gives_up.abandon();
    assert!(
        wait_until(3 * SECOND, || lb.backend_queue(BACKEND) == 1.0
            && lb.backend_sessions(BACKEND) == 2.0),
        "queue {} sessions {} after the client left",
        lb.backend_queue(BACKEND),
        lb.backend_sessions(BACKEND)
    );
    assert_eq!(waiting.seen(), Seen::Waiting);
}

/// The LB pod's preStop hook, as generated, run under BusyBox against the
/// real LB: it soft-stops HAProxy, running builds go on to their end, new
/// builds are refused, and the hook returns once HAProxy has exited. The
/// pod's grace period leaves a build of timeout_server that time.
#[test]
fn the_lb_soft_stop_lets_running_builds_finish() {
    let Some(busybox) = tool("busybox", "apt-get install -y busybox") else {
        return;
    };
    let Some((mut lb, workers, _)) = staging_lb(2, 2) else {
        return;
    };
    let set = repo_fileset();
    let manifests = documents(set.get("staging/lb.yaml").unwrap());
    let deployment = manifests
        .iter()
        .find(|d| d["kind"] == "Deployment")
        .unwrap();
    let pod = &deployment["spec"]["template"]["spec"];
    let grace = pod["terminationGracePeriodSeconds"].as_u64().unwrap_or(30);
    assert!(
        grace >= 7200,
        "LB grace period {grace}s is shorter than timeout server (2h)"
    );
    let command: Vec<String> = pod["containers"][0]["lifecycle"]["preStop"]["exec"]["command"]
        .as_array()
        .expect("the LB has a preStop hook")
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert_eq!(&command[..2], ["/bin/sh", "-c"]);

    let port = lb.port(FRONTEND);
    let a = BuildClient::connect(port, 1);
    let b = BuildClient::connect(port, 2);
    assert_eq!(a.wait_served(5 * SECOND), Seen::Served);
    assert_eq!(b.wait_served(5 * SECOND), Seen::Served);
    let mut hook = Command::new(&busybox)
        .args(["sh", "-c", &command[2]])
        .env("POOLC_LB_PID", lb.pid().to_string())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    // Listeners close; running builds go on.
    assert!(wait_until(5 * SECOND, || std::net::TcpStream::connect((
        "127.0.0.1",
        port
    ))
    .is_err()));
    std::thread::sleep(2 * SECOND);
    assert_eq!(a.seen(), Seen::Served);
    assert_eq!(b.seen(), Seen::Served);
    assert!(
        hook.try_wait().unwrap().is_none(),
        "the hook returned early"
    );
    for w in &workers {
        w.finish_all();
    }
    assert!(a.wait_closed(5 * SECOND) && b.wait_closed(5 * SECOND));
    assert_eq!((a.seen(), b.seen()), (Seen::Finished, Seen::Finished));
    assert!(lb.wait_exit(10 * SECOND).is_some(), "HAProxy did not exit");
    assert!(
        wait_until(5 * SECOND, || hook.try_wait().unwrap().is_some()),
        "the hook did not return after HAProxy exited"
    );
    assert_no_sc(&lb);
}

/// The pools' frontends accept IPv6 and IPv4 clients alike (IPv6-only EKS).
/// Only the port numbers are changed here; the bind address and its
/// options are the generated ones.
#[test]
fn the_lb_listens_on_ipv6_and_ipv4() {
    let Some(bin) = haproxy() else { return };
    let generated = staging_config();
    let mut text = String::new();
    let mut ports = Vec::new();
    for line in generated.lines() {
        let trimmed = line.trim_start();
        if let Some(rest) = trimmed.strip_prefix("bind ") {
            let (address, options) = rest.split_once(' ').unwrap_or((rest, ""));
            let (host, _) = address.rsplit_once(':').unwrap();
            let port = free_port();
            ports.push(port);
            text.push_str(&format!("    bind {host}:{port} {options}\n"));
        } else if trimmed.starts_with("server-template") {
            text.push_str(&format!("    server w1 127.0.0.1:{}\n", free_port()));
        } else if trimmed == "parse-resolv-conf" {
            text.push_str(&format!("    nameserver local 127.0.0.1:{}\n", free_port()));
        } else {
            text.push_str(line);
            text.push('\n');
        }
    }
    let dir = common::scratch("lb-ipv6");
    std::fs::write(dir.join("haproxy.cfg"), &text).unwrap();
    let mut child = Command::new(&bin)
        .args(["-db", "-f"])
        .arg(dir.join("haproxy.cfg"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let reachable = |host: &str, port: u16| std::net::TcpStream::connect((host, port)).is_ok();
    let up = wait_until(10 * SECOND, || ports.iter().all(|p| reachable("::1", *p)));
    let v4 = ports.iter().all(|p| reachable("127.0.0.1", *p));
    let _ = child.kill();
    let _ = child.wait();
    assert!(up, "not every frontend answers on [::1]: {ports:?}\n{text}");
    assert!(v4, "not every frontend answers on 127.0.0.1");
}
