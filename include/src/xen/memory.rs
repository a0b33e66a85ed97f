//! `memory.h`: `XENMEM_*` operations — reservations (ballooning) and physmap changes (mapping
//! the shared info page and grant table frames into the guest's physical address space).

use super::abi::{AbiConstant, GuestHandle};
use super::xen::{DomId, XenPfn, XenUlong};
use crate::{abi_constants, abi_structs, open_enum};

open_enum! {
    /// `memory_op` sub-operation (`XENMEM_*`).
    pub struct MemoryOp(u32) {
        /// Add extents to a domain's reservation.
        INCREASE_RESERVATION = 0 => "XENMEM_increase_reservation",
        /// Release extents from a domain's reservation (balloon inflate).
        DECREASE_RESERVATION = 1 => "XENMEM_decrease_reservation",
        /// Highest machine frame of the host.
        MAXIMUM_RAM_PAGE = 2 => "XENMEM_maximum_ram_page",
        /// Current reservation in pages.
        CURRENT_RESERVATION = 3 => "XENMEM_current_reservation",
        /// Maximum reservation in pages.
        MAXIMUM_RESERVATION = 4 => "XENMEM_maximum_reservation",
        /// Machine-to-physical table frames (PV).
        MACHPHYS_MFN_LIST = 5 => "XENMEM_machphys_mfn_list",
        /// Populate guest physical frames (balloon deflate).
        POPULATE_PHYSMAP = 6 => "XENMEM_populate_physmap",
        /// Map a frame of a special space (shared info, grant table) at a guest frame.
        ADD_TO_PHYSMAP = 7 => "XENMEM_add_to_physmap",
        /// The domain's memory map (E820).
        MEMORY_MAP = 9 => "XENMEM_memory_map",
        /// The host's memory map (dom0).
        MACHINE_MEMORY_MAP = 10 => "XENMEM_machine_memory_map",
        /// Exchange extents.
        EXCHANGE = 11 => "XENMEM_exchange",
        /// Location of the machine-to-physical table (PV).
        MACHPHYS_MAPPING = 12 => "XENMEM_machphys_mapping",
        /// Set a domain's memory map.
        SET_MEMORY_MAP = 13 => "XENMEM_set_memory_map",
        /// Highest guest frame number in use.
        MAXIMUM_GPFN = 14 => "XENMEM_maximum_gpfn",
        /// Remove a guest frame's mapping.
        REMOVE_FROM_PHYSMAP = 15 => "XENMEM_remove_from_physmap",
        /// Set the populate-on-demand target.
        SET_POD_TARGET = 16 => "XENMEM_set_pod_target",
        /// Get the populate-on-demand target.
        GET_POD_TARGET = 17 => "XENMEM_get_pod_target",
        /// Batched `add_to_physmap`.
        ADD_TO_PHYSMAP_BATCH = 23 => "XENMEM_add_to_physmap_batch",
    }
}

open_enum! {
    /// `xen_add_to_physmap.space` (`XENMAPSPACE_*`).
    pub struct MapSpace(u32) {
        /// The shared info page (`idx` 0).
        SHARED_INFO = 0 => "XENMAPSPACE_shared_info",
        /// A grant table frame (`idx` = frame number, `| XENMAPIDX_grant_table_status` for v2
        /// status frames).
        GRANT_TABLE = 1 => "XENMAPSPACE_grant_table",
        /// A guest frame (move).
        GMFN = 2 => "XENMAPSPACE_gmfn",
        /// A range of guest frames.
        GMFN_RANGE = 3 => "XENMAPSPACE_gmfn_range",
        /// A frame of another domain.
        GMFN_FOREIGN = 4 => "XENMAPSPACE_gmfn_foreign",
        /// Device MMIO.
        DEV_MMIO = 5 => "XENMAPSPACE_dev_mmio",
    }
}

/// `XENMAPIDX_grant_table_status`: selects v2 status frames in `XENMAPSPACE_grant_table`.
pub const XENMAPIDX_GRANT_TABLE_STATUS: u64 = 0x8000_0000;

bitflags::bitflags! {
    /// Flag bits of `xen_memory_reservation.mem_flags` (bits 0..8 are the address width,
    /// bits 8..16 the NUMA node + 1; see [`mem_flags_address_bits`] and [`mem_flags_node`]).
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
    pub struct MemFlags: u32 {
        /// Populate on demand (`XENMEMF_populate_on_demand`).
        const POPULATE_ON_DEMAND = 1 << 16;
        /// Fail rather than fall back to another node (`XENMEMF_exact_node_request`).
        const EXACT_NODE_REQUEST = 1 << 17;
        /// The node is a virtual node (`XENMEMF_vnode`).
        const VNODE = 1 << 18;
        // Address width and node fields.
        const _ = 0xFFFF;
    }
}

/// `XENMEMF_address_bits(bits)`: restrict extents to below `2^bits`.
pub const fn mem_flags_address_bits(bits: u8) -> u32 {
    bits as u32
}

/// `XENMEMF_node(node)`: prefer NUMA node `node`.
pub const fn mem_flags_node(node: u8) -> u32 {
    (node as u32 + 1) << 8
}

