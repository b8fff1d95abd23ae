"""The fixed cost every pipeline job pays before its work: starting `kdmem`, and importing what its
command's body imports. Each figure is a fresh process, best of 3, as a Snakemake job would start.

- `help_s`: `kdmem <cmd> --help` (the CLI and its argument definitions: no torch).
- `body_import_s`: importing the kdmem modules the command's body imports (read from its source), and
  whether that pulls in the HF Trainer (`transformers.trainer`, with scipy, pandas and sympy behind it).
- With a results folder: the scoring stage's job seconds, summed from its `benchmark:` files.
"""

from __future__ import annotations

import ast
import inspect
import subprocess
import sys
import time
from pathlib import Path

from common import ROOT

KDMEM = str(Path(sys.executable).parent / "kdmem")


def body_modules() -> dict[str, list[str]]:
    """For each subcommand, the kdmem modules its run function imports."""
    from kdmem.commands import STAGES

    out = {}
    for stage in STAGES:
        for cmd in stage.COMMANDS:
            tree = ast.parse(inspect.getsource(cmd.run))
            mods = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module and n.module.startswith("kdmem")}
            mods |= {f"kdmem.{a.name}" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module == "kdmem" for a in n.names}
            out[cmd.name] = sorted(mods | {"kdmem.commands.common"})
    return out


def _best(argv: list[str], repeat: int = 3) -> tuple[float, str]:
    best, out = float("inf"), ""
    for _ in range(repeat):
        t = time.perf_counter()
        proc = subprocess.run(argv, capture_output=True, text=True, check=True)
        best, out = min(best, time.perf_counter() - t), proc.stdout
    return best, out


def imports() -> dict[str, dict]:
    probe = ("import sys, time; t = time.perf_counter(); import {mods}; s = time.perf_counter() - t; "
             "print(s, 'transformers.trainer' in sys.modules, 'torch' in sys.modules)")
    out = {}
    for name, mods in body_modules().items():
        help_s, _ = _best([KDMEM, name, "--help"])
        _, line = _best([sys.executable, "-c", probe.format(mods=", ".join(mods))], repeat=1)
        body_s, _ = _best([sys.executable, "-c", probe.format(mods=", ".join(mods))])
        _, trainer, torch = line.split()
        out[name] = {"help_s": help_s, "body_import_s": body_s, "imports_trainer": trainer == "True", "imports_torch": torch == "True"}
    return out


def scoring_job_seconds(results: Path) -> dict:
    files = sorted((results / "benchmarks").rglob("score-*.tsv"))
    secs = [float(f.read_text().splitlines()[1].split("\t")[0]) for f in files]
    return {"jobs": len(files), "seconds": sum(secs)}


def main(results: Path | None = None) -> dict:
    out = {"commands": imports()}
    if results is not None and (results / "benchmarks").is_dir():
        out["scoring_stage"] = scoring_job_seconds(results)
    return out


if __name__ == "__main__":
    import json

    print(json.dumps(main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "results"), indent=2))
