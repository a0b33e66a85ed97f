//! `acpi.c`: find the RSDP in the BIOS area, walk the XSDT and fetch tables; parse the
//! MADT's Local APIC entries (APIC ID → ACPI Processor ID, which is Xen's `vcpu_id`).
#![forbid(unsafe_code)]

use alloc::vec;
use alloc::vec::Vec;

use xen_include::status::{NtStatus, STATUS_BUFFER_OVERFLOW, STATUS_SUCCESS, STATUS_UNSUCCESSFUL};

/// Reads guest physical memory: `(address, buffer)`.
pub type PhysRead<'a> = &'a dyn Fn(u64, &mut [u8]) -> Result<(), NtStatus>;

/// First byte of the area scanned for the RSDP.
pub const RSDP_SCAN_START: u64 = 0xE0000;
/// Length of the area scanned for the RSDP (0xE0000–0xFFFFF).
pub const RSDP_SCAN_LENGTH: usize = 0x20000;
/// `sizeof (ACPI_RSDP)` (the ACPI 2.0 layout; the checksum covers all of it).
pub const RSDP_LENGTH: usize = 36;
/// `sizeof (ACPI_HEADER)`.
pub const HEADER_LENGTH: usize = 36;
/// Offset of the first MADT entry (`sizeof (ACPI_MADT)`).
pub const MADT_ENTRIES_OFFSET: usize = 44;
/// MADT entry type of a Processor Local APIC.
pub const MADT_TYPE_LOCAL_APIC: u8 = 0;
/// Largest table accepted (bounds what a corrupt length can make us read).
pub const MAX_TABLE_LENGTH: usize = 0x10000;

/// True when the bytes sum to zero modulo 256.
pub fn checksum_ok(bytes: &[u8]) -> bool {
    bytes.iter().fold(0u8, |s, b| s.wrapping_add(*b)) == 0
}

fn le32(bytes: &[u8], at: usize) -> Option<u32> {
    let mut a = [0u8; 4];
    a.copy_from_slice(bytes.get(at..at.checked_add(4)?)?);
    Some(u32::from_le_bytes(a))
}

fn le64(bytes: &[u8], at: usize) -> Option<u64> {
    let b = bytes.get(at..at.checked_add(8)?)?;
    let mut a = [0u8; 8];
    a.copy_from_slice(b);
    Some(u64::from_le_bytes(a))
}

/// The Root System Description Pointer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rsdp {
    /// Physical address where it was found.
    pub address: u64,
    /// ACPI revision (0 = ACPI 1.0, RSDT only; 2 = ACPI 2.0+).
    pub revision: u8,
    /// 32-bit RSDT address.
    pub rsdt_address: u32,
    /// 64-bit XSDT address (0 when absent).
    pub xsdt_address: u64,
}

/// Scan `area` (whose first byte is at physical `base`) on 16-byte steps for
/// `"RSD PTR "` with a valid checksum over [`RSDP_LENGTH`] bytes.
pub fn scan_rsdp(base: u64, area: &[u8]) -> Option<Rsdp> {
    let mut offset = 0usize;
    while offset + RSDP_LENGTH < area.len() {
        let r = area.get(offset..offset + RSDP_LENGTH)?;
        if r.starts_with(b"RSD PTR ") && checksum_ok(r) {
            return Some(Rsdp {
                address: base + offset as u64,
                revision: *r.get(15)?,
                rsdt_address: le32(r, 16)?,
                xsdt_address: le64(r, 24)?,
            });
        }
        offset += 16;
    }
    None
}

/// Read a whole table at `address`: the header first, then `Length` bytes (bounded).
pub fn read_table(read: PhysRead<'_>, address: u64) -> Result<Vec<u8>, NtStatus> {
    let mut header = [0u8; HEADER_LENGTH];
    read(address, &mut header)?;
    let length = le32(&header, 4).unwrap_or(0) as usize;
    if !(HEADER_LENGTH..=MAX_TABLE_LENGTH).contains(&length) {
        return Err(STATUS_UNSUCCESSFUL);
    }
    let mut table = vec![0u8; length];
    read(address, &mut table)?;
    Ok(table)
}

/// Why the ACPI tables could not be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AcpiError {
    /// No RSDP with a valid checksum in 0xE0000–0xFFFFF.
    NoRsdp,
    /// The RSDP has no XSDT (ACPI 1.0, RSDT only): only the XSDT is used.
    NoXsdt,
    /// The XSDT signature or checksum is wrong.
    BadXsdt,
    /// No table with the signature (and a valid checksum) is listed.
    TableNotFound,
    /// Reading physical memory failed.
    Read(NtStatus),
}

