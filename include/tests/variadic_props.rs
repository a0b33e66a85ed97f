//! Property tests of the C printf renderer: arbitrary format bytes from a C caller never
//! panic, never write past the sink, and never read past the promised slots.

use proptest::prelude::*;
use xen_include::variadic::{count_slots, vformat_list, FormatError, SliceSink, VaList};

static TEXT: &[u8] = b"payload\0";

fn format_bytes() -> impl Strategy<Value = Vec<u8>> {
    // Bias towards conversion syntax so specs are exercised, not just literals.
    let piece = prop_oneof![
        Just(b"%".to_vec()),
        Just(b"%s".to_vec()),
        Just(b"%*.*d".to_vec()),
        Just(b"%-08.3llx".to_vec()),
        Just(b"%I64u".to_vec()),
        Just(b"%hhc".to_vec()),
        Just(b"%p".to_vec()),
        proptest::collection::vec(any::<u8>(), 0..6),
    ];
    proptest::collection::vec(piece, 0..12).prop_map(|v| v.concat())
}

proptest! {
    #[test]
    fn arbitrary_formats_are_rendered_or_refused_safely(fmt in format_bytes(), cap in 0usize..128) {
        // Every slot is a valid string address, so %s anywhere is sound; integer
        // conversions just print the address.
        let addr = TEXT.as_ptr() as u64;
        let slots = vec![addr; 64];
        let mut buf = vec![0u8; cap];
        let mut sink = SliceSink::new(&mut buf);
        match count_slots(&fmt) {
            Ok(n) if n <= slots.len() => {
                let mut va = VaList::from_slice(&slots[..n]);
                // SAFETY: every slot points at a NUL-terminated string.
                let r = unsafe { vformat_list(&fmt, &mut va, &mut sink) };
                prop_assert!(r != Err(FormatError::MissingArgument), "{:?}", r);
                prop_assert!(sink.written().len() <= cap);
                if r.is_ok() {
                    prop_assert_eq!(va.remaining(), 0, "every promised slot consumed");
                }
            }
            Ok(_) => {}
            Err(e) => prop_assert!(matches!(e, FormatError::Truncated), "{:?}", e),
        }
    }

    #[test]
    fn fewer_slots_than_promised_is_an_error_not_a_read(fmt in format_bytes()) {
        let addr = TEXT.as_ptr() as u64;
        if let Ok(n) = count_slots(&fmt) {
            if n > 0 && n <= 64 {
                let slots = vec![addr; n - 1];
                let mut buf = [0u8; 4096];
                let mut sink = SliceSink::new(&mut buf);
                let mut va = VaList::from_slice(&slots);
                // SAFETY: every slot points at a NUL-terminated string.
                let r = unsafe { vformat_list(&fmt, &mut va, &mut sink) };
                prop_assert!(r.is_err());
            }
        }
    }
}
