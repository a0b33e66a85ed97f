//! C metadata of the interface definitions, and the renderer of `include/c/*.h` from it.
//!
//! The Rust macros that define vtables, enums, handles and callback types also record
//! their C spelling and their Rust offsets here, so the generated C headers (and the
//! layout probe compiled by the tests) come from the one definition.

use core::fmt::{self, Write};

use crate::guid::Guid;

/// A C function-pointer typedef: `typedef RET (*NAME)(PARAMS);`.
#[derive(Debug)]
pub struct CFnTypedef {
    /// Typedef name, e.g. `XENBUS_STORE_READ`.
    pub name: &'static str,
    /// Return type, e.g. `NTSTATUS`.
    pub ret: &'static str,
    /// Parameters as written in C, e.g. `_In_ PINTERFACE Interface`.
    pub params: &'static [&'static str],
    /// True when the parameter list ends with `...`.
    pub variadic: bool,
}

/// One slot of a C struct.
#[derive(Debug)]
pub struct CMember {
    /// C type of the slot.
    pub c_type: &'static str,
    /// C member name.
    pub name: &'static str,
    /// Byte offset in the Rust definition.
    pub offset: usize,
}

/// A C struct (`struct _NAME { ... };`), a vtable or a plain data struct.
#[derive(Debug)]
pub struct CStruct {
    /// Type name without leading underscore, e.g. `XENBUS_STORE_INTERFACE_V2`.
    pub name: &'static str,
    /// Emit `typedef struct _NAME { } NAME, *PNAME;` (true) or a bare `struct _NAME { };`.
    pub typedef: bool,
    /// `sizeof` in the Rust definition.
    pub size: usize,
    /// Members in declaration order.
    pub members: &'static [CMember],
}

/// A C enum: `typedef enum _NAME { A = 0, ... } NAME[, *PNAME];`.
#[derive(Debug)]
pub struct CEnum {
    /// Type name, e.g. `XENBUS_EVTCHN_TYPE`.
    pub name: &'static str,
    /// Also emit the `*PNAME` pointer typedef.
    pub pointer_typedef: bool,
    /// Enumerators in order.
    pub values: &'static [(&'static str, i64)],
}