impl AcpiError {
    /// The NTSTATUS upstream returns for this failure.
    pub fn status(self) -> NtStatus {
        match self {
            Self::Read(s) => s,
            _ => STATUS_UNSUCCESSFUL,
        }
    }
}

/// The firmware tables reached from the RSDP.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Acpi {
    /// The RSDP found at initialisation.
    pub rsdp: Rsdp,
}

impl Acpi {
    /// `AcpiInitialize`: find the RSDP.
    pub fn initialize(read: PhysRead<'_>) -> Result<Self, AcpiError> {
        let mut area = vec![0u8; RSDP_SCAN_LENGTH];
        read(RSDP_SCAN_START, &mut area).map_err(AcpiError::Read)?;
        let rsdp = scan_rsdp(RSDP_SCAN_START, &area).ok_or(AcpiError::NoRsdp)?;
        Ok(Self { rsdp })
    }

    /// The 64-bit table addresses listed in the XSDT (signature and checksum verified).
    pub fn xsdt_entries(&self, read: PhysRead<'_>) -> Result<Vec<u64>, AcpiError> {
        if self.rsdp.revision < 2 || self.rsdp.xsdt_address == 0 {
            return Err(AcpiError::NoXsdt);
        }
        let xsdt = read_table(read, self.rsdp.xsdt_address).map_err(|s| {
            if s == STATUS_UNSUCCESSFUL {
                AcpiError::BadXsdt
            } else {
                AcpiError::Read(s)
            }
        })?;
        if !xsdt.starts_with(b"XSDT") || !checksum_ok(&xsdt) {
            return Err(AcpiError::BadXsdt);
        }
        let count = (xsdt.len() - HEADER_LENGTH) / 8;
        Ok((0..count)
            .filter_map(|i| le64(&xsdt, HEADER_LENGTH + 8 * i))
            .collect())
    }

    /// Find the table whose signature is `signature` (with a valid checksum) and return it.
    pub fn table(&self, read: PhysRead<'_>, signature: &[u8; 4]) -> Result<Vec<u8>, AcpiError> {
        for address in self.xsdt_entries(read)? {
            let Ok(table) = read_table(read, address) else {
                continue;
            };
            if table.starts_with(signature) && checksum_ok(&table) {
                return Ok(table);
            }
        }
        Err(AcpiError::TableNotFound)
    }

    /// `AcpiGetTable` with its buffer protocol: copies the table into `buffer` and returns
    /// `(STATUS_SUCCESS, length)`, or `(STATUS_BUFFER_OVERFLOW, length)` when `buffer` is
    /// absent or too small.
    pub fn get_table(
        &self,
        read: PhysRead<'_>,
        signature: &[u8; 4],
        buffer: Option<&mut [u8]>,
    ) -> (NtStatus, usize) {
        match self.table(read, signature) {
            Err(e) => (e.status(), 0),
            Ok(table) => match buffer {
                Some(b) => match b.get_mut(..table.len()) {
                    Some(dst) => {
                        dst.copy_from_slice(&table);
                        (STATUS_SUCCESS, table.len())
                    }
                    None => (STATUS_BUFFER_OVERFLOW, table.len()),
                },
                None => (STATUS_BUFFER_OVERFLOW, table.len()),
            },
        }
    }
}

/// A Processor Local APIC entry of the MADT.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LocalApic {
    /// ACPI Processor ID (Xen's `vcpu_id`).
    pub processor_id: u8,
    /// Local APIC ID (CPUID(1).EBX[31:24]).
    pub apic_id: u8,
    /// Flags (bit 0 = enabled).
    pub flags: u32,
}

/// The Multiple APIC Description Table (`"APIC"`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Madt {
    /// Every Local APIC entry, in table order.
    pub local_apics: Vec<LocalApic>,
}

impl Madt {
    /// Parse a MADT; entries with a zero or overrunning length end the walk.
    pub fn parse(table: &[u8]) -> Result<Self, AcpiError> {
        if !table.starts_with(b"APIC") || table.len() < MADT_ENTRIES_OFFSET {
            return Err(AcpiError::TableNotFound);
        }
        let length = (le32(table, 4).unwrap_or(0) as usize).min(table.len());
        let mut local_apics = Vec::new();
        let mut offset = MADT_ENTRIES_OFFSET;
        while let Some(&[kind, len]) = table.get(offset..offset + 2) {
            let len = usize::from(len);
            if len < 2 || offset + len > length {
                break;
            }
            if kind == MADT_TYPE_LOCAL_APIC && len >= 8 {
                if let Some(&[processor_id, apic_id]) = table.get(offset + 2..offset + 4) {
                    local_apics.push(LocalApic {
                        processor_id,
                        apic_id,
                        flags: le32(table, offset + 4).unwrap_or(0),
                    });
                }
            }
            offset += len;
        }
        Ok(Self { local_apics })
    }

