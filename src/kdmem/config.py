"""Load and validate a study config: JSON Schema first, then the cross-key rules the schema cannot say.

The schema (config.schema.yaml, next to this file) is the single source of keys, types, defaults
and descriptions; the Snakefile validates against the same file. Every failure is one line naming
the key, what is wrong and what to do, raised as KdmemError.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from kdmem.errors import KdmemError
from kdmem.vocab import Role, Size

SCHEMA_PATH = Path(__file__).with_name("config.schema.yaml")


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML keeps the last of two equal keys silently; a duplicate family name must be an error."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: set = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise KdmemError(f"config: duplicate key '{key}' (line {key_node.start_mark.line + 1}); each name may appear once")
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load_schema() -> dict:
    return yaml.safe_load(SCHEMA_PATH.read_text())


def read_yaml(path: str | Path) -> dict:
    p = Path(path)
    if not p.is_file():
        raise KdmemError(f"config file {p} does not exist; pass an existing --config")
    if p.suffix == ".json":
        # The validated config Snakemake hands to kdmem. Not through YAML: YAML 1.1 reads JSON's 5e-05
        # (the paper's learning rate) as a string.
        try:
            data = json.loads(p.read_text())
        except json.JSONDecodeError as e:
            raise KdmemError(f"config file {p} is not valid JSON at line {e.lineno}: {e.msg}") from None
        if not isinstance(data, dict):
            raise KdmemError(f"config file {p} must hold a mapping of keys, not {type(data).__name__}")
        return data
    try:
        data = yaml.load(p.read_text(), Loader=_UniqueKeyLoader)  # noqa: S506 - SafeLoader subclass
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise KdmemError(f"config file {p} is not valid YAML{where}: {getattr(e, 'problem', e)}") from None
    if not isinstance(data, dict):
        raise KdmemError(f"config file {p} must hold a mapping of keys, not {type(data).__name__}")
    return data


def _resolve(schema: dict, root: dict) -> dict:
    if "$ref" in schema:
        target = root
        for part in schema["$ref"].lstrip("#/").split("/"):
            target = target[part]
        schema = {**_resolve(target, root), **{k: v for k, v in schema.items() if k != "$ref"}}
    return schema


def fill_defaults(instance: Any, schema: dict, root: dict) -> Any:
    """Fill every `default:` of the schema into the instance, recursively (defaults of defaults too)."""
    schema = _resolve(schema, root)
    if not isinstance(instance, dict) or schema.get("type") not in (None, "object"):
        return instance
    for key, sub in schema.get("properties", {}).items():
        sub_r = _resolve(sub, root)
        if key not in instance and "default" in sub_r:
            instance[key] = copy.deepcopy(sub_r["default"])
        if key in instance:
            instance[key] = fill_defaults(instance[key], sub_r, root)
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict):
        for key in instance:
            if key not in schema.get("properties", {}):
                instance[key] = fill_defaults(instance[key], extra, root)
    return instance


# Keys renamed since configs were first written: a base is named by its size, not by the role trained from it.
RENAMED = {str(Role.TEACHER): str(Size.LARGE)}  # families.<f>.teacher, named after the role it starts


def _key_path(error: jsonschema.ValidationError) -> str:
    parts = []
    for p in error.absolute_path:
        parts.append(f"[{p}]" if isinstance(p, int) else (f".{p}" if parts else str(p)))
    return "".join(parts) or "(top level)"


def _one_line(error: jsonschema.ValidationError) -> str:
    key = _key_path(error)
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        extra = sorted(set(error.instance) - set(allowed))
        hint = f" ('{extra[0]}' is now '{RENAMED[extra[0]]}')" if RENAMED.get(extra[0]) in allowed else ""
        return f"config: unknown key '{extra[0]}' under {key}; allowed keys: {', '.join(allowed)}{hint}"
    if error.validator == "required":
        old = [o for o, new in RENAMED.items() if new in error.message and isinstance(error.instance, dict) and o in error.instance]
        if old:
            return f"config: {key}: '{old[0]}' is now '{RENAMED[old[0]]}'; rename the key"
        return f"config: {key}: {error.message}; add it"
    if error.validator == "type":
        hint = ""
        if isinstance(error.instance, str) and re.fullmatch(r"[-+]?\d+(\.\d*)?[eE][-+]?\d+", error.instance):
            hint = f" (YAML 1.1 reads {error.instance} as text: write it with a dot and a signed exponent, e.g. 5.0e-5)"
        return f"config: {key} must be of type {error.validator_value}, got {error.instance!r}{hint}"
    if error.validator in ("minimum", "exclusiveMinimum"):
        op = ">=" if error.validator == "minimum" else ">"
        return f"config: {key} must be {op} {error.validator_value}, got {error.instance!r}"
    if error.validator == "enum":
        return f"config: {key} must be one of {error.validator_value}, got {error.instance!r}"
    if error.validator == "minItems":
        return f"config: {key} must not be empty"
    return f"config: {key}: {error.message.splitlines()[0]}"


def _check_cross_keys(cfg: dict) -> None:
    res = Path(cfg["results"])
    if res.is_absolute() or ".." in res.parts:
        raise KdmemError(
            f"config: results = {cfg['results']!r} must be a relative path inside the working directory (no '..'); "
            "run snakemake with --directory to put results elsewhere"
        )
    mem = cfg["memorization"]
    window = mem["prefix_len"] + mem["suffix_len"]
    for name, ds in cfg["datasets"].items():
        key = f"datasets.{name}"
        if window > ds["seq_len"]:
            raise KdmemError(
                f"config: memorization.prefix_len + suffix_len = {window} exceeds {key}.seq_len = {ds['seq_len']}; "
                "shorten the window or lengthen the samples"
            )
        if cfg["distill"]["hard"]["prefix_len"] >= ds["seq_len"]:
            raise KdmemError(f"config: distill.hard.prefix_len must be < {key}.seq_len = {ds['seq_len']}")
        if ds["source"] == "local":
            if "path" not in ds:
                raise KdmemError(f"config: {key}.path is required when source is local")
            paths = ds["path"] if isinstance(ds["path"], list) else [ds["path"]]
            for p in paths:
                if not Path(p).exists():
                    raise KdmemError(f"config: {key}.path: file {p} does not exist; fix the path (relative to the working directory)")
        elif "name" not in ds:
            raise KdmemError(f"config: {key}.name is required when source is hf (e.g. HuggingFaceFW/fineweb)")
        if ds["exposures"] and ds.get("exposure_law"):
            raise KdmemError(f"config: {key} sets both exposures and exposure_law; keep one duplication profile")
        law = ds.get("exposure_law")
        if law and law["min_count"] > law["max_count"]:
            raise KdmemError(f"config: {key}.exposure_law.min_count = {law['min_count']} exceeds max_count = {law['max_count']}")
        if ds["exposures"]:
            total = sum(g["share"] for g in ds["exposures"])
            if abs(total - 1.0) > 1e-6:
                raise KdmemError(f"config: {key}.exposures shares sum to {total:g}, not 1; make them add up to 1")
        if ds["val_frac"] + ds["pretrain_frac"] >= 1:
            raise KdmemError(f"config: {key}.val_frac + pretrain_frac must be < 1 so documents remain for D")
        if ds.get("doc_start"):
            try:
                re.compile(ds["doc_start"])
            except re.error as e:
                raise KdmemError(f"config: {key}.doc_start is not a valid regex ({e}); fix the pattern") from None
    for name, fam in cfg["families"].items():
        for size in Size:
            m, key = fam[size], f"families.{name}.{size}"
            if m["init"] == "scratch" and "arch" not in m:
                raise KdmemError(f"config: {key}.arch is required when init is scratch")
            if m["init"] == "checkpoint" and "checkpoint" not in m:
                raise KdmemError(f"config: {key}.checkpoint is required when init is checkpoint (hub name or local path)")
            if m["init"] == "scratch" and m["arch"]["hidden_size"] % m["arch"]["num_heads"]:
                raise KdmemError(f"config: {key}.arch.num_heads must divide hidden_size")
        scratch = [fam[size]["init"] == "scratch" for size in Size]
        if isinstance(fam["tokenizer"], dict) and not all(scratch):
            raise KdmemError(
                f"config: families.{name}.tokenizer: a trained tokenizer needs both models init: scratch; "
                "checkpoints bring their own tokenizer (give its hub name or path)"
            )
        if isinstance(fam["tokenizer"], str):
            _check_same_tokenizer(name, fam)
    if any(f[r]["init"] == "scratch" for f in cfg["families"].values() for r in Size):
        ds = cfg["pretrain"]["dataset"] or next(iter(cfg["datasets"]))
        if ds not in cfg["datasets"]:
            raise KdmemError(f"config: pretrain.dataset '{ds}' is not one of datasets: {', '.join(cfg['datasets'])}")
        if cfg["datasets"][ds]["pretrain_frac"] <= 0:
            raise KdmemError(f"config: datasets.{ds}.pretrain_frac must be > 0: scratch families pretrain on it")
        cfg["pretrain"]["dataset"] = ds
    temps, primary = cfg["distill"]["soft"]["temperatures"], cfg["analysis"]["primary_temperature"]
    if not any(abs(t - primary) < 1e-9 for t in temps):
        raise KdmemError(f"config: analysis.primary_temperature = {primary:g} is not one of distill.soft.temperatures "
                         f"{[float(t) for t in temps]}; add it there or name one of them")
    soft = cfg["distill"]["soft"]
    if cfg["analysis"]["primary_loss"] not in soft["losses"]:
        raise KdmemError(f"config: analysis.primary_loss = {cfg['analysis']['primary_loss']} is not one of distill.soft.losses "
                         f"{soft['losses']}; add it there or name one of them")
    if soft["cache"] == "sampled" and (bad := [x for x in soft["losses"] if x != "forward_kl"]):
        raise KdmemError(f"config: distill.soft.cache = sampled estimates the forward KL only, but distill.soft.losses has {bad[0]}; "
                         "use cache: topk or dense for it")
    if cfg["finetune"]["teacher_seeds"] is None:  # one teacher, of the study's seed: the name every earlier run gave it
        cfg["finetune"]["teacher_seeds"] = [cfg["seed"]]
    for name, ds in cfg["datasets"].items():
        if ds["n_val_extra"] and ds["val_split"] != "window":
            raise KdmemError(f"config: datasets.{name}.n_val_extra needs val_split: window (the extra windows come from D's own "
                             "documents); set it to 0 or use window validation")
    allowed = set(load_schema()["$defs"]["optim"]["properties"])
    for size, over in cfg["pretrain"]["by_size"].items():
        if bad := sorted(set(over) - allowed):
            raise KdmemError(f"config: unknown key '{bad[0]}' under pretrain.by_size.{size}; allowed keys: {', '.join(sorted(allowed))}")


def pretrain_optim(cfg: dict, size: str) -> dict:
    """pretrain.optim with the base size's overrides (pretrain.by_size) applied."""
    return {**cfg["pretrain"]["optim"], **cfg["pretrain"]["by_size"][size]}


