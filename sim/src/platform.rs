//! The emulated platform around the guest: the Xen platform PCI device and its I/O ports
//! (0x10–0x12: magic, protocol version, product/build handshake, blacklisting, unplug, log),
//! the debug port 0xE9, and the PCI/IDE devices that QEMU emulates until the unplug protocol
//! removes them.

use std::sync::Arc;

use common::hypercall::PortWidth;

use crate::hv::abi::*;

/// What an emulated device is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeviceKind {
    /// The Xen platform PCI device (xenbus binds to it).
    XenPlatform,
    /// The PIIX IDE controller.
    IdeController,
    /// A disk on an IDE channel.
    IdeDisk {
        /// 0 = primary, 1 = secondary.
        channel: u8,
        /// 0 = master, 1 = slave.
        position: u8,
    },
    /// A CD-ROM on an IDE channel (never unplugged).
    IdeCdrom {
        /// 0 = primary, 1 = secondary.
        channel: u8,
        /// 0 = master, 1 = slave.
        position: u8,
    },
    /// A SCSI disk controller (unplugged with the IDE disks).
    ScsiController,
    /// An NVMe controller.
    Nvme,
    /// An emulated network card.
    Nic,
}

/// A PCI base address register.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bar {
    /// I/O port range.
    Io {
        /// First port.
        base: u16,
        /// Number of ports.
        len: u16,
    },
    /// Memory range (guest physical addresses).
    Memory {
        /// First byte.
        base: u64,
        /// Length in bytes.
        len: u64,
    },
}

/// One emulated device with its PCI identity (IDE devices carry the controller's).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Device {
    /// What it is.
    pub kind: DeviceKind,
    /// PCI vendor id.
    pub vendor: u16,
    /// PCI device id.
    pub device: u16,
    /// PCI revision.
    pub revision: u8,
    /// PCI slot number (IDE devices report their controller's slot).
    pub slot: u8,
    /// Subsystem vendor and device ids.
    pub subsystem: (u16, u16),
    /// Class code: (base class, sub-class, programming interface).
    pub class: (u8, u8, u8),
    /// Base address registers.
    pub bars: Vec<Bar>,
}

impl Device {
    fn pci(
        kind: DeviceKind,
        vendor: u16,
        device: u16,
        revision: u8,
        slot: u8,
        class: (u8, u8, u8),
    ) -> Self {
        Device {
            kind,
            vendor,
            device,
            revision,
            slot,
            subsystem: (vendor, device),
            class,
            bars: Vec::new(),
        }
    }
}

/// Decides whether a driver (product, build) is blacklisted.
pub type BlacklistFn = Arc<dyn Fn(u16, u32) -> bool + Send + Sync>;

/// The platform's state.
pub struct Platform {
    devices: Vec<Device>,
    protocol_version: u8,
    product: Option<u16>,
    build: Option<u32>,
    blacklist: Option<BlacklistFn>,
    blacklisted: bool,
    flags: u8,
    unplug_writes: Vec<u16>,
    log: Vec<u8>,
    log_lines: Vec<String>,
    debug_port: Vec<u8>,
    /// PCI configuration mechanism #1: the last value written to 0xCF8.
    pci_address: u32,
    /// ATA drive/head register (0x1F6 / 0x176) per channel: bit 4 selects the slave.
    ata_select: [u8; 2],
}

/// PCI configuration address port (mechanism #1).
pub const PCI_CONFIG_ADDRESS: u16 = 0xCF8;
/// PCI configuration data port (mechanism #1).
pub const PCI_CONFIG_DATA: u16 = 0xCFC;
/// ATA command block bases of the primary and secondary channels.
pub const ATA_CHANNEL_BASES: [u16; 2] = [0x1F0, 0x170];
/// ATA status with a drive attached and idle: DRDY | DSC.
pub const ATA_STATUS_READY: u8 = 0x50;

impl Default for Platform {
    fn default() -> Self {
        Self::new()
    }
}

