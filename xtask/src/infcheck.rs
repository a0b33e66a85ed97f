//! `cargo xtask infcheck [FILE]`: a structural checker for the stamped package INF.
//!
//! Windows' InfVerif is not available off Windows; this checks what can be checked from the
//! text alone: encoding, every template token substituted, every referenced section and
//! string defined, no duplicate keys, valid directives and registry entries, every file
//! listed present in the package and copied, and the hardware IDs equal to the platform
//! PCI devices xenbus.sys binds to.
use std::{
    collections::{BTreeMap, BTreeSet},
    fs,
    path::{Path, PathBuf},
    process::ExitCode,
};

use crate::inf::{line_tokens, PLATFORM_DEVICE_IDS, PLATFORM_VENDOR_ID};

/// The System setup class GUID.
pub const SYSTEM_CLASS_GUID: &str = "{4d36e97d-e325-11ce-bfc1-08002be10318}";

/// What the checker compares the INF against.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Lower-case names of the files in the package directory (`None`: do not check).
    pub package_files: Option<BTreeSet<String>>,
    /// The vendor device ID the build was configured with (four hex digits) or `None`.
    pub vendor_device_id: Option<String>,
    /// The architecture decoration that must be present (`amd64`).
    pub arch: String,
}

/// One problem found in the INF.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// 1-based line number (0 = whole file).
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.line == 0 {
            write!(f, "{}", self.message)
        } else {
            write!(f, "line {}: {}", self.line, self.message)
        }
    }
}

/// One logical entry of a section: `key = values` or a bare value list.
#[derive(Clone, Debug)]
struct Entry {
    line: usize,
    key: Option<String>,
    fields: Vec<String>,
}

#[derive(Clone, Debug)]
struct Section {
    name: String,
    line: usize,
    entries: Vec<Entry>,
}

/// The parsed INF.
#[derive(Debug, Default)]
struct Inf {
    sections: Vec<Section>,
    strings: BTreeMap<String, String>,
}

impl Inf {
    fn section(&self, name: &str) -> Option<&Section> {
        self.sections
            .iter()
            .find(|s| s.name.eq_ignore_ascii_case(name))
    }
    fn has(&self, name: &str) -> bool {
        self.section(name).is_some()
    }
    /// Replaces a whole-field `%name%` by its string value.
    fn resolve(&self, field: &str) -> String {
        if field.len() > 2 && field.starts_with('%') && field.ends_with('%') {
            let name = &field[1..field.len() - 1];
            if let Some(v) = self.strings.get(&name.to_ascii_lowercase()) {
                return v.clone();
            }
        }
        field.to_string()
    }
    fn number(&self, field: &str) -> Option<u64> {
        parse_number(&self.resolve(field))
    }
}

/// Parses a decimal or `0x` hexadecimal number.
pub fn parse_number(text: &str) -> Option<u64> {
    let t = text.trim();
    if let Some(hex) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        u64::from_str_radix(hex, 16).ok()
    } else if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        t.parse().ok()
    } else {
        None
    }
}

/// Decodes an INF: UTF-16LE with BOM, or ASCII without BOM. Anything else is refused
/// because Setup reads a BOM-less INF in the system's ANSI code page.
pub fn decode(bytes: &[u8]) -> Result<String, String> {
    if let Some(body) = bytes.strip_prefix(&[0xFF, 0xFE]) {
        if body.len() & 1 == 1 {
            return Err("encoding: UTF-16LE file has an odd number of bytes".into());
        }
        let units: Vec<u16> = body
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect();
        let text = String::from_utf16(&units)
            .map_err(|_| "encoding: invalid UTF-16LE (unpaired surrogate)".to_string())?;
        if text.contains('\0') {
            return Err("encoding: NUL character in text".into());
        }
        return Ok(text);
    }
    if bytes.starts_with(&[0xEF, 0xBB, 0xBF]) {
        return Err("encoding: UTF-8 BOM; an INF must be ASCII or UTF-16LE with BOM".into());
    }
    if bytes.starts_with(&[0xFE, 0xFF]) {
        return Err("encoding: UTF-16BE; an INF must be ASCII or UTF-16LE with BOM".into());
    }
    if let Some(pos) = bytes.iter().position(|b| !b.is_ascii() || *b == 0) {
        return Err(format!(
            "encoding: byte 0x{:02X} at offset {pos} is not ASCII; non-ASCII text needs UTF-16LE with BOM",
            bytes[pos]
        ));
    }
    Ok(bytes.iter().map(|&b| b as char).collect())
}

/// Removes a `;` comment that is not inside quotes.
fn strip_comment(line: &str) -> &str {
    let mut quoted = false;
    for (i, c) in line.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ';' if !quoted => return &line[..i],
            _ => {}
        }
    }
    line
}

/// Splits on `sep` outside quotes.
fn split_outside_quotes(text: &str, sep: char, max: usize) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut quoted = false;
    let mut start = 0;
    for (i, c) in text.char_indices() {
        if c == '"' {
            quoted = !quoted;
        } else if c == sep && !quoted && parts.len() + 1 < max {
            parts.push(&text[start..i]);
            start = i + c.len_utf8();
        }
    }
    parts.push(&text[start..]);
    parts
}

