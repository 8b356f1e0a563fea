//! Planning: specs → targets → the trials they generate (with why a trial is ignored here),
//! filtered to one spec and one target on the `--exact` fast path.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use l1_engines::registry::engine as engine_info;
use l1_engines::{DeviceKind, HardwareProfile, ModelProfile, Workload};

use super::names::{SpaceSlugs, push_combo_slug};
use crate::detect::Detected;
use crate::diag::{Diagnostic, display_path};
use crate::expand::{self, ExpandedTarget, TargetId};
use crate::profiles::Catalogs;
use crate::record::{self, RunDir};
use crate::render::RenderContext;
use crate::settings::Settings;
use crate::spec::{self, Gate, GateMethod, Measure};

/// What kind of trial a name denotes.
#[derive(Clone, Debug)]
pub(super) enum Leaf {
    /// The combo at this index of the target's `combos` (an index, not a copy: listing makes
    /// one trial per combo).
    Combo(usize),
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
    pub(super) gates: Vec<Gate>,
    /// A tune spec's validated settings.
    pub(crate) tune: Option<Arc<crate::tuning::TuneSpec>>,
    pub(super) snapshot: String,
    /// The spec file, its source and rendered text (recorded with the run in the store).
    pub(super) path: PathBuf,
    pub(super) source: String,
    pub(super) rendered: String,
    /// What its trial records say the run used (trim, mode, reps, gates, spec digest).
    pub(crate) used: crate::model::UsedSettings,
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
    pub(super) model: ModelProfile,
    pub(super) workload: Workload,
    pub(crate) run: RunDir,
    pub(crate) cats: Arc<Catalogs>,
    pub(crate) settings_target_dir: PathBuf,
    pub(super) engines_dir: PathBuf,
    /// `L1_TUNE_TRIAL_DELAY_MS` (see [`crate::settings`]).
    pub(super) tune_trial_delay: Option<std::time::Duration>,
    /// The hardware fingerprint calibrations are recorded under.
    pub(super) fingerprint: String,
    /// The target's engine in the engines crate's table (`None`: this build does not know it;
    /// its launches then fail saying so).
    pub(super) engine: Option<&'static dyn l1_engines::registry::Engine>,
    /// The cache key's parts common to every combo, computed on first use (the model hash reads
    /// model files, and real engines report their version): never while listing.
    pub(super) parts: std::sync::OnceLock<
        Result<
            crate::fingerprint::TargetParts,
            std::sync::Arc<crate::fingerprint::FingerprintError>,
        >,
    >,
}

impl TargetPlan {
    /// Whether the engine is simulated (the engine table's row says so): its records say so,
    /// its version is the spec's, it reads no model files and its results are never cached.
    pub(crate) fn simulated(&self) -> bool {
        self.engine.is_some_and(|e| e.simulated())
    }

    /// Whether a measurement holds the target's device (an engine this build does not know is
    /// treated as a real one).
    pub(super) fn needs_device(&self) -> bool {
        self.engine.is_none_or(|e| e.needs_device())
    }

    /// Whether a measurement may keep all its launches open at once (and so stop early).
    pub(super) fn concurrent_launches(&self) -> bool {
        self.engine.is_some_and(|e| e.concurrent_launches())
    }
}

