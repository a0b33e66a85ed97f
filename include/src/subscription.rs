//! Interface subscriptions: a consumer records, under the provider's service key, the version
//! of each interface it uses, so an installer can tell whether a new provider still serves it.
//!
//! Layout (seed README, "Interfaces"; spec §7.3):
//! `HKLM\SYSTEM\CurrentControlSet\Services\<PROVIDER>\Interfaces\<CONSUMER>` holds one REG_DWORD
//! per interface name (`EVTCHN`, `STORE`, `EMULATED`, ...) whose data is the version used.
//! Kernel consumers write it with `ZwSetValueKey`, user-mode tools with `RegSetValueExW`, tests
//! with a map: each implements [`SubscriptionStore`].
#![forbid(unsafe_code)]

use core::fmt;

/// The services root, relative to `HKEY_LOCAL_MACHINE`.
pub const SERVICES_KEY: &str = "SYSTEM\\CurrentControlSet\\Services";
/// The subkey of a provider's service key that holds its subscribers.
pub const INTERFACES_SUBKEY: &str = "Interfaces";
/// Longest registry key-name component Windows accepts.
pub const MAX_NAME_LEN: usize = 255;

/// Why a subscription could not be formed or recorded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SubscriptionError<E> {
    /// A provider, consumer or interface name is empty, too long, not printable ASCII or
    /// holds a backslash.
    InvalidName,
    /// Version 0 is not an interface version.
    InvalidVersion,
    /// The store refused the write.
    Store(E),
}

impl<E: fmt::Display> fmt::Display for SubscriptionError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SubscriptionError::InvalidName => {
                f.write_str("invalid provider, consumer or interface name")
            }
            SubscriptionError::InvalidVersion => f.write_str("interface version 0 is invalid"),
            SubscriptionError::Store(e) => write!(f, "registry write failed: {e}"),
        }
    }
}

/// Checks one key or value name component.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name
            .bytes()
            .all(|b| (0x20..0x7F).contains(&b) && b != b'\\')
}

/// "Consumer uses version `version` of `provider`'s interface `interface`".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Subscription<'a> {
    /// The providing driver's service name (`XENBUS`, `XENFILT`).
    pub provider: &'a str,
    /// The consuming driver's service name (`XENVIF`, `XENBUS`).
    pub consumer: &'a str,
    /// The interface name without provider prefix (`EVTCHN`).
    pub interface: &'a str,
    /// The interface version the consumer was built against.
    pub version: u32,
}

impl<'a> Subscription<'a> {
    /// Builds a validated subscription.
    pub fn new<E>(
        provider: &'a str,
        consumer: &'a str,
        interface: &'a str,
        version: u32,
    ) -> Result<Self, SubscriptionError<E>> {
        if !(valid_name(provider) && valid_name(consumer) && valid_name(interface)) {
            return Err(SubscriptionError::InvalidName);
        }
        if version == 0 {
            return Err(SubscriptionError::InvalidVersion);
        }
        Ok(Subscription {
            provider,
            consumer,
            interface,
            version,
        })
    }

    /// The key (relative to HKLM) that holds this subscription's value.
    pub fn key(&self) -> ConsumerKey<'a> {
        ConsumerKey {
            provider: self.provider,
            consumer: self.consumer,
        }
    }
}

impl fmt::Display for Subscription<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} uses {} {} version {}",
            self.consumer, self.provider, self.interface, self.version
        )
    }
}

/// `SYSTEM\CurrentControlSet\Services\<PROVIDER>\Interfaces\<CONSUMER>`; `Display` writes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConsumerKey<'a> {
    /// The provider's service name.
    pub provider: &'a str,
    /// The consumer's service name.
    pub consumer: &'a str,
}

impl fmt::Display for ConsumerKey<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{SERVICES_KEY}\\{}\\{INTERFACES_SUBKEY}\\{}",
            self.provider, self.consumer
        )
    }
}

/// `SYSTEM\CurrentControlSet\Services\<PROVIDER>\Interfaces`: the key whose subkeys are the
/// provider's subscribers.
pub struct InterfacesKey<'a>(pub &'a str);

impl fmt::Display for InterfacesKey<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{SERVICES_KEY}\\{}\\{INTERFACES_SUBKEY}", self.0)
    }
}

/// A fixed-capacity text buffer, so no_std code can render a key path without allocating.
pub struct PathBuffer<const N: usize> {
    bytes: [u8; N],
    len: usize,
}

impl<const N: usize> PathBuffer<N> {
    /// Renders `value` into a new buffer; `Err` when it does not fit.
    pub fn render(value: &dyn fmt::Display) -> Result<Self, fmt::Error> {
        let mut buffer = PathBuffer {
            bytes: [0; N],
            len: 0,
        };
        fmt::write(&mut buffer, format_args!("{value}"))?;
        Ok(buffer)
    }
    /// The rendered text.
    pub fn as_str(&self) -> &str {
        // Only whole `&str`s are ever appended, so the prefix is valid UTF-8.
        core::str::from_utf8(self.bytes.get(..self.len).unwrap_or(&[])).unwrap_or("")
    }
}

