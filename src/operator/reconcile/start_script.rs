//! The script a Ray container runs: the start commands, kept alive exactly as
//! long as Ray is.
//!
//! Start commands come in two shapes. The operator's defaults and most user
//! commands block (`ray start --block`); the legacy operator's own examples do
//! not (`ray start --head ... &> /tmp/raylogs`), because it ran them through
//! `kubectl exec` in a container kept alive by its own `tail -f` command,
//! which the operator replaces. So the script runs the commands in the
//! background and then lives while Ray's main process lives (`gcs_server` on
//! a head, `raylet` on a worker): a Ray that dies ends the container, non-zero,
//! so the kubelet and the operator see it; a Ray that runs keeps it up,
//! whichever way it was started.
//!
//! `ulimit -n 65536` (in the defaults, and in every legacy example) fails
//! where the hard limit is lower and Ray must still start: `ulimit` is wrapped
//! to take the largest value the hard limit allows.
//!
//! SIGTERM runs `ray stop` and exits at once; bash as PID 1 would otherwise
//! wait out the pod's whole grace period.

use crate::naming::NodeKind;

/// How long the script waits, after the start commands returned, for Ray's
/// main process to appear before it counts Ray as failed to start.
const START_GRACE_SECONDS: u32 = 30;

/// The `bash -lc` script that runs `commands` for a node of `kind`.
pub fn start_script(kind: NodeKind, commands: &[String]) -> String {
    let process = match kind {
        NodeKind::Head => "gcs_server",
        NodeKind::Worker => "raylet",
    };
    script_watching(process, commands)
}

/// The script, living while a process named `process` (its `comm`) does.
fn script_watching(process: &str, commands: &[String]) -> String {
    format!(
        r#"# Written by ray-operator: runs the start commands below and lives while Ray does.
ulimit() {{
  if [ "$1" = -n ] && [ $# -eq 2 ]; then
    local hard; hard=$(builtin ulimit -Hn)
    if [ "$hard" != unlimited ] && [ "$2" != unlimited ] && [ "$2" -gt "$hard" ] 2>/dev/null; then
      builtin ulimit -n "$hard"; return
    fi
  fi
  builtin ulimit "$@"
}}
ray_alive() {{
  local comm name
  for comm in /proc/[0-9]*/comm; do
    read -r name 2>/dev/null < "$comm" && [ "$name" = {process} ] && return 0
  done
  return 1
}}
trap 'ray stop >/dev/null 2>&1; exit 0' TERM INT
(
{commands}
) &
starter=$!
seen=""
waited=0
while :; do
  if ray_alive; then
    seen=1
  elif [ -n "$seen" ]; then
    echo "ray-operator: Ray's {process} exited; ending the container" >&2
    exit 1
  elif ! kill -0 "$starter" 2>/dev/null; then
    waited=$((waited + 1))
    if [ "$waited" -gt {grace} ]; then
      wait "$starter"; code=$?
      echo "ray-operator: the start commands ended (exit $code) and Ray's {process} never ran" >&2
      exit $(( code == 0 ? 1 : code ))
    fi
  fi
  sleep 1 & wait $!
done
"#,
        commands = commands.join("\n"),
        grace = START_GRACE_SECONDS,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    /// Runs the script with `ray` replaced by a shell function, and a fake
    /// main process: `exec -a gcs_server sleep N` shows as `gcs_server` in
    /// /proc/<pid>/comm only via its own name, so the fake is a copy of
    /// `sleep` named like Ray's process.
    /// A name for the fake Ray process no real Ray on this machine has: the
    /// script scans every process it can see, and a test runs on the host.
    fn fake_name(role: &str) -> String {
        format!("{role}{}", std::process::id() % 100_000)
    }

    fn run(process: &str, commands: &[&str], dir: &std::path::Path) -> (i32, Duration, String) {
        let commands: Vec<String> = commands.iter().map(|c| c.replace("RAY", process)).collect();
        let script = script_watching(process, &commands);
        let start = Instant::now();
        let out = Command::new("bash")
            .arg("-c")
            .arg(script)
            .env("PATH", format!("{}:/usr/bin:/bin", dir.display()))
            .stdin(Stdio::null())
            .output()
            .expect("bash runs");
        (
            out.status.code().unwrap_or(-1),
            start.elapsed(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn fake_ray(name: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let sleep = which("sleep");
        std::fs::copy(sleep, dir.path().join(name)).unwrap();
        std::fs::write(dir.path().join("ray"), "#!/bin/sh\nexit 0\n").unwrap();
        Command::new("chmod")
            .arg("+x")
            .arg(dir.path().join("ray"))
            .status()
            .unwrap();
        dir
    }

    fn which(cmd: &str) -> String {
        let out = Command::new("sh")
            .arg("-c")
            .arg(format!("command -v {cmd}"))
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    #[test]
    fn the_head_watches_gcs_server_and_a_worker_raylet() {
        assert!(start_script(NodeKind::Head, &[]).contains(r#"[ "$name" = gcs_server ]"#));
        assert!(start_script(NodeKind::Worker, &[]).contains(r#"[ "$name" = raylet ]"#));
    }

    #[test]
    fn a_blocking_start_lives_while_ray_does_and_a_dead_ray_ends_it() {
        let name = fake_name("gcs");
        let dir = fake_ray(&name);
        let (code, took, stderr) = run(&name, &["RAY 3"], dir.path());
        assert_eq!(code, 1, "{stderr}");
        assert!(took >= Duration::from_secs(3), "{took:?}");
        assert!(stderr.contains(&format!("{name} exited")), "{stderr}");
    }

    #[test]
    fn a_non_blocking_legacy_start_keeps_the_container_up() {
        let name = fake_name("raylet");
        let dir = fake_ray(&name);
        // As the legacy examples do: start Ray in the background and return.
        let (code, took, stderr) = run(
            &name,
            &["ray stop", "ulimit -n 65536; (RAY 3 &) &> /dev/null"],
            dir.path(),
        );
        assert_eq!(code, 1, "{stderr}");
        assert!(took >= Duration::from_secs(3), "{took:?}");
    }

    #[test]
    fn ulimit_above_the_hard_limit_takes_the_hard_limit() {
        let name = fake_name("ulimit");
        let dir = fake_ray(&name);
        let (code, _, stderr) = run(
            &name,
            &["ulimit -n 4096; ulimit -n 65536 && [ $(ulimit -n) = 4096 ] && RAY 3"],
            dir.path(),
        );
        // Ray ran (and ended): the ulimit did not stop the commands.
        assert!(
            stderr.contains(&format!("{name} exited")),
            "exit {code}: {stderr}"
        );
    }

    #[test]
    fn sigterm_stops_at_once() {
        let name = fake_name("term");
        let dir = fake_ray(&name);
        let script = script_watching(&name, &[format!("{name} 5")]);
        let mut child = Command::new("bash")
            .arg("-c")
            .arg(script)
            .env("PATH", format!("{}:/usr/bin:/bin", dir.path().display()))
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(1500));
        let start = Instant::now();
        Command::new("kill")
            .arg(child.id().to_string())
            .status()
            .unwrap();
        let status = child.wait().unwrap();
        assert!(start.elapsed() < Duration::from_secs(3));
        assert_eq!(status.code(), Some(0));
    }
}