impl Platform {
    /// The default HVM machine (QEMU's i440fx layout): PIIX3 IDE controller with a disk on
    /// primary master and slave and a CD-ROM on secondary master, the Xen platform device
    /// (I/O BAR 0xC000, 16 MiB memory BAR at 0xF0000000 until [`Platform::set_memory_bar`]),
    /// an RTL8139 NIC and an NVMe disk.
    pub fn new() -> Self {
        let ide = |kind| Device::pci(kind, 0x8086, 0x7010, 0, 1, (0x01, 0x01, 0x80));
        let mut xen = Device::pci(
            DeviceKind::XenPlatform,
            XEN_PLATFORM_VENDOR_ID,
            XEN_PLATFORM_DEVICE_ID,
            XEN_PLATFORM_VENDOR_DEVICE_REVISION,
            2,
            (0xFF, 0x80, 0x00),
        );
        xen.bars = vec![
            Bar::Io {
                base: 0xC000,
                len: 0x100,
            },
            Bar::Memory {
                base: 0xF000_0000,
                len: 0x0100_0000,
            },
        ];
        Platform {
            devices: vec![
                ide(DeviceKind::IdeController),
                ide(DeviceKind::IdeDisk {
                    channel: 0,
                    position: 0,
                }),
                ide(DeviceKind::IdeDisk {
                    channel: 0,
                    position: 1,
                }),
                ide(DeviceKind::IdeCdrom {
                    channel: 1,
                    position: 0,
                }),
                xen,
                Device::pci(DeviceKind::Nic, 0x10EC, 0x8139, 0x20, 3, (0x02, 0x00, 0x00)),
                Device::pci(DeviceKind::Nvme, 0x1B36, 0x0010, 2, 4, (0x01, 0x08, 0x02)),
            ],
            protocol_version: 1,
            product: None,
            build: None,
            blacklist: None,
            blacklisted: false,
            flags: 0,
            unplug_writes: Vec::new(),
            log: Vec::new(),
            log_lines: Vec::new(),
            debug_port: Vec::new(),
            pci_address: 0,
            ata_select: [0; 2],
        }
    }

    /// Point the platform device's memory BAR at `base..base+len` (the machine puts it over
    /// the unpopulated hole frames, so drivers can use it for foreign mappings).
    pub fn set_memory_bar(&mut self, base: u64, len: u64) {
        for d in self
            .devices
            .iter_mut()
            .filter(|d| d.kind == DeviceKind::XenPlatform)
        {
            for b in d.bars.iter_mut() {
                if let Bar::Memory { .. } = b {
                    *b = Bar::Memory { base, len };
                }
            }
        }
    }

    /// Add the XenServer "vendor" PV device (`5853:<device_id>`, revision 1) beside the
    /// standard platform device, as QEMU does when configured with one.
    pub fn add_vendor_device(&mut self, device_id: u16) {
        let d = Device::pci(
            DeviceKind::XenPlatform,
            XEN_PLATFORM_VENDOR_ID,
            device_id,
            XEN_PLATFORM_VENDOR_DEVICE_REVISION,
            5,
            (0xFF, 0x80, 0x00),
        );
        self.devices.push(d);
    }

    /// Replace the emulated device list.
    pub fn set_devices(&mut self, devices: Vec<Device>) {
        self.devices = devices;
    }

    /// The devices still present.
    pub fn devices(&self) -> &[Device] {
        &self.devices
    }

    /// Set the protocol version reported on port 0x12 (0 = no product/build handshake).
    pub fn set_protocol_version(&mut self, version: u8) {
        self.protocol_version = version;
    }

    /// Install the blacklist rule evaluated when the driver writes its build number.
    pub fn set_blacklist(&mut self, rule: Option<BlacklistFn>) {
        self.blacklist = rule;
    }

    /// Product number and build number written by the driver, if any.
    pub fn driver_identity(&self) -> (Option<u16>, Option<u32>) {
        (self.product, self.build)
    }

    /// Every value written to the unplug register, in order.
    pub fn unplug_writes(&self) -> &[u16] {
        &self.unplug_writes
    }

