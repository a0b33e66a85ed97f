//! `cargo xtask rig`: boot the real Xen 4.17 hypervisor with a Debian dom0 under QEMU TCG,
//! run the bare-metal rig guest's scenarios on it, and report pass/fail per scenario.
//!
//! Everything is built and cached under `target/rig/`: the dom0 root filesystem (rebuilt
//! only when its recipe changes), the hypervisor image, the guest and a small per-run data
//! disk carrying the dom0 init script, the dom0 helper and the scenario list.

use std::collections::hash_map::DefaultHasher;
use std::fs;
use std::hash::{Hash, Hasher};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BUILD_ROOTFS: &str = include_str!("../rig/build-rootfs.sh");
const ROOTFS_INIT: &str = include_str!("../rig/rootfs-init.sh");
const DOM0_INIT: &str = include_str!("../rig/dom0-init.sh");
const DOM0_HELPER: &str = include_str!("../rig/dom0-helper.py");

/// Host packages the rig needs, by the command that proves each is installed.
const HOST_PACKAGES: &[(&str, &str)] = &[
    ("qemu-system-x86_64", "qemu-system-x86"),
    ("debootstrap", "debootstrap"),
    ("mke2fs", "e2fsprogs"),
    ("objcopy", "binutils"),
    ("grub-mkrescue", "grub-common"),
    ("xorriso", "xorriso"),
    ("mformat", "mtools"),
];

/// Options of one rig run.
#[derive(Debug, Clone)]
pub struct RigOptions {
    /// Scenarios to run (empty: all).
    pub scenarios: Vec<String>,
    /// Upper bound on the QEMU run in seconds.
    pub timeout: u64,
}

/// The result of one rig run.
#[derive(Debug, Default)]
pub struct RigReport {
    /// `(scenario, passed, detail)` in the guest's order.
    pub scenarios: Vec<(String, bool, String)>,
    /// The guest printed its END line.
    pub completed: bool,
    /// Host-side failures (xl, timeouts, missing END).
    pub errors: Vec<String>,
}

impl RigReport {
    /// True when the guest completed and every scenario passed.
    pub fn passed(&self) -> bool {
        self.completed
            && self.errors.is_empty()
            && !self.scenarios.is_empty()
            && self.scenarios.iter().all(|s| s.1)
    }

    /// Every scenario reported PASS and the guest finished, and the only trouble seen was
    /// a crash of some dom0 process (QEMU TCG corrupting dom0 memory on a loaded host).
    /// Each PASS was confirmed by both sides (the dom0 helper's answers are part of it), so
    /// the verdicts stand; the crash is reported as a warning.
    pub fn passed_despite_dom0_crash(&self) -> bool {
        self.completed
            && !self.errors.is_empty()
            && self.errors.iter().all(|e| e.starts_with(DOM0_CRASH))
            && !self.scenarios.is_empty()
            && self.scenarios.iter().all(|s| s.1)
    }
}

/// How a crashed dom0 process is reported in [`RigReport::errors`].
const DOM0_CRASH: &str = "a dom0 process crashed: ";

/// Signs of the emulated machine misbehaving rather than the code under test: dom0 processes
/// dying of corrupted memory (segfaults, general protection faults, glibc's heap checks). With
/// Xen's lazy FPU switching under QEMU TCG this hit most runs (see [`XEN_ARGS`]); a run that
/// shows one is retried by the test section.
const PLATFORM_TROUBLE: &[&str] = &[
    " segfault at ",
    "traps: ",
    "malloc(): ",
    "free(): ",
    "double free",
];

/// The guest's own line in a serial log: Xen prints the guest's port-0xE9 output as
/// `(dN) text` on its console; dom0 relays it again at the end as `RIGGUEST: text`.
fn guest_text(line: &str, from_xen: bool) -> Option<&str> {
    if from_xen {
        let rest = line.strip_prefix("(d")?;
        let (domid, text) = rest.split_once(") ")?;
        domid.bytes().all(|b| b.is_ascii_digit()).then_some(text)
    } else {
        line.split_once("RIGGUEST: ").map(|(_, text)| text)
    }
}

/// Xen's boot line on PV FPU switching when it is not eager (`spec-ctrl=eager-fpu` was
/// overridden or ignored), e.g. `Support for PV VMs: None`.
fn lazy_fpu(log: &str) -> Option<&str> {
    let line = log.lines().find_map(|l| {
        l.split_once("Support for PV VMs:")
            .map(|(_, mode)| mode.trim())
    })?;
    (!line.contains("EAGER_FPU")).then_some(line)
}

