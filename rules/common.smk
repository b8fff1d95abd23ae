# Config -> jobs. Paths come from kdmem.layout, each rule's config slice from kdmem.rulecfg; no logic
# beyond naming lives here.
import json
import os
import sys
from pathlib import Path

from kdmem import config as kconfig
from kdmem import rulecfg
from kdmem.errors import KdmemError
from kdmem.layout import Layout, size_of_model
from kdmem.roster import model_name, parse_kd_tag, roster
from kdmem.vocab import BASE_ROLE, KD_TAG, SIZE_OF_ROLE, CacheKind, DataVariant, Role, Size, Split, alternation

try:
    CFG = kconfig.validate(config)
except KdmemError as _e:
    sys.exit(f"kdmem: {_e}")

L = Layout(CFG["results"])

# The rules call `kdmem` by name. Put the bin folder of the Python that runs this Snakefile (the
# project's .venv for `make run` and `.venv/bin/snakemake`) first on PATH, so its kdmem is found
# without an activated venv. Jobs inherit this PATH, SLURM's sbatch included (it exports the
# submitting environment), and a `--sdm conda` job's activated env still goes in front of it.
envvars:
    "PATH",


_user_path = os.environ["PATH"]
os.environ["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), _user_path])


def sliced(rule, fixed=None, **context):
    """The params entry and --config-json of one rule: its config slice (kdmem.rulecfg). `context` maps
    the slice's arguments to wildcard names, or to a function of the wildcards; `fixed` gives constants."""

    def param(wildcards):
        ctx = {k: (v(wildcards) if callable(v) else wildcards[v]) for k, v in context.items()}
        return rulecfg.as_arg(CFG, rule, **ctx, **(fixed or {}))

    return param


# ---- what every job declares ---------------------------------------------------------------
# One thread per job: on CPU two 1-thread jobs train ~1.5x the tokens/s of one 2-thread job (measured), and
# a GPU job needs no more. Resources are a workstation's: gpu=0 runs on the CPU; profiles/gpu and
# profiles/slurm raise gpu, memory and runtime per rule (set-resources). They stay in the rules, not in
# profiles/default, because Snakemake applies that workflow profile after --profile and its
# default-resources would replace the SLURM profile's (partition, account).
ENV = "../envs/kdmem.yaml"  # every rule's environment under --sdm conda (relative to rules/)


# The first teacher, its caches, the soft students, the classifier and the cleaned student form the DAG's longest
# chain; the placebo teacher seeds and everything else can wait. Without priorities Snakemake may start two placebo
# teachers first and leave the chain to the end (measured: the full cache began 34 min into a 3-teacher run).
CRITICAL_PATH = 10
# Off the chain, longest first (trainings, then the large models' scores, then the small ones'), so the run does not
# end on one busy core: revision 2's run scored the placebo teacher (110 s) last, alone, after every other job.
LONG_JOB = 5
LARGE_SCORE = 4


def finetune_priority(wildcards):
    """The teacher the students distil from first; the placebo teachers and the baselines (finetune_once's jobs, which
    have no role wildcard, included) as long jobs."""
    first = "role" in wildcards.keys() and wildcards.role == Role.TEACHER and int(wildcards.seed) == CFG["finetune"]["teacher_seeds"][0]
    return CRITICAL_PATH if first else LONG_JOB


def score_priority(wildcards):
    """A large model's scoring takes 2-3 times a small one's: start it before them."""
    size = wildcards.size if "size" in wildcards.keys() else size_of_model(wildcards.model)
    return LARGE_SCORE if size == Size.LARGE else 0


def job(mem_mb, runtime, gpu=False):
    """A rule's resources: memory (MB) and runtime (minutes) on a workstation, on the CPU. gpu=True declares
    that the rule's command runs a model and uses the GPUs its `gpu` resource gives it (the training rules
    pass it on as --nproc). The count itself comes from profiles/gpu and profiles/slurm, whose set-resources
    must list exactly the rules declared here (tests/test_envs.py): a GPU rule missing there would run on
    the CPU of a GPU node without a word."""
    return {"mem_mb": mem_mb, "runtime": runtime, "gpu": 0}


def cache_params(kind):
    """The params of one cache kind: the kind is named once, for both the slice and --kind."""
    return {"cfg": sliced("cache_logits", fixed={"kind": kind.value}, family="family"), "kind": kind.value, "tokenizer": tokenizer_of}


def write_config_json():
    """The validated config with defaults, as a record of the study (no command reads it: each gets
    its slice). Written in onstart, which Snakemake skips for a dry run, --lint and remote jobs."""
    text = json.dumps(CFG, indent=1, sort_keys=True)
    path = Path(L.config_json())
    if path.is_file() and path.read_text() == text:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.tmp")
    tmp.write_text(text)
    tmp.replace(path)


FAMILIES = list(CFG["families"])
DATASETS = list(CFG["datasets"])
SEED = CFG["seed"]
PRETRAIN_DATASET = CFG["pretrain"]["dataset"]


wildcard_constraints:
    family="|".join(FAMILIES),
    dataset="|".join(DATASETS),
    split=alternation(Split),
    size=alternation(Size),
    seed=r"\d+",
    temperature=r"[0-9]+(\.[0-9]+)?",
    kd=KD_TAG,
    role=alternation([Role.TEACHER, Role.BASELINE]),  # the roles `finetune` trains
    model=rf"({alternation(Role)})-[A-Za-z0-9._\-]+",


def trains_tokenizer(family):
    return isinstance(CFG["families"][family]["tokenizer"], dict)


def tokenizer_of(wildcards):
    """The family's tokenizer: our trained folder, or the hub name / path from the config."""
    tok = CFG["families"][wildcards.family]["tokenizer"]
    return L.tokenizer(wildcards.family) if trains_tokenizer(wildcards.family) else tok


def tokenizer_input(wildcards):
    return [L.tokenizer(wildcards.family)] if trains_tokenizer(wildcards.family) else []


def data_targets():
    out = []
    for f in FAMILIES:
        out += [L.samples(f, d, s) for d in DATASETS for s in Split]
        if any(CFG["families"][f][size]["init"] == "scratch" for size in Size):
            out.append(L.pretrain_samples(f))
    return out


# ---- models --------------------------------------------------------------------------------
# The study's models and its primary ones come from kdmem.roster (one ModelSpec each), as for every command.
ROSTER = roster(CFG)
KL_T = "1.0"  # kl_to_teacher is taken at T = 1, from its own cache
TEACHER = ROSTER.teacher.name  # the teacher every student distils from; the other teacher seeds are its seed placebo
PRIMARY_BASELINE = ROSTER.primary_baseline.name
PRIMARY_STUDENT = ROSTER.primary_student.name
PRIMARY = ROSTER.primary_names


def base_of(family, size):
    """Base model of a family: our pretrained folder (scratch) or the configured checkpoint."""
    m = CFG["families"][family][size]
    return L.scratch_base(family, size) if m["init"] == "scratch" else m["checkpoint"]


def base_input(family, *sizes):
    return [L.scratch_base(family, s) for s in sizes if CFG["families"][family][s]["init"] == "scratch"]


def bases_needed(*sizes):
    """Input function: the family's pretrained bases of these sizes that the DAG builds (none for checkpoints)."""
    return lambda w: base_input(w.family, *sizes)


def base_path(size):
    """Params function: the family's base of this size, our folder or the configured checkpoint."""
    return lambda w: base_of(w.family, size)


def kd_options(w):
    """A soft student's --temperature and --loss, from its {kd} wildcard."""
    return "--temperature {} --loss {}".format(*parse_kd_tag(w.kd))


def cache_option(w, input):
    """--cache <folder> when the student reads a cache; nothing for dense (online) KD."""
    return f"--cache {input.cache}" if input.cache else ""


def soft_cache(w):
    """The cache distill.soft.cache names, at the soft student's T ({kd} wildcard): top-k, sampled, full, or none
    (dense: online KD)."""
    t = str(parse_kd_tag(w.kd)[0])
    return {"topk": [L.cache(w.family, w.dataset, t)], "sampled": [L.sampled_cache(w.family, w.dataset, t)],
            "full": [L.full_cache(w.family, w.dataset, t)], "dense": []}[
        CFG["distill"]["soft"]["cache"]
    ]


def per_pair(path_of):
    return [path_of(f, d) for f in FAMILIES for d in DATASETS]


def db_inputs():
    every = [(f, d, m) for f in FAMILIES for d in DATASETS for m in ROSTER.names]
    return {
        "samples": [L.samples(f, d, s) for f in FAMILIES for d in DATASETS for s in Split],
        "models": [L.model(f, d, m) for f, d, m in every],
        "bases": per_pair(L.bases_json),
        "scores": [L.scores(f, d, m, s) for f, d, m in every for s in Split]
        + [L.scores(f, d, b.name, s) for f in FAMILIES for d in DATASETS for b in ROSTER.bases for s in Split],
        "trials": per_pair(L.classifier_trials),
        "coefficients": per_pair(L.classifier_coefficients),
        "predictions": per_pair(L.predictions),
        "mia": per_pair(L.mia) if CFG["mia"]["enabled"] else [],
        "mia_scores": per_pair(L.mia_scores) if CFG["mia"]["enabled"] else [],
    }


def mia_scores_inputs(w):
    """Membership inference reads every model's and both bases' scores on every split: no model runs again."""
    return [L.scores(w.family, w.dataset, m.name, s) for m in ROSTER.models + ROSTER.bases for s in Split]


def all_targets():
    return data_targets() + [L.db(), L.report()]


def check_gpus():
    """A local run whose profile asks for GPUs must have them: one line now, not a CPU fallback later.
    Runs in onstart, once the executor is known: on SLURM the GPUs are on the nodes, and a dry run starts nothing."""
    from kdmem import gpucheck

    if not workflow.local_exec:
        return
    rs = workflow.resource_settings
    asked = gpucheck.requested_gpus(rs.overwrite_resources, workflow.global_resources, rs.default_resources)
    if asked:
        import torch

        msg = gpucheck.check(asked, torch.cuda.is_available())
        if msg:
            print(f"kdmem: {msg}", file=sys.stderr)
            workflow.persistence.unlock()  # os._exit skips Snakemake's cleanup, which would leave the lock
            os._exit(1)  # before any job; an exception here would print a traceback wall


onstart:
    check_gpus()
    write_config_json()
