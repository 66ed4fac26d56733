//! Header blocks (HPACK, RFC 7541) of a unary gRPC call: the request's,
//! encoded without the dynamic table or Huffman (always valid, and nothing to
//! remember per connection), and what the client reads of the response's.

use std::collections::VecDeque;

/// A request's header block: `POST path` over `http` to `authority`, a gRPC
/// body, and `metadata` (names lower-case ASCII).
pub fn request(authority: &str, path: &str, timeout_ms: u64, metadata: &[(&str, &str)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(128 + path.len());
    // Indexed fields of the static table: 3 `:method POST`, 6 `:scheme http`.
    out.extend_from_slice(&[0x80 | 3, 0x80 | 6]);
    // Literals without indexing, named by static-table index.
    literal_indexed_name(&mut out, 4, path); // :path
    literal_indexed_name(&mut out, 1, authority); // :authority
    literal_indexed_name(&mut out, 31, "application/grpc"); // content-type
    literal(&mut out, "te", "trailers");
    literal(&mut out, "grpc-timeout", &format!("{timeout_ms}m"));
    for (name, value) in metadata {
        literal(&mut out, name, value);
    }
    out
}

/// An integer with an `n`-bit prefix (RFC 7541 §5.1); `first` holds the
/// representation's pattern bits above the prefix.
fn integer(out: &mut Vec<u8>, first: u8, n: u32, mut value: usize) {
    let max = (1usize << n) - 1;
    if value < max {
        out.push(first | value as u8);
        return;
    }
    out.push(first | max as u8);
    value -= max;
    while value >= 128 {
        out.push((value % 128) as u8 | 0x80);
        value /= 128;
    }
    out.push(value as u8);
}

/// A string literal, not Huffman-coded (RFC 7541 §5.2).
fn string(out: &mut Vec<u8>, s: &str) {
    integer(out, 0, 7, s.len());
    out.extend_from_slice(s.as_bytes());
}

/// Literal header field without indexing, indexed name (§6.2.2).
fn literal_indexed_name(out: &mut Vec<u8>, index: usize, value: &str) {
    integer(out, 0, 4, index);
    string(out, value);
}

/// Literal header field without indexing, new name (§6.2.2).
fn literal(out: &mut Vec<u8>, name: &str, value: &str) {
    out.push(0);
    string(out, name);
    string(out, value);
}

/// HPACK's static table (RFC 7541 Appendix A), index 1 first.
const STATIC: [(&str, &str); 61] = [
    (":authority", ""),
    (":method", "GET"),
    (":method", "POST"),
    (":path", "/"),
    (":path", "/index.html"),
    (":scheme", "http"),
    (":scheme", "https"),
    (":status", "200"),
    (":status", "204"),
    (":status", "206"),
    (":status", "304"),
    (":status", "400"),
    (":status", "404"),
    (":status", "500"),
    ("accept-charset", ""),
    ("accept-encoding", "gzip, deflate"),
    ("accept-language", ""),
    ("accept-ranges", ""),
    ("accept", ""),
    ("access-control-allow-origin", ""),
    ("age", ""),
    ("allow", ""),
    ("authorization", ""),
    ("cache-control", ""),
    ("content-disposition", ""),
    ("content-encoding", ""),
    ("content-language", ""),
    ("content-length", ""),
    ("content-location", ""),
    ("content-range", ""),
    ("content-type", ""),
    ("cookie", ""),
    ("date", ""),
    ("etag", ""),
    ("expect", ""),
    ("expires", ""),
    ("from", ""),
    ("host", ""),
    ("if-match", ""),
    ("if-modified-since", ""),
    ("if-none-match", ""),
    ("if-range", ""),
    ("if-unmodified-since", ""),
    ("last-modified", ""),
    ("link", ""),
    ("location", ""),
    ("max-forwards", ""),
    ("proxy-authenticate", ""),
    ("proxy-authorization", ""),
    ("range", ""),
    ("referer", ""),
    ("refresh", ""),
    ("retry-after", ""),
    ("server", ""),
    ("set-cookie", ""),
    ("strict-transport-security", ""),
    ("transfer-encoding", ""),
    ("user-agent", ""),
    ("vary", ""),
    ("via", ""),
    ("www-authenticate", ""),
];

/// The table size a decoder starts with (SETTINGS_HEADER_TABLE_SIZE's default)
/// and the most a size update may ask for.
const MAX_TABLE: usize = 4096;

/// A decoded header field: name and value.
pub type Field = (Vec<u8>, Vec<u8>);

/// The decoding half of HPACK for one connection: the dynamic table the
/// server's encoder fills (empty when it honours a table size of 0).
#[derive(Debug)]
pub struct Decoder {
    /// Newest first.
    table: VecDeque<Field>,
    size: usize,
    max: usize,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder {
            table: VecDeque::new(),
            size: 0,
            max: MAX_TABLE,
        }
    }
}

