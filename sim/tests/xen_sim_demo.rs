//! `xen-sim demo` shows, from the guest's side, its XenStore tree, an event delivery, a
//! grant mapped by the backend and a suspend/resume.

/// Heap use above DISPATCH_LEVEL panics, as pool use there bug-checks a real kernel.
#[global_allocator]
static ALLOCATOR: common::irql::model::CheckingAllocator =
    common::irql::model::CheckingAllocator::SYSTEM;

#[test]
fn demo_shows_what_the_guest_sees() {
    let mut out = Vec::new();
    xen_sim::demo::run(&mut out).expect("demo runs");
    let text = String::from_utf8(out).unwrap();
    for needle in [
        "  name = \"win-guest-1\"   (n0 r1)",
        "    static-max = \"2097152\"   (n0 r1)",
        "    shutdown = \"\"   (n1)",
        "/local/domain/0 = <EACCES>",
        "guest ring: WATCH_EVENT path \"memory/target\" token \"balloon\"",
        "guest reads memory/target = 1048576",
        "backend: mapped 2 grants, state 4",
        "-> 0x0019 (permit_access|reading|writing)",
        "SCHEDOP_shutdown(suspend) returned 0 (resumed on a new host)",
        "suspends so far: 1",
        "after resume: \"win-guest-1\"",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
}
