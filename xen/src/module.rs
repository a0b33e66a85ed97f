//! `module.c`: the sorted list of loaded kernel images (snapshot at load plus image-load
//! notifications) and `ModuleLookup` (name and offset of an address).
#![forbid(unsafe_code)]

use alloc::string::String;
use alloc::vec::Vec;

use common::os::ModuleInfo;
use xen_include::api::ModuleName;

use common::sync::SpinLock;

/// How long `lookup` waits for the list lock.
pub const LOOKUP_SPINS: usize = 1 << 20;

/// One loaded image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Module {
    /// First byte.
    pub start: usize,
    /// One past the last byte.
    pub end: usize,
    /// Lower-cased base name (`ndis.sys`).
    pub name: String,
}

/// The lower-cased base name of an image path (`\SystemRoot\System32\NDIS.SYS` → `ndis.sys`).
pub fn base_name(path: &str) -> String {
    path.rsplit(['\\', '/'])
        .next()
        .unwrap_or(path)
        .to_ascii_lowercase()
}

/// The module list.
#[derive(Default)]
pub struct Modules {
    list: SpinLock<Vec<Module>>,
}

impl Modules {
    /// An empty list.
    pub const fn new() -> Self {
        Self {
            list: SpinLock::new(Vec::new()),
        }
    }

    /// Add an image; entries overlapping it are replaced (an unloaded image's range was
    /// reused). Empty images are ignored.
    pub fn add(&self, info: &ModuleInfo) {
        let Some(end) = info.base.checked_add(info.size).filter(|e| *e > info.base) else {
            return;
        };
        let module = Module {
            start: info.base,
            end,
            name: base_name(&info.name),
        };
        let mut list = self.list.lock();
        list.retain(|m| m.end <= module.start || m.start >= module.end);
        let at = list.partition_point(|m| m.start < module.start);
        list.insert(at, module);
    }

    /// Replace the list with a snapshot.
    pub fn reset(&self, snapshot: &[ModuleInfo]) {
        self.list.lock().clear();
        for m in snapshot {
            self.add(m);
        }
    }

    /// Forget every image.
    pub fn clear(&self) {
        self.list.lock().clear();
    }

    /// `ModuleLookup`: the image containing `address` and the offset into it.
    /// Gives up (None) rather than spin for long: it runs from the bug-check callback,
    /// which may have interrupted a holder of the lock on the same CPU.
    pub fn lookup(&self, address: usize) -> Option<(ModuleName, usize)> {
        let list = (0..LOOKUP_SPINS).find_map(|_| {
            let g = self.list.try_lock();
            if g.is_none() {
                core::hint::spin_loop();
            }
            g
        })?;
        let i = list.partition_point(|m| m.start <= address);
        let m = list.get(i.checked_sub(1)?)?;
        (address < m.end).then(|| (ModuleName::new(m.name.as_bytes()), address - m.start))
    }

    /// Number of images known.
    pub fn len(&self) -> usize {
        self.list.lock().len()
    }

    /// True when no image is known.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(base: usize, size: usize, name: &str) -> ModuleInfo {
        ModuleInfo {
            base,
            size,
            name: name.into(),
        }
    }

    #[test]
    fn lookup_and_overlap() {
        let m = Modules::new();
        m.reset(&[
            info(
                0x3000,
                0x1000,
                "\\SystemRoot\\System32\\drivers\\XENBUS.SYS",
            ),
            info(0x1000, 0x1000, "\\SystemRoot\\system32\\ntoskrnl.exe"),
            info(0x9000, 0, "empty.sys"),
        ]);
        assert_eq!(m.len(), 2);
        let (name, off) = m.lookup(0x3010).unwrap();
        assert_eq!(name.as_bytes(), b"xenbus.sys");
        assert_eq!(off, 0x10);
        assert_eq!(m.lookup(0x1FFF).unwrap().0.as_bytes(), b"ntoskrnl.exe");
        assert!(m.lookup(0x2000).is_none());
        assert!(m.lookup(0x0FFF).is_none());
        assert!(m.lookup(0x4000).is_none());
        // A new image over xenbus' old range replaces it.
        m.add(&info(0x2800, 0x1000, "xenvif.sys"));
        assert_eq!(m.len(), 2);
        assert_eq!(m.lookup(0x3010).unwrap().0.as_bytes(), b"xenvif.sys");
        assert!(m.lookup(usize::MAX).is_none());
        m.add(&info(usize::MAX - 1, 10, "wrap.sys"));
        assert_eq!(m.len(), 2);
        // A lookup while the list is held (bug check on the adding CPU) gives up.
        let held = m.list.lock();
        assert!(m.lookup(0x3010).is_none());
        drop(held);
        assert!(m.lookup(0x3010).is_some());
    }
}
