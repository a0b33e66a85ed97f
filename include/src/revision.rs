//! PDO revisions (`revision.h`) and the Plug-and-Play IDs of a child PDO built from them.
//!
//! A revision number names one combination of interface versions; a child driver's INF
//! matches `XENBUS\VEN_<vendor>&DEV_<class>&REV_<revision>`, and the bus answers every
//! revision it supports, newest first (spec §3.1, §3.2). Policy: adding an interface
//! version needs a new revision; removing a version removes every revision mapping to it.
#![forbid(unsafe_code)]

use core::fmt::{self, Write};

use crate::interfaces::{
    cache, console, debug, emulated, evtchn, gnttab, range_set, shared_info, store, suspend, unplug,
};

/// One row of the revision table: a revision number and the interface versions it binds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Revision {
    /// The revision number (`REV_<8 hex digits>`).
    pub number: u32,
    /// XENBUS_SUSPEND version.
    pub suspend: u16,
    /// XENBUS_SHARED_INFO version.
    pub shared_info: u16,
    /// XENBUS_EVTCHN version.
    pub evtchn: u16,
    /// XENBUS_DEBUG version.
    pub debug: u16,
    /// XENBUS_STORE version.
    pub store: u16,
    /// XENBUS_RANGE_SET version.
    pub range_set: u16,
    /// XENBUS_CACHE version.
    pub cache: u16,
    /// XENBUS_GNTTAB version.
    pub gnttab: u16,
    /// XENBUS_UNPLUG version.
    pub unplug: u16,
    /// XENBUS_CONSOLE version (0 = not available in that revision).
    pub console: u16,
    /// XENFILT_EMULATED version.
    pub emulated: u16,
}

/// `DEFINE_REVISION(number, S, SI, E, D, ST, R, C, G, U, CO, EM)`.
#[allow(clippy::too_many_arguments)]
pub const fn define_revision(
    number: u32,
    suspend: u16,
    shared_info: u16,
    evtchn: u16,
    debug: u16,
    store: u16,
    range_set: u16,
    cache: u16,
    gnttab: u16,
    unplug: u16,
    console: u16,
    emulated: u16,
) -> Revision {
    Revision {
        number,
        suspend,
        shared_info,
        evtchn,
        debug,
        store,
        range_set,
        cache,
        gnttab,
        unplug,
        console,
        emulated,
    }
}

/// The revision table (`DEFINE_REVISION_TABLE`), oldest first.
#[rustfmt::skip]
pub const REVISIONS: &[Revision] = &[
    //              REVISION     S  SI   E   D  ST   R   C   G   U  CO  EM
    define_revision(0x0900_0008, 1,  3,  9,  1,  2,  1,  2,  4,  1,  1,  2),
    define_revision(0x0900_0009, 1,  4,  9,  1,  2,  1,  2,  4,  1,  1,  2),
    define_revision(0x0900_000A, 1,  4,  9,  1,  2,  1,  2,  4,  2,  1,  2),
    define_revision(0x0900_000B, 1,  4,  9,  1,  2,  1,  2,  4,  3,  1,  2),
    define_revision(0x0900_000C, 1,  4,  9,  1,  2,  1,  2,  4,  3,  1,  3),
];

