//! The Windows service glue of `xenbus_monitor`: the service control dispatcher, the
//! registry watch on the request key, prompts through WTS, the restart, and the execution of
//! the policy's actions. All decisions are in [`crate::policy`].
#![allow(unsafe_code)]

use core::ptr::{null, null_mut};
use std::sync::{
    atomic::{AtomicPtr, Ordering},
    mpsc::{channel, Receiver, Sender},
};

use windows_sys::Win32::{
    Devices::DeviceAndDriverInstallation::CMP_WaitNoPendingInstallEvents,
    Foundation::{CloseHandle, ERROR_SUCCESS, HANDLE, LUID, NO_ERROR, WAIT_OBJECT_0},
    Security::{
        AdjustTokenPrivileges, LookupPrivilegeValueW, LUID_AND_ATTRIBUTES, SE_PRIVILEGE_ENABLED,
        SE_SHUTDOWN_NAME, TOKEN_ADJUST_PRIVILEGES, TOKEN_PRIVILEGES, TOKEN_QUERY,
    },
    System::{
        Diagnostics::Debug::OutputDebugStringW,
        Power::{CallNtPowerInformation, SystemExecutionState, ES_SYSTEM_REQUIRED},
        Registry::{RegNotifyChangeKeyValue, REG_NOTIFY_CHANGE_LAST_SET, REG_NOTIFY_CHANGE_NAME},
        RemoteDesktop::{
            WTSActive, WTSEnumerateSessionsW, WTSFreeMemory, WTSSendMessageW,
            WTS_CURRENT_SERVER_HANDLE, WTS_SESSION_INFOW,
        },
        Services::{
            RegisterServiceCtrlHandlerExW, SetServiceStatus, StartServiceCtrlDispatcherW,
            SERVICE_ACCEPT_SHUTDOWN, SERVICE_ACCEPT_STOP, SERVICE_CONTROL_INTERROGATE,
            SERVICE_CONTROL_SHUTDOWN, SERVICE_CONTROL_STOP, SERVICE_RUNNING, SERVICE_START_PENDING,
            SERVICE_STATUS, SERVICE_STATUS_HANDLE, SERVICE_STOPPED, SERVICE_STOP_PENDING,
            SERVICE_TABLE_ENTRYW, SERVICE_WIN32_OWN_PROCESS,
        },
        Shutdown::{
            InitiateSystemShutdownExW, SHTDN_REASON_FLAG_PLANNED, SHTDN_REASON_MAJOR_APPLICATION,
            SHTDN_REASON_MINOR_INSTALLATION,
        },
        Threading::{
            CreateEventW, GetCurrentProcess, OpenMutexW, OpenProcessToken, SetEvent,
            WaitForMultipleObjects, SYNCHRONIZATION_SYNCHRONIZE,
        },
    },
    UI::WindowsAndMessaging::{IDTIMEOUT, IDYES, MB_ICONEXCLAMATION, MB_SETFOREGROUND, MB_YESNO},
};
use xenbus_coinst::live::{self, wide, LiveRegistry};

use crate::policy::{
    pending_requests, scsi_adapter_services, Action, Answer, Event, Monitor, Parameters, Snapshot,
    PARAMETERS_KEY, RETRY_SECONDS, SERVICES_KEY, SERVICE_NAME,
};

/// The stop event, set by the control handler.
static STOP_EVENT: AtomicPtr<core::ffi::c_void> = AtomicPtr::new(null_mut());
/// The status handle, for the control handler's reports.
static STATUS_HANDLE: AtomicPtr<core::ffi::c_void> = AtomicPtr::new(null_mut());

fn log(text: &str) {
    let line = wide(&format!("{SERVICE_NAME}: {text}\n"));
    // SAFETY: `line` is NUL-terminated and outlives the call.
    unsafe { OutputDebugStringW(line.as_ptr()) };
}

fn report(state: u32, exit_code: u32) {
    let handle: SERVICE_STATUS_HANDLE = STATUS_HANDLE.load(Ordering::SeqCst);
    if handle.is_null() {
        return;
    }
    let status = SERVICE_STATUS {
        dwServiceType: SERVICE_WIN32_OWN_PROCESS,
        dwCurrentState: state,
        dwControlsAccepted: if state == SERVICE_RUNNING {
            SERVICE_ACCEPT_STOP | SERVICE_ACCEPT_SHUTDOWN
        } else {
            0
        },
        dwWin32ExitCode: exit_code,
        dwServiceSpecificExitCode: 0,
        dwCheckPoint: 0,
        dwWaitHint: if state == SERVICE_RUNNING || state == SERVICE_STOPPED {
            0
        } else {
            10_000
        },
    };
    // SAFETY: `handle` came from RegisterServiceCtrlHandlerExW; `status` is a valid struct.
    unsafe { SetServiceStatus(handle, &status) };
}

