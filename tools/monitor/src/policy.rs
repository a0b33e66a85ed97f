//! The monitor's decisions, free of I/O: the service glue feeds events and a snapshot of the
//! registry and the machine, and performs the returned actions.
//!
//! Behaviour (spec §7.2): a subkey `<module>` of the request key with DWORD `Reboot` ≠ 0 is a
//! reboot request. While an installation runs nothing happens (retry every 60 s). With
//! `AutoReboot` = N > 0 and `RebootCount` < N the monitor counts the reboot and shuts down
//! after `AutoRebootTimeout` seconds (default 60). Otherwise it asks every active session
//! (title, text and question from Parameters, `PromptTimeout`) and restarts on Yes or on
//! timeout; a No is respected until the set of requesting modules changes. No request left →
//! `RebootCount` is deleted. On start and stop the `StartOverride` keys of the SCSIAdapter
//! device services are removed; on stop the request tree is deleted.
use xenbus_coinst::{RegValue, RegistryView};

/// The monitor's service name.
pub const SERVICE_NAME: &str = "xenbus_monitor";
/// Its Parameters key, relative to HKLM.
pub const PARAMETERS_KEY: &str = "SYSTEM\\CurrentControlSet\\Services\\xenbus_monitor\\Parameters";
/// The request key used when Parameters has none.
pub const DEFAULT_REQUEST_KEY: &str =
    "SYSTEM\\CurrentControlSet\\Services\\xenbus_monitor\\Request";
/// Seconds between retries while a reboot cannot proceed.
pub const RETRY_SECONDS: u32 = 60;
/// Default delay of an automatic reboot.
pub const DEFAULT_AUTO_REBOOT_TIMEOUT: u32 = 60;
/// The SCSIAdapter setup class.
pub const SCSI_ADAPTER_CLASS_GUID: &str = "{4d36e97b-e325-11ce-bfc1-08002be10318}";
/// The device enumeration root.
pub const ENUM_KEY: &str = "SYSTEM\\CurrentControlSet\\Enum";
/// The services root.
pub const SERVICES_KEY: &str = "SYSTEM\\CurrentControlSet\\Services";

/// The monitor's configuration, read from its Parameters key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Parameters {
    /// Request root, relative to HKLM.
    pub request_key: String,
    /// Prompt title.
    pub dialog_title: String,
    /// Prompt and shutdown text.
    pub dialog_text: String,
    /// Prompt question.
    pub dialog_question: String,
    /// Seconds a prompt waits for an answer (0 = forever).
    pub prompt_timeout: u32,
    /// How many automatic reboots are allowed (0 = always ask).
    pub auto_reboot: u32,
    /// Automatic reboots done so far.
    pub reboot_count: u32,
    /// Seconds before an automatic reboot.
    pub auto_reboot_timeout: u32,
}

impl Default for Parameters {
    fn default() -> Self {
        Parameters {
            request_key: DEFAULT_REQUEST_KEY.into(),
            dialog_title: "Xen PV drivers".into(),
            dialog_text: "The Xen PV drivers need to restart the system to complete installation."
                .into(),
            dialog_question:
                "Press 'Yes' to restart the system now or 'No' if you plan to restart it later."
                    .into(),
            prompt_timeout: 0,
            auto_reboot: 0,
            reboot_count: 0,
            auto_reboot_timeout: DEFAULT_AUTO_REBOOT_TIMEOUT,
        }
    }
}

impl Parameters {
    /// Builds the parameters from the values of the Parameters key; missing values or values
    /// of the wrong type keep their defaults.
    pub fn from_values(values: &[(String, RegValue)]) -> Self {
        let mut p = Parameters::default();
        for (name, value) in values {
            let text = match value {
                RegValue::Sz(s) | RegValue::ExpandSz(s) if !s.is_empty() => Some(s.clone()),
                _ => None,
            };
            let number = match value {
                RegValue::Dword(d) => Some(*d),
                _ => None,
            };
            match name.to_ascii_lowercase().as_str() {
                "requestkey" => p.request_key = text.unwrap_or(p.request_key),
                "dialogtitle" => p.dialog_title = text.unwrap_or(p.dialog_title),
                "dialogtext" => p.dialog_text = text.unwrap_or(p.dialog_text),
                "dialogquestion" => p.dialog_question = text.unwrap_or(p.dialog_question),
                "prompttimeout" => p.prompt_timeout = number.unwrap_or(p.prompt_timeout),
                "autoreboot" => p.auto_reboot = number.unwrap_or(p.auto_reboot),
                "rebootcount" => p.reboot_count = number.unwrap_or(p.reboot_count),
                "autoreboottimeout" => {
                    p.auto_reboot_timeout = number.unwrap_or(p.auto_reboot_timeout)
                }
                _ => {}
            }
        }
        p
    }