/// Column names of the table in order, with their C interface name, (MIN, MAX), and
/// whether 0 ("not available") is allowed.
pub const COLUMNS: [(&str, &str, u16, u16, bool); 11] = [
    (
        "S",
        "XENBUS_SUSPEND_INTERFACE",
        suspend::XENBUS_SUSPEND_INTERFACE_VERSION_MIN,
        suspend::XENBUS_SUSPEND_INTERFACE_VERSION_MAX,
        false,
    ),
    (
        "SI",
        "XENBUS_SHARED_INFO_INTERFACE",
        shared_info::XENBUS_SHARED_INFO_INTERFACE_VERSION_MIN,
        shared_info::XENBUS_SHARED_INFO_INTERFACE_VERSION_MAX,
        false,
    ),
    (
        "E",
        "XENBUS_EVTCHN_INTERFACE",
        evtchn::XENBUS_EVTCHN_INTERFACE_VERSION_MIN,
        evtchn::XENBUS_EVTCHN_INTERFACE_VERSION_MAX,
        false,
    ),
    (
        "D",
        "XENBUS_DEBUG_INTERFACE",
        debug::XENBUS_DEBUG_INTERFACE_VERSION_MIN,
        debug::XENBUS_DEBUG_INTERFACE_VERSION_MAX,
        false,
    ),
    (
        "ST",
        "XENBUS_STORE_INTERFACE",
        store::XENBUS_STORE_INTERFACE_VERSION_MIN,
        store::XENBUS_STORE_INTERFACE_VERSION_MAX,
        false,
    ),
    (
        "R",
        "XENBUS_RANGE_SET_INTERFACE",
        range_set::XENBUS_RANGE_SET_INTERFACE_VERSION_MIN,
        range_set::XENBUS_RANGE_SET_INTERFACE_VERSION_MAX,
        false,
    ),
    (
        "C",
        "XENBUS_CACHE_INTERFACE",
        cache::XENBUS_CACHE_INTERFACE_VERSION_MIN,
        cache::XENBUS_CACHE_INTERFACE_VERSION_MAX,
        false,
    ),
    (
        "G",
        "XENBUS_GNTTAB_INTERFACE",
        gnttab::XENBUS_GNTTAB_INTERFACE_VERSION_MIN,
        gnttab::XENBUS_GNTTAB_INTERFACE_VERSION_MAX,
        false,
    ),
    (
        "U",
        "XENBUS_UNPLUG_INTERFACE",
        unplug::XENBUS_UNPLUG_INTERFACE_VERSION_MIN,
        unplug::XENBUS_UNPLUG_INTERFACE_VERSION_MAX,
        false,
    ),
    (
        "CO",
        "XENBUS_CONSOLE_INTERFACE",
        console::XENBUS_CONSOLE_INTERFACE_VERSION_MIN,
        console::XENBUS_CONSOLE_INTERFACE_VERSION_MAX,
        true,
    ),
    (
        "EM",
        "XENFILT_EMULATED_INTERFACE",
        emulated::XENFILT_EMULATED_INTERFACE_VERSION_MIN,
        emulated::XENFILT_EMULATED_INTERFACE_VERSION_MAX,
        false,
    ),
];

impl Revision {
    /// The versions in [`COLUMNS`] order.
    pub const fn versions(&self) -> [u16; 11] {
        [
            self.suspend,
            self.shared_info,
            self.evtchn,
            self.debug,
            self.store,
            self.range_set,
            self.cache,
            self.gnttab,
            self.unplug,
            self.console,
            self.emulated,
        ]
    }
}

/// Why a revision table is inconsistent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RevisionError {
    /// The table has no rows.
    Empty,
    /// Revision numbers are not strictly increasing at this row.
    NotIncreasing { row: usize },
    /// The version of column `column` in row `row` lies outside [MIN, MAX].
    OutOfRange { row: usize, column: usize },
    /// The last row does not use the MAX version of column `column`.
    LastNotMax { column: usize },
}

/// Checks a revision table: strictly increasing numbers, every version in [MIN, MAX] of
/// its interface (CONSOLE may be 0), and the last row equal to every MAX.
pub const fn validate(table: &[Revision]) -> Result<(), RevisionError> {
    if table.is_empty() {
        return Err(RevisionError::Empty);
    }
    let mut row = 0;
    while row < table.len() {
        if row > 0 && table[row].number <= table[row - 1].number {
            return Err(RevisionError::NotIncreasing { row });
        }
        let v = table[row].versions();
        let mut column = 0;
        while column < COLUMNS.len() {
            let (_, _, min, max, zero_ok) = COLUMNS[column];
            let ok = (v[column] >= min && v[column] <= max) || (zero_ok && v[column] == 0);
            if !ok {
                return Err(RevisionError::OutOfRange { row, column });
            }
            if row + 1 == table.len() && v[column] != max {
                return Err(RevisionError::LastNotMax { column });
            }
            column += 1;
        }
        row += 1;
    }
    Ok(())
}

