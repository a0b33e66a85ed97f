//! C description of `xen.h` (the 64 functions xen.sys exports) and `xen.def`, from which
//! `include/c/xen.h` and `include/c/xen.def` are generated. The Rust side of the same API is
//! `crate::api` (export names, C-ABI types, `XenApi`); tests check the two agree.
#![forbid(unsafe_code)]

use core::fmt::{self, Write};

/// One exported function as declared in `xen.h`.
#[derive(Debug)]
pub struct CFunction {
    /// Section comment emitted before the function (`HVM`, `MEMORY`, ...), if it opens one.
    pub section: Option<&'static str>,
    /// Return type.
    pub ret: &'static str,
    /// Exported name.
    pub name: &'static str,
    /// Parameters as written in C (empty = `VOID`).
    pub params: &'static [&'static str],
    /// Ends with `...`.
    pub variadic: bool,
}

const fn f(
    section: Option<&'static str>,
    ret: &'static str,
    name: &'static str,
    params: &'static [&'static str],
) -> CFunction {
    CFunction {
        section,
        ret,
        name,
        params,
        variadic: false,
    }
}

const fn variadic(
    ret: &'static str,
    name: &'static str,
    params: &'static [&'static str],
) -> CFunction {
    CFunction {
        section: None,
        ret,
        name,
        params,
        variadic: true,
    }
}

