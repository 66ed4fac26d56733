//! What `/proc/<pid>/status` and `/proc/<pid>/stat` say of a process: its
//! memory (VmRSS, VmHWM, RssAnon), threads and CPU time. One reader for the
//! tests (`support::probe`) and the benches, which include this file with
//! `#[path = "../tests/support/proc_status.rs"]`.

use std::io;

/// The lines of `/proc/<pid>/status`, read once.
pub struct ProcStatus {
    text: String,
}

impl ProcStatus {
    pub fn read(pid: u32) -> io::Result<ProcStatus> {
        let text = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
        Ok(ProcStatus { text })
    }

    /// The number after `name`, `None` when the line is not there: in KiB
    /// for memory (`"VmRSS:"`; `"VmHWM:"`, its peak; `"RssAnon:"`, the
    /// process' own pages without the binary's code), a count for `"Threads:"`.
    pub fn field(&self, name: &str) -> Option<u64> {
        self.text
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
    }
}

/// The CPU time the process used, user and system (utime + stime in
/// `/proc/<pid>/stat`), in clock ticks.
pub fn cpu_ticks(pid: u32) -> io::Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // After "(comm)": the state is field 3 of the line, utime 14, stime 15.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |i: usize| -> io::Result<u64> {
        fields
            .get(i)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| io::Error::other(format!("/proc/{pid}/stat: no field {}", i + 3)))
    };
    Ok(field(11)? + field(12)?)
}