/// One item of a header, in emission order.
#[derive(Debug)]
pub enum CItem {
    /// `#define NAME VALUE`.
    Define(&'static str, &'static str),
    /// `typedef struct _NAME NAME, *PNAME;` (an opaque handle).
    Opaque(&'static str),
    /// An enum.
    Enum(&'static CEnum),
    /// A data struct.
    Struct(&'static CStruct),
    /// A function-pointer typedef.
    FnTypedef(&'static CFnTypedef),
    /// `DEFINE_GUID(NAME, ...)`.
    Guid(&'static str, Guid),
    /// A versioned interface struct.
    Vtable(&'static CStruct),
}

/// One generated interface header.
#[derive(Debug)]
pub struct CHeader {
    /// File name, e.g. `store_interface.h`.
    pub file: &'static str,
    /// Include guard, e.g. `_XENBUS_STORE_INTERFACE_H`.
    pub guard: &'static str,
    /// One-line description for the file comment.
    pub description: &'static str,
    /// Headers included first (`#include <cache_interface.h>`).
    pub includes: &'static [&'static str],
    /// Items inside `#ifndef _WINDLL`, in order.
    pub items: &'static [CItem],
    /// The latest version's struct, aliased as the unversioned name.
    pub latest: &'static str,
    /// The unversioned name, e.g. `XENBUS_STORE_INTERFACE`.
    pub alias: &'static str,
    /// The method-call macro name and member prefix, e.g. (`XENBUS_STORE`, `Store`).
    pub method_macro: (&'static str, &'static str),
    /// Name prefix of the version macros, e.g. `XENBUS_STORE_INTERFACE_VERSION`.
    pub version_prefix: &'static str,
    /// (MIN, MAX).
    pub versions: (u16, u16),
}

fn write_struct_body<W: Write + ?Sized>(out: &mut W, s: &CStruct) -> fmt::Result {
    let width = s.members.iter().map(|m| m.c_type.len()).max().unwrap_or(0);
    for m in s.members {
        writeln!(out, "    {:<width$} {};", m.c_type, m.name)?;
    }
    Ok(())
}

fn write_item<W: Write + ?Sized>(out: &mut W, item: &CItem) -> fmt::Result {
    match item {
        CItem::Define(name, value) => writeln!(out, "#define {name} {value}\n"),
        CItem::Opaque(name) => writeln!(out, "typedef struct _{name} {name}, *P{name};\n"),
        CItem::Enum(e) => {
            writeln!(out, "typedef enum _{} {{", e.name)?;
            for (i, (n, v)) in e.values.iter().enumerate() {
                let sep = if i + 1 == e.values.len() { "" } else { "," };
                writeln!(out, "    {n} = {v}{sep}")?;
            }
            if e.pointer_typedef {
                writeln!(out, "}} {}, *P{};\n", e.name, e.name)
            } else {
                writeln!(out, "}} {};\n", e.name)
            }
        }
        CItem::Struct(s) => {
            writeln!(out, "typedef struct _{} {{", s.name)?;
            write_struct_body(out, s)?;
            writeln!(out, "}} {}, *P{};\n", s.name, s.name)
        }
        CItem::FnTypedef(f) => {
            writeln!(out, "typedef {}\n(*{})(", f.ret, f.name)?;
            for (i, p) in f.params.iter().enumerate() {
                let last = i + 1 == f.params.len() && !f.variadic;
                writeln!(out, "    {p}{}", if last { "" } else { "," })?;
            }
            if f.variadic {
                writeln!(out, "    ...")?;
            }
            writeln!(out, "    );\n")
        }
        CItem::Guid(name, g) => {
            writeln!(out, "// {g}")?;
            writeln!(
                out,
                "DEFINE_GUID({name},\n            {});\n",
                g.define_guid_args()
            )
        }
        CItem::Vtable(s) => {
            writeln!(out, "struct _{} {{", s.name)?;
            write_struct_body(out, s)?;
            writeln!(out, "}};\n")
        }
    }
}

/// Renders one interface header (the committed `include/c/<file>`).
pub fn render_header<W: Write + ?Sized>(out: &mut W, h: &CHeader) -> fmt::Result {
    writeln!(out, "/* {}: {}", h.file, h.description)?;
    writeln!(
        out,
        " * GENERATED from the Rust definitions in crate xen-include by `cargo xtask cheaders`;"
    )?;
    writeln!(
        out,
        " * do not edit. Include <ntddk.h> (or <wdm.h>) first, as with the original headers. */\n"
    )?;
    writeln!(out, "#ifndef {}\n#define {}\n", h.guard, h.guard)?;
    for inc in h.includes {
        writeln!(out, "#include <{inc}>\n")?;
    }
    writeln!(out, "#ifndef _WINDLL\n")?;
    for item in h.items {
        write_item(out, item)?;
    }
    writeln!(
        out,
        "typedef struct _{} {}, *P{};\n",
        h.latest, h.alias, h.alias
    )?;
    let (name, prefix) = h.method_macro;
    // An empty prefix must not paste (`-> ## _Method` is not a valid token for gcc), and
    // `, ##__VA_ARGS__` drops the comma for argument-less methods on gcc/clang as MSVC does.
    let paste = if prefix.is_empty() { "" } else { " ## " };
    writeln!(out, "#define {name}(_Method, _Interface, ...) \\")?;
    writeln!(
        out,
        "    (_Interface)->{prefix}{paste}_Method((PINTERFACE)(_Interface), ##__VA_ARGS__)\n"
    )?;
    writeln!(out, "#endif  // _WINDLL\n")?;
    writeln!(out, "#define {}_MIN {}", h.version_prefix, h.versions.0)?;
    writeln!(out, "#define {}_MAX {}\n", h.version_prefix, h.versions.1)?;
    writeln!(out, "#endif  // {}", h.guard)
}

/// Writes `_Static_assert` lines checking `sizeof` and every member's `offsetof` of every
/// struct of `h` against the Rust layout (the body of the C layout probe).
pub fn render_layout_checks<W: Write + ?Sized>(out: &mut W, h: &CHeader) -> fmt::Result {
    for item in h.items {
        let (s, tag) = match item {
            CItem::Struct(s) => (s, ""),
            CItem::Vtable(s) => (s, "struct _"),
            _ => continue,
        };
        writeln!(
            out,
            "_Static_assert(sizeof({tag}{}) == {}, \"sizeof {}\");",
            s.name, s.size, s.name
        )?;
        for m in s.members {
            writeln!(
                out,
                "_Static_assert(offsetof({tag}{}, {}) == {}, \"{}.{}\");",
                s.name, m.name, m.offset, s.name, m.name
            )?;
        }
    }
    Ok(())
}
