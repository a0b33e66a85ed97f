//! Conformance of the simulated xenstored with Debian's real C xenstored (Xen 4.17): every
//! scripted case in `support/cases.xs` runs against both, each on a fresh daemon, and the
//! transcripts (every message every connection received, normalised only for transaction
//! ids) must be identical. Guest cases use a real shared ring page on both sides. A missing
//! real daemon is a failure, never a skip.

mod support;

use std::time::{Duration, Instant};

use support::harness::{self, RealTarget, SimTarget};
use support::realxs::{self, RealDaemon};

const CASES: &str = include_str!("support/cases.xs");

#[test]
fn simulator_matches_real_xenstored() {
    if let Err(e) = realxs::provision() {
        panic!("FAILURE (not a skip): the real xenstored is unavailable: {e}");
    }
    let root = realxs::scratch_root();
    let shim = realxs::build_shim(&root).unwrap_or_else(|e| panic!("FAILURE: shim: {e}"));
    let cases = harness::parse(CASES).unwrap_or_else(|e| panic!("bad script: {e}"));
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
        drop(real);
        let mut sim = SimTarget::new(case);
        let sim_t = harness::run_case(case, &mut sim, timeout);
        ran += 1;
        if std::env::var("XSCONF_VERBOSE").is_ok() {
            println!("--- {}\n{}", case.name, real_t.join("\n"));
        }
        assert!(alive, "the real xenstored died during case '{}'", case.name);
        if real_t != sim_t {
            let mut report = format!("case '{}':\n", case.name);
            let n = real_t.len().max(sim_t.len());
            for k in 0..n {
                let r = real_t.get(k).map(String::as_str).unwrap_or("<none>");
                let s = sim_t.get(k).map(String::as_str).unwrap_or("<none>");
                if r == s {
                    report.push_str(&format!("    {r}\n"));
                } else {
                    report.push_str(&format!("  real: {r}\n  sim:  {s}\n"));
                }
            }
            differences.push(report);
        }
    }
    println!(
        "xenstored conformance: {ran} cases run against the simulator and the real xenstored \
         4.17 in {:.1}s; {} with differences",
        started.elapsed().as_secs_f64(),
        differences.len()
    );
    for d in &differences {
        println!("{d}");
    }
    if filter.is_none() {
        assert!(ran >= 80, "only {ran} cases");
    }
    assert!(differences.is_empty(), "{} cases differ", differences.len());
}
