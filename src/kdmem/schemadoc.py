"""docs/config.md, generated from the config schema: every key with its type, default and description.

The schema is the one source of keys and defaults, so the reference is derived from it rather than written beside
it. `make docs` (`kdmem config-doc`) rewrites the file, and tests/test_config.py fails when the file and the
schema disagree.
"""

from __future__ import annotations

import json
from typing import Any

HEADER = """# Config reference

Generated from `src/kdmem/config.schema.yaml` by `make docs`; do not edit by hand (`tests/test_config.py` checks it).
One file describes a whole study. `config.yaml` is the embedded default, and `configs/` holds the paper's
configurations, the sweeps and the design rows. A config may start with `extends: <file>`, so that it holds only
the keys it changes: mappings merge key by key and lists replace. Validate a config with
`kdmem validate --config FILE`. A bad config stops with one line that names the key.

`<name>` stands for a key you choose (a dataset's or a family's name). A dash in the default column means the key
has no default: it is required where its section is given, or optional where the description says so.
"""


def _type(node: dict[str, Any]) -> str:
    if "enum" in node:
        return " \\| ".join(f"`{v}`" for v in node["enum"])
    t = node.get("type")
    if isinstance(t, list):
        return " or ".join(t)
    if t:
        return str(t)
    if "oneOf" in node or "anyOf" in node:
        return " or ".join(_type(x) for x in node.get("oneOf", node.get("anyOf", [])))
    return "any"


def _default(node: dict[str, Any]) -> str:
    if "default" not in node:
        return "–"
    text = json.dumps(node["default"], ensure_ascii=False)
    return f"`{text}`" if len(text) <= 40 else "see the description"


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def rows(node: dict[str, Any], defs: dict[str, Any], prefix: str) -> list[str]:
    """One table row per key under `node` (depth first, in the schema's order)."""
    if "$ref" in node:
        node = {**defs[node["$ref"].rsplit("/", 1)[-1]], **{k: v for k, v in node.items() if k != "$ref"}}
    out = []
    for key, sub in node.get("properties", {}).items():
        if "$ref" in sub:
            sub = {**defs[sub["$ref"].rsplit("/", 1)[-1]], **{k: v for k, v in sub.items() if k != "$ref"}}
        path = f"{prefix}{key}"
        out.append(f"| `{path}` | {_type(sub)} | {_default(sub)} | {_cell(sub.get('description', ''))} |")
        out += rows(sub, defs, f"{path}.")
        extra = sub.get("additionalProperties")
        if isinstance(extra, dict) and ("properties" in extra or "$ref" in extra):
            out += rows(extra, defs, f"{path}.<name>.")
    return out


def render(schema: dict[str, Any]) -> str:
    defs = schema.get("$defs", {})
    lines = [HEADER, _cell(schema.get("description", "")), "", "| key | type | default | description |", "|---|---|---|---|"]
    lines += rows(schema, defs, "")
    return "\n".join(lines) + "\n"
