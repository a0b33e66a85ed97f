//! Linker arguments that make the `cdylib` of this crate the export driver `xen.sys`, with
//! a `.def` generated from `xen_include::api::EXPORT_NAMES` (`def.rs`): `DllInitialize` and
//! `DllUnload` `PRIVATE` (kept out of import libraries: the kernel's loader calls them),
//! then each declared API function xen.sys defines.
include!("../common/sys_build.rs");
include!("def.rs");

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=def.rs");
    println!("cargo:rerun-if-changed=../common/sys_build.rs");
    println!("cargo:rerun-if-changed=src");
    if linking_kernel_image() {
        let defined = collect_exports(std::path::Path::new("src"));
        let declared = xen_include::api::EXPORT_NAMES;
        for name in undeclared_exports(&defined, declared) {
            println!(
                "cargo:warning=xen.sys defines {name} but include/src/api.rs does not declare it"
            );
        }
        link_kernel_image("xen.def", &def_text(&api_exports(&defined, declared)));
    }
}