def _check_same_tokenizer(name: str, fam: dict) -> None:
    """The large and the small base must share one vocabulary; checked where both are local folders."""
    from kdmem.tokenizer import local_vocab_fingerprint

    fps = {}
    for size in Size:
        if fam[size]["init"] != "checkpoint":  # a scratch model takes the family's tokenizer as given
            continue
        fp = local_vocab_fingerprint(fam[size]["checkpoint"])
        if fp is not None:
            fps[size] = fp
    if len(fps) == 2 and fps[Size.LARGE] != fps[Size.SMALL]:
        raise KdmemError(
            f"config: families.{name}: the large and small bases' tokenizers differ "
            f"({fam[Size.LARGE]['checkpoint']} vs {fam[Size.SMALL]['checkpoint']}); distillation needs one shared vocabulary"
        )


def merge(base: dict, over: dict) -> dict:
    """`over` laid onto `base`: mappings merge key by key, recursively; anything else (lists included) replaces."""
    out = copy.deepcopy(base)
    for k, v in over.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else copy.deepcopy(v)
    return out


def resolve_extends(cfg: dict, seen: tuple[str, ...] = ()) -> dict:
    """An overlay config names the file it changes with `extends: <path>` (relative to the working directory,
    like every path in a config) and holds only the keys it changes; the chain is followed to its root."""
    parent = cfg.get("extends")
    if parent is None:
        return cfg
    if not isinstance(parent, str):
        raise KdmemError(f"config: extends must be a path to another config file, not {type(parent).__name__}")
    if parent in seen:
        raise KdmemError(f"config: extends loops through {parent}; an overlay cannot extend itself")
    base = resolve_extends(read_yaml(parent), (*seen, parent))
    return merge(base, {k: v for k, v in cfg.items() if k != "extends"})


