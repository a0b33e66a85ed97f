//! Macros that define an ABI item and its C metadata in one place.

/// Opaque handle types: `typedef struct _NAME NAME, *PNAME;` — only ever used through
/// pointers, never dereferenced by the receiver's code.
macro_rules! opaque {
    ($( $(#[$m:meta])* pub struct $name:ident = $cname:ident; )*) => {
        $(
            $(#[$m])*
            #[doc = concat!("\n\nC: `", stringify!($cname), "` (opaque).")]
            #[repr(C)]
            pub struct $name {
                _private: [u8; 0],
                _not_send_sync_unpin: core::marker::PhantomData<(*mut u8, core::marker::PhantomPinned)>,
            }

            impl $name {
                /// The C type name.
                pub const C_NAME: &'static str = stringify!($cname);
            }
        )*
    };
}

/// Open C enums: a transparent `i32` newtype (C `enum` is `int`) with one associated
/// constant per enumerator, so values received from a C caller are never UB.
macro_rules! c_open_enum {
    (
        $(#[$m:meta])*
        pub struct $name:ident = $cname:ident $(, $ptr:ident)? {
            $( $(#[$vm:meta])* $variant:ident = $value:literal => $cvariant:ident, )*
        }
    ) => {
        $(#[$m])*
        #[doc = concat!("\n\nC: `", stringify!($cname), "` (open: unknown values are representable).")]
        #[repr(transparent)]
        #[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
        pub struct $name(pub i32);

        impl $name {
            $(
                $(#[$vm])*
                #[doc = concat!("\n\nC: `", stringify!($cvariant), "`.")]
                pub const $variant: $name = $name($value);
            )*

            /// C metadata of this enum.
            pub const C: $crate::interfaces::cmeta::CEnum = $crate::interfaces::cmeta::CEnum {
                name: stringify!($cname),
                pointer_typedef: <[&str]>::len(&[$(stringify!($ptr)),*]) == 1,
                values: &[$((stringify!($cvariant), $value)),*],
            };

            /// The name of a known value (its C enumerator), or `None`.
            pub const fn name(self) -> Option<&'static str> {
                match self.0 {
                    $($value => Some(stringify!($cvariant)),)*
                    _ => None,
                }
            }
        }

        impl core::fmt::Debug for $name {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                match self.name() {
                    Some(n) => f.write_str(n),
                    None => write!(f, "{}({})", stringify!($name), self.0),
                }
            }
        }

        static_assertions::assert_eq_size!($name, i32);
    };
}

/// Function-pointer typedefs: `pub type X = Option<unsafe extern "C" fn(..)>` plus a
/// `CFnTypedef` constant named after the C typedef. A trailing `; ...` after the last
/// parameter makes it C-variadic.
macro_rules! c_fn_types {
    ($(
        $(#[$m:meta])*
        pub type $name:ident = $cname:ident
            fn($($p:ident: $t:ty => $c:literal),* $(; $dots:tt)?) $(-> $ret:ty)? => $cret:literal;
    )*) => {
        $(
            $(#[$m])*
            #[doc = concat!("\n\nC: `", stringify!($cname), "`.")]
            pub type $name = Option<unsafe extern "C" fn($($p: $t),* $(, $dots)?) $(-> $ret)?>;

            #[doc = concat!("C metadata of [`", stringify!($name), "`].")]
            pub const $cname: $crate::interfaces::cmeta::CFnTypedef =
                $crate::interfaces::cmeta::CFnTypedef {
                    name: stringify!($cname),
                    ret: $cret,
                    params: &[$($c),*],
                    variadic: <[&str]>::len(&[$(stringify!($dots)),*]) == 1,
                };
        )*
    };
}

/// A versioned interface struct: the `Interface` header then one slot per method, in
/// the exact C order. Pins size (literal, x86_64) and every slot offset, implements
/// `VersionedInterface`, and records the C layout.
macro_rules! vtable {
    (
        $(#[$m:meta])*
        pub struct $name:ident = $cname:ident, guid $guid:path, version $version:literal, size $size:literal {
            $( $(#[$fm:meta])* $field:ident: $ty:ty => $ctype:ident $cfield:ident, )*
        }
    ) => {
        $(#[$m])*
        #[doc = concat!("\n\nC: `struct _", stringify!($cname), "`.")]
        #[repr(C)]
        #[derive(Clone, Copy, Debug)]
        pub struct $name {
            /// The WDM `INTERFACE` header (`Interface`).
            pub interface: $crate::interfaces::Interface,
            $(
                $(#[$fm])*
                #[doc = concat!("\n\nC: `", stringify!($ctype), " ", stringify!($cfield), "`.")]
                pub $field: $ty,
            )*
        }

        impl $name {
            /// A table with a zeroed header and every slot NULL.
            pub const EMPTY: $name = $name {
                interface: $crate::interfaces::Interface::EMPTY,
                $($field: None,)*
            };

            /// C metadata of this struct (names and Rust offsets).
            pub const C: $crate::interfaces::cmeta::CStruct = $crate::interfaces::cmeta::CStruct {
                name: stringify!($cname),
                typedef: false,
                size: core::mem::size_of::<$name>(),
                members: &[
                    $crate::interfaces::cmeta::CMember {
                        c_type: "INTERFACE",
                        name: "Interface",
                        offset: core::mem::offset_of!($name, interface),
                    },
                    $($crate::interfaces::cmeta::CMember {
                        c_type: stringify!($ctype),
                        name: stringify!($cfield),
                        offset: core::mem::offset_of!($name, $field),
                    },)*
                ],
            };
        }

        impl Default for $name {
            fn default() -> Self {
                Self::EMPTY
            }
        }

        impl $crate::interfaces::VersionedInterface for $name {
            const GUID: $crate::guid::Guid = $guid;
            const VERSION: u16 = $version;
        }

        #[cfg(target_arch = "x86_64")]
        static_assertions::const_assert_eq!(core::mem::size_of::<$name>(), $size);
        #[cfg(target_arch = "x86_64")]
        const _: () = {
            let offsets = [$(core::mem::offset_of!($name, $field)),*];
            let mut i = 0;
            while i < offsets.len() {
                assert!(offsets[i] == 32 + 8 * i, "slot out of place");
                i += 1;
            }
            assert!($size == 32 + 8 * offsets.len(), "size literal disagrees with slot count");
        };
    };
}
