//! `cargo xtask verify [DIR]`: every check on every `.sys` of a package directory, one line
//! per check per binary, non-zero exit when any fails. Static checks ([`crate::pe`]), the
//! Authenticode signature (osslsigncode), then an emulated run under speakeasy: the entry
//! point runs without faulting, xen.sys's `DllInitialize` refuses a CPU that is not on Xen
//! (`STATUS_NOT_SUPPORTED`), xenbus.sys/xenfilt.sys pass the `XenTouch` handshake and stay
//! inert after its refusal (xenbus.sys installing the filters and asking for a reboot).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::pe::{self, Check};
use crate::sys::{Driver, DRIVERS};
use crate::{dist, env, sign};

#[path = "../../xen/def.rs"]
mod xen_def;

/// speakeasy-emulator, pinned to the version the checks were written against.
pub const SPEAKEASY: &str = "speakeasy-emulator==1.5.11";

const STATUS_SUCCESS: u32 = 0;
const STATUS_NOT_SUPPORTED: u32 = 0xC000_00BB;
/// The value XenTouch returns on a version mismatch (single source: xen-include).
const STATUS_INCOMPATIBLE_DRIVER_BLOCKED: u32 =
    xen_include::status::STATUS_INCOMPATIBLE_DRIVER_BLOCKED as u32;

/// The xen.sys API names that must be exported (beyond DllInitialize/DllUnload).
pub fn xen_api() -> Vec<String> {
    xen_include::api::EXPORT_NAMES
        .iter()
        .map(|n| n.to_string())
        .collect()
}

/// The `.def` text xen.sys is linked with.
pub fn xen_def_text() -> String {
    xen_def::def_text(
        xen_include::api::PRIVATE_EXPORT_NAMES,
        xen_include::api::EXPORT_NAMES,
    )
}

/// Options of one verification run.
pub struct Options {
    /// Package directory holding the `.sys` files.
    pub dir: PathBuf,
    /// Trust anchor for the signatures.
    pub ca: PathBuf,
    /// Run the speakeasy checks.
    pub emulate: bool,
}

/// `cargo xtask verify [DIR] [--ca CERT] [--no-emulate]`.
pub fn command(args: &[String]) -> Result<(), String> {
    let mut options = Options {
        dir: dist::package_dir(),
        ca: sign::cert_dir().join("xenbus-test.pem"),
        emulate: true,
    };
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--ca" => options.ca = PathBuf::from(args.next().ok_or("--ca needs a file")?),
            "--no-emulate" => options.emulate = false,
            dir => options.dir = PathBuf::from(dir),
        }
    }
    let failed = run(&options)?.iter().filter(|c| !c.1.ok).count();
    if failed == 0 {
        println!("verify: all checks passed");
        Ok(())
    } else {
        Err(format!("{failed} check(s) failed"))
    }
}

/// Verify every driver image in `options.dir`; prints and returns `(image, check)` pairs.
pub fn run(options: &Options) -> Result<Vec<(String, Check)>, String> {
    let api = xen_api();
    let mut results = Vec::new();
    let emulator = if options.emulate {
        Some(env::python_venv(&[SPEAKEASY])?)
    } else {
        None
    };
    for driver in DRIVERS {
        let image = options.dir.join(driver.image);
        for check in check_one(&driver, &image, &api, &options.ca, emulator.as_deref()) {
            println!(
                "verify {:<12} {:<25} {}  {}",
                driver.image,
                check.name,
                if check.ok { "PASS" } else { "FAIL" },
                check.detail
            );
            results.push((driver.image.to_string(), check));
        }
    }
    Ok(results)
}

/// Every check of one image.
pub fn check_one(
    driver: &Driver,
    image: &Path,
    api: &[String],
    ca: &Path,
    venv: Option<&Path>,
) -> Vec<Check> {
    let data = match std::fs::read(image) {
        Ok(data) => data,
        Err(e) => {
            return vec![Check {
                name: "present",
                ok: false,
                detail: format!("{}: {e}", image.display()),
            }]
        }
    };
    let mut checks = pe::check_image(&data, driver, api);
    if driver.package == "xenbus" {
        checks.push(check_kernel_imports(
            "kernel-imports",
            &data,
            XENBUS_KERNEL_IMPORTS,
        ));
    }
    checks.push(check_kernel_imports(
        "irql-imports",
        &data,
        IRQL_KERNEL_IMPORTS,
    ));
    checks.push(match sign::verify(image, ca) {
        Ok(()) => Check {
            name: "signature",
            ok: true,
            detail: format!("Authenticode verifies against {}", ca.display()),
        },
        Err(reason) => Check {
            name: "signature",
            ok: false,
            detail: reason,
        },
    });
    if let Some(venv) = venv {
        checks.extend(emulate(driver, image, api, venv));
    }
    checks
}

