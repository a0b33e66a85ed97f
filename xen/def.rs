// The xen.sys export list and `.def` text, shared by xen/build.rs (which links with it)
// and xtask verify (which checks the linked export table against it).
//
// The API is declared in `xen_include::api::EXPORT_NAMES`; xen.sys exports each declared
// name it defines (a `no_mangle` `extern "system"` fn, or a `.globl` symbol of a
// `global_asm!` shim for the C-variadic exports).

/// Names of `no_mangle` `extern "system"` functions and `global_asm!` `.globl` symbols in
/// the `.rs` files under `dir`, sorted: what xen.sys defines for export.
pub fn collect_exports(dir: &std::path::Path) -> Vec<String> {
    let mut names = Vec::new();
    collect_into(dir, &mut names);
    names.sort();
    names.dedup();
    names
}

fn collect_into(dir: &std::path::Path, names: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_into(&path, names);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let mut marked = false;
            for line in text.lines().map(str::trim) {
                if let Some(rest) = line
                    .strip_prefix("\".globl ")
                    .or_else(|| line.strip_prefix("\".global "))
                {
                    let name: String = rest
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect();
                    names.push(name);
                }
                if line == "#[no_mangle]" || line == "#[unsafe(no_mangle)]" {
                    marked = true;
                } else if marked && line.contains("extern \"system\" fn ") {
                    if let Some(rest) = line.split("extern \"system\" fn ").nth(1) {
                        let name: String = rest
                            .chars()
                            .take_while(|c| c.is_alphanumeric() || *c == '_')
                            .collect();
                        names.push(name);
                    }
                    marked = false;
                } else if !line.starts_with("#[") && !line.starts_with("///") {
                    marked = false;
                }
            }
        }
    }
}

/// The API exported by name: the declared names that xen.sys defines, in declaration order.
pub fn api_exports(defined: &[String], declared: &[&str]) -> Vec<String> {
    declared
        .iter()
        .filter(|name| defined.iter().any(|d| d == *name))
        .map(|name| name.to_string())
        .collect()
}

/// Names xen.sys defines for export that the API does not declare (a mistake: they would
/// silently stay unexported).
pub fn undeclared_exports(defined: &[String], declared: &[&str]) -> Vec<String> {
    defined
        .iter()
        .filter(|n| !matches!(n.as_str(), "DriverEntry" | "DllInitialize" | "DllUnload"))
        .filter(|n| !declared.contains(&n.as_str()))
        .cloned()
        .collect()
}

/// The `.def` text: `LIBRARY xen.sys`, `DllInitialize`/`DllUnload` PRIVATE, then the API.
pub fn def_text(api: &[String]) -> String {
    let mut text = String::from(
        "LIBRARY xen.sys\nEXPORTS\n    DllInitialize PRIVATE\n    DllUnload PRIVATE\n",
    );
    for name in api {
        text.push_str("    ");
        text.push_str(name);
        text.push('\n');
    }
    text
}
