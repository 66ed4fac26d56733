//! One open HTTP/2 connection and the frame loop of its calls: several unary
//! calls go out in one write, as concurrent streams, and come back together.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::error::CallError;
use super::frame::{self, Header};
use super::headers;

/// The window this client grants the server, per stream and per connection.
const WINDOW: i64 = 1 << 24;
/// The largest reply message accepted.
const MAX_REPLY: usize = 64 << 20;

/// The connection died before the server took any of our streams: safe to retry.
pub struct Stale(pub CallError);

/// One call of a batch: its header block and encoded request message.
pub struct Request<'a> {
    pub block: &'a [u8],
    pub message: &'a [u8],
}

/// One open connection.
pub struct Conn {
    stream: TcpStream,
    next_stream: u32,
    /// What the server lets us send, on the connection and (initially) per stream.
    send_window: i64,
    stream_initial: i64,
    /// Bytes read past the end of the last batch (the start of a later frame).
    leftover: Vec<u8>,
    decoder: headers::Decoder,
    /// The server sent GOAWAY, or the socket failed: do not reuse.
    broken: bool,
    /// DATA received since the connection's window was last topped up.
    conn_recv: i64,
}

/// One stream of a batch: what is left to send and what came back.
struct Stream {
    id: u32,
    body: Vec<u8>,
    sent: usize,
    window: i64,
    response: headers::Response,
    block: Vec<u8>,
    reply: Vec<u8>,
    unacked: i64,
    /// The stream's last HEADERS had END_STREAM.
    ending: bool,
    done: bool,
    failed: Option<CallError>,
}

/// A frame the batch cannot go on after.
enum Abort {
    Stale(CallError),
    Fatal(CallError),
}

