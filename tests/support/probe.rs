//! What a test reads of a running operator from outside: its health port
//! (`/readyz`, `/metrics`) and its memory in `/proc/<pid>/status`.

use std::collections::BTreeMap;

use super::proc_status::ProcStatus;

/// GET `path` on `127.0.0.1:port`: (status code, body); `None` while nothing answers.
pub async fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut socket = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .ok()?;
    socket
        .write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
        .await
        .ok()?;
    let mut response = String::new();
    socket.read_to_string(&mut response).await.ok()?;
    let code = response.split_whitespace().nth(1)?.parse().ok()?;
    Some((code, response.split_once("\r\n\r\n")?.1.to_string()))
}

/// The operator's per-cluster maps, one `ray_operator_tracked_clusters`
/// gauge each: expectations, statuses, retries, rejections, autoscalers,
/// board, events.
pub const TRACKED_MAPS: usize = 7;

/// A /metrics body: each sample by its name with labels, as written
/// (`ray_operator_tracked_clusters{map="board"}`).
#[derive(Debug, Clone, Default)]
pub struct Metrics(BTreeMap<String, f64>);

impl Metrics {
    pub fn parse(text: &str) -> Metrics {
        Metrics(
            text.lines()
                .filter(|l| !l.starts_with('#'))
                .filter_map(|l| {
                    let (name, value) = l.rsplit_once(' ')?;
                    Some((name.to_string(), value.parse().ok()?))
                })
                .collect(),
        )
    }

    /// A sample's value; 0 for one not written (a counter of errors that
    /// never happened has no line).
    pub fn value(&self, sample: &str) -> f64 {
        self.0.get(sample).copied().unwrap_or(0.0)
    }

    /// The samples of metric `name`, with their labels.
    pub fn samples(&self, name: &str) -> BTreeMap<&str, f64> {
        self.0
            .iter()
            .filter(|(sample, _)| sample.split('{').next() == Some(name))
            .map(|(sample, n)| (sample.as_str(), *n))
            .collect()
    }

    /// The `ray_operator_tracked_clusters` gauges: clusters per map, by map.
    pub fn tracked_clusters(&self) -> BTreeMap<String, u64> {
        self.0
            .iter()
            .filter_map(|(sample, n)| {
                let map = sample
                    .strip_prefix("ray_operator_tracked_clusters{map=\"")?
                    .strip_suffix("\"}")?;
                Some((map.to_string(), *n as u64))
            })
            .collect()
    }
}

/// A process' memory from `/proc/<pid>/status`, in KiB.
#[derive(Debug, Clone, Copy)]
pub struct Memory {
    pub vm_rss: u64,
    /// The peak of VmRSS so far.
    pub vm_hwm: u64,
    /// The process' own pages (heap, stacks): VmRSS without the binary's
    /// code pages (RssFile), which do not grow with the work it does.
    pub rss_anon: u64,
}

impl Memory {
    pub fn of(pid: u32) -> Memory {
        let status = ProcStatus::read(pid).unwrap_or_else(|e| panic!("/proc/{pid}/status: {e}"));
        let field = |name: &str| -> u64 {
            status
                .field(name)
                .unwrap_or_else(|| panic!("no {name} in /proc/{pid}/status"))
        };
        Memory {
            vm_rss: field("VmRSS:"),
            vm_hwm: field("VmHWM:"),
            rss_anon: field("RssAnon:"),
        }
    }
}
