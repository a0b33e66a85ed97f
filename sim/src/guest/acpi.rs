//! The ACPI tables hvmloader builds for an HVM guest, reduced to what the drivers read:
//! an RSDP in the BIOS area (revision 2), an XSDT and a MADT with one enabled Local APIC
//! per vCPU (ACPI processor ID = vcpu_id, APIC ID as the simulated CPUID reports it).

/// Where the RSDP sits (16-byte aligned, inside the 0xE0000–0xFFFFF scan window).
pub const RSDP_ADDRESS: u64 = 0xE_A020;
/// Where the XSDT sits (hvmloader's ACPI area below 4 GiB).
pub const XSDT_ADDRESS: u64 = 0xFC00_8000;
/// Where the MADT sits.
pub const MADT_ADDRESS: u64 = 0xFC00_9000;

const HEADER_LENGTH: usize = 36;

fn checksum(bytes: &[u8]) -> u8 {
    0u8.wrapping_sub(bytes.iter().fold(0u8, |sum, b| sum.wrapping_add(*b)))
}

fn table(signature: &[u8; 4], revision: u8, body: &[u8]) -> Vec<u8> {
    let mut t = vec![0u8; HEADER_LENGTH];
    t[..4].copy_from_slice(signature);
    t[8] = revision;
    t[10..16].copy_from_slice(b"Xen   ");
    t[16..24].copy_from_slice(b"HVM     ");
    t[28..32].copy_from_slice(b"HVML");
    t.extend_from_slice(body);
    let length = t.len() as u32;
    t[4..8].copy_from_slice(&length.to_le_bytes());
    t[9] = checksum(&t);
    t
}

/// The MADT for `vcpus` processors: Local APIC entries `(processor id, APIC id, enabled)`
/// and the I/O APIC.
pub fn madt(vcpus: u32) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&0xFEE0_0000u32.to_le_bytes());
    body.extend_from_slice(&1u32.to_le_bytes()); // PCAT_COMPAT
    for vcpu in 0..vcpus {
        body.extend_from_slice(&[0, 8, vcpu as u8, vcpu as u8, 1, 0, 0, 0]);
    }
    body.extend_from_slice(&[1, 12, 0, 0, 0x00, 0x00, 0xC0, 0xFE, 0, 0, 0, 0]);
    table(b"APIC", 2, &body)
}

/// The XSDT pointing at `entries`.
pub fn xsdt(entries: &[u64]) -> Vec<u8> {
    let body: Vec<u8> = entries.iter().flat_map(|e| e.to_le_bytes()).collect();
    table(b"XSDT", 1, &body)
}

/// A revision-2 RSDP pointing at the XSDT (no RSDT, as hvmloader's 64-bit tables).
pub fn rsdp(xsdt_address: u64) -> Vec<u8> {
    let mut r = vec![0u8; 36];
    r[..8].copy_from_slice(b"RSD PTR ");
    r[9..15].copy_from_slice(b"Xen   ");
    r[15] = 2;
    r[20..24].copy_from_slice(&36u32.to_le_bytes());
    r[24..32].copy_from_slice(&xsdt_address.to_le_bytes());
    r[8] = checksum(&r[..20]);
    r[32] = checksum(&r);
    r
}

/// The BIOS area scanned for the RSDP.
pub const BIOS_AREA: u64 = 0xE_0000;
/// Its length (up to 1 MiB).
pub const BIOS_AREA_LENGTH: usize = 0x2_0000;

/// Every firmware region with its physical address, for `WindowsGuest::set_firmware_bytes`:
/// the whole BIOS area (with the RSDP inside), the XSDT and the MADT.
pub fn hvm_tables(vcpus: u32) -> Vec<(u64, Vec<u8>)> {
    let mut bios = vec![0u8; BIOS_AREA_LENGTH];
    let at = (RSDP_ADDRESS - BIOS_AREA) as usize;
    bios[at..at + 36].copy_from_slice(&rsdp(XSDT_ADDRESS));
    vec![
        (BIOS_AREA, bios),
        (XSDT_ADDRESS, xsdt(&[MADT_ADDRESS])),
        (MADT_ADDRESS, madt(vcpus)),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_checksum_to_zero_and_list_every_vcpu() {
        for (_, bytes) in hvm_tables(3) {
            let sum = bytes.iter().fold(0u8, |s, b| s.wrapping_add(*b));
            assert_eq!(sum, 0);
        }
        let rsdp = rsdp(XSDT_ADDRESS);
        assert_eq!(rsdp[..20].iter().fold(0u8, |s, b| s.wrapping_add(*b)), 0);
        let madt = madt(3);
        let mut lapics = 0;
        let mut at = HEADER_LENGTH + 8;
        while at + 2 <= madt.len() {
            if madt[at] == 0 {
                lapics += 1;
            }
            at += usize::from(madt[at + 1]);
        }
        assert_eq!(lapics, 3);
    }
}
