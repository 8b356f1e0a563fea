//! Live progress of a run: a JSON-lines event stream (`<run>/events.jsonl`: trial started, rep
//! done, trial finished, gate verdict, cache hit, run finished), [`follow`] to tail it (what
//! `l1 runs follow ID` prints), and a progress line on stderr while trials run.
//!
//! Every event is one line written with one `write` on a file opened with `O_APPEND`, so the
//! processes nextest runs in parallel append whole lines that never interleave. Writing events
//! never fails a trial: an event that cannot be written is dropped with one warning.
//!
//! The stderr line is printed only when it cannot corrupt a runner's output: with
//! `L1_PROGRESS=1`, or when stderr is a terminal and the run is not under nextest (nextest
//! captures each test's stderr and shows it only for failures, and draws its own progress bar;
//! follow the event stream there). Lines are whole lines (no carriage-return redraws), so they
//! sit between libtest's `test … ok` lines instead of overwriting them. `L1_PROGRESS=0` turns
//! it off.

use std::io::{BufRead, Write};
use std::path::Path;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::model::TrialRecord;
use crate::record::{RunDir, now_unix};

pub use crate::model::Event;

const FILE: &str = "events.jsonl";

thread_local! {
    static CURRENT: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
}

static TOTAL: AtomicUsize = AtomicUsize::new(0);
static STARTED: AtomicUsize = AtomicUsize::new(0);
static FINISHED: AtomicUsize = AtomicUsize::new(0);
static CACHE_HITS: AtomicUsize = AtomicUsize::new(0);
static WARNED: AtomicBool = AtomicBool::new(false);

fn t0() -> Instant {
    static T0: OnceLock<Instant> = OnceLock::new();
    *T0.get_or_init(Instant::now)
}

/// Append one event to the run's stream (one `write` of one whole line, `O_APPEND`).
pub fn emit(run: &RunDir, ev: &Event) {
    let Ok(mut line) = serde_json::to_string(ev) else {
        return;
    };
    line.push('\n');
    let path = run.path.join(FILE);
    let r = std::fs::create_dir_all(&run.path).and_then(|()| {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)?;
        // One call: `write_all` would split a short write into two appends.
        let n = f.write(line.as_bytes())?;
        if n == line.len() {
            Ok(())
        } else {
            Err(std::io::Error::other("short write"))
        }
    });
    if let Err(e) = r
        && !WARNED.swap(true, Ordering::Relaxed)
    {
        eprintln!("l1: progress events not written to {}: {e}", path.display());
    }
}

/// The number of trials this process will run (for `i/n` and the ETA).
pub fn set_total(n: usize) {
    TOTAL.store(n, Ordering::Relaxed);
    let _ = t0();
}

/// A trial starts on this thread.
pub fn trial_started(run: &RunDir, trial: &str) {
    CURRENT.with(|c| trial.clone_into(&mut c.borrow_mut()));
    STARTED.fetch_add(1, Ordering::Relaxed);
    emit(
        run,
        &Event::TrialStarted {
            ts: now_unix(),
            pid: std::process::id(),
            trial: trial.into(),
        },
    );
}

/// The trial on this thread finished rep `rep` (1-based) of `of`.
pub fn rep_done(run: &RunDir, rep: u32, of: u32) {
    let trial = CURRENT.with(|c| c.borrow().clone());
    terminal(&trial, Some((rep, of)));
    emit(
        run,
        &Event::RepDone {
            ts: now_unix(),
            pid: std::process::id(),
            trial,
            rep,
            of,
        },
    );
}

/// The trial on this thread took measurement `key` from the cache (called by the store).
pub fn cache_hit(run: &RunDir, key: &str) {
    CACHE_HITS.fetch_add(1, Ordering::Relaxed);
    emit(
        run,
        &Event::CacheHit {
            ts: now_unix(),
            pid: std::process::id(),
            trial: CURRENT.with(|c| c.borrow().clone()),
            key: key.into(),
        },
    );
}

