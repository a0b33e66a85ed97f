//! `xsd_sockmsg` framing: the 16-byte little-endian header, whole messages, and the error
//! names xenstored answers with.
#![forbid(unsafe_code)]

use super::abi as xs;

/// Length of the `xsd_sockmsg` header (`type`, `req_id`, `tx_id`, `len`).
pub const HEADER_LEN: usize = xs::XS_MSG_HEADER_LEN;

/// One XenStore message: header fields and payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// `xsd_sockmsg_type` (open: unknown values are kept as they came).
    pub msg_type: u32,
    /// Request id, echoed in the reply; 0 in watch events.
    pub req_id: u32,
    /// Transaction id, 0 outside a transaction.
    pub tx_id: u32,
    /// The payload (`len` bytes).
    pub payload: Vec<u8>,
}

impl Message {
    /// A message with the given header fields and payload.
    pub fn new(msg_type: u32, req_id: u32, tx_id: u32, payload: impl Into<Vec<u8>>) -> Self {
        Self {
            msg_type,
            req_id,
            tx_id,
            payload: payload.into(),
        }
    }

    /// Header and payload as the bytes on the wire.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_LEN + self.payload.len());
        out.extend_from_slice(&self.msg_type.to_le_bytes());
        out.extend_from_slice(&self.req_id.to_le_bytes());
        out.extend_from_slice(&self.tx_id.to_le_bytes());
        out.extend_from_slice(&(self.payload.len() as u32).to_le_bytes());
        out.extend_from_slice(&self.payload);
        out
    }

    /// Builds a payload of NUL-terminated strings (`"a\0b\0"`).
    pub fn strings(parts: &[&str]) -> Vec<u8> {
        let mut out = Vec::new();
        for part in parts {
            out.extend_from_slice(part.as_bytes());
            out.push(0);
        }
        out
    }
}

/// A parsed header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// Message type.
    pub msg_type: u32,
    /// Request id.
    pub req_id: u32,
    /// Transaction id.
    pub tx_id: u32,
    /// Payload length.
    pub len: u32,
}

impl Header {
    /// Parses the first [`HEADER_LEN`] bytes; `None` when fewer are given.
    pub fn parse(bytes: &[u8]) -> Option<Self> {
        let word = |i: usize| -> Option<u32> {
            let b = bytes.get(i * 4..i * 4 + 4)?;
            Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        };
        Some(Self {
            msg_type: word(0)?,
            req_id: word(1)?,
            tx_id: word(2)?,
            len: word(3)?,
        })
    }
}

/// Incremental decoder for a byte stream of messages (socket or ring).
#[derive(Debug, Default)]
pub struct Decoder {
    buf: Vec<u8>,
}

/// Why a stream stopped being decodable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// A header announced a payload above `XENSTORE_PAYLOAD_MAX`.
    PayloadTooLong(u32),
}

impl Decoder {
    /// Appends received bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes received but not yet part of a complete message.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }

    /// How many more bytes the message being received needs (a whole header first, then the
    /// payload it announces), as the C daemon reads them.
    pub fn needed(&self) -> Result<usize, DecodeError> {
        match Header::parse(&self.buf) {
            None => Ok(HEADER_LEN - self.buf.len()),
            Some(h) if h.len as usize > xs::XENSTORE_PAYLOAD_MAX => {
                Err(DecodeError::PayloadTooLong(h.len))
            }
            Some(h) => Ok((HEADER_LEN + h.len as usize).saturating_sub(self.buf.len())),
        }
    }

    /// Takes the next complete message, if any.
    pub fn next_message(&mut self) -> Result<Option<Message>, DecodeError> {
        let Some(header) = Header::parse(&self.buf) else {
            return Ok(None);
        };
        if header.len as usize > xs::XENSTORE_PAYLOAD_MAX {
            return Err(DecodeError::PayloadTooLong(header.len));
        }
        let total = HEADER_LEN + header.len as usize;
        if self.buf.len() < total {
            return Ok(None);
        }
        let payload = self.buf[HEADER_LEN..total].to_vec();
        self.buf.drain(..total);
        Ok(Some(Message {
            msg_type: header.msg_type,
            req_id: header.req_id,
            tx_id: header.tx_id,
            payload,
        }))
    }
}

pub use super::abi::Errno;

/// The name sent in an `XS_ERROR` reply for `err` (`xsd_errors[]`; untranslatable values
/// become `EINVAL` as in the C daemon).
pub fn error_name(err: Errno) -> &'static str {
    xs::error_name(err)
}

/// The errno named by an `XS_ERROR` payload (without its NUL), if known.
pub fn error_from_name(name: &str) -> Option<Errno> {
    xs::error_from_name(name)
}

/// Splits a payload at NULs the way `get_strings()` does: only NUL-terminated strings count,
/// trailing bytes without a NUL are ignored.
pub fn get_strings(payload: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut rest = payload;
    while let Some(pos) = rest.iter().position(|&b| b == 0) {
        out.push(&rest[..pos]);
        rest = &rest[pos + 1..];
    }
    out
}

