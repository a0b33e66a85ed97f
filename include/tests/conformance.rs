//! Layout conformance of the Xen public ABI against Debian's `libxen-dev` headers.
//!
//! A C probe is generated from `xen_include::xen::HEADERS` (every struct: size, alignment, every
//! field's offset and size; every constant's value) plus the `xsd_errors[]` table, compiled with
//! gcc against the real headers, run, and its output compared with what Rust computes. The
//! headers are installed with `apt-get` when missing (as root); if that is impossible the test
//! fails — it never skips.

mod conformance_probe;

use conformance_probe::{compare, run_probe, Probe};
use xen_include::xen::abi::{AbiConstant, AbiValue};
use xen_include::xen::event_channel::EvtchnOp;
use xen_include::xen::io::xs_wire::XSD_ERRORS;
use xen_include::xen::HEADERS;
use xen_include::{abi_constants, abi_structs};

/// The probe of every header this crate mirrors.
fn full_probe() -> Probe {
    let mut probe = Probe::new("xen_abi");
    for header in HEADERS {
        probe.include(header.c_header);
        for layout in header.layouts {
            probe.layout(layout);
        }
        for list in header.constants {
            for constant in *list {
                probe.constant(constant);
            }
        }
    }
    for (index, entry) in XSD_ERRORS.iter().enumerate() {
        probe.xsd_error(index, entry.errnum.0, entry.errstring);
    }
    probe
}

#[test]
fn rust_abi_matches_libxen_dev_headers() {
    let probe = full_probe();
    assert!(
        probe.fact_count() > 500,
        "the probe covers too little: {} facts",
        probe.fact_count()
    );
    let actual = run_probe(&probe);
    let mismatches = compare(&probe, &actual);
    assert!(
        mismatches.is_empty(),
        "the Rust ABI differs from the C headers in {} place(s):\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
    // Every header of the list contributed something the C side confirmed.
    for header in HEADERS {
        assert!(
            !header.layouts.is_empty() || !header.constants.is_empty(),
            "{} mirrors nothing",
            header.c_header
        );
    }
}

/// Deliberately wrong mirrors of real C types: the probe must report each error.
mod wrong {
    use super::*;

    abi_structs! {
        /// `struct evtchn_alloc_unbound` with `port` declared 16-bit (C: `uint32_t`).
        #[c("struct evtchn_alloc_unbound", size = 6, align = 2)]
        pub struct NarrowPort {
            @0 pub dom: u16,
            @2 pub remote_dom: u16,
            @4 pub port: u16,
        }

        /// `struct xen_hvm_param` with `index` declared 64-bit (C: `uint32_t` after `pad`).
        #[c("struct xen_hvm_param", size = 24, align = 8)]
        pub struct WideIndex {
            @0 pub domid: u16,
            @8 pub index: u64,
            @16 pub value: u64,
        }
    }

    pub const CONSTANTS: &[AbiConstant] = abi_constants![
        // C: 4.
        "EVTCHNOP_send" => EvtchnOp::SEND.0 + 1,
        // C: 1024.
        "XENSTORE_RING_SIZE" => 2048,
    ];
}

#[test]
fn probe_catches_a_deliberately_wrong_layout() {
    let mut probe = Probe::new("xen_abi_wrong");
    probe.include("event_channel.h");
    probe.include("hvm/hvm_op.h");
    probe.include("io/xs_wire.h");
    for layout in wrong::LAYOUTS {
        probe.layout(layout);
    }
    for constant in wrong::CONSTANTS {
        probe.constant(constant);
    }
    probe.constant(&AbiConstant {
        c_expr: "XS_WRITE_CREATE",
        value: AbiValue::Str("CREATE|EXCL"),
    });
    probe.xsd_error(0, 22, "EINVAL");
    probe.xsd_error(1, 1, "EACCES");

    let actual = run_probe(&probe);
    let mismatches = compare(&probe, &actual);
    let report = mismatches.join("\n");
    let expected = [
        "struct evtchn_alloc_unbound: size: Rust 6, C 8",
        "struct evtchn_alloc_unbound: align: Rust 2, C 4",
        "struct evtchn_alloc_unbound.port: size: Rust 2, C 4",
        "struct xen_hvm_param: size: Rust 24, C 16",
        "struct xen_hvm_param.index: offset: Rust 8, C 4",
        "struct xen_hvm_param.index: size: Rust 8, C 4",
        "struct xen_hvm_param.value: offset: Rust 16, C 8",
        "constant EVTCHNOP_send: Rust 5, C 4",
        "constant XENSTORE_RING_SIZE: Rust 2048, C 1024",
        "constant XS_WRITE_CREATE: Rust \"CREATE|EXCL\", C \"CREATE\"",
        "xsd_errors[1]: Rust 1 EACCES, C 13 EACCES",
    ];
    assert_eq!(
        mismatches,
        expected.map(String::from).to_vec(),
        "the probe must report exactly the planted errors, in order; full report:\n{report}"
    );
    // The matching facts of the same probe were compared and agreed.
    assert!(actual.len() > mismatches.len());
}

/// The header a module file mirrors: `src/xen/io/xs_wire.rs` → `io/xs_wire.h`.
fn header_of(relative: &std::path::Path) -> String {
    let stem = relative.with_extension("");
    let name = stem.to_string_lossy().replace('\\', "/");
    match name.as_str() {
        "cpuid" => "arch-x86/cpuid.h".to_string(),
        other => format!("{other}.h"),
    }
}

/// Every `.rs` file under `dir`.
fn rust_files(dir: &std::path::Path, files: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read the source directory") {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            rust_files(&path, files);
        } else if path.extension().is_some_and(|extension| extension == "rs") {
            files.push(path);
        }
    }
}

/// Guards the "one list" rule: every header module is in `HEADERS`, and every open enum a
/// module declares contributes its `C_CONSTANTS` to the module's `CONSTANTS`, so nothing
/// declared in `src/xen` escapes the probe.
#[test]
fn every_abi_definition_is_probed() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/xen");
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    files.sort();
    let mut checked_enums = 0;
    for file in &files {
        let relative = file.strip_prefix(&root).expect("under src/xen");
        let file_name = relative.file_name().and_then(|name| name.to_str());
        if matches!(file_name, Some("mod.rs" | "abi.rs")) {
            continue;
        }
        let header = header_of(relative);
        assert!(
            HEADERS.iter().any(|entry| entry.c_header == header),
            "{} mirrors {header}, which is missing from xen_include::xen::HEADERS",
            relative.display()
        );
        let source = std::fs::read_to_string(file).expect("read module source");
        let mut rest = source.as_str();
        while let Some(start) = rest.find("open_enum! {") {
            rest = &rest[start..];
            let declaration = rest
                .find("pub struct ")
                .map(|at| &rest[at + "pub struct ".len()..])
                .expect("an open enum declares a struct");
            let name: String = declaration
                .chars()
                .take_while(|character| character.is_alphanumeric() || *character == '_')
                .collect();
            assert!(
                source.contains(&format!("{name}::C_CONSTANTS")),
                "{}: open enum {name} is not in the module's CONSTANTS",
                relative.display()
            );
            checked_enums += 1;
            rest = &rest["open_enum! {".len()..];
        }
    }
    assert!(
        checked_enums >= 20,
        "only {checked_enums} open enums found: scan broken?"
    );
}