    /// Lines the driver logged through port 0x12.
    pub fn log_lines(&self) -> &[String] {
        &self.log_lines
    }

    /// Bytes written to the debug port 0xE9.
    pub fn debug_port_output(&self) -> String {
        String::from_utf8_lossy(&self.debug_port).into_owned()
    }

    fn unplug(&mut self, bits: u16) {
        self.unplug_writes.push(bits);
        self.devices.retain(|d| match d.kind {
            DeviceKind::IdeDisk { channel, position } => {
                let primary_master = channel == 0 && position == 0;
                !(bits & UnplugFlags::IDE_SCSI_DISKS.bits() != 0
                    || (bits & UnplugFlags::AUX_IDE_DISKS.bits() != 0 && !primary_master))
            }
            DeviceKind::ScsiController => bits & UnplugFlags::IDE_SCSI_DISKS.bits() == 0,
            DeviceKind::Nvme => bits & UnplugFlags::NVME_DISKS.bits() == 0,
            DeviceKind::Nic => bits & UnplugFlags::ALL_NICS.bits() == 0,
            _ => true,
        });
    }

    /// A dword of the configuration space of the device at `slot` (function 0, bus 0):
    /// identity, class and subsystem; other registers read as zero. Absent slots read as
    /// all ones, as on real hardware.
    pub fn pci_config_read(&self, slot: u8, function: u8, register: u8) -> u32 {
        let device = self.devices.iter().find(|d| {
            d.slot == slot
                && !matches!(
                    d.kind,
                    DeviceKind::IdeDisk { .. } | DeviceKind::IdeCdrom { .. }
                )
        });
        let Some(d) = device.filter(|_| function == 0) else {
            return 0xFFFF_FFFF;
        };
        match register & 0xFC {
            0x00 => u32::from(d.vendor) | (u32::from(d.device) << 16),
            0x08 => {
                u32::from(d.revision)
                    | (u32::from(d.class.2) << 8)
                    | (u32::from(d.class.1) << 16)
                    | (u32::from(d.class.0) << 24)
            }
            0x2C => u32::from(d.subsystem.0) | (u32::from(d.subsystem.1) << 16),
            _ => 0,
        }
    }

    /// ATA status of the selected drive on `channel`: ready when a disk or CD-ROM is
    /// attached there, 0 when the position is empty (QEMU's answer for a missing drive).
    pub fn ata_status(&self, channel: u8) -> u8 {
        let slave = self
            .ata_select
            .get(usize::from(channel))
            .is_some_and(|s| s & 0x10 != 0);
        let position = u8::from(slave);
        let present = self.devices.iter().any(|d| {
            matches!(d.kind, DeviceKind::IdeDisk { channel: c, position: p } | DeviceKind::IdeCdrom { channel: c, position: p }
                if c == channel && p == position)
        });
        if present {
            ATA_STATUS_READY
        } else {
            0
        }
    }

    fn ata_channel(port: u16, register: u16) -> Option<u8> {
        ATA_CHANNEL_BASES
            .iter()
            .position(|base| port == base + register)
            .map(|c| c as u8)
    }