/// A trial before it becomes a libtest-mimic `Trial`.
#[derive(Clone, Debug)]
pub struct PlannedTrial {
    pub name: String,
    pub ignored: Option<String>,
    pub(crate) plan: Arc<TargetPlan>,
    pub(super) leaf: Leaf,
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
    info.availability(&settings.engines_dir)
        .err()
        .map(|e| e.to_string())
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
    let gates_override = match settings.gates.clone() {
        Ok(g) => g,
        Err(d) => return (Vec::new(), vec![("invalid::L1_GATES".into(), d)]),
    };
    if let Err(e) = &crate::settings::env().measure_seed {
        let d = Diagnostic::new("L1_MEASURE_SEED", e.to_string()).field("L1_MEASURE_SEED");
        return (Vec::new(), vec![("invalid::L1_MEASURE_SEED".into(), d)]);
    }
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
    let env = PlanEnv {
        ctx: &ctx,
        cats: &cats,
        detected: &detected,
        settings,
        run: &run,
        only_target,
        gates_override: gates_override.as_deref(),
    };
    let planned: Vec<(PathBuf, Result<Vec<PlannedTrial>, Diagnostic>)> = (files.into_iter())
        .map(|file| {
            let result = plan_spec(&file, &env);
            (file, result)
        })
        .collect();
    // The names are checked once every spec is planned, so they are looked up where they are,
    // not copied: a name is made by one spec only, and once in it.
    let verdicts: Vec<Option<Diagnostic>> = {
        let total = (planned.iter())
            .map(|(_, r)| r.as_ref().map_or(0, Vec::len))
            .sum();
        let mut seen: HashMap<&str, usize> = HashMap::with_capacity(total);
        (planned.iter().enumerate())
            .map(|(k, (file, result))| {
                let list = result.as_ref().ok()?;
                check_names(list, k, file, &mut seen, &planned)
            })
            .collect()
    };
    let mut trials = Vec::with_capacity(
        (planned.iter().zip(&verdicts))
            .filter(|(_, v)| v.is_none())
            .map(|((_, r), _)| r.as_ref().map_or(0, Vec::len))
            .sum(),
    );
    let mut errors = Vec::new();
    for ((file, result), verdict) in planned.into_iter().zip(verdicts) {
        let stem = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let invalid = || format!("invalid::{}", stem.split('.').next().unwrap_or(&stem));
        match (result, verdict) {
            (Err(d), _) | (Ok(_), Some(d)) => errors.push((invalid(), d)),
            (Ok(list), None) => trials.extend(list),
        }
    }
    (trials, errors)
}