unsafe extern "system" fn control_handler(
    control: u32,
    _event_type: u32,
    _event_data: *mut core::ffi::c_void,
    _context: *mut core::ffi::c_void,
) -> u32 {
    match control {
        SERVICE_CONTROL_STOP | SERVICE_CONTROL_SHUTDOWN => {
            report(SERVICE_STOP_PENDING, NO_ERROR);
            let event = STOP_EVENT.load(Ordering::SeqCst);
            if !event.is_null() {
                // SAFETY: the event handle stays open for the life of the process.
                unsafe { SetEvent(event) };
            }
            NO_ERROR
        }
        SERVICE_CONTROL_INTERROGATE => NO_ERROR,
        _ => 120, // ERROR_CALL_NOT_IMPLEMENTED
    }
}

unsafe extern "system" fn service_main(_argc: u32, _argv: *mut windows_sys::core::PWSTR) {
    let name = wide(SERVICE_NAME);
    // SAFETY: `name` is NUL-terminated; the handler is a valid `extern "system"` function.
    let handle =
        unsafe { RegisterServiceCtrlHandlerExW(name.as_ptr(), Some(control_handler), null()) };
    if handle.is_null() {
        log("RegisterServiceCtrlHandlerExW failed");
        return;
    }
    STATUS_HANDLE.store(handle, Ordering::SeqCst);
    report(SERVICE_START_PENDING, NO_ERROR);
    let code = match run() {
        Ok(()) => NO_ERROR,
        Err(e) => {
            log(&e);
            1
        }
    };
    report(SERVICE_STOPPED, code);
}

/// Runs the service control dispatcher (returns when the service stops).
pub fn dispatch() -> Result<(), String> {
    let mut name = wide(SERVICE_NAME);
    let table = [
        SERVICE_TABLE_ENTRYW {
            lpServiceName: name.as_mut_ptr(),
            lpServiceProc: Some(service_main),
        },
        SERVICE_TABLE_ENTRYW {
            lpServiceName: null_mut(),
            lpServiceProc: None,
        },
    ];
    // SAFETY: the table is terminated by a null entry and outlives the dispatcher.
    if unsafe { StartServiceCtrlDispatcherW(table.as_ptr()) } == 0 {
        return Err(
            "StartServiceCtrlDispatcherW failed (not started by the service control manager?)"
                .into(),
        );
    }
    Ok(())
}

struct Event2(HANDLE);

impl Event2 {
    fn new() -> Result<Self, String> {
        // SAFETY: an anonymous auto-reset event with default security.
        let h = unsafe { CreateEventW(null(), 0, 0, null()) };
        if h.is_null() {
            Err("CreateEventW failed".into())
        } else {
            Ok(Event2(h))
        }
    }
}

impl Drop for Event2 {
    fn drop(&mut self) {
        // SAFETY: the handle was created by CreateEventW and is closed once.
        unsafe { CloseHandle(self.0) };
    }
}

fn installing() -> bool {
    let name = wide("Global\\_MSIExecute");
    // SAFETY: `name` is NUL-terminated; a null result means no MSI install holds the mutex.
    let mutex = unsafe { OpenMutexW(SYNCHRONIZATION_SYNCHRONIZE, 0, name.as_ptr()) };
    if !mutex.is_null() {
        // SAFETY: the handle was just opened.
        unsafe { CloseHandle(mutex) };
        return true;
    }
    // Something (an installer, a long job) asked the system to stay up.
    let mut state = 0u32;
    // SAFETY: SystemExecutionState writes one EXECUTION_STATE (u32) into `state`.
    let status = unsafe {
        CallNtPowerInformation(
            SystemExecutionState,
            null(),
            0,
            (&mut state as *mut u32).cast(),
            4,
        )
    };
    if status == 0 && state & ES_SYSTEM_REQUIRED != 0 {
        return true;
    }
    // SAFETY: a zero timeout only polls the PnP install queue.
    unsafe { CMP_WaitNoPendingInstallEvents(0) != WAIT_OBJECT_0 }
}