/// The kernel routines xenbus.sys's WDM edge must import from ntoskrnl.exe: the bus FDO's
/// device object, PnP forwarding and completion, identity queries sent down, power IRPs
/// (device power work items, the system→device power translation), the BusRelations
/// answer and invalidation, the FDO runtime's system threads, the balloon's pages and
/// low-memory event, the runtime's bug check, and the interrupts (one message interrupt
/// per processor plus the line interrupt), and the child PDOs' requests delegated to the
/// top of the FDO's stack.
pub const XENBUS_KERNEL_IMPORTS: &[&str] = &[
    "IoCreateDevice",
    "IoAttachDeviceToDeviceStack",
    "IoDetachDevice",
    "IoDeleteDevice",
    "IofCallDriver",
    "IofCompleteRequest",
    "KeWaitForSingleObject",
    "KeSetEvent",
    "IoAllocateWorkItem",
    "IoQueueWorkItem",
    "IoFreeWorkItem",
    "PoCallDriver",
    "PoStartNextPowerIrp",
    "PoSetPowerState",
    "PoRequestPowerIrp",
    "IoInvalidateDeviceState",
    "ObfReferenceObject",
    "ExAllocatePoolWithTag",
    "IoAllocateIrp",
    "IoFreeIrp",
    "IoInvalidateDeviceRelations",
    "PsCreateSystemThread",
    "PsTerminateSystemThread",
    "ObReferenceObjectByHandle",
    "ObfDereferenceObject",
    "KeClearEvent",
    "MmAllocatePagesForMdlEx",
    "MmAddPhysicalMemory",
    "IoCreateNotificationEvent",
    "KeGetCurrentProcessorNumberEx",
    "KeBugCheckEx",
    "IoConnectInterruptEx",
    "IoDisconnectInterruptEx",
    "KeGetProcessorIndexFromNumber",
    "KeQueryActiveProcessorCountEx",
    "IoGetAttachedDeviceReference",
];

/// The IRQL routines every driver's locks raise through (`common::wdm::irql`, installed at
/// DriverEntry/DllInitialize): without them the spin locks would not raise IRQL.
pub const IRQL_KERNEL_IMPORTS: &[&str] = &["KeGetCurrentIrql", "KfRaiseIrql", "KeLowerIrql"];

/// Every name in `wanted` is imported from ntoskrnl.exe.
fn check_kernel_imports(name: &'static str, data: &[u8], wanted: &[&str]) -> Check {
    use object::read::Object;
    let imports: Vec<String> =
        match object::read::pe::PeFile64::parse(data).and_then(|file| file.imports()) {
            Ok(imports) => imports
                .iter()
                .filter(|i| i.library().eq_ignore_ascii_case(b"ntoskrnl.exe"))
                .map(|i| String::from_utf8_lossy(i.name()).into_owned())
                .collect(),
            Err(e) => {
                return Check {
                    name,
                    ok: false,
                    detail: format!("import table unreadable: {e}"),
                }
            }
        };
    let missing: Vec<&str> = wanted
        .iter()
        .copied()
        .filter(|name| !imports.iter().any(|i| i == name))
        .collect();
    Check {
        name,
        ok: missing.is_empty(),
        detail: if missing.is_empty() {
            format!(
                "the {} routines of the WDM edge imported from ntoskrnl.exe ({} imports in all)",
                wanted.len(),
                imports.len()
            )
        } else {
            format!("not imported from ntoskrnl.exe: {}", missing.join(", "))
        },
    }
}