/// The exports, in the order of the original `xen.h`.
pub const XEN_H_FUNCTIONS: &[CFunction] = &[
    f(
        Some("Dummy function to cause XEN.SYS to be loaded and initialized"),
        "NTSTATUS",
        "XenTouch",
        &[
            "_In_ PCSTR Name",
            "_In_ ULONG MajorVersion",
            "_In_ ULONG MinorVersion",
            "_In_ ULONG MicroVersion",
            "_In_ ULONG BuildNumber",
        ],
    ),
    f(
        Some("HVM"),
        "NTSTATUS",
        "HvmSetParam",
        &["_In_ ULONG Parameter", "_In_ ULONGLONG Value"],
    ),
    f(
        None,
        "NTSTATUS",
        "HvmGetParam",
        &["_In_ ULONG Parameter", "_Out_ PULONGLONG Value"],
    ),
    f(
        None,
        "NTSTATUS",
        "HvmPagetableDying",
        &["_In_ PHYSICAL_ADDRESS Address"],
    ),
    f(
        None,
        "NTSTATUS",
        "HvmSetEvtchnUpcallVector",
        &["_In_ unsigned int vcpu_id", "_In_ UCHAR Vector"],
    ),
    f(
        Some("MEMORY"),
        "NTSTATUS",
        "MemoryAddToPhysmap",
        &[
            "_In_ PFN_NUMBER Pfn",
            "_In_ ULONG Space",
            "_In_ ULONG_PTR Offset",
        ],
    ),
    f(
        None,
        "NTSTATUS",
        "MemoryRemoveFromPhysmap",
        &["_In_ PFN_NUMBER Pfn"],
    ),
    f(
        None,
        "NTSTATUS",
        "MemoryDecreaseReservation",
        &[
            "_In_ ULONG Order",
            "_In_ ULONG Count",
            "_In_ PPFN_NUMBER PfnArray",
            "_Out_ PULONG Result",
        ],
    ),
    f(
        None,
        "NTSTATUS",
        "MemoryPopulatePhysmap",
        &[
            "_In_ ULONG Order",
            "_In_ ULONG Count",
            "_In_ PPFN_NUMBER PfnArray",
            "_Out_ PULONG Result",
        ],
    ),
    f(
        Some("EVENT CHANNEL"),
        "NTSTATUS",
        "EventChannelSend",
        &["_In_ ULONG Port"],
    ),
    f(
        None,
        "NTSTATUS",
        "EventChannelAllocateUnbound",
        &["_In_ USHORT Domain", "_Out_ ULONG *Port"],
    ),
    f(
        None,
        "NTSTATUS",
        "EventChannelBindInterDomain",
        &[
            "_In_ USHORT RemoteDomain",
            "_In_ ULONG RemotePort",
            "_Out_ ULONG *LocalPort",
        ],
    ),
    f(
        None,
        "NTSTATUS",
        "EventChannelBindVirq",
        &[
            "_In_ ULONG Virq",
            "_In_ unsigned int vcpu_id",
            "_Out_ ULONG *LocalPort",
        ],
    ),
    f(
        None,
        "NTSTATUS",
        "EventChannelQueryInterDomain",
        &[
            "_In_ ULONG LocalPort",
            "_Out_ USHORT *RemoteDomain",
            "_Out_ ULONG *RemotePort",
        ],
    ),
    f(
        None,
        "NTSTATUS",
        "EventChannelClose",
        &["_In_ ULONG LocalPort"],
    ),
    f(
        None,
        "NTSTATUS",
        "EventChannelExpandArray",
        &["_In_ PFN_NUMBER Pfn"],
    ),
    f(
        None,
        "NTSTATUS",
        "EventChannelInitControl",
        &["_In_ PFN_NUMBER Pfn", "_In_ unsigned int vcpu_id"],
    ),
    f(None, "NTSTATUS", "EventChannelReset", &[]),
    f(
        None,
        "NTSTATUS",
        "EventChannelBindVirtualCpu",
        &["_In_ ULONG LocalPort", "_In_ unsigned int vcpu_id"],
    ),
    f(
        None,
        "NTSTATUS",
        "EventChannelUnmask",
        &["_In_ ULONG LocalPort"],
    ),
    f(
        Some("GRANT TABLE"),
        "NTSTATUS",
        "GrantTableSetVersion",
        &["_In_ uint32_t Version"],
    ),
    f(
        None,
        "NTSTATUS",
        "GrantTableGetVersion",
        &["_Out_ uint32_t *Version"],
    ),
    f(
        None,
        "NTSTATUS",
        "GrantTableCopy",
        &["_In_ struct gnttab_copy *op", "_In_ ULONG Count"],
    ),
    f(
        None,
        "NTSTATUS",
        "GrantTableMapForeignPage",
        &[
            "_In_ USHORT Domain",
            "_In_ ULONG GrantRef",
            "_In_ PHYSICAL_ADDRESS Address",
            "_In_ BOOLEAN ReadOnly",
            "_Out_ ULONG *Handle",
        ],
    ),
    f(
        None,
        "NTSTATUS",
        "GrantTableUnmapForeignPage",
        &["_In_ ULONG Handle", "_In_ PHYSICAL_ADDRESS Address"],
    ),
    f(
        None,
        "NTSTATUS",
        "GrantTableQuerySize",
        &["_Out_opt_ uint32_t *Current", "_Out_opt_ uint32_t *Maximum"],
    ),
    f(
        Some("SCHED"),
        "NTSTATUS",
        "SchedShutdownCode",
        &["_In_ ULONG Reason"],
    ),
    f(None, "NTSTATUS", "SchedShutdown", &["_In_ ULONG Reason"]),
    f(None, "VOID", "SchedYield", &[]),
    f(
        None,
        "NTSTATUS",
        "SchedWatchdog",
        &["_Inout_ PULONG Id", "_In_ ULONG Seconds"],
    ),
    f(
        Some("XEN VERSION"),
        "NTSTATUS",
        "XenVersion",
        &["_Out_ PULONG Major", "_Out_ PULONG Minor"],
    ),
    f(
        None,
        "NTSTATUS",
        "XenVersionExtra",
        &["_Out_writes_z_(XEN_EXTRAVERSION_LEN) PSTR Extra"],
    ),
    f(
        Some("MODULE"),
        "VOID",
        "ModuleLookup",
        &[
            "_In_ ULONG_PTR Address",
            "_Outptr_result_maybenull_z_ PSTR *Name",
            "_Out_ PULONG_PTR Offset",
        ],
    ),
    f(Some("UNPLUG"), "VOID", "UnplugDevices", &[]),
    f(
        None,
        "NTSTATUS",
        "UnplugIncrementValue",
        &["_In_ UNPLUG_TYPE Type"],
    ),
    f(
        None,
        "NTSTATUS",
        "UnplugDecrementValue",
        &["_In_ UNPLUG_TYPE Type"],
    ),
    f(
        None,
        "BOOLEAN",
        "UnplugGetRequest",
        &["_In_ UNPLUG_TYPE Type"],
    ),
    f(
        Some("LOG"),
        "VOID",
        "LogCchVPrintf",
        &[
            "_In_ LOG_LEVEL Level",
            "_In_ ULONG Count",
            "_In_ PCSTR Format",
            "_In_ va_list Arguments",
        ],
    ),
    f(
        None,
        "VOID",
        "LogVPrintf",
        &[
            "_In_ LOG_LEVEL Level",
            "_In_ PCSTR Format",
            "_In_ va_list Arguments",
        ],
    ),
    variadic(
        "VOID",
        "LogCchPrintf",
        &[
            "_In_ LOG_LEVEL Level",
            "_In_ ULONG Count",
            "_In_ PCSTR Format",
        ],
    ),
    variadic(
        "VOID",
        "LogPrintf",
        &["_In_ LOG_LEVEL Level", "_In_ PCSTR Format"],
    ),
    f(None, "VOID", "LogResume", &[]),
    f(
        None,
        "NTSTATUS",
        "LogReadLogLevel",
        &[
            "_In_ HANDLE Key",
            "_In_ PSTR Name",
            "_Out_ PLOG_LEVEL LogLevel",
        ],
    ),
    f(
        None,
        "NTSTATUS",
        "LogAddDisposition",
        &[
            "_In_ LOG_LEVEL Mask",
            "_In_ VOID (*Function)(PVOID, PSTR, ULONG)",
            "_In_opt_ PVOID Argument",
            "_Outptr_result_maybenull_ PLOG_DISPOSITION *Disposition",
        ],
    ),
    f(
        None,
        "VOID",
        "LogRemoveDisposition",
        &["_In_opt_ PLOG_DISPOSITION Disposition"],
    ),
    f(
        Some("SYSTEM"),
        "NTSTATUS",
        "SystemProcessorVcpuId",
        &["_In_ ULONG Cpu", "_Out_ unsigned int *vcpu_id"],
    ),
    f(
        None,
        "NTSTATUS",
        "SystemProcessorVcpuInfo",
        &["_In_ ULONG Cpu", "_Out_ struct vcpu_info **Vcpu"],
    ),
    f(
        None,
        "NTSTATUS",
        "SystemProcessorRegisterVcpuInfo",
        &["_In_ ULONG Cpu", "_In_ BOOLEAN Force"],
    ),
    f(
        None,
        "PHYSICAL_ADDRESS",
        "SystemMaximumPhysicalAddress",
        &[],
    ),
    f(None, "BOOLEAN", "SystemRealTimeIsUniversal", &[]),
    f(
        None,
        "NTSTATUS",
        "SystemSetWatchdog",
        &["_In_ ULONG Seconds"],
    ),
    f(None, "VOID", "SystemStopWatchdog", &[]),
    f(
        Some("VCPU"),
        "NTSTATUS",
        "VcpuSetPeriodicTimer",
        &[
            "_In_ unsigned int vcpu_id",
            "_In_opt_ PLARGE_INTEGER Period",
        ],
    ),
    f(
        None,
        "NTSTATUS",
        "VcpuRegisterVcpuInfo",
        &[
            "_In_ unsigned int vcpu_id",
            "_In_ PFN_NUMBER Pfn",
            "_In_ ULONG Offset",
        ],
    ),
    f(Some("FILTERS"), "VOID", "FiltersInstall", &[]),
    f(None, "VOID", "FiltersUninstall", &[]),
    f(
        Some("CONFIG"),
        "NTSTATUS",
        "ConfigGetActive",
        &["_In_ PCSTR Key", "_Outptr_result_z_ PSTR *Value"],
    ),
    f(
        None,
        "NTSTATUS",
        "ConfigSetActive",
        &[
            "_In_ PSTR DeviceID",
            "_In_ PSTR InstanceID",
            "_In_ PSTR LocationInformation",
        ],
    ),
    f(
        None,
        "NTSTATUS",
        "ConfigUpdateActive",
        &[
            "_In_ PSTR DeviceID",
            "_In_ PSTR InstanceID",
            "_In_ PSTR LocationInformation",
        ],
    ),
    f(None, "NTSTATUS", "ConfigClearActive", &[]),
    f(None, "VOID", "ConfigFreeActive", &["_In_ PSTR Value"]),
    f(
        None,
        "NTSTATUS",
        "ConfigRequestReboot",
        &["_In_ HANDLE ParametersKey", "_In_ PSTR Module"],
    ),
    f(
        None,
        "NTSTATUS",
        "ConfigQuerySystemStartOption",
        &["_In_ PSTR Key", "_Outptr_ PANSI_STRING *Option"],
    ),
    f(
        None,
        "VOID",
        "ConfigFreeSzValue",
        &["_In_ PANSI_STRING Array"],
    ),
];