impl<const N: usize> fmt::Write for PathBuffer<N> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len.checked_add(s.len()).ok_or(fmt::Error)?;
        let dst = self.bytes.get_mut(self.len..end).ok_or(fmt::Error)?;
        dst.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// Longest rendered consumer key: the services root plus three names and separators.
pub const MAX_KEY_LEN: usize = SERVICES_KEY.len() + INTERFACES_SUBKEY.len() + 3 + 2 * MAX_NAME_LEN;

/// Where subscriptions are written; keys are paths relative to `HKEY_LOCAL_MACHINE`.
pub trait SubscriptionStore {
    /// The store's error.
    type Error;
    /// Creates `key` (and its parents) if needed and sets REG_DWORD `name` = `value`.
    fn set_dword(&mut self, key: &str, name: &str, value: u32) -> Result<(), Self::Error>;
    /// Deletes `key` and everything below it; a missing key is not an error.
    fn delete_tree(&mut self, key: &str) -> Result<(), Self::Error>;
}

/// Records `subscription` in `store`.
pub fn subscribe<S: SubscriptionStore>(
    store: &mut S,
    subscription: &Subscription<'_>,
) -> Result<(), SubscriptionError<S::Error>> {
    let key = PathBuffer::<MAX_KEY_LEN>::render(&subscription.key())
        .map_err(|_| SubscriptionError::InvalidName)?;
    store
        .set_dword(key.as_str(), subscription.interface, subscription.version)
        .map_err(SubscriptionError::Store)
}

/// Removes every subscription `consumer` holds on `provider` (on uninstall or before
/// re-subscribing with a new set of versions).
pub fn unsubscribe_all<S: SubscriptionStore>(
    store: &mut S,
    provider: &str,
    consumer: &str,
) -> Result<(), SubscriptionError<S::Error>> {
    if !(valid_name(provider) && valid_name(consumer)) {
        return Err(SubscriptionError::InvalidName);
    }
    let key = PathBuffer::<MAX_KEY_LEN>::render(&ConsumerKey { provider, consumer })
        .map_err(|_| SubscriptionError::InvalidName)?;
    store
        .delete_tree(key.as_str())
        .map_err(SubscriptionError::Store)
}

/// The range of versions of one interface a provider serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InterfaceRange<'a> {
    /// The providing service (`XENBUS`, `XENFILT`).
    pub provider: &'a str,
    /// The interface name without provider prefix (`EVTCHN`).
    pub interface: &'a str,
    /// Oldest version served.
    pub min: u32,
    /// Newest version served.
    pub max: u32,
}

/// Why a subscriber would break.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Incompatibility {
    /// The new provider no longer has the interface at all.
    InterfaceRemoved,
    /// The version is outside what the new provider serves.
    VersionRemoved {
        /// Oldest version served by the new provider.
        min: u32,
        /// Newest version served by the new provider.
        max: u32,
    },
}

