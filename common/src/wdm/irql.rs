//! The kernel's IRQL hooks for the locks of [`crate::sync`]: `KeGetCurrentIrql`,
//! `KfRaiseIrql` and `KeLowerIrql` (x64 exports of ntoskrnl.exe). Every driver installs
//! them first thing in DriverEntry/DllInitialize, before any lock is taken.

use crate::irql::{Hooks, Irql};

#[link(name = "ntoskrnl.exe", kind = "raw-dylib", modifiers = "+verbatim")]
unsafe extern "system" {
    fn KeGetCurrentIrql() -> u8;
    fn KfRaiseIrql(new_irql: u8) -> u8;
    fn KeLowerIrql(new_irql: u8);
}

fn current() -> Irql {
    // SAFETY: reads the processor's IRQL; no preconditions.
    unsafe { KeGetCurrentIrql() }
}

/// Raise to `level` unless already there or above. Above it the lock is taken as is: a
/// DISPATCH_LEVEL lock taken at DIRQL by mistake must not lower the IRQL (KfRaiseIrql to
/// a lower level bug-checks); the host model refuses that case in tests.
fn acquire(_lock: usize, level: Irql, _site: &'static core::panic::Location<'static>) -> Irql {
    let previous = current();
    if previous < level {
        // SAFETY: `level` is above the current IRQL (KfRaiseIrql's precondition); the
        // guard lowers back to `previous` once it has let the lock go.
        unsafe { KfRaiseIrql(level) };
    }
    previous
}

/// Back to `previous` if `acquire` raised.
fn release(_lock: usize, level: Irql, previous: Irql) {
    if previous < level {
        // SAFETY: `acquire` raised from `previous` to `level`; guards go in reverse order,
        // so the IRQL is `level` again here and `previous` is below it.
        unsafe { KeLowerIrql(previous) };
    }
}

/// The kernel hooks.
pub static HOOKS: Hooks = Hooks {
    current,
    acquire,
    release,
    check_at_most: |_, _| {},
};

/// Install [`HOOKS`] (the first thing every entry point does).
pub fn install() {
    crate::irql::install(&HOOKS);
}
