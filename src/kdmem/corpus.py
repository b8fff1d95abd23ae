"""Read a dataset's documents from local files or the HF hub, normalised, with drop counts.

Sources (config `datasets.<name>.source`):
- local: .jsonl/.jsonl.gz (one JSON object per line, text in `text_field`), .txt/.txt.gz
  (documents separated by blank lines), .parquet (a `text_field` column).
- hf: `datasets.load_dataset(name, config, split=..., streaming=...)`, e.g. HuggingFaceFW/fineweb
  (sample-10BT, streaming) or wikitext (wikitext-103-raw-v1). Tests point it at local parquet.

Non-UTF-8 bytes are an error naming the file and byte offset, not silently replaced: a corpus with
broken encoding is usually the wrong file, and replacement characters would become memorization targets.
"""

from __future__ import annotations

import gzip
import json
import re
import unicodedata
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from kdmem.errors import KdmemError


@dataclass
class Doc:
    doc_id: str
    text: str


@dataclass
class ReadStats:
    read: int = 0
    dropped: Counter = field(default_factory=Counter)


def normalize(text: str) -> str:
    """NFC, unix newlines, no trailing spaces, at most one blank line in a row."""
    text = unicodedata.normalize("NFC", text).replace("\r\n", "\n").replace("\r", "\n")
    text = re.sub(r"[ \t]+\n", "\n", text)
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text.strip()


def _open_bytes(path: Path) -> bytes:
    try:
        raw = path.read_bytes()
        return gzip.decompress(raw) if path.name.endswith(".gz") else raw
    except OSError as e:
        raise KdmemError(f"cannot read data file {path}: {e.strerror or e}") from None


def _decode(path: Path, raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise KdmemError(
            f"data file {path} is not valid UTF-8 at byte offset {e.start} (line {line}); re-encode it (e.g. iconv -t utf-8)"
        ) from None


def _fmt(path: Path, fmt: str) -> str:
    if fmt != "auto":
        return fmt
    name = path.name.removesuffix(".gz")
    for suffix, f in ((".jsonl", "jsonl"), (".json", "jsonl"), (".txt", "txt"), (".parquet", "parquet")):
        if name.endswith(suffix):
            return f
    raise KdmemError(f"cannot tell the format of {path} from its suffix; set format: jsonl, txt or parquet")


def _read_local(ds: dict) -> Iterator[tuple[str | None, str]]:
    paths = ds["path"] if isinstance(ds["path"], list) else [ds["path"]]
    tf, idf = ds["text_field"], ds["id_field"]
    for p in map(Path, paths):
        if not p.is_file():
            raise KdmemError(f"data file {p} does not exist; fix datasets.<name>.path")
        fmt = _fmt(p, ds["format"])
        if fmt == "parquet":
            import pyarrow.parquet as pq

            try:
                table = pq.read_table(p)
            except Exception as e:  # noqa: BLE001 - pyarrow raises several types for a bad file
                raise KdmemError(f"cannot read parquet {p}: {str(e).splitlines()[0]}") from None
            if tf not in table.column_names:
                raise KdmemError(f"parquet {p} has no column '{tf}' (columns: {', '.join(table.column_names)}); set text_field")
            ids = table.column(idf).to_pylist() if idf and idf in table.column_names else [None] * table.num_rows
            yield from zip(ids, table.column(tf).to_pylist(), strict=True)
            continue
        text = _decode(p, _open_bytes(p))
        if fmt == "txt":
            for block in re.split(r"\n\s*\n", text):
                yield None, block
            continue
        for i, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                raise KdmemError(f"data file {p} line {i} is not valid JSON ({e.msg}); fix or remove that line") from None
            if not isinstance(rec, dict) or tf not in rec:
                raise KdmemError(f"data file {p} line {i} has no field '{tf}'; set text_field to the text's key")
            yield (str(rec[idf]) if idf and idf in rec else None), rec[tf]


def _read_hf(ds: dict, cache_dir: Path | None) -> Iterator[tuple[str | None, str]]:
    import datasets

    kwargs = {"split": ds["split"], "streaming": ds["streaming"]}
    if ds.get("data_files"):
        kwargs["data_files"] = ds["data_files"]
    if cache_dir is not None:
        kwargs["cache_dir"] = str(cache_dir)
    try:
        data = datasets.load_dataset(ds["name"], ds["config"], **kwargs)
    except Exception as e:  # noqa: BLE001 - hub, network and builder errors all end here
        raise KdmemError(f"cannot load dataset {ds['name']} ({ds['config']}): {str(e).splitlines()[0]}") from None
    tf, idf = ds["text_field"], ds["id_field"]
    cols = data.column_names
    if cols is not None and tf not in cols:
        raise KdmemError(f"dataset {ds['name']} has no column '{tf}' (columns: {', '.join(cols)}); set text_field")
    for rec in data:
        yield (str(rec[idf]) if idf and idf in rec else None), rec[tf]


def group_rows(rows: Iterator[tuple[str | None, str]], doc_start: str) -> Iterator[tuple[str | None, str]]:
    """Join consecutive rows into documents, a new one at each row matching `doc_start`.

    WikiText stores one line per row, so a 256-token sample would otherwise never fit in a row.
    The document's id is the first row's id (or None, and then its position).
    """
    try:
        start = re.compile(doc_start)
    except re.error as e:
        raise KdmemError(f"config: datasets.<name>.doc_start is not a valid regex ({e}); fix the pattern") from None
    doc_id, buf = None, []
    for rid, text in rows:
        text = text if isinstance(text, str) else ""
        if start.search(text) and buf:
            yield doc_id, "".join(buf)
            buf = []
        if not buf:
            doc_id = rid
        buf.append(text if text.endswith("\n") else text + "\n")
    if buf:
        yield doc_id, "".join(buf)


def read_docs(ds: dict, cache_dir: Path | None = None) -> tuple[list[Doc], ReadStats]:
    """All documents of a dataset config, normalised; empty and too-short ones dropped and counted."""
    stats = ReadStats()
    docs: list[Doc] = []
    seen: set[str] = set()
    source = _read_local(ds) if ds["source"] == "local" else _read_hf(ds, cache_dir)
    if ds.get("doc_start"):
        source = group_rows(source, ds["doc_start"])
    for pos, (doc_id, text) in enumerate(source):
        if ds["max_docs"] is not None and pos >= ds["max_docs"]:
            break
        stats.read += 1
        text = normalize(text if isinstance(text, str) else "")
        if not text:
            stats.dropped["empty"] += 1
            continue
        if len(text) < ds["min_chars"]:
            stats.dropped["shorter_than_min_chars"] += 1
            continue
        doc_id = doc_id if doc_id is not None else str(pos)
        if doc_id in seen:
            stats.dropped["duplicate_doc_id"] += 1
            continue
        seen.add(doc_id)
        docs.append(Doc(doc_id, text))
    if stats.read == 0:
        raise KdmemError(f"dataset {ds.get('path') or ds.get('name')} is empty: no documents were read")
    if not docs:
        raise KdmemError(f"dataset {ds.get('path') or ds.get('name')}: all {stats.read} documents were dropped ({dict(stats.dropped)})")
    return docs, stats
