//! Windows `GUID`: the identity of every XENBUS/XENFILT interface.
#![forbid(unsafe_code)]

use core::fmt;

/// A Windows `GUID` with the exact C layout (`Data1`, `Data2`, `Data3`, `Data4[8]`).
#[repr(C)]
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Guid {
    /// `Data1`.
    pub data1: u32,
    /// `Data2`.
    pub data2: u16,
    /// `Data3`.
    pub data3: u16,
    /// `Data4`.
    pub data4: [u8; 8],
}

static_assertions::assert_eq_size!(Guid, [u8; 16]);
static_assertions::assert_eq_align!(Guid, u32);

impl Guid {
    /// The all-zero GUID (`GUID_NULL`).
    pub const NULL: Guid = Guid::new(0, 0, 0, [0; 8]);

    /// Builds a GUID from the fields of a `DEFINE_GUID` line.
    pub const fn new(data1: u32, data2: u16, data3: u16, data4: [u8; 8]) -> Self {
        Guid {
            data1,
            data2,
            data3,
            data4,
        }
    }

    /// Builds a GUID from its registry-format value read as one big-endian number:
    /// `0x0554F2AF_B510_4C71_AC03_1C503E394238` is `{0554F2AF-B510-4C71-AC03-1C503E394238}`.
    pub const fn from_u128(value: u128) -> Self {
        let b = value.to_be_bytes();
        Guid {
            data1: u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
            data2: u16::from_be_bytes([b[4], b[5]]),
            data3: u16::from_be_bytes([b[6], b[7]]),
            data4: [b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]],
        }
    }

    /// The 16 bytes exactly as they lie in memory on a little-endian machine (what
    /// `IsEqualGUID` / `RtlCompareMemory` compare).
    pub const fn to_le_bytes(&self) -> [u8; 16] {
        let a = self.data1.to_le_bytes();
        let b = self.data2.to_le_bytes();
        let c = self.data3.to_le_bytes();
        let d = self.data4;
        [
            a[0], a[1], a[2], a[3], b[0], b[1], c[0], c[1], d[0], d[1], d[2], d[3], d[4], d[5],
            d[6], d[7],
        ]
    }

    /// Reads a GUID from its 16 in-memory bytes (inverse of [`Guid::to_le_bytes`]).
    pub const fn from_le_bytes(b: [u8; 16]) -> Self {
        Guid {
            data1: u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            data2: u16::from_le_bytes([b[4], b[5]]),
            data3: u16::from_le_bytes([b[6], b[7]]),
            data4: [b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]],
        }
    }

    /// Const equality (usable in `const` checks and `match` guards).
    pub const fn const_eq(&self, other: &Guid) -> bool {
        let a = self.to_le_bytes();
        let b = other.to_le_bytes();
        let mut i = 0;
        while i < 16 {
            if a[i] != b[i] {
                return false;
            }
            i += 1;
        }
        true
    }

    /// Formats the arguments of a C `DEFINE_GUID(Name, ...)` line, e.g.
    /// `0x554f2af, 0xb510, 0x4c71, 0xac, 0x3, 0x1c, 0x50, 0x3e, 0x39, 0x42, 0x38`.
    pub fn define_guid_args(&self) -> DefineGuidArgs<'_> {
        DefineGuidArgs(self)
    }
}

/// Display adaptor returned by [`Guid::define_guid_args`].
pub struct DefineGuidArgs<'a>(&'a Guid);

impl fmt::Display for DefineGuidArgs<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let g = self.0;
        write!(f, "{:#x}, {:#x}, {:#x}", g.data1, g.data2, g.data3)?;
        for byte in g.data4 {
            write!(f, ", {byte:#x}")?;
        }
        Ok(())
    }
}

/// Registry format with braces and upper-case hex: `{0554F2AF-B510-4C71-AC03-1C503E394238}`.
impl fmt::Display for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = &self.data4;
        write!(
            f,
            "{{{:08X}-{:04X}-{:04X}-{:02X}{:02X}-{:02X}{:02X}{:02X}{:02X}{:02X}{:02X}}}",
            self.data1, self.data2, self.data3, d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]
        )
    }
}

impl fmt::Debug for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_format_round_trips_through_u128() {
        let g = Guid::from_u128(0x0554F2AF_B510_4C71_AC03_1C503E394238);
        assert_eq!(g.to_string(), "{0554F2AF-B510-4C71-AC03-1C503E394238}");
        assert_eq!(
            g,
            Guid::new(
                0x554f2af,
                0xb510,
                0x4c71,
                [0xac, 0x3, 0x1c, 0x50, 0x3e, 0x39, 0x42, 0x38]
            )
        );
        assert_eq!(Guid::from_le_bytes(g.to_le_bytes()), g);
        assert_eq!(g.to_le_bytes()[..4], [0xAF, 0xF2, 0x54, 0x05]);
    }

    #[test]
    fn define_guid_args_match_c_spelling() {
        let g = Guid::from_u128(0x0554F2AF_B510_4C71_AC03_1C503E394238);
        assert_eq!(
            g.define_guid_args().to_string(),
            "0x554f2af, 0xb510, 0x4c71, 0xac, 0x3, 0x1c, 0x50, 0x3e, 0x39, 0x42, 0x38"
        );
    }

    #[test]
    fn const_eq_distinguishes_every_byte() {
        let g = Guid::from_u128(0x0554F2AF_B510_4C71_AC03_1C503E394238);
        assert!(g.const_eq(&g));
        for i in 0..16 {
            let mut b = g.to_le_bytes();
            b[i] ^= 1;
            assert!(!g.const_eq(&Guid::from_le_bytes(b)));
        }
    }
}
