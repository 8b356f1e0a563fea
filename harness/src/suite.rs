//! The generated test suite: specs → trials for libtest-mimic (and so for `cargo test` and
//! `cargo nextest`), and what each trial does when it runs.
//!
//! Trial names: `<class>::<spec>::<engine>@<version>::<model>::<hardware>::<workload>::<leaf>`
//! where `class` is `sim` (simulated engine), `cpu` (a real engine on the CPU host) or `gpu` (a
//! real engine on a GPU), and `leaf` is a combo (`act=bf16,attn=flash_attn_v3,...`, dimensions by
//! short name in alphabetical order, `unset` dimensions left out, then knobs), `baseline` or `gate`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use l1_engines::combo::UNSET;
use l1_engines::registry::engine as engine_info;
use l1_engines::sim::{self, SimTarget};
use l1_engines::{Combo, DeviceKind, HardwareProfile, ModelProfile, Workload};
use libtest_mimic::{Failed, Trial};

use crate::detect::Detected;
use crate::diag::{Diagnostic, display_path};
use crate::expand::{self, ExpandedTarget, TargetId};
use crate::gates::{self, Arm, GateContext};
use crate::profiles::Catalogs;
use crate::record::{
    self, MeasurementRecord, Obtained, RECORD_SCHEMA_VERSION, RunDir, TrialRecord,
};
use crate::render::RenderContext;
use crate::spec::{self, Gate, GateMethod, Measure};

/// Where things are and what the environment asks for.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The repository root (holds `catalogs/` and `specs/`).
    pub root: PathBuf,
    /// `L1_SPECS`: a spec file or directory (default `<root>/specs`).
    pub specs: PathBuf,
    /// Where `l1/runs/<run-id>`, the default store and the metrics textfile go: `L1_TARGET_DIR`,
    /// else `CARGO_TARGET_DIR`, else `<root>/target`. `L1_TARGET_DIR` moves l1's results
    /// without moving cargo's build (the project's own tests point it at a scratch directory).
    pub target_dir: PathBuf,
    /// `L1_REQUIRE_ENGINES=1`: a missing engine fails its trials instead of ignoring them.
    pub require_engines: bool,
    /// `L1_REQUIRE_HARDWARE=1`: a target whose GPU is not present fails instead of being ignored.
    pub require_hardware: bool,
    /// `ENABLE_L1_KERNEL_TUNING=0`: launch no engine.
    pub kill_switch: bool,
    /// `L1_ENGINES_DIR`: installed engines and test models (default `~/.cache/l1/engines`).
    pub engines_dir: PathBuf,
}

impl Settings {
    /// Settings from the environment, with `default_root` when `L1_ROOT` is unset.
    pub fn from_env(default_root: &Path) -> Self {
        let root = std::env::var_os("L1_ROOT")
            .map(PathBuf::from)
            .unwrap_or_else(|| default_root.to_path_buf());
        let specs = std::env::var_os("L1_SPECS")
            .map(|p| {
                let p = PathBuf::from(p);
                if p.is_absolute() || p.exists() {
                    p
                } else {
                    root.join(p)
                }
            })
            .unwrap_or_else(|| root.join("specs"));
        let target_dir = ["L1_TARGET_DIR", "CARGO_TARGET_DIR"]
            .iter()
            .find_map(|k| std::env::var_os(k).filter(|v| !v.is_empty()))
            .map(PathBuf::from)
            .unwrap_or_else(|| root.join("target"));
        let flag =
            |k: &str| std::env::var(k).is_ok_and(|v| v == "1" || v.eq_ignore_ascii_case("true"));
        let kill_switch = std::env::var("ENABLE_L1_KERNEL_TUNING")
            .is_ok_and(|v| v == "0" || v.eq_ignore_ascii_case("false"));
        Self {
            root,
            specs,
            target_dir,
            require_engines: flag("L1_REQUIRE_ENGINES"),
            require_hardware: flag("L1_REQUIRE_HARDWARE"),
            kill_switch,
            engines_dir: l1_engines::launch::engines_dir(),
        }
    }

    /// Settings for running `specs` from `root` into `target_dir`, nothing required or switched
    /// off, engines from the default engines directory (tests and tools).
    pub fn new(root: &Path, specs: PathBuf, target_dir: PathBuf) -> Self {
        Self {
            root: root.to_path_buf(),
            specs,
            target_dir,
            require_engines: false,
            require_hardware: false,
            kill_switch: false,
            engines_dir: l1_engines::launch::engines_dir(),
        }
    }
}

/// What kind of trial a name denotes.
#[derive(Clone, Debug)]
enum Leaf {
    Combo(Combo),
    Baseline,
    Gate,
    /// A tune spec's target: one Tier-2 session.
    Tune,
}

/// One spec's settings, shared by its trials.
#[derive(Debug)]
pub(crate) struct SpecPlan {
    pub(crate) name: String,
    pub(crate) measure: Measure,
    gates: Vec<Gate>,
    /// A tune spec's validated settings.
    pub(crate) tune: Option<Arc<crate::tuning::TuneSpec>>,
    snapshot: String,
    /// The spec file, its source and rendered text (recorded with the run in the store).
    path: PathBuf,
    source: String,
    rendered: String,
}

/// One target, shared by its trials.
#[derive(Debug)]
pub struct TargetPlan {
    pub(crate) spec: Arc<SpecPlan>,
    pub target: ExpandedTarget,
    pub class: &'static str,
    /// Why its trials are listed as ignored, if they are.
    pub ignore: Option<String>,
    /// The kill switch stopped this target's trials: run anyway (`--ignored`,
    /// `--include-ignored`, nextest `--run-ignored`), they fail without launching anything.
    pub(crate) killed: bool,
    pub(crate) hardware: HardwareProfile,
    model: ModelProfile,
    workload: Workload,
    pub(crate) run: RunDir,
    pub(crate) cats: Arc<Catalogs>,
    pub(crate) settings_target_dir: PathBuf,
    engines_dir: PathBuf,
    /// The hardware fingerprint calibrations are recorded under.
    fingerprint: String,
    /// The cache key's parts common to every combo, computed on first use (the model hash reads
    /// model files, and real engines report their version): never while listing.
    parts: std::sync::OnceLock<Result<crate::fingerprint::TargetParts, String>>,
}

impl TargetPlan {
    /// The cache key's target-wide parts, or why they could not be computed (then nothing is
    /// looked up in or offered to the cache).
    fn parts(&self) -> Result<&crate::fingerprint::TargetParts, String> {
        self.parts
            .get_or_init(|| {
                let id = &self.target.id;
                let simulated = id.engine == "sim";
                let engine_version = if simulated {
                    id.version.clone()
                } else {
                    crate::fingerprint::engine_version(
                        &id.engine,
                        &self.engines_dir,
                        &self.settings_target_dir,
                    )?
                };
                let (hardware_fingerprint, hardware) =
                    crate::fingerprint::hardware(&id.hardware, &self.hardware, simulated);
                Ok(crate::fingerprint::TargetParts {
                    catalog_version: self.cats.kernels.catalog.version,
                    engine: id.engine.clone(),
                    engine_version,
                    model_hash: crate::fingerprint::model(
                        &id.model,
                        &self.model,
                        (!simulated).then_some(self.engines_dir.as_path()),
                    )?,
                    hardware_fingerprint,
                    hardware,
                    workload_fingerprint: crate::fingerprint::workload(&self.workload),
                    plan_hash: crate::fingerprint::plan(&self.spec.measure),
                })
            })
            .as_ref()
            .map_err(Clone::clone)
    }
}

/// A trial before it becomes a libtest-mimic `Trial`.
#[derive(Clone, Debug)]
pub struct PlannedTrial {
    pub name: String,
    pub ignored: Option<String>,
    pub(crate) plan: Arc<TargetPlan>,
    leaf: Leaf,
}

