//! Linker arguments that make the `cdylib` of this crate the export driver `xen.sys`, with
//! a `.def` generated from `xen_include::api` (`def.rs`): `DllInitialize` and `DllUnload`
//! `PRIVATE` (kept out of import libraries: the kernel's loader calls them), then every
//! declared API function (a declared function xen.sys does not define fails the link).
include!("../common/sys_build.rs");
include!("def.rs");

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=def.rs");
    println!("cargo:rerun-if-changed=../common/sys_build.rs");
    if linking_kernel_image() {
        let def = def_text(
            xen_include::api::PRIVATE_EXPORT_NAMES,
            xen_include::api::EXPORT_NAMES,
        );
        link_kernel_image("xen.def", &def);
    }
}