impl Decoder {
    /// The fields of a whole header block (HEADERS and its CONTINUATIONs).
    pub fn decode(&mut self, block: &[u8]) -> Result<Vec<Field>, String> {
        let mut fields = Vec::new();
        let mut at = 0;
        while at < block.len() {
            let first = block[at];
            if first & 0x80 != 0 {
                // Indexed field (§6.1).
                let index = read_integer(block, &mut at, 7)?;
                fields.push(self.entry(index)?);
            } else if first & 0xe0 == 0x20 {
                // Dynamic table size update (§6.3).
                let max = read_integer(block, &mut at, 5)?;
                if max > MAX_TABLE {
                    return Err(format!("table size update to {max}"));
                }
                self.max = max;
                self.evict(0);
            } else {
                // Literals: with incremental indexing (01), without (0000) or never indexed (0001).
                let (prefix, index_it) = if first & 0xc0 == 0x40 {
                    (6, true)
                } else {
                    (4, false)
                };
                let name_index = read_integer(block, &mut at, prefix)?;
                let name = match name_index {
                    0 => read_string(block, &mut at)?,
                    i => self.entry(i)?.0,
                };
                let value = read_string(block, &mut at)?;
                if index_it {
                    self.insert((name.clone(), value.clone()));
                }
                fields.push((name, value));
            }
        }
        Ok(fields)
    }

    fn entry(&self, index: usize) -> Result<Field, String> {
        match index {
            0 => Err("header index 0".into()),
            i if i <= STATIC.len() => {
                let (n, v) = STATIC[i - 1];
                Ok((n.as_bytes().to_vec(), v.as_bytes().to_vec()))
            }
            i => self
                .table
                .get(i - STATIC.len() - 1)
                .cloned()
                .ok_or_else(|| format!("header index {i} beyond the table")),
        }
    }

    /// Adds an entry, evicting the oldest to fit (§4.4).
    fn insert(&mut self, field: Field) {
        let size = entry_size(&field);
        self.evict(size);
        if size <= self.max {
            self.size += size;
            self.table.push_front(field);
        }
    }

    /// Evicts until `room` more bytes fit (all, if they cannot).
    fn evict(&mut self, room: usize) {
        while self.size + room > self.max {
            match self.table.pop_back() {
                Some(old) => self.size -= entry_size(&old),
                None => break,
            }
        }
    }
}

/// An entry's size: its name and value plus 32 (§4.1).
fn entry_size((name, value): &Field) -> usize {
    name.len() + value.len() + 32
}

/// Reads an integer with an `n`-bit prefix at `*at` (§5.1).
fn read_integer(block: &[u8], at: &mut usize, n: u32) -> Result<usize, String> {
    let truncated = || "truncated header block".to_string();
    let max = (1usize << n) - 1;
    let mut value = usize::from(*block.get(*at).ok_or_else(truncated)?) & max;
    *at += 1;
    if value < max {
        return Ok(value);
    }
    let mut shift = 0;
    loop {
        let byte = *block.get(*at).ok_or_else(truncated)?;
        *at += 1;
        if shift > 28 {
            return Err("header integer too large".into());
        }
        value += usize::from(byte & 0x7f) << shift;
        shift += 7;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
}

/// Reads a string literal at `*at`, Huffman-decoded if so marked (§5.2).
fn read_string(block: &[u8], at: &mut usize) -> Result<Vec<u8>, String> {
    let huffman = block.get(*at).is_some_and(|b| b & 0x80 != 0);
    let len = read_integer(block, at, 7)?;
    let raw = block
        .get(*at..*at + len)
        .ok_or_else(|| "truncated header string".to_string())?;
    *at += len;
    if !huffman {
        return Ok(raw.to_vec());
    }
    let mut out = Vec::with_capacity(len * 8 / 5);
    httlib_huffman::decode(raw, &mut out, httlib_huffman::DecoderSpeed::FourBits)
        .map_err(|e| format!("bad Huffman string: {e:?}"))?;
    Ok(out)
}

/// What a response's header blocks (headers, then trailers; or one
/// trailers-only block) said that a unary call needs.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Response {
    /// `:status` of the first block.
    pub http_status: Option<u16>,
    /// `grpc-status`, from whichever block carried it.
    pub grpc_status: Option<i32>,
    /// `grpc-message`, percent-decoded.
    pub grpc_message: String,
}

impl Response {
    /// Adds a decoded block's fields.
    pub fn absorb(&mut self, fields: &[(Vec<u8>, Vec<u8>)]) {
        for (name, value) in fields {
            let text = String::from_utf8_lossy(value);
            match name.as_slice() {
                b":status" => self.http_status = text.parse().ok(),
                b"grpc-status" => self.grpc_status = text.trim().parse().ok(),
                b"grpc-message" => self.grpc_message = percent_decode(&text),
                _ => {}
            }
        }
    }
}