/// The slug of a combo in test names.
pub fn combo_slug(cats: &Catalogs, combo: &Combo) -> String {
    let mut parts: Vec<(String, String)> = combo
        .dims
        .iter()
        .filter(|(_, v)| v.as_str() != UNSET)
        .map(|(d, v)| (cats.kernels.short(d), v.clone()))
        .collect();
    parts.sort();
    let mut s: Vec<String> = parts.into_iter().map(|(k, v)| format!("{k}={v}")).collect();
    s.extend(combo.knobs.iter().map(|(k, v)| format!("{k}={v}")));
    if s.is_empty() {
        "defaults".into()
    } else {
        s.join(",")
    }
}

/// The spec name inside a trial name (its second `::` component).
pub fn spec_of_trial(name: &str) -> Option<&str> {
    exact_of_trial(name).map(|e| e.0)
}

/// The spec name and, when the name has one, the target id (`engine@version::model::hardware::workload`)
/// inside a trial name.
pub fn exact_of_trial(name: &str) -> Option<(&str, Option<String>)> {
    let parts: Vec<&str> = name.split("::").collect();
    let spec = spec_of_trial_parts(&parts)?;
    let target = (parts.len() == 7).then(|| parts[2..6].join("::"));
    Some((spec, target))
}

fn spec_of_trial_parts<'a>(parts: &[&'a str]) -> Option<&'a str> {
    matches!(
        parts.first().copied(),
        Some("sim" | "cpu" | "gpu" | "invalid")
    )
    .then_some(())?;
    parts.get(1).copied()
}

/// `L1_GATES=topk5,pareto` (or `manual` for a research run): the run's override of every spec's
/// gates, the origin's per-run `quality_gate` field.
pub fn gates_from_env() -> Result<Option<Vec<GateMethod>>, Diagnostic> {
    match std::env::var("L1_GATES") {
        Ok(text) => parse_gates(&text).map(Some),
        Err(_) => Ok(None),
    }
}

/// Parse an `L1_GATES` value.
pub fn parse_gates(text: &str) -> Result<Vec<GateMethod>, Diagnostic> {
    let mut out = Vec::new();
    for name in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let method = match name {
            "topk5" => GateMethod::Topk5,
            "pareto" => GateMethod::Pareto,
            "regression" => GateMethod::Regression,
            "manual" => GateMethod::Manual,
            "drift" => GateMethod::Drift,
            "fidelity" => GateMethod::Fidelity,
            other => {
                return Err(Diagnostic::new(
                    "L1_GATES",
                    format!("unknown gate method `{other}` in L1_GATES={text}"),
                )
                .field("L1_GATES")
                .choices([
                    "topk5",
                    "pareto",
                    "regression",
                    "manual",
                    "drift",
                    "fidelity",
                ]));
            }
        };
        out.push(method);
    }
    if out.is_empty() {
        return Err(
            Diagnostic::new("L1_GATES", "L1_GATES is set but names no gate")
                .field("L1_GATES")
                .expected("a comma-separated list of: topk5, pareto, regression, manual"),
        );
    }
    Ok(out)
}

/// Replace a spec's gates by `methods`, keeping the spec's metric where a method takes one and
/// each method's own settings where the spec had that method.
fn override_gates(spec_gates: &[Gate], methods: &[GateMethod]) -> Vec<Gate> {
    let metric = spec_gates.iter().find_map(|g| g.metric.clone());
    methods
        .iter()
        .map(|m| {
            spec_gates
                .iter()
                .find(|g| g.method == *m)
                .cloned()
                .unwrap_or_else(|| Gate {
                    metric: metric.clone(),
                    ..Gate::new(*m)
                })
        })
        .collect()
}

/// Why a target's trials cannot run here, if they cannot.
fn ignore_reason(
    settings: &Settings,
    detected: &Detected,
    id: &TargetId,
    hw: &HardwareProfile,
) -> Option<String> {
    let info = engine_info(&id.engine)?;
    if !info.needs_device() {
        return None;
    }
    if settings.kill_switch {
        return Some(
            "ENABLE_L1_KERNEL_TUNING=0: the kill switch is on, no engine is launched".into(),
        );
    }
    // Hardware that is not here is a property of the machine, not a failed install: ignored
    // unless L1_REQUIRE_HARDWARE asks for it.
    if hw.device == DeviceKind::Gpu && !settings.require_hardware && !detected.has(&id.hardware) {
        return Some(format!(
            "hardware `{}` ({}) is not present here (detected: {})",
            id.hardware,
            hw.display_name,
            detected.describe()
        ));
    }
    if settings.require_engines {
        // A missing engine then fails its trials (with the reason) instead of being ignored.
        return None;
    }
    info.availability(&settings.engines_dir).err()
}

/// Load, expand and plan every spec under `settings.specs` (or only the one named `only`).
/// Spec errors become failing `invalid::<file>` trials, so a bad spec fails the run loudly
/// without hiding the good ones.
pub fn plan(
    settings: &Settings,
    only: Option<&str>,
) -> (Vec<PlannedTrial>, Vec<(String, Diagnostic)>) {
    plan_only(settings, only, None)
}

/// [`plan`], keeping only one target of the spec (the `--exact` fast path of one trial).
pub fn plan_only(
    settings: &Settings,
    only: Option<&str>,
    only_target: Option<&str>,
) -> (Vec<PlannedTrial>, Vec<(String, Diagnostic)>) {
    plan_in_run(settings, only, only_target, &record::run_id())
}

/// [`plan_only`] into the run `run_id` instead of this process's run (`l1 tune resume`).
pub fn plan_in_run(
    settings: &Settings,
    only: Option<&str>,
    only_target: Option<&str>,
    run_id: &str,
) -> (Vec<PlannedTrial>, Vec<(String, Diagnostic)>) {
    let cats = match Catalogs::load(&settings.root) {
        Ok(c) => Arc::new(c),
        Err(d) => return (Vec::new(), vec![("invalid::catalogs".into(), d)]),
    };
    let gates_override = match gates_from_env() {
        Ok(g) => g,
        Err(d) => return (Vec::new(), vec![("invalid::L1_GATES".into(), d)]),
    };
    let detected = Detected::detect(&cats.hardware);
    let files = match only {
        Some(name) => spec::find_by_name(&settings.specs, name)
            .into_iter()
            .collect(),
        None => match spec::discover(&settings.specs) {
            Ok(f) => f,
            Err(d) => return (Vec::new(), vec![("invalid::specs".into(), d)]),
        },
    };
    let ctx = render_context(&cats, &detected);
    let run = RunDir::new(&settings.target_dir, run_id);
    let mut trials = Vec::new();
    let mut errors = Vec::new();
    let mut seen: BTreeMap<String, PathBuf> = BTreeMap::new();
    for file in files {
        let stem = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let invalid = format!("invalid::{}", stem.split('.').next().unwrap_or(&stem));
        let env = PlanEnv {
            ctx: &ctx,
            cats: &cats,
            detected: &detected,
            settings,
            run: &run,
            only_target,
            gates_override: gates_override.as_deref(),
        };
        match plan_spec(&file, &env) {
            Ok(list) => {
                if list.is_empty() {
                    errors.push((
                        invalid,
                        Diagnostic::new(&file, "the spec expands to zero trials")
                            .expected("at least one target with a legal combo"),
                    ));
                    continue;
                }
                if let Some(dup) = list
                    .iter()
                    .find_map(|t| seen.get(&t.name).map(|p| (t.name.clone(), p.clone())))
                {
                    errors.push((
                        invalid,
                        Diagnostic::new(
                            &file,
                            format!(
                                "two trials have the same name `{}` (also made by {})",
                                dup.0,
                                display_path(&dup.1)
                            ),
                        )
                        .expected("unique spec names and no repeated targets"),
                    ));
                    continue;
                }
                let mut local = BTreeSet::new();
                if let Some(t) = list.iter().find(|t| !local.insert(t.name.clone())) {
                    errors.push((
                        invalid,
                        Diagnostic::new(
                            &file,
                            format!("two trials have the same name `{}`", t.name),
                        )
                        .expected(
                            "no repeated engines, models, hardware or workloads in `targets`",
                        ),
                    ));
                    continue;
                }
                for t in &list {
                    seen.insert(t.name.clone(), file.clone());
                }
                trials.extend(list);
            }
            Err(d) => errors.push((invalid, d)),
        }
    }
    (trials, errors)
}

