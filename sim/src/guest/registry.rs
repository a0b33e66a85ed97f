//! The guest's registry: a tree of case-insensitive keys holding typed values, with volatile
//! keys that vanish at reboot, as the Windows configuration manager behaves.

use std::collections::BTreeMap;

pub use common::os::RegValue;

/// The Windows `REG_*` type code of a value.
pub fn type_code(value: &RegValue) -> u32 {
    match value {
        RegValue::Sz(_) => 1,
        RegValue::Binary(_) => 3,
        RegValue::Dword(_) => 4,
        RegValue::MultiSz(_) => 7,
        RegValue::Qword(_) => 11,
    }
}

/// Why a registry operation failed (maps onto the NTSTATUS the kernel would return).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RegError {
    /// STATUS_OBJECT_NAME_NOT_FOUND.
    NotFound,
    /// STATUS_CANNOT_DELETE: the key still has subkeys.
    HasSubkeys,
    /// STATUS_CHILD_MUST_BE_VOLATILE: a non-volatile key under a volatile one.
    ChildMustBeVolatile,
    /// STATUS_OBJECT_NAME_INVALID: empty path component.
    InvalidName,
}

#[derive(Clone, Debug, Default)]
struct Key {
    name: String,
    volatile: bool,
    subkeys: BTreeMap<String, Key>,
    values: BTreeMap<String, (String, RegValue)>,
}

/// The registry tree. Paths are backslash-separated and case-insensitive, e.g.
/// `\Registry\Machine\SYSTEM\CurrentControlSet\Services\xenbus\Parameters`.
#[derive(Clone, Debug, Default)]
pub struct Registry {
    root: Key,
}

