//! The Xen platform PCI device and its fixed I/O ports (QEMU `xen-platform`): identification,
//! the emulated-device unplug protocol (Xen `docs/misc/hvm-emulated-unplug`), the driver log
//! port, and the hypervisor's debug console port.

/// PCI vendor id of the platform device (`'XS'`, XenSource).
pub const XEN_PLATFORM_VENDOR_ID: u16 = 0x5853;
/// Device id of the upstream Xen platform device.
pub const XEN_PLATFORM_DEVICE_ID: u16 = 0x0001;
/// Device id of the XenServer variant of the platform device.
pub const XEN_PLATFORM_DEVICE_ID_XENSERVER: u16 = 0x0002;
/// Revision of a vendor platform device (`PCI\VEN_5853&DEV_<id>&SUBSYS_<id>5853&REV_01`).
pub const XEN_PLATFORM_VENDOR_DEVICE_REVISION: u8 = 0x01;

/// Subsystem vendor id QEMU gives the platform device.
pub const XEN_PLATFORM_SUBSYSTEM_VENDOR_ID: u16 = XEN_PLATFORM_VENDOR_ID;
/// Subsystem id QEMU gives the platform device.
pub const XEN_PLATFORM_SUBSYSTEM_ID: u16 = XEN_PLATFORM_DEVICE_ID;
/// PCI revision of QEMU's platform device.
pub const XEN_PLATFORM_REVISION: u8 = 0x01;
/// PCI base class: "other" (0xFF).
pub const XEN_PLATFORM_CLASS: u8 = 0xFF;
/// PCI subclass under "other" (0x80).
pub const XEN_PLATFORM_SUBCLASS: u8 = 0x80;
/// PCI interrupt pin (1 = INTA#): the legacy event-channel interrupt line.
pub const XEN_PLATFORM_INTERRUPT_PIN: u8 = 1;
/// BAR0: an I/O space BAR of this size (the device's own port window).
pub const XEN_PLATFORM_BAR0_IO_SIZE: u32 = 0x100;
/// BAR1: a prefetchable memory BAR of this size, guest-physical space with no RAM behind it
/// that drivers may use to map grant table frames and foreign pages.
pub const XEN_PLATFORM_BAR1_MMIO_SIZE: u32 = 0x0100_0000;

/// The PnP hardware id of a platform device (`PCI\VEN_5853&DEV_xxxx`), e.g. for
/// [`XEN_PLATFORM_DEVICE_ID`].
pub const fn platform_device_hardware_id(device_id: u16) -> [u8; 21] {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut id = *b"PCI\\VEN_5853&DEV_0000";
    let mut index = 0;
    while index < 4 {
        let nibble = (device_id >> (12 - 4 * index)) & 0xF;
        id[17 + index] = HEX[nibble as usize];
        index += 1;
    }
    id
}

/// First port of the platform device's fixed I/O range.
pub const XEN_PLATFORM_IOPORT_BASE: u16 = 0x10;
/// Length of the fixed I/O range (0x10..0x20).
pub const XEN_PLATFORM_IOPORT_LENGTH: u16 = 16;

/// Port 0x10. 16-bit read: [`XEN_PLATFORM_MAGIC`] (or [`XEN_PLATFORM_MAGIC_BLACKLISTED`]);
/// 16-bit write: [`UnplugFlags`]; 32-bit write: the driver build number; 8-bit write: platform
/// flags (bit 0 locks the ROM region).
pub const XEN_PLATFORM_IOPORT_MAGIC: u16 = 0x10;
/// Port 0x10 for unplug writes (same port as the magic).
pub const XEN_PLATFORM_IOPORT_UNPLUG: u16 = 0x10;
/// Port 0x10 for the 32-bit build number write.
pub const XEN_PLATFORM_IOPORT_BUILD: u16 = 0x10;
/// Port 0x11: inside the range but without a function (8-bit reads return 0xFF in QEMU).
pub const XEN_PLATFORM_IOPORT_RESERVED: u16 = 0x11;
/// Port 0x12. 8-bit read: protocol version (0 = no product / build handshake); 16-bit write:
/// product number; 8-bit write: one byte of a newline-terminated log message.
pub const XEN_PLATFORM_IOPORT_VERSION: u16 = 0x12;
/// Port 0x12 for the 16-bit product number write.
pub const XEN_PLATFORM_IOPORT_PRODUCT: u16 = 0x12;
/// Port 0x12 for 8-bit log writes.
pub const XEN_PLATFORM_IOPORT_LOG: u16 = 0x12;

/// The hypervisor's debug console port: bytes written here go to Xen's console
/// (`xl dmesg` / serial), used for early and crash logging.
pub const XEN_DEBUG_CONSOLE_IOPORT: u16 = 0xE9;

/// Magic read from port 0x10 when the unplug protocol is available.
pub const XEN_PLATFORM_MAGIC: u16 = 0x49D2;
/// Byte-swapped magic: the protocol is available but these drivers are blacklisted.
pub const XEN_PLATFORM_MAGIC_BLACKLISTED: u16 = 0xD249;

