//! Planning: specs → targets → the trials they generate (with why a trial is ignored here),
//! filtered to one spec and one target on the `--exact` fast path.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use l1_engines::registry::engine as engine_info;
use l1_engines::{DeviceKind, HardwareProfile, ModelProfile, Workload};

use super::names::{SlugOrder, push_combo_slug};
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
    let gates = match gates_override {
        Some(methods) => override_gates(ls.spec.gates(), methods),
        None => ls.spec.gates().to_vec(),
    };
    let used = record::used_settings(&ls.spec, &gates, &ls.rendered.text);
    let sp = Arc::new(SpecPlan {
        name: ex.spec.clone(),
        measure: ls.spec.measure.clone(),
        gates,
        used,
        tune: crate::tuning::TuneSpec::from_spec(&ls.spec).map(Arc::new),
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
        let order = (plan.target.combos.first()).and_then(|c| SlugOrder::new(cats, c));
        for (i, combo) in plan.target.combos.iter().enumerate() {
            let mut name = String::with_capacity(prefix.len() + 2 + 96);
            name.push_str(&prefix);
            name.push_str("::");
            match &order {
                Some(order) => order.push(&mut name, cats, combo),
                None => push_combo_slug(&mut name, cats, combo),
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
    use super::*;

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