/// What planning one spec needs from the run.
struct PlanEnv<'a> {
    ctx: &'a RenderContext,
    cats: &'a Arc<Catalogs>,
    detected: &'a Detected,
    settings: &'a Settings,
    run: &'a RunDir,
    only_target: Option<&'a str>,
    gates_override: Option<&'a [GateMethod]>,
}

fn plan_spec(file: &Path, env: &PlanEnv<'_>) -> Result<Vec<PlannedTrial>, Diagnostic> {
    let PlanEnv {
        ctx,
        cats,
        detected,
        settings,
        run,
        only_target,
        gates_override,
    } = *env;
    let ls = spec::load(file, ctx)?;
    let ex = expand::expand_only(&ls, cats, only_target)?;
    let sp = Arc::new(SpecPlan {
        name: ex.spec.clone(),
        measure: ls.spec.measure.clone(),
        gates: match gates_override {
            Some(methods) => override_gates(&ls.spec.gates, methods),
            None => ls.spec.gates.clone(),
        },
        tune: crate::tuning::TuneSpec::from_spec(&ls.spec).map(Arc::new),
        snapshot: cats.kernels.snapshot.clone(),
        path: file.to_path_buf(),
        source: ls.source.clone(),
        rendered: ls.rendered.text.clone(),
    });
    let mut out = Vec::new();
    for target in ex.targets {
        let hw = cats.hardware[&target.id.hardware].clone();
        let info = engine_info(&target.id.engine);
        let class = match (info.map(|i| i.needs_device()), hw.device) {
            (Some(false) | None, _) => "sim",
            (Some(true), DeviceKind::Cpu) => "cpu",
            (Some(true), DeviceKind::Gpu) => "gpu",
        };
        let ignore = ignore_reason(settings, detected, &target.id, &hw);
        let fingerprint =
            crate::calibration::fingerprint(&target.id.hardware, detected, &target.id.engine);
        let plan = Arc::new(TargetPlan {
            spec: sp.clone(),
            class,
            killed: ignore.is_some() && settings.kill_switch,
            ignore: ignore.clone(),
            model: cats.models[&target.id.model].clone(),
            workload: cats.workloads[&target.id.workload].clone(),
            hardware: hw,
            target,
            run: run.clone(),
            cats: cats.clone(),
            settings_target_dir: settings.target_dir.clone(),
            engines_dir: settings.engines_dir.clone(),
            fingerprint,
            parts: std::sync::OnceLock::new(),
        });
        let prefix = format!("{class}::{}::{}", sp.name, plan.target.id);
        if sp.tune.is_some() {
            out.push(PlannedTrial {
                name: format!("{prefix}::tune"),
                ignored: ignore.clone(),
                plan: plan.clone(),
                leaf: Leaf::Tune,
            });
            continue;
        }
        for combo in &plan.target.combos {
            out.push(PlannedTrial {
                name: format!("{prefix}::{}", combo_slug(cats, combo)),
                ignored: ignore.clone(),
                plan: plan.clone(),
                leaf: Leaf::Combo(combo.clone()),
            });
        }
        out.push(PlannedTrial {
            name: format!("{prefix}::baseline"),
            ignored: ignore.clone(),
            plan: plan.clone(),
            leaf: Leaf::Baseline,
        });
        out.push(PlannedTrial {
            name: format!("{prefix}::gate"),
            ignored: ignore.clone(),
            plan: plan.clone(),
            leaf: Leaf::Gate,
        });
    }
    Ok(out)
}

impl PlannedTrial {
    /// The libtest-mimic trial.
    pub fn into_trial(self) -> Trial {
        let ignored = self.ignored.is_some();
        // No `with_kind`: it would print `[kind] name` and break filters; the class is the
        // first name component instead.
        Trial::test(self.name.clone(), move || self.run()).with_ignored_flag(ignored)
    }

    /// Run the trial now, outside libtest (tests and tools).
    pub fn execute(self) -> Result<(), String> {
        self.run()
            .map_err(|f| f.message().unwrap_or("failed").to_string())
    }