/// Why the trials `list` that the spec `planned[k]` (at `file`) made cannot run, if they
/// cannot: none, a name another spec already made (one in `seen`), or a name made twice.
/// Their names go into `seen` when they can.
fn check_names<'a>(
    list: &'a [PlannedTrial],
    k: usize,
    file: &Path,
    seen: &mut HashMap<&'a str, usize>,
    planned: &[(PathBuf, Result<Vec<PlannedTrial>, Diagnostic>)],
) -> Option<Diagnostic> {
    if list.is_empty() {
        return Some(
            Diagnostic::new(file, "the spec expands to zero trials")
                .expected("at least one target with a legal combo"),
        );
    }
    if let Some((name, other)) =
        (list.iter()).find_map(|t| seen.get(t.name.as_str()).map(|&j| (&t.name, j)))
    {
        return Some(
            Diagnostic::new(
                file,
                format!(
                    "two trials have the same name `{name}` (also made by {})",
                    display_path(&planned[other].0)
                ),
            )
            .expected("unique spec names and no repeated targets"),
        );
    }
    for (n, t) in list.iter().enumerate() {
        if seen.insert(&t.name, k).is_some() {
            // Made twice by this spec: none of its names stay.
            for earlier in &list[..n] {
                seen.remove(earlier.name.as_str());
            }
            return Some(
                Diagnostic::new(file, format!("two trials have the same name `{}`", t.name))
                    .expected("no repeated engines, models, hardware or workloads in `targets`"),
            );
        }
    }
    None
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

/// `measure` with `L1_MEASURE_SEED` (when set) replacing its seed.
fn with_measure_seed(mut measure: Measure) -> Measure {
    if let Ok(Some(seed)) = crate::settings::env().measure_seed {
        measure.seed = seed;
    }
    measure
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
    let gates = match gates_override {
        Some(methods) => override_gates(ex.typed.gates(), methods),
        None => ex.typed.gates().to_vec(),
    };
    let used = record::used_settings(&ex.typed, &gates, &ls.rendered.text);
    let sp = Arc::new(SpecPlan {
        name: ex.spec.clone(),
        measure: with_measure_seed(ex.typed.measure.clone()),
        gates,
        used,
        tune: crate::tuning::TuneSpec::from_spec(&ex.typed).map(Arc::new),
        snapshot: cats.kernels.snapshot.clone(),
        path: file.to_path_buf(),
        source: ls.source.clone(),
        rendered: ls.rendered.text.clone(),
    });
    let mut out = Vec::new();
    for target in ex.targets {
        let hw = cats.hardware[&target.id.hardware].clone();
        let engine = engine_info(&target.id.engine);
        let class = match (engine.map(|e| e.needs_device()), hw.device) {
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
            tune_trial_delay: settings.tune_trial_delay,
            engines_dir: settings.engines_dir.clone(),
            fingerprint,
            engine,
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
        // Named from their value indices: listing builds no combo.
        let space = &plan.target.space;
        let slugs = SpaceSlugs::new(cats, space);
        let mut at = vec![0; space.axes.len()];
        let room = prefix.len() + 2 + slugs.as_ref().map_or(96, SpaceSlugs::max_len);
        for (i, &ordinal) in plan.target.picked.iter().enumerate() {
            let mut name = String::with_capacity(room);
            name.push_str(&prefix);
            name.push_str("::");
            match &slugs {
                Some(slugs) => {
                    space.decode(ordinal, &mut at);
                    slugs.push(&mut name, &at);
                }
                None => push_combo_slug(&mut name, cats, &plan.target.combo(i)),
            }
            out.push(PlannedTrial {
                name,
                ignored: ignore.clone(),
                plan: plan.clone(),
                leaf: Leaf::Combo(i),
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
    use std::collections::BTreeSet;

    use super::*;

    const SPEC: &str = "kind: sweep
name: NAME
targets:
  engines: [sim@1.0]
  models: [llama-3.1-8b]
  hardware: [HARDWARE]
  workloads: [chat-short]
space:
  mode: exhaustive
  dims:
    cuda_graph: all
gates:
  - { method: manual }
";

    /// A name made by two specs fails the later one (naming the earlier), a name made twice by
    /// one spec fails it, and neither keeps the other specs' trials from being planned or
    /// leaves its own names behind for a later spec to clash with.
    #[test]
    fn a_trial_name_is_made_once() {
        let dir = std::env::temp_dir().join(format!("l1-plan-names-{}", std::process::id()));
        let specs = dir.join("specs");
        let write = |sub: &str, name: &str, hardware: &str| {
            let text = SPEC.replace("NAME", name).replace("HARDWARE", hardware);
            let at = specs.join(sub);
            std::fs::create_dir_all(&at).unwrap_or_else(|e| panic!("{e}"));
            std::fs::write(at.join(format!("{name}.yaml")), text).unwrap_or_else(|e| panic!("{e}"));
        };
        // Planned in path order: x/one, x/two (h100 twice), y/one (x/one's names again), y/two
        // (x/two's names, once each).
        write("x", "one", "h100-sxm");
        write("x", "two", "h100-sxm, h100-sxm");
        write("y", "one", "h100-sxm");
        write("y", "two", "h100-sxm");
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let settings = Settings::new(&root, specs.clone(), dir.join("target"));
        let (trials, errors) = plan(&settings, None);
        let _ = std::fs::remove_dir_all(&dir);
        let errors: Vec<(String, String)> =
            (errors.into_iter()).map(|(n, d)| (n, d.message)).collect();
        assert_eq!(errors.len(), 2, "{errors:?}");
        let (local, other) = (&errors[0], &errors[1]);
        assert_eq!(local.0, "invalid::two");
        assert!(
            local
                .1
                .starts_with("two trials have the same name `sim::two::")
                && !local.1.contains("also made by"),
            "{}",
            local.1
        );
        assert_eq!(other.0, "invalid::one");
        assert!(
            other
                .1
                .starts_with("two trials have the same name `sim::one::")
                && other.1.contains("(also made by")
                && other.1.contains("x/one.yaml"),
            "{}",
            other.1
        );
        let specs_planned: BTreeSet<&str> =
            trials.iter().map(|t| t.plan.spec.name.as_str()).collect();
        assert_eq!(specs_planned, BTreeSet::from(["one", "two"]));
        // x/one and y/two: three `cuda_graph` values, the baseline and the gate each.
        assert_eq!(
            trials.len(),
            10,
            "{:?}",
            trials.iter().map(|t| &t.name).collect::<Vec<_>>()
        );
    }

    #[test]
    fn l1_gates_overrides_spec_gates() {
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
