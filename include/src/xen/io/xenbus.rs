//! `io/xenbus.h`: the frontend / backend handshake states (`XenbusState`), written as decimal
//! strings to the `state` nodes in xenstore.

use super::super::abi::AbiConstant;
use crate::open_enum;

open_enum! {
    /// `enum xenbus_state`.
    pub struct XenbusState(u32) {
        /// Unknown / not yet written.
        UNKNOWN = 0 => "XenbusStateUnknown",
        /// Initialising.
        INITIALISING = 1 => "XenbusStateInitialising",
        /// Backend: waiting for information from the frontend or hotplug scripts.
        INIT_WAIT = 2 => "XenbusStateInitWait",
        /// Frontend: initialised, waiting for the backend.
        INITIALISED = 3 => "XenbusStateInitialised",
        /// Connected.
        CONNECTED = 4 => "XenbusStateConnected",
        /// Tearing down.
        CLOSING = 5 => "XenbusStateClosing",
        /// Closed.
        CLOSED = 6 => "XenbusStateClosed",
        /// Reconfiguring.
        RECONFIGURING = 7 => "XenbusStateReconfiguring",
        /// Reconfigured.
        RECONFIGURED = 8 => "XenbusStateReconfigured",
    }
}

impl XenbusState {
    /// Parses the decimal text of a `state` node (surrounding whitespace is not accepted).
    pub fn parse(text: &[u8]) -> Option<Self> {
        if text.is_empty() || text.len() > 10 {
            return None;
        }
        let mut value: u32 = 0;
        for &byte in text {
            if !byte.is_ascii_digit() {
                return None;
            }
            value = value.checked_mul(10)?.checked_add(u32::from(byte - b'0'))?;
        }
        Some(Self(value))
    }
}

/// Every constant of `io/xenbus.h`, for the C conformance probe.
pub const CONSTANTS: &[&[AbiConstant]] = &[
    XenbusState::C_CONSTANTS,
    crate::abi_constants!["sizeof(XenbusState)" => core::mem::size_of::<XenbusState>()],
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_state_nodes() {
        assert_eq!(XenbusState::parse(b"4"), Some(XenbusState::CONNECTED));
        assert_eq!(XenbusState::parse(b"42"), Some(XenbusState(42)));
        assert_eq!(XenbusState::parse(b""), None);
        assert_eq!(XenbusState::parse(b"4 "), None);
        assert_eq!(XenbusState::parse(b"-1"), None);
        assert_eq!(XenbusState::parse(b"99999999999"), None);
        assert_eq!(XenbusState::parse(b"4294967296"), None);
    }
}