/// What one speakeasy run reported.
#[derive(Debug, Default)]
struct Emulation {
    /// (entry point type, return value, error kind)
    entries: Vec<(String, Option<u32>, String)>,
    logs: Vec<String>,
    touches: Vec<String>,
    keys: Vec<String>,
    open_handles: Option<usize>,
    /// `pnp <step> key=value…` lines: step → the values.
    pnp: Vec<(String, Vec<(String, String)>)>,
    /// `xencall <name> [arguments]` lines: xen.sys stand-in calls, in order.
    xencalls: Vec<String>,
    /// The `irql key=value…` line: the modelled IRQL's raises, lowers, final level,
    /// highest level and violations.
    irql: Vec<(String, String)>,
}

impl Emulation {
    /// The locks raised IRQL through the kernel's routines during the run and lowered it
    /// back in order: as many lowers as raises, PASSIVE_LEVEL at the end, no raise to a
    /// lower level or lower to a higher one.
    fn irql_check(&self) -> Check {
        let value = |key: &str| {
            self.irql
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.as_str())
        };
        let number = |key: &str| value(key).and_then(|v| v.parse::<u32>().ok());
        let (raises, lowers, level, highest) = (
            number("raises"),
            number("lowers"),
            number("level"),
            number("highest"),
        );
        let violations = value("violations").unwrap_or("?");
        let ok = raises.is_some_and(|r| r > 0)
            && raises == lowers
            && level == Some(0)
            && violations == "-";
        let show = |v: Option<u32>| v.map_or("?".to_string(), |v| v.to_string());
        Check {
            name: "emulated-irql",
            ok,
            detail: format!(
                "locks raised IRQL {} time(s) (up to {}) and lowered it {} time(s), ending at {}; violations: {violations}",
                show(raises),
                show(highest),
                show(lowers),
                show(level)
            ),
        }
    }

    fn entry(&self, kind: &str) -> Option<&(String, Option<u32>, String)> {
        self.entries.iter().find(|e| e.0 == kind)
    }

    /// A check that each PnP step reported exactly the given `key=value` pairs.
    fn pnp_expect(
        &self,
        name: &'static str,
        want: &[(&str, &[(&str, &str)])],
        what: &str,
    ) -> Check {
        let mut wrong = Vec::new();
        let mut seen = Vec::new();
        for (step, pairs) in want {
            let values = self.pnp.iter().find(|(s, _)| s == step).map(|(_, v)| v);
            for (key, expected) in *pairs {
                let got = values
                    .and_then(|v| v.iter().find(|(k, _)| k == key))
                    .map(|(_, v)| v.as_str());
                seen.push(format!("{step}.{key}={}", got.unwrap_or("?")));
                if got != Some(*expected) {
                    wrong.push(format!("{step}.{key} expected {expected}"));
                }
            }
        }
        Check {
            name,
            ok: wrong.is_empty(),
            detail: if wrong.is_empty() {
                format!("{what} ({})", seen.join(" "))
            } else {
                format!("{what}: {} (got {})", wrong.join(", "), seen.join(" "))
            },
        }
    }

    /// A check that the PnP step `step` reported every `key=1` in `want`.
    fn pnp_check(&self, name: &'static str, step: &str, want: &[&str], what: &str) -> Check {
        let faults: Vec<String> = self
            .entries
            .iter()
            .filter(|e| e.2 != "-")
            .map(|e| format!("{} faulted: {}", e.0, e.2))
            .collect();
        match self.pnp.iter().find(|(s, _)| s == step) {
            Some((_, values)) => {
                let missing: Vec<&str> = want
                    .iter()
                    .copied()
                    .filter(|key| !values.iter().any(|(k, v)| k == key && v == "1"))
                    .collect();
                let shown: Vec<String> = values.iter().map(|(k, v)| format!("{k}={v}")).collect();
                let ok = missing.is_empty() && faults.is_empty();
                let detail = if ok {
                    format!("{what} ({})", shown.join(" "))
                } else {
                    format!(
                        "expected {} = 1, got {}; {}",
                        missing.join(", "),
                        shown.join(" "),
                        faults.join("; ")
                    )
                };
                Check { name, ok, detail }
            }
            None => Check {
                name,
                ok: false,
                detail: format!("step {step} did not run; {}", faults.join("; ")),
            },
        }
    }
}

fn speakeasy(
    venv: &Path,
    image: &Path,
    touch_status: Option<u32>,
    pnp: bool,
) -> Result<Emulation, String> {
    speakeasy_with(venv, image, touch_status, pnp, None)
}

