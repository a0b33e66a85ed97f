//! Package-wide version, vendor and product constants, stamped by `build.rs` from the
//! environment (`MAJOR_VERSION`, `MINOR_VERSION`, `MICRO_VERSION`, `BUILD_NUMBER`,
//! `VENDOR_NAME`, `VENDOR_PREFIX`, `PRODUCT_NAME`, `VENDOR_DEVICE_ID`, `COPYRIGHT`).
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

include!(concat!(env!("OUT_DIR"), "/stamp.rs"));

/// The dotted version string `major.minor.micro.build`.
pub const fn version() -> (u32, u32, u32, u32) {
    (MAJOR_VERSION, MINOR_VERSION, MICRO_VERSION, BUILD_NUMBER)
}

#[cfg(test)]
mod tests {
    #[test]
    fn defaults_are_stamped() {
        // The test command runs without the stamping variables set.
        if std::env::var("MAJOR_VERSION").is_err() {
            assert_eq!(super::version().0, 9);
            assert_eq!(super::VENDOR_PREFIX, "XP");
        }
    }
}