/// Parse the serial log of a rig run. The guest's lines are taken from Xen's console (so a
/// dom0 that stalls after the guest finished loses nothing), or from dom0's relay when the
/// console has none of them.
pub fn parse_serial(log: &str) -> RigReport {
    let mut report = RigReport::default();
    let from_xen = log.lines().any(|l| {
        guest_text(l.trim_end_matches('\r'), true).is_some_and(|t| t.starts_with("RIG: "))
    });
    for line in log.lines() {
        let line = line.trim_end_matches('\r');
        if let Some(text) = guest_text(line, from_xen) {
            if let Some(rest) = text.strip_prefix("RIG: SCENARIO ") {
                let mut words = rest.splitn(3, ' ');
                let name = words.next().unwrap_or("").to_string();
                let verdict = words.next().unwrap_or("");
                let detail = words.next().unwrap_or("").to_string();
                report.scenarios.push((name, verdict == "PASS", detail));
            } else if text.starts_with("RIG: END") {
                report.completed = true;
            } else if let Some(rest) = text.strip_prefix("RIG: PANIC ") {
                report.errors.push(format!("guest panicked: {rest}"));
            }
        } else if let Some(rest) = line.split("RIGHOST: FAIL ").nth(1) {
            report.errors.push(rest.to_string());
        } else if line.contains("Triple fault") {
            report
                .errors
                .push(format!("the guest died: {}", line.trim()));
        } else if PLATFORM_TROUBLE.iter().any(|t| line.contains(t)) {
            report.errors.push(format!("{DOM0_CRASH}{}", line.trim()));
        }
    }
    report
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

fn run(cmd: &mut Command, what: &str) -> Result<(), String> {
    let status = cmd
        .status()
        .map_err(|e| format!("{what}: cannot start: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{what}: failed with {status}"))
    }
}

fn have(command: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {command}"))
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn provision() -> Result<(), String> {
    let mut missing: Vec<&str> = HOST_PACKAGES
        .iter()
        .filter(|(cmd, _)| !have(cmd))
        .map(|(_, pkg)| *pkg)
        .collect();
    if !Path::new("/usr/lib/grub/i386-pc").exists() {
        missing.push("grub-pc-bin");
    }
    if !Path::new("/boot/xen-4.17-amd64.gz").exists() {
        missing.push("xen-hypervisor-4.17-amd64");
    }
    if missing.is_empty() {
        return Ok(());
    }
    if !nix_is_root() {
        return Err(format!(
            "the rig needs these Debian packages: {} (run as root, or apt-get install them)",
            missing.join(" ")
        ));
    }
    println!("rig: installing {}", missing.join(" "));
    run(
        Command::new("apt-get")
            .args(["install", "-y", "--no-install-recommends"])
            .args(&missing)
            .env("DEBIAN_FRONTEND", "noninteractive"),
        "apt-get install",
    )
}

/// The major version of the installed `qemu-system-x86_64`.
fn qemu_major() -> Option<u32> {
    let out = Command::new("qemu-system-x86_64")
        .arg("--version")
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let version = text.split("version ").nth(1)?;
    version.split('.').next()?.trim().parse().ok()
}

/// The rig needs QEMU 10 (bookworm-backports): under bookworm's QEMU 7.2 TCG, Xen's
/// emulation of the guest's real-mode boot code fails ("MMIO emulation failed … Real") and
/// the guest triple-faults before GRUB hands over.
fn provision_qemu() -> Result<(), String> {
    if qemu_major().is_some_and(|major| major >= 10) {
        return Ok(());
    }
    if !nix_is_root() {
        return Err("the rig needs qemu-system-x86 >= 10 (Debian bookworm-backports); run as root or install it".into());
    }
    println!("rig: installing QEMU 10 from bookworm-backports");
    let mirror = fs::read_to_string("/etc/apt/sources.list.d/debian.sources")
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|line| line.strip_prefix("URIs:").map(|uri| uri.trim().to_string()))
                .filter(|uri| !uri.contains("security"))
        })
        .unwrap_or_else(|| "http://deb.debian.org/debian".into());
    let source = format!(
        "Types: deb\nURIs: {mirror}\nSuites: bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"
    );
    fs::write(
        "/etc/apt/sources.list.d/rig-bookworm-backports.sources",
        source,
    )
    .map_err(|e| format!("write the backports source: {e}"))?;
    run(
        Command::new("apt-get").arg("update").stdout(Stdio::null()),
        "apt-get update",
    )?;
    run(
        Command::new("apt-get")
            .args([
                "install",
                "-y",
                "--no-install-recommends",
                "-t",
                "bookworm-backports",
                "qemu-system-x86",
            ])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdout(Stdio::null()),
        "apt-get install qemu-system-x86 from bookworm-backports",
    )?;
    match qemu_major() {
        Some(major) if major >= 10 => Ok(()),
        other => Err(format!(
            "QEMU is still version {other:?} after installing from backports"
        )),
    }
}

