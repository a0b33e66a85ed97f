// The xen.sys `.def` text, shared by xen/build.rs (which links with it) and xtask (which
// writes it into the package for C consumers).

/// The `.def` text: `LIBRARY xen.sys`, the loader's entry points PRIVATE (kept out of import
/// libraries), then every API function declared in `xen_include::api::EXPORT_NAMES`.
pub fn def_text(private: &[&str], api: &[&str]) -> String {
    let mut text = String::from("LIBRARY xen.sys\nEXPORTS\n");
    for name in private {
        text.push_str(&format!("    {name} PRIVATE\n"));
    }
    for name in api {
        text.push_str(&format!("    {name}\n"));
    }
    text
}
