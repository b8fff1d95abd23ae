"""Atomic outputs: every file or folder appears whole or not at all.

Snakemake deletes the outputs of a failed job, but a reader (another job, a user's SQL session) can
still see a half-written file while a job runs, and a killed job leaves one behind. So everything is
written to a temporary sibling and renamed into place, which is atomic on one filesystem.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl


def _umask() -> int:
    """The process umask. os.umask can only be read by setting it, so set it back at once."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _follow_umask(root: Path, mask: int) -> None:
    """Give every file and folder inside a written folder the umask's mode. Libraries write some files
    through temporaries of their own (transformers' safetensors shards come out 0600), which a colleague
    on a shared project folder could not read; execute bits a writer set on purpose are kept."""
    for p in root.rglob("*"):
        if p.is_symlink():
            continue
        if p.is_dir():
            p.chmod(0o777 & ~mask)
        else:
            p.chmod((0o666 | (p.stat().st_mode & 0o111)) & ~mask)


@contextlib.contextmanager
def atomic_path(path: str | Path, is_dir: bool = False) -> Iterator[Path]:
    """Yield a temporary path next to `path`; rename it onto `path` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # A writer killed with SIGKILL leaves its temporary behind. Snakemake runs one job per output at a
    # time, so any temporary of this output is such a leftover: remove it before writing anew.
    for stale in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        shutil.rmtree(stale, ignore_errors=True) if stale.is_dir() else stale.unlink(missing_ok=True)
    if is_dir:
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    else:
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        tmp = Path(name)
    # mkstemp/mkdtemp create 0600/0700 whatever the umask, and the rename keeps that mode, so on a shared
    # project folder colleagues could not read a result. Give the temporary the mode a plain open() or
    # mkdir() would have under the caller's umask (0644/0755 under 022, 0664/0775 under 002).
    mask = _umask()
    tmp.chmod((0o777 if is_dir else 0o666) & ~mask)
    try:
        yield tmp
        if is_dir:
            _follow_umask(tmp, mask)
        if is_dir and path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
    except BaseException:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)
        raise


def write_json(obj: Any, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def read_json(path: str | Path) -> Any:
    return json.loads(Path(path).read_text())


def write_parquet(df: pl.DataFrame, path: str | Path) -> None:
    # statistics off and a fixed compression keep the bytes identical across runs.
    with atomic_path(path) as tmp:
        df.write_parquet(tmp, compression="zstd", statistics=False)


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def sha256_dir(path: str | Path, suffixes: tuple[str, ...] = (".json", ".safetensors", ".txt", ".model")) -> str:
    """Fingerprint of a model or tokenizer folder: hash of its weight and config files, in name order."""
    h = hashlib.sha256()
    for f in sorted(Path(path).iterdir()):
        if f.is_file() and f.suffix in suffixes and not f.name.startswith(("trainer_", "metrics", "train_log")):
            h.update(f.name.encode())
            h.update(sha256_file(f).encode())
    return h.hexdigest()[:16]