/// A trial finished: its verdict, and each gate's verdict for gate trials.
pub fn trial_finished(run: &RunDir, rec: &TrialRecord) {
    FINISHED.fetch_add(1, Ordering::Relaxed);
    let ts = now_unix();
    let pid = std::process::id();
    emit(
        run,
        &Event::TrialFinished {
            ts,
            pid,
            trial: rec.name.clone(),
            kind: rec.kind.clone(),
            passed: rec.passed,
            duration_s: rec.duration_s,
            message: rec.message.lines().next().unwrap_or("").to_string(),
        },
    );
    for g in &rec.gates {
        emit(
            run,
            &Event::GateVerdict {
                ts,
                pid,
                trial: rec.name.clone(),
                method: g.method.clone(),
                passed: g.passed,
                winner: g.winner.clone(),
                message: g.message.lines().next().unwrap_or("").to_string(),
            },
        );
    }
    terminal(&rec.name, None);
}

/// Whether the stderr progress line is shown (see the module docs).
pub fn terminal_enabled() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| {
        let env = crate::settings::env();
        env.progress.unwrap_or_else(|| {
            use std::io::IsTerminal;
            std::io::stderr().is_terminal() && !env.nextest
        })
    })
}

fn clock(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}

/// The progress line: `l1 [i/n] rep j/N · 0:12 elapsed · ETA 0:40 · 1 cache hit · <trial>`.
pub fn progress_line(
    trial: &str,
    rep: Option<(u32, u32)>,
    started: usize,
    finished: usize,
    total: usize,
    elapsed: Duration,
    cache_hits: usize,
) -> String {
    let mut s = if total > 0 {
        format!("l1 [{}/{total}]", started.min(total))
    } else {
        format!("l1 [{started}]")
    };
    match rep {
        Some((j, n)) => s.push_str(&format!(" rep {j}/{n}")),
        None => s.push_str(" done"),
    }
    s.push_str(&format!(" · {} elapsed", clock(elapsed)));
    if total > 0 && finished > 0 && finished < total {
        let per = elapsed.as_secs_f64() / finished as f64;
        let eta = Duration::from_secs_f64(per * (total - finished) as f64);
        s.push_str(&format!(" · ETA {}", clock(eta)));
    }
    if cache_hits > 0 {
        s.push_str(&format!(
            " · {cache_hits} cache hit{}",
            if cache_hits == 1 { "" } else { "s" }
        ));
    }
    // The combo part of the name is what changes between lines.
    let short = trial.rsplit("::").next().unwrap_or(trial);
    s.push_str(&format!(" · {short}"));
    s
}