const _: () = {
    assert!(XEN_H_FUNCTIONS.len() == crate::api::EXPORT_NAMES.len());
    let mut i = 0;
    while i < XEN_H_FUNCTIONS.len() {
        let (a, b) = (
            XEN_H_FUNCTIONS[i].name.as_bytes(),
            crate::api::EXPORT_NAMES[i].as_bytes(),
        );
        assert!(
            a.len() == b.len(),
            "xen.h order differs from api::EXPORT_NAMES"
        );
        let mut j = 0;
        while j < a.len() {
            assert!(a[j] == b[j], "xen.h order differs from api::EXPORT_NAMES");
            j += 1;
        }
        i += 1;
    }
};

const HEADER_TYPES: &str = r#"#ifndef XEN_API
#define XEN_API __declspec(dllimport)
#endif  // XEN_API

#define PAGE_ORDER_4K   0
#define PAGE_ORDER_2M   9

#ifndef XEN_EXTRAVERSION_LEN
#define XEN_EXTRAVERSION_LEN 16
#endif

typedef enum _UNPLUG_TYPE {
    UNPLUG_DISKS = 0,
    UNPLUG_NICS,
    UNPLUG_TYPE_COUNT
} UNPLUG_TYPE, *PUNPLUG_TYPE;

typedef enum _LOG_LEVEL {
    LOG_LEVEL_NONE = 0,
    LOG_LEVEL_TRACE = 1 << DPFLTR_TRACE_LEVEL,
    LOG_LEVEL_INFO = 1 << DPFLTR_INFO_LEVEL,
    LOG_LEVEL_WARNING = 1 << DPFLTR_WARNING_LEVEL,
    LOG_LEVEL_ERROR = 1 << DPFLTR_ERROR_LEVEL,
    LOG_LEVEL_CRITICAL = 0x80000000
} LOG_LEVEL, *PLOG_LEVEL;