const _: () = assert!(
    matches!(validate(REVISIONS), Ok(())),
    "revision table inconsistent with the interface versions"
);

/// Renders `revision.h`: the key and the `DEFINE_REVISION_TABLE` macro of `DEFINE_REVISION`
/// rows (`revision, S, SI, E, D, ST, R, C, G, U, CO, EM`), as consumed by C code.
pub fn render_c_header<W: Write + ?Sized>(out: &mut W) -> fmt::Result {
    writeln!(
        out,
        "/* revision.h: PDO revision table (interface versions per revision)"
    )?;
    writeln!(
        out,
        " * GENERATED from the Rust definitions in crate xen-include by `cargo xtask cheaders`;"
    )?;
    writeln!(out, " * do not edit. */\n")?;
    writeln!(out, "#ifndef _REVISION_H\n#define _REVISION_H\n")?;
    writeln!(out, "// Key:")?;
    for (short, name, _, _, _) in COLUMNS {
        writeln!(out, "// {short:<2} - {name}")?;
    }
    write!(out, "\n//                    REVISION")?;
    for (short, ..) in COLUMNS {
        write!(out, " {short:>3}")?;
    }
    writeln!(out)?;
    writeln!(out, "#define DEFINE_REVISION_TABLE \\")?;
    for (i, rev) in REVISIONS.iter().enumerate() {
        write!(out, "    DEFINE_REVISION(0x{:08X},", rev.number)?;
        let versions = rev.versions();
        for (j, v) in versions.iter().enumerate() {
            let sep = if j + 1 == versions.len() { "" } else { "," };
            write!(out, " {v:>2}{sep}")?;
        }
        let tail = if i + 1 == REVISIONS.len() {
            ")"
        } else {
            "), \\"
        };
        writeln!(out, "{tail}")?;
    }
    writeln!(out, "\n#endif  // _REVISION_H")
}

/// The newest revision (the last row).
pub const LATEST: Revision = REVISIONS[REVISIONS.len() - 1];

/// `MAX_DEVICE_ID_LEN`: the longest single ID, in characters including the NUL.
pub const MAX_DEVICE_ID_LEN: usize = 200;
/// `REGSTR_VAL_MAX_HCID_LEN`: the longest hardware/compatible ID list, in bytes.
pub const MAX_HCID_LEN_BYTES: usize = 1024;
/// Class-independent compatible ID appended to the hardware ID list.
pub const XENCLASS: &str = "XENCLASS";

/// The `BUS_QUERY_ID_TYPE` values a child PDO answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BusQueryId {
    /// `BusQueryDeviceID` (0).
    DeviceId,
    /// `BusQueryHardwareIDs` (1).
    HardwareIds,
    /// `BusQueryCompatibleIDs` (2).
    CompatibleIds,
    /// `BusQueryInstanceID` (3).
    InstanceId,
}

impl BusQueryId {
    /// Decodes `IdType`; `None` for types a child PDO does not answer
    /// (`STATUS_NOT_SUPPORTED`).
    pub const fn from_raw(raw: u32) -> Option<Self> {
        match raw {
            0 => Some(BusQueryId::DeviceId),
            1 => Some(BusQueryId::HardwareIds),
            2 => Some(BusQueryId::CompatibleIds),
            3 => Some(BusQueryId::InstanceId),
            _ => None,
        }
    }
}

/// Why an ID could not be built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdError {
    /// A name is empty, too long, or holds a character not allowed in a device ID
    /// (allowed: printable ASCII except space, `,` and `\`).
    BadName,
    /// A single ID would reach `MAX_DEVICE_ID_LEN`, or the list `MAX_HCID_LEN_BYTES`.
    TooLong,
    /// The output sink refused the text (e.g. caller buffer too small).
    Output,
}