    /// Run the trial; whatever happens (an error before the measurement, a store that fails, a
    /// panic), the trial leaves a record of its outcome, so the run's records agree with the
    /// runner's counts (see [`crate::accounting`]).
    fn run(self) -> Result<(), Failed> {
        let start = Instant::now();
        let (name, plan) = (self.name.clone(), self.plan.clone());
        let kind = match &self.leaf {
            Leaf::Combo(_) => "combo",
            Leaf::Baseline => "baseline",
            Leaf::Gate => "gate",
            Leaf::Tune => "tune",
        };
        if let Err(e) = plan.run.mark_started(&name) {
            eprintln!("l1: {name}: start not recorded: {e}");
        }
        // A panic is recorded as the trial's failure, then goes on unwinding (libtest reports
        // it as the failure it is; a caller of `execute` sees it as before).
        let result = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.run_recorded(start)
        })) {
            Ok(r) => r,
            Err(panic) => {
                let why = panic
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a panic".into());
                let _ = Self::record_failure(
                    &plan,
                    &name,
                    kind,
                    format!("{name}: panicked: {why}"),
                    start,
                );
                std::panic::resume_unwind(panic)
            }
        };
        match result {
            Ok(()) => Ok(()),
            Err((message, true)) => Err(message.into()),
            Err((message, false)) => {
                Err(Self::record_failure(&plan, &name, kind, message, start).into())
            }
        }
    }

    /// Write the failed record of a trial that ended before writing its own; the message to
    /// report (with why the record could not be written, if it could not).
    fn record_failure(
        plan: &TargetPlan,
        name: &str,
        kind: &str,
        message: String,
        start: Instant,
    ) -> String {
        let rec = TrialRecord {
            schema_version: RECORD_SCHEMA_VERSION,
            run_id: plan.run.run_id.clone(),
            name: name.to_string(),
            spec: plan.spec.name.clone(),
            target: plan.target.id.clone(),
            kind: kind.into(),
            passed: false,
            message: message.clone(),
            measurement: None,
            gates: Vec::new(),
            simulated: plan.target.id.engine == "sim",
            duration_s: start.elapsed().as_secs_f64(),
        };
        match plan.run.write_trial(&rec) {
            Ok(()) => {
                crate::progress::trial_finished(&plan.run, &rec);
                message
            }
            Err(e) => format!("{message}\nfailed to write the trial record: {e}"),
        }
    }

    /// The trial itself. `Err((message, recorded))`: whether its failed record is written.
    fn run_recorded(self, start: Instant) -> Result<(), (String, bool)> {
        let p = &self.plan;
        crate::progress::trial_started(&p.run, &self.name);
        if p.killed {
            // The kill switch holds whatever the runner's flags: a trial it stopped, run anyway
            // (`--ignored`, `--include-ignored`, nextest `--run-ignored only|all`), launches
            // nothing (not even a version probe) and fails: it was not run, and a pass would
            // count as measured.
            return Err((
                format!(
                    "{}: not run: ENABLE_L1_KERNEL_TUNING=0 (the kill switch) is set, so no engine is launched, even for trials selected with --ignored, --include-ignored or --run-ignored; unset it (or set ENABLE_L1_KERNEL_TUNING=1) to run them",
                    self.name
                ),
                false,
            ));
        }
        if let Some(reason) = &p.ignore {
            // Forced with --include-ignored / --ignored: run only if the engine can run.
            let info = engine_info(&p.target.id.engine);
            if let Some(err) = info.and_then(|i| i.availability(&p.engines_dir).err()) {
                return Err((format!("{}: {reason}; {err}", self.name), false));
            }
        }
        // The store: the run (and this spec) recorded once per process; a cancelled run stops.
        if let Err(e) = self.enter_store() {
            return Err((format!("{}: {e}", self.name), false));
        }
        let (kind, result) = match &self.leaf {
            Leaf::Combo(c) => ("combo", self.measured(c)),
            Leaf::Baseline => ("baseline", self.measured(&p.target.baseline)),
            Leaf::Gate => ("gate", self.gate()),
            Leaf::Tune => ("tune", crate::tuning::run_trial(&self)),
        };
        let (passed, message, measurement, verdicts, simulated, cache_hit) = match &result {
            Ok(o) => (
                o.passed,
                o.message.clone(),
                o.measurement.clone(),
                o.verdicts.clone(),
                o.simulated,
                o.cache_hit,
            ),
            Err(e) => (
                false,
                e.clone(),
                None,
                Vec::new(),
                p.target.id.engine == "sim",
                false,
            ),
        };
        let rec = TrialRecord {
            schema_version: RECORD_SCHEMA_VERSION,
            run_id: p.run.run_id.clone(),
            name: self.name.clone(),
            spec: p.spec.name.clone(),
            target: p.target.id.clone(),
            kind: kind.into(),
            passed,
            message: message.clone(),
            measurement,
            gates: verdicts,
            simulated,
            duration_s: start.elapsed().as_secs_f64(),
        };
        if let Err(e) = p.run.write_trial(&rec) {
            return Err((
                format!("{message}\nfailed to write the trial record: {e}"),
                false,
            ));
        }
        if let Err(e) = crate::results::with_store(&p.settings_target_dir, |s| {
            s.insert_trial(&crate::results::trial_row(&rec, cache_hit))
        }) {
            // The trial fails (libtest counts it failed): its record is rewritten as failed.
            return Err((
                format!(
                    "{message}\nfailed to store the trial: {e} (its record is kept at {}; `l1 report` ingests it)",
                    p.run.trial_path(&rec.name).display()
                ),
                false,
            ));
        }
        crate::progress::trial_finished(&p.run, &rec);
        eprintln!("{message}");
        if passed { Ok(()) } else { Err((message, true)) }
    }

    /// A `regression` gate `against: stored`: each combo (and the baseline) against its own
    /// newest measurement in a run labelled `label` (default `main`) with the same cache key.
    /// Passes with a note when nothing is stored to compare with (the first run on main).
    fn stored_regression(&self, g: &Gate, ctx: &GateContext) -> Result<gates::GateVerdict, String> {
        let p = &self.plan;
        let label = g.label.clone().unwrap_or_else(|| "main".into());
        let parts = p.parts().map_err(|e| {
            format!(
                "{}: regression against stored results needs the cache key: {e}",
                self.name
            )
        })?;
        let mut combos: Vec<&Combo> = vec![&p.target.baseline];
        combos.extend(p.target.combos.iter().filter(|c| **c != p.target.baseline));
        let as_baseline = Gate {
            against: None,
            label: None,
            ..g.clone()
        };
        let (mut compared, mut missing, mut failed) = (Vec::new(), Vec::new(), Vec::new());
        let mut rows = Vec::new();
        for combo in combos {
            let (rec, _) = self.obtain(combo)?;
            let slug = combo_slug(&p.cats, combo);
            if rec.error.is_some() {
                continue;
            }
            let key = parts.for_combo(combo).cache_key;
            let stored = crate::results::with_store(&p.settings_target_dir, |s| {
                s.stored_measurement(&label, &key, &p.run.run_id)
            })?;
            let Some(stored) = stored else {
                missing.push(slug);
                continue;
            };
            // Same cache key, same plan: the stored reps were spread over as many launches.
            let base = Arm {
                launches: rec.launches.max(1) as usize,
                label: format!("{label} (run {})", stored.run_id),
                reps: stored.reps.clone(),
            };
            let now = Arm {
                launches: rec.launches.max(1) as usize,
                label: slug.clone(),
                reps: rec.reps.clone(),
            };
            let v = gates::evaluate(&as_baseline, ctx, &base, &[now])
                .map_err(|e| format!("{}: {slug} against {label}: {e}", self.name))?;
            let detail = v
                .message
                .split_once("); ")
                .map_or(v.message.as_str(), |x| x.1)
                .to_string();
            if v.passed {
                compared.push(format!("{slug} vs run {}: {detail}", stored.run_id));
            } else {
                failed.push(format!("{slug} vs run {}: {detail}", stored.run_id));
            }
            rows.extend(v.rows);
        }
        let passed = failed.is_empty();
        // Under non-inferiority a failed combo is one not shown to be within ε, which is not
        // evidence that it regressed.
        let failed_word = match g.form.unwrap_or_default() {
            crate::spec::RegressionForm::FailOnRegression => "regressed",
            crate::spec::RegressionForm::NonInferiority => "not shown within ε",
        };
        let mut message = format!(
            "regression against stored `{label}` results {}: {} combos compared, {} {failed_word}, {} without a stored measurement of the same key",
            if passed { "passed" } else { "FAILED" },
            compared.len() + failed.len(),
            failed.len(),
            missing.len()
        );
        for l in failed.iter().chain(&compared) {
            message.push_str(&format!("\n    {l}"));
        }
        if !missing.is_empty() {
            message.push_str(&format!(
                "\n    nothing stored for: {} (no run labelled `{label}` measured them with this engine version, model, hardware, workload and plan; set L1_RUN_LABEL={label} on the runs that serve as the reference)",
                missing.join(", ")
            ));
        }
        Ok(gates::GateVerdict {
            method: "regression".into(),
            passed,
            message,
            winner: None,
            p_best: None,
            rows,
            established_winner: None,
            inconclusive: None,
        })
    }

    /// Record the run, the catalog snapshot and this trial's spec in the store (once per
    /// process), and refuse to run when `l1 runs cancel` stopped the run.
    fn enter_store(&self) -> Result<(), String> {
        static ENTERED: std::sync::Mutex<BTreeSet<String>> = std::sync::Mutex::new(BTreeSet::new());
        let p = &self.plan;
        let dir = &p.settings_target_dir;
        let run_id = &p.run.run_id;
        crate::results::cache_mode()?;
        // Keyed by the store too: trials of one process may write into several stores (tests
        // with a target directory each), and each store needs its own run row.
        let store = crate::results::location(dir).display();
        let first = ENTERED
            .lock()
            .map(|mut e| e.insert(format!("{store}|{run_id}|{}", p.spec.name)))
            .unwrap_or(true);
        if first {
            let catalog = std::fs::read_to_string(&p.cats.kernels.path).unwrap_or_default();
            crate::results::with_store(dir, |s| {
                s.begin_run(&crate::results::new_run(run_id, &p.spec.snapshot))?;
                s.record_catalog_snapshot(
                    &p.spec.snapshot,
                    i64::from(p.cats.kernels.catalog.version),
                    &catalog,
                )?;
                s.record_spec(
                    run_id,
                    &p.spec.name,
                    &display_path(&p.spec.path),
                    &p.spec.source,
                    &p.spec.rendered,
                )
            })?;
        }
        if let Some(at) = crate::results::with_store(dir, |s| s.cancel_requested(run_id))? {
            return Err(format!(
                "run `{run_id}` was cancelled with `l1 runs cancel` at {}: this trial did not run (what the run measured before is kept)",
                record::utc_stamp(at.max(0.0) as u64)
            ));
        }
        Ok(())
    }

    /// This run's record of `combo` from the cache, when caching reads and the store has a
    /// valid entry under its key. The sim is never cached: simulating costs less than a lookup.
    fn cached(&self, combo: &Combo, key: &str) -> Result<Option<MeasurementRecord>, String> {
        let p = &self.plan;
        if p.target.id.engine == "sim" || !crate::results::cache_mode()?.reads() {
            return Ok(None);
        }
        // Without its parts (an engine that is not installed) there is no key: measure, and let
        // the launch report what is wrong.
        let Ok(parts) = p.parts() else {
            return Ok(None);
        };
        let fp = parts.for_combo(combo);
        let not_before = record::now_unix() - l1_store::CACHE_TTL_S;
        let Some(hit) = crate::results::with_store(&p.settings_target_dir, |s| {
            s.cache_lookup(&fp.cache_key, not_before)
        })?
        else {
            return Ok(None);
        };
        let template = new_record(p, combo, key, &self.name, Vec::new(), None, None, 1);
        crate::results::from_cache(&hit, &template).map(Some)
    }

    fn measure_or_reuse(
        &self,
        combo: &Combo,
        key: &str,
        stopper: Option<&Stopper>,
    ) -> MeasurementRecord {
        match self.cached(combo, key) {
            Ok(Some(rec)) => {
                crate::progress::cache_hit(&self.plan.run, key);
                return rec;
            }
            Ok(None) => {}
            Err(e) => eprintln!("{}: cache lookup failed, measuring instead: {e}", self.name),
        }
        measure(&self.plan, combo, key, &self.name, stopper, 0)
    }

    /// Insert a measurement this trial produced into the store.
    fn store_measurement(&self, rec: &MeasurementRecord) -> Result<(), String> {
        let p = &self.plan;
        let mode = crate::results::cache_mode()?;
        crate::results::with_store(&p.settings_target_dir, |s| {
            s.insert_measurement(&crate::results::measurement_row(
                rec,
                crate::results::cacheable(rec, mode),
            ))
        })
        .map(|_| ())
        .map_err(|e| {
            format!(
                "{}: failed to store measurement {}: {e} (the record is kept at {}; `l1 report` ingests it)",
                self.name,
                rec.key,
                p.run.measurement_path(&rec.key).display()
            )
        })
    }

    fn key(&self, combo: &Combo) -> String {
        let p = &self.plan;
        let m = &p.spec.measure;
        record::short_hash(
            &format!(
                "{}|{}|{}|reps={}|warmup={}|seed={}|launches={}|seq={:?}",
                p.spec.snapshot,
                p.target.id,
                combo.canonical(),
                m.reps,
                m.warmup_reps,
                m.seed,
                m.launches,
                m.sequential()
            ),
            24,
        )
    }

    /// A fresh measurement of `combo` (a tune session's final re-measurement): replicate `r`
    /// (1, 2, …) has its own record key and rep seeds, never comes from the cache, and is
    /// stored like any measurement. Like [`Self::obtain`], a replicate this run already recorded
    /// (before a kill) is reused, not measured twice.
    pub(crate) fn obtain_replicate(
        &self,
        combo: &Combo,
        replicate: u32,
    ) -> Result<(MeasurementRecord, Obtained), String> {
        let key = record::short_hash(&format!("{}|replicate={replicate}", self.key(combo)), 24);
        let (rec, how) = self.plan.run.obtain(&key, || {
            measure(&self.plan, combo, &key, &self.name, None, replicate)
        })?;
        if how == Obtained::Measured {
            self.store_measurement(&rec)?;
        }
        Ok((rec, how))
    }

    pub(crate) fn obtain(&self, combo: &Combo) -> Result<(MeasurementRecord, Obtained), String> {
        let key = self.key(combo);
        // Early termination compares with the baseline at each look, so the baseline comes
        // first (its lock is never held while waiting for a combo's, so no trial deadlocks).
        let stopper = match self.plan.spec.measure.sequential() {
            Some((lo, hi)) if *combo != self.plan.target.baseline => {
                let (base, _) = self.obtain(&self.plan.target.baseline)?;
                if base.error.is_some() {
                    None
                } else {
                    Some(Stopper::new(&self.plan, &base, lo as usize, hi as usize)?)
                }
            }
            _ => None,
        };
        let (rec, how) = self.plan.run.obtain(&key, || {
            self.measure_or_reuse(combo, &key, stopper.as_ref())
        })?;
        if how == Obtained::Measured {
            self.store_measurement(&rec)?;
        }
        Ok((rec, how))
    }

    fn measured(&self, combo: &Combo) -> Result<Outcome, String> {
        let (rec, how) = self.obtain(combo)?;
        let hit;
        let how = match how {
            Obtained::Measured if rec.cache_hit.is_some() => {
                hit = rec
                    .notes
                    .first()
                    .cloned()
                    .unwrap_or_else(|| "cache hit".into());
                hit.as_str()
            }
            Obtained::Measured => "measured",
            Obtained::Waited => "waited for another trial's measurement",
            Obtained::Recorded => "reused this run's recorded measurement",
        };
        let sim_tag = if rec.simulated { " [simulated]" } else { "" };
        let stop = match rec.stopped {
            Some(r) => format!(", stopped early at a planned look ({r:?})").to_lowercase(),
            None if rec.looks > 1 => ", ran to the last look".into(),
            None => String::new(),
        };
        if let Some(err) = &rec.error {
            return Ok(Outcome::fail(
                format!("{}: measurement failed{sim_tag}: {err}", self.name),
                &rec,
            ));
        }
        let tput: Vec<f64> = rec
            .reps
            .iter()
            .filter_map(|r| r.get("output_tokens_per_s").copied())
            .collect();
        let tm = crate::stats::trimmed_mean(&tput, self.plan.spec.measure.trim)
            .map_err(|e| e.to_string())?;
        Ok(Outcome::pass(
            format!(
                "{}: {how}{sim_tag}: {} reps{stop}, output_tokens_per_s trimmed mean {tm:.4} (trim {})",
                self.name,
                rec.reps.len(),
                self.plan.spec.measure.trim
            ),
            &rec,
        ))
    }

    /// Measure every unrecorded, unclaimed combo of `combos` with their launches interleaved
    /// (launch 1 of every arm, then launch 2 of every arm, ...). Records are identical to those
    /// of separate measurements (each rep depends only on its seed, launch and index), so it does
    /// not matter which trial measured what. Combos another trial is measuring are left to it.
    fn measure_interleaved(&self, combos: &[Combo]) -> Result<(), String> {
        let p = &self.plan;
        let mut mine = Vec::new();
        let mut seen = BTreeSet::new();
        for combo in combos {
            let key = self.key(combo);
            if !seen.insert(key.clone()) {
                continue;
            }
            if let record::Claim::Mine(lock) = p.run.try_claim(&key)? {
                mine.push((combo, key, lock));
            }
        }
        if mine.is_empty() {
            return Ok(());
        }
        let m = &p.spec.measure;
        let n_launches = m.launches.max(1);
        let t0 = Instant::now();
        let started = record::now_unix();
        let mut per_arm: Vec<Vec<Result<LaunchReps, String>>> =
            mine.iter().map(|_| Vec::new()).collect();
        for l in 0..n_launches {
            for (i, (combo, _, _)) in mine.iter().enumerate() {
                per_arm[i].push(sim_launch_reps(p, combo, seed_of(p, combo), l));
            }
        }
        let elapsed = t0.elapsed().as_secs_f64() / mine.len() as f64;
        for ((combo, key, lock), launches) in mine.into_iter().zip(per_arm) {
            let (reps, error) = assemble_reps(p, launches);
            let mut rec = new_record(p, combo, &key, &self.name, reps, error, None, 1);
            rec.started_unix_s = started;
            rec.duration_s = elapsed;
            lock.finish(&rec)?;
            self.store_measurement(&rec)?;
        }
        Ok(())
    }

    fn gate(&self) -> Result<Outcome, String> {
        let p = &self.plan;
        // Whatever this trial has to measure itself (a partitioned run put the combo trials
        // elsewhere, or they have not run yet), it measures with the baseline's and the combos'
        // launches interleaved, so a drift of the machine over time does not favour one arm.
        if p.spec.measure.sequential().is_none() && p.target.id.engine == "sim" {
            let mut all = vec![p.target.baseline.clone()];
            all.extend(p.target.combos.iter().cloned());
            self.measure_interleaved(&all)?;
        }
        let (base, _) = self.obtain(&p.target.baseline)?;
        if let Some(err) = &base.error {
            return Err(format!(
                "{}: the baseline measurement failed, so no gate can be evaluated: {err}",
                self.name
            ));
        }
        let mut arms = Vec::new();
        let mut failed = Vec::new();
        let mut probed = Vec::new();
        for combo in &p.target.combos {
            let (rec, _) = self.obtain(combo)?;
            let label = combo_slug(&p.cats, combo);
            if rec.error.is_none() {
                probed.push((label.clone(), rec.clone()));
            }
            match &rec.error {
                Some(e) => failed.push(format!("{label}: {e}")),
                None => arms.push(Arm {
                    launches: rec.launches.max(1) as usize,
                    label,
                    reps: rec.reps.clone(),
                }),
            }
        }
        // When the baseline is itself a combo of the space, its arm carries that combo's label,
        // so the gates know it is the baseline and never test it against itself.
        let baseline = Arm {
            launches: base.launches.max(1) as usize,
            label: if p.target.combos.contains(&p.target.baseline) {
                combo_slug(&p.cats, &p.target.baseline)
            } else {
                "baseline".into()
            },
            reps: base.reps.clone(),
        };
        // Noise floor and launch variation: the spec's override, else this machine's recorded
        // calibration of the baseline, else the hardware profile.
        let calibration = crate::calibration::load(
            &p.settings_target_dir,
            &p.fingerprint,
            &p.target.id,
            &p.target.baseline,
        )
        .map_err(|e| format!("{}: {e}", self.name))?;
        let primary = p
            .spec
            .gates
            .first()
            .and_then(|g| g.metric.as_ref().map(|m| m.value.clone()))
            .unwrap_or_else(|| "output_tokens_per_s".into());
        let calibrated = |map: fn(&crate::calibration::Calibration) -> &BTreeMap<String, f64>| {
            calibration
                .as_ref()
                .and_then(|c| map(c).get(&primary).copied())
        };
        let ctx = GateContext {
            trim: p.spec.measure.trim,
            noise_floor: p
                .spec
                .measure
                .noise_floor
                .or_else(|| calibrated(|c| &c.cv_within))
                .unwrap_or(p.hardware.noise_floor_cv),
            launch_cv: p
                .spec
                .measure
                .launch_cv
                .or_else(|| calibrated(|c| &c.cv_between))
                .unwrap_or(p.hardware.launch_cv),
            calibration: calibration.clone(),
            looks: p.spec.measure.sequential().map_or(1, |(lo, hi)| {
                crate::stats::planned_looks(lo as usize, hi as usize).len()
            }),
        };
        // Output fidelity against the baseline's probe answers (crate::fidelity).
        let probed: Vec<(String, &MeasurementRecord)> =
            probed.iter().map(|(l, r)| (l.clone(), r)).collect();
        let fidelity = crate::fidelity::report_for(&p.spec.gates, &base, &probed);
        // `regression` gates `against: stored` compare with the results store, not the baseline.
        let (stored, here): (Vec<Gate>, Vec<Gate>) = p
            .spec
            .gates
            .iter()
            .cloned()
            .partition(|g| g.against.as_deref() == Some("stored"));
        let mut verdicts = if here.is_empty() {
            Vec::new()
        } else {
            gates::evaluate_all(&here, &ctx, &baseline, &arms, fidelity.as_ref())
                .map_err(|e| format!("{}: {e}", self.name))?
        };
        for g in &stored {
            verdicts.push(self.stored_regression(g, &ctx)?);
        }
        // Where the known launch-to-launch component came from (gates print its value).
        let launch_cv_source = if p.spec.measure.launch_cv.is_some() {
            "the spec's `measure.launch_cv`"
        } else if calibrated(|c| &c.cv_between).is_some() {
            "this machine's calibration (`l1 calibrate`, between-launch CV of the baseline)"
        } else {
            "the hardware profile's `launch_cv` (catalogs/hardware.yaml; a starting point, not a measurement: run `l1 calibrate`)"
        };
        for v in &mut verdicts {
            if !matches!(v.method.as_str(), "drift" | "fidelity") {
                v.message.push_str(&format!(
                    "\n  σ_b = {:.2} % from {launch_cv_source}",
                    ctx.launch_cv * 100.0
                ));
            }
        }
        let passed = verdicts.iter().all(|v| v.passed);
        let sim_tag = if base.simulated { " [simulated]" } else { "" };
        let mut message = format!(
            "{}: {}{sim_tag}: {} combos compared with the baseline ({} of {} legal combos selected, {} rejected by rules)",
            self.name,
            if passed {
                "gates passed"
            } else {
                "gates FAILED"
            },
            arms.len(),
            p.target.combos.len(),
            p.target.legal,
            p.target.rejected.len()
        );
        if !failed.is_empty() {
            message.push_str(&format!(
                "\n  {} combos failed to measure and were excluded: {}",
                failed.len(),
                failed.join("; ")
            ));
        }
        for v in &verdicts {
            message.push('\n');
            message.push_str(&v.message);
        }
        Ok(Outcome {
            passed,
            message,
            measurement: None,
            verdicts,
            simulated: base.simulated,
            cache_hit: false,
        })
    }
}