/// [`speakeasy`] with xenfilt's stand-in below xenbus.sys's FDO answering
/// `XENFILT_EMULATED` v3 with the activation `xenfilt` (`neutral`, `force-activated`,
/// `force-deactivated`).
fn speakeasy_with(
    venv: &Path,
    image: &Path,
    touch_status: Option<u32>,
    pnp: bool,
    xenfilt: Option<&str>,
) -> Result<Emulation, String> {
    let script = env::root().join("xtask/py/speakeasy_run.py");
    let mut command = Command::new(venv.join("python"));
    command.arg(script).arg(image);
    if pnp {
        command.arg("--pnp");
    }
    if let Some(mode) = xenfilt {
        command.arg("--xenfilt").arg(mode);
    }
    if let Some(status) = touch_status {
        command
            .arg("--xen-touch-status")
            .arg(format!("{status:#x}"));
    }
    let text = env::output(&mut command)?;
    let mut emulation = Emulation::default();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("entry ") {
            let mut parts = rest.split(' ');
            let kind = parts.next().unwrap_or("").to_string();
            let ret = parts
                .next()
                .and_then(|r| r.strip_prefix("ret=0x"))
                .and_then(|r| u64::from_str_radix(r, 16).ok())
                .map(|r| r as u32);
            let error = parts
                .next()
                .and_then(|e| e.strip_prefix("error="))
                .unwrap_or("?")
                .to_string();
            emulation.entries.push((kind, ret, error));
        } else if let Some(rest) = line.strip_prefix("log ") {
            emulation.logs.push(rest.to_string());
        } else if let Some(rest) = line.strip_prefix("touch ") {
            emulation.touches.push(rest.to_string());
        } else if let Some(rest) = line.strip_prefix("registry ") {
            emulation.keys.push(rest.to_string());
        } else if let Some(rest) = line.strip_prefix("pnp ") {
            let mut words = rest.split_whitespace();
            let step = words.next().unwrap_or("").to_string();
            let values = words
                .filter_map(|w| w.split_once('='))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            emulation.pnp.push((step, values));
        } else if let Some(rest) = line.strip_prefix("xencall ") {
            emulation.xencalls.push(rest.to_string());
        } else if let Some(rest) = line.strip_prefix("irql ") {
            emulation.irql = rest
                .split_whitespace()
                .filter_map(|w| w.split_once('='))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
        } else if let Some(rest) = line.strip_prefix("open-handles ") {
            emulation.open_handles = rest.trim().parse().ok();
        }
    }
    Ok(emulation)
}

fn expect_entry(name: &'static str, run: &Emulation, kind: &str, status: u32) -> Check {
    match run.entry(kind) {
        Some((_, Some(ret), error)) if error == "-" && *ret == status => Check {
            name,
            ok: true,
            detail: format!("{kind} returned {ret:#010x}"),
        },
        Some((_, ret, error)) => Check {
            name,
            ok: false,
            detail: format!(
                "{kind} returned {:#010x}, error {error} (expected {status:#010x})",
                ret.unwrap_or(0)
            ),
        },
        None => Check {
            name,
            ok: false,
            detail: format!("{kind} did not run"),
        },
    }
}

