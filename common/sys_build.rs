// Shared by the build scripts of xen, xenbus and xenfilt (`include!`d): the linker
// arguments that turn a driver crate's `cdylib` into a kernel image, only for the Windows
// target with the crate's `sys` feature (host builds stay plain rlibs for the tests).

/// True when this build links the kernel image (`--target x86_64-pc-windows-msvc
/// --features sys`).
fn linking_kernel_image() -> bool {
    let windows = std::env::var("CARGO_CFG_TARGET_OS").is_ok_and(|os| os == "windows");
    windows && std::env::var_os("CARGO_FEATURE_SYS").is_some()
}

/// Write `def` (the module-definition text fixing the export table) to OUT_DIR and pass
/// it with the kernel-driver linker arguments.
fn link_kernel_image(def_name: &str, def: &str) {
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR"));
    let path = out.join(def_name);
    std::fs::write(&path, def).expect("write .def");
    for arg in [
        "/DRIVER",
        "/NODEFAULTLIB",
        "/SUBSYSTEM:NATIVE",
        "/ENTRY:DriverEntry",
        "/NXCOMPAT",
        "/DYNAMICBASE",
        "/INTEGRITYCHECK",
        "/RELEASE",
        // The kernel ignores the stack sizes of a driver (every kernel stack is 24 KiB on
        // x64); recording that size lets an emulator give the entry points a realistic stack.
        "/STACK:0x6000,0x6000",
    ] {
        println!("cargo:rustc-link-arg={arg}");
    }
    println!("cargo:rustc-link-arg=/DEF:{}", path.display());
}
