//! The generated C headers (`include/c/`): committed copies are current, and a C consumer
//! built with mingw-w64 for x86_64 Windows compiles against them with every `sizeof` and
//! `offsetof` equal to the Rust layout.
//!
//! Needs `x86_64-w64-mingw32-gcc` (Debian `gcc-mingw-w64-x86-64`, whose DDK headers
//! provide `ntddk.h`); the test installs it with apt-get when it is missing and running
//! as root, and FAILS when it cannot.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use xen_include::interfaces::{cmeta, Interface, C_FILES, C_HEADERS};

const GCC: &str = "x86_64-w64-mingw32-gcc";

fn c_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("c")
}

fn render(f: xen_include::interfaces::CRenderer) -> String {
    let mut s = String::new();
    f(&mut s).expect("render");
    s
}

#[test]
fn committed_headers_equal_freshly_generated_ones() {
    let mut stale = Vec::new();
    for (name, f) in C_FILES {
        let fresh = render(*f);
        let committed = std::fs::read_to_string(c_dir().join(name)).unwrap_or_default();
        if committed != fresh {
            stale.push(*name);
        }
    }
    assert!(
        stale.is_empty(),
        "stale generated headers {stale:?}: run `cargo xtask cheaders` and commit include/c/"
    );
}

fn ensure_mingw() -> String {
    let found = Command::new(GCC)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if found {
        return GCC.to_string();
    }
    let root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout == b"0\n")
        .unwrap_or(false);
    assert!(
        root,
        "{GCC} is missing and this test is not root: apt-get install gcc-mingw-w64-x86-64"
    );
    let ok = Command::new("apt-get")
        .args(["install", "-y", "-q", "gcc-mingw-w64-x86-64"])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "apt-get install gcc-mingw-w64-x86-64 failed; cannot check the C headers"
    );
    GCC.to_string()
}

/// The C consumer: every header, the layout checks, the revision table expanded with a
/// `DEFINE_REVISION` of our own, and the method macros used the way drivers use them.
fn probe_source(layout_checks: &str) -> String {
    let mut c = String::new();
    c.push_str("#include <ntddk.h>\n#include <initguid.h>\n#include <stddef.h>\n");
    c.push_str("#define XEN_API_NO_PUBLIC_HEADERS\n");
    for (name, _) in C_FILES.iter().filter(|(n, _)| n.ends_with(".h")) {
        writeln!(c, "#include <{name}>").unwrap();
    }
    c.push_str(layout_checks);
    c.push_str(
        r#"
typedef struct _REV { ULONG Number; ULONG V[11]; } REV;
#define DEFINE_REVISION(_N, _S, _SI, _E, _D, _ST, _R, _C, _G, _U, _CO, _EM) \
    { _N, { _S, _SI, _E, _D, _ST, _R, _C, _G, _U, _CO, _EM } }
static const REV Revisions[] = { DEFINE_REVISION_TABLE };
_Static_assert(sizeof(Revisions) / sizeof(Revisions[0]) == REVISION_COUNT, "rows");
_Static_assert(XENBUS_EVTCHN_INTERFACE_VERSION_MAX == 9, "evtchn max");
_Static_assert(XENBUS_GNTTAB_STORE_REFERENCE == 1, "store ref");

NTSTATUS UseStore(PXENBUS_STORE_INTERFACE Store)
{
    PSTR Buffer;
    NTSTATUS status = XENBUS_STORE(Printf, Store, NULL, NULL, "state", "%u", 4);
    if (!NT_SUCCESS(status))
        return status;
    status = XENBUS_STORE(Read, Store, NULL, "device", "vif", &Buffer);
    if (NT_SUCCESS(status))
        XENBUS_STORE(Free, Store, Buffer);
    return status;
}

ULONG UseSuspend(PXENBUS_SUSPEND_INTERFACE Suspend)
{
    return XENBUS_SUSPEND(GetCount, Suspend);
}

PXENBUS_EVTCHN_CHANNEL UseEvtchn(PXENBUS_EVTCHN_INTERFACE Evtchn, PKSERVICE_ROUTINE Fn)
{
    return XENBUS_EVTCHN(Open, Evtchn, XENBUS_EVTCHN_TYPE_UNBOUND, Fn, NULL, (USHORT)0, TRUE);
}

NTSTATUS UseXen(void)
{
    ULONG Port;
    uint32_t Version;
    NTSTATUS status = XenTouch("probe", 9, 1, 0, 0);
    if (!NT_SUCCESS(status))
        return status;
    LogPrintf(LOG_LEVEL_INFO, "%s: %u\n", "probe", 1);
    status = GrantTableGetVersion(&Version);
    if (UnplugGetRequest(UNPLUG_NICS))
        SchedYield();
    return EventChannelAllocateUnbound(0, &Port);
}

const GUID *Guids[] = {
    &GUID_XENBUS_SUSPEND_INTERFACE, &GUID_XENBUS_SHARED_INFO_INTERFACE,
    &GUID_XENBUS_EVTCHN_INTERFACE, &GUID_XENBUS_DEBUG_INTERFACE, &GUID_XENBUS_STORE_INTERFACE,
    &GUID_XENBUS_RANGE_SET_INTERFACE, &GUID_XENBUS_CACHE_INTERFACE,
    &GUID_XENBUS_GNTTAB_INTERFACE, &GUID_XENBUS_UNPLUG_INTERFACE,
    &GUID_XENBUS_CONSOLE_INTERFACE, &GUID_XENBUS_BALLOON_INTERFACE,
    &GUID_XENFILT_EMULATED_INTERFACE,
};
"#,
    );
    c
}