typedef struct _LOG_DISPOSITION LOG_DISPOSITION, *PLOG_DISPOSITION;

struct gnttab_copy;
struct vcpu_info;
"#;

/// Renders `xen.h`: the xen.sys API for C importers (`XEN_API` defaults to
/// `__declspec(dllimport)`). Like the original it includes `xen-types.h`, `xen-warnings.h`,
/// `xen-errno.h` (generated too), `xen-version.h` (stamped at build time) and the Xen public
/// headers (`public/...`, fetched by get_xen_headers.py); define `XEN_API_NO_PUBLIC_HEADERS`
/// to skip the last two (the API itself needs none of them).
pub fn render_xen_h<W: Write + ?Sized>(out: &mut W) -> fmt::Result {
    writeln!(out, "/* xen.h: the xen.sys exported API")?;
    writeln!(
        out,
        " * GENERATED from the Rust definitions in crate xen-include by `cargo xtask cheaders`;"
    )?;
    writeln!(out, " * do not edit. */\n")?;
    writeln!(out, "#ifndef _XEN_H\n#define _XEN_H\n")?;
    writeln!(out, "#include <ntddk.h>\n")?;
    for inc in ["xen-types.h", "xen-warnings.h", "xen-errno.h"] {
        writeln!(out, "#include <{inc}>")?;
    }
    writeln!(out, "\n#ifndef XEN_API_NO_PUBLIC_HEADERS")?;
    for inc in [
        "xen-version.h",
        "public/errno.h",
        "public/xen.h",
        "public/memory.h",
        "public/event_channel.h",
        "public/grant_table.h",
        "public/sched.h",
        "public/vcpu.h",
        "public/hvm/params.h",
        "public/hvm/hvm_info_table.h",
    ] {
        writeln!(out, "#include <{inc}>")?;
    }
    writeln!(
        out,
        "// xs_wire.h gates xsd_errors on EINVAL being a macro; Xen's EINVAL is an enumerator."
    )?;
    writeln!(out, "#ifdef EINVAL\n#undef EINVAL\n#endif")?;
    writeln!(out, "#define EINVAL  XEN_EINVAL")?;
    for inc in [
        "public/io/xs_wire.h",
        "public/io/console.h",
        "public/version.h",
    ] {
        writeln!(out, "#include <{inc}>")?;
    }
    writeln!(out, "#endif  // XEN_API_NO_PUBLIC_HEADERS\n")?;
    out.write_str(HEADER_TYPES)?;
    for func in XEN_H_FUNCTIONS {
        if let Some(section) = func.section {
            writeln!(out, "\n// {section}")?;
        }
        writeln!(out, "\nXEN_API\n{}\n{}(", func.ret, func.name)?;
        if func.params.is_empty() {
            writeln!(out, "    VOID")?;
        }
        for (i, p) in func.params.iter().enumerate() {
            let last = i + 1 == func.params.len() && !func.variadic;
            writeln!(out, "    {p}{}", if last { "" } else { "," })?;
        }
        if func.variadic {
            writeln!(out, "    ...")?;
        }
        writeln!(out, "    );")?;
    }
    writeln!(out, "\n#endif  // _XEN_H")
}

/// Renders `xen.def`: the export table of xen.sys (`LIBRARY xen.sys`, the two PRIVATE entry
/// points, then every API export), for the linker and `llvm-dlltool`.
pub fn render_xen_def<W: Write + ?Sized>(out: &mut W) -> fmt::Result {
    writeln!(out, "; xen.def: exports of xen.sys")?;
    writeln!(
        out,
        "; GENERATED from the Rust definitions in crate xen-include by `cargo xtask cheaders`."
    )?;
    writeln!(out, "LIBRARY xen.sys\n\nEXPORTS")?;
    for name in crate::api::PRIVATE_EXPORT_NAMES {
        writeln!(out, "    {name} PRIVATE")?;
    }
    for name in crate::api::EXPORT_NAMES {
        writeln!(out, "    {name}")?;
    }
    Ok(())
}
