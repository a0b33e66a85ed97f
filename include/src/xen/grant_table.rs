//! `grant_table.h`: the v1 grant entry and its `GTF_*` flags, `GNTTABOP_*` operations with their
//! `GNTMAP_*` / `GNTCOPY_*` flags, and the `GNTST_*` status codes.

use super::abi::{AbiConstant, GuestHandle};
use super::xen::{DomId, XenPfn};
use crate::{abi_constants, abi_structs, open_enum};

/// A grant reference (`grant_ref_t`): an index into the grant table.
pub type GrantRef = u32;
/// A handle returned by `GNTTABOP_map_grant_ref` (`grant_handle_t`).
pub type GrantHandle = u32;

/// Grant references Xen reserves (`GNTTAB_NR_RESERVED_ENTRIES`).
pub const GNTTAB_NR_RESERVED_ENTRIES: u32 = 8;
/// The toolstack's grant of the console ring (`GNTTAB_RESERVED_CONSOLE`).
pub const GNTTAB_RESERVED_CONSOLE: GrantRef = 0;
/// The toolstack's grant of the xenstore ring (`GNTTAB_RESERVED_XENSTORE`).
pub const GNTTAB_RESERVED_XENSTORE: GrantRef = 1;
/// v1 entries per 4 KiB grant table frame.
pub const GNTTAB_V1_ENTRIES_PER_FRAME: u32 = 4096 / core::mem::size_of::<GrantEntryV1>() as u32;

bitflags::bitflags! {
    /// `grant_entry_v1.flags`: the entry type (bits 0..2) and state bits.
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
    pub struct GrantEntryFlags: u16 {
        /// Type: the grantee may map / access the frame (`GTF_permit_access`).
        const PERMIT_ACCESS = 1;
        /// Type: the grantee may transfer a frame to us (`GTF_accept_transfer`).
        const ACCEPT_TRANSFER = 2;
        /// Type: transitive grant (v2 only) (`GTF_transitive`).
        const TRANSITIVE = 3;
        /// Mask of the type field (`GTF_type_mask`).
        const TYPE_MASK = 3;
        /// Read-only access (`GTF_readonly`).
        const READONLY = 1 << 2;
        /// Set by Xen while the grantee has it mapped for reading (`GTF_reading`).
        const READING = 1 << 3;
        /// Set by Xen while the grantee has it mapped for writing (`GTF_writing`).
        const WRITING = 1 << 4;
        /// Write-through caching (`GTF_PWT`).
        const PWT = 1 << 5;
        /// Cache disable (`GTF_PCD`).
        const PCD = 1 << 6;
        /// PAT (`GTF_PAT`).
        const PAT = 1 << 7;
        /// v2 sub-page grant (`GTF_sub_page`).
        const SUB_PAGE = 1 << 8;
        /// Transfer: committed (`GTF_transfer_committed`, shares bit 2 with `READONLY`).
        const TRANSFER_COMMITTED = 1 << 2;
        /// Transfer: completed (`GTF_transfer_completed`, shares bit 3 with `READING`).
        const TRANSFER_COMPLETED = 1 << 3;
    }
}

impl GrantEntryFlags {
    /// Type field value `GTF_invalid`: no grant.
    pub const INVALID: Self = Self::empty();
}

bitflags::bitflags! {
    /// `gnttab_map_grant_ref.flags` (`GNTMAP_*`).
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
    pub struct GntMapFlags: u32 {
        /// Map for device (IOMMU) access (`GNTMAP_device_map`).
        const DEVICE_MAP = 1 << 0;
        /// Map at `host_addr` (a guest physical address for HVM) (`GNTMAP_host_map`).
        const HOST_MAP = 1 << 1;
        /// Map read-only (`GNTMAP_readonly`).
        const READONLY = 1 << 2;
        /// Application (user) mapping (`GNTMAP_application_map`).
        const APPLICATION_MAP = 1 << 3;
        /// `host_addr` is a PTE address (`GNTMAP_contains_pte`).
        const CONTAINS_PTE = 1 << 4;
        /// Bits available to the guest (`GNTMAP_guest_avail_mask`).
        const GUEST_AVAIL_MASK = 0xFFFF_0000;
    }
}

