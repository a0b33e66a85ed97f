//! The rig guest: a bare-metal x86_64 HVM guest that runs the rig scenarios on the real Xen
//! hypervisor and reports structured result lines on port 0xE9 (shown by Xen as `(dN) …`).
//!
//! On the host this binary only explains itself: the scenarios are exercised against the
//! simulator by the scenario twins in the test suite.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
extern crate alloc;

#[cfg(target_os = "none")]
mod boot;
#[cfg(target_os = "none")]
mod platform;

#[cfg(target_os = "none")]
#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    platform::panic(info)
}

#[cfg(target_os = "none")]
#[unsafe(no_mangle)]
extern "C" fn rig_main() -> ! {
    platform::main()
}

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!("rig-guest is a bare-metal Xen HVM guest: build it with --target x86_64-unknown-none and run it with `cargo xtask rig`");
    std::process::exit(2);
}