/// Decides whether a provider serving `ranges` still satisfies `subscription`.
/// Names compare case-insensitively, as registry names do.
pub fn check_subscription(
    subscription: &Subscription<'_>,
    ranges: &[InterfaceRange<'_>],
) -> Result<(), Incompatibility> {
    let range = ranges.iter().find(|r| {
        r.provider.eq_ignore_ascii_case(subscription.provider)
            && r.interface.eq_ignore_ascii_case(subscription.interface)
    });
    match range {
        None => Err(Incompatibility::InterfaceRemoved),
        Some(r) if subscription.version < r.min || subscription.version > r.max => {
            Err(Incompatibility::VersionRemoved {
                min: r.min,
                max: r.max,
            })
        }
        Some(_) => Ok(()),
    }
}

/// Extracts the PDO revision from a child's hardware ID
/// (`XENBUS\VEN_XP0001&DEV_VBD&REV_0900000C`, any case); `None` when it carries none.
pub fn revision_of_hardware_id(id: &str) -> Option<u32> {
    let upper_pos = id
        .as_bytes()
        .windows(5)
        .rposition(|w| w.eq_ignore_ascii_case(b"&REV_"))?;
    let hex = id.get(upper_pos + 5..)?;
    if hex.len() != 8 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u32::from_str_radix(hex, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::{collections::BTreeMap, string::String};

    #[derive(Default)]
    struct MapStore {
        values: BTreeMap<(String, String), u32>,
        fail: bool,
    }

    impl SubscriptionStore for MapStore {
        type Error = &'static str;
        fn set_dword(&mut self, key: &str, name: &str, value: u32) -> Result<(), Self::Error> {
            if self.fail {
                return Err("access denied");
            }
            self.values.insert((key.into(), name.into()), value);
            Ok(())
        }
        fn delete_tree(&mut self, key: &str) -> Result<(), Self::Error> {
            let prefix = std::format!("{key}\\");
            self.values
                .retain(|(k, _), _| k != key && !k.starts_with(&prefix));
            Ok(())
        }
    }

    #[test]
    fn subscribe_writes_the_documented_path() {
        let mut store = MapStore::default();
        let s = Subscription::new::<&str>("XENFILT", "XENBUS", "EMULATED", 3).unwrap();
        subscribe(&mut store, &s).unwrap();
        let s = Subscription::new::<&str>("XENBUS", "XENVIF", "EVTCHN", 9).unwrap();
        subscribe(&mut store, &s).unwrap();
        assert_eq!(
            store.values.get(&(
                "SYSTEM\\CurrentControlSet\\Services\\XENFILT\\Interfaces\\XENBUS".into(),
                "EMULATED".into()
            )),
            Some(&3)
        );
        unsubscribe_all(&mut store, "XENFILT", "XENBUS").unwrap();
        assert_eq!(store.values.len(), 1);
        assert_eq!(std::format!("{s}"), "XENVIF uses XENBUS EVTCHN version 9");
    }

    #[test]
    fn invalid_names_versions_and_store_errors() {
        assert_eq!(
            Subscription::new::<()>("XENBUS", "A\\B", "EVTCHN", 1),
            Err(SubscriptionError::InvalidName)
        );
        assert_eq!(
            Subscription::new::<()>("", "XENVIF", "EVTCHN", 1),
            Err(SubscriptionError::InvalidName)
        );
        let long = "X".repeat(256);
        assert_eq!(
            Subscription::new::<()>("XENBUS", &long, "EVTCHN", 1),
            Err(SubscriptionError::InvalidName)
        );
        assert_eq!(
            Subscription::new::<()>("XENBUS", "XENVIF", "EVTCHN", 0),
            Err(SubscriptionError::InvalidVersion)
        );
        let longest = "Y".repeat(255);
        let s = Subscription::new::<&str>(&longest, &longest, "EVTCHN", 1).unwrap();
        let mut store = MapStore {
            fail: true,
            ..MapStore::default()
        };
        assert_eq!(
            subscribe(&mut store, &s),
            Err(SubscriptionError::Store("access denied"))
        );
        store.fail = false;
        subscribe(&mut store, &s).unwrap();
    }

    #[test]
    fn compatibility() {
        let ranges = [
            InterfaceRange {
                provider: "XENBUS",
                interface: "EVTCHN",
                min: 5,
                max: 9,
            },
            InterfaceRange {
                provider: "XENFILT",
                interface: "EMULATED",
                min: 1,
                max: 3,
            },
        ];
        let ok = Subscription::new::<()>("xenbus", "XENVIF", "evtchn", 7).unwrap();
        assert_eq!(check_subscription(&ok, &ranges), Ok(()));
        let old = Subscription::new::<()>("XENBUS", "XENVIF", "EVTCHN", 4).unwrap();
        assert_eq!(
            check_subscription(&old, &ranges),
            Err(Incompatibility::VersionRemoved { min: 5, max: 9 })
        );
        let new = Subscription::new::<()>("XENBUS", "XENVIF", "EVTCHN", 10).unwrap();
        assert!(check_subscription(&new, &ranges).is_err());
        let gone = Subscription::new::<()>("XENBUS", "XENVIF", "BALLOON", 1).unwrap();
        assert_eq!(
            check_subscription(&gone, &ranges),
            Err(Incompatibility::InterfaceRemoved)
        );
        // The provider matters: EMULATED is served by XENFILT, not XENBUS.
        let wrong = Subscription::new::<()>("XENBUS", "XENVBD", "EMULATED", 1).unwrap();
        assert_eq!(
            check_subscription(&wrong, &ranges),
            Err(Incompatibility::InterfaceRemoved)
        );
    }

    #[test]
    fn revisions_in_hardware_ids() {
        assert_eq!(
            revision_of_hardware_id("XENBUS\\VEN_XP0001&DEV_VBD&REV_0900000C"),
            Some(0x0900_000C)
        );
        assert_eq!(
            revision_of_hardware_id("xenbus\\ven_xp0002&dev_vif&rev_09000008"),
            Some(0x0900_0008)
        );
        assert_eq!(revision_of_hardware_id("XENCLASS"), None);
        assert_eq!(revision_of_hardware_id("XENBUS\\VEN_XP&DEV_VIF"), None);
        assert_eq!(
            revision_of_hardware_id("XENBUS\\VEN_XP&DEV_VIF&REV_0900"),
            None
        );
        assert_eq!(revision_of_hardware_id("X&REV_0900000G"), None);
    }

    #[test]
    fn path_buffer_overflow_is_an_error() {
        assert!(PathBuffer::<8>::render(&"123456789").is_err());
        assert_eq!(
            PathBuffer::<9>::render(&"123456789").unwrap().as_str(),
            "123456789"
        );
        assert_eq!(
            PathBuffer::<128>::render(&InterfacesKey("XENBUS"))
                .unwrap()
                .as_str(),
            "SYSTEM\\CurrentControlSet\\Services\\XENBUS\\Interfaces"
        );
    }
}
