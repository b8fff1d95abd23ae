# Config -> target paths. No logic beyond naming: everything else lives in src/kdmem.
import json
import os
import sys
from pathlib import Path

from kdmem import config as kconfig
from kdmem.errors import KdmemError

try:
    CFG = kconfig.validate(config)
except KdmemError as _e:
    sys.exit(f"kdmem: {_e}")

R = CFG["results"]
# The validated config with defaults, for the kdmem commands. It is written in onstart, which
# Snakemake skips for a dry run, --lint and the jobs it runs on other nodes, so parsing the
# Snakefile writes nothing; it is rewritten only when it changes, so its mtime never triggers
# reruns (params carry the config sections each rule depends on).
CONFIG_JSON = f"{R}/.kdmem/config.json"

# The rules call `kdmem` by name. Put the bin folder of the Python that runs this Snakefile (the
# project's .venv for `make run` and `.venv/bin/snakemake`) first on PATH, so its kdmem is found
# without an activated venv. Jobs inherit this PATH, SLURM's sbatch included (it exports the
# submitting environment), and a `--sdm conda` job's activated env still goes in front of it.
envvars:
    "PATH",


_user_path = os.environ["PATH"]
os.environ["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), _user_path])


def write_config_json():
    text = json.dumps(CFG, indent=1, sort_keys=True)
    path = Path(CONFIG_JSON)
    if path.is_file() and path.read_text() == text:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.tmp")
    tmp.write_text(text)
    tmp.replace(path)


FAMILIES = list(CFG["families"])
DATASETS = list(CFG["datasets"])
SPLITS = ["train", "val"]
SEED = CFG["seed"]


wildcard_constraints:
    family="|".join(FAMILIES),
    dataset="|".join(DATASETS),
    split="train|val",
    size="teacher|small",
    seed=r"\d+",


PRETRAIN_DATA = CFG["datasets"].get(CFG["pretrain"]["dataset"] or "", {})


def dataset_cfg(wildcards):
    return CFG["datasets"][wildcards.dataset]


def tokenizer_cfg(wildcards):
    return CFG["families"][wildcards.family]["tokenizer"]


def is_scratch(family):
    return CFG["families"][family]["teacher"]["init"] == "scratch"


def tokenizer_of(wildcards):
    """The family's tokenizer: our trained folder, or the hub name / path from the config."""
    tok = CFG["families"][wildcards.family]["tokenizer"]
    return f"{R}/{wildcards.family}/tokenizer" if isinstance(tok, dict) else tok


def tokenizer_input(wildcards):
    tok = CFG["families"][wildcards.family]["tokenizer"]
    return [f"{R}/{wildcards.family}/tokenizer"] if isinstance(tok, dict) else []


def data_targets():
    out = []
    for f in FAMILIES:
        out += expand(f"{R}/{f}/{{dataset}}/data/{{split}}.parquet", dataset=DATASETS, split=SPLITS)
        if is_scratch(f):
            out.append(f"{R}/{f}/pretrain/pretrain.parquet")
    return out




# ---- models --------------------------------------------------------------------------------
TEMPERATURES = [str(t) for t in CFG["distill"]["soft"]["temperatures"]]
T0 = TEMPERATURES[0]  # the student the overlap, classifier and removal analyses use
HARD = CFG["distill"]["hard"]["enabled"]


wildcard_constraints:
    temperature=r"[0-9]+(\.[0-9]+)?",
    role="teacher|baseline",


def base_of(family, size):
    """Base model of a family: our pretrained folder (scratch) or the configured checkpoint."""
    m = CFG["families"][family][size]
    return f"{R}/{family}/base/{size}" if m["init"] == "scratch" else m["checkpoint"]


def base_input(family, size):
    return [base_of(family, size)] if CFG["families"][family][size]["init"] == "scratch" else []


def finetune_base(wildcards):
    return base_of(wildcards.family, "teacher" if wildcards.role == "teacher" else "small")


def finetune_base_input(wildcards):
    return base_input(wildcards.family, "teacher" if wildcards.role == "teacher" else "small")


def both_bases_input(wildcards):
    return base_input(wildcards.family, "teacher") + base_input(wildcards.family, "small")


def teacher_base(wildcards):
    return base_of(wildcards.family, "teacher")


def small_base(wildcards):
    return base_of(wildcards.family, "small")


def small_base_input(wildcards):
    return base_input(wildcards.family, "small")


def finetune_optim(wildcards):
    return CFG["finetune"][wildcards.role]


def pretrain_val(wildcards):
    return f"{R}/{wildcards.family}/{CFG['pretrain']['dataset']}/data/val.parquet"


def pretrain_arch(wildcards):
    return CFG["families"][wildcards.family][wildcards.size].get("arch")


def model_names(family):
    """Every model of a (family, dataset), by its folder name under models/."""
    names = [f"teacher-s{SEED}"] + [f"baseline-s{s}" for s in CFG["baseline_seeds"]]
    names += [f"student-T{t}-s{SEED}" for t in TEMPERATURES]
    if HARD:
        names.append(f"hard_student-s{SEED}")
    if CFG["removal"]["enabled"]:
        names.append(f"student-T{T0}-s{SEED}-cleaned")
    return names




# ---- scoring -------------------------------------------------------------------------------
KL_T = "1.0"  # kl_to_teacher is taken at T = 1, from its own cache


wildcard_constraints:
    model=r"(teacher|baseline|student|hard_student)-[A-Za-z0-9.\-]+",


def score_cache_input(wildcards):
    """The train split gets kl_to_teacher from the T=1 cache; validation samples are not cached."""
    if wildcards.split != "train":
        return []
    return [f"{R}/{wildcards.family}/{wildcards.dataset}/cache/T{KL_T}"]


def score_cache_arg(wildcards, input):
    return f"--cache {input.cache[0]} --teacher {input.teacher}" if input.cache else ""


def score_targets():
    return [
        f"{R}/{f}/{d}/scores/{m}/{s}.parquet" for f in FAMILIES for d in DATASETS for m in model_names(f) for s in SPLITS
    ]


def all_targets():
    return data_targets() + [f"{R}/kdmem.duckdb", f"{R}/report/report.html"]


# ---- analysis ------------------------------------------------------------------------------
PRIMARY_BASELINE = f"baseline-s{CFG['baseline_seeds'][0]}"
PRIMARY_STUDENT = f"student-T{T0}-s{SEED}"
CLEANED = f"student-T{T0}-s{SEED}-cleaned"
PRIMARY = [f"teacher-s{SEED}", PRIMARY_BASELINE, PRIMARY_STUDENT, f"hard_student-s{SEED}", CLEANED]


def pair_files(pattern):
    return [pattern.format(R=R, f=f, d=d) for f in FAMILIES for d in DATASETS]


def db_inputs():
    return {
        "samples": [f"{R}/{f}/{d}/data/{s}.parquet" for f in FAMILIES for d in DATASETS for s in SPLITS],
        "models": [f"{R}/{f}/{d}/models/{m}" for f in FAMILIES for d in DATASETS for m in model_names(f)],
        "bases": pair_files("{R}/{f}/{d}/bases.json"),
        "scores": score_targets(),
        "trials": pair_files("{R}/{f}/{d}/analysis/classifier_trials.parquet"),
        "coefficients": pair_files("{R}/{f}/{d}/analysis/classifier_coefficients.parquet"),
        "predictions": pair_files("{R}/{f}/{d}/analysis/predictions.parquet"),
    }


def removal_arg(wildcards, input):
    return f"--drop {input.predictions}"


def metrics_files(wildcards, input):
    return " ".join(f"{m}/metrics.json" for m in input.models)


def output_folder(wildcards, output):
    return str(Path(output[0]).parent)


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
