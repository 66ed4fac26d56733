//! Header blocks (HPACK, RFC 7541) of a unary gRPC call: the request's,
//! encoded without the dynamic table or Huffman (always valid, and nothing to
//! remember per connection), and what the client reads of the response's.

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
        let fields = hpack::Decoder::new().decode(&block).unwrap();
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
