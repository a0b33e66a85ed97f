//! The Xen public ABI as an x86_64 HVM guest sees it, one module per header of Xen's
//! `xen/include/public` (names follow the C files: `xen.h` → [`xen`], `io/xs_wire.h` →
//! [`io::xs_wire`], …).

pub mod abi;
pub mod cpuid;
pub mod errno;
pub mod event_channel;
pub mod features;
pub mod grant_table;
pub mod hvm;
pub mod io;
pub mod memory;
pub mod sched;
pub mod vcpu;
pub mod version;
#[allow(clippy::module_inception)]
pub mod xen;

use abi::{AbiConstant, StructLayout};

/// Every header module, with its C header path (relative to `/usr/include/xen` or Xen's
/// `public/`), the layouts of its structs and its constants: the single list the C conformance
/// probe is generated from.
pub const HEADERS: &[AbiHeader] = &[
    AbiHeader {
        c_header: "xen.h",
        layouts: xen::LAYOUTS,
        constants: xen::CONSTANTS,
    },
    AbiHeader {
        c_header: "errno.h",
        layouts: &[],
        constants: errno::CONSTANTS,
    },
    AbiHeader {
        c_header: "arch-x86/cpuid.h",
        layouts: &[],
        constants: cpuid::CONSTANTS,
    },
    AbiHeader {
        c_header: "memory.h",
        layouts: memory::LAYOUTS,
        constants: memory::CONSTANTS,
    },
    AbiHeader {
        c_header: "event_channel.h",
        layouts: event_channel::LAYOUTS,
        constants: event_channel::CONSTANTS,
    },
    AbiHeader {
        c_header: "grant_table.h",
        layouts: grant_table::LAYOUTS,
        constants: grant_table::CONSTANTS,
    },
    AbiHeader {
        c_header: "sched.h",
        layouts: sched::LAYOUTS,
        constants: sched::CONSTANTS,
    },
    AbiHeader {
        c_header: "version.h",
        layouts: version::LAYOUTS,
        constants: version::CONSTANTS,
    },
    AbiHeader {
        c_header: "vcpu.h",
        layouts: vcpu::LAYOUTS,
        constants: vcpu::CONSTANTS,
    },
    AbiHeader {
        c_header: "features.h",
        layouts: &[],
        constants: features::CONSTANTS,
    },
    AbiHeader {
        c_header: "hvm/params.h",
        layouts: &[],
        constants: hvm::params::CONSTANTS,
    },
    AbiHeader {
        c_header: "hvm/hvm_op.h",
        layouts: hvm::hvm_op::LAYOUTS,
        constants: hvm::hvm_op::CONSTANTS,
    },
    AbiHeader {
        c_header: "hvm/hvm_info_table.h",
        layouts: hvm::hvm_info_table::LAYOUTS,
        constants: hvm::hvm_info_table::CONSTANTS,
    },
    AbiHeader {
        c_header: "io/xs_wire.h",
        layouts: io::xs_wire::LAYOUTS,
        constants: io::xs_wire::CONSTANTS,
    },
    AbiHeader {
        c_header: "io/xenbus.h",
        layouts: &[],
        constants: io::xenbus::CONSTANTS,
    },
    AbiHeader {
        c_header: "io/console.h",
        layouts: io::console::LAYOUTS,
        constants: io::console::CONSTANTS,
    },
];

/// One Xen public header: its path and what of it this crate mirrors.
#[derive(Clone, Copy, Debug)]
pub struct AbiHeader {
    /// Path of the C header, relative to the `xen/` include directory.
    pub c_header: &'static str,
    /// Every struct mirrored from it.
    pub layouts: &'static [StructLayout],
    /// Every constant mirrored from it.
    pub constants: &'static [&'static [AbiConstant]],
}