bitflags::bitflags! {
    /// `gnttab_copy.flags` (`GNTCOPY_*`).
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
    pub struct GntCopyFlags: u16 {
        /// `source.u` is a grant reference, not a frame (`GNTCOPY_source_gref`).
        const SOURCE_GREF = 1 << 0;
        /// `dest.u` is a grant reference, not a frame (`GNTCOPY_dest_gref`).
        const DEST_GREF = 1 << 1;
    }
}

bitflags::bitflags! {
    /// `gnttab_cache_flush.op` (`GNTTAB_CACHE_*`).
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
    pub struct GnttabCacheFlags: u32 {
        /// Clean (`GNTTAB_CACHE_CLEAN`).
        const CLEAN = 1 << 0;
        /// Invalidate (`GNTTAB_CACHE_INVAL`).
        const INVAL = 1 << 1;
        /// `a` is a grant reference (`GNTTAB_CACHE_SOURCE_GREF`).
        const SOURCE_GREF = 1 << 31;
    }
}

open_enum! {
    /// `grant_table_op` sub-operation (`GNTTABOP_*`).
    pub struct GnttabOp(u32) {
        /// Map a foreign grant.
        MAP_GRANT_REF = 0 => "GNTTABOP_map_grant_ref",
        /// Unmap a foreign grant.
        UNMAP_GRANT_REF = 1 => "GNTTABOP_unmap_grant_ref",
        /// Get the grant table frames (PV).
        SETUP_TABLE = 2 => "GNTTABOP_setup_table",
        /// Dump the table to the console.
        DUMP_TABLE = 3 => "GNTTABOP_dump_table",
        /// Transfer a frame.
        TRANSFER = 4 => "GNTTABOP_transfer",
        /// Copy between grants and/or frames.
        COPY = 5 => "GNTTABOP_copy",
        /// Current and maximum number of frames.
        QUERY_SIZE = 6 => "GNTTABOP_query_size",
        /// Unmap and replace with another mapping.
        UNMAP_AND_REPLACE = 7 => "GNTTABOP_unmap_and_replace",
        /// Select grant table version 1 or 2.
        SET_VERSION = 8 => "GNTTABOP_set_version",
        /// v2 status frames.
        GET_STATUS_FRAMES = 9 => "GNTTABOP_get_status_frames",
        /// Current grant table version.
        GET_VERSION = 10 => "GNTTABOP_get_version",
        /// Swap two grant entries.
        SWAP_GRANT_REF = 11 => "GNTTABOP_swap_grant_ref",
        /// Cache maintenance (Arm).
        CACHE_FLUSH = 12 => "GNTTABOP_cache_flush",
    }
}

open_enum! {
    /// Per-operation status of a grant table op (`GNTST_*`, `int16_t`).
    pub struct GrantStatus(i16) {
        /// Success.
        OKAY = 0 => "GNTST_okay",
        /// Undefined error.
        GENERAL_ERROR = -1 => "GNTST_general_error",
        /// Unrecognised domain id.
        BAD_DOMAIN = -2 => "GNTST_bad_domain",
        /// Invalid grant reference.
        BAD_GNTREF = -3 => "GNTST_bad_gntref",
        /// Invalid mapping handle.
        BAD_HANDLE = -4 => "GNTST_bad_handle",
        /// Invalid virtual address.
        BAD_VIRT_ADDR = -5 => "GNTST_bad_virt_addr",
        /// Invalid device address.
        BAD_DEV_ADDR = -6 => "GNTST_bad_dev_addr",
        /// No spare translation slot in the I/O MMU.
        NO_DEVICE_SPACE = -7 => "GNTST_no_device_space",
        /// Permission denied.
        PERMISSION_DENIED = -8 => "GNTST_permission_denied",
        /// Bad page.
        BAD_PAGE = -9 => "GNTST_bad_page",
        /// Copy arguments cross a page boundary.
        BAD_COPY_ARG = -10 => "GNTST_bad_copy_arg",
        /// Page address size too large.
        ADDRESS_TOO_BIG = -11 => "GNTST_address_too_big",
        /// Operation not done; try again.
        EAGAIN = -12 => "GNTST_eagain",
        /// Out of space.
        NO_SPACE = -13 => "GNTST_no_space",
    }
}

/// `GNTTABOP_error_msgs`, indexed by `-status`.
pub const GNTTABOP_ERROR_MESSAGES: [&str; 14] = [
    "okay",
    "undefined error",
    "unrecognised domain id",
    "invalid grant reference",
    "invalid mapping handle",
    "invalid virtual address",
    "invalid device address",
    "no spare translation slot in the I/O MMU",
    "permission denied",
    "bad page",
    "copy arguments cross page boundary",
    "page address size too large",
    "operation not done; try again",
    "out of space",
];