fn components(path: &str) -> Result<Vec<&str>, RegError> {
    let parts: Vec<&str> = path.split('\\').filter(|p| !p.is_empty()).collect();
    if parts.is_empty() {
        return Err(RegError::InvalidName);
    }
    Ok(parts)
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Registry::default()
    }

    fn find(&self, path: &str) -> Result<&Key, RegError> {
        let mut k = &self.root;
        for c in components(path)? {
            k = k.subkeys.get(&c.to_lowercase()).ok_or(RegError::NotFound)?;
        }
        Ok(k)
    }

    fn find_mut(&mut self, path: &str) -> Result<&mut Key, RegError> {
        let mut k = &mut self.root;
        for c in components(path)? {
            k = k
                .subkeys
                .get_mut(&c.to_lowercase())
                .ok_or(RegError::NotFound)?;
        }
        Ok(k)
    }

    /// Create a key and any missing parents (`ZwCreateKey` per component). Returns whether
    /// the leaf key was newly created. Existing keys keep their volatility.
    pub fn create_key(&mut self, path: &str, volatile: bool) -> Result<bool, RegError> {
        let parts = components(path)?;
        let mut k = &mut self.root;
        let mut created = false;
        for c in parts {
            let lc = c.to_lowercase();
            if !k.subkeys.contains_key(&lc) {
                if k.volatile && !volatile {
                    return Err(RegError::ChildMustBeVolatile);
                }
                k.subkeys.insert(
                    lc.clone(),
                    Key {
                        name: c.to_string(),
                        volatile,
                        ..Key::default()
                    },
                );
                created = true;
            } else {
                created = false;
            }
            k = k.subkeys.get_mut(&lc).ok_or(RegError::NotFound)?;
        }
        Ok(created)
    }

    /// Whether a key exists.
    pub fn key_exists(&self, path: &str) -> bool {
        self.find(path).is_ok()
    }

    /// Whether a key is volatile.
    pub fn is_volatile(&self, path: &str) -> Result<bool, RegError> {
        Ok(self.find(path)?.volatile)
    }

    /// Delete a key that has no subkeys (`ZwDeleteKey`).
    pub fn delete_key(&mut self, path: &str) -> Result<(), RegError> {
        let parts = components(path)?;
        let (leaf, parents) = parts.split_last().ok_or(RegError::InvalidName)?;
        let parent_path = parents.join("\\");
        let parent = if parents.is_empty() {
            &mut self.root
        } else {
            self.find_mut(&parent_path)?
        };
        let lc = leaf.to_lowercase();
        match parent.subkeys.get(&lc) {
            None => Err(RegError::NotFound),
            Some(k) if !k.subkeys.is_empty() => Err(RegError::HasSubkeys),
            Some(_) => {
                parent.subkeys.remove(&lc);
                Ok(())
            }
        }
    }

    /// Set a value (creating or replacing it). The key must exist.
    pub fn set_value(&mut self, path: &str, name: &str, value: RegValue) -> Result<(), RegError> {
        let k = self.find_mut(path)?;
        k.values
            .insert(name.to_lowercase(), (name.to_string(), value));
        Ok(())
    }

    /// Read a value.
    pub fn query_value(&self, path: &str, name: &str) -> Result<RegValue, RegError> {
        let k = self.find(path)?;
        k.values
            .get(&name.to_lowercase())
            .map(|(_, v)| v.clone())
            .ok_or(RegError::NotFound)
    }

    /// Delete a value.
    pub fn delete_value(&mut self, path: &str, name: &str) -> Result<(), RegError> {
        let k = self.find_mut(path)?;
        k.values
            .remove(&name.to_lowercase())
            .map(|_| ())
            .ok_or(RegError::NotFound)
    }

    /// Names of the subkeys of a key, in case-insensitive order, with their original case.
    pub fn subkeys(&self, path: &str) -> Result<Vec<String>, RegError> {
        Ok(self
            .find(path)?
            .subkeys
            .values()
            .map(|k| k.name.clone())
            .collect())
    }

    /// Values of a key as (name, value), in case-insensitive name order.
    pub fn values(&self, path: &str) -> Result<Vec<(String, RegValue)>, RegError> {
        Ok(self.find(path)?.values.values().cloned().collect())
    }

    /// Drop every volatile key (what a reboot does).
    pub fn reboot(&mut self) {
        fn prune(k: &mut Key) {
            k.subkeys.retain(|_, s| !s.volatile);
            for s in k.subkeys.values_mut() {
                prune(s);
            }
        }
        prune(&mut self.root);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: &str = r"\Registry\Machine\SYSTEM\CurrentControlSet\Services\xenbus\Parameters";

    #[test]
    fn keys_and_values_are_case_insensitive_and_typed() {
        let mut r = Registry::new();
        assert!(r.create_key(P, false).unwrap());
        assert!(!r.create_key(&P.to_uppercase(), false).unwrap());
        r.set_value(P, "UseEvtchnFifoAbi", RegValue::Dword(0))
            .unwrap();
        r.set_value(P, "Multi", RegValue::MultiSz(vec!["a".into(), "b".into()]))
            .unwrap();
        assert_eq!(r.query_value(P, "useevtchnfifoabi"), Ok(RegValue::Dword(0)));
        assert_eq!(r.query_value(P, "Missing"), Err(RegError::NotFound));
        assert_eq!(r.values(P).unwrap()[0].0, "Multi");
        assert_eq!(type_code(&r.query_value(P, "multi").unwrap()), 7);
        r.delete_value(P, "MULTI").unwrap();
        assert_eq!(r.delete_value(P, "multi"), Err(RegError::NotFound));
        assert_eq!(
            r.subkeys(r"\Registry\Machine\SYSTEM\CurrentControlSet\Services")
                .unwrap(),
            vec!["xenbus"]
        );
    }

    #[test]
    fn delete_needs_empty_key_and_volatile_keys_vanish_at_reboot() {
        let mut r = Registry::new();
        r.create_key(r"\A\B\C", false).unwrap();
        assert_eq!(r.delete_key(r"\A\B"), Err(RegError::HasSubkeys));
        r.delete_key(r"\A\B\C").unwrap();
        r.delete_key(r"\A\B").unwrap();
        assert!(!r.key_exists(r"\A\B"));
        r.create_key(r"\A\V", true).unwrap();
        assert_eq!(
            r.create_key(r"\A\V\N", false),
            Err(RegError::ChildMustBeVolatile)
        );
        r.create_key(r"\A\V\N", true).unwrap();
        r.create_key(r"\A\S", false).unwrap();
        r.reboot();
        assert!(!r.key_exists(r"\A\V"));
        assert!(r.key_exists(r"\A\S"));
    }
}