fn nix_is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn fingerprint(parts: &[&str]) -> String {
    let mut hasher = DefaultHasher::new();
    for part in parts {
        part.hash(&mut hasher);
    }
    format!("{:016x}", hasher.finish())
}

/// Build (or reuse) the dom0 root filesystem image.
fn rootfs(dir: &Path) -> Result<PathBuf, String> {
    let image = dir.join("rootfs.img");
    let stamp = dir.join("rootfs.stamp");
    let want = fingerprint(&[BUILD_ROOTFS, ROOTFS_INIT]);
    if image.exists() && fs::read_to_string(&stamp).is_ok_and(|s| s == want) {
        println!("rig: dom0 root filesystem cached ({})", image.display());
        return Ok(image);
    }
    let script = dir.join("build-rootfs.sh");
    fs::write(&script, BUILD_ROOTFS).map_err(|e| format!("write {}: {e}", script.display()))?;
    if !dir.join("rootfs/etc/debian_version").exists()
        || !fs::read_to_string(dir.join("rootfs.recipe"))
            .is_ok_and(|s| s == fingerprint(&[BUILD_ROOTFS]))
    {
        run(
            Command::new("sh").arg(&script).arg(dir),
            "build the dom0 root filesystem",
        )?;
        fs::write(dir.join("rootfs.recipe"), fingerprint(&[BUILD_ROOTFS]))
            .map_err(|e| e.to_string())?;
    }
    let init = dir.join("rootfs/sbin/rig-init");
    fs::write(&init, ROOTFS_INIT).map_err(|e| format!("write {}: {e}", init.display()))?;
    run(
        Command::new("chmod").arg("755").arg(&init),
        "chmod rig-init",
    )?;
    println!("rig: making the dom0 disk image");
    let _ = fs::remove_file(&image);
    run(
        Command::new("mke2fs")
            .args(["-q", "-t", "ext4", "-L", "rigroot", "-d"])
            .arg(dir.join("rootfs"))
            .arg("-F")
            .arg(&image)
            .arg("3G"),
        "mke2fs rootfs",
    )?;
    fs::write(&stamp, want).map_err(|e| e.to_string())?;
    Ok(image)
}

fn dom0_boot_files(dir: &Path) -> Result<(PathBuf, PathBuf), String> {
    let boot = dir.join("rootfs/boot");
    let mut kernel = None;
    let mut initrd = None;
    for entry in fs::read_dir(&boot)
        .map_err(|e| format!("{}: {e}", boot.display()))?
        .flatten()
    {
        let name = entry.file_name().to_string_lossy().to_string();
        if name.starts_with("vmlinuz-") && name.ends_with("-amd64") {
            kernel = Some(entry.path());
        } else if name.starts_with("initrd.img-") && name.ends_with("-amd64") {
            initrd = Some(entry.path());
        }
    }
    match (kernel, initrd) {
        (Some(k), Some(i)) => Ok((k, i)),
        _ => Err(format!("no dom0 kernel/initrd in {}", boot.display())),
    }
}

