//! `version.h`: `XENVER_*` queries — version number, extra version string, features.

use super::abi::AbiConstant;
use super::xen::XenUlong;
use crate::{abi_constants, abi_structs, open_enum};

open_enum! {
    /// `xen_version` sub-operation (`XENVER_*`).
    pub struct XenVersionOp(u32) {
        /// Returns `(major << 16) | minor`.
        VERSION = 0 => "XENVER_version",
        /// Fills a [`XenExtraversion`].
        EXTRAVERSION = 1 => "XENVER_extraversion",
        /// Fills a [`XenCompileInfo`].
        COMPILE_INFO = 2 => "XENVER_compile_info",
        /// Capabilities string.
        CAPABILITIES = 3 => "XENVER_capabilities",
        /// Changeset string.
        CHANGESET = 4 => "XENVER_changeset",
        /// Fills a [`XenPlatformParameters`].
        PLATFORM_PARAMETERS = 5 => "XENVER_platform_parameters",
        /// Fills a [`XenFeatureInfo`].
        GET_FEATURES = 6 => "XENVER_get_features",
        /// Returns the page size.
        PAGESIZE = 7 => "XENVER_pagesize",
        /// Guest handle.
        GUEST_HANDLE = 8 => "XENVER_guest_handle",
        /// Hypervisor command line.
        COMMANDLINE = 9 => "XENVER_commandline",
        /// Build id.
        BUILD_ID = 10 => "XENVER_build_id",
    }
}

/// Length of the extra version string (`XEN_EXTRAVERSION_LEN`).
pub const XEN_EXTRAVERSION_LEN: usize = 16;
/// Length of the capabilities string (`XEN_CAPABILITIES_INFO_LEN`).
pub const XEN_CAPABILITIES_INFO_LEN: usize = 1024;
/// Length of the changeset string (`XEN_CHANGESET_INFO_LEN`).
pub const XEN_CHANGESET_INFO_LEN: usize = 64;

/// The extra version string, e.g. `.7` (`xen_extraversion_t`, NUL-padded).
pub type XenExtraversion = [u8; XEN_EXTRAVERSION_LEN];

/// The major number of a `XENVER_version` result.
pub const fn version_major(version: u32) -> u16 {
    (version >> 16) as u16
}

/// The minor number of a `XENVER_version` result.
pub const fn version_minor(version: u32) -> u16 {
    (version & 0xFFFF) as u16
}

abi_structs! {
    /// `XENVER_compile_info`.
    #[c("struct xen_compile_info", size = 144, align = 1)]
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct XenCompileInfo {
        /// Compiler.
        @0 pub compiler: [u8; 64],
        /// Built by.
        @64 pub compile_by: [u8; 16],
        /// Build domain.
        @80 pub compile_domain: [u8; 32],
        /// Build date.
        @112 pub compile_date: [u8; 32],
    }

    /// `XENVER_platform_parameters`.
    #[c("struct xen_platform_parameters", size = 8, align = 8)]
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct XenPlatformParameters {
        /// Start of the hypervisor's virtual address range.
        @0 pub virt_start: XenUlong,
    }

    /// `XENVER_get_features`: one 32-bit word of the `XENFEAT_*` bitmap.
    #[c("struct xen_feature_info", size = 8, align = 4)]
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct XenFeatureInfo {
        /// IN: which 32-bit word.
        @0 pub submap_idx: u32,
        /// OUT: the word.
        @4 pub submap: u32,
    }
}

/// Every constant of `version.h`, for the C conformance probe.
pub const CONSTANTS: &[&[AbiConstant]] = &[
    XenVersionOp::C_CONSTANTS,
    abi_constants![
        "XEN_EXTRAVERSION_LEN" => XEN_EXTRAVERSION_LEN,
        "XEN_CAPABILITIES_INFO_LEN" => XEN_CAPABILITIES_INFO_LEN,
        "XEN_CHANGESET_INFO_LEN" => XEN_CHANGESET_INFO_LEN,
        "sizeof(xen_extraversion_t)" => core::mem::size_of::<XenExtraversion>(),
    ],
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_number_splits() {
        assert_eq!(version_major(0x0004_0011), 4);
        assert_eq!(version_minor(0x0004_0011), 17);
    }
}