pub(crate) struct Outcome {
    pub(crate) passed: bool,
    pub(crate) message: String,
    pub(crate) measurement: Option<String>,
    pub(crate) verdicts: Vec<gates::GateVerdict>,
    pub(crate) simulated: bool,
    /// The measurement came from the cache.
    pub(crate) cache_hit: bool,
}

impl Outcome {
    fn pass(message: String, rec: &MeasurementRecord) -> Self {
        Self {
            passed: true,
            message,
            measurement: Some(rec.key.clone()),
            verdicts: Vec::new(),
            simulated: rec.simulated,
            cache_hit: rec.cache_hit.is_some(),
        }
    }

    fn fail(message: String, rec: &MeasurementRecord) -> Self {
        Self {
            passed: false,
            message,
            measurement: Some(rec.key.clone()),
            verdicts: Vec::new(),
            simulated: rec.simulated,
            cache_hit: rec.cache_hit.is_some(),
        }
    }
}

/// Measure one combo of a target: one engine launch, warm-up reps discarded, then the reps.
/// The seed of a measurement (the sim's noise, real engines' request sequence): the spec's seed
/// mixed with a hash of the target and the combo. Unlike the measurement key it leaves out the
/// catalog snapshot, so recording a new catalog version does not re-draw every simulated result.
fn seed_of(p: &TargetPlan, combo: &Combo) -> u64 {
    let h = record::short_hash(&format!("{}|{}", p.target.id, combo.canonical()), 16);
    p.spec.measure.seed ^ u64::from_str_radix(&h, 16).unwrap_or(0)
}