    /// The ACPI Processor ID of the Local APIC `apic_id`.
    pub fn processor_id(&self, apic_id: u8) -> Option<u8> {
        self.local_apics
            .iter()
            .find(|a| a.apic_id == apic_id)
            .map(|a| a.processor_id)
    }
}

/// Builders of firmware tables as hvmloader lays them out: for the simulator's guest model
/// (scenario tests of every crate that boots xen.sys on it) and for the tests here.
pub mod build {
    use super::*;

    /// Where [`firmware`] places the RSDP (inside the 0xE0000–0xFFFFF scan area).
    pub const RSDP_ADDRESS: u64 = 0xF5A00;
    /// Where [`firmware`] places the XSDT.
    pub const XSDT_ADDRESS: u64 = 0xFC00_0000;
    /// Where [`firmware`] places the FADT.
    pub const FACP_ADDRESS: u64 = 0xFC00_2000;
    /// Where [`firmware`] places the MADT.
    pub const MADT_ADDRESS: u64 = 0xFC00_3000;

    /// Fix the checksum byte at `at` so `bytes` sums to zero.
    pub fn fix_checksum(bytes: &mut [u8], at: usize) {
        if let Some(b) = bytes.get_mut(at) {
            *b = 0;
        }
        let sum = bytes.iter().fold(0u8, |s, b| s.wrapping_add(*b));
        if let Some(b) = bytes.get_mut(at) {
            *b = 0u8.wrapping_sub(sum);
        }
    }

    fn put(bytes: &mut [u8], at: usize, src: &[u8]) {
        for (d, s) in bytes.iter_mut().skip(at).zip(src) {
            *d = *s;
        }
    }

    /// A table with `signature` and `body` after the 36-byte header.
    pub fn table(signature: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut t = vec![0u8; HEADER_LENGTH];
        put(&mut t, 0, signature);
        put(&mut t, 8, &[1]);
        put(&mut t, 10, b"XENRS ");
        t.extend_from_slice(body);
        let len = t.len() as u32;
        put(&mut t, 4, &len.to_le_bytes());
        fix_checksum(&mut t, 9);
        t
    }

    /// A MADT with Local APIC entries `(processor_id, apic_id)` and an I/O APIC entry.
    pub fn madt(cpus: &[(u8, u8)]) -> Vec<u8> {
        let mut body = vec![0u8; 8];
        put(&mut body, 0, &0xFEE0_0000u32.to_le_bytes());
        for (pid, aid) in cpus {
            body.extend_from_slice(&[0, 8, *pid, *aid, 1, 0, 0, 0]);
        }
        body.extend_from_slice(&[1, 12, 0, 0, 0, 0, 0xC0, 0xFE, 0, 0, 0, 0]);
        table(b"APIC", &body)
    }

    /// An XSDT listing `entries`.
    pub fn xsdt(entries: &[u64]) -> Vec<u8> {
        let body: Vec<u8> = entries.iter().flat_map(|e| e.to_le_bytes()).collect();
        table(b"XSDT", &body)
    }

    /// An RSDP of `revision` pointing at `rsdt` and `xsdt`.
    pub fn rsdp(revision: u8, rsdt: u32, xsdt: u64) -> Vec<u8> {
        let mut r = vec![0u8; RSDP_LENGTH];
        put(&mut r, 0, b"RSD PTR ");
        put(&mut r, 9, b"XENRS ");
        put(&mut r, 15, &[revision]);
        put(&mut r, 16, &rsdt.to_le_bytes());
        put(&mut r, 20, &(RSDP_LENGTH as u32).to_le_bytes());
        put(&mut r, 24, &xsdt.to_le_bytes());
        if let Some(head) = r.get_mut(..20) {
            fix_checksum(head, 8);
        }
        fix_checksum(&mut r, 32);
        r
    }