/// `grpc-message` is percent-encoded UTF-8 (gRPC over HTTP/2, "Responses").
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_follow_rfc7541_examples() {
        // C.1.1-C.1.3: 10 and 1337 with a 5-bit prefix, 42 with 8 bits.
        let cases: &[(u32, usize, &[u8])] = &[
            (5, 10, &[10]),
            (5, 1337, &[31, 154, 10]),
            (8, 42, &[42]),
            (4, 15, &[15, 0]),
            (4, 31, &[15, 16]),
        ];
        for (n, v, want) in cases {
            let mut out = Vec::new();
            integer(&mut out, 0, *n, *v);
            assert_eq!(out, *want, "{v} with {n}-bit prefix");
        }
    }

    #[test]
    fn request_block_decodes_to_the_call() {
        let block = request(
            "10.0.0.1:6379",
            "/ray.rpc.X/Y",
            2000,
            &[("ray_cluster_id", "ab")],
        );
        let fields = Decoder::default().decode(&block).unwrap();
        let text: Vec<(String, String)> = fields
            .into_iter()
            .map(|(n, v)| (String::from_utf8(n).unwrap(), String::from_utf8(v).unwrap()))
            .collect();
        let want = [
            (":method", "POST"),
            (":scheme", "http"),
            (":path", "/ray.rpc.X/Y"),
            (":authority", "10.0.0.1:6379"),
            ("content-type", "application/grpc"),
            ("te", "trailers"),
            ("grpc-timeout", "2000m"),
            ("ray_cluster_id", "ab"),
        ];
        assert_eq!(
            text,
            want.map(|(n, v)| (n.to_string(), v.to_string())).to_vec()
        );
    }

    /// RFC 7541 C.4: three requests Huffman-coded, sharing a dynamic table;
    /// C.3.3's table after them: three entries, 164 bytes.
    #[test]
    fn decodes_the_rfc_examples_with_huffman_and_the_dynamic_table() {
        let hex = |s: &str| -> Vec<u8> {
            let s: String = s.split_whitespace().collect();
            (0..s.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
                .collect()
        };
        let text = |fields: Vec<Field>| -> Vec<(String, String)> {
            fields
                .into_iter()
                .map(|(n, v)| (String::from_utf8(n).unwrap(), String::from_utf8(v).unwrap()))
                .collect()
        };
        let pairs = |p: &[(&str, &str)]| -> Vec<(String, String)> {
            p.iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect()
        };
        let mut d = Decoder::default();
        let blocks = [
            (
                "8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff",
                pairs(&[
                    (":method", "GET"),
                    (":scheme", "http"),
                    (":path", "/"),
                    (":authority", "www.example.com"),
                ]),
            ),
            (
                "8286 84be 5886 a8eb 1064 9cbf",
                pairs(&[
                    (":method", "GET"),
                    (":scheme", "http"),
                    (":path", "/"),
                    (":authority", "www.example.com"),
                    ("cache-control", "no-cache"),
                ]),
            ),
            (
                "8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf",
                pairs(&[
                    (":method", "GET"),
                    (":scheme", "https"),
                    (":path", "/index.html"),
                    (":authority", "www.example.com"),
                    ("custom-key", "custom-value"),
                ]),
            ),
        ];
        for (block, want) in blocks {
            assert_eq!(text(d.decode(&hex(block)).unwrap()), want, "{block}");
        }
        assert_eq!((d.table.len(), d.size), (3, 164));
        // A size update to 0 empties the table; then index 62 is gone.
        d.decode(&[0x20]).unwrap();
        assert_eq!((d.table.len(), d.size), (0, 0));
        assert!(d.decode(&[0x80 | 62]).is_err());
        // Malformed blocks are errors, not panics.
        for bad in [
            &[0x80][..],
            &[0x0f],
            &[0x00, 0x85, b'a'],
            &[0x3f, 0xff, 0xff],
            &[0x00, 0x81, 0xff, 0x00],
        ] {
            assert!(Decoder::default().decode(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn response_fields_are_read_from_both_blocks() {
        let field = |n: &str, v: &str| (n.as_bytes().to_vec(), v.as_bytes().to_vec());
        let mut r = Response::default();
        r.absorb(&[
            field(":status", "200"),
            field("content-type", "application/grpc"),
        ]);
        r.absorb(&[
            field("grpc-status", "16"),
            field("grpc-message", "WrongClusterID%3A%20a%C3%A9%zz"),
        ]);
        assert_eq!(
            r,
            Response {
                http_status: Some(200),
                grpc_status: Some(16),
                grpc_message: "WrongClusterID: aé%zz".into(),
            }
        );
    }
}
