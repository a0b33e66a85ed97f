//! A macro emitting the two C entry points `Acquire`/`Release` for a provider type with a
//! `references: super::References` field (spec §2.1: lifetime is managed by these
//! methods, not by `InterfaceReference`).

/// `acquire_release!(Provider)` emits `unsafe extern "C" fn acquire(PInterface) -> NtStatus`
/// and `unsafe extern "C" fn release(PInterface)` counting on `Provider::references`, with
/// optional hooks run on the first Acquire (`first: |p| -> Result<(), NtStatus>`) and the
/// last Release (`last: |p|`).
macro_rules! acquire_release {
    ($provider:ty) => {
        acquire_release!($provider, first: |_p| Ok(()), last: |_p| ());
    };
    ($provider:ty, first: |$fp:ident| $first:expr, last: |$lp:ident| $last:expr) => {
        unsafe extern "C" fn acquire(
            interface: xen_include::interfaces::PInterface,
        ) -> xen_include::status::NtStatus {
            // SAFETY: the C caller passes the interface it obtained from us.
            let Some($fp) = (unsafe { super::context::<$provider>(interface) }) else {
                return xen_include::status::STATUS_INVALID_PARAMETER;
            };
            if $fp.references.acquire() == 1 {
                let r: Result<(), xen_include::status::NtStatus> = $first;
                if let Err(e) = r {
                    let _ = $fp.references.release();
                    return e;
                }
            }
            xen_include::status::STATUS_SUCCESS
        }

        unsafe extern "C" fn release(interface: xen_include::interfaces::PInterface) {
            // SAFETY: the C caller passes the interface it obtained from us.
            if let Some($lp) = unsafe { super::context::<$provider>(interface) } {
                if $lp.references.release() == Some(0) {
                    $last;
                }
            }
        }
    };
}
pub(crate) use acquire_release;