/// The names a child PDO's IDs are built from.
#[derive(Clone, Copy, Debug)]
pub struct IdNames<'a> {
    /// `VENDOR_PREFIX` (`XP` by default; `XS` for XenServer builds).
    pub vendor_prefix: &'a str,
    /// The PCI device ID of the platform device the FDO is bound to.
    pub pci_device_id: u16,
    /// The child class, e.g. `VIF`.
    pub class: &'a str,
}

const MAX_NAME_LEN: usize = 64;

fn check_name(name: &str) -> Result<(), IdError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b',' && b != b'\\');
    if ok {
        Ok(())
    } else {
        Err(IdError::BadName)
    }
}

/// Counts characters written through it, enforcing per-ID and total limits.
struct Limited<'w, W: Write> {
    out: &'w mut W,
    id_chars: usize,
    total_chars: usize,
    too_long: bool,
}

impl<W: Write> Write for Limited<'_, W> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for c in s.chars() {
            if c == '\0' {
                self.id_chars = 0;
            } else {
                self.id_chars += 1;
            }
            self.total_chars += c.len_utf16();
            // +1: every ID is followed by its NUL.
            if self.id_chars + 1 > MAX_DEVICE_ID_LEN || self.total_chars * 2 > MAX_HCID_LEN_BYTES {
                self.too_long = true;
                return Err(fmt::Error);
            }
        }
        self.out.write_str(s)
    }
}

/// Writes the answer to `IRP_MN_QUERY_ID` of `kind`, exactly as it goes in the buffer:
/// a single ID ends with one NUL; a list (REG_MULTI_SZ) ends with an extra empty string.
///
/// * DeviceID: `XENBUS\VEN_<prefix>&DEV_<class>`
/// * InstanceID: `_`
/// * HardwareIDs = CompatibleIDs: `XENBUS\VEN_<prefix><PCI id:04X>&DEV_<class>&REV_<rev:08X>`
///   for every revision newest first, then `XENCLASS`.
pub fn write_id(
    kind: BusQueryId,
    names: &IdNames<'_>,
    out: &mut impl Write,
) -> Result<(), IdError> {
    check_name(names.vendor_prefix)?;
    check_name(names.class)?;
    let mut w = Limited {
        out,
        id_chars: 0,
        total_chars: 0,
        too_long: false,
    };
    let result = match kind {
        BusQueryId::DeviceId => write!(
            w,
            "XENBUS\\VEN_{}&DEV_{}\0",
            names.vendor_prefix, names.class
        ),
        BusQueryId::InstanceId => w.write_str("_\0"),
        BusQueryId::HardwareIds | BusQueryId::CompatibleIds => (|| {
            for rev in REVISIONS.iter().rev() {
                write!(
                    w,
                    "XENBUS\\VEN_{}{:04X}&DEV_{}&REV_{:08X}\0",
                    names.vendor_prefix, names.pci_device_id, names.class, rev.number
                )?;
            }
            write!(w, "{XENCLASS}\0\0")
        })(),
    };
    match result {
        Ok(()) => Ok(()),
        Err(_) if w.too_long => Err(IdError::TooLong),
        Err(_) => Err(IdError::Output),
    }
}

/// The vendor name used in hardware IDs and device text: `<prefix><PCI id:04X>`, e.g. `XP0001`.
pub fn write_vendor_name(prefix: &str, pci_device_id: u16, out: &mut impl Write) -> fmt::Result {
    write!(out, "{prefix}{pci_device_id:04X}")
}

/// A [`Write`] sink into a caller's UTF-16 buffer (the `PWCHAR` an IRP answer needs).
pub struct Utf16Writer<'a> {
    buf: &'a mut [u16],
    len: usize,
}

impl<'a> Utf16Writer<'a> {
    /// A writer filling `buf` from the start.
    pub fn new(buf: &'a mut [u16]) -> Self {
        Utf16Writer { buf, len: 0 }
    }

