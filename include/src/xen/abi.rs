//! Building blocks of the ABI modules: open enums, layout-pinned `#[repr(C)]` structs and the
//! records the C conformance probe (`include/tests/conformance.rs`) is generated from.
//!
//! Every struct of the Xen ABI is declared through [`abi_structs!`](crate::abi_structs), which
//! pins its size, alignment and every field offset with `static_assertions` *and* records the
//! layout in the module's `LAYOUTS` table, so declaring a struct is enough to have it probed
//! against the C headers. Values chosen by the other side (hypercall status, message types,
//! states) are open enums declared with [`open_enum!`](crate::open_enum): a newtype over the
//! integer with associated constants, so an unknown value stays representable. Every ABI type
//! implements [`AbiBytes`], its little-endian byte image, so it can be copied to and from guest
//! memory without `unsafe`.

use core::marker::PhantomData;

#[doc(hidden)]
pub use static_assertions;

/// One field of a `#[repr(C)]` struct as Rust lays it out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FieldLayout {
    /// The C member name (equal to the Rust field name unless renamed).
    pub c_name: &'static str,
    /// The Rust field name.
    pub rust_name: &'static str,
    /// Byte offset (`offsetof`).
    pub offset: usize,
    /// Byte size (`sizeof` of the member).
    pub size: usize,
}

/// A `#[repr(C)]` struct and the C type it mirrors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StructLayout {
    /// The Rust type name.
    pub rust_name: &'static str,
    /// The C type (`struct evtchn_send`, `shared_info_t`, …).
    pub c_name: &'static str,
    /// `sizeof`.
    pub size: usize,
    /// `alignof`.
    pub align: usize,
    /// Every member, in declaration order.
    pub fields: &'static [FieldLayout],
}

/// The value of an ABI constant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AbiValue {
    /// An integer (macro, enumerator or `sizeof`).
    Int(i128),
    /// A string literal macro.
    Str(&'static str),
}

/// An ABI constant and the C expression (macro, enumerator or expression) it mirrors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AbiConstant {
    /// A C expression that evaluates to the constant once the headers are included.
    pub c_expr: &'static str,
    /// The value Rust uses.
    pub value: AbiValue,
}

/// A type with a fixed little-endian byte image equal to its x86_64 memory layout, read and
/// written field by field (padding written as zero). This lets shared pages and hypercall
/// arguments be copied to and from raw guest memory without `unsafe`: every ABI type is made
/// of integers, so every byte pattern is a valid value.
pub trait AbiBytes: Sized {
    /// Size of the image (`size_of::<Self>()`).
    const SIZE: usize;

    /// Reads a value from the first [`Self::SIZE`] bytes; `None` when `bytes` is shorter.
    fn read_from(bytes: &[u8]) -> Option<Self>;

    /// Writes the value to the first [`Self::SIZE`] bytes (padding zeroed); `false`, with
    /// `bytes` unspecified, when `bytes` is shorter.
    fn write_to(&self, bytes: &mut [u8]) -> bool;
}

macro_rules! abi_bytes_for_integers {
    ($($integer:ty),*) => {
        $(
            impl AbiBytes for $integer {
                const SIZE: usize = core::mem::size_of::<$integer>();

                fn read_from(bytes: &[u8]) -> Option<Self> {
                    let image = bytes.get(..Self::SIZE)?.try_into().ok()?;
                    Some(<$integer>::from_le_bytes(image))
                }

                fn write_to(&self, bytes: &mut [u8]) -> bool {
                    match bytes.get_mut(..Self::SIZE) {
                        Some(target) => {
                            target.copy_from_slice(&self.to_le_bytes());
                            true
                        }
                        None => false,
                    }
                }
            }
        )*
    };
}

abi_bytes_for_integers!(u8, u16, u32, u64, i8, i16, i32, i64);

impl<T: AbiBytes + Copy + Default, const N: usize> AbiBytes for [T; N] {
    const SIZE: usize = T::SIZE * N;

