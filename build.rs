//! Stamps the package's version, vendor and product constants from the environment.
use std::{env, fs, path::PathBuf};

fn var(name: &str, default: &str) -> String {
    println!("cargo:rerun-if-env-changed={name}");
    env::var(name).unwrap_or_else(|_| default.to_string())
}

fn main() {
    let major = var("MAJOR_VERSION", "9");
    let minor = var("MINOR_VERSION", "1");
    let micro = var("MICRO_VERSION", "0");
    let build = var("BUILD_NUMBER", "0");
    let vendor_name = var("VENDOR_NAME", "Xen Project");
    let vendor_prefix = var("VENDOR_PREFIX", "XP");
    let product_name = var("PRODUCT_NAME", "Xen");
    let vendor_device_id = var("VENDOR_DEVICE_ID", "");
    let copyright = var("COPYRIGHT", "Copyright (c) Xen Project.");
    for (name, value) in [
        ("MAJOR_VERSION", &major),
        ("MINOR_VERSION", &minor),
        ("MICRO_VERSION", &micro),
        ("BUILD_NUMBER", &build),
    ] {
        if value.parse::<u32>().is_err() {
            panic!("{name}={value:?} is not a decimal number");
        }
    }
    if !vendor_device_id.is_empty()
        && (vendor_device_id.len() != 4 || !vendor_device_id.chars().all(|c| c.is_ascii_hexdigit()))
    {
        panic!("VENDOR_DEVICE_ID={vendor_device_id:?} must be four hexadecimal digits or empty");
    }
    let out = PathBuf::from(env::var("OUT_DIR").expect("OUT_DIR"));
    let code = format!(
        "pub const MAJOR_VERSION: u32 = {major};\n\
         pub const MINOR_VERSION: u32 = {minor};\n\
         pub const MICRO_VERSION: u32 = {micro};\n\
         pub const BUILD_NUMBER: u32 = {build};\n\
         pub const VENDOR_NAME: &str = {vendor_name:?};\n\
         pub const VENDOR_PREFIX: &str = {vendor_prefix:?};\n\
         pub const PRODUCT_NAME: &str = {product_name:?};\n\
         pub const VENDOR_DEVICE_ID: Option<&str> = {vdi};\n\
         pub const COPYRIGHT: &str = {copyright:?};\n",
        vdi = if vendor_device_id.is_empty() {
            "None".to_string()
        } else {
            format!("Some({vendor_device_id:?})")
        },
    );
    fs::write(out.join("stamp.rs"), code).expect("write stamp.rs");
}