impl GrantStatus {
    /// The message `GNTTABOP_error_msgs` gives for this status, `None` for unknown codes.
    pub fn message(self) -> Option<&'static str> {
        let index = usize::try_from(-i32::from(self.0)).ok()?;
        GNTTABOP_ERROR_MESSAGES.get(index).copied()
    }
}

abi_structs! {
    /// A v1 grant table entry. The granting domain writes `domid` and `frame`, then (after a
    /// write barrier) `flags`; Xen sets `GTF_reading` / `GTF_writing` while the grant is in use.
    #[c("struct grant_entry_v1", size = 8, align = 4)]
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct GrantEntryV1 {
        /// [`GrantEntryFlags`] bits (accessed atomically as 16 bits).
        @0 pub flags: u16,
        /// The domain allowed to use the grant.
        @2 pub domid: DomId,
        /// The granted frame (32-bit: frames beyond 2^32 need v2).
        @4 pub frame: u32,
    }

    /// Header shared by v2 entries (`grant_entry_header_t`).
    #[c("struct grant_entry_header", size = 4, align = 2)]
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct GrantEntryHeader {
        /// [`GrantEntryFlags`] bits.
        @0 pub flags: u16,
        /// The domain allowed to use the grant.
        @2 pub domid: DomId,
    }

    /// `GNTTABOP_map_grant_ref`.
    #[c("struct gnttab_map_grant_ref", size = 32, align = 8)]
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct GnttabMapGrantRef {
        /// IN: where to map (guest physical address for an HVM `GNTMAP_host_map`).
        @0 pub host_addr: u64,
        /// IN: [`GntMapFlags`] bits.
        @8 pub flags: u32,
        /// IN: the grant reference.
        @12 as "ref" pub reference: GrantRef,
        /// IN: the granting domain.
        @16 pub dom: DomId,
        /// OUT: result.
        @18 pub status: GrantStatus,
        /// OUT: handle for unmapping.
        @20 pub handle: GrantHandle,
        /// OUT: bus address for `GNTMAP_device_map`.
        @24 pub dev_bus_addr: u64,
    }

    /// `GNTTABOP_unmap_grant_ref`.
    #[c("struct gnttab_unmap_grant_ref", size = 24, align = 8)]
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct GnttabUnmapGrantRef {
        /// IN: the mapping address.
        @0 pub host_addr: u64,
        /// IN: the device mapping address.
        @8 pub dev_bus_addr: u64,
        /// IN: handle from the map.
        @16 pub handle: GrantHandle,
        /// OUT: result.
        @20 pub status: GrantStatus,
    }

    /// `GNTTABOP_setup_table`.
    #[c("struct gnttab_setup_table", size = 24, align = 8)]
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct GnttabSetupTable {
        /// IN: the domain.
        @0 pub dom: DomId,
        /// IN: frames wanted.
        @4 pub nr_frames: u32,
        /// OUT: result.
        @8 pub status: GrantStatus,
        /// OUT: frame list.
        @16 pub frame_list: GuestHandle<XenPfn>,
    }

    /// `GNTTABOP_transfer`.
    #[c("struct gnttab_transfer", size = 24, align = 8)]
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct GnttabTransfer {
        /// IN: the frame given away.
        @0 pub mfn: XenPfn,
        /// IN: the receiving domain.
        @8 pub domid: DomId,
        /// IN: its accept-transfer grant.
        @12 as "ref" pub reference: GrantRef,
        /// OUT: result.
        @16 pub status: GrantStatus,
    }

    /// One side of a `GNTTABOP_copy` (`struct gnttab_copy_ptr`). `u` is the union
    /// `{ grant_ref_t ref; xen_pfn_t gmfn; }`: see [`GnttabCopyPtr::grant`] and
    /// [`GnttabCopyPtr::frame`].
    #[c("struct gnttab_copy_ptr", size = 16, align = 8)]
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct GnttabCopyPtr {
        /// The grant reference (low 32 bits) or frame, per `GNTCOPY_*_gref`.
        @0 pub u: u64,
        /// The domain owning the grant or frame.
        @8 pub domid: DomId,
        /// Byte offset within the page.
        @10 pub offset: u16,
    }

    /// `GNTTABOP_copy`.
    #[c("struct gnttab_copy", size = 40, align = 8)]
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct GnttabCopy {
        /// IN: source.
        @0 pub source: GnttabCopyPtr,
        /// IN: destination.
        @16 pub dest: GnttabCopyPtr,
        /// IN: bytes to copy (must not cross a page).
        @32 pub len: u16,
        /// IN: [`GntCopyFlags`] bits.
        @34 pub flags: u16,
        /// OUT: result.
        @36 pub status: GrantStatus,
    }

    /// `GNTTABOP_query_size`.
    #[c("struct gnttab_query_size", size = 16, align = 4)]
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct GnttabQuerySize {
        /// IN: the domain.
        @0 pub dom: DomId,
        /// OUT: frames in use.
        @4 pub nr_frames: u32,
        /// OUT: maximum frames.
        @8 pub max_nr_frames: u32,
        /// OUT: result.
        @12 pub status: GrantStatus,
    }

    /// `GNTTABOP_unmap_and_replace`.
    #[c("struct gnttab_unmap_and_replace", size = 24, align = 8)]
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct GnttabUnmapAndReplace {
        /// IN: the mapping to remove.
        @0 pub host_addr: u64,
        /// IN: the mapping to move there.
        @8 pub new_addr: u64,
        /// IN: handle from the map.
        @16 pub handle: GrantHandle,
        /// OUT: result.
        @20 pub status: GrantStatus,
    }

    /// `GNTTABOP_set_version`.
    #[c("struct gnttab_set_version", size = 4, align = 4)]
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct GnttabSetVersion {
        /// IN/OUT: 1 or 2.
        @0 pub version: u32,
    }

    /// `GNTTABOP_get_status_frames`.
    #[c("struct gnttab_get_status_frames", size = 16, align = 8)]
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct GnttabGetStatusFrames {
        /// IN: frames wanted.
        @0 pub nr_frames: u32,
        /// IN: the domain.
        @4 pub dom: DomId,
        /// OUT: result.
        @6 pub status: GrantStatus,
        /// OUT: frame list.
        @8 pub frame_list: GuestHandle<u64>,
    }

    /// `GNTTABOP_get_version`.
    #[c("struct gnttab_get_version", size = 8, align = 4)]
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct GnttabGetVersion {
        /// IN: the domain.
        @0 pub dom: DomId,
        /// Padding.
        @2 pub pad: u16,
        /// OUT: 1 or 2.
        @4 pub version: u32,
    }

    /// `GNTTABOP_swap_grant_ref`.
    #[c("struct gnttab_swap_grant_ref", size = 12, align = 4)]
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct GnttabSwapGrantRef {
        /// IN: first reference.
        @0 pub ref_a: GrantRef,
        /// IN: second reference.
        @4 pub ref_b: GrantRef,
        /// OUT: result.
        @8 pub status: GrantStatus,
    }

    /// `GNTTABOP_cache_flush`. `a` is the union `{ uint64_t dev_bus_addr; grant_ref_t ref; }`.
    #[c("struct gnttab_cache_flush", size = 16, align = 8)]
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct GnttabCacheFlush {
        /// IN: bus address, or grant reference (low 32 bits) with `SOURCE_GREF`.
        @0 pub a: u64,
        /// IN: byte offset.
        @8 pub offset: u16,
        /// IN: byte length.
        @10 pub length: u16,
        /// IN: [`GnttabCacheFlags`] bits.
        @12 pub op: u32,
    }
}

