//! A persistent HTTP/2 connection for unary gRPC calls, one call at a time.
//!
//! Held between calls it is a socket, a stream counter, two flow-control
//! windows and an (empty) HPACK table: a few hundred bytes, where a tonic
//! channel keeps ~30-50 KiB of buffers and tasks per connection. Buffers live
//! only while a call runs. A call takes the connection out of the channel and
//! puts it back only when the call completed cleanly, so a call that fails or
//! is dropped (timed out) never leaves a connection in an unknown state.

use std::sync::Mutex;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::frame::{self, Header};
use super::headers;

/// The window this client grants the server, per stream and per connection.
const WINDOW: i64 = 1 << 24;
/// The largest reply message accepted.
const MAX_REPLY: usize = 64 << 20;

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("cannot connect: {0}")]
    Connect(std::io::Error),
    #[error("connection lost: {0}")]
    Io(#[from] std::io::Error),
    #[error("HTTP/2 protocol error: {0}")]
    Protocol(String),
    /// The server answered with a gRPC status other than OK.
    #[error("status {code}: {message}")]
    Status { code: i32, message: String },
}

/// A connection the server closed before it saw our stream: safe to retry.
struct Stale(CallError);

/// A lazily connected channel to one `host:port`.
pub struct Channel {
    authority: String,
    connect_timeout: Duration,
    idle: Mutex<Option<Conn>>,
}

impl Channel {
    pub fn new(authority: String, connect_timeout: Duration) -> Channel {
        Channel {
            authority,
            connect_timeout,
            idle: Mutex::new(None),
        }
    }

    /// Drops the idle connection, if any; the next call opens a new one.
    pub fn disconnect(&self) {
        self.idle.lock().expect("channel lock").take();
    }

    /// Whether an idle connection is held for the next call.
    pub fn is_connected(&self) -> bool {
        self.idle.lock().expect("channel lock").is_some()
    }

    /// Calls `path` with the encoded request `message`; the reply message's
    /// bytes. A reused connection the server had closed is replaced once.
    pub async fn unary(
        &self,
        path: &str,
        metadata: &[(&str, &str)],
        timeout: Duration,
        message: &[u8],
    ) -> Result<Vec<u8>, CallError> {
        let reused = self.idle.lock().expect("channel lock").take();
        let fresh = reused.is_none();
        let mut conn = match reused {
            Some(conn) => conn,
            None => Conn::open(&self.authority, self.connect_timeout).await?,
        };
        let block = headers::request(&self.authority, path, timeout.as_millis() as u64, metadata);
        let mut result = conn.call(&block, message).await;
        if let Err(Stale(_)) = &result
            && !fresh
        {
            conn = Conn::open(&self.authority, self.connect_timeout).await?;
            result = conn.call(&block, message).await;
        }
        match result {
            Ok(reply) => {
                // A gRPC status leaves the connection in step; a broken frame or
                // socket does not.
                let in_step = matches!(reply, Ok(_) | Err(CallError::Status { .. }));
                if in_step && conn.reusable() {
                    let mut idle = self.idle.lock().expect("channel lock");
                    if idle.is_none() {
                        *idle = Some(conn);
                    }
                }
                reply
            }
            Err(Stale(e)) => Err(e),
        }
    }
}

/// One open connection.
struct Conn {
    stream: TcpStream,
    next_stream: u32,
    /// What the server lets us send, on the connection and (initially) per stream.
    send_window: i64,
    stream_initial: i64,
    /// Bytes read past the end of the last call (the start of a later frame).
    leftover: Vec<u8>,
    decoder: headers::Decoder,
    /// The server sent GOAWAY: finish the call, then close.
    going_away: bool,
    /// DATA received since the connection's window was last topped up.
    conn_recv: i64,
}

/// What one call has received so far.
#[derive(Default)]
struct Progress {
    any_frame: bool,
    response: headers::Response,
    block: Vec<u8>,
    body: Vec<u8>,
    stream_recv: i64,
    /// The stream's last HEADERS had END_STREAM.
    ending: bool,
    done: bool,
}