/// Number of NUL bytes (`xenstore_count_strings()`).
pub fn count_strings(payload: &[u8]) -> usize {
    payload.iter().filter(|&&b| b == 0).count()
}

/// The single argument of a payload that must hold exactly one NUL, at its end (`onearg()`).
pub fn onearg(payload: &[u8]) -> Option<&str> {
    let (last, body) = payload.split_last()?;
    if *last != 0 || body.contains(&0) {
        return None;
    }
    std::str::from_utf8(body).ok()
}

/// Skips C `isspace()` characters and an optional sign; returns (index, negative).
fn skip_space_and_sign(bytes: &[u8]) -> (usize, bool) {
    let mut i = 0;
    while i < bytes.len() && (bytes[i] == b' ' || (b'\t'..=b'\r').contains(&bytes[i])) {
        i += 1;
    }
    let negative = bytes.get(i) == Some(&b'-');
    if matches!(bytes.get(i), Some(b'+') | Some(b'-')) {
        i += 1;
    }
    (i, negative)
}

/// C `atoi()`: optional whitespace and sign, then decimal digits; 0 when none.
pub fn atoi(bytes: &[u8]) -> i32 {
    let (mut i, negative) = skip_space_and_sign(bytes);
    let mut value: i64 = 0;
    while i < bytes.len() && bytes[i].is_ascii_digit() {
        value = value
            .wrapping_mul(10)
            .wrapping_add(i64::from(bytes[i] - b'0'));
        i += 1;
    }
    if negative {
        value = -value;
    }
    value as i32
}

/// C `strtol(s, &end, 0)` for the permission parser: returns the value and how many bytes
/// were consumed (0 when no number was found).
pub fn strtol0(bytes: &[u8]) -> (i64, usize) {
    let (i, negative) = skip_space_and_sign(bytes);
    let (base, start) = if bytes.len() > i + 1
        && bytes[i] == b'0'
        && (bytes[i + 1] == b'x' || bytes[i + 1] == b'X')
        && bytes.get(i + 2).is_some_and(|c| c.is_ascii_hexdigit())
    {
        (16, i + 2)
    } else if bytes.get(i) == Some(&b'0') {
        (8, i)
    } else {
        (10, i)
    };
    let mut j = start;
    let mut value: i64 = 0;
    while j < bytes.len() {
        let digit = match bytes[j] {
            c @ b'0'..=b'9' => i64::from(c - b'0'),
            c @ b'a'..=b'f' => i64::from(c - b'a') + 10,
            c @ b'A'..=b'F' => i64::from(c - b'A') + 10,
            _ => break,
        };
        if digit >= base {
            break;
        }
        value = value.saturating_mul(base).saturating_add(digit);
        j += 1;
    }
    if j == start {
        return (0, 0);
    }
    (if negative { -value } else { value }, j)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trip_matches_rig_bytes() {
        let msg = Message::new(xs::XS_WRITE, 0x1234, 0, b"/wiretest/key\0value".to_vec());
        let bytes = msg.to_bytes();
        assert_eq!(
            &bytes[..16],
            &[0x0b, 0, 0, 0, 0x34, 0x12, 0, 0, 0, 0, 0, 0, 0x13, 0, 0, 0]
        );
        let mut dec = Decoder::default();
        dec.push(&bytes[..10]);
        assert_eq!(dec.next_message(), Ok(None));
        dec.push(&bytes[10..]);
        assert_eq!(dec.next_message(), Ok(Some(msg)));
        assert_eq!(dec.pending(), 0);
    }

    #[test]
    fn oversized_payload_is_refused() {
        let mut dec = Decoder::default();
        dec.push(&Message::new(2, 1, 0, vec![]).to_bytes()[..12]);
        dec.push(&4097u32.to_le_bytes());
        assert_eq!(dec.next_message(), Err(DecodeError::PayloadTooLong(4097)));
    }

    #[test]
    fn string_helpers_follow_c_semantics() {
        assert_eq!(get_strings(b"a\0b\0junk"), vec![&b"a"[..], &b"b"[..]]);
        assert_eq!(count_strings(b"a\0b\0junk"), 2);
        assert_eq!(onearg(b"/x\0"), Some("/x"));
        assert_eq!(onearg(b"/x\0\0"), None);
        assert_eq!(onearg(b"/x"), None);
        assert_eq!(onearg(b""), None);
        assert_eq!(atoi(b" 12abc"), 12);
        assert_eq!(atoi(b"-3"), -3);
        assert_eq!(atoi(b"x"), 0);
        assert_eq!(strtol0(b"0x10"), (16, 4));
        assert_eq!(strtol0(b"010"), (8, 3));
        assert_eq!(strtol0(b"7z"), (7, 1));
        assert_eq!(strtol0(b"z"), (0, 0));
        assert_eq!(error_name(Errno::EAGAIN), "EAGAIN");
        assert_eq!(error_name(Errno(9999)), "EINVAL");
        assert_eq!(error_from_name("EACCES"), Some(Errno::EACCES));
    }
}