fn active_sessions() -> Vec<u32> {
    let mut info: *mut WTS_SESSION_INFOW = null_mut();
    let mut count = 0u32;
    // SAFETY: out pointers are valid; the array is freed with WTSFreeMemory below.
    let ok =
        unsafe { WTSEnumerateSessionsW(WTS_CURRENT_SERVER_HANDLE, 0, 1, &mut info, &mut count) };
    if ok == 0 || info.is_null() {
        return Vec::new();
    }
    // SAFETY: WTSEnumerateSessionsW returned `count` contiguous entries at `info`.
    let sessions = unsafe { core::slice::from_raw_parts(info, count as usize) };
    let active = sessions
        .iter()
        .filter(|s| s.State == WTSActive && s.SessionId != 0)
        .map(|s| s.SessionId)
        .collect();
    // SAFETY: `info` was allocated by WTSEnumerateSessionsW.
    unsafe { WTSFreeMemory(info.cast()) };
    active
}

fn prompt(session: u32, title: &str, text: &str, timeout: u32) -> Answer {
    let t: Vec<u16> = title.encode_utf16().collect();
    let m: Vec<u16> = text.encode_utf16().collect();
    let mut response = 0i32;
    // SAFETY: lengths are in bytes of the given UTF-16 buffers, which outlive the call.
    let ok = unsafe {
        WTSSendMessageW(
            WTS_CURRENT_SERVER_HANDLE,
            session,
            t.as_ptr(),
            (t.len() * 2) as u32,
            m.as_ptr(),
            (m.len() * 2) as u32,
            MB_YESNO | MB_ICONEXCLAMATION | MB_SETFOREGROUND,
            timeout,
            &mut response,
            1,
        )
    };
    if ok == 0 {
        return Answer::No;
    }
    match response {
        IDYES => Answer::Yes,
        IDTIMEOUT => Answer::Timeout,
        _ => Answer::No,
    }
}

fn enable_shutdown_privilege() -> Result<(), String> {
    let mut token: HANDLE = null_mut();
    // SAFETY: the pseudo handle of this process and a valid out pointer.
    if unsafe {
        OpenProcessToken(
            GetCurrentProcess(),
            TOKEN_ADJUST_PRIVILEGES | TOKEN_QUERY,
            &mut token,
        )
    } == 0
    {
        return Err("OpenProcessToken failed".into());
    }
    let mut luid = LUID::default();
    // SAFETY: SE_SHUTDOWN_NAME is a static NUL-terminated string; `luid` is a valid out pointer.
    let found = unsafe { LookupPrivilegeValueW(null(), SE_SHUTDOWN_NAME, &mut luid) };
    let privileges = TOKEN_PRIVILEGES {
        PrivilegeCount: 1,
        Privileges: [LUID_AND_ATTRIBUTES {
            Luid: luid,
            Attributes: SE_PRIVILEGE_ENABLED,
        }],
    };
    // SAFETY: `token` is open with TOKEN_ADJUST_PRIVILEGES; the previous state is not wanted.
    let ok = found != 0
        && unsafe { AdjustTokenPrivileges(token, 0, &privileges, 0, null_mut(), null_mut()) } != 0;
    // SAFETY: the token handle was opened above.
    unsafe { CloseHandle(token) };
    if ok {
        Ok(())
    } else {
        Err("cannot enable SeShutdownPrivilege".into())
    }
}

fn restart(timeout: u32, message: &str) -> Result<(), String> {
    // Let PnP finish installing before the restart (bounded wait).
    // SAFETY: plain call with a timeout in milliseconds.
    unsafe { CMP_WaitNoPendingInstallEvents(5 * 60 * 1000) };
    enable_shutdown_privilege()?;
    let m = wide(message);
    // SAFETY: `m` is NUL-terminated; a null machine name means this machine.
    let ok = unsafe {
        InitiateSystemShutdownExW(
            null(),
            m.as_ptr(),
            timeout,
            0,
            1,
            SHTDN_REASON_MAJOR_APPLICATION
                | SHTDN_REASON_MINOR_INSTALLATION
                | SHTDN_REASON_FLAG_PLANNED,
        )
    };
    if ok == 0 {
        Err("InitiateSystemShutdownExW failed".into())
    } else {
        Ok(())
    }
}