    /// The firmware of an HVM guest with `vcpus` processors (APIC ID n ↔ ACPI Processor ID
    /// n, as hvmloader builds it): `(physical address, bytes)` regions — the whole
    /// 0xE0000–0xFFFFF BIOS area holding the RSDP, then the XSDT, a FADT and the MADT.
    pub fn firmware(vcpus: u32) -> Vec<(u64, Vec<u8>)> {
        let cpus: Vec<(u8, u8)> = (0..vcpus.min(256)).map(|i| (i as u8, i as u8)).collect();
        let mut bios = vec![0u8; RSDP_SCAN_LENGTH];
        put(
            &mut bios,
            (RSDP_ADDRESS - RSDP_SCAN_START) as usize,
            &rsdp(2, 0, XSDT_ADDRESS),
        );
        vec![
            (RSDP_SCAN_START, bios),
            (XSDT_ADDRESS, xsdt(&[FACP_ADDRESS, MADT_ADDRESS])),
            (FACP_ADDRESS, table(b"FACP", &[0u8; 100])),
            (MADT_ADDRESS, madt(&cpus)),
        ]
    }

    /// Sparse physical memory for tests.
    #[cfg(test)]
    #[derive(Default)]
    pub struct PhysMem(pub std::collections::BTreeMap<u64, Vec<u8>>);

    #[cfg(test)]
    impl PhysMem {
        /// Place `bytes` at `address`.
        pub fn put(&mut self, address: u64, bytes: Vec<u8>) {
            self.0.insert(address, bytes);
        }
        /// Read like `MmMapIoSpace` + copy; unmapped bytes read as zero.
        pub fn read(&self, address: u64, buf: &mut [u8]) -> Result<(), NtStatus> {
            buf.fill(0);
            for (base, bytes) in &self.0 {
                for (i, b) in bytes.iter().enumerate() {
                    let a = base + i as u64;
                    if a >= address && a < address + buf.len() as u64 {
                        buf[(a - address) as usize] = *b;
                    }
                }
            }
            Ok(())
        }
    }

    /// A complete set: RSDP at 0xF5A00, XSDT at 0xFC00_0000 listing a FACP and the MADT.
    #[cfg(test)]
    pub fn machine(cpus: &[(u8, u8)]) -> PhysMem {
        let mut m = PhysMem::default();
        m.put(RSDP_ADDRESS, rsdp(2, 0xFC00_1000, XSDT_ADDRESS));
        m.put(XSDT_ADDRESS, xsdt(&[FACP_ADDRESS, MADT_ADDRESS]));
        m.put(FACP_ADDRESS, table(b"FACP", &[0u8; 100]));
        m.put(MADT_ADDRESS, madt(cpus));
        m
    }
}

#[cfg(test)]
mod tests {
    use super::build::*;
    use super::*;

    fn init(m: &PhysMem) -> Result<Acpi, AcpiError> {
        Acpi::initialize(&|a, b| m.read(a, b))
    }

    #[test]
    fn valid_tables_map_apic_to_processor_id() {
        let m = machine(&[(0, 0), (1, 2), (7, 4)]);
        let acpi = init(&m).unwrap();
        assert_eq!(acpi.rsdp.address, 0xF5A00);
        assert_eq!(acpi.rsdp.xsdt_address, 0xFC00_0000);
        let read = |a, b: &mut [u8]| m.read(a, b);
        let madt = Madt::parse(&acpi.table(&read, b"APIC").unwrap()).unwrap();
        assert_eq!(madt.local_apics.len(), 3);
        assert_eq!(madt.processor_id(0), Some(0));
        assert_eq!(madt.processor_id(2), Some(1));
        assert_eq!(madt.processor_id(4), Some(7));
        assert_eq!(madt.processor_id(6), None);
    }

    #[test]
    fn get_table_reports_length_when_buffer_too_small() {
        let m = machine(&[(0, 0)]);
        let acpi = init(&m).unwrap();
        let read = |a, b: &mut [u8]| m.read(a, b);
        let (status, len) = acpi.get_table(&read, b"APIC", None);
        assert_eq!(status, STATUS_BUFFER_OVERFLOW);
        assert_eq!(len, HEADER_LENGTH + 8 + 8 + 12);
        let mut small = vec![0u8; len - 1];
        assert_eq!(
            acpi.get_table(&read, b"APIC", Some(&mut small)).0,
            STATUS_BUFFER_OVERFLOW
        );
        let mut buf = vec![0u8; len];
        assert_eq!(
            acpi.get_table(&read, b"APIC", Some(&mut buf)),
            (STATUS_SUCCESS, len)
        );
        assert!(buf.starts_with(b"APIC"));
        assert_eq!(acpi.get_table(&read, b"HPET", None).0, STATUS_UNSUCCESSFUL);
    }