    /// A port read.
    pub fn port_read(&mut self, port: u16, width: PortWidth) -> u32 {
        if port == PCI_CONFIG_ADDRESS && width == PortWidth::Dword {
            return self.pci_address;
        }
        if port == PCI_CONFIG_DATA && width == PortWidth::Dword {
            let a = self.pci_address;
            let enabled = a & 0x8000_0000 != 0;
            let bus = (a >> 16) & 0xFF;
            if !enabled || bus != 0 {
                return 0xFFFF_FFFF;
            }
            return self.pci_config_read(
                ((a >> 11) & 0x1F) as u8,
                ((a >> 8) & 0x7) as u8,
                (a & 0xFC) as u8,
            );
        }
        if let (Some(channel), PortWidth::Byte) = (Self::ata_channel(port, 7), width) {
            return u32::from(self.ata_status(channel));
        }
        match (port, width) {
            (XEN_PLATFORM_IOPORT_MAGIC, PortWidth::Word) => {
                if self.blacklisted {
                    XEN_PLATFORM_MAGIC_BLACKLISTED as u32
                } else {
                    XEN_PLATFORM_MAGIC as u32
                }
            }
            (XEN_PLATFORM_IOPORT_MAGIC, PortWidth::Byte) => self.flags as u32,
            (XEN_PLATFORM_IOPORT_VERSION, PortWidth::Byte) => self.protocol_version as u32,
            (XEN_DEBUG_CONSOLE_IOPORT, PortWidth::Byte) => XEN_DEBUG_CONSOLE_IOPORT as u32,
            (_, PortWidth::Byte) => 0xFF,
            (_, PortWidth::Word) => 0xFFFF,
            (_, PortWidth::Dword) => 0xFFFF_FFFF,
        }
    }