fn snapshot(with_services: bool) -> Result<Snapshot, String> {
    let registry = LiveRegistry;
    let parameters = Parameters::read(&registry)?;
    let requests = pending_requests(&registry, &parameters.request_key)?;
    Ok(Snapshot {
        requests,
        installing: installing(),
        sessions: active_sessions(),
        scsi_services: if with_services {
            scsi_adapter_services(&registry)?
        } else {
            Vec::new()
        },
        parameters,
    })
}

/// Performs actions; returns the retry delay armed, if any.
fn perform(actions: Vec<Action>, answers: &Sender<Answer>, wake: HANDLE) -> Option<u32> {
    let mut retry = None;
    for action in actions {
        let outcome = match action {
            Action::WatchRequestKey(key) => live::create(&key, false).map(|_| ()),
            Action::DeleteStartOverride(service) => {
                live::delete_tree(&format!("{SERVICES_KEY}\\{service}\\StartOverride"))
            }
            Action::SetRebootCount(n) => live::set_dword(PARAMETERS_KEY, "RebootCount", n),
            Action::DeleteRebootCount => live::delete_value(PARAMETERS_KEY, "RebootCount"),
            Action::Prompt {
                session,
                title,
                text,
                timeout,
            } => {
                let answers = answers.clone();
                let wake = wake as usize;
                std::thread::spawn(move || {
                    let answer = prompt(session, &title, &text, timeout);
                    let _ = answers.send(answer);
                    // SAFETY: the wake event lives as long as the service loop.
                    unsafe { SetEvent(wake as HANDLE) };
                });
                Ok(())
            }
            Action::Restart { timeout, message } => restart(timeout, &message),
            Action::ArmRetry(seconds) => {
                retry = Some(seconds);
                Ok(())
            }
            Action::DeleteRequestTree(key) => live::delete_tree(&key),
            Action::Log(text) => {
                log(&text);
                Ok(())
            }
        };
        if let Err(e) = outcome {
            log(&e);
        }
    }
    retry
}

fn run() -> Result<(), String> {
    let stop = Event2::new()?;
    let changed = Event2::new()?;
    STOP_EVENT.store(stop.0, Ordering::SeqCst);
    let (answers_tx, answers_rx): (Sender<Answer>, Receiver<Answer>) = channel();
    let mut monitor = Monitor::new();
    let first = snapshot(true)?;
    let mut retry = perform(monitor.step(Event::Start, &first), &answers_tx, changed.0);
    report(SERVICE_RUNNING, NO_ERROR);
    loop {
        // (Re-)arm the watch on the request tree: it fires once per registration.
        let params = Parameters::read(&LiveRegistry)?;
        let key = live::create(&params.request_key, false)?;
        // SAFETY: `key` is open; `changed.0` is a valid event; asynchronous notification.
        let rc = unsafe {
            RegNotifyChangeKeyValue(
                key.handle(),
                1,
                REG_NOTIFY_CHANGE_NAME | REG_NOTIFY_CHANGE_LAST_SET,
                changed.0,
                1,
            )
        };
        if rc != ERROR_SUCCESS {
            return Err(format!("RegNotifyChangeKeyValue failed: {rc}"));
        }
        let handles = [stop.0, changed.0];
        // Poll at least every retry period: a change between two registrations of the watch
        // is then seen late, never lost.
        let timeout = retry.unwrap_or(RETRY_SECONDS).saturating_mul(1000);
        // SAFETY: both handles are valid events.
        let wait = unsafe { WaitForMultipleObjects(2, handles.as_ptr(), 0, timeout) };
        let event = if wait == WAIT_OBJECT_0 {
            let last = snapshot(true).unwrap_or_default();
            perform(monitor.step(Event::Stop, &last), &answers_tx, changed.0);
            return Ok(());
        } else if let Ok(answer) = answers_rx.try_recv() {
            Event::Answer(answer)
        } else if wait == WAIT_OBJECT_0 + 1 {
            Event::RequestsChanged
        } else {
            Event::Retry
        };
        drop(key);
        let snap = snapshot(false)?;
        retry = perform(monitor.step(event, &snap), &answers_tx, changed.0);
    }
}

/// `xenbus_monitor status`: the pending requests, printed on a console.
pub fn console_status() -> Result<String, String> {
    let registry = LiveRegistry;
    let parameters = Parameters::read(&registry)?;
    let requests = pending_requests(&registry, &parameters.request_key)?;
    Ok(format!(
        "request key HKLM\\{}: {} request(s) {:?}; installation running: {}",
        parameters.request_key,
        requests.len(),
        requests,
        installing()
    ))
}
