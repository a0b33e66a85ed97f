//! Property tests of the inputs that cross a trust boundary: firmware tables, registry
//! values and C format strings with their arguments never make the core panic, and every
//! output stays within its bounds.

use proptest::prelude::*;

use common::os::RegValue;

use crate::acpi::{self, build, Acpi, Madt};
use crate::log::{format_slot, slot_count, FormatArgs, Slot, TextKind, LOG_BUFFER_SIZE};

struct Random {
    slots: Vec<u64>,
    texts: Vec<Option<Vec<u8>>>,
    used: usize,
}

impl FormatArgs for Random {
    fn next_slot(&mut self) -> u64 {
        self.used += 1;
        self.slots.pop().unwrap_or(0)
    }
    fn next_text(&mut self, _: TextKind, out: &mut [u8]) -> Option<usize> {
        self.used += 1;
        let t = self.texts.pop().flatten()?;
        let n = t.len().min(out.len());
        out[..n].copy_from_slice(&t[..n]);
        Some(n)
    }
}

fn format_bytes() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        Just(b"%".to_vec()),
        Just(b"%-".to_vec()),
        Just(b"%0".to_vec()),
        Just(b"%ll".to_vec()),
        Just(b"%w".to_vec()),
        proptest::sample::select(b"cdsuoxXpZlw0123456789-% a".to_vec()).prop_map(|c| vec![c]),
    ];
    proptest::collection::vec(piece, 0..80).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn formatter_never_panics_and_stays_in_a_slot(
        format in format_bytes(),
        count in 0u32..400,
        slots in proptest::collection::vec(any::<u64>(), 0..40),
        texts in proptest::collection::vec(proptest::option::of(proptest::collection::vec(any::<u8>(), 0..300)), 0..40),
    ) {
        let mut args = Random { slots, texts, used: 0 };
        let mut slot = Slot::default();
        format_slot(&mut slot, count, &format, &mut args);
        prop_assert!(slot.bytes().len() <= LOG_BUFFER_SIZE);
        // The edge reads exactly as many va_list slots as the formatter consumes.
        prop_assert_eq!(args.used, slot_count(count, &format));
    }

    #[test]
    fn madt_parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let mut t = build::table(b"APIC", &bytes);
        let _ = Madt::parse(&t);
        // Also with a lying header length.
        t[4] = bytes.first().copied().unwrap_or(0);
        let _ = Madt::parse(&t);
    }

    #[test]
    fn acpi_walk_never_panics(
        area in proptest::collection::vec(any::<u8>(), 0..64),
        rsdp_at in 0usize..8,
        xsdt_entries in proptest::collection::vec(any::<u64>(), 0..6),
        junk in proptest::collection::vec(any::<u8>(), 0..200),
    ) {
        let mut bios = vec![0u8; acpi::RSDP_SCAN_LENGTH];
        let r = build::rsdp(2, 0, 0x1000_0000);
        bios[rsdp_at * 16..rsdp_at * 16 + r.len()].copy_from_slice(&r);
        bios[0x100..0x100 + area.len()].copy_from_slice(&area);
        let xsdt = build::xsdt(&xsdt_entries);
        let read = |a: u64, b: &mut [u8]| {
            b.fill(0);
            let regions: [(u64, &[u8]); 3] = [(acpi::RSDP_SCAN_START, &bios), (0x1000_0000, &xsdt), (xsdt_entries.first().copied().unwrap_or(1), &junk)];
            for (base, bytes) in regions {
                for (i, x) in bytes.iter().enumerate() {
                    let p = base.wrapping_add(i as u64);
                    if p >= a && p < a.wrapping_add(b.len() as u64) {
                        b[(p - a) as usize] = *x;
                    }
                }
            }
            Ok(())
        };
        if let Ok(acpi) = Acpi::initialize(&read) {
            let _ = acpi.table(&read, b"APIC");
            let (_, len) = acpi.get_table(&read, b"APIC", Some(&mut [0u8; 64]));
            prop_assert!(len <= acpi::MAX_TABLE_LENGTH);
        }
    }

    #[test]
    fn log_level_values_of_any_shape(names in proptest::collection::vec("[A-Za-z]{0,10}", 0..8), dword in any::<u32>()) {
        let level = crate::log::parse_log_level(Ok(RegValue::MultiSz(names.clone()))).unwrap();
        prop_assert_eq!(level & !0x8000_000F, 0);
        prop_assert!(crate::log::parse_log_level(Ok(RegValue::Dword(dword))).is_err());
    }

    #[test]
    fn start_option_lookup(options in "[A-Z:=_ ]{0,60}", prefix in "[A-Z:=_]{1,8}") {
        if let Some(o) = crate::registry::find_start_option(&options, &prefix) {
            prop_assert!(o.starts_with(&prefix));
            prop_assert!(!o.contains(' '));
        }
    }
}
