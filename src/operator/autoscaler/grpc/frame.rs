//! HTTP/2 frames (RFC 9113 §4, §6): the fixed 9-byte header, and the few
//! frame payloads a unary gRPC client writes. Pure: bytes in, bytes out.

/// Frame types (RFC 9113 §6).
pub const DATA: u8 = 0x0;
pub const HEADERS: u8 = 0x1;
pub const RST_STREAM: u8 = 0x3;
pub const SETTINGS: u8 = 0x4;
pub const PING: u8 = 0x6;
pub const GOAWAY: u8 = 0x7;
pub const WINDOW_UPDATE: u8 = 0x8;
pub const CONTINUATION: u8 = 0x9;

/// Flags.
pub const END_STREAM: u8 = 0x1;
pub const ACK: u8 = 0x1;
pub const END_HEADERS: u8 = 0x4;
pub const PADDED: u8 = 0x8;
pub const PRIORITY: u8 = 0x20;

/// SETTINGS identifiers (RFC 9113 §6.5.2).
pub const SETTINGS_HEADER_TABLE_SIZE: u16 = 0x1;
pub const SETTINGS_ENABLE_PUSH: u16 = 0x2;
pub const SETTINGS_INITIAL_WINDOW_SIZE: u16 = 0x4;

/// The largest frame payload a peer may send before it is told otherwise,
/// and the largest this client accepts (it never raises it).
pub const DEFAULT_MAX_FRAME: usize = 16_384;
/// The window every connection and stream starts with (RFC 9113 §6.9.2).
pub const DEFAULT_WINDOW: i64 = 65_535;

/// What a client sends first on a connection (RFC 9113 §3.4).
pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// The 9-byte frame header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub length: usize,
    pub kind: u8,
    pub flags: u8,
    pub stream: u32,
}

impl Header {
    /// The header at the start of `buf`, if 9 bytes are there.
    pub fn parse(buf: &[u8]) -> Option<Header> {
        let b = buf.get(..9)?;
        Some(Header {
            length: (usize::from(b[0]) << 16) | (usize::from(b[1]) << 8) | usize::from(b[2]),
            kind: b[3],
            flags: b[4],
            stream: u32::from_be_bytes([b[5], b[6], b[7], b[8]]) & 0x7fff_ffff,
        })
    }
}

