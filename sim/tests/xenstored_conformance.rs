//! Conformance of the simulated xenstored with Debian's real C xenstored (Xen 4.17): every
//! scripted case in `support/cases.xs` runs against both, each on a fresh daemon, and the
//! transcripts (every message every connection received, normalised only for transaction
//! ids) must be identical. Guest cases use a real shared ring page on both sides. A missing
//! real daemon is a failure, never a skip.

/// Heap use above DISPATCH_LEVEL panics, as pool use there bug-checks a real kernel.
#[global_allocator]
static ALLOCATOR: common::irql::model::CheckingAllocator =
    common::irql::model::CheckingAllocator::SYSTEM;

mod support;

use std::time::{Duration, Instant};

use support::harness::{self, RealTarget, SimTarget};
use support::realxs::{self, RealDaemon};

const CASES: &str = include_str!("support/cases.xs");
/// Random request sequences (fixed seeds) compared in addition to the scripted cases.
const RANDOM_CASES: u64 = 60;

#[test]
fn simulator_matches_real_xenstored() {
    if let Err(e) = realxs::provision() {
        panic!("FAILURE (not a skip): the real xenstored is unavailable: {e}");
    }
    let root = realxs::scratch_root();
    let shim = realxs::build_shim(&root).unwrap_or_else(|e| panic!("FAILURE: shim: {e}"));
    let mut cases = harness::parse(CASES).unwrap_or_else(|e| panic!("bad script: {e}"));
    // Differential random sequences on top of the scripted cases.
    let random: u64 = std::env::var("XSCONF_RANDOM")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(RANDOM_CASES);
    for seed in 1..=random {
        cases.push(harness::random_case(seed, 60));
    }
    // The same kind of sequences under tight quotas (nodes, watches, transactions, node
    // size, permissions), so that quota accounting is compared too.
    for seed in 1..=random / 2 {
        let mut c = harness::random_case(10_000 + seed, 60);
        c.name = format!("{} with tight quotas", c.name);
        c.args = ["-E", "9", "-W", "3", "-t", "1", "-S", "120", "-A", "2"]
            .map(String::from)
            .to_vec();
        cases.push(c);
    }
    if let Ok(probe) = std::env::var("XSCONF_PROBE") {
        // Debug aid: a random case cut after N steps, then extra script lines.
        let (seed, rest) = probe.split_once(':').unwrap_or((&probe, ""));
        let (n, extra) = rest.split_once(':').unwrap_or((rest, ""));
        let mut c = harness::random_case(seed.parse().unwrap_or(1), 60);
        c.steps.truncate(n.parse().unwrap_or(usize::MAX));
        let tail = harness::parse(&format!("case x\n{}", extra.replace('|', "\n"))).unwrap();
        c.steps.extend(tail[0].steps.clone());
        c.name = "probe".into();
        cases.push(c);
    }
    let filter = std::env::var("XSCONF_CASE").ok();
    let started = Instant::now();
    let timeout = Duration::from_secs(3);
    let mut ran = 0;
    let mut differences = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        if filter.as_deref().is_some_and(|f| !case.name.contains(f)) {
            continue;
        }
        let dir = root.join(format!("c{i}"));
        let daemon = RealDaemon::start(&shim, &dir, &case.args, &case.domains)
            .unwrap_or_else(|e| panic!("FAILURE: starting the real xenstored: {e}"));
        let mut real = RealTarget::new(daemon);
        let real_t = harness::run_case(case, &mut real, timeout);
        let alive = real.daemon.alive();
        let log =
            std::fs::read_to_string(real.daemon.dir.join("xenstored.log")).unwrap_or_default();
        drop(real);
        let mut sim = SimTarget::new(case);
        let sim_t = harness::run_case(case, &mut sim, timeout);
        ran += 1;
        if std::env::var("XSCONF_VERBOSE").is_ok() {
            println!("--- {}\n{}", case.name, real_t.join("\n"));
        }
        assert!(
            alive,
            "the real xenstored died during case '{}':\n{}\nlog:\n{log}",
            case.name,
            real_t.join("\n")
        );
        if real_t != sim_t {
            // From the first difference on: a few lines of context, then both sides.
            let first = real_t
                .iter()
                .zip(&sim_t)
                .position(|(r, s)| r != s)
                .unwrap_or(real_t.len().min(sim_t.len()));
            let mut report = format!("case '{}' (first difference at line {first}):\n", case.name);
            for line in &real_t[first.saturating_sub(6)..first] {
                report.push_str(&format!("    {line}\n"));
            }
            for k in first..(first + 8) {
                let r = real_t.get(k).map(String::as_str).unwrap_or("<none>");
                let s = sim_t.get(k).map(String::as_str).unwrap_or("<none>");
                report.push_str(&format!("  real: {r}\n  sim:  {s}\n"));
            }
            differences.push(report);
        }
    }
    let mut report = format!(
        "xenstored conformance: {ran} cases run against the simulator and the real xenstored \
         4.17 in {:.1}s; {} with differences\n",
        started.elapsed().as_secs_f64(),
        differences.len()
    );
    for d in &differences {
        report.push_str(d);
        report.push('\n');
    }
    // The report is kept next to the scratch directories (cargo captures test output).
    let _ = std::fs::write(root.join("report.txt"), &report);
    println!("{report}");
    if filter.is_none() {
        assert!(ran >= 80, "only {ran} cases");
    }
    assert!(differences.is_empty(), "{} cases differ", differences.len());
}