    /// Reads the parameters from a registry.
    pub fn read(view: &dyn RegistryView) -> Result<Self, String> {
        Ok(Parameters::from_values(
            &view.values(PARAMETERS_KEY)?.unwrap_or_default(),
        ))
    }
}

/// The modules under `request_key` that request a reboot (DWORD `Reboot` ≠ 0), sorted.
pub fn pending_requests(view: &dyn RegistryView, request_key: &str) -> Result<Vec<String>, String> {
    let mut modules = Vec::new();
    for module in view.subkeys(request_key)?.unwrap_or_default() {
        let values = view
            .values(&format!("{request_key}\\{module}"))?
            .unwrap_or_default();
        let reboot = values.iter().any(|(n, v)| {
            n.eq_ignore_ascii_case("Reboot") && matches!(v, RegValue::Dword(d) if *d != 0)
        });
        if reboot {
            modules.push(module);
        }
    }
    modules.sort_by_key(|m| m.to_ascii_lowercase());
    Ok(modules)
}

/// The services of every device of the SCSIAdapter class (`Enum\<bus>\<device>\<instance>`
/// with that ClassGUID), whose `StartOverride` keys the monitor removes.
pub fn scsi_adapter_services(view: &dyn RegistryView) -> Result<Vec<String>, String> {
    let mut services: Vec<String> = Vec::new();
    for bus in view.subkeys(ENUM_KEY)?.unwrap_or_default() {
        let bus_key = format!("{ENUM_KEY}\\{bus}");
        for device in view.subkeys(&bus_key)?.unwrap_or_default() {
            let device_key = format!("{bus_key}\\{device}");
            for instance in view.subkeys(&device_key)?.unwrap_or_default() {
                let values = view
                    .values(&format!("{device_key}\\{instance}"))?
                    .unwrap_or_default();
                let text = |wanted: &str| {
                    values.iter().find_map(|(n, v)| match v {
                        RegValue::Sz(s) if n.eq_ignore_ascii_case(wanted) => Some(s.clone()),
                        _ => None,
                    })
                };
                let is_scsi = text("ClassGUID")
                    .is_some_and(|g| g.eq_ignore_ascii_case(SCSI_ADAPTER_CLASS_GUID));
                if let (true, Some(service)) = (is_scsi, text("Service")) {
                    if !services.iter().any(|s| s.eq_ignore_ascii_case(&service)) {
                        services.push(service);
                    }
                }
            }
        }
    }
    Ok(services)
}

/// What the glue observed just before an event.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Current parameters.
    pub parameters: Parameters,
    /// Modules requesting a reboot.
    pub requests: Vec<String>,
    /// An installation is running (`Global\_MSIExecute` held, PnP installs pending) or the
    /// system must stay up (`ES_SYSTEM_REQUIRED`).
    pub installing: bool,
    /// Active interactive sessions.
    pub sessions: Vec<u32>,
    /// Services whose `StartOverride` must go (only needed on Start and Stop).
    pub scsi_services: Vec<String>,
}

/// What happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// The service started.
    Start,
    /// Something under the request key changed.
    RequestsChanged,
    /// The retry timer fired.
    Retry,
    /// A session answered a prompt.
    Answer(Answer),
    /// The service is stopping.
    Stop,
}

/// A session's answer to the prompt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    /// Restart now.
    Yes,
    /// Restart later.
    No,
    /// Nobody answered within `PromptTimeout`.
    Timeout,
}