impl Conn {
    async fn open(authority: &str, timeout: Duration) -> Result<Conn, CallError> {
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
            going_away: false,
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

    fn reusable(&self) -> bool {
        !self.going_away && self.next_stream < (1 << 30)
    }

    /// One unary call on a new stream. `Ok` holds the call's own outcome;
    /// `Err(Stale)` says the connection died before the server took the stream.
    async fn call(
        &mut self,
        block: &[u8],
        message: &[u8],
    ) -> Result<Result<Vec<u8>, CallError>, Stale> {
        let id = self.next_stream;
        self.next_stream += 2;
        let mut body = Vec::with_capacity(5 + message.len());
        body.push(0);
        body.extend_from_slice(&(message.len() as u32).to_be_bytes());
        body.extend_from_slice(message);
        if block.len() > frame::DEFAULT_MAX_FRAME {
            return Ok(Err(CallError::Protocol("request headers too long".into())));
        }
        let mut out = Vec::with_capacity(9 + block.len() + 9 + body.len());
        frame::push(&mut out, frame::HEADERS, frame::END_HEADERS, id, block);
        let mut stream_window = self.stream_initial;
        let mut sent = 0;
        let mut progress = Progress::default();
        let mut buf = std::mem::take(&mut self.leftover);
        loop {
            while sent < body.len() {
                let room = self
                    .send_window
                    .min(stream_window)
                    .min(frame::DEFAULT_MAX_FRAME as i64);
                if room <= 0 {
                    break;
                }
                let n = (body.len() - sent).min(room as usize);
                let flags = if sent + n == body.len() {
                    frame::END_STREAM
                } else {
                    0
                };
                frame::push(&mut out, frame::DATA, flags, id, &body[sent..sent + n]);
                sent += n;
                self.send_window -= n as i64;
                stream_window -= n as i64;
            }
            if !out.is_empty() {
                let written = self.stream.write_all(&out).await;
                out.clear();
                if let Err(e) = written {
                    return self.lost(&progress, e);
                }
            }
            if progress.done {
                // Kept without the read buffer's spare capacity (usually empty).
                self.leftover = buf.as_slice().to_vec();
                return Ok(progress.finish());
            }
            // The next whole frame.
            let header = loop {
                if let Some(h) = Header::parse(&buf)
                    && buf.len() >= 9 + h.length
                {
                    break h;
                }
                if let Some(h) = Header::parse(&buf)
                    && h.length > frame::DEFAULT_MAX_FRAME
                {
                    return Ok(Err(CallError::Protocol(format!(
                        "frame of {} bytes",
                        h.length
                    ))));
                }
                buf.reserve(4096);
                match self.stream.read_buf(&mut buf).await {
                    Ok(0) => {
                        let eof = std::io::Error::new(
                            std::io::ErrorKind::UnexpectedEof,
                            "closed by the server",
                        );
                        return self.lost(&progress, eof);
                    }
                    Ok(_) => {}
                    Err(e) => return self.lost(&progress, e),
                }
            };
            let payload: Vec<u8> = buf.drain(..9 + header.length).skip(9).collect();
            if let Err(e) = self.handle(
                header,
                &payload,
                id,
                &mut stream_window,
                &mut progress,
                &mut out,
            ) {
                return match e {
                    Handled::Stale(e) => Err(Stale(e)),
                    Handled::Fatal(e) => Ok(Err(e)),
                };
            }
        }
    }

    /// The connection failed: stale if nothing of our stream came back yet.
    fn lost(
        &mut self,
        progress: &Progress,
        e: std::io::Error,
    ) -> Result<Result<Vec<u8>, CallError>, Stale> {
        self.going_away = true;
        if progress.any_frame {
            Ok(Err(CallError::Io(e)))
        } else {
            Err(Stale(CallError::Io(e)))
        }
    }

    fn handle(
        &mut self,
        h: Header,
        payload: &[u8],
        id: u32,
        stream_window: &mut i64,
        progress: &mut Progress,
        out: &mut Vec<u8>,
    ) -> Result<(), Handled> {
        let protocol = |m: String| Handled::Fatal(CallError::Protocol(m));
        match h.kind {
            frame::SETTINGS if h.flags & frame::ACK == 0 => {
                let settings = frame::parse_settings(payload)
                    .ok_or_else(|| protocol("bad SETTINGS".into()))?;
                for (key, value) in settings {
                    if key == frame::SETTINGS_INITIAL_WINDOW_SIZE {
                        *stream_window += i64::from(value) - self.stream_initial;
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
                match h.stream {
                    0 => self.send_window += inc,
                    s if s == id => *stream_window += inc,
                    _ => {}
                }
            }
            frame::GOAWAY => {
                self.going_away = true;
                let last = frame::word(payload, 0, true).unwrap_or(0);
                let code = frame::word(payload, 4, false).unwrap_or(0);
                if last < id {
                    return Err(Handled::Stale(CallError::Protocol(format!(
                        "GOAWAY (code {code})"
                    ))));
                }
            }
            frame::RST_STREAM if h.stream == id => {
                let code = frame::word(payload, 0, false).unwrap_or(0);
                // REFUSED_STREAM: the server did no work on it.
                return Err(if code == 0x7 && !progress.any_frame {
                    Handled::Stale(CallError::Protocol("stream refused".into()))
                } else {
                    protocol(format!("stream reset (code {code})"))
                });
            }
            frame::DATA => {
                let len = h.length as i64;
                // Counted over all calls: the connection's window is shared.
                self.conn_recv += len;
                if self.conn_recv >= WINDOW / 2 {
                    frame::push_window_update(out, 0, self.conn_recv as u32);
                    self.conn_recv = 0;
                }
                if h.stream == id {
                    progress.any_frame = true;
                    let data = frame::content(h.kind, h.flags, payload)
                        .ok_or_else(|| protocol("bad DATA padding".into()))?;
                    if progress.body.len() + data.len() > MAX_REPLY + 5 {
                        return Err(protocol(format!("reply longer than {MAX_REPLY} bytes")));
                    }
                    progress.body.extend_from_slice(data);
                    progress.stream_recv += len;
                    if progress.stream_recv >= WINDOW / 2 && h.flags & frame::END_STREAM == 0 {
                        frame::push_window_update(out, id, progress.stream_recv as u32);
                        progress.stream_recv = 0;
                    }
                    progress.done |= h.flags & frame::END_STREAM != 0;
                }
            }
            frame::HEADERS | frame::CONTINUATION => {
                let fragment = if h.kind == frame::HEADERS {
                    frame::content(h.kind, h.flags, payload)
                        .ok_or_else(|| protocol("bad HEADERS padding".into()))?
                } else {
                    payload
                };
                if h.kind == frame::HEADERS && h.stream == id {
                    // Ends the stream once its CONTINUATIONs are in.
                    progress.ending = h.flags & frame::END_STREAM != 0;
                }
                progress.block.extend_from_slice(fragment);
                if h.flags & frame::END_HEADERS != 0 {
                    // Every block is decoded, to keep the HPACK table in step.
                    let block = std::mem::take(&mut progress.block);
                    let fields = self
                        .decoder
                        .decode(&block)
                        .map_err(|e| protocol(format!("bad header block: {e}")))?;
                    if h.stream == id {
                        progress.any_frame = true;
                        progress.response.absorb(&fields);
                        progress.done |= progress.ending;
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }
}

enum Handled {
    Stale(CallError),
    Fatal(CallError),
}

impl Progress {
    /// The reply message, or why there is none.
    fn finish(self) -> Result<Vec<u8>, CallError> {
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
        let body = self.body;
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