fn layout_checks() -> String {
    let mut s = String::new();
    let (size, ctx, rf, drf) = (
        core::mem::size_of::<Interface>(),
        core::mem::offset_of!(Interface, context),
        core::mem::offset_of!(Interface, interface_reference),
        core::mem::offset_of!(Interface, interface_dereference),
    );
    writeln!(
        s,
        "_Static_assert(sizeof(INTERFACE) == {size}, \"INTERFACE\");"
    )
    .unwrap();
    writeln!(
        s,
        "_Static_assert(offsetof(INTERFACE, Context) == {ctx}, \"Context\");"
    )
    .unwrap();
    writeln!(
        s,
        "_Static_assert(offsetof(INTERFACE, InterfaceReference) == {rf}, \"Ref\");"
    )
    .unwrap();
    writeln!(
        s,
        "_Static_assert(offsetof(INTERFACE, InterfaceDereference) == {drf}, \"Deref\");"
    )
    .unwrap();
    writeln!(
        s,
        "_Static_assert(sizeof(GUID) == {}, \"GUID\");",
        size_of::<xen_include::guid::Guid>()
    )
    .unwrap();
    writeln!(
        s,
        "#define REVISION_COUNT {}",
        xen_include::revision::REVISIONS.len()
    )
    .unwrap();
    for h in C_HEADERS {
        cmeta::render_layout_checks(&mut s, h).unwrap();
    }
    s
}

fn compile(gcc: &str, name: &str, source: &str) -> std::process::Output {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("c_headers");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join(name);
    std::fs::write(&file, source).unwrap();
    Command::new(gcc)
        .arg("-std=gnu11")
        .arg("-Wall")
        .arg("-Werror")
        .arg("-fsyntax-only")
        .arg("-I/usr/share/mingw-w64/include/ddk")
        .arg("-I")
        .arg(c_dir())
        .arg(&file)
        .output()
        .expect("run mingw gcc")
}