/// What a 16-bit read of port 0x10 says about the platform device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlatformMagic {
    /// The protocol is available.
    Present,
    /// The protocol is available but the toolstack blacklisted this driver build.
    Blacklisted,
    /// No (or an unknown) platform device: do not use the protocol.
    Unsupported(u16),
}

impl PlatformMagic {
    /// Classifies a value read from port 0x10.
    pub const fn from_port_value(value: u16) -> Self {
        match value {
            XEN_PLATFORM_MAGIC => Self::Present,
            XEN_PLATFORM_MAGIC_BLACKLISTED => Self::Blacklisted,
            other => Self::Unsupported(other),
        }
    }
}

bitflags::bitflags! {
    /// The 16-bit unplug mask written to port 0x10.
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
    pub struct UnplugFlags: u16 {
        /// All emulated IDE and SCSI disks, not CD drives (`UNPLUG_FLAGS_IDE_SCSI_DISKS`).
        const IDE_SCSI_DISKS = 1 << 0;
        /// All emulated NICs (`UNPLUG_FLAGS_ALL_NICS`).
        const ALL_NICS = 1 << 1;
        /// All IDE disks except the primary master (`UNPLUG_FLAGS_AUX_IDE_DISKS`); overridden
        /// by `IDE_SCSI_DISKS`.
        const AUX_IDE_DISKS = 1 << 2;
        /// All emulated NVMe disks (`UNPLUG_FLAGS_NVME_DISKS`).
        const NVME_DISKS = 1 << 3;
    }
}

impl UnplugFlags {
    /// What upstream writes to unplug disks: IDE/SCSI and NVMe (`0x0009`).
    pub const DISKS: Self = Self::IDE_SCSI_DISKS.union(Self::NVME_DISKS);
    /// What upstream writes to unplug disks when booting from an emulated disk
    /// (`XEN:BOOT_EMULATED=TRUE`): auxiliary IDE disks only (`0x0004`).
    pub const DISKS_BOOT_EMULATED: Self = Self::AUX_IDE_DISKS;
    /// What upstream writes to unplug NICs (`0x0002`).
    pub const NICS: Self = Self::ALL_NICS;
}

/// Platform flags bit (8-bit write to port 0x10): lock the ROM region.
pub const XEN_PLATFORM_FLAG_ROM_LOCK: u8 = 1 << 0;

/// Product numbers written to port 0x12 (`hvm/pvdrivers.h`).
pub mod product {
    /// `xensource-windows`.
    pub const XENSOURCE_WINDOWS: u16 = 0x0001;
    /// `gplpv-windows`.
    pub const GPLPV_WINDOWS: u16 = 0x0002;
    /// `linux`.
    pub const LINUX: u16 = 0x0003;
    /// `xenserver-windows-v7.0+`.
    pub const XENSERVER_WINDOWS_V7_0: u16 = 0x0004;
    /// `xenserver-windows-v7.2+`.
    pub const XENSERVER_WINDOWS_V7_2: u16 = 0x0005;
    /// `experimental`: what upstream XenBus writes today (marked FIXME upstream).
    pub const EXPERIMENTAL: u16 = 0xFFFF;
}

/// The 32-bit build number written to port 0x10: `(major << 16) | (minor << 8) | micro`.
pub const fn build_number(major: u8, minor: u8, micro: u8) -> u32 {
    (major as u32) << 16 | (minor as u32) << 8 | micro as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magic_classification() {
        assert_eq!(
            PlatformMagic::from_port_value(0x49D2),
            PlatformMagic::Present
        );
        assert_eq!(
            PlatformMagic::from_port_value(0xD249),
            PlatformMagic::Blacklisted
        );
        assert_eq!(
            PlatformMagic::from_port_value(0xFFFF),
            PlatformMagic::Unsupported(0xFFFF)
        );
        assert_eq!(
            XEN_PLATFORM_MAGIC.swap_bytes(),
            XEN_PLATFORM_MAGIC_BLACKLISTED
        );
    }

    #[test]
    fn upstream_unplug_masks() {
        assert_eq!(UnplugFlags::DISKS.bits(), 0x0009);
        assert_eq!(UnplugFlags::DISKS_BOOT_EMULATED.bits(), 0x0004);
        assert_eq!(UnplugFlags::NICS.bits(), 0x0002);
        assert_eq!(build_number(9, 1, 0), 0x0009_0100);
    }

    #[test]
    fn hardware_ids() {
        assert_eq!(
            &platform_device_hardware_id(0x0001),
            b"PCI\\VEN_5853&DEV_0001"
        );
        assert_eq!(
            &platform_device_hardware_id(0xC000),
            b"PCI\\VEN_5853&DEV_C000"
        );
        assert_eq!(
            &platform_device_hardware_id(0x0A2F),
            b"PCI\\VEN_5853&DEV_0A2F"
        );
    }
}
