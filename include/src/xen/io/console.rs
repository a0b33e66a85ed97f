//! `io/console.h`: the PV console ring page (`xencons_interface`).

use super::super::abi::AbiConstant;
use crate::{abi_constants, abi_structs};

/// A free-running console ring index (`XENCONS_RING_IDX`).
pub type XenconsRingIdx = u32;
/// Size of the input ring (backend → guest).
pub const XENCONS_IN_SIZE: usize = 1024;
/// Size of the output ring (guest → backend).
pub const XENCONS_OUT_SIZE: usize = 2048;

/// `MASK_XENCONS_IDX(idx, ring)` for a ring of `ring_size` bytes (a power of two).
pub const fn mask_xencons_idx(index: XenconsRingIdx, ring_size: usize) -> usize {
    index as usize & (ring_size - 1)
}

abi_structs! {
    /// The console ring page.
    #[c("struct xencons_interface", size = 3088, align = 4)]
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct XenconsInterface {
        /// Input ring (backend → guest).
        @0 as "in" pub input: [u8; XENCONS_IN_SIZE],
        /// Output ring (guest → backend).
        @1024 as "out" pub output: [u8; XENCONS_OUT_SIZE],
        /// Input consumer index (guest).
        @3072 pub in_cons: XenconsRingIdx,
        /// Input producer index (backend).
        @3076 pub in_prod: XenconsRingIdx,
        /// Output consumer index (backend).
        @3080 pub out_cons: XenconsRingIdx,
        /// Output producer index (guest).
        @3084 pub out_prod: XenconsRingIdx,
    }
}

impl Default for XenconsInterface {
    fn default() -> Self {
        Self {
            input: [0; XENCONS_IN_SIZE],
            output: [0; XENCONS_OUT_SIZE],
            in_cons: 0,
            in_prod: 0,
            out_cons: 0,
            out_prod: 0,
        }
    }
}

/// Every constant of `io/console.h`, for the C conformance probe.
pub const CONSTANTS: &[&[AbiConstant]] = &[abi_constants![
    "MASK_XENCONS_IDX(1030, ((struct xencons_interface *)0)->in)" => mask_xencons_idx(1030, XENCONS_IN_SIZE),
    "MASK_XENCONS_IDX(3000, ((struct xencons_interface *)0)->out)" => mask_xencons_idx(3000, XENCONS_OUT_SIZE),
    "sizeof(((struct xencons_interface *)0)->in)" => XENCONS_IN_SIZE,
    "sizeof(((struct xencons_interface *)0)->out)" => XENCONS_OUT_SIZE,
]];