fn emulate(driver: &Driver, image: &Path, api: &[String], venv: &Path) -> Vec<Check> {
    let mut checks = Vec::new();
    if driver.export_driver {
        match speakeasy(venv, image, None, false) {
            Ok(run) => {
                checks.push(expect_entry(
                    "emulated-entry",
                    &run,
                    "entry_point",
                    STATUS_SUCCESS,
                ));
                let mut check = expect_entry(
                    "emulated-dllinitialize",
                    &run,
                    "export.DllInitialize",
                    STATUS_NOT_SUPPORTED,
                );
                if let Some(line) = run.logs.iter().find(|l| l.contains("CPUID LEAF NOT FOUND")) {
                    check.detail.push_str(&format!(
                        " (STATUS_NOT_SUPPORTED: not on Xen; logged {line:?})"
                    ));
                }
                checks.push(check);
                // DllInitialize unwinds every stage it completed: no registry handle stays
                // open although the service key and its subkeys were created first.
                let created = run
                    .keys
                    .iter()
                    .filter(|k| k.starts_with("ZwCreateKey"))
                    .count();
                checks.push(Check {
                    name: "emulated-unwind",
                    ok: created > 0 && run.open_handles == Some(0),
                    detail: format!(
                        "{created} registry keys created before the failing stage, {} handle(s) left open",
                        run.open_handles.map_or("?".to_string(), |n| n.to_string())
                    ),
                });
                let exports: Vec<&(String, Option<u32>, String)> = run
                    .entries
                    .iter()
                    .filter(|e| e.0.starts_with("export."))
                    .collect();
                let faulted: Vec<String> = exports
                    .iter()
                    .filter(|e| e.2 != "-")
                    .map(|e| format!("{}: {}", e.0, e.2))
                    .collect();
                let expected = api.len() + pe::PRIVATE_EXPORTS.len();
                checks.push(Check {
                    name: "emulated-exports",
                    ok: exports.len() == expected && faulted.is_empty(),
                    detail: if faulted.is_empty() {
                        format!(
                            "{} of {expected} exports called with dummy arguments, none faulted",
                            exports.len()
                        )
                    } else {
                        format!("faulted: {}", faulted.join("; "))
                    },
                });
                checks.push(expect_entry(
                    "emulated-dllunload",
                    &run,
                    "export.DllUnload",
                    STATUS_SUCCESS,
                ));
                checks.push(run.irql_check());
            }
            Err(e) => checks.push(Check {
                name: "emulated-entry",
                ok: false,
                detail: e,
            }),
        }
        return checks;
    }
    match speakeasy(venv, image, Some(STATUS_SUCCESS), true) {
        Ok(run) => {
            let mut entry = expect_entry("emulated-entry", &run, "entry_point", STATUS_SUCCESS);
            if entry.ok && run.touches.is_empty() {
                entry = Check {
                    name: "emulated-entry",
                    ok: false,
                    detail: "DriverEntry never called XenTouch".into(),
                };
            } else if entry.ok {
                entry
                    .detail
                    .push_str(&format!(" after XenTouch({:?})", run.touches.join(",")));
            }
            checks.push(entry);
            checks.push(run.irql_check());
            checks.push(run.pnp_check(
                "emulated-registration",
                "registered",
                &["add_device", "dispatch", "unload"],
                "DriverEntry registered AddDevice, IRP_MJ_PNP dispatch and DriverUnload",
            ));
            checks.push(run.pnp_check(
                "emulated-add-device",
                "add_device",
                &["attached"],
                "AddDevice created a device and attached it above the PDO",
            ));
            if driver.package == "xenfilt" {
                checks.push(run.pnp_expect(
                    "emulated-bus-relations",
                    &[
                        ("relations1", &[("status", "0x0"), ("reported", "0"), ("dereferenced", "2"), ("invalidated", "1"), ("child_filters", "2"), ("unplugged", "1")]),
                        ("relations2", &[("status", "0x0"), ("reported", "2"), ("dereferenced", "0"), ("invalidated", "0"), ("child_filters", "2"), ("unplugged", "0")]),
                    ],
                    "BusRelations with 2 children: first hidden (references dropped, relations invalidated, a child filter over each, the recorded active device present so UnplugDevices issued), then reported",
                ));
                checks.push(run.pnp_expect(
                    "emulated-child-identity",
                    &[(
                        "child_device_id",
                        &[
                            ("status", "0x0"),
                            ("passed_down", "0"),
                            ("id", "PCI\\VEN_8086&DEV_7010"),
                        ],
                    )],
                    "the child filter answers BusQueryDeviceID itself from the stored DeviceID",
                ));
                checks.push(run.pnp_expect(
                    "emulated-identity-pinning",
                    &[("child_instance_id", &[("id", "3&267a616a&0&18")])],
                    "the active platform device keeps its recorded InstanceID (the bus now says 3&267a616a&0&08)",
                ));
                checks.push(run.pnp_expect(
                    "emulated-child-interface",
                    &[("child_interface", &[("size", "64"), ("version", "3"), ("context", "1"), ("passed_down", "1")])],
                    "QUERY_INTERFACE(XENFILT_EMULATED v3) filled by the child filter while NOT_SUPPORTED, then passed down",
                ));
                checks.push(run.pnp_expect(
                    "emulated-child-missing",
                    &[
                        ("relations3", &[("reported", "1"), ("dereferenced", "0")]),
                        ("child_remove", &[("passed_down", "1"), ("detached", "1"), ("deleted", "1")]),
                    ],
                    "a reported child that vanished from the bus is left out, and its filter is detached and deleted at its REMOVE_DEVICE",
                ));
                checks.push(run.pnp_expect(
                    "emulated-remove-children",
                    &[("remove", &[("children_detached", "2")])],
                    "the bus filter's REMOVE_DEVICE detaches the child filters it still holds",
                ));
                // The attach policy: a PDO whose IDs name no filtered bus is left alone.
                let other = run
                    .pnp
                    .iter()
                    .find(|(step, _)| step == "add_device_other")
                    .and_then(|(_, values)| values.iter().find(|(k, _)| k == "attached"))
                    .map(|(_, v)| v.clone());
                checks.push(Check {
                    name: "emulated-add-device-policy",
                    ok: other.as_deref() == Some("0"),
                    detail: format!(
                        "AddDevice over a PDO with IDs PCI\\VEN_8086&DEV_7010 (not under Parameters) attached={} (expected 0)",
                        other.as_deref().unwrap_or("?")
                    ),
                });
            }
            if driver.package == "xenbus" {
                checks.extend(xenbus_fdo(&run));
                checks.extend(xenbus_activation(venv, image));
            }
            if driver.package == "xenbus" {
                // The bus FDO forwards REMOVE and waits (its machine finishes it), so the
                // lower driver sees a copied location rather than a skipped one.
                checks.push(run.pnp_check(
                    "emulated-remove-device",
                    "remove",
                    &["passed_down", "detached", "deleted"],
                    "IRP_MN_REMOVE_DEVICE went down (forwarded and waited for), then detach and delete",
                ));
            } else {
                checks.push(run.pnp_check(
                    "emulated-remove-device",
                    "remove",
                    &["passed_down", "skipped", "detached", "deleted"],
                    "IRP_MN_REMOVE_DEVICE went down with the stack location skipped, then detach and delete",
                ));
            }
        }
        Err(e) => checks.push(Check {
            name: "emulated-entry",
            ok: false,
            detail: e,
        }),
    }
    // On a mismatch both stay loaded but inert (spec §5.1, §6.1: DriverEntry succeeds
    // without registering AddDevice); xenbus.sys also installs the filters and asks for the
    // reboot.
    let mismatch = STATUS_SUCCESS;
    match speakeasy(venv, image, Some(STATUS_INCOMPATIBLE_DRIVER_BLOCKED), true) {
        Ok(run) => {
            if driver.package == "xenbus" {
                checks.push(xenbus_mismatch(&run));
            }
            let mut check =
                expect_entry("emulated-version-mismatch", &run, "entry_point", mismatch);
            if check.ok {
                // The run must have reached the registration step and found no AddDevice.
                let inert = run.pnp.iter().any(|(step, values)| {
                    step == "registered"
                        && values.iter().any(|(k, v)| k == "add_device" && v == "0")
                });
                check.ok = inert;
                check.detail = format!(
                    "{} after XenTouch refused ({STATUS_INCOMPATIBLE_DRIVER_BLOCKED:#010x}); {}",
                    check.detail,
                    if inert {
                        "AddDevice not registered (inert)"
                    } else {
                        "AddDevice registered or registration not seen (must stay inert)"
                    }
                );
            }
            checks.push(check);
        }
        Err(e) => checks.push(Check {
            name: "emulated-version-mismatch",
            ok: false,
            detail: e,
        }),
    }
    checks
}

