//! Linker arguments that make the `cdylib` of this crate the kernel image `xenbus.sys`.
include!("../common/sys_build.rs");

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=../common/sys_build.rs");
    if linking_kernel_image() {
        // No exports: DriverEntry is the entry point, not an export.
        link_kernel_image("xenbus.def", "LIBRARY xenbus.sys\nEXPORTS\n");
    }
}