/// Appends a frame of `payload` to `out`.
pub fn push(out: &mut Vec<u8>, kind: u8, flags: u8, stream: u32, payload: &[u8]) {
    let len = payload.len();
    debug_assert!(len < 1 << 24, "frame payload too long");
    out.extend_from_slice(&[(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags]);
    out.extend_from_slice(&(stream & 0x7fff_ffff).to_be_bytes());
    out.extend_from_slice(payload);
}

/// Appends a SETTINGS frame with `settings` (identifier, value).
pub fn push_settings(out: &mut Vec<u8>, settings: &[(u16, u32)]) {
    let payload: Vec<u8> = settings
        .iter()
        .flat_map(|(id, v)| id.to_be_bytes().into_iter().chain(v.to_be_bytes()))
        .collect();
    push(out, SETTINGS, 0, 0, &payload);
}

/// Appends a WINDOW_UPDATE frame granting `increment` bytes on `stream` (0: the connection).
pub fn push_window_update(out: &mut Vec<u8>, stream: u32, increment: u32) {
    push(
        out,
        WINDOW_UPDATE,
        0,
        stream,
        &(increment & 0x7fff_ffff).to_be_bytes(),
    );
}

/// The settings in a SETTINGS payload; `None` if its length is not a multiple of 6.
pub fn parse_settings(payload: &[u8]) -> Option<Vec<(u16, u32)>> {
    if !payload.len().is_multiple_of(6) {
        return None;
    }
    Some(
        payload
            .chunks(6)
            .map(|c| {
                (
                    u16::from_be_bytes([c[0], c[1]]),
                    u32::from_be_bytes([c[2], c[3], c[4], c[5]]),
                )
            })
            .collect(),
    )
}

/// A 4-byte big-endian word (WINDOW_UPDATE increment, RST_STREAM and GOAWAY
/// codes, GOAWAY's last stream id), the reserved bit cleared when `mask`.
pub fn word(payload: &[u8], at: usize, mask: bool) -> Option<u32> {
    let b = payload.get(at..at + 4)?;
    let w = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    Some(if mask { w & 0x7fff_ffff } else { w })
}

/// The content of a DATA or HEADERS payload without its padding and (HEADERS)
/// priority fields; `None` if the padding is longer than the payload.
pub fn content(kind: u8, flags: u8, payload: &[u8]) -> Option<&[u8]> {
    let mut body = payload;
    let mut pad = 0;
    if flags & PADDED != 0 {
        pad = usize::from(*body.first()?);
        body = &body[1..];
    }
    if kind == HEADERS && flags & PRIORITY != 0 {
        body = body.get(5..)?;
    }
    body.get(..body.len().checked_sub(pad)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips() {
        let mut out = Vec::new();
        push(&mut out, HEADERS, END_HEADERS | END_STREAM, 3, b"abc");
        assert_eq!(out, [0, 0, 3, 1, 5, 0, 0, 0, 3, b'a', b'b', b'c']);
        let h = Header::parse(&out).unwrap();
        assert_eq!(
            h,
            Header {
                length: 3,
                kind: HEADERS,
                flags: 5,
                stream: 3
            }
        );
        assert_eq!(Header::parse(&out[..8]), None);
        // The reserved bit of the stream id is ignored.
        let big = [0x01, 0, 0, 0, 0, 0x80, 0, 0, 7];
        assert_eq!(
            Header::parse(&big),
            Some(Header {
                length: 65_536,
                kind: DATA,
                flags: 0,
                stream: 7
            })
        );
    }

    #[test]
    fn settings_and_window_updates() {
        let mut out = Vec::new();
        push_settings(
            &mut out,
            &[
                (SETTINGS_ENABLE_PUSH, 0),
                (SETTINGS_INITIAL_WINDOW_SIZE, 1 << 20),
            ],
        );
        assert_eq!(&out[..9], [0, 0, 12, SETTINGS, 0, 0, 0, 0, 0]);
        assert_eq!(
            parse_settings(&out[9..]),
            Some(vec![
                (SETTINGS_ENABLE_PUSH, 0),
                (SETTINGS_INITIAL_WINDOW_SIZE, 1 << 20)
            ])
        );
        assert_eq!(parse_settings(&[0; 5]), None);
        let mut out = Vec::new();
        push_window_update(&mut out, 0, 1000);
        assert_eq!(word(&out[9..], 0, true), Some(1000));
        assert_eq!(word(&[0xff, 0xff, 0xff, 0xff], 0, true), Some(0x7fff_ffff));
        assert_eq!(word(&[0xff, 0xff, 0xff, 0xff], 0, false), Some(u32::MAX));
        assert_eq!(word(&[1, 2, 3], 0, true), None);
    }

    #[test]
    fn content_strips_padding_and_priority() {
        // (frame type, flags, payload, content)
        type Case<'a> = (u8, u8, &'a [u8], Option<&'a [u8]>);
        let cases: &[Case] = &[
            (DATA, 0, b"abc", Some(b"abc")),
            (DATA, PADDED, &[2, b'a', 0, 0], Some(b"a")),
            (DATA, PADDED, &[4, b'a', 0, 0], None),
            (DATA, PADDED, &[], None),
            // PRIORITY means nothing on DATA.
            (DATA, PRIORITY, b"abcdef", Some(b"abcdef")),
            (HEADERS, PRIORITY, &[0, 0, 0, 1, 16, b'h'], Some(b"h")),
            (
                HEADERS,
                PRIORITY | PADDED,
                &[1, 0, 0, 0, 1, 16, b'h', 0],
                Some(b"h"),
            ),
            (HEADERS, PRIORITY, &[0, 0, 0], None),
        ];
        for (kind, flags, payload, want) in cases {
            assert_eq!(
                content(*kind, *flags, payload),
                *want,
                "{kind} {flags} {payload:?}"
            );
        }
    }
}
