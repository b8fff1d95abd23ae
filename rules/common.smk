# Config -> target paths. No logic beyond naming: everything else lives in src/kdmem.
import json
import sys
from pathlib import Path

from kdmem import config as kconfig
from kdmem.errors import KdmemError

try:
    CFG = kconfig.validate(config)
except KdmemError as _e:
    sys.exit(f"kdmem: {_e}")

R = CFG["results"]
# The validated config with defaults, for the kdmem commands; rewritten only when it changes, so its
# mtime never triggers reruns (params carry the config sections each rule depends on).
CONFIG_JSON = f"{R}/.kdmem/config.json"
_cfg_text = json.dumps(CFG, indent=1, sort_keys=True)
if not Path(CONFIG_JSON).is_file() or Path(CONFIG_JSON).read_text() != _cfg_text:
    Path(CONFIG_JSON).parent.mkdir(parents=True, exist_ok=True)
    Path(CONFIG_JSON).write_text(_cfg_text)

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


def all_targets():
    return data_targets()