    fn read_from(bytes: &[u8]) -> Option<Self> {
        let bytes = bytes.get(..Self::SIZE)?;
        let mut value = [T::default(); N];
        for (slot, image) in value.iter_mut().zip(bytes.chunks_exact(T::SIZE.max(1))) {
            *slot = T::read_from(image)?;
        }
        Some(value)
    }

    fn write_to(&self, bytes: &mut [u8]) -> bool {
        let Some(bytes) = bytes.get_mut(..Self::SIZE) else {
            return false;
        };
        self.iter()
            .zip(bytes.chunks_exact_mut(T::SIZE.max(1)))
            .all(|(element, image)| element.write_to(image))
    }
}

impl<T> AbiBytes for GuestHandle<T> {
    const SIZE: usize = 8;

    fn read_from(bytes: &[u8]) -> Option<Self> {
        u64::read_from(bytes).map(Self::new)
    }

    fn write_to(&self, bytes: &mut [u8]) -> bool {
        self.address.write_to(bytes)
    }
}

/// A guest handle (`XEN_GUEST_HANDLE(T)`): on x86_64 a 64-bit guest virtual address of a `T`
/// (or of an array of them). The hypervisor copies through it; the address is not dereferenced
/// by this crate.
#[repr(transparent)]
pub struct GuestHandle<T> {
    address: u64,
    marker: PhantomData<fn() -> T>,
}

impl<T> GuestHandle<T> {
    /// The null handle.
    pub const NULL: Self = Self::new(0);

    /// A handle to the guest virtual address `address`.
    pub const fn new(address: u64) -> Self {
        Self {
            address,
            marker: PhantomData,
        }
    }

    /// A handle to `pointer` (the caller passes a pointer into its own address space).
    pub fn from_ptr(pointer: *const T) -> Self {
        Self::new(pointer as usize as u64)
    }

    /// The guest virtual address.
    pub const fn address(self) -> u64 {
        self.address
    }
}

impl<T> Clone for GuestHandle<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for GuestHandle<T> {}

impl<T> Default for GuestHandle<T> {
    fn default() -> Self {
        Self::NULL
    }
}

impl<T> PartialEq for GuestHandle<T> {
    fn eq(&self, other: &Self) -> bool {
        self.address == other.address
    }
}

impl<T> Eq for GuestHandle<T> {}

impl<T> core::fmt::Debug for GuestHandle<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "GuestHandle({:#x})", self.address)
    }
}

/// Declares an open enum: a `#[repr(transparent)]` newtype over an integer with one associated
/// constant per known value and the C name of each, collected in `C_CONSTANTS` for the probe.
///
/// ```ignore
/// open_enum! {
///     /// Doc.
///     pub struct EvtchnOp(u32) {
///         /// Doc.
///         BIND_INTERDOMAIN = 0 => "EVTCHNOP_bind_interdomain",
///     }
/// }
/// ```
#[macro_export]
macro_rules! open_enum {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident($repr:ty) {
            $(
                $(#[$vmeta:meta])*
                $variant:ident = $value:expr => $cname:literal,
            )*
        }
    ) => {
        $(#[$meta])*
        #[repr(transparent)]
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
        $vis struct $name(pub $repr);

        impl $name {
            $(
                $(#[$vmeta])*
                pub const $variant: Self = Self($value);
            )*

            /// Every known value with its C name, for the C conformance probe.
            pub const C_CONSTANTS: &'static [$crate::xen::abi::AbiConstant] = &[
                $(
                    $crate::xen::abi::AbiConstant {
                        c_expr: $cname,
                        value: $crate::xen::abi::AbiValue::Int(($value) as i128),
                    },
                )*
            ];

            /// The C name of this value, `None` when this ABI revision does not define it.
            #[allow(unreachable_patterns)]
            pub const fn c_name(self) -> Option<&'static str> {
                match self {
                    $( Self::$variant => Some($cname), )*
                    _ => None,
                }
            }

            /// True when the value is one this ABI revision defines.
            pub const fn is_known(self) -> bool {
                self.c_name().is_some()
            }
        }

        impl From<$repr> for $name {
            fn from(value: $repr) -> Self {
                Self(value)
            }
        }

        impl From<$name> for $repr {
            fn from(value: $name) -> Self {
                value.0
            }
        }

        impl $crate::xen::abi::AbiBytes for $name {
            const SIZE: usize = core::mem::size_of::<$repr>();

            fn read_from(bytes: &[u8]) -> Option<Self> {
                <$repr as $crate::xen::abi::AbiBytes>::read_from(bytes).map(Self)
            }

            fn write_to(&self, bytes: &mut [u8]) -> bool {
                $crate::xen::abi::AbiBytes::write_to(&self.0, bytes)
            }
        }

        impl core::fmt::Debug for $name {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                match self.c_name() {
                    Some(name) => write!(f, "{}({})", stringify!($name), name),
                    None => write!(f, "{}({:?})", stringify!($name), self.0),
                }
            }
        }
    };
}