#[test]
fn mingw_c_consumer_compiles_with_rust_layouts() {
    let gcc = ensure_mingw();
    let checks = layout_checks();
    assert!(
        checks.matches("_Static_assert(offsetof(").count() > 200,
        "probe too small"
    );
    let out = compile(&gcc, "probe.c", &probe_source(&checks));
    assert!(
        out.status.success(),
        "C consumer failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn every_header_compiles_on_its_own_after_ntddk() {
    let gcc = ensure_mingw();
    // One thread per header: each compile re-parses ntddk.h, so run them side by side.
    let handles: Vec<_> = C_FILES
        .iter()
        .filter(|(n, _)| n.ends_with(".h"))
        .map(|(name, _)| {
            let gcc = gcc.clone();
            std::thread::spawn(move || {
                let src = format!(
                    "#include <ntddk.h>\n#define XEN_API_NO_PUBLIC_HEADERS\n#include <{name}>\n#include <{name}>\n"
                );
                (*name, compile(&gcc, &format!("alone_{name}.c"), &src))
            })
        })
        .collect();
    for handle in handles {
        let (name, out) = handle.join().expect("compile thread");
        assert!(
            out.status.success(),
            "{name}:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn the_probe_catches_a_wrong_layout() {
    let gcc = ensure_mingw();
    let checks = layout_checks();
    let good = "offsetof(struct _XENBUS_STORE_INTERFACE_V2, StorePrintf) == 64";
    assert!(checks.contains(good), "expected check missing");
    let broken = checks.replace(
        good,
        "offsetof(struct _XENBUS_STORE_INTERFACE_V2, StorePrintf) == 72",
    );
    let out = compile(&gcc, "probe_broken.c", &probe_source(&broken));
    assert!(!out.status.success(), "a wrong offset was not caught");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("XENBUS_STORE_INTERFACE_V2.StorePrintf"),
        "{stderr}"
    );
}

/// Number of parameters of a C-ABI function pointer type of `crate::api::c`.
trait Arity {
    const N: usize;
    const VARIADIC: bool = false;
}

macro_rules! arity {
    ($n:literal: $($a:ident),*) => {
        impl<R, $($a),*> Arity for unsafe extern "C" fn($($a),*) -> R {
            const N: usize = $n;
        }
    };
}
arity!(0:);
arity!(1: A);
arity!(2: A, B);
arity!(3: A, B, C);
arity!(4: A, B, C, D);
arity!(5: A, B, C, D, E);
impl<R, A, B> Arity for unsafe extern "C" fn(A, B, ...) -> R {
    const N: usize = 2;
    const VARIADIC: bool = true;
}
impl<R, A, B, C> Arity for unsafe extern "C" fn(A, B, C, ...) -> R {
    const N: usize = 3;
    const VARIADIC: bool = true;
}

macro_rules! api_arities {
    ($($name:ident),* $(,)?) => {
        &[$((stringify!($name), <xen_include::api::c::$name as Arity>::N, <xen_include::api::c::$name as Arity>::VARIADIC)),*]
    };
}

#[test]
fn xen_h_declarations_agree_with_the_rust_api_signatures() {
    use xen_include::interfaces::xen_api_h::XEN_H_FUNCTIONS;
    let rust: &[(&str, usize, bool)] = api_arities!(
        XenTouch,
        HvmSetParam,
        HvmGetParam,
        HvmPagetableDying,
        HvmSetEvtchnUpcallVector,
        MemoryAddToPhysmap,
        MemoryRemoveFromPhysmap,
        MemoryDecreaseReservation,
        MemoryPopulatePhysmap,
        EventChannelSend,
        EventChannelAllocateUnbound,
        EventChannelBindInterDomain,
        EventChannelBindVirq,
        EventChannelQueryInterDomain,
        EventChannelClose,
        EventChannelExpandArray,
        EventChannelInitControl,
        EventChannelReset,
        EventChannelBindVirtualCpu,
        EventChannelUnmask,
        GrantTableSetVersion,
        GrantTableGetVersion,
        GrantTableCopy,
        GrantTableMapForeignPage,
        GrantTableUnmapForeignPage,
        GrantTableQuerySize,
        SchedShutdownCode,
        SchedShutdown,
        SchedYield,
        SchedWatchdog,
        XenVersion,
        XenVersionExtra,
        ModuleLookup,
        UnplugDevices,
        UnplugIncrementValue,
        UnplugDecrementValue,
        UnplugGetRequest,
        LogCchVPrintf,
        LogVPrintf,
        LogCchPrintf,
        LogPrintf,
        LogResume,
        LogReadLogLevel,
        LogAddDisposition,
        LogRemoveDisposition,
        SystemProcessorVcpuId,
        SystemProcessorVcpuInfo,
        SystemProcessorRegisterVcpuInfo,
        SystemMaximumPhysicalAddress,
        SystemRealTimeIsUniversal,
        SystemSetWatchdog,
        SystemStopWatchdog,
        VcpuSetPeriodicTimer,
        VcpuRegisterVcpuInfo,
        FiltersInstall,
        FiltersUninstall,
        ConfigGetActive,
        ConfigSetActive,
        ConfigUpdateActive,
        ConfigClearActive,
        ConfigFreeActive,
        ConfigRequestReboot,
        ConfigQuerySystemStartOption,
        ConfigFreeSzValue,
    );
    assert_eq!(rust.len(), XEN_H_FUNCTIONS.len());
    for ((name, n, variadic), c) in rust.iter().zip(XEN_H_FUNCTIONS) {
        assert_eq!(*name, c.name, "order");
        assert_eq!((*n, *variadic), (c.params.len(), c.variadic), "{name}");
    }
}

#[test]
fn xen_def_lists_private_entry_points_then_every_export() {
    let def = render(C_FILES.iter().find(|(n, _)| *n == "xen.def").unwrap().1);
    let lines: Vec<&str> = def.lines().map(str::trim).collect();
    assert!(lines.contains(&"LIBRARY xen.sys"));
    assert!(lines.contains(&"DllInitialize PRIVATE"));
    for name in xen_include::api::EXPORT_NAMES {
        assert_eq!(lines.iter().filter(|l| **l == *name).count(), 1, "{name}");
    }
}

fn ensure_libxen_dev() -> PathBuf {
    let xen = PathBuf::from("/usr/include/xen");
    if !xen.join("xen.h").exists() {
        let ok = Command::new("apt-get")
            .args(["install", "-y", "-q", "libxen-dev"])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            ok,
            "libxen-dev is missing and apt-get install failed (run as root)"
        );
    }
    xen
}

#[test]
fn xen_h_compiles_with_the_xen_public_headers() {
    let gcc = ensure_mingw();
    let public = ensure_libxen_dev();
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("c_headers_public");
    std::fs::create_dir_all(&dir).unwrap();
    let link = dir.join("public");
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(&public, &link).unwrap();
    // xen-version.h is stamped at build time; a minimal stand-in.
    std::fs::write(dir.join("xen-version.h"), "#define MAJOR_VERSION 9\n").unwrap();
    let src = r#"
#include <ntddk.h>
#include <xen.h>
NTSTATUS Use(int rc, evtchn_port_t port, domid_t domid)
{
    NTSTATUS status;
    ERRNO_TO_STATUS(-rc, status);
    if (XS_DIRECTORY == 1 && port == 0 && domid == DOMID_SELF)
        return STATUS_SUCCESS;
    return status;
}
// mingw's DDK lacks the KeMemoryBarrier intrinsic, so the barrier macros are only checked to exist.
#if !defined(xen_mb) || !defined(xen_rmb) || !defined(xen_wmb)
#error barrier macros missing
#endif
_Static_assert(sizeof(struct gnttab_copy) > 0, "gnttab_copy is complete");
_Static_assert(sizeof(vcpu_info_t) > 0, "vcpu_info_t is complete");
_Static_assert(sizeof(uint64_t) == 8 && sizeof(uint32_t) == 4, "xen-types.h widths");
"#;
    let file = dir.join("public_probe.c");
    std::fs::write(&file, src).unwrap();
    let out = Command::new(gcc)
        .args(["-std=gnu11", "-Wall", "-Werror", "-fsyntax-only"])
        .arg("-I/usr/share/mingw-w64/include/ddk")
        .arg("-I")
        .arg(c_dir())
        .arg("-I")
        .arg(&dir)
        .arg(&file)
        .output()
        .expect("run mingw gcc");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "xen.h with public headers failed:\n{stderr}"
    );
}