/// What the glue must do, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Create the request key if missing and watch its tree.
    WatchRequestKey(String),
    /// Delete `Services\<service>\StartOverride`.
    DeleteStartOverride(String),
    /// Set `Parameters\RebootCount`.
    SetRebootCount(u32),
    /// Delete `Parameters\RebootCount`.
    DeleteRebootCount,
    /// Ask a session; the answer comes back as [`Event::Answer`].
    Prompt {
        /// Session ID.
        session: u32,
        /// Title.
        title: String,
        /// Text including the question.
        text: String,
        /// Seconds to wait (0 = forever).
        timeout: u32,
    },
    /// Wait for pending PnP installs, then restart the machine.
    Restart {
        /// Seconds of warning.
        timeout: u32,
        /// Shutdown message.
        message: String,
    },
    /// Fire [`Event::Retry`] after this many seconds.
    ArmRetry(u32),
    /// Delete the request key and everything below it.
    DeleteRequestTree(String),
    /// Write a log line.
    Log(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum State {
    Idle,
    /// Prompts are out for this set of requests.
    Prompting(Vec<String>),
    /// The user said No to this set of requests.
    Declined(Vec<String>),
    Restarting,
    Stopped,
}

/// The monitor's state machine.
#[derive(Debug)]
pub struct Monitor {
    state: State,
}

impl Default for Monitor {
    fn default() -> Self {
        Monitor { state: State::Idle }
    }
}

impl Monitor {
    /// A monitor that has not started.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether the monitor has initiated a restart.
    pub fn restarting(&self) -> bool {
        self.state == State::Restarting
    }

    /// Handles one event given what the glue observed; returns the actions to perform.
    pub fn step(&mut self, event: Event, snap: &Snapshot) -> Vec<Action> {
        let mut actions = Vec::new();
        if self.state == State::Stopped {
            return actions;
        }
        let p = &snap.parameters;
        match event {
            Event::Start => {
                actions.extend(
                    snap.scsi_services
                        .iter()
                        .map(|s| Action::DeleteStartOverride(s.clone())),
                );
                actions.push(Action::WatchRequestKey(p.request_key.clone()));
                self.evaluate(snap, &mut actions);
            }
            Event::RequestsChanged | Event::Retry => self.evaluate(snap, &mut actions),
            Event::Answer(answer) => {
                let State::Prompting(modules) = &self.state else {
                    return actions;
                };
                match answer {
                    Answer::Yes | Answer::Timeout => {
                        actions.push(Action::Log(format!(
                            "restart accepted ({answer:?}) for {}",
                            modules.join(", ")
                        )));
                        actions.push(Action::Restart {
                            timeout: 0,
                            message: p.dialog_text.clone(),
                        });
                        self.state = State::Restarting;
                    }
                    Answer::No => {
                        actions.push(Action::Log(format!(
                            "restart declined; asking again when the requests change ({})",
                            modules.join(", ")
                        )));
                        self.state = State::Declined(modules.clone());
                    }
                }
            }
            Event::Stop => {
                actions.extend(
                    snap.scsi_services
                        .iter()
                        .map(|s| Action::DeleteStartOverride(s.clone())),
                );
                actions.push(Action::DeleteRequestTree(p.request_key.clone()));
                self.state = State::Stopped;
            }
        }
        actions
    }

    fn evaluate(&mut self, snap: &Snapshot, actions: &mut Vec<Action>) {
        let p = &snap.parameters;
        match &self.state {
            State::Restarting | State::Stopped => return,
            State::Prompting(m) if *m == snap.requests => return,
            State::Declined(m) if *m == snap.requests => return,
            _ => {}
        }
        if snap.requests.is_empty() {
            if p.reboot_count != 0 {
                actions.push(Action::DeleteRebootCount);
            }
            self.state = State::Idle;
            return;
        }
        let modules = snap.requests.join(", ");
        if snap.installing {
            actions.push(Action::Log(format!(
                "reboot requested by {modules}; an installation is running, retrying in {RETRY_SECONDS} s"
            )));
            actions.push(Action::ArmRetry(RETRY_SECONDS));
            self.state = State::Idle;
            return;
        }
        if p.auto_reboot > 0 && p.reboot_count < p.auto_reboot {
            let count = p.reboot_count + 1;
            actions.push(Action::Log(format!(
                "reboot requested by {modules}; automatic reboot {count} of {}",
                p.auto_reboot
            )));
            actions.push(Action::SetRebootCount(count));
            actions.push(Action::Restart {
                timeout: p.auto_reboot_timeout,
                message: p.dialog_text.clone(),
            });
            self.state = State::Restarting;
            return;
        }
        if snap.sessions.is_empty() {
            actions.push(Action::Log(format!(
                "reboot requested by {modules}; no active session to ask, retrying in {RETRY_SECONDS} s"
            )));
            actions.push(Action::ArmRetry(RETRY_SECONDS));
            self.state = State::Idle;
            return;
        }
        let text = format!(
            "{}\n\nRequested by: {modules}\n\n{}",
            p.dialog_text, p.dialog_question
        );
        for &session in &snap.sessions {
            actions.push(Action::Prompt {
                session,
                title: p.dialog_title.clone(),
                text: text.clone(),
                timeout: p.prompt_timeout,
            });
        }
        self.state = State::Prompting(snap.requests.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use xenbus_coinst::MemoryRegistry;

    fn snap(requests: &[&str]) -> Snapshot {
        Snapshot {
            requests: requests.iter().map(|s| s.to_string()).collect(),
            sessions: vec![1],
            ..Snapshot::default()
        }
    }

    fn restarts(actions: &[Action]) -> Vec<u32> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Restart { timeout, .. } => Some(*timeout),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn registry_reading() {
        let mut r = MemoryRegistry::default();
        let req = DEFAULT_REQUEST_KEY;
        r.set_value(&format!("{req}\\xenbus"), "Reboot", RegValue::Dword(1));
        r.set_value(&format!("{req}\\xenvif"), "Reboot", RegValue::Dword(0));
        r.set_value(
            &format!("{req}\\XENVBD"),
            "Reboot",
            RegValue::Sz("1".into()),
        );
        r.set_value(&format!("{req}\\Xenfilt"), "Reboot", RegValue::Dword(7));
        assert_eq!(
            pending_requests(&r, req).unwrap(),
            vec!["xenbus", "Xenfilt"]
        );
        assert!(pending_requests(&r, "SYSTEM\\Nope").unwrap().is_empty());

        r.set_value(PARAMETERS_KEY, "AutoReboot", RegValue::Dword(2));
        r.set_value(PARAMETERS_KEY, "RebootCount", RegValue::Dword(1));
        r.set_value(
            PARAMETERS_KEY,
            "AutoRebootTimeout",
            RegValue::Sz("x".into()),
        );
        r.set_value(PARAMETERS_KEY, "DialogTitle", RegValue::Sz("T".into()));
        let p = Parameters::read(&r).unwrap();
        assert_eq!((p.auto_reboot, p.reboot_count), (2, 1));
        assert_eq!(p.auto_reboot_timeout, DEFAULT_AUTO_REBOOT_TIMEOUT);
        assert_eq!(p.dialog_title, "T");
        assert_eq!(p.request_key, DEFAULT_REQUEST_KEY);

        let scsi = "{4D36E97B-E325-11CE-BFC1-08002BE10318}";
        r.set_value(
            &format!("{ENUM_KEY}\\PCI\\VEN_8086&DEV_7010\\3&1"),
            "ClassGUID",
            RegValue::Sz(scsi.into()),
        );
        r.set_value(
            &format!("{ENUM_KEY}\\PCI\\VEN_8086&DEV_7010\\3&1"),
            "Service",
            RegValue::Sz("intelide".into()),
        );
        r.set_value(
            &format!("{ENUM_KEY}\\XENBUS\\VEN_XP&DEV_VBD\\_"),
            "ClassGUID",
            RegValue::Sz(scsi.into()),
        );
        r.set_value(
            &format!("{ENUM_KEY}\\XENBUS\\VEN_XP&DEV_VBD\\_"),
            "Service",
            RegValue::Sz("xenvbd".into()),
        );
        r.set_value(
            &format!("{ENUM_KEY}\\XENBUS\\VEN_XP&DEV_VIF\\_"),
            "ClassGUID",
            RegValue::Sz("{4d36e972-e325-11ce-bfc1-08002be10318}".into()),
        );
        r.set_value(
            &format!("{ENUM_KEY}\\XENBUS\\VEN_XP&DEV_VIF\\_"),
            "Service",
            RegValue::Sz("xenvif".into()),
        );
        assert_eq!(
            scsi_adapter_services(&r).unwrap(),
            vec!["intelide", "xenvbd"]
        );
    }

    #[test]
    fn the_inf_installs_the_same_request_key() {
        let inx =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../inf/xenbus.inx"))
                .unwrap();
        assert!(inx.contains(&format!("RequestKey=\"{DEFAULT_REQUEST_KEY}\"")));
        assert!(inx.contains("AddService=xenbus_monitor,"));
        assert!(inx.contains(&format!("Services\\{SERVICE_NAME}\\Request")));
    }

    #[test]
    fn no_request_deletes_the_reboot_count() {
        let mut m = Monitor::new();
        let mut s = snap(&[]);
        s.scsi_services = vec!["xenvbd".into()];
        let a = m.step(Event::Start, &s);
        assert_eq!(
            a,
            vec![
                Action::DeleteStartOverride("xenvbd".into()),
                Action::WatchRequestKey(DEFAULT_REQUEST_KEY.into())
            ]
        );
        s.parameters.reboot_count = 2;
        assert_eq!(
            m.step(Event::RequestsChanged, &s),
            vec![Action::DeleteRebootCount]
        );
    }

    #[test]
    fn installation_running_defers() {
        let mut m = Monitor::new();
        let mut s = snap(&["xenbus"]);
        s.installing = true;
        let a = m.step(Event::RequestsChanged, &s);
        assert!(a.contains(&Action::ArmRetry(RETRY_SECONDS)));
        assert!(restarts(&a).is_empty());
        assert!(!a.iter().any(|x| matches!(x, Action::Prompt { .. })));
        s.installing = false;
        let a = m.step(Event::Retry, &s);
        assert!(a
            .iter()
            .any(|x| matches!(x, Action::Prompt { session: 1, .. })));
    }

    #[test]
    fn auto_reboot_counts_and_stops_at_the_limit() {
        let mut s = snap(&["xenbus"]);
        s.parameters.auto_reboot = 2;
        s.parameters.reboot_count = 1;
        s.parameters.auto_reboot_timeout = 30;
        let mut m = Monitor::new();
        let a = m.step(Event::RequestsChanged, &s);
        assert!(a.contains(&Action::SetRebootCount(2)));
        assert_eq!(restarts(&a), vec![30]);
        assert!(m.restarting());
        assert!(m.step(Event::Retry, &s).is_empty(), "no second restart");
        // At the limit the user is asked instead.
        s.parameters.reboot_count = 2;
        let mut m = Monitor::new();
        let a = m.step(Event::RequestsChanged, &s);
        assert!(restarts(&a).is_empty());
        assert!(a.iter().any(|x| matches!(x, Action::Prompt { .. })));
    }

    #[test]
    fn prompt_texts_and_answers() {
        let mut s = snap(&["xenbus", "xenvif"]);
        s.sessions = vec![1, 3];
        s.parameters.dialog_title = "Title".into();
        s.parameters.dialog_text = "Text.".into();
        s.parameters.dialog_question = "Now?".into();
        s.parameters.prompt_timeout = 120;
        let mut m = Monitor::new();
        let a = m.step(Event::RequestsChanged, &s);
        let prompts: Vec<&Action> = a
            .iter()
            .filter(|x| matches!(x, Action::Prompt { .. }))
            .collect();
        assert_eq!(prompts.len(), 2);
        assert_eq!(
            prompts[0],
            &Action::Prompt {
                session: 1,
                title: "Title".into(),
                text: "Text.\n\nRequested by: xenbus, xenvif\n\nNow?".into(),
                timeout: 120
            }
        );
        // The same requests do not prompt twice.
        assert!(m.step(Event::Retry, &s).is_empty());
        // No: respected until the requests change.
        let a = m.step(Event::Answer(Answer::No), &s);
        assert!(restarts(&a).is_empty());
        assert!(m.step(Event::RequestsChanged, &s).is_empty());
        let s2 = snap(&["xenbus", "xenvbd", "xenvif"]);
        let a = m.step(Event::RequestsChanged, &s2);
        assert!(a.iter().any(|x| matches!(x, Action::Prompt { .. })));
        // Timeout counts as yes.
        let a = m.step(Event::Answer(Answer::Timeout), &s2);
        assert_eq!(restarts(&a), vec![0]);
        // A stray answer after restarting does nothing.
        assert!(m.step(Event::Answer(Answer::Yes), &s2).is_empty());
    }

    /// Performs actions on an in-memory registry, as the Windows glue does on the live one;
    /// returns the restart timeouts and prompts issued.
    fn apply(r: &mut MemoryRegistry, actions: Vec<Action>) -> (Vec<u32>, usize) {
        let mut restarts = Vec::new();
        let mut prompts = 0;
        for a in actions {
            match a {
                Action::WatchRequestKey(k) => r.create_key(&k),
                Action::DeleteStartOverride(svc) => {
                    r.delete_tree(&format!("{SERVICES_KEY}\\{svc}\\StartOverride"))
                }
                Action::SetRebootCount(n) => {
                    r.set_value(PARAMETERS_KEY, "RebootCount", RegValue::Dword(n))
                }
                Action::DeleteRebootCount => r.delete_value(PARAMETERS_KEY, "RebootCount"),
                Action::Prompt { .. } => prompts += 1,
                Action::Restart { timeout, .. } => restarts.push(timeout),
                Action::ArmRetry(_) | Action::Log(_) => {}
                Action::DeleteRequestTree(k) => r.delete_tree(&k),
            }
        }
        (restarts, prompts)
    }

    fn boot(r: &mut MemoryRegistry, event: Event) -> (Monitor, (Vec<u32>, usize)) {
        let parameters = Parameters::read(r).unwrap();
        let snap = Snapshot {
            requests: pending_requests(r, &parameters.request_key).unwrap(),
            sessions: vec![1],
            scsi_services: scsi_adapter_services(r).unwrap(),
            parameters,
            ..Snapshot::default()
        };
        let mut m = Monitor::new();
        let out = apply(r, m.step(event, &snap));
        (m, out)
    }

    #[test]
    fn auto_reboot_scenario_across_boots() {
        let mut r = MemoryRegistry::default();
        r.set_value(PARAMETERS_KEY, "AutoReboot", RegValue::Dword(1));
        r.set_value(PARAMETERS_KEY, "AutoRebootTimeout", RegValue::Dword(15));
        let vbd = format!("{ENUM_KEY}\\XENBUS\\VEN_XP&DEV_VBD\\_");
        r.set_value(
            &vbd,
            "ClassGUID",
            RegValue::Sz(SCSI_ADAPTER_CLASS_GUID.into()),
        );
        r.set_value(&vbd, "Service", RegValue::Sz("xenvbd".into()));
        r.set_value(
            &format!("{SERVICES_KEY}\\xenvbd\\StartOverride"),
            "0",
            RegValue::Dword(3),
        );
        // Boot 1: xenbus requests a reboot; the first automatic reboot happens.
        r.set_value(
            &format!("{DEFAULT_REQUEST_KEY}\\XENBUS"),
            "Reboot",
            RegValue::Dword(1),
        );
        let (m, (restarts, prompts)) = boot(&mut r, Event::Start);
        assert!(m.restarting());
        assert_eq!((restarts, prompts), (vec![15], 0));
        assert!(!r.has_key(&format!("{SERVICES_KEY}\\xenvbd\\StartOverride")));
        assert_eq!(Parameters::read(&r).unwrap().reboot_count, 1);
        // Boot 2: still requested, but the automatic budget is spent: ask instead.
        let (_, (restarts, prompts)) = boot(&mut r, Event::Start);
        assert_eq!((restarts.len(), prompts), (0, 1));
        // Boot 3: the request is gone: the count is reset.
        r.delete_tree(&format!("{DEFAULT_REQUEST_KEY}\\XENBUS"));
        let (_, (restarts, prompts)) = boot(&mut r, Event::Start);
        assert_eq!((restarts.len(), prompts), (0, 0));
        let values = r.values(PARAMETERS_KEY).unwrap().unwrap();
        assert!(
            !values.iter().any(|(n, _)| n == "RebootCount"),
            "{values:?}"
        );
        // Stop removes the request tree.
        r.set_value(
            &format!("{DEFAULT_REQUEST_KEY}\\XENVIF"),
            "Reboot",
            RegValue::Dword(1),
        );
        let _ = boot(&mut r, Event::Stop);
        assert!(!r.has_key(DEFAULT_REQUEST_KEY));
    }

    #[test]
    fn no_session_retries_and_stop_cleans_up() {
        let mut s = snap(&["xenbus"]);
        s.sessions.clear();
        s.scsi_services = vec!["xenvbd".into()];
        let mut m = Monitor::new();
        let a = m.step(Event::RequestsChanged, &s);
        assert!(a.contains(&Action::ArmRetry(RETRY_SECONDS)));
        let a = m.step(Event::Stop, &s);
        assert_eq!(
            a,
            vec![
                Action::DeleteStartOverride("xenvbd".into()),
                Action::DeleteRequestTree(DEFAULT_REQUEST_KEY.into())
            ]
        );
        assert!(m.step(Event::Retry, &s).is_empty());
        assert!(m.step(Event::Start, &s).is_empty());
    }
}