fn terminal(trial: &str, rep: Option<(u32, u32)>) {
    if !terminal_enabled() {
        return;
    }
    let mut line = progress_line(
        trial,
        rep,
        STARTED.load(Ordering::Relaxed),
        FINISHED.load(Ordering::Relaxed),
        TOTAL.load(Ordering::Relaxed),
        t0().elapsed(),
        CACHE_HITS.load(Ordering::Relaxed),
    );
    line.push('\n');
    // One write of a whole line: it cannot land inside another thread's line.
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

/// How [`follow`] ends.
#[derive(Clone, Copy, Debug)]
pub struct FollowOptions {
    /// Return after a `run_finished` event.
    pub stop_when_finished: bool,
    /// Return after this long without a new event (`None`: wait forever).
    pub idle_timeout: Option<Duration>,
    /// How often to look for new lines.
    pub poll: Duration,
    /// Write the events as JSON lines (else as readable text).
    pub json: bool,
}

impl Default for FollowOptions {
    fn default() -> Self {
        Self {
            stop_when_finished: true,
            idle_timeout: None,
            poll: Duration::from_millis(250),
            json: false,
        }
    }
}

/// One event as a readable line.
pub fn describe(ev: &Event) -> String {
    let ok = |p: bool| if p { "pass" } else { "FAIL" };
    match ev {
        Event::TrialStarted { trial, .. } => format!("started   {trial}"),
        Event::RepDone { trial, rep, of, .. } => format!("rep {rep}/{of}  {trial}"),
        Event::CacheHit { trial, key, .. } => format!("cache hit {trial} ({key})"),
        Event::TrialFinished {
            trial,
            passed,
            duration_s,
            ..
        } => format!("{}      {trial} ({duration_s:.1} s)", ok(*passed)),
        Event::GateVerdict {
            method,
            passed,
            message,
            ..
        } => format!("gate {method} {}: {message}", ok(*passed)),
        Event::TuneTrial {
            trial,
            outcome,
            combo,
            value,
            budget_used,
            ..
        } => format!(
            "tune      {trial}: {outcome} {combo}{} [budget {:.0} % used]",
            value.map(|v| format!(" = {v:.4}")).unwrap_or_default(),
            budget_used * 100.0
        ),
        Event::RunFinished { passed, failed, .. } => {
            format!("run finished: {passed} passed, {failed} failed")
        }
    }
}

/// Follow `run_dir/events.jsonl`: write every event (those already there, then new ones as they
/// are appended) to `out`. A line that is not an event is written as a warning, not skipped.
/// Returns the number of events written.
pub fn follow(run_dir: &Path, out: &mut dyn Write, opts: FollowOptions) -> std::io::Result<usize> {
    let path = run_dir.join(FILE);
    let mut offset = 0u64;
    let mut partial = String::new();
    let mut count = 0;
    let mut last_new = Instant::now();
    loop {
        let mut got = false;
        if let Ok(mut f) = std::fs::File::open(&path) {
            use std::io::{Seek, SeekFrom};
            f.seek(SeekFrom::Start(offset))?;
            let mut r = std::io::BufReader::new(f);
            let mut buf = String::new();
            loop {
                buf.clear();
                let n = r.read_line(&mut buf)?;
                if n == 0 {
                    break;
                }
                offset += n as u64;
                if !buf.ends_with('\n') {
                    // A line still being written (or a crashed writer's tail): wait for the rest.
                    partial.push_str(&buf);
                    break;
                }
                let line = std::mem::take(&mut partial) + buf.trim_end_matches('\n');
                got = true;
                match serde_json::from_str::<Event>(&line) {
                    Ok(ev) => {
                        count += 1;
                        if opts.json {
                            writeln!(out, "{line}")?;
                        } else {
                            writeln!(out, "{}", describe(&ev))?;
                        }
                        if opts.stop_when_finished && matches!(ev, Event::RunFinished { .. }) {
                            out.flush()?;
                            return Ok(count);
                        }
                    }
                    Err(e) => writeln!(out, "l1: {}: not an event ({e}): {line}", path.display())?,
                }
            }
        }
        out.flush()?;
        if got {
            last_new = Instant::now();
        } else if opts.idle_timeout.is_some_and(|t| last_new.elapsed() >= t) {
            return Ok(count);
        }
        std::thread::sleep(opts.poll);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_shows_position_rep_eta_and_cache_hits() {
        let l = progress_line(
            "sim::s::t::attn=fa3",
            Some((3, 7)),
            4,
            3,
            10,
            Duration::from_secs(30),
            1,
        );
        assert_eq!(
            l,
            "l1 [4/10] rep 3/7 · 0:30 elapsed · ETA 1:10 · 1 cache hit · attn=fa3"
        );
    }

    #[test]
    fn concurrent_writers_append_whole_lines_and_follow_reads_them() {
        let dir = std::env::temp_dir().join(format!("l1-progress-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let run = RunDir::new(&dir, "r");
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let run = run.clone();
                std::thread::spawn(move || {
                    for i in 0..200u32 {
                        emit(
                            &run,
                            &Event::RepDone {
                                ts: 1.0,
                                pid: t,
                                trial: format!("trial-{t}-{}", "x".repeat(300)),
                                rep: i,
                                of: 200,
                            },
                        );
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap_or_else(|_| panic!("writer panicked"));
        }
        emit(
            &run,
            &Event::RunFinished {
                ts: 2.0,
                pid: 0,
                passed: 1,
                failed: 0,
            },
        );
        let text = std::fs::read_to_string(run.path.join(FILE)).unwrap_or_default();
        assert_eq!(text.lines().count(), 8 * 200 + 1);
        for l in text.lines() {
            serde_json::from_str::<Event>(l).unwrap_or_else(|e| panic!("torn line ({e}): {l}"));
        }
        let mut out = Vec::new();
        let n = follow(
            &run.path,
            &mut out,
            FollowOptions {
                idle_timeout: Some(Duration::from_secs(5)),
                ..Default::default()
            },
        )
        .unwrap_or(0);
        assert_eq!(n, 8 * 200 + 1);
        let out = String::from_utf8_lossy(&out);
        assert!(out.ends_with("run finished: 1 passed, 0 failed\n"), "{out}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