/// Debian's stock tools (`xenstore-ls`, `-read`, `-write`, `-rm`, `-chmod`, `-watch`) work
/// against the simulator's Unix socket and list a domain tree built by the toolstack.
#[test]
fn stock_xenstore_tools_work_against_the_simulator_socket() {
    use std::process::Command;
    use std::sync::{Arc, Mutex};
    use xen_sim::toolstack::{DomainConfig, NoGrants, Toolstack};
    use xen_sim::xenstored::socket::SocketServer;
    use xen_sim::xenstored::Xenstored;

    if let Err(e) = realxs::provision() {
        panic!("FAILURE (not a skip): stock xenstore tools unavailable: {e}");
    }
    let dir = realxs::scratch_root().join("tools");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let sock = dir.join("socket");
    // Build a domain with the toolstack, then serve that store.
    let shared = Arc::new(Mutex::new(Xenstored::default()));
    let mut ts = Toolstack::new(&shared, Box::new(NoGrants::default()));
    ts.create_domain(&DomainConfig::new(5)).unwrap();
    drop(ts);
    let store = std::mem::take(&mut *shared.lock().unwrap());
    let server = SocketServer::start(&sock, store).unwrap();
    let tool = |args: &[&str]| -> String {
        let out = Command::new(args[0])
            .args(&args[1..])
            .env("XENSTORED_PATH", &sock)
            .output()
            .unwrap_or_else(|e| panic!("{}: {e}", args[0]));
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let ls = tool(&["xenstore-ls", "-f", "/local/domain/5"]);
    for line in [
        "/local/domain/5/name = \"win-guest-5\"",
        "/local/domain/5/domid = \"5\"",
        "/local/domain/5/memory/static-max = \"2097152\"",
        "/local/domain/5/memory/target = \"2097152\"",
        "/local/domain/5/memory/videoram = \"8192\"",
        "/local/domain/5/control/shutdown = \"\"",
    ] {
        assert!(ls.contains(line), "missing {line} in:\n{ls}");
    }
    let perms = tool(&["xenstore-ls", "-p", "/local/domain/5/control"]);
    assert!(
        perms.contains("shutdown = \"\"") && perms.contains("(n5)"),
        "{perms}"
    );
    tool(&["xenstore-write", "/local/domain/5/data/k", "v1"]);
    assert_eq!(
        tool(&["xenstore-read", "/local/domain/5/data/k"]).trim(),
        "v1"
    );
    tool(&["xenstore-chmod", "/local/domain/5/data/k", "n5", "r0"]);
    let watch = std::thread::spawn({
        let sock = sock.clone();
        move || {
            Command::new("timeout")
                .args(["5", "xenstore-watch", "-n", "3", "/local/domain/5/data"])
                .env("XENSTORED_PATH", &sock)
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                .unwrap_or_default()
        }
    });
    std::thread::sleep(std::time::Duration::from_millis(500));
    tool(&["xenstore-write", "/local/domain/5/data/k", "v2"]);
    tool(&["xenstore-rm", "/local/domain/5/data/k"]);
    let seen = watch.join().unwrap();
    assert_eq!(
        seen.lines().collect::<Vec<_>>(),
        [
            "/local/domain/5/data",
            "/local/domain/5/data/k",
            "/local/domain/5/data/k"
        ],
        "xenstore-watch output"
    );
    server.stop();
}