#[test]
fn c_driver_links_against_the_xen_def_import_library() {
    let gcc = ensure_mingw();
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("c_headers_link");
    std::fs::create_dir_all(&dir).unwrap();
    let run = |cmd: &mut Command| {
        let out = cmd.output().expect("run mingw tool");
        assert!(
            out.status.success(),
            "{cmd:?}:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    run(Command::new("x86_64-w64-mingw32-dlltool")
        .arg("-d")
        .arg(c_dir().join("xen.def"))
        .arg("-l")
        .arg(dir.join("libxen.a")));
    let src = r#"
#include <ntddk.h>
#define XEN_API_NO_PUBLIC_HEADERS
#include <xen.h>
NTSTATUS DriverEntry(PVOID DriverObject, PVOID RegistryPath)
{
    ULONG Port;
    (void)DriverObject;
    (void)RegistryPath;
    LogPrintf(LOG_LEVEL_INFO, "%s\n", "probe");
    if (!NT_SUCCESS(EventChannelAllocateUnbound(0, &Port)))
        return STATUS_UNSUCCESSFUL;
    return XenTouch("probe", 9, 1, 0, 0);
}
"#;
    std::fs::write(dir.join("driver.c"), src).unwrap();
    run(Command::new(&gcc)
        .args([
            "-c",
            "-Wall",
            "-Werror",
            "-I/usr/share/mingw-w64/include/ddk",
            "-I",
        ])
        .arg(c_dir())
        .arg(dir.join("driver.c"))
        .arg("-o")
        .arg(dir.join("driver.o")));
    run(Command::new(&gcc)
        .args([
            "-shared",
            "-nostdlib",
            "-Wl,--subsystem,native",
            "-e",
            "DriverEntry",
            "-o",
        ])
        .arg(dir.join("driver.sys"))
        .arg(dir.join("driver.o"))
        .arg(dir.join("libxen.a")));
    let dump = run(Command::new("x86_64-w64-mingw32-objdump")
        .arg("-p")
        .arg(dir.join("driver.sys")));
    assert!(dump.contains("DLL Name: xen.sys"), "{dump}");
    for name in ["LogPrintf", "EventChannelAllocateUnbound", "XenTouch"] {
        assert!(dump.contains(name), "{name} not imported:\n{dump}");
    }
}