/// Declares the `#[repr(C)]` structs of one ABI module. Each struct names the C type it mirrors
/// with its size and alignment, and each field its byte offset (and its C name when that is a
/// Rust keyword); all are checked at compile time with `static_assertions`, and the module gets
/// a `LAYOUTS` table listing every struct for the C conformance probe.
///
/// ```ignore
/// abi_structs! {
///     /// Doc.
///     #[c("struct evtchn_send", size = 4, align = 4)]
///     #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
///     pub struct EvtchnSend {
///         /// Doc.
///         @0 pub port: EvtchnPort,
///     }
/// }
/// ```
#[macro_export]
macro_rules! abi_structs {
    (
        $(
            $(#[doc = $doc:literal])*
            #[c($cname:literal, size = $size:literal, align = $align:literal)]
            $(#[$meta:meta])*
            pub struct $name:ident {
                $(
                    $(#[$fmeta:meta])*
                    @ $offset:literal $(as $cfield:literal)? pub $field:ident : $fty:ty,
                )*
            }
        )*
    ) => {
        $(
            $(#[doc = $doc])*
            #[doc = ""]
            #[doc = concat!("C: `", $cname, "` (", stringify!($size), " bytes, align ", stringify!($align), ").")]
            #[repr(C)]
            $(#[$meta])*
            pub struct $name {
                $(
                    $(#[$fmeta])*
                    pub $field: $fty,
                )*
            }

            $crate::xen::abi::static_assertions::const_assert_eq!(core::mem::size_of::<$name>(), $size);
            $crate::xen::abi::static_assertions::const_assert_eq!(core::mem::align_of::<$name>(), $align);
            $(
                $crate::xen::abi::static_assertions::const_assert_eq!(core::mem::offset_of!($name, $field), $offset);
            )*

            impl $crate::xen::abi::AbiBytes for $name {
                const SIZE: usize = core::mem::size_of::<$name>();

                fn read_from(bytes: &[u8]) -> Option<Self> {
                    let bytes = bytes.get(..Self::SIZE)?;
                    Some(Self {
                        $(
                            $field: <$fty as $crate::xen::abi::AbiBytes>::read_from(
                                bytes.get(core::mem::offset_of!($name, $field)..)?,
                            )?,
                        )*
                    })
                }

                fn write_to(&self, bytes: &mut [u8]) -> bool {
                    let Some(bytes) = bytes.get_mut(..Self::SIZE) else {
                        return false;
                    };
                    bytes.fill(0);
                    true $(
                        && bytes
                            .get_mut(core::mem::offset_of!($name, $field)..)
                            .is_some_and(|image| {
                                $crate::xen::abi::AbiBytes::write_to(&self.$field, image)
                            })
                    )*
                }
            }
        )*

        /// Layout of every struct of this module, for the C conformance probe.
        pub const LAYOUTS: &[$crate::xen::abi::StructLayout] = &[
            $(
                $crate::xen::abi::StructLayout {
                    rust_name: stringify!($name),
                    c_name: $cname,
                    size: core::mem::size_of::<$name>(),
                    align: core::mem::align_of::<$name>(),
                    fields: &[
                        $(
                            $crate::xen::abi::FieldLayout {
                                c_name: $crate::abi_field_name!($field $(, $cfield)?),
                                rust_name: stringify!($field),
                                offset: core::mem::offset_of!($name, $field),
                                size: core::mem::size_of::<$fty>(),
                            },
                        )*
                    ],
                },
            )*
        ];
    };
}

/// The C name of a field: its explicit rename, else the Rust name.
#[doc(hidden)]
#[macro_export]
macro_rules! abi_field_name {
    ($field:ident) => {
        stringify!($field)
    };
    ($field:ident, $cfield:literal) => {
        $cfield
    };
}

/// A list of integer [`AbiConstant`]s: `"C expression" => rust_value`.
#[macro_export]
macro_rules! abi_constants {
    ($( $cexpr:literal => $value:expr ),* $(,)?) => {
        &[
            $(
                $crate::xen::abi::AbiConstant {
                    c_expr: $cexpr,
                    value: $crate::xen::abi::AbiValue::Int(($value) as i128),
                },
            )*
        ]
    };
}

#[cfg(test)]
mod tests {
    use super::AbiBytes;
    use crate::xen::event_channel::EvtchnAllocUnbound;
    use crate::xen::grant_table::{GnttabMapGrantRef, GrantStatus};
    use crate::xen::xen::{DomId, SharedInfo, VcpuInfo};

    #[test]
    fn struct_image_is_little_endian_at_the_c_offsets() {
        let value = EvtchnAllocUnbound {
            dom: DomId::SELF,
            remote_dom: DomId(2),
            port: 0x0102_0304,
        };
        let mut image = [0xAA; 9];
        assert!(value.write_to(&mut image));
        assert_eq!(image, [0xF0, 0x7F, 2, 0, 4, 3, 2, 1, 0xAA]);
        assert_eq!(EvtchnAllocUnbound::read_from(&image), Some(value));
    }

    #[test]
    fn padding_is_written_as_zero_and_short_buffers_fail() {
        let value = VcpuInfo {
            evtchn_upcall_pending: 1,
            evtchn_pending_sel: u64::MAX,
            ..Default::default()
        };
        let mut image = [0xAA; 64];
        assert!(value.write_to(&mut image));
        assert_eq!(image[..8], [1, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(image[8..16], [0xFF; 8]);
        assert!(!value.write_to(&mut [0; 63]));
        assert_eq!(VcpuInfo::read_from(&image[..63]), None);
    }

    #[test]
    fn nested_arrays_round_trip() {
        let mut shared = SharedInfo::default();
        shared.vcpu_info[31].time.tsc_shift = -3;
        shared.vcpu_info[7].evtchn_pending_sel = 0x8000_0000_0000_0001;
        shared.evtchn_pending[63] = 0xDEAD_BEEF;
        shared.wc_sec_hi = 9;
        shared.arch.p2m_generation = 77;
        let mut image = vec![0u8; SharedInfo::SIZE];
        assert!(shared.write_to(&mut image));
        assert_eq!(image[3084..3088], 9u32.to_le_bytes());
        assert_eq!(SharedInfo::read_from(&image), Some(shared));
    }

    #[test]
    fn open_enum_fields_keep_unknown_values() {
        let mut image = [0u8; 32];
        image[18..20].copy_from_slice(&(-77i16).to_le_bytes());
        let map = GnttabMapGrantRef::read_from(&image).expect("32 bytes");
        assert_eq!(map.status, GrantStatus(-77));
        assert!(!map.status.is_known());
    }
}