fn measure(
    p: &TargetPlan,
    combo: &Combo,
    key: &str,
    trial: &str,
    stopper: Option<&Stopper>,
    replicate: u32,
) -> MeasurementRecord {
    let started = record::now_unix();
    let t0 = Instant::now();
    // A replicate draws other rep seeds (prompts, and the sim's noise), as a new launch would.
    let seed = seed_of(p, combo) ^ u64::from(replicate).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let mut reps = Vec::new();
    let mut stopped = None;
    let mut notes = Vec::new();
    let mut probes = None;
    let error = if p.target.id.engine == "sim" {
        match measure_sim(p, combo, seed, &mut reps, stopper) {
            Ok(s) => {
                stopped = s;
                None
            }
            Err(e) => Some(e),
        }
    } else {
        // Real engines hold their device for the whole launch: one engine per device at a time.
        match crate::device::acquire(&p.settings_target_dir, p.hardware.device) {
            Ok(lock) => measure_real(
                p,
                combo,
                key,
                seed,
                &lock,
                &mut reps,
                &mut notes,
                &mut probes,
            )
            .err(),
            Err(e) => Some(e),
        }
    };
    let looks = stopper.map_or(1, |s| s.looks.len() as u32);
    let mut rec = new_record(p, combo, key, trial, reps, error, stopped, looks);
    // Provenance: the version the engine reported (launches note `engine version: X`).
    rec.engine_version = notes.iter().find_map(|n| {
        let v = n
            .split_once("engine version: ")?
            .1
            .split_whitespace()
            .next()?;
        Some(v.to_string())
    });
    rec.notes = notes;
    if probes.is_some() {
        rec.probes = probes;
    }
    rec.started_unix_s = started;
    rec.duration_s = t0.elapsed().as_secs_f64();
    rec
}

