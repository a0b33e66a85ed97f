//! Runs Debian's real C xenstored (Xen 4.17) as an ordinary process under the `xsshim.c`
//! LD_PRELOAD shim: provisioning (apt-get when missing and root), building the shim into the
//! target directory, starting one daemon per case in its own directory, and stopping it.

use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The daemon binary shipped by `xen-utils-4.17`.
pub const XENSTORED: &str = "/usr/lib/xen-4.17/bin/xenstored";

fn run(cmd: &mut Command) -> bool {
    cmd.stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// Makes sure the real daemon, the headers the shim needs and a C compiler are installed;
/// installs them with apt-get when running as root. Returns an error message otherwise.
pub fn provision() -> Result<(), String> {
    // Tests of this binary run in parallel; only one may run apt-get at a time.
    static ONCE: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = ONCE.lock().unwrap_or_else(|p| p.into_inner());
    let have = |p: &str| Path::new(p).exists();
    let ready = || {
        have(XENSTORED)
            && have("/usr/bin/xenstore-ls")
            && have("/usr/include/xenctrl.h")
            && have("/usr/include/xenevtchn.h")
            && Command::new("cc").arg("--version").output().is_ok()
    };
    if ready() {
        return Ok(());
    }
    if !is_root() {
        return Err(format!(
            "the real xenstored ({XENSTORED}), libxen-dev and a C compiler are needed and \
             this test is not root: apt-get install xen-utils-4.17 libxen-dev gcc"
        ));
    }
    let env = [("DEBIAN_FRONTEND", "noninteractive")];
    let _ = run(Command::new("apt-get").arg("update").envs(env));
    let ok = run(Command::new("apt-get")
        .args([
            "install",
            "-y",
            "--no-install-recommends",
            "xen-utils-4.17",
            "xenstore-utils",
            "libxen-dev",
            "gcc",
            "libc6-dev",
        ])
        .envs(env));
    if !ok || !ready() {
        return Err("apt-get could not install xen-utils-4.17 / libxen-dev / gcc".into());
    }
    Ok(())
}

/// Compiles the shim into `dir` (once per test run).
pub fn build_shim(dir: &Path) -> Result<PathBuf, String> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/xsshim.c");
    let out = dir.join("xsshim.so");
    fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    let status = Command::new("cc")
        .args(["-shared", "-fPIC", "-O2", "-o"])
        .arg(&out)
        .arg(&src)
        .arg("-ldl")
        .status()
        .map_err(|e| format!("cc: {e}"))?;
    if !status.success() {
        return Err(format!("compiling {} failed", src.display()));
    }
    Ok(out)
}

/// A short directory for sockets (Unix socket paths are limited to 107 bytes).
pub fn scratch_root() -> PathBuf {
    let preferred = Path::new(env!("CARGO_TARGET_TMPDIR")).join("xsconf");
    if preferred.as_os_str().len() < 60 {
        preferred
    } else {
        std::env::temp_dir().join(format!("xsconf-{}", std::process::id()))
    }
}

/// One running real daemon.
pub struct RealDaemon {
    pub dir: PathBuf,
    child: Child,
    kick: UnixDatagram,
}

impl RealDaemon {
    /// Starts the daemon in `dir` with extra command-line `args`; `domains` get ring files
    /// (so they "exist").
    pub fn start(
        shim: &Path,
        dir: &Path,
        args: &[String],
        domains: &[u32],
    ) -> Result<Self, String> {
        let _ = fs::remove_dir_all(dir);
        fs::create_dir_all(dir).map_err(|e| e.to_string())?;
        fs::write(dir.join("xsd_port"), "1").map_err(|e| e.to_string())?;
        for d in std::iter::once(&0).chain(domains) {
            let f = File::create(dir.join(format!("ring-{d}"))).map_err(|e| e.to_string())?;
            f.set_len(4096).map_err(|e| e.to_string())?;
        }
        let log = File::create(dir.join("xenstored.log")).map_err(|e| e.to_string())?;
        let child = Command::new(XENSTORED)
            .arg("--no-fork")
            .args(args)
            .env("XENSTORED_RUNDIR", dir)
            .env("XSSHIM_DIR", dir)
            .env("LD_PRELOAD", shim)
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log)
            .spawn()
            .map_err(|e| format!("spawning {XENSTORED}: {e}"))?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while !(dir.join("socket").exists() && dir.join("evtchn.sock").exists()) {
            if Instant::now() > deadline {
                return Err(format!("xenstored did not come up in {}", dir.display()));
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        let kick = UnixDatagram::unbound().map_err(|e| e.to_string())?;
        Ok(Self {
            dir: dir.to_path_buf(),
            child,
            kick,
        })
    }

    /// The socket path (what `XENSTORED_PATH` should name).
    pub fn socket(&self) -> PathBuf {
        self.dir.join("socket")
    }

    /// The ring page file of a domain.
    pub fn ring(&self, domid: u32) -> std::io::Result<File> {
        OpenOptions::new()
            .read(true)
            .write(true)
            .open(self.dir.join(format!("ring-{domid}")))
    }

    /// Sends an event-channel kick to the daemon.
    pub fn kick(&self) {
        let _ = self
            .kick
            .send_to(&3u32.to_le_bytes(), self.dir.join("evtchn.sock"));
    }

    /// Whether the daemon process is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for RealDaemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// A ring page held in a file shared with the daemon (pread/pwrite reach the same page cache
/// the daemon has mapped).
pub struct FilePage(pub File);

impl FilePage {
    pub fn read(&self, offset: usize, out: &mut [u8]) {
        let _ = self.0.read_exact_at(out, offset as u64);
    }

    pub fn write(&self, offset: usize, data: &[u8]) {
        let _ = self.0.write_all_at(data, offset as u64);
    }
}
