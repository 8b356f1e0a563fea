//! Engine processes: spawned, watched and torn down so that nothing outlives its trial.
//!
//! - Each engine runs in its own process group (teardown signals the whole tree, never the
//!   harness) with a private working directory and its stdout/stderr in one log file (a child
//!   holding the harness's pipes would make nextest report a leak).
//! - The engine gets `PR_SET_PDEATHSIG = SIGKILL`, so it dies with the harness thread that
//!   started it; the harness tears down every live engine on SIGINT/SIGTERM (nextest's timeout
//!   sends SIGTERM) before exiting; and each live group is recorded under
//!   `<state>/pids/`, so the next harness start kills any group whose harness died by SIGKILL
//!   (grandchildren that the death signal does not reach).
//! - Teardown: SIGTERM to the group, a grace period, then SIGKILL.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::{Mutex, Once};
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal};

/// Why an engine process could not be started, or stopped running.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    /// Preparing the working directory or the log failed (`action` is `create`, `write`, `open`).
    #[error("failed to {action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The program could not be executed.
    #[error("failed to start `{}`: {source}", program.display())]
    Spawn {
        program: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The engine exited; `log` is [`EngineProcess::log_excerpt`].
    #[error("the engine exited ({status}){log}")]
    Exited {
        status: std::process::ExitStatus,
        log: String,
    },
    /// The engine's status could not be read.
    #[error("failed to poll the engine process: {0}")]
    Poll(#[source] std::io::Error),
    /// The engine exited (or could not be polled) before it was ready.
    #[error("engine failed to start: {0}")]
    StartFailed(#[source] Box<ProcessError>),
    /// The engine was still not ready when the readiness timeout passed.
    #[error("engine not ready after {timeout_s:.1} s (readiness timeout){log}")]
    NotReady { timeout_s: f64, log: String },
    /// No free TCP port could be found.
    #[error("failed to find a free port: {0}")]
    NoFreePort(#[source] std::io::Error),
}

impl ProcessError {
    fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.to_path_buf();
        move |source| Self::Io {
            action,
            path,
            source,
        }
    }
}

/// What to run: a program, its arguments and environment, and config files it reads.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LaunchCommand {
    pub program: PathBuf,
    pub args: Vec<String>,
    pub env: BTreeMap<String, String>,
    /// Files written into the working directory before launch: relative path -> content.
    pub files: BTreeMap<String, String>,
    /// How long teardown waits after SIGTERM before SIGKILL (`None`: 5 s). Engines that unload
    /// slowly and leave shared memory behind when killed (Triton) ask for more.
    pub stop_grace: Option<Duration>,
}

impl LaunchCommand {
    /// The command line as a shell would show it (for logs and messages).
    pub fn display(&self) -> String {
        let mut parts: Vec<String> = self.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        parts.push(self.program.display().to_string());
        parts.extend(self.args.iter().cloned());
        parts.join(" ")
    }
}

/// Process groups of live engines (with their pid records), torn down on SIGINT/SIGTERM.
static LIVE: Mutex<BTreeMap<i32, Option<PathBuf>>> = Mutex::new(BTreeMap::new());
static SIGNALS: Once = Once::new();

/// A running engine process (and its process group).
#[derive(Debug)]
pub struct EngineProcess {
    child: Child,
    pgid: i32,
    pub log: PathBuf,
    pub workdir: PathBuf,
    pid_file: Option<PathBuf>,
    pub started: Instant,
    torn_down: bool,
    stop_grace: Duration,
}

impl EngineProcess {
    /// Start `cmd` in `workdir` (created, and its files written) with output to `log`.
    /// `state` holds the pid records of live engines (see the module docs).
    pub fn spawn(
        cmd: &LaunchCommand,
        workdir: &Path,
        log: &Path,
        state: &Path,
    ) -> Result<Self, ProcessError> {
        install_signal_handlers();
        sweep_orphans(state);
        std::fs::create_dir_all(workdir).map_err(ProcessError::io("create", workdir))?;
        for (rel, content) in &cmd.files {
            let p = workdir.join(rel);
            if let Some(dir) = p.parent() {
                std::fs::create_dir_all(dir).map_err(ProcessError::io("create", dir))?;
            }
            std::fs::write(&p, content).map_err(ProcessError::io("write", &p))?;
        }
        if let Some(dir) = log.parent() {
            std::fs::create_dir_all(dir).map_err(ProcessError::io("create", dir))?;
        }
        let out = File::create(log).map_err(ProcessError::io("create", log))?;
        let err = out.try_clone().map_err(ProcessError::io("open", log))?;
        let mut command = std::process::Command::new(&cmd.program);
        command
            .args(&cmd.args)
            .envs(&cmd.env)
            .current_dir(workdir)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0);
        die_with_parent(&mut command);
        let child = command.spawn().map_err(|source| ProcessError::Spawn {
            program: cmd.program.clone(),
            source,
        })?;
        let pgid = child.id() as i32;
        let pid_file = record_pid(state, pgid, &cmd.program);
        LIVE.lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(pgid, pid_file.clone());
        Ok(Self {
            child,
            pgid,
            log: log.to_path_buf(),
            workdir: workdir.to_path_buf(),
            pid_file,
            started: Instant::now(),
            torn_down: false,
            stop_grace: cmd.stop_grace.unwrap_or(Duration::from_secs(5)),
        })
    }

    /// The engine's process id (its process group id too).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `Ok` while the engine runs; its exit status and last log lines once it has exited.
    pub fn check_alive(&mut self) -> Result<(), ProcessError> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(ProcessError::Exited {
                status,
                log: self.log_excerpt(),
            }),
            Err(e) => Err(ProcessError::Poll(e)),
        }
    }

    /// Like [`Self::check_alive`], but when the caller has seen failures that an exit would
    /// explain (refused connections), give a dying engine up to `settle` to become reapable: a
    /// process closes its sockets before its exit is visible to `wait`, so a check right after
    /// the refusals can still see it running.
    pub fn check_alive_settled(&mut self, settle: Duration) -> Result<(), ProcessError> {
        let until = Instant::now() + settle;
        loop {
            self.check_alive()?;
            if Instant::now() >= until {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Poll `ready` every 50 ms until it returns true, the engine exits, or `timeout` passes.
    /// Returns the startup time.
    pub fn wait_ready(
        &mut self,
        timeout: Duration,
        mut ready: impl FnMut() -> bool,
    ) -> Result<Duration, ProcessError> {
        let t0 = self.started;
        loop {
            self.check_alive()
                .map_err(|e| ProcessError::StartFailed(Box::new(e)))?;
            if ready() {
                return Ok(t0.elapsed());
            }
            if t0.elapsed() > timeout {
                return Err(ProcessError::NotReady {
                    timeout_s: timeout.as_secs_f64(),
                    log: self.log_excerpt(),
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The last lines of the log, formatted for an error message, with the log's path.
    pub fn log_excerpt(&self) -> String {
        let tail = tail_lines(&self.log, 12);
        let error_line = tail
            .iter()
            .rev()
            .find(|l| {
                let l = l.to_ascii_lowercase();
                l.contains("error")
                    || l.contains("fail")
                    || l.contains("invalid")
                    || l.contains("unrecognized")
            })
            .cloned();
        let mut s = String::new();
        if let Some(e) = error_line {
            s.push_str(&format!(": {}", e.trim()));
        }
        s.push_str(&format!("\n  engine log {}:", self.log.display()));
        for l in &tail {
            s.push_str("\n    | ");
            s.push_str(l);
        }
        s
    }

    /// Peak resident memory of the engine's process group, in bytes: the sum of each member's
    /// high-water mark (`VmHWM`), an upper bound on the tree's peak.
    pub fn peak_rss_bytes(&self) -> u64 {
        group_members(self.pgid)
            .into_iter()
            .filter_map(|pid| vm_hwm_bytes(&pid.to_string()))
            .sum()
    }

    /// SIGTERM to the group, up to `grace` for it to go, then SIGKILL; waits for the child.
    pub fn teardown(&mut self, grace: Duration) {
        if self.torn_down {
            return;
        }
        self.torn_down = true;
        kill_group(self.pgid, grace);
        let _ = self.child.wait();
        LIVE.lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.pgid);
        if let Some(f) = &self.pid_file {
            let _ = std::fs::remove_file(f);
        }
    }
}

impl Drop for EngineProcess {
    fn drop(&mut self) {
        self.teardown(self.stop_grace);
    }
}

/// Whether any process of group `pgid` is alive.
pub fn group_alive(pgid: i32) -> bool {
    Pid::from_raw(pgid).is_some_and(|p| rustix::process::test_kill_process_group(p).is_ok())
        && !group_members(pgid).is_empty()
}

/// SIGTERM, grace, SIGKILL for a process group.
fn kill_group(pgid: i32, grace: Duration) {
    let Some(pid) = Pid::from_raw(pgid) else {
        return;
    };
    let _ = rustix::process::kill_process_group(pid, Signal::TERM);
    let t0 = Instant::now();
    while t0.elapsed() < grace {
        if !group_alive(pgid) {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = rustix::process::kill_process_group(pid, Signal::KILL);
    // SIGKILL is delivered asynchronously: give the kernel a moment to end every member, so
    // that callers (and the next trial) see the group gone.
    let t1 = Instant::now();
    while group_alive(pgid) && t1.elapsed() < Duration::from_secs(2) {
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Living processes (not zombies) of a process group, from `/proc`.
fn group_members(pgid: i32) -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                return false;
            };
            // Fields after the `(comm)`: state, ppid, pgrp.
            let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
                return false;
            };
            let f: Vec<&str> = rest.split_whitespace().collect();
            f.len() > 2 && f[0] != "Z" && f[2].parse::<i32>().ok() == Some(pgid)
        })
        .collect()
}

/// Set `PR_SET_PDEATHSIG` in the child, and exit at once if the parent is already gone.
#[allow(unsafe_code)]
fn die_with_parent(command: &mut std::process::Command) {
    let parent = rustix::process::getpid();
    // SAFETY: the closure runs in the forked child before exec and only makes two raw syscalls
    // (prctl, getppid), which are async-signal-safe; it allocates nothing and takes no locks.
    unsafe {
        command.pre_exec(move || {
            rustix::process::set_parent_process_death_signal(Some(Signal::KILL))?;
            if rustix::process::getppid() != Some(parent) {
                return Err(std::io::Error::other(
                    "the harness exited during the engine's start",
                ));
            }
            Ok(())
        });
    }
}

/// Set once a SIGINT/SIGTERM handler started tearing engines down.
static TERMINATING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether the harness is being terminated by a signal: a measurement whose engine is being torn
/// down now must not be recorded as the engine's failure (result writers check this).
pub fn terminating() -> bool {
    TERMINATING.load(std::sync::atomic::Ordering::SeqCst)
}

/// On SIGINT/SIGTERM: tear down every live engine, then die of the signal as if unhandled.
fn install_signal_handlers() {
    SIGNALS.call_once(|| {
        let Ok(mut signals) = signal_hook::iterator::Signals::new([
            signal_hook::consts::SIGINT,
            signal_hook::consts::SIGTERM,
        ]) else {
            return;
        };
        std::thread::spawn(move || {
            if let Some(sig) = signals.forever().next() {
                TERMINATING.store(true, std::sync::atomic::Ordering::SeqCst);
                let groups: Vec<(i32, Option<PathBuf>)> = LIVE
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .iter()
                    .map(|(g, f)| (*g, f.clone()))
                    .collect();
                eprintln!(
                    "l1: signal {sig}: tearing down {} engine process group(s)",
                    groups.len()
                );
                for (g, pid_file) in &groups {
                    kill_group(*g, Duration::from_secs(3));
                    if let Some(f) = pid_file {
                        let _ = std::fs::remove_file(f);
                    }
                }
                let _ = signal_hook::low_level::emulate_default_handler(sig);
                std::process::exit(128 + sig);
            }
        });
    });
}

/// Record a live engine group: `<state>/pids/<pgid>` holds `<harness pid> <program>`.
fn record_pid(state: &Path, pgid: i32, program: &Path) -> Option<PathBuf> {
    let dir = state.join("pids");
    std::fs::create_dir_all(&dir).ok()?;
    let f = dir.join(pgid.to_string());
    let me = rustix::process::getpid().as_raw_pid();
    std::fs::write(&f, format!("{me} {}", program.display())).ok()?;
    Some(f)
}

/// Kill engine groups whose harness is gone (it was SIGKILLed and could not tear them down).
/// A group is killed only if its leader still runs the recorded program, so a reused process
/// id is never hit.
pub fn sweep_orphans(state: &Path) {
    let Ok(dir) = std::fs::read_dir(state.join("pids")) else {
        return;
    };
    for entry in dir.flatten() {
        let path = entry.path();
        let Some(pgid) = path
            .file_name()
            .and_then(|n| n.to_str()?.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        let Some((owner, program)) = text.split_once(' ') else {
            continue;
        };
        let owner_alive = owner
            .parse::<i32>()
            .ok()
            .and_then(Pid::from_raw)
            .is_some_and(|p| rustix::process::test_kill_process(p).is_ok());
        if owner_alive {
            continue;
        }
        let name = Path::new(program)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned());
        let cmdline = std::fs::read(format!("/proc/{pgid}/cmdline")).ok();
        let leader_is_engine = cmdline.as_ref().is_some_and(|c| {
            name.as_ref()
                .is_some_and(|n| String::from_utf8_lossy(c).contains(n.as_str()))
        });
        // A group whose leader is gone (the engine died with the harness through
        // PR_SET_PDEATHSIG) may still hold its children, e.g. Python's resource tracker, which
        // ignores SIGTERM. Its id cannot have been reused while members remain: Linux does not
        // hand out a pid that is still a process group id.
        let leaderless = cmdline.is_none() && !group_members(pgid).is_empty();
        if group_alive(pgid) && (leader_is_engine || leaderless) {
            eprintln!(
                "l1: killing orphaned engine process group {pgid} ({program}) of a dead harness"
            );
            kill_group(pgid, Duration::from_secs(2));
        }
        let _ = std::fs::remove_file(&path);
    }
}

/// The last `n` lines of a file (reads at most its last 64 KiB).
pub fn tail_lines(path: &Path, n: usize) -> Vec<String> {
    let Ok(mut f) = File::open(path) else {
        return Vec::new();
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let start = len.saturating_sub(64 * 1024);
    if f.seek(SeekFrom::Start(start)).is_err() {
        return Vec::new();
    }
    let mut buf = Vec::new();
    let _ = f.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf);
    let lines: Vec<String> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            l.chars()
                .filter(|c| !c.is_control() || *c == '\t')
                .take(400)
                .collect()
        })
        .collect();
    lines[lines.len().saturating_sub(n)..].to_vec()
}

/// A free TCP port on 127.0.0.1 (bound, then released; the engine binds it next).
pub fn free_port() -> Result<u16, ProcessError> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(ProcessError::NoFreePort)?;
    l.local_addr()
        .map(|a| a.port())
        .map_err(ProcessError::NoFreePort)
}

/// Peak resident memory (`VmHWM`) of process `pid` (`self` for this one), from `/proc`.
fn vm_hwm_bytes(pid: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// This process's peak resident memory (in-process engines), 0 where `/proc` has none.
pub fn own_peak_rss_bytes() -> u64 {
    vm_hwm_bytes("self").unwrap_or(0)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn sh(script: &str) -> LaunchCommand {
        LaunchCommand {
            program: "/bin/sh".into(),
            args: vec!["-c".into(), script.into()],
            ..LaunchCommand::default()
        }
    }

    fn scratch(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("l1-proc-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn teardown_kills_the_whole_tree() {
        let d = scratch("tree");
        // A parent that ignores SIGTERM, with a grandchild in the background.
        let cmd = sh("trap '' TERM; sleep 300 & echo started; wait");
        let mut p = EngineProcess::spawn(&cmd, &d.join("wd"), &d.join("log"), &d).unwrap();
        let pgid = p.pid() as i32;
        p.wait_ready(Duration::from_secs(5), || {
            tail_lines(&d.join("log"), 1) == ["started"]
        })
        .unwrap();
        assert!(group_members(pgid).len() >= 2);
        assert!(d.join("pids").join(pgid.to_string()).exists());
        p.teardown(Duration::from_millis(300));
        assert!(
            !group_alive(pgid),
            "members left: {:?}",
            group_members(pgid)
        );
        assert!(!d.join("pids").join(pgid.to_string()).exists());
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn an_engine_that_exits_fails_the_start_with_its_error_line() {
        let d = scratch("exit");
        let cmd = sh("echo loading; echo 'error: unknown flag --bogus' >&2; exit 3");
        let mut p = EngineProcess::spawn(&cmd, &d.join("wd"), &d.join("log"), &d).unwrap();
        let e = p.wait_ready(Duration::from_secs(5), || false).unwrap_err();
        assert!(
            matches!(&e, ProcessError::StartFailed(inner) if matches!(**inner, ProcessError::Exited { .. })),
            "{e}"
        );
        let e = e.to_string();
        assert!(e.contains("engine failed to start"), "{e}");
        assert!(e.contains("exit status: 3"), "{e}");
        assert!(e.contains(": error: unknown flag --bogus"), "{e}");
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn readiness_times_out_with_the_log_tail() {
        let d = scratch("timeout");
        let cmd = sh("echo still loading weights; sleep 30");
        let mut p = EngineProcess::spawn(&cmd, &d.join("wd"), &d.join("log"), &d).unwrap();
        let e = p
            .wait_ready(Duration::from_millis(300), || false)
            .unwrap_err();
        assert!(matches!(e, ProcessError::NotReady { .. }), "{e}");
        let e = e.to_string();
        assert!(e.contains("readiness timeout"), "{e}");
        assert!(e.contains("still loading weights"), "{e}");
        drop(p);
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn config_files_and_env_reach_the_engine() {
        let d = scratch("files");
        let mut cmd = sh("cat conf/model.pbtxt; echo \"$L1_X\"");
        cmd.files
            .insert("conf/model.pbtxt".into(), "max_batch_size: 4\n".into());
        cmd.env.insert("L1_X".into(), "from-env".into());
        let mut p = EngineProcess::spawn(&cmd, &d.join("wd"), &d.join("log"), &d).unwrap();
        let _ = p.wait_ready(Duration::from_secs(5), || false);
        assert_eq!(
            tail_lines(&d.join("log"), 2),
            ["max_batch_size: 4", "from-env"]
        );
        assert!(cmd.display().starts_with("L1_X=from-env /bin/sh -c"));
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn orphans_of_a_dead_harness_are_swept() {
        let d = scratch("orphan");
        // A group whose recorded owner is a process that has exited. `; exit 0` keeps the
        // leader running `/bin/sh` (the recorded program) even with a shell that execs a lone
        // last command in place, which would leave a leader that no longer runs it.
        let mut child = std::process::Command::new("/bin/sh")
            .args(["-c", "sleep 300; exit 0"])
            .process_group(0)
            .spawn()
            .unwrap();
        let pgid = child.id() as i32;
        // `spawn` returns when the child's exec has replaced its memory, before the kernel has
        // set up its arguments: until then `/proc/<pid>/cmdline` is empty, and the sweep rightly
        // leaves alone a group whose leader it cannot identify. Under load the sweep ran in that
        // window, and this test then waited 300 s for `sleep` (and passed). Wait for the exec to
        // finish, as it has for any orphan of a dead harness.
        let t0 = Instant::now();
        while !std::fs::read(format!("/proc/{pgid}/cmdline"))
            .is_ok_and(|c| String::from_utf8_lossy(&c).contains("sh"))
        {
            assert!(
                t0.elapsed() < Duration::from_secs(30),
                "the shell never started"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        let dead = std::process::Command::new("true").spawn().unwrap();
        let dead_pid = dead.id();
        let mut dead = dead;
        dead.wait().unwrap();
        std::fs::create_dir_all(d.join("pids")).unwrap();
        std::fs::write(
            d.join("pids").join(pgid.to_string()),
            format!("{dead_pid} /bin/sh"),
        )
        .unwrap();
        sweep_orphans(&d);
        // Checked before waiting for the child: a group the sweep left alive fails the test at
        // once (it used to block in `wait` until `sleep 300` ended, and then pass).
        let alive = group_alive(pgid);
        let cmdline = std::fs::read(format!("/proc/{pgid}/cmdline")).unwrap_or_default();
        if alive {
            kill_group(pgid, Duration::from_millis(0));
        }
        let _ = child.wait();
        assert!(
            !alive,
            "the orphaned group {pgid} ({}) was not killed; recorded owner {dead_pid}: {:?}",
            String::from_utf8_lossy(&cmdline).replace('\0', " "),
            std::fs::read_to_string(format!("/proc/{dead_pid}/stat"))
        );
        assert!(!d.join("pids").join(pgid.to_string()).exists());
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn leaderless_groups_of_a_dead_harness_are_swept() {
        // The engine (group leader) died with its harness, leaving a child that ignores
        // SIGTERM, as Python's multiprocessing resource tracker does.
        let d = scratch("leaderless");
        let mut leader = std::process::Command::new("/bin/sh")
            .args(["-c", "(trap '' TERM; exec sleep 300) &"])
            .stdout(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap();
        let pgid = leader.id() as i32;
        leader.wait().unwrap();
        assert!(group_alive(pgid), "the child outlives its leader");
        let mut dead = std::process::Command::new("true").spawn().unwrap();
        let dead_pid = dead.id();
        dead.wait().unwrap();
        std::fs::create_dir_all(d.join("pids")).unwrap();
        std::fs::write(
            d.join("pids").join(pgid.to_string()),
            format!("{dead_pid} /usr/bin/vllm-serve"),
        )
        .unwrap();
        sweep_orphans(&d);
        let t0 = Instant::now();
        while group_alive(pgid) && t0.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(!group_alive(pgid), "the leaderless group was killed");
        let _ = std::fs::remove_dir_all(&d);
    }
}