/// xenbus.sys's inert path (spec §5.1): after `XenTouch` refused the build, `FiltersInstall`
/// then `ConfigRequestReboot(Parameters, "XENBUS")`, nothing else from xen.sys, and
/// `DriverUnload` closes the `Parameters` key.
fn xenbus_mismatch(run: &Emulation) -> Check {
    let want = ["FiltersInstall", "ConfigRequestReboot XENBUS key=1"];
    let ok = run.xencalls == want && run.open_handles == Some(0);
    Check {
        name: "emulated-inert-reboot",
        ok,
        detail: format!(
            "xen.sys calls [{}] (expected [{}]), {} registry handle(s) open after DriverUnload",
            run.xencalls.join(", "),
            want.join(", "),
            run.open_handles.map_or("?".to_string(), |n| n.to_string())
        ),
    }
}

/// The `AddDevice` line naming the platform device and the FDO's activation.
fn activation_log(run: &Emulation) -> Option<&str> {
    run.logs
        .iter()
        .find(|l| l.contains("AddDevice: PCI\\VEN_5853&DEV_0001"))
        .map(String::as_str)
}

/// xenbus.sys with xenfilt below (spec §5.2 steps 2, 4, 5): the EMULATED v3 query, and
/// the activation it reports deciding the FDO — forced active (ConfigSetActive, then the
/// active FDO's START up to the first hypercall, which fails off Xen, and its removal),
/// forced inactive (nothing recorded), neutral (the recorded ActiveDeviceID, another
/// device here, decides: inactive).
fn xenbus_activation(venv: &Path, image: &Path) -> Vec<Check> {
    const DEVICE_ID: &str = "PCI\\VEN_5853&DEV_0001&SUBSYS_00015853&REV_01";
    let mut checks = Vec::new();
    for (mode, active, set_active) in [
        ("force-activated", true, "1"),
        ("force-deactivated", false, "0"),
        ("neutral", false, "0"),
    ] {
        let name = match mode {
            "force-activated" => "emulated-xenfilt-force-activated",
            "force-deactivated" => "emulated-xenfilt-force-deactivated",
            _ => "emulated-xenfilt-neutral",
        };
        let run = match speakeasy_with(venv, image, Some(STATUS_SUCCESS), true, Some(mode)) {
            Ok(run) => run,
            Err(e) => {
                checks.push(Check {
                    name,
                    ok: false,
                    detail: e,
                });
                continue;
            }
        };
        let mut check = run.pnp_expect(
            name,
            &[(
                "emulated",
                &[
                    ("answered", "1"),
                    ("acquired", "1"),
                    ("released", "1"),
                    ("asked", DEVICE_ID),
                    ("set_active", set_active),
                    ("update_active", "0"),
                ],
            )],
            &format!("xenfilt answers XENFILT_EMULATED v3 ({mode}): Acquire, IsDevicePresent(DeviceID), Release once each"),
        );
        let decided = activation_log(&run);
        let want = if active { " ACTIVE" } else { " inactive" };
        let decided_ok = decided.is_some_and(|l| l.ends_with(want));
        check.ok &= decided_ok;
        check.detail = format!(
            "{}; FDO{want} (logged {:?})",
            check.detail,
            decided.unwrap_or("nothing")
        );
        checks.push(check);
        if active {
            let mut start = run.pnp_expect(
                "emulated-active-fdo",
                &[
                    (
                        "active_start",
                        &[
                            ("status", "0xc00000bb"),
                            ("interrupts", "2"),
                            ("disconnected", "2"),
                            ("threads", "5"),
                            ("hypercalls", "MemoryDecreaseReservation"),
                        ],
                    ),
                    (
                        "active_remove",
                        &[
                            ("status", "0x0"),
                            ("detached", "1"),
                            ("deleted", "1"),
                            ("clear_active", "1"),
                            ("filters_uninstalled", "1"),
                        ],
                    ),
                ],
                "the active FDO's START connects the line and message interrupts and creates its threads, D3->D0 reaches the first hypercall (XENMEM_decrease_reservation for the memory hole), which fails off Xen: everything is undone and START fails with that status; REMOVE_DEVICE then clears the active record, detaches and deletes",
            );
            let logged = run
                .logs
                .iter()
                .any(|l| l.ends_with("FDO D3->D0 failed (0xc00000bb)"));
            start.ok &= logged;
            start.detail = format!(
                "{}; {}",
                start.detail,
                if logged {
                    "logged \"FDO D3->D0 failed (0xc00000bb)\""
                } else {
                    "the D3->D0 failure was not logged"
                }
            );
            checks.push(start);
        }
    }
    checks
}