    #[test]
    fn bad_rsdp_checksum_is_skipped() {
        let mut m = machine(&[(0, 0)]);
        let mut bad = rsdp(2, 0, 0xFC00_0000);
        bad[8] ^= 1;
        m.0.remove(&0xF5A00);
        m.put(0xE0010, bad);
        assert_eq!(init(&m), Err(AcpiError::NoRsdp));
        // A valid one later in the area is still found.
        m.put(0xFFF00, rsdp(2, 0, 0xFC00_0000));
        assert_eq!(init(&m).unwrap().rsdp.address, 0xFFF00);
    }

    #[test]
    fn rsdp_off_the_16_byte_grid_is_not_found() {
        let mut m = PhysMem::default();
        m.put(0xE0008, rsdp(2, 0, 0xFC00_0000));
        assert_eq!(init(&m), Err(AcpiError::NoRsdp));
    }

    #[test]
    fn bad_table_checksums() {
        let mut m = machine(&[(0, 0)]);
        let mut x = xsdt(&[0xFC00_2000, 0xFC00_3000]);
        x[9] ^= 0x55;
        m.put(0xFC00_0000, x);
        let acpi = init(&m).unwrap();
        let read = |a, b: &mut [u8]| m.read(a, b);
        assert_eq!(acpi.table(&read, b"APIC"), Err(AcpiError::BadXsdt));

        let mut m = machine(&[(0, 0)]);
        let mut madt = madt(&[(0, 0)]);
        madt[9] ^= 0x55;
        m.put(0xFC00_3000, madt);
        let acpi = init(&m).unwrap();
        let read = |a, b: &mut [u8]| m.read(a, b);
        assert_eq!(acpi.table(&read, b"APIC"), Err(AcpiError::TableNotFound));
    }

    #[test]
    fn rsdt_only_firmware_is_refused() {
        let mut m = PhysMem::default();
        m.put(0xF0000, rsdp(0, 0xFC00_1000, 0));
        m.put(0xFC00_1000, table(b"RSDT", &0xFC00_3000u32.to_le_bytes()));
        m.put(0xFC00_3000, madt(&[(0, 0)]));
        let acpi = init(&m).unwrap();
        let read = |a, b: &mut [u8]| m.read(a, b);
        assert_eq!(acpi.table(&read, b"APIC"), Err(AcpiError::NoXsdt));
    }

    #[test]
    fn missing_madt() {
        let mut m = machine(&[]);
        m.put(0xFC00_0000, xsdt(&[0xFC00_2000]));
        let acpi = init(&m).unwrap();
        let read = |a, b: &mut [u8]| m.read(a, b);
        assert_eq!(acpi.table(&read, b"APIC"), Err(AcpiError::TableNotFound));
    }

    #[test]
    fn madt_with_corrupt_entry_lengths_stops_cleanly() {
        let mut t = madt(&[(0, 0), (1, 1)]);
        // Zero-length second entry.
        t[MADT_ENTRIES_OFFSET + 9] = 0;
        let m = Madt::parse(&t).unwrap();
        assert_eq!(m.local_apics.len(), 1);
        // Entry running past the table.
        let mut t = madt(&[(0, 0)]);
        t[MADT_ENTRIES_OFFSET + 1] = 200;
        assert!(Madt::parse(&t).unwrap().local_apics.is_empty());
        // Header length larger than the bytes we have.
        let mut t = madt(&[(3, 9)]);
        t[4] = 0xFF;
        assert_eq!(Madt::parse(&t).unwrap().processor_id(9), Some(3));
        assert!(Madt::parse(b"APIC").is_err());
        assert!(Madt::parse(&[0u8; 60]).is_err());
    }

    #[test]
    fn firmware_regions_parse() {
        let mut m = PhysMem::default();
        for (a, b) in firmware(3) {
            m.put(a, b);
        }
        let acpi = init(&m).unwrap();
        let read = |a, b: &mut [u8]| m.read(a, b);
        let madt = Madt::parse(&acpi.table(&read, b"APIC").unwrap()).unwrap();
        assert_eq!(madt.processor_id(2), Some(2));
        assert_eq!(madt.local_apics.len(), 3);
    }

    #[test]
    fn oversized_table_length_is_refused() {
        let mut m = machine(&[(0, 0)]);
        let mut x = xsdt(&[0xFC00_3000]);
        x[4..8].copy_from_slice(&0x1000_0000u32.to_le_bytes());
        m.put(0xFC00_0000, x);
        let acpi = init(&m).unwrap();
        let read = |a, b: &mut [u8]| m.read(a, b);
        assert_eq!(acpi.table(&read, b"APIC"), Err(AcpiError::BadXsdt));
    }
}