#[allow(clippy::too_many_arguments)]
fn new_record(
    p: &TargetPlan,
    combo: &Combo,
    key: &str,
    trial: &str,
    reps: Vec<l1_engines::Metrics>,
    error: Option<String>,
    stopped: Option<crate::stats::StopReason>,
    looks: u32,
) -> MeasurementRecord {
    let m = &p.spec.measure;
    MeasurementRecord {
        schema_version: RECORD_SCHEMA_VERSION,
        key: key.to_string(),
        run_id: p.run.run_id.clone(),
        spec: p.spec.name.clone(),
        target: p.target.id.clone(),
        combo: combo.clone(),
        combo_hash: record::short_hash(&combo.canonical(), 12),
        catalog_snapshot: p.spec.snapshot.clone(),
        harness_version: record::HARNESS_VERSION.into(),
        simulated: p.target.id.engine == "sim",
        seed: seed_of(p, combo),
        measured_by: trial.to_string(),
        started_unix_s: 0.0,
        duration_s: 0.0,
        warmup_reps: m.warmup_reps,
        launches: m.launches.max(1),
        looks,
        stopped,
        reps,
        error,
        notes: Vec::new(),
        engine_version: None,
        fingerprints: p.parts().ok().map(|parts| parts.for_combo(combo)),
        cache_hit: None,
        // The sim answers probes from its divergence model; real launches answer after their reps.
        probes: (p.target.id.engine == "sim")
            .then(|| crate::fidelity::sim_probes(&p.workload, combo)),
    }
}

/// The reps of one launch: each with its position `i` in the measurement.
type LaunchReps = Vec<(u32, Result<l1_engines::Metrics, String>)>;

/// One launch `l` of a simulated arm: its warm-up reps, then the reps `i` with `i mod L == l`
/// (rep index `warmup + i / L`, exactly as [`measure_sim`] runs them), until one fails.
fn sim_launch_reps(p: &TargetPlan, combo: &Combo, seed: u64, l: u32) -> Result<LaunchReps, String> {
    let m = &p.spec.measure;
    let n_launches = m.launches.max(1);
    let mut launch = start_sim_launch(p, combo, seed, l)?;
    let mut out = Vec::new();
    for i in (l..m.full_reps()).step_by(n_launches as usize) {
        let r = launch
            .rep(m.warmup_reps + i / n_launches)
            .map_err(|e| format!("rep {}: {e}", i + 1));
        let failed = r.is_err();
        if !failed {
            crate::progress::rep_done(&p.run, i + 1, m.full_reps());
        }
        out.push((i, r));
        if failed {
            break;
        }
    }
    Ok(out)
}

/// Put the launches' reps back in measurement order and apply the same checks, stopping at the
/// same first failure, as [`measure_sim`].
fn assemble_reps(
    p: &TargetPlan,
    launches: Vec<Result<LaunchReps, String>>,
) -> (Vec<l1_engines::Metrics>, Option<String>) {
    let mut all = Vec::new();
    for l in launches {
        match l {
            Ok(reps) => all.extend(reps),
            Err(e) => return (Vec::new(), Some(e)),
        }
    }
    all.sort_by_key(|(i, _)| *i);
    let mut reps = Vec::new();
    for (i, r) in all {
        if let Err(e) = r.and_then(|r| accept_rep(p, i, r, &mut reps)) {
            return (reps, Some(e));
        }
    }
    (reps, None)
}

/// The early-termination rule of one combo's measurement: compares the combo's reps so far with
/// the baseline's at each planned look (Pocock's per-look level) on the first gate's metric and
/// threshold.
#[derive(Debug)]
struct Stopper {
    base: Vec<f64>,
    base_launches: usize,
    metric: String,
    direction: l1_engines::Direction,
    threshold: f64,
    floor: f64,
    looks: Vec<usize>,
    level: f64,
    trim: f64,
    launch_cv: f64,
    launches: usize,
}

impl Stopper {
    fn new(p: &TargetPlan, base: &MeasurementRecord, lo: usize, hi: usize) -> Result<Self, String> {
        let gate = p.spec.gates.first();
        let metric = gate
            .and_then(|g| g.metric.as_ref().map(|m| m.value.clone()))
            .unwrap_or_else(|| "output_tokens_per_s".into());
        let info = l1_engines::metrics::metric(&metric)
            .ok_or_else(|| format!("unknown metric `{metric}`"))?;
        let m = &p.spec.measure;
        let floor = m.noise_floor.unwrap_or(p.hardware.noise_floor_cv);
        let threshold = match gate {
            Some(g) if g.method == GateMethod::Topk5 => 1.0 + g.margin.unwrap_or(0.03).max(floor),
            _ => 1.0 + floor,
        };
        let alpha = gate.and_then(|g| g.alpha).unwrap_or(0.05);
        let looks = crate::stats::planned_looks(lo, hi);
        Ok(Self {
            base: base
                .reps
                .iter()
                .map(|r| r.get(&metric).copied().unwrap_or(f64::NAN))
                .collect(),
            base_launches: base.launches.max(1) as usize,
            metric,
            direction: info.direction,
            threshold,
            floor,
            level: crate::stats::per_look_level(alpha, looks.len()),
            looks,
            trim: m.trim,
            launch_cv: m.launch_cv.unwrap_or(p.hardware.launch_cv),
            launches: m.launches.max(1) as usize,
        })
    }

    /// The stop decision after `reps`, at planned looks only.
    fn check(&self, reps: &[l1_engines::Metrics]) -> Option<crate::stats::StopReason> {
        if !self.looks.contains(&reps.len()) {
            return None;
        }
        let v: Vec<f64> = reps
            .iter()
            .map(|r| r.get(&self.metric).copied().unwrap_or(f64::NAN))
            .collect();
        let between = crate::stats::Between {
            cv: self.launch_cv,
            candidate_launches: self.launches.min(v.len()),
            baseline_launches: self.base_launches,
        };
        let c = crate::stats::compare_with(&v, &self.base, self.trim, 1.0 - self.level, between)
            .ok()?;
        let ci = match self.direction {
            l1_engines::Direction::HigherIsBetter => c.ratio_ci,
            l1_engines::Direction::LowerIsBetter => (1.0 / c.ratio_ci.1, 1.0 / c.ratio_ci.0),
        };
        crate::stats::sequential_decision(ci, self.threshold, self.floor)
    }
}