/// xenbus.sys's bus FDO over a stand-in platform PCI PDO (spec §5.1–5.3).
fn xenbus_fdo(run: &Emulation) -> Vec<Check> {
    let decision = activation_log(run);
    let queries = run
        .pnp
        .iter()
        .find(|(step, _)| step == "add_device")
        .and_then(|(_, v)| v.iter().find(|(k, _)| k == "identity_queries"))
        .map(|(_, v)| v.clone());
    let identity_ok =
        queries.as_deref() == Some("3") && decision.is_some_and(|l| l.ends_with(" inactive"));
    vec![
        Check {
            name: "emulated-fdo-identity",
            ok: identity_ok,
            detail: format!(
                "AddDevice asked the PCI PDO for DeviceID, InstanceID and LocationInformation ({} queries) and, xen.sys recording another active device, created an inactive FDO (logged {:?})",
                queries.as_deref().unwrap_or("?"),
                decision.unwrap_or("nothing")
            ),
        },
        run.pnp_expect(
            "emulated-fdo-filters",
            &[
                ("add_device", &[("filters_installed", "1")]),
                ("remove", &[("filters_uninstalled", "1")]),
            ],
            "the first FDO installs the filters, its removal (the last FDO) removes them",
        ),
        run.pnp_expect(
            "emulated-fdo-bus-interface",
            &[
                ("add_device", &[("bus_interface", "1")]),
                ("remove", &[("bus_dereferenced", "1")]),
            ],
            "AddDevice asks the PCI PDO for BUS_INTERFACE_STANDARD v1 (kept for the children), REMOVE_DEVICE dereferences it once",
        ),
        run.pnp_expect(
            "emulated-fdo-work-items",
            &[
                ("add_device", &[("work_items", "2")]),
                ("remove", &[("work_items_freed", "2")]),
            ],
            "AddDevice allocates the device and system power work items, REMOVE_DEVICE frees them",
        ),
        run.pnp_expect(
            "emulated-fdo-start",
            &[(
                "start",
                &[
                    ("status", "0x0"),
                    ("passed_down", "1"),
                    ("raw_types", "3/2/81"),
                    ("translated_types", "3/2/81"),
                ],
            )],
            "START_DEVICE goes down with its message interrupt hidden as DevicePrivate (0x81) in both lists, and completes with the lower status",
        ),
        run.pnp_expect(
            "emulated-fdo-capabilities",
            &[(
                "capabilities",
                &[
                    ("status", "0x0"),
                    ("passed_down", "1"),
                    ("removable", "0"),
                    ("d1", "1"),
                ],
            )],
            "QUERY_CAPABILITIES after the lower stack: Removable cleared, the other bits kept",
        ),
        run.pnp_expect(
            "emulated-fdo-power",
            &[
                (
                    "power_d3",
                    &[
                        ("queued", "2"),
                        ("passed_down", "1"),
                        ("completed", "1"),
                        ("status", "0x0"),
                        ("state", "1:4"),
                    ],
                ),
                (
                    "hibernate",
                    &[
                        ("requested", "D3"),
                        ("device_irps_completed", "1"),
                        ("queued", "5"),
                        ("passed_down", "1"),
                        ("completed", "1"),
                        ("status", "0x0"),
                    ],
                ),
                (
                    "wake",
                    &[
                        ("requested", "D0"),
                        ("device_irps_completed", "1"),
                        ("queued", "5"),
                        ("passed_down", "1"),
                        ("completed", "1"),
                        ("status", "0x0"),
                        ("state", "1:1"),
                    ],
                ),
                ("shutdown", &[("requested", "0"), ("passed_down", "1")]),
            ],
            "through the FDO machine: SET_POWER D3 runs D0->D3 in the device power work item, records D3 (PoSetPowerState), goes down and is completed after the lower drivers; SET_POWER S4 requests the D-IRP its DeviceState[] names (delivered to the FDO and completed), runs S3->S4, goes down and completes; S0 goes down first, then its D0 D-IRP runs D3->D0 after the lower drivers (PoSetPowerState D0) and the S-IRP completes; at shutdown no D-IRP, the S-IRP goes down",
        ),
        {
            let mut check = run.pnp_expect(
                "emulated-fdo-surprise-removal",
                &[("surprise", &[("status", "0x0"), ("passed_down", "1")])],
                "IRP_MN_SURPRISE_REMOVAL marks the children missing and goes down with success; REMOVE_DEVICE still tears down after it",
            );
            let warned = run.logs.iter().any(|l| l.ends_with("FDO surprise removed"));
            check.ok &= warned;
            check.detail = format!(
                "{}; {}",
                check.detail,
                if warned {
                    "logged \"FDO surprise removed\""
                } else {
                    "\"FDO surprise removed\" not logged"
                }
            );
            check
        },
        run.pnp_expect(
            "emulated-fdo-relations",
            &[(
                "relations",
                &[("status", "0x0"), ("passed_down", "1"), ("reported", "0")],
            )],
            "BusRelations answered with the (empty) child list and passed down",
        ),
    ]
}
