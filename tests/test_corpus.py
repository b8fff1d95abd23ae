"""kdmem.corpus: documents from local gzip JSONL and text files, and the real load_dataset path on a local
parquet with FineWeb's columns (nothing from a hub)."""

from __future__ import annotations

import gzip
import json

import polars as pl

from kdmem import config as kconfig
from kdmem.corpus import read_docs
from kdmem.data import prepare
from kdmem.tokenizer import load_tokenizer


def _doc(i, n=400):
    return json.dumps({"doc_id": f"d{i}", "text": f"Document {i} talks about things. " * (n // 30)})


def test_gzip_jsonl_and_txt_sources(tmp_path, micro_cfg):
    gz = tmp_path / "c.jsonl.gz"
    gz.write_bytes(gzip.compress("\n".join(_doc(i) for i in range(5)).encode()))
    txt = tmp_path / "c.txt"
    txt.write_text("first doc here.\n\nsecond doc here.\n\n\n\nthird.")
    micro_cfg["datasets"]["wiki"].update(path=[str(gz), str(txt)], min_chars=1)
    docs, stats = read_docs(kconfig.validate(micro_cfg)["datasets"]["wiki"])
    assert [d.doc_id for d in docs] == ["d0", "d1", "d2", "d3", "d4", "5", "6", "7"]
    assert docs[-1].text == "third."


def test_hf_source_on_local_parquet_with_fineweb_columns(tmp_path, micro_cfg, micro_tokenizer):
    """The real load_dataset path, pointed at a local parquet with FineWeb's columns (no hub)."""
    with gzip.open(micro_cfg["datasets"]["wiki"]["path"], "rt") as fh:
        docs = [json.loads(line) for line in fh]
    fineweb = pl.DataFrame(
        {
            "text": [d["text"] for d in docs],
            "id": [f"<urn:uuid:{i:08d}>" for i in range(len(docs))],
            "dump": ["CC-MAIN-2025-05"] * len(docs),
            "url": [f"https://example.org/{i}" for i in range(len(docs))],
            "date": ["2025-01-20T00:00:00Z"] * len(docs),
            "file_path": ["s3://commoncrawl/x.warc.gz"] * len(docs),
            "language": ["en"] * len(docs),
            "language_score": [0.95] * len(docs),
            "token_count": [len(d["text"]) // 4 for d in docs],
        }
    )
    pq = tmp_path / "fineweb-sample.parquet"
    fineweb.write_parquet(pq)
    micro_cfg["datasets"]["wiki"] = {
        **{k: v for k, v in micro_cfg["datasets"]["wiki"].items() if k not in ("path",)},
        "source": "hf", "name": "parquet", "data_files": str(pq), "streaming": True, "id_field": "id", "max_docs": 80,
    }
    cfg = kconfig.validate(micro_cfg)
    out = prepare(cfg, "wiki", load_tokenizer(str(micro_tokenizer)), cache_dir=tmp_path / "hf")
    assert out["train"].height == 48
    assert out["train"]["doc_id"].str.starts_with("<urn:uuid:").all()
    assert out["stats"]["docs_read"] == 80
