//! The worker's preStop drain, as generated, run under Debian's
//! `busybox sh` (the shell and applets of the Alpine-based worker images)
//! against a fake worker's real sockets: the kernel's own /proc/net/tcp and
//! /proc/net/tcp6 say whether a build connection is open.
//!
//! The script reads four overrides from the environment so that these tests
//! take seconds: POOLC_DRAIN_PORT (the port, as /proc prints it),
//! POOLC_DRAIN_INTERVAL (seconds between polls) and POOLC_DRAIN_SECONDS (its
//! bound); POOLC_DRAIN_TABLES is left at the real /proc files.

mod common;

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{documents, repo_fileset, tool};

/// The preStop script of the staging amd64 workers, and their grace period.
fn drain_script() -> (String, u64) {
    let set = repo_fileset();
    let docs = documents(set.get("staging/workers.yaml").unwrap());
    let deployment = docs
        .iter()
        .find(|d| d["kind"] == "Deployment")
        .expect("a worker Deployment");
    let pod = &deployment["spec"]["template"]["spec"];
    let command = &pod["containers"][0]["lifecycle"]["preStop"]["exec"]["command"];
    assert_eq!(command[0], "/bin/sh");
    assert_eq!(command[1], "-c");
    (
        command[2].as_str().unwrap().to_string(),
        pod["terminationGracePeriodSeconds"].as_u64().unwrap(),
    )
}

/// A build port with one build connection open, seen from the worker's side.
struct Build {
    port: u16,
    _listener: TcpListener,
    _client: TcpStream,
    worker_side: TcpStream,
}

fn open_build(listen: &str, connect: &str) -> Build {
    let listener = TcpListener::bind((listen, 0)).expect("listen");
    let port = listener.local_addr().unwrap().port();
    let client = TcpStream::connect((connect, port)).expect("connect");
    let (worker_side, _) = listener.accept().expect("accept");
    Build {
        port,
        _listener: listener,
        _client: client,
        worker_side,
    }
}

fn start_hook(busybox: &std::path::Path, script: &str, port: u16, bound: u64) -> Child {
    Command::new(busybox)
        .args(["sh", "-c", script])
        .env("POOLC_DRAIN_PORT", format!("{port:04X}"))
        .env("POOLC_DRAIN_INTERVAL", "1")
        .env("POOLC_DRAIN_SECONDS", bound.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run busybox sh")
}

/// Waits up to `timeout` for the hook to return; its run time if it did.
fn returned_within(hook: &mut Child, started: Instant, timeout: Duration) -> Option<Duration> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if hook.try_wait().unwrap().is_some() {
            return Some(started.elapsed());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

/// The bound is the grace period less a small margin, not a fixed drain.
#[test]
fn the_drain_is_bounded_by_the_grace_period_only() {
    let (script, grace) = drain_script();
    let bound: u64 = script
        .split("POOLC_DRAIN_SECONDS:-")
        .nth(1)
        .and_then(|rest| rest.split('}').next())
        .and_then(|n| n.parse().ok())
        .expect("the bound is overridable with POOLC_DRAIN_SECONDS");
    assert!(
        bound < grace && bound + 60 >= grace,
        "the drain gives up after {bound}s of a {grace}s grace period"
    );
}

/// The hook waits while the build connection is open, and returns soon
/// after it closes: over IPv4, over IPv6, and for an IPv4 client of a
/// dual-stack listener (an IPv4-mapped address in /proc/net/tcp6).
#[test]
fn the_drain_returns_only_when_the_build_connection_closes() {
    let Some(busybox) = tool("busybox", "apt-get install -y busybox") else {
        return;
    };
    let (script, _) = drain_script();
    for (what, listen, connect) in [
        ("IPv4", "127.0.0.1", "127.0.0.1"),
        ("IPv6", "::1", "::1"),
        ("IPv4-mapped", "::", "127.0.0.1"),
    ] {
        let build = open_build(listen, connect);
        let started = Instant::now();
        let mut hook = start_hook(&busybox, &script, build.port, 60);
        assert_eq!(
            returned_within(&mut hook, started, Duration::from_secs(4)),
            None,
            "{what}: the hook returned while a build was running"
        );
        build
            .worker_side
            .shutdown(std::net::Shutdown::Both)
            .unwrap();
        drop(build);
        // Two idle polls a second apart; generous for a loaded machine.
        let took = returned_within(&mut hook, started, Duration::from_secs(20))
            .unwrap_or_else(|| panic!("{what}: the hook did not return after the build ended"));
        assert!(took >= Duration::from_secs(4), "{what}: {took:?}");
        assert!(hook.wait().unwrap().success(), "{what}: the hook failed");
    }
}

/// No build: the hook returns after two idle polls, long before its bound.
#[test]
fn an_idle_worker_drains_at_once() {
    let Some(busybox) = tool("busybox", "apt-get install -y busybox") else {
        return;
    };
    let (script, _) = drain_script();
    let listener = TcpListener::bind(("127.0.0.1", 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    let started = Instant::now();
    let mut hook = start_hook(&busybox, &script, port, 600);
    let took = returned_within(&mut hook, started, Duration::from_secs(30))
        .expect("an idle worker's hook returns");
    assert!(took < Duration::from_secs(30), "{took:?}");
    assert!(hook.wait().unwrap().success());
}

/// A build that never ends: the hook gives up at its bound (counted in
/// whole seconds of `date +%s`), not before, and says so.
#[test]
fn the_drain_gives_up_at_its_bound() {
    let Some(busybox) = tool("busybox", "apt-get install -y busybox") else {
        return;
    };
    let (script, _) = drain_script();
    let build = open_build("127.0.0.1", "127.0.0.1");
    let started = Instant::now();
    let mut hook = start_hook(&busybox, &script, build.port, 4);
    let took = returned_within(&mut hook, started, Duration::from_secs(20))
        .expect("the hook returns at its bound");
    assert!(took >= Duration::from_secs(3), "{took:?}");
    let out = hook.wait_with_output().unwrap();
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("still running"),
        "{:?}",
        out
    );
}