fn measure_sim(
    p: &TargetPlan,
    combo: &Combo,
    seed: u64,
    reps: &mut Vec<l1_engines::Metrics>,
    stopper: Option<&Stopper>,
) -> Result<Option<crate::stats::StopReason>, String> {
    let m = &p.spec.measure;
    // Reps are spread over `launches` engine launches (rep i on launch i mod L), so the reps see
    // launch-to-launch variation; each launch runs its own warm-up reps first.
    let n_launches = m.launches.max(1);
    let mut launches = (0..n_launches)
        .map(|l| start_sim_launch(p, combo, seed, l))
        .collect::<Result<Vec<_>, _>>()?;
    // The baseline and fixed designs run every rep; a combo under early termination may stop at a look.
    let total = m.full_reps();
    for i in 0..total {
        let launch = &mut launches[(i % n_launches) as usize];
        let r = launch
            .rep(m.warmup_reps + i / n_launches)
            .map_err(|e| format!("rep {}: {e}", i + 1))?;
        crate::progress::rep_done(&p.run, i + 1, total);
        accept_rep(p, i, r, reps)?;
        if let Some(reason) = stopper.and_then(|s| s.check(reps))
            && reps.len() < total as usize
        {
            return Ok(Some(reason));
        }
    }
    Ok(None)
}

/// Measure a real engine: launches one after another (one engine per device), each warmed up
/// (the workload's warm-up requests, then `warmup_reps` discarded reps) and running reps
/// `i ≡ l (mod L)`; reps are recorded in measurement order. Real engines run every planned rep
/// (no early termination: a stop would need reps from every launch at each look).
#[allow(clippy::too_many_arguments)]
fn measure_real(
    p: &TargetPlan,
    combo: &Combo,
    key: &str,
    seed: u64,
    lock: &crate::device::DeviceLock,
    reps: &mut Vec<l1_engines::Metrics>,
    notes: &mut Vec<String>,
    probes: &mut Option<l1_engines::probe::ProbeRun>,
) -> Result<(), String> {
    let m = &p.spec.measure;
    let n_launches = m.launches.max(1);
    let state = p.settings_target_dir.join("l1");
    let mut all = Vec::new();
    let mut failure = None;
    for l in 0..n_launches {
        let target = l1_engines::launch::RealTarget {
            engines_dir: &p.engines_dir,
            model_name: &p.target.id.model,
            model: &p.model,
            hardware: &p.hardware,
            workload: &p.workload,
            combo,
            version: &p.target.id.version,
            run_dir: &p.run.path,
            tag: format!("{}-launch{}", &key[..16.min(key.len())], l + 1),
            state_dir: &state,
            cuda_visible_devices: lock.cuda_visible_devices.clone(),
            seed,
            // Validated at expansion: in (0, 86400] seconds.
            startup_timeout: m.startup_timeout_s.map(std::time::Duration::from_secs_f64),
        };
        let mut launch = match l1_engines::registry::start(&p.target.id.engine, &target) {
            Ok(launch) => launch,
            Err(e) => {
                failure = Some(format!("launch {}: {e}", l + 1));
                break;
            }
        };
        let mut result = Ok(());
        for i in 0..m.warmup_reps {
            if let Err(e) = launch.rep(i) {
                result = Err(format!("launch {}: warm-up rep {i}: {e}", l + 1));
                break;
            }
        }
        if result.is_ok() {
            for i in (l..m.full_reps()).step_by(n_launches as usize) {
                match launch.rep(m.warmup_reps + i / n_launches) {
                    Ok(r) => {
                        // Reported as it finishes: the record keeps measurement order.
                        crate::progress::rep_done(&p.run, i + 1, m.full_reps());
                        all.push((i, r));
                    }
                    Err(e) => {
                        result = Err(format!("rep {}: {e}", i + 1));
                        break;
                    }
                }
            }
        }
        // Fidelity probes: after the last launch's reps, outside every measured window.
        if result.is_ok() && l + 1 == n_launches {
            *probes = Some(crate::fidelity::run_probes(launch.as_mut(), &p.workload));
        }
        notes.extend(
            launch
                .notes()
                .into_iter()
                .map(|n| format!("launch {}: {n}", l + 1)),
        );
        drop(launch);
        if let Err(e) = result {
            failure = Some(e);
            break;
        }
    }
    all.sort_by_key(|(i, _)| *i);
    for (i, r) in all {
        accept_rep(p, i, r, reps)?;
    }
    failure.map_or(Ok(()), Err)
}

/// Launch `l` of a simulated arm, warmed up.
fn start_sim_launch(
    p: &TargetPlan,
    combo: &Combo,
    seed: u64,
    l: u32,
) -> Result<sim::SimLaunch, String> {
    let target = SimTarget {
        model: &p.model,
        hardware: &p.hardware,
        workload: &p.workload,
    };
    let mut launch = sim::launch(&target, combo, seed.wrapping_add(u64::from(l)))
        .map_err(|e| format!("engine failed to launch: {e}"))?;
    for i in 0..p.spec.measure.warmup_reps {
        launch
            .rep(i)
            .map_err(|e| format!("launch {}: warm-up rep {i}: {e}", l + 1))?;
    }
    Ok(launch)
}

/// Keep rep `i` (0-based) if its metrics are finite, and fail the measurement when its error
/// rate exceeds the workload's threshold (the rep is kept: it was measured).
fn accept_rep(
    p: &TargetPlan,
    i: u32,
    r: l1_engines::Metrics,
    reps: &mut Vec<l1_engines::Metrics>,
) -> Result<(), String> {
    if let Some((name, v)) = r.iter().find(|(_, v)| !v.is_finite()) {
        return Err(format!(
            "rep {}: metric `{name}` is not finite ({v})",
            i + 1
        ));
    }
    let err_rate = r.get("error_rate").copied().unwrap_or(0.0);
    reps.push(r);
    if err_rate > p.workload.max_error_rate {
        return Err(format!(
            "rep {}: error rate {:.3} exceeds the workload's max_error_rate {:.3}",
            i + 1,
            err_rate,
            p.workload.max_error_rate
        ));
    }
    Ok(())
}

/// What spec templates see: the detected hardware, the catalog's dimensions and values, and this
/// process's `L1_*` variables.
pub fn render_context(cats: &Catalogs, detected: &Detected) -> RenderContext {
    RenderContext {
        hardware: detected.context(),
        catalog: cats
            .kernels
            .catalog
            .dimensions
            .iter()
            .map(|(k, d)| (k.clone(), d.values.clone()))
            .collect(),
        env: RenderContext::env_from_process(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn l1_gates_parses_and_overrides() {
        assert_eq!(parse_gates("manual").unwrap(), [GateMethod::Manual]);
        assert_eq!(
            parse_gates(" topk5, pareto ").unwrap(),
            [GateMethod::Topk5, GateMethod::Pareto]
        );
        let e = parse_gates("topk5,best").unwrap_err();
        assert!(e.message.contains("unknown gate method `best`"), "{e}");
        assert!(
            e.expected
                .as_deref()
                .is_some_and(|x| x.contains("regression")),
            "{e}"
        );
        assert!(parse_gates(" , ").is_err());
        let spec = vec![Gate {
            margin: Some(0.05),
            k: Some(3),
            ..Gate::new(GateMethod::Topk5)
        }];
        let g = override_gates(&spec, &[GateMethod::Manual, GateMethod::Topk5]);
        assert_eq!(g.len(), 2);
        assert_eq!(g[0].method, GateMethod::Manual);
        assert_eq!(
            g[1].margin,
            Some(0.05),
            "a method the spec had keeps its settings"
        );
    }
}