impl GrantEntryV1 {
    /// The entry's flags, with unknown bits preserved.
    pub const fn entry_flags(&self) -> GrantEntryFlags {
        GrantEntryFlags::from_bits_retain(self.flags)
    }
}

impl GnttabCopyPtr {
    /// A pointer to `offset` in the page granted by `domid` as `reference`.
    pub const fn grant(reference: GrantRef, domid: DomId, offset: u16) -> Self {
        Self {
            u: reference as u64,
            domid,
            offset,
        }
    }

    /// A pointer to `offset` in frame `frame` of `domid`.
    pub const fn frame(frame: XenPfn, domid: DomId, offset: u16) -> Self {
        Self {
            u: frame,
            domid,
            offset,
        }
    }

    /// `u.ref` (meaningful when the matching `GNTCOPY_*_gref` flag is set).
    pub const fn reference(&self) -> GrantRef {
        self.u as u32
    }
}

/// Every constant of `grant_table.h`, for the C conformance probe.
pub const CONSTANTS: &[&[AbiConstant]] = &[
    GnttabOp::C_CONSTANTS,
    GrantStatus::C_CONSTANTS,
    abi_constants![
        "GNTTAB_NR_RESERVED_ENTRIES" => GNTTAB_NR_RESERVED_ENTRIES,
        "GNTTAB_RESERVED_CONSOLE" => GNTTAB_RESERVED_CONSOLE,
        "GNTTAB_RESERVED_XENSTORE" => GNTTAB_RESERVED_XENSTORE,
        "GTF_invalid" => GrantEntryFlags::INVALID.bits(),
        "GTF_permit_access" => GrantEntryFlags::PERMIT_ACCESS.bits(),
        "GTF_accept_transfer" => GrantEntryFlags::ACCEPT_TRANSFER.bits(),
        "GTF_transitive" => GrantEntryFlags::TRANSITIVE.bits(),
        "GTF_type_mask" => GrantEntryFlags::TYPE_MASK.bits(),
        "GTF_readonly" => GrantEntryFlags::READONLY.bits(),
        "GTF_reading" => GrantEntryFlags::READING.bits(),
        "GTF_writing" => GrantEntryFlags::WRITING.bits(),
        "GTF_PWT" => GrantEntryFlags::PWT.bits(),
        "GTF_PCD" => GrantEntryFlags::PCD.bits(),
        "GTF_PAT" => GrantEntryFlags::PAT.bits(),
        "GTF_sub_page" => GrantEntryFlags::SUB_PAGE.bits(),
        "GTF_transfer_committed" => GrantEntryFlags::TRANSFER_COMMITTED.bits(),
        "GTF_transfer_completed" => GrantEntryFlags::TRANSFER_COMPLETED.bits(),
        "GNTMAP_device_map" => GntMapFlags::DEVICE_MAP.bits(),
        "GNTMAP_host_map" => GntMapFlags::HOST_MAP.bits(),
        "GNTMAP_readonly" => GntMapFlags::READONLY.bits(),
        "GNTMAP_application_map" => GntMapFlags::APPLICATION_MAP.bits(),
        "GNTMAP_contains_pte" => GntMapFlags::CONTAINS_PTE.bits(),
        "GNTMAP_guest_avail_mask" => GntMapFlags::GUEST_AVAIL_MASK.bits(),
        "GNTCOPY_source_gref" => GntCopyFlags::SOURCE_GREF.bits(),
        "GNTCOPY_dest_gref" => GntCopyFlags::DEST_GREF.bits(),
        "GNTTAB_CACHE_CLEAN" => GnttabCacheFlags::CLEAN.bits(),
        "GNTTAB_CACHE_INVAL" => GnttabCacheFlags::INVAL.bits(),
        "GNTTAB_CACHE_SOURCE_GREF" => GnttabCacheFlags::SOURCE_GREF.bits(),
        "sizeof(grant_ref_t)" => core::mem::size_of::<GrantRef>(),
        "sizeof(grant_handle_t)" => core::mem::size_of::<GrantHandle>(),
    ],
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_messages_follow_the_c_table() {
        assert_eq!(GrantStatus::OKAY.message(), Some("okay"));
        assert_eq!(GrantStatus::NO_SPACE.message(), Some("out of space"));
        assert_eq!(GrantStatus(-14).message(), None);
        assert_eq!(GrantStatus(5).message(), None);
        assert_eq!(GrantStatus(i16::MIN).message(), None);
    }

    #[test]
    fn copy_pointer_union() {
        let pointer = GnttabCopyPtr::grant(0xDEAD_BEEF, DomId(1), 12);
        assert_eq!(pointer.reference(), 0xDEAD_BEEF);
        assert_eq!(pointer.u, 0xDEAD_BEEF);
        assert_eq!(GnttabCopyPtr::frame(1 << 40, DomId::SELF, 0).u, 1 << 40);
    }

    #[test]
    fn entry_flags_keep_unknown_bits() {
        let entry = GrantEntryV1 {
            flags: 0x8000 | 1,
            ..Default::default()
        };
        assert!(entry.entry_flags().contains(GrantEntryFlags::PERMIT_ACCESS));
        assert_eq!(entry.entry_flags().bits(), 0x8001);
        assert_eq!(GNTTAB_V1_ENTRIES_PER_FRAME, 512);
    }
}