    /// Number of UTF-16 units written.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when nothing was written.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Write for Utf16Writer<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for unit in s.encode_utf16() {
            let slot = self.buf.get_mut(self.len).ok_or(fmt::Error)?;
            *slot = unit;
            self.len += 1;
        }
        Ok(())
    }
}

/// A [`Write`] sink that only counts UTF-16 units (to size a buffer first).
#[derive(Default)]
pub struct Utf16Counter {
    /// UTF-16 units seen so far.
    pub units: usize,
}

impl Write for Utf16Counter {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.units += s.encode_utf16().count();
        Ok(())
    }
}

/// UTF-16 units (NULs included) of the answer to `kind`.
pub fn id_len(kind: BusQueryId, names: &IdNames<'_>) -> Result<usize, IdError> {
    let mut c = Utf16Counter::default();
    write_id(kind, names, &mut c)?;
    Ok(c.units)
}

#[cfg(test)]
mod tests {
    use super::*;

    const VIF: IdNames<'static> = IdNames {
        vendor_prefix: "XP",
        pci_device_id: 0x0001,
        class: "VIF",
    };

    fn id(kind: BusQueryId, names: &IdNames<'_>) -> Result<String, IdError> {
        let mut s = String::new();
        write_id(kind, names, &mut s).map(|()| s)
    }

    #[test]
    fn table_matches_spec_and_is_valid() {
        assert_eq!(validate(REVISIONS), Ok(()));
        assert_eq!(REVISIONS.len(), 5);
        assert_eq!(REVISIONS[0].number, 0x0900_0008);
        assert_eq!(
            LATEST.versions(),
            COLUMNS.map(|(_, _, _, max, _)| max),
            "last row = every MAX"
        );
        assert_eq!(LATEST.number, 0x0900_000C);
    }

    #[test]
    fn validate_catches_each_kind_of_inconsistency() {
        assert_eq!(validate(&[]), Err(RevisionError::Empty));
        let mut bad = [REVISIONS[3], LATEST];
        bad[0].evtchn = 4; // below EVTCHN MIN 5
        assert_eq!(
            validate(&bad),
            Err(RevisionError::OutOfRange { row: 0, column: 2 })
        );
        let mut bad = [LATEST];
        bad[0].gnttab = 3;
        assert_eq!(validate(&bad), Err(RevisionError::LastNotMax { column: 7 }));
        let bad = [LATEST, REVISIONS[0]];
        assert_eq!(validate(&bad), Err(RevisionError::NotIncreasing { row: 1 }));
        let mut old = REVISIONS[0];
        old.console = 0; // "not available" is allowed for CONSOLE only
        assert_eq!(validate(&[old, LATEST]), Ok(()));
        old.console = 1;
        old.debug = 0;
        assert_eq!(
            validate(&[old, LATEST]),
            Err(RevisionError::OutOfRange { row: 0, column: 3 })
        );
    }

    #[test]
    fn c_header_has_one_define_revision_row_per_revision() {
        let mut h = String::new();
        render_c_header(&mut h).unwrap();
        assert!(h.contains(
            "DEFINE_REVISION(0x09000008,  1,  3,  9,  1,  2,  1,  2,  4,  1,  1,  2), \\\n"
        ));
        assert!(
            h.contains("DEFINE_REVISION(0x0900000C,  1,  4,  9,  1,  2,  1,  2,  4,  3,  1,  3)\n")
        );
        assert_eq!(h.matches("DEFINE_REVISION(").count(), REVISIONS.len());
    }

    #[test]
    fn device_and_instance_ids() {
        assert_eq!(
            id(BusQueryId::DeviceId, &VIF).unwrap(),
            "XENBUS\\VEN_XP&DEV_VIF\0"
        );
        assert_eq!(id(BusQueryId::InstanceId, &VIF).unwrap(), "_\0");
    }

    #[test]
    fn hardware_ids_list_every_revision_newest_first_then_xenclass() {
        let names = IdNames {
            vendor_prefix: "XS",
            pci_device_id: 0xC000,
            class: "VBD",
        };
        let hw = id(BusQueryId::HardwareIds, &names).unwrap();
        let expected = "XENBUS\\VEN_XSC000&DEV_VBD&REV_0900000C\0\
                        XENBUS\\VEN_XSC000&DEV_VBD&REV_0900000B\0\
                        XENBUS\\VEN_XSC000&DEV_VBD&REV_0900000A\0\
                        XENBUS\\VEN_XSC000&DEV_VBD&REV_09000009\0\
                        XENBUS\\VEN_XSC000&DEV_VBD&REV_09000008\0\
                        XENCLASS\0\0";
        assert_eq!(hw, expected);
        assert_eq!(id(BusQueryId::CompatibleIds, &names).unwrap(), expected);
        assert_eq!(
            id_len(BusQueryId::HardwareIds, &names).unwrap(),
            expected.len()
        );
    }

    #[test]
    fn hostile_names_are_refused() {
        for class in ["", "V IF", "A,B", "A\\B", "VIF\0", "ÜBER"] {
            let names = IdNames { class, ..VIF };
            assert_eq!(
                id(BusQueryId::HardwareIds, &names),
                Err(IdError::BadName),
                "{class:?}"
            );
        }
        let long = "X".repeat(65);
        let names = IdNames {
            class: &long,
            ..VIF
        };
        assert_eq!(id(BusQueryId::DeviceId, &names), Err(IdError::BadName));
    }

    #[test]
    fn list_limit_is_enforced() {
        // 5 revisions x (36 + 2*64) chars exceeds 1024 bytes of UTF-16.
        let long = "C".repeat(64);
        let names = IdNames {
            vendor_prefix: &long,
            pci_device_id: 1,
            class: &long,
        };
        assert_eq!(id(BusQueryId::HardwareIds, &names), Err(IdError::TooLong));
        assert!(id(BusQueryId::DeviceId, &names).is_ok());
    }

    #[test]
    fn utf16_writer_fills_a_caller_buffer_and_refuses_overflow() {
        let mut buf = [0u16; 64];
        let mut w = Utf16Writer::new(&mut buf);
        write_id(BusQueryId::DeviceId, &VIF, &mut w).unwrap();
        let n = w.len();
        assert_eq!(
            String::from_utf16(&buf[..n]).unwrap(),
            "XENBUS\\VEN_XP&DEV_VIF\0"
        );
        let mut small = [0u16; 10];
        let mut w = Utf16Writer::new(&mut small);
        assert_eq!(
            write_id(BusQueryId::DeviceId, &VIF, &mut w),
            Err(IdError::Output)
        );
    }

    #[test]
    fn vendor_name_and_query_types() {
        let mut s = String::new();
        write_vendor_name("XP", 2, &mut s).unwrap();
        assert_eq!(s, "XP0002");
        assert_eq!(BusQueryId::from_raw(1), Some(BusQueryId::HardwareIds));
        assert_eq!(BusQueryId::from_raw(5), None);
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_names_give_bounded_ids_or_errors(
            prefix in "\\PC{0,80}",
            class in "\\PC{0,80}",
            pci in proptest::prelude::any::<u16>(),
        ) {
            let names = IdNames { vendor_prefix: &prefix, pci_device_id: pci, class: &class };
            for kind in [BusQueryId::DeviceId, BusQueryId::HardwareIds, BusQueryId::InstanceId] {
                match id(kind, &names) {
                    Ok(text) => {
                        proptest::prop_assert!(text.ends_with('\0'));
                        proptest::prop_assert!(text.encode_utf16().count() * 2 <= MAX_HCID_LEN_BYTES);
                        for one in text.split('\0') {
                            proptest::prop_assert!(one.len() < MAX_DEVICE_ID_LEN);
                            proptest::prop_assert!(!one.contains(' ') && !one.contains(','));
                        }
                    }
                    Err(e) => proptest::prop_assert!(matches!(e, IdError::BadName | IdError::TooLong)),
                }
            }
        }
    }
}
