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
