//! `xenbus-coinst subscribe|unsubscribe`: how a child driver's installer records (or drops)
//! the interface versions it uses, since co-installers are no longer allowed. On Windows the
//! live registry is written; `--reg` prints the same change as a REGEDIT4 file for
//! `reg import` or for review, on any host.
use xen_include::subscription::{
    subscribe, unsubscribe_all, ConsumerKey, Subscription, SubscriptionError, SubscriptionStore,
};

/// A store that renders the writes as a REGEDIT4 file.
#[derive(Debug, Default)]
pub struct RegFileWriter {
    /// The text so far (starts with the header).
    pub text: String,
}

impl RegFileWriter {
    /// An empty REGEDIT4 file.
    pub fn new() -> Self {
        RegFileWriter {
            text: "REGEDIT4\r\n\r\n".into(),
        }
    }
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

impl SubscriptionStore for RegFileWriter {
    type Error = String;
    fn set_dword(&mut self, key: &str, name: &str, value: u32) -> Result<(), String> {
        self.text.push_str(&format!(
            "[HKEY_LOCAL_MACHINE\\{key}]\r\n\"{}\"=dword:{value:08x}\r\n\r\n",
            escape(name)
        ));
        Ok(())
    }
    fn delete_tree(&mut self, key: &str) -> Result<(), String> {
        self.text
            .push_str(&format!("[-HKEY_LOCAL_MACHINE\\{key}]\r\n\r\n"));
        Ok(())
    }
}

/// The live registry as a subscription store (Windows).
#[cfg(windows)]
pub struct LiveStore;

#[cfg(windows)]
impl SubscriptionStore for LiveStore {
    type Error = String;
    fn set_dword(&mut self, key: &str, name: &str, value: u32) -> Result<(), String> {
        crate::live::set_dword(key, name, value)
    }
    fn delete_tree(&mut self, key: &str) -> Result<(), String> {
        crate::live::delete_tree(key)
    }
}

fn describe(e: SubscriptionError<String>) -> String {
    e.to_string()
}

/// What a command asks for.
enum Request<'a> {
    Subscribe(Subscription<'a>),
    Unsubscribe(ConsumerKey<'a>),
}

fn parse(args: &[String]) -> Result<(Request<'_>, bool), String> {
    let reg = args.last().is_some_and(|a| a == "--reg");
    let args = if reg { &args[..args.len() - 1] } else { args };
    match args {
        [cmd, provider, consumer, interface, version] if cmd == "subscribe" => {
            let version: u32 = version
                .parse()
                .map_err(|_| format!("version {version:?} is not a number"))?;
            let s = Subscription::new::<String>(provider, consumer, interface, version)
                .map_err(describe)?;
            Ok((Request::Subscribe(s), reg))
        }
        [cmd, provider, consumer] if cmd == "unsubscribe" => Ok((
            Request::Unsubscribe(ConsumerKey { provider, consumer }),
            reg,
        )),
        _ => Err(crate::USAGE.to_string()),
    }
}

fn apply<S: SubscriptionStore<Error = String>>(
    store: &mut S,
    request: &Request<'_>,
) -> Result<(), String> {
    match request {
        Request::Subscribe(s) => subscribe(store, s).map_err(describe),
        Request::Unsubscribe(k) => unsubscribe_all(store, k.provider, k.consumer).map_err(describe),
    }
}

/// Runs `subscribe PROVIDER CONSUMER INTERFACE VERSION [--reg]` or
/// `unsubscribe PROVIDER CONSUMER [--reg]`; returns the exit code and output lines.
pub fn command(args: &[String]) -> (u8, Vec<String>) {
    let (request, reg) = match parse(args) {
        Ok(r) => r,
        Err(e) => return (crate::EXIT_INPUT_ERROR, vec![format!("error: {e}")]),
    };
    if reg {
        let mut writer = RegFileWriter::new();
        return match apply(&mut writer, &request) {
            Ok(()) => (crate::EXIT_COMPATIBLE, vec![writer.text]),
            Err(e) => (crate::EXIT_INPUT_ERROR, vec![format!("error: {e}")]),
        };
    }
    live(&request)
}

#[cfg(windows)]
fn live(request: &Request<'_>) -> (u8, Vec<String>) {
    match apply(&mut LiveStore, request) {
        Ok(()) => (
            crate::EXIT_COMPATIBLE,
            vec![match request {
                Request::Subscribe(s) => format!("recorded: {s}"),
                Request::Unsubscribe(k) => format!("removed HKLM\\{k}"),
            }],
        ),
        Err(e) => (crate::EXIT_INPUT_ERROR, vec![format!("error: {e}")]),
    }
}

#[cfg(not(windows))]
fn live(_request: &Request<'_>) -> (u8, Vec<String>) {
    (
        crate::EXIT_INPUT_ERROR,
        vec!["the live registry exists only on Windows; add --reg to print a REGEDIT4 file".into()],
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{check_upgrade, regfile, PackageTables};

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn printed_subscription_is_what_the_check_reads() {
        let (code, out) = command(&args(&[
            "subscribe",
            "XENBUS",
            "XENVIF",
            "EVTCHN",
            "4",
            "--reg",
        ]));
        assert_eq!(code, 0);
        assert!(out[0].contains(
            "[HKEY_LOCAL_MACHINE\\SYSTEM\\CurrentControlSet\\Services\\XENBUS\\Interfaces\\XENVIF]\r\n\"EVTCHN\"=dword:00000004"
        ));
        let registry = regfile::parse(out[0].as_bytes()).unwrap();
        let report = check_upgrade(&registry, &PackageTables::current()).unwrap();
        assert_eq!(report.vetoes.len(), 1, "{report:#?}");
        assert!(report.vetoes[0].contains("XENVIF uses XENBUS interface EVTCHN version 4"));
    }

    #[test]
    fn unsubscribe_prints_a_deletion() {
        let (code, out) = command(&args(&["unsubscribe", "XENBUS", "XENVIF", "--reg"]));
        assert_eq!(code, 0);
        assert!(out[0].contains("[-HKEY_LOCAL_MACHINE\\SYSTEM\\CurrentControlSet\\Services\\XENBUS\\Interfaces\\XENVIF]"));
        let mut text = command(&args(&[
            "subscribe",
            "XENBUS",
            "XENVIF",
            "EVTCHN",
            "4",
            "--reg",
        ]))
        .1[0]
            .clone();
        text.push_str(out[0].trim_start_matches("REGEDIT4\r\n\r\n"));
        let registry = regfile::parse(text.as_bytes()).unwrap();
        let report = check_upgrade(&registry, &PackageTables::current()).unwrap();
        assert!(report.vetoes.is_empty(), "{report:#?}");
    }

    #[test]
    fn bad_arguments() {
        for bad in [
            &["subscribe", "XENBUS", "XENVIF", "EVTCHN", "x", "--reg"][..],
            &["subscribe", "XENBUS", "XEN\\VIF", "EVTCHN", "4", "--reg"],
            &["subscribe", "XENBUS", "XENVIF", "EVTCHN", "0", "--reg"],
            &["unsubscribe", "XENBUS"],
        ] {
            assert_eq!(command(&args(bad)).0, crate::EXIT_INPUT_ERROR, "{bad:?}");
        }
    }
}
