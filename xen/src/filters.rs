//! `filters.c`: add or remove `XENFILT` in the `UpperFilters` of the System and HDC
//! device classes — idempotent and case-insensitive.
#![forbid(unsafe_code)]

use alloc::string::String;
use alloc::vec::Vec;

use common::os::{Os, RegValue};
use xen_include::status::{NtStatus, STATUS_INVALID_PARAMETER, STATUS_OBJECT_NAME_NOT_FOUND};

use crate::registry;
use crate::Logger;

/// `HKLM\SYSTEM\CurrentControlSet\Control\Class`.
pub const CLASS_PATH: &str = "SYSTEM\\CurrentControlSet\\Control\\Class";
/// `GUID_DEVCLASS_SYSTEM` as `RtlStringFromGUID` spells it.
pub const DEVCLASS_SYSTEM: &str = "{4D36E97D-E325-11CE-BFC1-08002BE10318}";
/// `GUID_DEVCLASS_HDC` as `RtlStringFromGUID` spells it.
pub const DEVCLASS_HDC: &str = "{4D36E96A-E325-11CE-BFC1-08002BE10318}";
/// The filter driver's service name.
pub const FILTER_NAME: &str = "XENFILT";

/// The new `UpperFilters` list after adding `name` (None = already present).
pub fn with_filter(old: &[String], name: &str) -> Option<Vec<String>> {
    if old.iter().any(|f| f.eq_ignore_ascii_case(name)) {
        return None;
    }
    let mut new = old.to_vec();
    new.push(String::from(name));
    Some(new)
}

/// The new `UpperFilters` list after removing every `name` (None = absent).
pub fn without_filter(old: &[String], name: &str) -> Option<Vec<String>> {
    if !old.iter().any(|f| f.eq_ignore_ascii_case(name)) {
        return None;
    }
    Some(
        old.iter()
            .filter(|f| !f.eq_ignore_ascii_case(name))
            .cloned()
            .collect(),
    )
}

fn update_class(os: &dyn Os, class: &str, install: bool) -> Result<bool, NtStatus> {
    registry::with_key(os, CLASS_PATH, |class_key| {
        let key = os.registry_open(Some(class_key), class)?;
        let result = (|| {
            let old = match os.registry_query(key, "UpperFilters") {
                Ok(RegValue::MultiSz(v)) => v,
                Ok(_) => return Err(STATUS_INVALID_PARAMETER),
                Err(s) if s == STATUS_OBJECT_NAME_NOT_FOUND => Vec::new(),
                Err(s) => return Err(s),
            };
            let new = if install {
                with_filter(&old, FILTER_NAME)
            } else {
                without_filter(&old, FILTER_NAME)
            };
            match new {
                None => Ok(false),
                Some(new) => os
                    .registry_set(key, "UpperFilters", &RegValue::MultiSz(new))
                    .map(|_| true),
            }
        })();
        os.registry_close(key);
        result
    })
}

fn update(os: &dyn Os, install: bool, log: &dyn Logger) {
    for class in [DEVCLASS_SYSTEM, DEVCLASS_HDC] {
        match update_class(os, class, install) {
            Ok(true) => log.info(format_args!("{class} {FILTER_NAME}")),
            Ok(false) => {}
            Err(status) => log.error(format_args!("{class}: fail ({:08x})", status as u32)),
        }
    }
}

/// `FiltersInstall`.
pub fn install(os: &dyn Os, log: &dyn Logger) {
    update(os, true, log)
}

/// `FiltersUninstall`.
pub fn uninstall(os: &dyn Os, log: &dyn Logger) {
    update(os, false, log)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::FakeOs;
    use crate::TestLogger;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn list_edits() {
        assert_eq!(with_filter(&s(&[]), "XENFILT"), Some(s(&["XENFILT"])));
        assert_eq!(
            with_filter(&s(&["partmgr"]), "XENFILT"),
            Some(s(&["partmgr", "XENFILT"]))
        );
        assert_eq!(with_filter(&s(&["xenfilt"]), "XENFILT"), None);
        assert_eq!(
            without_filter(&s(&["a", "XenFilt", "b", "XENFILT"]), "XENFILT"),
            Some(s(&["a", "b"]))
        );
        assert_eq!(without_filter(&s(&["a"]), "XENFILT"), None);
    }

    fn path(class: &str) -> String {
        format!("{CLASS_PATH}\\{class}")
    }

    #[test]
    fn install_uninstall_idempotent() {
        let os = FakeOs::new();
        os.mkkey(&path(DEVCLASS_SYSTEM));
        os.mkkey(&path(DEVCLASS_HDC));
        os.set(
            &path(DEVCLASS_HDC),
            "UpperFilters",
            RegValue::MultiSz(s(&["other"])),
        );
        let log = TestLogger::default();
        install(&os, &log);
        install(&os, &log);
        assert_eq!(
            os.get(&path(DEVCLASS_SYSTEM), "UpperFilters"),
            Some(RegValue::MultiSz(s(&["XENFILT"])))
        );
        assert_eq!(
            os.get(&path(DEVCLASS_HDC), "UpperFilters"),
            Some(RegValue::MultiSz(s(&["other", "XENFILT"])))
        );
        uninstall(&os, &log);
        uninstall(&os, &log);
        assert_eq!(
            os.get(&path(DEVCLASS_SYSTEM), "UpperFilters"),
            Some(RegValue::MultiSz(vec![]))
        );
        assert_eq!(
            os.get(&path(DEVCLASS_HDC), "UpperFilters"),
            Some(RegValue::MultiSz(s(&["other"])))
        );
        assert_eq!(os.open_handles(), 0);
    }

    #[test]
    fn wrong_type_and_missing_class_are_left_alone() {
        let os = FakeOs::new();
        os.mkkey(&path(DEVCLASS_SYSTEM));
        os.set(
            &path(DEVCLASS_SYSTEM),
            "UpperFilters",
            RegValue::Sz("XENFILT".into()),
        );
        let log = TestLogger::default();
        install(&os, &log);
        assert_eq!(
            os.get(&path(DEVCLASS_SYSTEM), "UpperFilters"),
            Some(RegValue::Sz("XENFILT".into()))
        );
        assert!(
            os.key(&path(DEVCLASS_HDC)).is_none(),
            "class keys are never created"
        );
        assert_eq!(log.lines().iter().filter(|l| l.contains("fail")).count(), 2);
        assert_eq!(os.open_handles(), 0);
    }
}
