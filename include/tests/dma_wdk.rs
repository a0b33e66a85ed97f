//! `xen_include::dma` against the WDK headers of mingw-w64 (`ddk/wdm.h`): `DMA_ADAPTER`,
//! every `DMA_OPERATIONS` slot mingw declares (versions 1 and 2; its table ends there, so
//! version 3's slots are pinned by the crate's own offset asserts only) and
//! `DEVICE_OBJECT.CurrentIrp` have the Rust offsets, checked by a C compiler.
//!
//! Needs `x86_64-w64-mingw32-gcc` (Debian `gcc-mingw-w64-x86-64`); installed with apt-get
//! when missing and running as root, else the test FAILS.

use std::fmt::Write as _;
use std::mem::{offset_of, size_of};
use std::path::PathBuf;
use std::process::Command;

use xen_include::dma::{
    DmaAdapter, DmaOperations, DEVICE_OBJECT_CURRENT_IRP, DMA_OPERATIONS_SIZE2,
};

const GCC: &str = "x86_64-w64-mingw32-gcc";

fn ensure_mingw() {
    let found = Command::new(GCC)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if found {
        return;
    }
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout == b"0\n");
    assert!(
        root,
        "{GCC} is missing and this test is not root: apt-get install gcc-mingw-w64-x86-64"
    );
    let ok = Command::new("apt-get")
        .args(["install", "-y", "-q", "gcc-mingw-w64-x86-64"])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "apt-get install gcc-mingw-w64-x86-64 failed");
}

/// The v1/v2 slots as (C name, Rust offset).
fn slots() -> Vec<(&'static str, usize)> {
    vec![
        ("Size", offset_of!(DmaOperations, size)),
        ("PutDmaAdapter", offset_of!(DmaOperations, put_dma_adapter)),
        (
            "AllocateCommonBuffer",
            offset_of!(DmaOperations, allocate_common_buffer),
        ),
        (
            "FreeCommonBuffer",
            offset_of!(DmaOperations, free_common_buffer),
        ),
        (
            "AllocateAdapterChannel",
            offset_of!(DmaOperations, allocate_adapter_channel),
        ),
        (
            "FlushAdapterBuffers",
            offset_of!(DmaOperations, flush_adapter_buffers),
        ),
        (
            "FreeAdapterChannel",
            offset_of!(DmaOperations, free_adapter_channel),
        ),
        (
            "FreeMapRegisters",
            offset_of!(DmaOperations, free_map_registers),
        ),
        ("MapTransfer", offset_of!(DmaOperations, map_transfer)),
        (
            "GetDmaAlignment",
            offset_of!(DmaOperations, get_dma_alignment),
        ),
        (
            "ReadDmaCounter",
            offset_of!(DmaOperations, read_dma_counter),
        ),
        (
            "GetScatterGatherList",
            offset_of!(DmaOperations, get_scatter_gather_list),
        ),
        (
            "PutScatterGatherList",
            offset_of!(DmaOperations, put_scatter_gather_list),
        ),
        (
            "CalculateScatterGatherList",
            offset_of!(DmaOperations, calculate_scatter_gather_list),
        ),
        (
            "BuildScatterGatherList",
            offset_of!(DmaOperations, build_scatter_gather_list),
        ),
        (
            "BuildMdlFromScatterGatherList",
            offset_of!(DmaOperations, build_mdl_from_scatter_gather_list),
        ),
    ]
}

fn source(slots: &[(&str, usize)]) -> String {
    let mut c = String::from("#include <ntddk.h>\n#include <stddef.h>\n");
    let mut check = |what: String, value: usize| {
        writeln!(c, "_Static_assert({what} == {value}, \"{what}\");").unwrap();
    };
    check("sizeof (DMA_ADAPTER)".into(), size_of::<DmaAdapter>());
    check(
        "offsetof (DMA_ADAPTER, Version)".into(),
        offset_of!(DmaAdapter, version),
    );
    check(
        "offsetof (DMA_ADAPTER, Size)".into(),
        offset_of!(DmaAdapter, size),
    );
    check(
        "offsetof (DMA_ADAPTER, DmaOperations)".into(),
        offset_of!(DmaAdapter, dma_operations),
    );
    for (name, offset) in slots {
        check(format!("offsetof (DMA_OPERATIONS, {name})"), *offset);
    }
    check(
        "sizeof (DMA_OPERATIONS)".into(),
        DMA_OPERATIONS_SIZE2 as usize,
    );
    check(
        "offsetof (DEVICE_OBJECT, CurrentIrp)".into(),
        DEVICE_OBJECT_CURRENT_IRP,
    );
    check("sizeof (PHYSICAL_ADDRESS)".into(), 8);
    check("sizeof (IO_ALLOCATION_ACTION)".into(), 4);
    check("KeepObject".into(), xen_include::dma::KEEP_OBJECT as usize);
    check(
        "DeallocateObject".into(),
        xen_include::dma::DEALLOCATE_OBJECT as usize,
    );
    check(
        "DeallocateObjectKeepRegisters".into(),
        xen_include::dma::DEALLOCATE_OBJECT_KEEP_REGISTERS as usize,
    );
    c
}

fn compile(name: &str, source: &str) -> std::process::Output {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("dma_wdk");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join(name);
    std::fs::write(&file, source).unwrap();
    Command::new(GCC)
        .args(["-std=gnu11", "-Wall", "-Werror", "-fsyntax-only"])
        .arg("-I/usr/share/mingw-w64/include/ddk")
        .arg(&file)
        .output()
        .expect("run mingw gcc")
}

#[test]
fn dma_layouts_match_the_wdk_headers() {
    ensure_mingw();
    let out = compile("dma.c", &source(&slots()));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The probe can fail: one slot moved by a pointer is caught.
    let mut wrong = slots();
    wrong[4].1 += 8;
    let out = compile("dma_wrong.c", &source(&wrong));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("AllocateAdapterChannel"));
}