abi_structs! {
    /// Arguments of `XENMEM_{increase,decrease}_reservation` and `XENMEM_populate_physmap`.
    #[c("struct xen_memory_reservation", size = 32, align = 8)]
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct XenMemoryReservation {
        /// Array of `nr_extents` guest frame numbers (IN, and OUT for increase).
        @0 pub extent_start: GuestHandle<XenPfn>,
        /// Number of extents.
        @8 pub nr_extents: XenUlong,
        /// Each extent is `2^extent_order` pages.
        @16 pub extent_order: u32,
        /// [`MemFlags`] plus address width and node.
        @20 pub mem_flags: u32,
        /// Target domain (usually [`DomId::SELF`]).
        @24 pub domid: DomId,
    }

    /// Arguments of `XENMEM_exchange`.
    #[c("struct xen_memory_exchange", size = 72, align = 8)]
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct XenMemoryExchange {
        /// Extents given up.
        @0 as "in" pub input: XenMemoryReservation,
        /// Extents received.
        @32 as "out" pub output: XenMemoryReservation,
        /// Extents exchanged so far (OUT).
        @64 pub nr_exchanged: XenUlong,
    }

    /// Arguments of `XENMEM_current_reservation` / `maximum_reservation` / `maximum_gpfn`.
    #[c("struct xen_memory_domain", size = 2, align = 2)]
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct XenMemoryDomain {
        /// The domain.
        @0 pub domid: DomId,
    }

    /// Arguments of `XENMEM_add_to_physmap`.
    #[c("struct xen_add_to_physmap", size = 24, align = 8)]
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct XenAddToPhysmap {
        /// Domain whose physmap changes.
        @0 pub domid: DomId,
        /// Number of pages for `XENMAPSPACE_gmfn_range`.
        @2 pub size: u16,
        /// [`MapSpace`] value.
        @4 pub space: MapSpace,
        /// Index into the space.
        @8 pub idx: XenUlong,
        /// Guest frame to map it at.
        @16 pub gpfn: XenPfn,
    }

    /// Arguments of `XENMEM_add_to_physmap_batch`. `u` is the union
    /// `{ domid_t foreign_domid; uint16_t res0; }`.
    #[c("struct xen_add_to_physmap_batch", size = 32, align = 8)]
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct XenAddToPhysmapBatch {
        /// Domain whose physmap changes.
        @0 pub domid: DomId,
        /// [`MapSpace`] value (16-bit here).
        @2 pub space: u16,
        /// Number of entries.
        @4 pub size: u16,
        /// `XENMAPSPACE_gmfn_foreign`: the foreign domain; else reserved (0).
        @6 pub u: DomId,
        /// Indices into the space.
        @8 pub idxs: GuestHandle<XenUlong>,
        /// Guest frames to map them at.
        @16 pub gpfns: GuestHandle<XenPfn>,
        /// Per-entry errors (OUT).
        @24 pub errs: GuestHandle<i32>,
    }

    /// Arguments of `XENMEM_remove_from_physmap`.
    #[c("struct xen_remove_from_physmap", size = 16, align = 8)]
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct XenRemoveFromPhysmap {
        /// Domain whose physmap changes.
        @0 pub domid: DomId,
        /// Guest frame to unmap.
        @8 pub gpfn: XenPfn,
    }

    /// Arguments of `XENMEM_memory_map`.
    #[c("struct xen_memory_map", size = 16, align = 8)]
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct XenMemoryMap {
        /// IN: entries the buffer holds; OUT: entries written.
        @0 pub nr_entries: u32,
        /// E820 entries.
        @8 pub buffer: GuestHandle<u8>,
    }

    /// Arguments of `XENMEM_{set,get}_pod_target`.
    #[c("struct xen_pod_target", size = 40, align = 8)]
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct XenPodTarget {
        /// IN (set): target in pages.
        @0 pub target_pages: u64,
        /// OUT: total pages.
        @8 pub tot_pages: u64,
        /// OUT: pages in the PoD cache.
        @16 pub pod_cache_pages: u64,
        /// OUT: outstanding PoD entries.
        @24 pub pod_entries: u64,
        /// The domain.
        @32 pub domid: DomId,
    }
}

/// Every constant of `memory.h` used by the package, for the C conformance probe.
pub const CONSTANTS: &[&[AbiConstant]] = &[
    MemoryOp::C_CONSTANTS,
    MapSpace::C_CONSTANTS,
    abi_constants![
        "XENMAPIDX_grant_table_status" => XENMAPIDX_GRANT_TABLE_STATUS,
        "XENMEMF_populate_on_demand" => MemFlags::POPULATE_ON_DEMAND.bits(),
        "XENMEMF_exact_node_request" => MemFlags::EXACT_NODE_REQUEST.bits(),
        "XENMEMF_vnode" => MemFlags::VNODE.bits(),
        "XENMEMF_address_bits(40)" => mem_flags_address_bits(40),
        "XENMEMF_node(3)" => mem_flags_node(3),
    ],
];