fn build_guest(root: &Path) -> Result<PathBuf, String> {
    println!("rig: building the rig guest");
    let _ = Command::new("rustup")
        .args(["target", "add", "x86_64-unknown-none"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    run(
        Command::new(cargo).current_dir(root).args([
            "build",
            "--quiet",
            "-p",
            "rig-guest",
            "--release",
            "--target",
            "x86_64-unknown-none",
        ]),
        "build rig-guest",
    )?;
    Ok(root.join("target/x86_64-unknown-none/release/rig-guest"))
}

fn data_disk(dir: &Path, guest: &Path, options: &RigOptions) -> Result<PathBuf, String> {
    let data = dir.join("data");
    let _ = fs::remove_dir_all(&data);
    fs::create_dir_all(&data).map_err(|e| e.to_string())?;
    let write = |name: &str, text: &str| {
        fs::write(data.join(name), text).map_err(|e| format!("write {name}: {e}"))
    };
    write("init.sh", DOM0_INIT)?;
    write("dom0-helper.py", DOM0_HELPER)?;
    write(
        "scenarios",
        &if options.scenarios.is_empty() {
            "all".to_string()
        } else {
            options.scenarios.join(",")
        },
    )?;
    write(
        "guest-timeout",
        &options.timeout.saturating_sub(180).max(60).to_string(),
    )?;
    run(
        Command::new("chmod").arg("755").arg(data.join("init.sh")),
        "chmod init.sh",
    )?;
    // The guest boots from a GRUB ISO (hvmloader → SeaBIOS → GRUB multiboot): from the start
    // state of Xen's HVM direct ELF boot, enabling long-mode paging triple-faults under
    // QEMU TCG, while the firmware path works. Multiboot wants the 32-bit ELF container;
    // the code inside switches to long mode itself.
    let iso = dir.join("iso");
    let _ = fs::remove_dir_all(&iso);
    fs::create_dir_all(iso.join("boot/grub")).map_err(|e| e.to_string())?;
    run(
        Command::new("objcopy")
            .args(["-I", "elf64-x86-64", "-O", "elf32-i386"])
            .arg(guest)
            .arg(iso.join("boot/rig-guest.elf")),
        "objcopy guest",
    )?;
    fs::write(
        iso.join("boot/grub/grub.cfg"),
        "set timeout=0\nmenuentry rig {\n multiboot /boot/rig-guest.elf\n boot\n}\n",
    )
    .map_err(|e| e.to_string())?;
    let output = Command::new("grub-mkrescue")
        .arg("-o")
        .arg(data.join("guest.iso"))
        .arg(&iso)
        .output()
        .map_err(|e| format!("grub-mkrescue: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "grub-mkrescue failed: {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    run(
        Command::new("cp")
            .arg(iso.join("boot/rig-guest.elf"))
            .arg(data.join("guest.elf")),
        "copy guest.elf",
    )?;
    let boot_mode = std::env::var("RIG_BOOT").unwrap_or_else(|_| "direct".into());
    write("boot-mode", &boot_mode)?;
    let image = dir.join("data.img");
    let _ = fs::remove_file(&image);
    run(
        Command::new("mke2fs")
            .args(["-q", "-t", "ext2", "-d"])
            .arg(&data)
            .arg("-F")
            .arg(&image)
            .arg("32M"),
        "mke2fs data",
    )?;
    Ok(image)
}

/// QEMU's TCG threading (`RIG_TCG_THREAD=single|multi`, default single: one host thread
/// runs both vCPUs). With a thread per vCPU (`multi`), about half the runs on a loaded host
/// hit emulator trouble — dom0 processes with corrupted memory (Python segfaults, glibc heap
/// aborts in `xl save`) or the guest dying with Xen's own RIP in its state — while single
/// runs finished faster there (118 s for all scenarios).
fn tcg_threads() -> String {
    std::env::var("RIG_TCG_THREAD").unwrap_or_else(|_| "single".into())
}

/// Processors of the emulated machine (`RIG_SMP`, default 2).
fn rig_cpus() -> String {
    std::env::var("RIG_SMP").unwrap_or_else(|_| "2".into())
}

/// QEMU's CPU model (`RIG_CPU`, default [`CPU_MODEL`]).
fn cpu_model() -> String {
    std::env::var("RIG_CPU").unwrap_or_else(|_| CPU_MODEL.into())
}

/// The CPU model the rig runs on.
const CPU_MODEL: &str = "max,-smap";

/// Xen's command line: [`XEN_ARGS`] and `RIG_XEN_ARGS` (appended, so it can override).
fn xen_args() -> String {
    let extra = std::env::var("RIG_XEN_ARGS").unwrap_or_default();
    format!("{XEN_ARGS} {extra}").trim().to_string()
}

/// The hypervisor's options. `spec-ctrl=eager-fpu`: on this AMD-model CPU Xen defaults to
/// lazy FPU switching (CR0.TS set at a context switch, a vCPU's registers loaded on its first
/// #NM), and QEMU TCG raises no #NM for XSAVE/XSAVEOPT/XRSTOR with CR0.TS set (only for
/// FXSAVE/FXRSTOR and the SSE/AVX/x87 instructions). dom0 Linux's own task-switch XSAVEOPT
/// and XRSTOR then worked on whichever vCPU's registers were live on that processor — as soon
/// as an HVM guest shared the processors — and glibc's memcpy/memset carried the wrong vector
/// registers into memory: random dom0 processes (python3, xenstored, sh, xl, awk) segfaulted
/// in most runs. Eager switching restores every vCPU's state at every switch and never
/// relies on #NM (measurements in `xtask/rig/MEASUREMENTS.md`).
const XEN_ARGS: &str = "console=com1 com1=115200,8n1 loglvl=all guest_loglvl=all conring_size=2M \
     dom0_mem=1536M,max:1536M spec-ctrl=eager-fpu";

/// dom0 Linux's command line: [`DOM0_ARGS`] and `RIG_DOM0_ARGS`.
fn dom0_args() -> String {
    let extra = std::env::var("RIG_DOM0_ARGS").unwrap_or_default();
    format!("{DOM0_ARGS} {extra}").trim().to_string()
}

/// dom0 Linux's options.
const DOM0_ARGS: &str = "root=/dev/vda ro console=hvc0 init=/sbin/rig-init";

/// Build what is missing, boot the rig, run the scenarios and parse the results.
pub fn run_rig(options: &RigOptions) -> Result<RigReport, String> {
    let started = Instant::now();
    let root = root();
    let dir = root.join("target/rig");
    fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    provision()?;
    provision_qemu()?;
    let guest = build_guest(&root)?;
    let rootfs = rootfs(&dir)?;
    let (kernel, initrd) = dom0_boot_files(&dir)?;
    let xen = dir.join("xen");
    if !xen.exists() {
        let out = Command::new("zcat")
            .arg("/boot/xen-4.17-amd64.gz")
            .output()
            .map_err(|e| format!("zcat: {e}"))?;
        fs::write(&xen, out.stdout).map_err(|e| e.to_string())?;
    }
    // A run's own files (data disk, serial log) live in `target/rig/` itself, or in
    // `target/rig/instance-<name>/` with `RIG_INSTANCE=<name>`, so that several runs can
    // share the cached root filesystem at once.
    let instance = std::env::var("RIG_INSTANCE").unwrap_or_default();
    let work = if instance.is_empty() {
        dir.clone()
    } else {
        dir.join(format!("instance-{instance}"))
    };
    fs::create_dir_all(&work).map_err(|e| e.to_string())?;
    let data = data_disk(&work, &guest, options)?;
    let serial = work.join("serial.log");
    let _ = fs::remove_file(&serial);
    println!(
        "rig: booting Xen + dom0 under QEMU TCG (timeout {}s; -cpu {}, tcg thread={}, -smp {}; xen: {}; dom0: {})",
        options.timeout,
        cpu_model(),
        tcg_threads(),
        rig_cpus(),
        xen_args(),
        dom0_args()
    );
    let mut child = Command::new("timeout")
        .arg(options.timeout.to_string())
        .arg("qemu-system-x86_64")
        .arg("-accel")
        .arg(format!("tcg,thread={}", tcg_threads()))
        .arg("-cpu")
        .arg(cpu_model())
        .args(["-m", "3072", "-smp"])
        .arg(rig_cpus())
        .args([
            "-nographic",
            "-no-reboot",
            "-monitor",
            "none",
            "-display",
            "none",
            "-net",
            "none",
        ])
        .arg("-serial")
        .arg(format!("file:{}", serial.display()))
        .arg("-kernel")
        .arg(&xen)
        .arg("-append")
        .arg(xen_args())
        .arg("-initrd")
        .arg(format!(
            "{} {},{}",
            kernel.display(),
            dom0_args(),
            initrd.display()
        ))
        .arg("-drive")
        .arg(format!(
            "file={},if=virtio,format=raw,snapshot=on",
            rootfs.display()
        ))
        .arg("-drive")
        .arg(format!("file={},if=virtio,format=raw", data.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("qemu: {e}"))?;
    // Relay progress while QEMU runs. Once the guest has finished (or died), dom0 gets a
    // bounded grace period to relay its logs and power off.
    let mut shown = 0usize;
    let mut finished: Option<Instant> = None;
    loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            if status.code() == Some(124) {
                println!("rig: QEMU stopped by the {}s timeout", options.timeout);
            }
            break;
        }
        if finished.is_some_and(|at| at.elapsed() > DOM0_GRACE) {
            println!(
                "rig: dom0 did not power off within {}s of the guest's end; stopping QEMU",
                DOM0_GRACE.as_secs()
            );
            // SIGTERM to `timeout`, which passes it on to QEMU (SIGKILL would orphan QEMU).
            let _ = Command::new("kill").arg(child.id().to_string()).status();
            let _ = child.wait();
            break;
        }
        if let Ok(file) = fs::File::open(&serial) {
            let lines: Vec<String> = BufReader::new(file).lines().map_while(Result::ok).collect();
            for line in lines.iter().skip(shown) {
                let line = line.trim_end_matches('\r');
                let guest = guest_text(line, true);
                if line.contains("RIGHOST:")
                    || guest.is_some_and(|t| t.starts_with("RIG: "))
                    || line.contains("Kernel panic")
                    || line.contains("Triple fault")
                {
                    println!("  {line}");
                }
                if guest.is_some_and(|t| t.starts_with("RIG: END") || t.starts_with("RIG: PANIC"))
                    || line.contains("Triple fault")
                {
                    finished.get_or_insert_with(Instant::now);
                }
            }
            shown = lines.len();
        }
        std::thread::sleep(Duration::from_secs(2));
    }
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut e, &mut stderr);
    }
    let log = fs::read_to_string(&serial).unwrap_or_default();
    let kept = keep_logs(&dir, &instance, &log);
    let mut report = parse_serial(&log);
    if let Some(mode) = lazy_fpu(&log) {
        println!(
            "rig: WARNING: Xen switches PV FPU state lazily ({mode}); under QEMU TCG that \
             corrupts dom0 processes (see xtask/rig/MEASUREMENTS.md)"
        );
    }
    if !report.completed {
        report.errors.push(format!(
            "the guest did not finish (see {}){}",
            serial.display(),
            if stderr.is_empty() {
                String::new()
            } else {
                format!("; qemu: {}", stderr.trim())
            }
        ));
    }
    println!(
        "rig: finished in {:.0}s; logs in {}",
        started.elapsed().as_secs_f64(),
        kept.display()
    );
    Ok(report)
}

/// The QEMU time limit of one attempt in the test section, in seconds.
const TEST_SECTION_TIMEOUT: u64 = 600;

/// How long dom0 may take, after the guest's END line, to relay its logs and power off.
const DOM0_GRACE: Duration = Duration::from_secs(90);

/// How many runs' logs `target/rig/logs/` keeps.
const KEPT_RUNS: usize = 30;

/// Split the serial log of a run into the guest's lines and dom0's (toolstack, helper and
/// the xl/device-model logs), and keep all three under `target/rig/logs/run-<time>/`; the
/// latest run's are also `target/rig/{serial,guest,dom0}.log`.
fn keep_logs(dir: &Path, instance: &str, log: &str) -> PathBuf {
    let (guest, dom0) = split_log(log);
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    let logs = dir.join("logs");
    let run = logs.join(format!("run-{stamp}{instance}"));
    let _ = fs::create_dir_all(&run);
    for (name, text) in [
        ("serial.log", log),
        ("guest.log", &guest),
        ("dom0.log", &dom0),
    ] {
        let _ = fs::write(run.join(name), text);
        if name != "serial.log" {
            let _ = fs::write(dir.join(name), text);
        }
    }
    if let Ok(entries) = fs::read_dir(&logs) {
        let mut runs: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
        runs.sort();
        let excess = runs.len().saturating_sub(KEPT_RUNS);
        for old in runs.iter().take(excess) {
            let _ = fs::remove_dir_all(old);
        }
    }
    run
}

/// The guest's lines (`RIGGUEST:`) and dom0's (`RIGHOST:`, `RIGHELPER:`, `RIGDOM0:`) of a
/// serial log, prefixes removed.
pub fn split_log(log: &str) -> (String, String) {
    let mut guest = String::new();
    let mut dom0 = String::new();
    for line in log.lines() {
        let line = line.trim_end_matches('\r');
        if let Some(rest) = line.split_once("RIGGUEST: ").map(|(_, r)| r) {
            guest.push_str(rest);
            guest.push('\n');
        } else if let Some(at) = ["RIGHOST: ", "RIGHELPER: ", "RIGDOM0: "]
            .iter()
            .find_map(|p| line.find(p))
        {
            dom0.push_str(&line[at..]);
            dom0.push('\n');
        }
    }
    (guest, dom0)
}

/// The rig as a section of `cargo xtask test`: every scenario on real Xen. A run whose
/// guest never finished (the toolstack or QEMU failed, or the run hit its time limit), or
/// in which a dom0 process crashed, is an infrastructure failure and is tried once more; a
/// scenario that reports FAIL in a run without such trouble fails the section at once.
/// Either way the section never passes without every scenario's PASS line.
pub fn test_section() -> Result<(), String> {
    // A clean run takes 2-5 minutes even on a loaded 2-core machine; two attempts with this
    // bound keep the section well inside the CI limit when the platform cannot run the rig.
    let options = RigOptions {
        scenarios: Vec::new(),
        timeout: TEST_SECTION_TIMEOUT,
    };
    let mut last = String::new();
    for attempt in 1..=2 {
        let report = run_rig(&options)?;
        for (name, passed, detail) in &report.scenarios {
            println!(
                "rig: {} {name} {detail}",
                if *passed { "PASS" } else { "FAIL" }
            );
        }
        if report.passed() {
            println!(
                "rig: {} scenarios passed on real Xen",
                report.scenarios.len()
            );
            return Ok(());
        }
        if report.passed_despite_dom0_crash() {
            println!(
                "rig: WARNING: {} scenarios passed on real Xen, but the emulated platform \
                 misbehaved: {}",
                report.scenarios.len(),
                report.errors.join("; ")
            );
            return Ok(());
        }
        if report.completed && report.errors.is_empty() && report.scenarios.iter().any(|s| !s.1) {
            return Err(format!(
                "rig: scenario failures: {:?}",
                report
                    .scenarios
                    .iter()
                    .filter(|s| !s.1)
                    .map(|s| &s.0)
                    .collect::<Vec<_>>()
            ));
        }
        last = report.errors.join("; ");
        println!("rig: attempt {attempt} failed on the platform: {last}");
    }
    Err(format!("rig: the rig could not run: {last}"))
}

/// `cargo xtask rig [--scenario NAME]… [--timeout SECONDS]`, or `cargo xtask rig --as-test`
/// (the test-command section: every scenario, one retry on infrastructure failure).
pub fn main(args: &[String]) -> Result<(), String> {
    let mut options = RigOptions {
        scenarios: Vec::new(),
        timeout: 900,
    };
    if args.iter().any(|a| a == "--as-test") {
        return test_section();
    }
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        match arg.as_str() {
            "--scenario" => options
                .scenarios
                .push(iter.next().ok_or("--scenario needs a name")?.clone()),
            "--timeout" => {
                options.timeout = iter
                    .next()
                    .and_then(|v| v.parse().ok())
                    .ok_or("--timeout needs a number of seconds")?;
            }
            other => return Err(format!("rig: unknown argument {other:?}")),
        }
    }
    let report = run_rig(&options)?;
    for (name, passed, detail) in &report.scenarios {
        println!(
            "rig: {} {name} {detail}",
            if *passed { "PASS" } else { "FAIL" }
        );
    }
    for error in &report.errors {
        println!("rig: ERROR {error}");
    }
    let passed = report.scenarios.iter().filter(|s| s.1).count();
    println!(
        "rig: {passed} of {} scenarios passed",
        report.scenarios.len()
    );
    if report.passed() {
        Ok(())
    } else {
        Err("rig: failed".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serial_log_is_parsed_into_scenarios() {
        let log = "noise\r\nRIGHOST: dom0 up\r\nRIGGUEST: RIG: BEGIN\r\nRIGGUEST: RIG: SCENARIO discovery PASS base=0x40000000 version=4.17\r\nRIGGUEST: RIG: SCENARIO store FAIL no reply\r\nRIGGUEST: RIG: END passed=1 failed=1\r\n";
        let report = parse_serial(log);
        assert_eq!(report.scenarios.len(), 2);
        assert_eq!(
            report.scenarios[0],
            (
                "discovery".into(),
                true,
                "base=0x40000000 version=4.17".into()
            )
        );
        assert!(!report.scenarios[1].1);
        assert!(report.completed);
        assert!(!report.passed());
    }

    #[test]
    fn guest_lines_come_from_xens_console_when_present() {
        // Xen's console and dom0's relay both carry the guest's lines: each counts once.
        let log = "(d1) RIG: BEGIN\r\n(d1) RIG: SCENARIO store PASS ok\r\n(XEN) d1v0 noise\r\n(d3) RIG: SCENARIO suspend PASS resumed\r\n(d3) RIG: END passed=2 failed=0\r\nRIGGUEST: RIG: SCENARIO store PASS ok\r\nRIGGUEST: RIG: SCENARIO suspend PASS resumed\r\nRIGGUEST: RIG: END passed=2 failed=0\r\n";
        let report = parse_serial(log);
        assert_eq!(report.scenarios.len(), 2);
        assert!(report.passed());
        let crashed = parse_serial(
            "(d1) RIG: SCENARIO store FAIL no answer\n(d1) RIG: END\nRIGDOM0: xl-save.log: malloc(): corrupted top size\n",
        );
        assert_eq!(crashed.errors.len(), 1);
        // A failed scenario is never excused by the platform's trouble...
        assert!(!crashed.passed_despite_dom0_crash());
        // ...but all PASS lines with a crashed dom0 process stand (with a warning).
        let crashed_after_passes = parse_serial(
            "(d1) RIG: SCENARIO store PASS ok\n(d1) RIG: END passed=1 failed=0\nRIGDOM0: [   26.9] sleep[232]: segfault at 9c0000001d ip 00007f7d65b93040\n",
        );
        assert!(!crashed_after_passes.passed());
        assert!(crashed_after_passes.passed_despite_dom0_crash());
        let died = parse_serial("(d1) RIG: SCENARIO store PASS ok\n(XEN) d1v0 Triple fault - invoking HVM shutdown action 1\n");
        assert!(!died.passed());
        assert_eq!(died.errors.len(), 1);
    }

    #[test]
    fn every_kind_of_dom0_process_crash_is_reported() {
        // The signatures seen under lazy FPU switching: a segfault, a general protection
        // fault (the kernel's "traps:" line) and a glibc heap abort.
        let report = parse_serial(
            "(d1) RIG: SCENARIO store PASS ok\n(d1) RIG: END passed=1 failed=0\n\
             [  170.19] traps: awk[311] general protection fault ip:7f0fe5e61040 sp:7ffc682c6f40 error:0 in libc.so.6[7f0fe5e49000+156000]\n\
             [  368.85] xenstored[198]: segfault at 561a52969510 ip 0000561970e7e5a3 sp 00007ffe17ae2040 error 6\n\
             RIGDOM0: xl-save.log: malloc(): corrupted top size\n",
        );
        assert_eq!(report.errors.len(), 3);
        assert!(report.errors.iter().all(|e| e.starts_with(DOM0_CRASH)));
        assert!(!report.passed());
        assert!(report.passed_despite_dom0_crash());
        // Xen's own lines and clean dom0 lines are not crashes.
        assert!(parse_serial("(XEN) HVM d1v0 save: CPU\nRIGHOST: dom0 up\n")
            .errors
            .is_empty());
    }

    #[test]
    fn lazy_fpu_switching_is_noticed_in_xens_boot_log() {
        assert_eq!(
            lazy_fpu("(XEN)   Support for HVM VMs: RSB\r\n(XEN)   Support for PV VMs: None\r\n"),
            Some("None")
        );
        assert_eq!(lazy_fpu("(XEN)   Support for PV VMs: EAGER_FPU\r\n"), None);
        assert_eq!(lazy_fpu("(XEN) no such line\n"), None);
    }

    #[test]
    fn the_serial_log_splits_into_guest_and_dom0_logs() {
        let (guest, dom0) = split_log(
            "(XEN) noise\r\nRIGHOST: dom0 up\r\nRIGGUEST: RIG: BEGIN\r\nRIGHELPER:     1.0 serving domain 1\r\nRIGDOM0: xl-create.log: Parsing config\r\n",
        );
        assert_eq!(guest, "RIG: BEGIN\n");
        assert_eq!(
            dom0,
            "RIGHOST: dom0 up\nRIGHELPER:     1.0 serving domain 1\nRIGDOM0: xl-create.log: Parsing config\n"
        );
    }

    #[test]
    fn a_run_without_end_or_with_host_failures_fails() {
        assert!(!parse_serial("RIGGUEST: RIG: SCENARIO a PASS x\n").passed());
        let report = parse_serial(
            "RIGGUEST: RIG: SCENARIO a PASS x\nRIGHOST: FAIL xl create\nRIGGUEST: RIG: END\n",
        );
        assert_eq!(report.errors, ["xl create"]);
        assert!(!report.passed());
        assert!(parse_serial("RIGGUEST: RIG: SCENARIO a PASS x\nRIGGUEST: RIG: END\n").passed());
    }
}