    /// A port write.
    pub fn port_write(&mut self, port: u16, width: PortWidth, value: u32) {
        if port == PCI_CONFIG_ADDRESS && width == PortWidth::Dword {
            self.pci_address = value;
            return;
        }
        if let (Some(channel), PortWidth::Byte) = (Self::ata_channel(port, 6), width) {
            if let Some(select) = self.ata_select.get_mut(usize::from(channel)) {
                *select = value as u8;
            }
            return;
        }
        match (port, width) {
            (XEN_PLATFORM_IOPORT_MAGIC, PortWidth::Word) => self.unplug(value as u16),
            (XEN_PLATFORM_IOPORT_MAGIC, PortWidth::Byte) => self.flags = value as u8,
            (XEN_PLATFORM_IOPORT_MAGIC, PortWidth::Dword) => {
                self.build = Some(value);
                let product = self.product.unwrap_or(0);
                self.blacklisted = self
                    .blacklist
                    .as_ref()
                    .is_some_and(|rule| rule(product, value));
            }
            (XEN_PLATFORM_IOPORT_VERSION, PortWidth::Word) => self.product = Some(value as u16),
            (XEN_PLATFORM_IOPORT_VERSION, PortWidth::Byte) => {
                let b = value as u8;
                if b == b'\n' {
                    let line = String::from_utf8_lossy(&self.log).into_owned();
                    self.log_lines.push(line);
                    self.log.clear();
                } else {
                    self.log.push(b);
                }
            }
            (XEN_DEBUG_CONSOLE_IOPORT, PortWidth::Byte) => self.debug_port.push(value as u8),
            // Port 0x11 and other widths are reserved: writes are ignored, as QEMU does.
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(p: &Platform, f: impl Fn(&DeviceKind) -> bool) -> usize {
        p.devices().iter().filter(|d| f(&d.kind)).count()
    }

    #[test]
    fn handshake_blacklist_and_unplug() {
        let mut p = Platform::new();
        assert_eq!(p.port_read(0x10, PortWidth::Word), 0x49D2);
        assert_eq!(p.port_read(0x12, PortWidth::Byte), 1);
        assert_eq!(p.port_read(0x11, PortWidth::Byte), 0xFF);
        p.set_blacklist(Some(Arc::new(|product, build| {
            product == 0xFFFF && build < 0x0009_0000
        })));
        p.port_write(0x12, PortWidth::Word, 0xFFFF);
        p.port_write(0x10, PortWidth::Dword, 0x0008_0000);
        assert_eq!(p.port_read(0x10, PortWidth::Word), 0xD249);
        p.port_write(0x10, PortWidth::Dword, 0x0009_0100);
        assert_eq!(p.port_read(0x10, PortWidth::Word), 0x49D2);
        assert_eq!(p.driver_identity(), (Some(0xFFFF), Some(0x0009_0100)));
        // Aux unplug keeps the primary master; the full unplug takes every disk but the CD.
        p.port_write(
            0x10,
            PortWidth::Word,
            UnplugFlags::AUX_IDE_DISKS.bits() as u32,
        );
        assert_eq!(count(&p, |k| matches!(k, DeviceKind::IdeDisk { .. })), 1);
        p.port_write(0x10, PortWidth::Word, 0x0009);
        assert_eq!(
            count(&p, |k| matches!(
                k,
                DeviceKind::IdeDisk { .. } | DeviceKind::Nvme
            )),
            0
        );
        assert_eq!(count(&p, |k| matches!(k, DeviceKind::IdeCdrom { .. })), 1);
        assert_eq!(count(&p, |k| *k == DeviceKind::Nic), 1);
        p.port_write(0x10, PortWidth::Word, 0x0002);
        assert_eq!(count(&p, |k| *k == DeviceKind::Nic), 0);
        assert_eq!(count(&p, |k| *k == DeviceKind::XenPlatform), 1);
        assert_eq!(p.unplug_writes(), &[4, 9, 2]);
        for b in b"hello\n" {
            p.port_write(0x12, PortWidth::Byte, *b as u32);
        }
        assert_eq!(p.log_lines(), &["hello".to_string()]);
        p.port_write(0xE9, PortWidth::Byte, b'X' as u32);
        assert_eq!(p.debug_port_output(), "X");
        assert_eq!(p.port_read(0xE9, PortWidth::Byte), 0xE9);
    }

    #[test]
    fn vendor_device_sits_beside_the_platform_device_and_survives_unplug() {
        let mut p = Platform::new();
        p.add_vendor_device(0xC000);
        p.port_write(0x10, PortWidth::Word, 0x000B);
        let xen: Vec<u16> = p
            .devices()
            .iter()
            .filter(|d| d.kind == DeviceKind::XenPlatform)
            .map(|d| d.device)
            .collect();
        assert_eq!(xen, vec![0x0001, 0xC000]);
        assert_eq!(count(&p, |k| *k == DeviceKind::Nic), 0);
        assert_eq!(
            count(&p, |k| *k == DeviceKind::IdeController),
            1,
            "the controller stays"
        );
    }
}

#[cfg(test)]
mod config_space_tests {
    use super::*;

    fn config(p: &mut Platform, slot: u32, register: u32) -> u32 {
        p.port_write(
            PCI_CONFIG_ADDRESS,
            PortWidth::Dword,
            0x8000_0000 | (slot << 11) | register,
        );
        p.port_read(PCI_CONFIG_DATA, PortWidth::Dword)
    }

    #[test]
    fn pci_config_space_and_ata_status_follow_the_unplug() {
        let mut p = Platform::new();
        assert_eq!(
            config(&mut p, 2, 0),
            0x0001_5853,
            "platform device in slot 2"
        );
        assert_eq!(config(&mut p, 3, 8) >> 24, 0x02, "NIC class");
        assert_eq!(config(&mut p, 30, 0), 0xFFFF_FFFF, "empty slot");
        p.port_write(0x1F6, PortWidth::Byte, 0xA0);
        assert_eq!(
            p.port_read(0x1F7, PortWidth::Byte),
            u32::from(ATA_STATUS_READY)
        );
        p.port_write(0x176, PortWidth::Byte, 0xB0);
        assert_eq!(p.port_read(0x177, PortWidth::Byte), 0, "no secondary slave");
        p.port_write(
            XEN_PLATFORM_IOPORT_MAGIC,
            PortWidth::Word,
            u32::from((UnplugFlags::IDE_SCSI_DISKS | UnplugFlags::ALL_NICS).bits()),
        );
        assert_eq!(config(&mut p, 3, 0), 0xFFFF_FFFF, "NIC gone from the bus");
        p.port_write(0x1F6, PortWidth::Byte, 0xA0);
        assert_eq!(
            p.port_read(0x1F7, PortWidth::Byte),
            0,
            "primary master gone"
        );
        p.port_write(0x176, PortWidth::Byte, 0xA0);
        assert_eq!(
            p.port_read(0x177, PortWidth::Byte),
            u32::from(ATA_STATUS_READY),
            "CD-ROM stays"
        );
    }
}