def validate(cfg: dict) -> dict:
    """Resolve `extends`, validate the config mapping, fill defaults, and return it (a deep copy)."""
    cfg = resolve_extends(copy.deepcopy(cfg))
    schema = load_schema()
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(cfg), key=lambda e: (len(list(e.absolute_path)), str(e.absolute_path)))
    if errors:
        # The deepest error names the key best; oneOf errors carry their sub-errors in context.
        err = errors[-1]
        if err.context:
            err = sorted(err.context, key=lambda e: len(list(e.absolute_path)))[-1]
        raise KdmemError(_one_line(err))
    fill_defaults(cfg, schema, schema)
    _fill_derived_defaults(cfg)
    _check_cross_keys(cfg)
    return cfg


def _fill_derived_defaults(cfg: dict) -> None:
    """The defaults a JSON schema cannot state because they depend on another key: a scratch model's MLP width is
    4 x its hidden size unless given (GPT-NeoX's and Pythia's ratio). Filled here, once, so no reader keeps its own."""
    for fam in cfg["families"].values():
        for size in Size:
            arch = fam[size].get("arch")
            if arch is not None and arch.get("intermediate_size") is None:
                arch["intermediate_size"] = 4 * arch["hidden_size"]
    # pretrain.by_size overrides pretrain.optim per base size; a size it leaves out overrides nothing
    for size in Size:
        cfg["pretrain"]["by_size"].setdefault(str(size), {})


def load(path: str | Path) -> dict:
    """Read a YAML (or JSON) config file, validate it and fill its defaults."""
    return validate(read_yaml(path))


def config_hash(cfg: dict) -> str:
    return hashlib.sha256(json.dumps(cfg, sort_keys=True).encode()).hexdigest()[:16]