impl Conn {
    pub async fn open(authority: &str, timeout: Duration) -> Result<Conn, CallError> {
        let connect = TcpStream::connect(authority);
        let stream = match tokio::time::timeout(timeout, connect).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) => return Err(CallError::Connect(e)),
            Err(_) => {
                return Err(CallError::Connect(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("no connection after {timeout:?}"),
                )));
            }
        };
        stream.set_nodelay(true).map_err(CallError::Connect)?;
        let mut conn = Conn {
            stream,
            next_stream: 1,
            send_window: frame::DEFAULT_WINDOW,
            stream_initial: frame::DEFAULT_WINDOW,
            leftover: Vec::new(),
            decoder: headers::Decoder::default(),
            broken: false,
            conn_recv: 0,
        };
        let mut out = frame::PREFACE.to_vec();
        frame::push_settings(
            &mut out,
            &[
                (frame::SETTINGS_HEADER_TABLE_SIZE, 0),
                (frame::SETTINGS_ENABLE_PUSH, 0),
                (frame::SETTINGS_INITIAL_WINDOW_SIZE, WINDOW as u32),
            ],
        );
        frame::push_window_update(&mut out, 0, (WINDOW - frame::DEFAULT_WINDOW) as u32);
        conn.stream
            .write_all(&out)
            .await
            .map_err(CallError::Connect)?;
        Ok(conn)
    }

    /// Whether the next batch may use this connection.
    pub fn reusable(&self) -> bool {
        !self.broken && self.next_stream < (1 << 30)
    }

    /// The calls on new streams, one outcome each in order; `Err(Stale)` if
    /// the connection died before the server took any of them.
    pub async fn calls(
        &mut self,
        requests: &[Request<'_>],
    ) -> Result<Vec<Result<Vec<u8>, CallError>>, Stale> {
        let mut out = Vec::new();
        let mut streams = Vec::with_capacity(requests.len());
        for request in requests {
            let id = self.next_stream;
            self.next_stream += 2;
            let mut body = Vec::with_capacity(5 + request.message.len());
            body.push(0);
            body.extend_from_slice(&(request.message.len() as u32).to_be_bytes());
            body.extend_from_slice(request.message);
            let mut stream = Stream {
                id,
                body,
                sent: 0,
                window: self.stream_initial,
                response: headers::Response::default(),
                block: Vec::new(),
                reply: Vec::new(),
                unacked: 0,
                ending: false,
                done: false,
                failed: None,
            };
            if request.block.len() > frame::DEFAULT_MAX_FRAME {
                stream.failed = Some(CallError::Protocol("request headers too long".into()));
                stream.done = true;
                // Never opened: nothing of it goes out.
                stream.sent = stream.body.len();
            } else {
                frame::push(
                    &mut out,
                    frame::HEADERS,
                    frame::END_HEADERS,
                    id,
                    request.block,
                );
            }
            streams.push(stream);
        }
        let mut buf = std::mem::take(&mut self.leftover);
        let mut any_frame = false;
        loop {
            for s in streams.iter_mut() {
                self.push_data(s, &mut out);
            }
            if !out.is_empty() {
                let written = self.stream.write_all(&out).await;
                out.clear();
                if let Err(e) = written {
                    return self.lost(any_frame, e, streams);
                }
            }
            if streams.iter().all(|s| s.done) {
                // Kept without the read buffer's spare capacity (usually empty).
                self.leftover = buf.as_slice().to_vec();
                return Ok(streams.into_iter().map(Stream::finish).collect());
            }
            let header = loop {
                if let Some(h) = Header::parse(&buf) {
                    if h.length > frame::DEFAULT_MAX_FRAME {
                        self.broken = true;
                        let e = CallError::Protocol(format!("frame of {} bytes", h.length));
                        return Ok(streams.into_iter().map(|_| Err(e.clone_kind())).collect());
                    }
                    if buf.len() >= 9 + h.length {
                        break h;
                    }
                }
                buf.reserve(4096);
                match self.stream.read_buf(&mut buf).await {
                    Ok(0) => {
                        let eof = std::io::Error::new(
                            std::io::ErrorKind::UnexpectedEof,
                            "closed by the server",
                        );
                        return self.lost(any_frame, eof, streams);
                    }
                    Ok(_) => {}
                    Err(e) => return self.lost(any_frame, e, streams),
                }
            };
            let payload: Vec<u8> = buf.drain(..9 + header.length).skip(9).collect();
            any_frame |= header.stream != 0 && streams.iter().any(|s| s.id == header.stream);
            match self.handle(header, &payload, &mut streams, &mut out) {
                Ok(()) => {}
                Err(Abort::Stale(e)) if !any_frame => return Err(Stale(e)),
                Err(Abort::Stale(e) | Abort::Fatal(e)) => {
                    self.broken = true;
                    return Ok(outcomes(streams, &e));
                }
            }
        }
    }

    /// Queues as much of `s`'s body as the windows allow.
    fn push_data(&mut self, s: &mut Stream, out: &mut Vec<u8>) {
        while s.sent < s.body.len() {
            let room = self
                .send_window
                .min(s.window)
                .min(frame::DEFAULT_MAX_FRAME as i64);
            if room <= 0 {
                return;
            }
            let n = (s.body.len() - s.sent).min(room as usize);
            let flags = if s.sent + n == s.body.len() {
                frame::END_STREAM
            } else {
                0
            };
            frame::push(out, frame::DATA, flags, s.id, &s.body[s.sent..s.sent + n]);
            s.sent += n;
            self.send_window -= n as i64;
            s.window -= n as i64;
        }
    }

    /// The socket failed: stale if nothing of our streams came back yet.
    fn lost(
        &mut self,
        any_frame: bool,
        e: std::io::Error,
        streams: Vec<Stream>,
    ) -> Result<Vec<Result<Vec<u8>, CallError>>, Stale> {
        self.broken = true;
        let e = CallError::Io(e);
        if !any_frame {
            return Err(Stale(e));
        }
        Ok(outcomes(streams, &e))
    }

    fn handle(
        &mut self,
        h: Header,
        payload: &[u8],
        streams: &mut [Stream],
        out: &mut Vec<u8>,
    ) -> Result<(), Abort> {
        let protocol = |m: String| Abort::Fatal(CallError::Protocol(m));
        let ours = streams
            .iter_mut()
            .find(|s| s.id == h.stream && h.stream != 0);
        match h.kind {
            frame::SETTINGS if h.flags & frame::ACK == 0 => {
                let settings = frame::parse_settings(payload)
                    .ok_or_else(|| protocol("bad SETTINGS".into()))?;
                for (key, value) in settings {
                    if key == frame::SETTINGS_INITIAL_WINDOW_SIZE {
                        let delta = i64::from(value) - self.stream_initial;
                        streams.iter_mut().for_each(|s| s.window += delta);
                        self.stream_initial = i64::from(value);
                    }
                }
                frame::push(out, frame::SETTINGS, frame::ACK, 0, &[]);
            }
            frame::PING if h.flags & frame::ACK == 0 => {
                frame::push(out, frame::PING, frame::ACK, 0, payload)
            }
            frame::WINDOW_UPDATE => {
                let inc = i64::from(
                    frame::word(payload, 0, true)
                        .ok_or_else(|| protocol("bad WINDOW_UPDATE".into()))?,
                );
                match ours {
                    _ if h.stream == 0 => self.send_window += inc,
                    Some(s) => s.window += inc,
                    None => {}
                }
            }
            frame::GOAWAY => {
                self.broken = true;
                let last = frame::word(payload, 0, true).unwrap_or(0);
                let code = frame::word(payload, 4, false).unwrap_or(0);
                if streams.iter().any(|s| s.id > last && !s.done) {
                    return Err(Abort::Stale(CallError::Protocol(format!(
                        "GOAWAY (code {code})"
                    ))));
                }
            }
            frame::RST_STREAM => {
                if let Some(s) = ours {
                    let code = frame::word(payload, 0, false).unwrap_or(0);
                    s.failed
                        .get_or_insert(CallError::Protocol(format!("stream reset (code {code})")));
                    s.done = true;
                }
            }
            frame::DATA => {
                // Counted over all calls: the connection's window is shared.
                let len = h.length as i64;
                self.conn_recv += len;
                if self.conn_recv >= WINDOW / 2 {
                    frame::push_window_update(out, 0, self.conn_recv as u32);
                    self.conn_recv = 0;
                }
                if let Some(s) = ours {
                    let data = frame::content(h.kind, h.flags, payload)
                        .ok_or_else(|| protocol("bad DATA padding".into()))?;
                    if s.reply.len() + data.len() > MAX_REPLY + 5 {
                        return Err(protocol(format!("reply longer than {MAX_REPLY} bytes")));
                    }
                    s.reply.extend_from_slice(data);
                    s.unacked += len;
                    if s.unacked >= WINDOW / 2 && h.flags & frame::END_STREAM == 0 {
                        frame::push_window_update(out, s.id, s.unacked as u32);
                        s.unacked = 0;
                    }
                    s.done |= h.flags & frame::END_STREAM != 0;
                }
            }
            frame::HEADERS | frame::CONTINUATION => {
                let fragment = if h.kind == frame::HEADERS {
                    frame::content(h.kind, h.flags, payload)
                        .ok_or_else(|| protocol("bad HEADERS padding".into()))?
                } else {
                    payload
                };
                // Every block is decoded, ours or not, to keep the HPACK table in step.
                let mut other = Vec::new();
                let mut stream = ours;
                if let Some(s) = stream.as_deref_mut()
                    && h.kind == frame::HEADERS
                {
                    s.ending = h.flags & frame::END_STREAM != 0;
                }
                let block = match stream.as_deref_mut() {
                    Some(s) => &mut s.block,
                    None => &mut other,
                };
                block.extend_from_slice(fragment);
                if h.flags & frame::END_HEADERS != 0 {
                    let block = std::mem::take(block);
                    let fields = self
                        .decoder
                        .decode(&block)
                        .map_err(|e| protocol(format!("bad header block: {e}")))?;
                    if let Some(s) = stream {
                        s.response.absorb(&fields);
                        s.done |= s.ending;
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }
}

/// What a batch cut short by `e` gives: the finished streams' own outcomes, `e` for the rest.
fn outcomes(streams: Vec<Stream>, e: &CallError) -> Vec<Result<Vec<u8>, CallError>> {
    (streams.into_iter())
        .map(|s| {
            if s.done {
                s.finish()
            } else {
                Err(e.clone_kind())
            }
        })
        .collect()
}

impl Stream {
    /// The reply message, or why there is none.
    fn finish(self) -> Result<Vec<u8>, CallError> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        let r = self.response;
        match r.http_status {
            Some(200) => {}
            other => return Err(CallError::Protocol(format!("HTTP status {other:?}"))),
        }
        match r.grpc_status {
            Some(0) => {}
            Some(code) => {
                return Err(CallError::Status {
                    code,
                    message: r.grpc_message,
                });
            }
            None => return Err(CallError::Protocol("no grpc-status in the reply".into())),
        }
        let body = self.reply;
        if body.len() < 5 {
            return Err(CallError::Protocol("no reply message".into()));
        }
        if body[0] != 0 {
            return Err(CallError::Protocol(
                "compressed reply (none was asked for)".into(),
            ));
        }
        let len = u32::from_be_bytes([body[1], body[2], body[3], body[4]]) as usize;
        if body.len() != 5 + len {
            return Err(CallError::Protocol(format!(
                "reply message of {} bytes, framed as {len}",
                body.len() - 5
            )));
        }
        Ok(body[5..].to_vec())
    }
}