/// Trims a field and removes its quotes (`""` inside quotes is a literal quote).
fn unquote(field: &str) -> String {
    let mut out = String::new();
    let mut chars = field.trim().chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        if c == '"' {
            if quoted && chars.peek() == Some(&'"') {
                out.push('"');
                chars.next();
            } else {
                quoted = !quoted;
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Parses the text into sections; syntax problems go to `findings`.
fn parse(text: &str, findings: &mut Vec<Finding>) -> Inf {
    let mut inf = Inf::default();
    let mut pending = String::new();
    let mut pending_line = 0;
    let lines: Vec<&str> = text.lines().collect();
    for (index, raw) in lines.iter().enumerate() {
        let number = index + 1;
        if pending.is_empty() {
            pending_line = number;
        }
        let body = strip_comment(raw).trim();
        if let Some(cont) = body.strip_suffix('\\') {
            pending.push_str(cont);
            continue;
        }
        pending.push_str(body);
        let logical = std::mem::take(&mut pending);
        let logical = logical.trim();
        if logical.is_empty() {
            continue;
        }
        if logical.starts_with('[') {
            match logical.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                Some(name) if !name.trim().is_empty() => {
                    let name = name.trim().to_string();
                    if inf.has(&name) {
                        findings.push(Finding {
                            line: pending_line,
                            message: format!("section [{name}] is declared twice"),
                        });
                    }
                    inf.sections.push(Section {
                        name,
                        line: pending_line,
                        entries: Vec::new(),
                    });
                }
                _ => findings.push(Finding {
                    line: pending_line,
                    message: format!("malformed section header {logical:?}"),
                }),
            }
            continue;
        }
        if logical.matches('"').count() & 1 == 1 {
            findings.push(Finding {
                line: pending_line,
                message: "unbalanced quotes".into(),
            });
        }
        let Some(section) = inf.sections.last_mut() else {
            findings.push(Finding {
                line: pending_line,
                message: "entry outside any section".into(),
            });
            continue;
        };
        let kv = split_outside_quotes(logical, '=', 2);
        let (key, values) = if kv.len() == 2 {
            (Some(unquote(kv[0])), kv[1])
        } else {
            (None, kv[0])
        };
        let fields = split_outside_quotes(values, ',', usize::MAX)
            .into_iter()
            .map(unquote)
            .collect();
        section.entries.push(Entry {
            line: pending_line,
            key,
            fields,
        });
    }
    for section in &inf.sections {
        let lname = section.name.to_ascii_lowercase();
        if lname == "strings" || lname.starts_with("strings.") {
            for e in &section.entries {
                if let Some(k) = &e.key {
                    inf.strings
                        .entry(k.to_ascii_lowercase())
                        .or_insert_with(|| e.fields.join(","));
                }
            }
        }
    }
    inf
}

/// The `%name%` references of a raw line (DIRIDs such as `%12%` and `%%` excluded).
fn string_refs(line: &str) -> Vec<String> {
    let mut refs = Vec::new();
    let parts: Vec<&str> = line.split('%').collect();
    // Between each odd pair of '%' signs sits a reference.
    let mut i = 1;
    while i + 1 < parts.len() {
        let name = parts[i];
        if !name.is_empty() && !name.bytes().all(|b| b.is_ascii_digit()) {
            refs.push(name.to_string());
        }
        i += 2;
    }
    refs
}

const DDINSTALL_DIRECTIVES: &[&str] = &[
    "copyfiles",
    "addreg",
    "delreg",
    "delfiles",
    "renfiles",
    "bitreg",
    "featurescore",
    "driverver",
    "include",
    "needs",
    "addproperty",
    "delproperty",
    "reboot",
    "addcomponent",
    "addsoftware",
];
const HW_DIRECTIVES: &[&str] = &[
    "addreg",
    "delreg",
    "bitreg",
    "include",
    "needs",
    "addproperty",
    "delproperty",
];
const SERVICE_DIRECTIVES: &[&str] = &[
    "displayname",
    "description",
    "servicetype",
    "starttype",
    "errorcontrol",
    "servicebinary",
    "loadordergroup",
    "addreg",
    "delreg",
    "bitreg",
    "dependencies",
    "startname",
    "security",
];
/// Directives that may legitimately appear more than once in one section.
const REPEATABLE: &[&str] = &[
    "copyfiles",
    "addreg",
    "delreg",
    "delfiles",
    "renfiles",
    "bitreg",
    "include",
    "needs",
    "addproperty",
    "delproperty",
    "addservice",
    "delservice",
];
const REG_ROOTS: &[&str] = &["HKR", "HKLM", "HKCU", "HKCR", "HKU"];

/// Runs every check on an INF's bytes; an empty result means it passed.
pub fn check(bytes: &[u8], opts: &Options) -> Vec<Finding> {
    let mut findings = Vec::new();
    let mut err = |line: usize, message: String| findings.push(Finding { line, message });
    let text = match decode(bytes) {
        Ok(t) => t,
        Err(e) => {
            err(0, e);
            return findings;
        }
    };
    for (i, line) in text.lines().enumerate() {
        for token in line_tokens(line) {
            err(
                i + 1,
                format!("template token @{token}@ was not substituted"),
            );
        }
    }
    let mut parse_findings = Vec::new();
    let inf = parse(&text, &mut parse_findings);
    findings.extend(parse_findings);
    let mut err = |line: usize, message: String| findings.push(Finding { line, message });

    // Strings referenced must be defined.
    for section in &inf.sections {
        let lname = section.name.to_ascii_lowercase();
        if lname == "strings" || lname.starts_with("strings.") {
            continue;
        }
        for e in &section.entries {
            let raw = format!(
                "{}={}",
                e.key.clone().unwrap_or_default(),
                e.fields.join(",")
            );
            for r in string_refs(&raw) {
                if !inf.strings.contains_key(&r.to_ascii_lowercase()) {
                    err(e.line, format!("string %{r}% is not defined in [Strings]"));
                }
            }
        }
    }

    // Duplicate keys.
    let mut models: BTreeSet<String> = BTreeSet::new();
    let mut file_lists: BTreeSet<String> = BTreeSet::new();
    let mut addreg_sections: BTreeSet<String> = BTreeSet::new();

    // [Version]
    match inf.section("Version") {
        None => err(0, "missing [Version] section".into()),
        Some(v) => check_version(&inf, v, &mut err),
    }
    if inf.strings.is_empty() {
        err(0, "missing or empty [Strings] section".into());
    }

    // [Manufacturer] → models → DDInstall.
    let mut install_sections: Vec<(String, usize)> = Vec::new();
    let mut hardware_ids: Vec<(String, usize)> = Vec::new();
    match inf.section("Manufacturer") {
        None => err(0, "missing [Manufacturer] section".into()),
        Some(m) => {
            for e in &m.entries {
                let Some(model) = e.fields.first().filter(|f| !f.is_empty()) else {
                    err(e.line, "manufacturer entry without a models section".into());
                    continue;
                };
                let decorations: Vec<&String> = e.fields.iter().skip(1).collect();
                let wanted = format!("nt{}", opts.arch.to_ascii_lowercase());
                if !decorations
                    .iter()
                    .any(|d| d.to_ascii_lowercase().starts_with(&wanted))
                {
                    err(
                        e.line,
                        format!("manufacturer entry has no NT{} decoration", opts.arch),
                    );
                }
                let mut names = vec![model.clone()];
                names.extend(decorations.iter().map(|d| format!("{model}.{d}")));
                let mut any = false;
                for name in &names {
                    if let Some(s) = inf.section(name) {
                        any = true;
                        models.insert(s.name.to_ascii_lowercase());
                        for me in &s.entries {
                            if me.key.is_none() {
                                err(me.line, "model entry without a description".into());
                            }
                            match me.fields.first() {
                                Some(inst) if !inst.is_empty() => {
                                    install_sections.push((inst.clone(), me.line))
                                }
                                _ => err(me.line, "model entry without an install section".into()),
                            }
                            for id in me.fields.iter().skip(1) {
                                hardware_ids.push((id.clone(), me.line));
                            }
                        }
                    } else if name.eq_ignore_ascii_case(&format!("{model}.NT{}", opts.arch)) {
                        err(e.line, format!("models section [{name}] does not exist"));
                    }
                }
                if !any {
                    err(
                        e.line,
                        format!("no models section for manufacturer entry {model:?}"),
                    );
                }
            }
        }
    }
    check_hardware_ids(&hardware_ids, opts, &mut err);

    // Install sections and what they reference.
    let mut referenced: BTreeSet<String> = models.clone();
    let mut copied: Vec<(String, String, usize)> = Vec::new(); // (dest, source, line)
    let mut copy_dirs: BTreeMap<String, (String, usize)> = BTreeMap::new(); // dest file → (dirid, line)
    let mut service_sections: Vec<(String, usize)> = Vec::new();
    let mut assoc_services = 0;
    let mut seen_install: BTreeSet<String> = BTreeSet::new();
    for (inst, line) in &install_sections {
        if !seen_install.insert(inst.to_ascii_lowercase()) {
            continue;
        }
        let base = inf
            .section(&format!("{inst}.NT{}", opts.arch))
            .or_else(|| inf.section(inst));
        let Some(base) = base else {
            err(*line, format!("install section [{inst}] does not exist"));
            continue;
        };
        let base_name = base.name.clone();
        referenced.insert(base_name.to_ascii_lowercase());
        check_directives(base, DDINSTALL_DIRECTIVES, &mut err);
        for e in &base.entries {
            let key = e.key.as_deref().unwrap_or("").to_ascii_lowercase();
            match key.as_str() {
                "copyfiles" => {
                    for target in &e.fields {
                        if let Some(file) = target.strip_prefix('@') {
                            copied.push((file.to_string(), file.to_string(), e.line));
                            continue;
                        }
                        let Some(list) = inf.section(target) else {
                            err(
                                e.line,
                                format!("CopyFiles section [{target}] does not exist"),
                            );
                            continue;
                        };
                        referenced.insert(list.name.to_ascii_lowercase());
                        file_lists.insert(list.name.to_ascii_lowercase());
                        let dirid = destination_dir(&inf, &list.name);
                        if dirid.is_none() {
                            err(
                                e.line,
                                format!(
                                    "no [DestinationDirs] entry for [{}] and no DefaultDestDir",
                                    list.name
                                ),
                            );
                        }
                        for fe in &list.entries {
                            let dest = fe
                                .key
                                .clone()
                                .or_else(|| fe.fields.first().cloned())
                                .unwrap_or_default();
                            let source = fe
                                .fields
                                .get(1)
                                .filter(|s| !s.is_empty())
                                .cloned()
                                .unwrap_or_else(|| dest.clone());
                            if fe.key.is_some() || dest.is_empty() {
                                err(
                                    fe.line,
                                    format!("malformed file-list entry in [{}]", list.name),
                                );
                                continue;
                            }
                            copied.push((dest.clone(), source, fe.line));
                            if let Some(d) = &dirid {
                                copy_dirs.insert(dest.to_ascii_lowercase(), (d.clone(), fe.line));
                            }
                        }
                    }
                }
                "addreg" | "delreg" => {
                    reference_registry_sections(
                        &inf,
                        e,
                        &key,
                        &mut referenced,
                        &mut addreg_sections,
                        &mut err,
                    );
                }
                "featurescore" => match e.fields.first().and_then(|f| inf.number(f)) {
                    Some(n) if n <= 0xFF => {}
                    _ => err(e.line, "FeatureScore must be a number 0..0xFF".into()),
                },
                _ => {}
            }
        }
        for (suffix, allowed) in [
            (".HW", HW_DIRECTIVES),
            (
                ".Services",
                &["addservice", "delservice", "include", "needs"][..],
            ),
        ] {
            let Some(s) = inf.section(&format!("{base_name}{suffix}")) else {
                continue;
            };
            referenced.insert(s.name.to_ascii_lowercase());
            check_directives(s, allowed, &mut err);
            for e in &s.entries {
                let key = e.key.as_deref().unwrap_or("").to_ascii_lowercase();
                if key == "addreg" || key == "delreg" {
                    reference_registry_sections(
                        &inf,
                        e,
                        &key,
                        &mut referenced,
                        &mut addreg_sections,
                        &mut err,
                    );
                }
                if key == "addservice" {
                    let name = e.fields.first().cloned().unwrap_or_default();
                    if name.is_empty() {
                        err(e.line, "AddService without a service name".into());
                    }
                    let flags = match e.fields.get(1).map(String::as_str) {
                        None | Some("") => 0,
                        Some(f) => match inf.number(f) {
                            Some(n) => n,
                            None => {
                                err(e.line, format!("AddService flags {f:?} are not a number"));
                                0
                            }
                        },
                    };
                    if flags & 0x2 != 0 {
                        assoc_services += 1;
                    }
                    match e.fields.get(2).filter(|s| !s.is_empty()) {
                        None => err(
                            e.line,
                            format!("AddService {name} has no service-install section"),
                        ),
                        Some(sec) => match inf.section(sec) {
                            Some(t) => {
                                referenced.insert(t.name.to_ascii_lowercase());
                                service_sections.push((t.name.clone(), e.line));
                            }
                            None => err(
                                e.line,
                                format!("service-install section [{sec}] does not exist"),
                            ),
                        },
                    }
                    if let Some(ev) = e.fields.get(3).filter(|s| !s.is_empty()) {
                        match inf.section(ev) {
                            Some(t) => {
                                referenced.insert(t.name.to_ascii_lowercase());
                            }
                            None => err(e.line, format!("event-log section [{ev}] does not exist")),
                        }
                    }
                }
            }
        }
    }
    if !install_sections.is_empty() && assoc_services != 1 {
        err(
            0,
            format!("expected exactly one AddService with SPSVCINST_ASSOCSERVICE (0x2), found {assoc_services}"),
        );
    }

    // Service-install sections.
    for (name, _) in &service_sections {
        let Some(s) = inf.section(name) else { continue };
        check_directives(s, SERVICE_DIRECTIVES, &mut err);
        let get = |k: &str| {
            s.entries
                .iter()
                .find(|e| e.key.as_deref().is_some_and(|x| x.eq_ignore_ascii_case(k)))
        };
        let mut service_type = None;
        for k in ["ServiceType", "StartType", "ErrorControl"] {
            match get(k) {
                None => err(s.line, format!("[{name}] has no {k}")),
                Some(e) => match e.fields.first().and_then(|f| inf.number(f)) {
                    None => err(e.line, format!("{k} is not a number")),
                    Some(v) => {
                        let ok = match k {
                            "ServiceType" => {
                                service_type = Some(v);
                                matches!(v, 0x1 | 0x2 | 0x10 | 0x20)
                            }
                            "StartType" => v <= 4,
                            _ => v <= 3,
                        };
                        if !ok {
                            err(e.line, format!("{k}={v:#x} is not a valid value"));
                        }
                        if k == "StartType" && v <= 1 && matches!(service_type, Some(0x10 | 0x20)) {
                            err(
                                e.line,
                                "a Win32 service cannot be boot or system start".into(),
                            );
                        }
                    }
                },
            }
        }
        match get("ServiceBinary") {
            None => err(s.line, format!("[{name}] has no ServiceBinary")),
            Some(e) => {
                let path = e.fields.first().cloned().unwrap_or_default();
                let (dirid, file) = match path.strip_prefix('%').and_then(|p| p.split_once("%\\")) {
                    Some((d, f)) => (d.to_string(), f.to_ascii_lowercase()),
                    None => {
                        err(
                            e.line,
                            format!("ServiceBinary {path:?} is not %DIRID%\\file"),
                        );
                        continue;
                    }
                };
                match copy_dirs.get(&file) {
                    None => err(
                        e.line,
                        format!("ServiceBinary {path:?} is not copied by any CopyFiles"),
                    ),
                    Some((d, _)) if *d != dirid => err(
                        e.line,
                        format!("ServiceBinary {path:?} is copied to DIRID {d}, not {dirid}"),
                    ),
                    Some(_) => {}
                }
            }
        }
        for e in &s.entries {
            let key = e.key.as_deref().unwrap_or("").to_ascii_lowercase();
            if key == "addreg" || key == "delreg" {
                reference_registry_sections(
                    &inf,
                    e,
                    &key,
                    &mut referenced,
                    &mut addreg_sections,
                    &mut err,
                );
            }
        }
    }

    // Registry sections.
    for name in &addreg_sections {
        if let Some(s) = inf.section(name) {
            check_addreg(&inf, s, &mut err);
        }
    }

    // Files.
    check_files(&inf, &copied, opts, &mut err);
    if let Some(d) = inf.section("DestinationDirs") {
        for e in &d.entries {
            let key = e.key.clone().unwrap_or_default();
            if !key.eq_ignore_ascii_case("DefaultDestDir") && !inf.has(&key) {
                err(
                    e.line,
                    format!("[DestinationDirs] names missing section [{key}]"),
                );
            }
            if e.fields.first().and_then(|f| inf.number(f)).is_none() {
                err(
                    e.line,
                    "DestinationDirs entry without a numeric DIRID".into(),
                );
            }
        }
    }

    // Duplicate keys and unreferenced sections.
    for s in &inf.sections {
        let lname = s.name.to_ascii_lowercase();
        let is_strings = lname == "strings" || lname.starts_with("strings.");
        let standard = [
            "version",
            "manufacturer",
            "destinationdirs",
            "sourcedisksnames",
            "sourcedisksfiles",
        ]
        .iter()
        .any(|n| lname == *n || lname.starts_with(&format!("{n}.")));
        if !(is_strings || standard || referenced.contains(&lname)) {
            err(s.line, format!("section [{}] is never referenced", s.name));
        }
        if models.contains(&lname)
            || file_lists.contains(&lname)
            || addreg_sections.contains(&lname)
        {
            continue;
        }
        let mut seen: BTreeMap<String, usize> = BTreeMap::new();
        for e in &s.entries {
            let Some(k) = &e.key else { continue };
            let lk = k.to_ascii_lowercase();
            if REPEATABLE.contains(&lk.as_str()) && !is_strings {
                if lk == "addservice" {
                    let svc = e
                        .fields
                        .first()
                        .cloned()
                        .unwrap_or_default()
                        .to_ascii_lowercase();
                    if let Some(first) = seen.insert(format!("addservice:{svc}"), e.line) {
                        err(
                            e.line,
                            format!("service {svc} is added twice (first on line {first})"),
                        );
                    }
                }
                continue;
            }
            if let Some(first) = seen.insert(lk, e.line) {
                err(
                    e.line,
                    format!(
                        "duplicate key {k:?} in [{}] (first on line {first})",
                        s.name
                    ),
                );
            }
        }
    }
    findings
}

/// Records the sections an `AddReg`/`DelReg` directive names; reports missing ones.
fn reference_registry_sections(
    inf: &Inf,
    e: &Entry,
    key: &str,
    referenced: &mut BTreeSet<String>,
    registry_sections: &mut BTreeSet<String>,
    err: &mut impl FnMut(usize, String),
) {
    for target in &e.fields {
        match inf.section(target) {
            Some(t) => {
                referenced.insert(t.name.to_ascii_lowercase());
                registry_sections.insert(t.name.to_ascii_lowercase());
            }
            None => err(e.line, format!("{key} section [{target}] does not exist")),
        }
    }
}

fn check_version(inf: &Inf, v: &Section, err: &mut impl FnMut(usize, String)) {
    let get = |k: &str| {
        v.entries
            .iter()
            .find(|e| e.key.as_deref().is_some_and(|x| x.eq_ignore_ascii_case(k)))
    };
    match get("Signature") {
        Some(e)
            if e.fields
                .first()
                .is_some_and(|s| s.eq_ignore_ascii_case("$Windows NT$")) => {}
        Some(e) => err(e.line, "Signature must be \"$Windows NT$\"".into()),
        None => err(v.line, "[Version] has no Signature".into()),
    }
    let class = get("Class").and_then(|e| e.fields.first().cloned());
    match (&class, get("ClassGUID")) {
        (None, _) => err(v.line, "[Version] has no Class".into()),
        (_, None) => err(v.line, "[Version] has no ClassGUID".into()),
        (Some(c), Some(g)) => {
            let guid = g.fields.first().cloned().unwrap_or_default();
            if !is_guid(&guid) {
                err(
                    g.line,
                    format!("ClassGUID {guid:?} is not a GUID in braces"),
                );
            } else if c.eq_ignore_ascii_case("System")
                && !guid.eq_ignore_ascii_case(SYSTEM_CLASS_GUID)
            {
                err(
                    g.line,
                    format!("Class=System needs ClassGUID {SYSTEM_CLASS_GUID}"),
                );
            }
        }
    }
    if get("Provider").is_none_or(|e| {
        inf.resolve(e.fields.first().map(String::as_str).unwrap_or(""))
            .is_empty()
    }) {
        err(v.line, "[Version] has no Provider".into());
    }
    match get("CatalogFile") {
        Some(e)
            if e.fields
                .first()
                .is_some_and(|c| c.to_ascii_lowercase().ends_with(".cat") && !c.contains('\\')) => {
        }
        Some(e) => err(e.line, "CatalogFile must be a plain *.cat file name".into()),
        None => err(v.line, "[Version] has no CatalogFile".into()),
    }
    match get("DriverVer") {
        None => err(v.line, "[Version] has no DriverVer".into()),
        Some(e) => {
            if let Err(m) = check_driver_ver(&e.fields) {
                err(e.line, m);
            }
        }
    }
    match get("PnpLockdown") {
        Some(e) if e.fields.first().map(String::as_str) == Some("1") => {}
        Some(e) => err(e.line, "PnpLockdown must be 1".into()),
        None => err(v.line, "[Version] has no PnpLockdown=1".into()),
    }
}

fn check_driver_ver(fields: &[String]) -> Result<(), String> {
    let [date, version] = fields else {
        return Err("DriverVer must be MM/DD/YYYY,w.x.y.z".into());
    };
    let parts: Vec<&str> = date.split('/').collect();
    let nums: Vec<Option<u32>> = parts.iter().map(|p| p.parse().ok()).collect();
    match nums.as_slice() {
        [Some(m), Some(d), Some(y)]
            if parts[2].len() == 4
                && (1..=12).contains(m)
                && (1..=31).contains(d)
                && *y >= 1990 => {}
        _ => return Err(format!("DriverVer date {date:?} is not MM/DD/YYYY")),
    }
    let v: Vec<Option<u16>> = version.split('.').map(|p| p.parse().ok()).collect();
    if v.is_empty() || v.len() > 4 || v.iter().any(Option::is_none) {
        return Err(format!(
            "DriverVer version {version:?} is not w.x.y.z with each part <= 65535"
        ));
    }
    Ok(())
}

fn is_guid(text: &str) -> bool {
    let Some(inner) = text.strip_prefix('{').and_then(|t| t.strip_suffix('}')) else {
        return false;
    };
    let groups: Vec<&str> = inner.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn check_directives(s: &Section, allowed: &[&str], err: &mut impl FnMut(usize, String)) {
    for e in &s.entries {
        match &e.key {
            None => err(e.line, format!("entry without a directive in [{}]", s.name)),
            Some(k) if !allowed.contains(&k.to_ascii_lowercase().as_str()) => {
                err(e.line, format!("unknown directive {k:?} in [{}]", s.name))
            }
            Some(_) => {}
        }
    }
}

fn destination_dir(inf: &Inf, list: &str) -> Option<String> {
    let d = inf.section("DestinationDirs")?;
    let find = |k: &str| {
        d.entries
            .iter()
            .find(|e| e.key.as_deref().is_some_and(|x| x.eq_ignore_ascii_case(k)))
            .and_then(|e| e.fields.first().cloned())
    };
    find(list).or_else(|| find("DefaultDestDir"))
}

fn check_addreg(inf: &Inf, s: &Section, err: &mut impl FnMut(usize, String)) {
    let mut seen: BTreeMap<(String, String, String), usize> = BTreeMap::new();
    for e in &s.entries {
        if e.key.is_some() {
            err(
                e.line,
                format!("registry entry in [{}] must not be key=value", s.name),
            );
            continue;
        }
        let root = e.fields.first().cloned().unwrap_or_default();
        if !REG_ROOTS.contains(&root.to_ascii_uppercase().as_str()) {
            err(
                e.line,
                format!("registry root {root:?} is not one of {REG_ROOTS:?}"),
            );
            continue;
        }
        let subkey = inf.resolve(e.fields.get(1).map(String::as_str).unwrap_or(""));
        let name = inf.resolve(e.fields.get(2).map(String::as_str).unwrap_or(""));
        let flags = match e.fields.get(3).map(String::as_str) {
            None | Some("") => 0,
            Some(f) => match inf.number(f) {
                Some(n) => n,
                None => {
                    err(e.line, format!("registry flags {f:?} are not a number"));
                    continue;
                }
            },
        };
        let values = &e.fields[e.fields.len().min(4)..];
        let type_bits = flags & 0xFFFF_0001;
        if flags & 0x10 != 0 {
            if !values.is_empty() {
                err(
                    e.line,
                    "FLG_ADDREG_KEYONLY entry must not have a value".into(),
                );
            }
        } else if type_bits == 0x0001_0001 {
            if values.len() != 1
                || inf
                    .number(&values[0])
                    .is_none_or(|n| n > u64::from(u32::MAX))
            {
                err(
                    e.line,
                    format!("REG_DWORD value {name:?} needs exactly one 32-bit number"),
                );
            }
        } else if flags & 0x0001_0000 != 0 && type_bits == 0x0001_0000 && values.is_empty() {
            err(
                e.line,
                format!("REG_MULTI_SZ value {name:?} has no strings"),
            );
        }
        if flags & 0x10 == 0 {
            let key = (
                root.to_ascii_uppercase(),
                subkey.to_ascii_lowercase(),
                name.to_ascii_lowercase(),
            );
            if let Some(first) = seen.insert(key, e.line) {
                if flags & 0x8 == 0 {
                    err(
                        e.line,
                        format!("duplicate registry value {root}\\{subkey}\\{name} (first on line {first})"),
                    );
                }
            }
        }
    }
}

fn check_files(
    inf: &Inf,
    copied: &[(String, String, usize)],
    opts: &Options,
    err: &mut impl FnMut(usize, String),
) {
    let disks: BTreeSet<String> = inf
        .sections
        .iter()
        .filter(|s| s.name.to_ascii_lowercase().starts_with("sourcedisksnames"))
        .flat_map(|s| s.entries.iter().filter_map(|e| e.key.clone()))
        .collect();
    if disks.is_empty() {
        err(0, "missing or empty [SourceDisksNames] section".into());
    }
    let mut files: BTreeMap<String, usize> = BTreeMap::new();
    for s in inf
        .sections
        .iter()
        .filter(|s| s.name.to_ascii_lowercase().starts_with("sourcedisksfiles"))
    {
        for e in &s.entries {
            let Some(file) = &e.key else {
                err(e.line, "SourceDisksFiles entry is not file=disk".into());
                continue;
            };
            let disk = e.fields.first().cloned().unwrap_or_default();
            if !disks.contains(&disk) {
                err(
                    e.line,
                    format!("{file} is on disk {disk:?}, which [SourceDisksNames] does not define"),
                );
            }
            if let Some(package) = &opts.package_files {
                if !package.contains(&file.to_ascii_lowercase()) {
                    err(
                        e.line,
                        format!("{file} is listed but missing from the package"),
                    );
                }
            }
            files.insert(file.to_ascii_lowercase(), e.line);
        }
    }
    let mut used: BTreeSet<String> = BTreeSet::new();
    for (dest, source, line) in copied {
        let src = source.to_ascii_lowercase();
        if !files.contains_key(&src) {
            err(
                *line,
                format!("{source} (copied as {dest}) is not in [SourceDisksFiles]"),
            );
        }
        used.insert(src);
    }
    for (file, line) in &files {
        if !used.contains(file) {
            err(
                *line,
                format!("{file} is listed in [SourceDisksFiles] but never copied"),
            );
        }
    }
}

/// Parses `PCI\VEN_xxxx&DEV_xxxx[&SUBSYS_xxxxxxxx][&REV_xx]` into (vendor, device, rest).
fn parse_pci_id(id: &str) -> Option<(u16, u16, String)> {
    let rest = id.strip_prefix("PCI\\VEN_")?;
    let (ven, rest) = rest.split_at_checked(4)?;
    let rest = rest.strip_prefix("&DEV_")?;
    let (dev, rest) = rest.split_at_checked(4)?;
    let hex = |s: &str| {
        if s.bytes()
            .all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b))
        {
            u16::from_str_radix(s, 16).ok()
        } else {
            None
        }
    };
    Some((hex(ven)?, hex(dev)?, rest.to_string()))
}

/// The hardware IDs must be exactly the platform PCI devices xenbus.sys binds to.
fn check_hardware_ids(
    ids: &[(String, usize)],
    opts: &Options,
    err: &mut impl FnMut(usize, String),
) {
    let mut devices: BTreeMap<u16, usize> = BTreeMap::new();
    let vendor_device = opts
        .vendor_device_id
        .as_deref()
        .and_then(|v| u16::from_str_radix(v, 16).ok());
    for (id, line) in ids {
        let Some((ven, dev, rest)) = parse_pci_id(id) else {
            err(
                *line,
                format!("hardware ID {id:?} is not PCI\\VEN_xxxx&DEV_xxxx (upper-case hex)"),
            );
            continue;
        };
        // Ask the driver itself: FdoCreate refuses any other PCI vendor.
        if ven != PLATFORM_VENDOR_ID || xenbus::fdo::check_platform_vendor(ven).is_err() {
            err(*line, format!("hardware ID {id:?}: vendor {ven:04X} is not the Xen platform vendor {PLATFORM_VENDOR_ID:04X}"));
            continue;
        }
        if let Some(first) = devices.insert(dev, *line) {
            err(
                *line,
                format!("hardware ID for device {dev:04X} listed twice (first on line {first})"),
            );
        }
        if PLATFORM_DEVICE_IDS.contains(&dev) {
            if !rest.is_empty() {
                err(*line, format!("hardware ID {id:?}: the generic platform device is matched without SUBSYS/REV"));
            }
        } else if Some(dev) == vendor_device {
            let want = format!(
                "&SUBSYS_{dev:04X}{PLATFORM_VENDOR_ID:04X}&REV_{:02X}",
                xen_include::platform::XEN_PLATFORM_VENDOR_DEVICE_REVISION
            );
            if rest != want {
                err(*line, format!("hardware ID {id:?}: the vendor device must be matched as ...&DEV_{dev:04X}{want}"));
            }
        } else {
            err(
                *line,
                format!(
                    "hardware ID {id:?}: device {dev:04X} is not a platform device xenbus accepts"
                ),
            );
        }
    }
    let mut expected: Vec<u16> = PLATFORM_DEVICE_IDS.to_vec();
    expected.extend(vendor_device);
    for dev in expected {
        if !devices.contains_key(&dev) {
            err(0, format!("no model entry for the platform device PCI\\VEN_{PLATFORM_VENDOR_ID:04X}&DEV_{dev:04X}"));
        }
    }
}

/// Lists a package directory's files (lower-case names).
pub fn package_files(dir: &Path) -> Result<BTreeSet<String>, String> {
    let entries = fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    Ok(entries
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .map(|e| e.file_name().to_string_lossy().to_ascii_lowercase())
        .collect())
}

/// Checks one INF file against its directory's contents; prints every finding.
pub fn check_file(path: &Path, vendor_device_id: Option<String>) -> Result<(), Vec<String>> {
    let bytes = fs::read(path).map_err(|e| vec![format!("{}: {e}", path.display())])?;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let opts = Options {
        package_files: Some(package_files(dir).map_err(|e| vec![e])?),
        vendor_device_id,
        arch: "amd64".into(),
    };
    let findings = check(&bytes, &opts);
    if findings.is_empty() {
        Ok(())
    } else {
        Err(findings
            .iter()
            .map(|f| format!("{}: {f}", path.display()))
            .collect())
    }
}

/// `cargo xtask infcheck [--vendor-device-id XXXX|--no-vendor-device] [FILE]`
/// (default `target/dist/xenbus/x64/xenbus.inf`).
pub fn main(args: &[String]) -> ExitCode {
    let mut vendor = xenbus_rs::VENDOR_DEVICE_ID.map(str::to_string);
    let mut file: Option<PathBuf> = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--vendor-device-id" => match it.next() {
                Some(v) => vendor = Some(v.to_ascii_uppercase()),
                None => {
                    eprintln!("infcheck: --vendor-device-id needs a value");
                    return ExitCode::from(2);
                }
            },
            "--no-vendor-device" => vendor = None,
            other if file.is_none() => file = Some(PathBuf::from(other)),
            other => {
                eprintln!("infcheck: unexpected argument {other:?}");
                return ExitCode::from(2);
            }
        }
    }
    let file = file.unwrap_or_else(|| {
        crate::inf::workspace_root()
            .join("target/dist/xenbus/x64")
            .join(crate::inf::INF_NAME)
    });
    match check_file(&file, vendor) {
        Ok(()) => {
            println!("infcheck: {}: ok", file.display());
            ExitCode::SUCCESS
        }
        Err(lines) => {
            for l in &lines {
                eprintln!("infcheck: {l}");
            }
            eprintln!("infcheck: {} problem(s)", lines.len());
            ExitCode::from(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inf::{stamp, tests as inf_tests};

    fn package() -> BTreeSet<String> {
        [
            "xen.sys",
            "xenbus.sys",
            "xenfilt.sys",
            "xenbus_monitor.exe",
            "xenbus.inf",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    }

    fn opts(vendor: Option<&str>) -> Options {
        Options {
            package_files: Some(package()),
            vendor_device_id: vendor.map(str::to_string),
            arch: "amd64".into(),
        }
    }

    fn good(vendor: Option<&str>, force: bool) -> String {
        let mut cfg = inf_tests::config();
        cfg.vendor_device_id = vendor.map(str::to_string);
        cfg.force_activate = force.then(|| "1".to_string());
        stamp(&inf_tests::template(), &cfg).unwrap()
    }

    fn utf16(text: &str) -> Vec<u8> {
        let mut out = vec![0xFF, 0xFE];
        for u in text.encode_utf16() {
            out.extend_from_slice(&u.to_le_bytes());
        }
        out
    }

    #[test]
    fn every_template_variant_passes() {
        for vendor in [None, Some("C000")] {
            for force in [false, true] {
                let text = good(vendor, force);
                let f = check(text.as_bytes(), &opts(vendor));
                assert!(f.is_empty(), "vendor {vendor:?} force {force}: {f:#?}");
                let f = check(&utf16(&text), &opts(vendor));
                assert!(
                    f.is_empty(),
                    "UTF-16 vendor {vendor:?} force {force}: {f:#?}"
                );
            }
        }
    }

    /// Each broken INF must be rejected with a finding containing the expected text.
    #[test]
    fn broken_infs_are_rejected() {
        let base = good(None, false);
        let cases: &[(&str, &str, &str, &str)] = &[
            ("unsubstituted token", "PnpLockdown=1", "PnpLockdown=@PNP@", "@PNP@ was not substituted"),
            ("no PnpLockdown", "PnpLockdown=1\r\n", "", "no PnpLockdown=1"),
            ("PnpLockdown 0", "PnpLockdown=1", "PnpLockdown=0", "PnpLockdown must be 1"),
            ("missing models section", "[Inst.NTamd64]", "[Inst.NTx86]", "models section [Inst.NTamd64] does not exist"),
            ("missing install section", "[XenBus_Inst]\r\n", "[XenBus_Install]\r\n", "install section [XenBus_Inst] does not exist"),
            ("missing service section", "AddService=xenfilt,,XenFilt_Service", "AddService=xenfilt,,XenFilt_Svc", "[XenFilt_Svc] does not exist"),
            ("missing AddReg section", "AddReg=XenBus_Unplug", "AddReg=XenBus_Unplugged", "[XenBus_Unplugged] does not exist"),
            ("missing CopyFiles section", "CopyFiles=Monitor_CopyFiles", "CopyFiles=Monitor_Files", "[Monitor_Files] does not exist"),
            ("undefined string", "DisplayName=%XenFiltName%", "DisplayName=%XenFilterName%", "%XenFilterName% is not defined"),
            ("duplicate version key", "Class=System\r\n", "Class=System\r\nClass=System\r\n", "duplicate key \"Class\""),
            ("duplicate string", "Vendor=\"Xen Project\"\r\n", "Vendor=\"Xen Project\"\r\nVendor=\"Other\"\r\n", "duplicate key \"Vendor\""),
            ("duplicate registry value", "HKLM,%UnplugKey%,\"NICS\",0x00010001,0\r\n", "HKLM,%UnplugKey%,\"NICS\",0x00010001,0\r\nHKLM,%UnplugKey%,\"NICS\",0x00010001,1\r\n", "duplicate registry value"),
            ("duplicate service", "AddService=xenfilt,,XenFilt_Service\r\n", "AddService=xenfilt,,XenFilt_Service\r\nAddService=xenfilt,,XenFilt_Service\r\n", "added twice"),
            ("duplicate section", "[Strings]", "[XenBus_Unplug]\r\n[Strings]", "declared twice"),
            ("unknown directive", "FeatureScore=0xFE", "FeatureScore=0xFE\r\nCopyFile=Drivers_CopyFiles", "unknown directive \"CopyFile\""),
            ("bad service type", "ServiceType=%SERVICE_WIN32_OWN_PROCESS%", "ServiceType=7", "ServiceType=0x7"),
            ("win32 boot start", "StartType=%SERVICE_AUTO_START%", "StartType=0", "Win32 service cannot be boot"),
            ("file not in package", "xenbus_monitor.exe=1", "xenbus_monitor.exe=1\r\nxenvif.sys=1", "xenvif.sys is listed but missing from the package"),
            ("copied file not listed", "xenfilt.sys=1\r\n", "", "xenfilt.sys (copied as xenfilt.sys) is not in [SourceDisksFiles]"),
            ("unknown disk", "xen.sys=1", "xen.sys=2", "disk \"2\""),
            ("service binary not copied", "ServiceBinary=%12%\\xenfilt.sys", "ServiceBinary=%12%\\xenfilter.sys", "not copied by any CopyFiles"),
            ("service binary wrong dir", "ServiceBinary=%11%\\xenbus_monitor", "ServiceBinary=%12%\\xenbus_monitor", "copied to DIRID 11, not 12"),
            ("foreign vendor", "PCI\\VEN_5853&DEV_0002\r\n", "PCI\\VEN_8086&DEV_0002\r\n", "not the Xen platform vendor"),
            ("unknown device", "PCI\\VEN_5853&DEV_0002\r\n", "PCI\\VEN_5853&DEV_0003\r\n", "device 0003 is not a platform device"),
            ("missing device", "%XenBusName%=XenBus_Inst,PCI\\VEN_5853&DEV_0001\r\n", "", "no model entry for the platform device PCI\\VEN_5853&DEV_0001"),
            ("bad DriverVer date", "DriverVer=12/04/2026", "DriverVer=2026-12-04", "not MM/DD/YYYY"),
            ("bad DriverVer version", "2026,9.1.0.42", "2026,9.1.0.70000", "w.x.y.z"),
            ("wrong class GUID", "ClassGUID={4d36e97d", "ClassGUID={4d36e97e", "Class=System needs ClassGUID"),
            ("DWORD not a number", "\"MSISupported\",0x00010001,1", "\"MSISupported\",0x00010001,yes", "REG_DWORD value"),
            ("bad registry root", "HKLM,%UnplugKey%,\"DISKS\"", "HKXX,%UnplugKey%,\"DISKS\"", "registry root \"HKXX\""),
            ("no associated service", "AddService=xenbus,%SPSVCINST_ASSOCSERVICE%", "AddService=xenbus,0", "exactly one AddService"),
            ("unreferenced section", "[Strings]", "[Orphan]\r\nHKR,,x,0,1\r\n[Strings]", "[Orphan] is never referenced"),
            ("unbalanced quotes", "LoadOrderGroup=\"Boot Bus Extender\"\r\nAddReg=XenBus_Parameters", "LoadOrderGroup=\"Boot Bus Extender\r\nAddReg=XenBus_Parameters", "unbalanced quotes"),
            ("no arch decoration", "%Vendor%=Inst,NTamd64", "%Vendor%=Inst", "no NTamd64 decoration"),
        ];
        for (what, from, to, expect) in cases {
            assert!(base.contains(from), "{what}: base lacks {from:?}");
            let broken = base.replacen(from, to, 1);
            let findings = check(broken.as_bytes(), &opts(None));
            assert!(
                findings.iter().any(|f| f.message.contains(expect)),
                "{what}: expected {expect:?}, got {findings:#?}"
            );
        }
    }

    #[test]
    fn vendor_device_must_match_the_build() {
        let with = good(Some("C000"), false);
        let f = check(with.as_bytes(), &opts(None));
        assert!(
            f.iter()
                .any(|f| f.message.contains("device C000 is not a platform device")),
            "{f:#?}"
        );
        let without = good(None, false);
        let f = check(without.as_bytes(), &opts(Some("C000")));
        assert!(f.iter().any(|f| f.message.contains("DEV_C000")), "{f:#?}");
        let wrong = with.replace("SUBSYS_C0005853&REV_01", "SUBSYS_C0005853&REV_02");
        let f = check(wrong.as_bytes(), &opts(Some("C000")));
        assert!(
            f.iter()
                .any(|f| f.message.contains("vendor device must be matched")),
            "{f:#?}"
        );
    }

    #[test]
    fn encodings() {
        let text = good(None, false);
        let mut utf8_bom = vec![0xEF, 0xBB, 0xBF];
        utf8_bom.extend_from_slice(text.as_bytes());
        assert!(check(&utf8_bom, &opts(None))[0]
            .message
            .contains("UTF-8 BOM"));
        let latin = text.replace("Xen Project\"", "Xén Project\"");
        assert!(check(latin.as_bytes(), &opts(None))[0]
            .message
            .contains("not ASCII"));
        let mut odd = utf16(&text);
        odd.push(0);
        assert!(check(&odd, &opts(None))[0].message.contains("odd number"));
        // Non-ASCII text is fine in UTF-16LE.
        assert!(check(&utf16(&latin), &opts(None)).is_empty());
    }

    #[test]
    fn package_check_can_be_skipped_and_file_check_reads_the_directory() {
        let text = good(None, false);
        let mut o = opts(None);
        o.package_files = None;
        assert!(check(text.as_bytes(), &o).is_empty());
        let dir = std::env::temp_dir().join(format!("xtask-infcheck-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("xenbus.inf"), &text).unwrap();
        for f in ["xen.sys", "xenbus.sys", "xenfilt.sys"] {
            fs::write(dir.join(f), b"MZ").unwrap();
        }
        let e = check_file(&dir.join("xenbus.inf"), None).unwrap_err();
        assert_eq!(e.len(), 1, "{e:#?}");
        assert!(e[0].contains("xenbus_monitor.exe is listed but missing"));
        fs::write(dir.join("xenbus_monitor.exe"), b"MZ").unwrap();
        check_file(&dir.join("xenbus.inf"), None).unwrap();
        fs::remove_dir_all(&dir).unwrap();
    }
}
