"""Local stand-ins for the paper's hub checkpoints and datasets, saved under their hub names.

transformers' `from_pretrained(name)` and datasets' `load_dataset(name, config)` both use a local
folder of that name before the hub. So a working directory holding `EleutherAI/pythia-12b/` and
`HuggingFaceFW/fineweb/` runs a paper config unchanged and offline: the same code path as the
real run, with tiny weights of the real architecture class and parquet files with the real columns,
laid out the way each hub repo lays them out (its README's `configs:` block names the files).
"""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from .conftest import CORPUS

# family -> (transformers config class, causal-LM class)
ARCH = {"pythia": ("GPTNeoXConfig", "GPTNeoXForCausalLM"), "olmo2": ("Olmo2Config", "Olmo2ForCausalLM"),
        "qwen3": ("Qwen3Config", "Qwen3ForCausalLM")}

# dataset repo -> (config name, data path inside the repo, columns besides text)
DATASETS = {
    "HuggingFaceFW/fineweb": ("sample-10BT", "sample/10BT/000_00000.parquet",
                              ["id", "dump", "url", "date", "file_path", "language", "language_score", "token_count"]),
    "Salesforce/wikitext": ("wikitext-103-raw-v1", "wikitext-103-raw-v1/train-00000-of-00002.parquet", []),
    # Gated on the hub; columns as its card describes them (not checked here).
    "nvidia/Nemotron-CC-v2": ("High-Quality", "High-Quality/part_000000.parquet", ["id", "warc_record_id", "quality"]),
}


def save_model(dest: Path, family: str, tok_dir: Path, hidden: int, layers: int, seed: int) -> Path:
    """A tiny model of the family's real class, its vocab padded past the tokenizer's as real ones are."""
    import torch
    import transformers

    from kdmem.tokenizer import load_tokenizer

    tok = load_tokenizer(str(tok_dir))
    cfg_cls, model_cls = (getattr(transformers, n) for n in ARCH[family])
    kw = dict(vocab_size=len(tok) + 16, hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=layers,
              num_attention_heads=2, max_position_embeddings=512, eos_token_id=tok.eos_token_id,
              bos_token_id=tok.bos_token_id, pad_token_id=tok.pad_token_id, tie_word_embeddings=False)
    if family != "pythia":
        kw["num_key_value_heads"] = 2
    if family == "qwen3":
        kw["head_dim"] = hidden // 2
    torch.manual_seed(seed)
    model = model_cls(cfg_cls(**kw))
    model.save_pretrained(dest)  # safetensors
    tok.save_pretrained(dest)
    return dest


def _articles(n: int) -> list[dict]:
    with gzip.open(CORPUS, "rt", encoding="utf-8") as fh:
        return [json.loads(line) for _, line in zip(range(n), fh, strict=False)]


def save_dataset(root: Path, repo: str, n_docs: int = 40) -> Path:
    """A mirror of the hub repo's layout: README configs block + one parquet with the real columns."""
    config, rel, extra = DATASETS[repo]
    dest = root / repo
    (dest / rel).parent.mkdir(parents=True, exist_ok=True)
    docs = _articles(n_docs)
    if repo == "Salesforce/wikitext":
        rows = []  # as in the real file: a blank row, then " = Title = ", a blank row, one row per paragraph
        for d in docs:
            rows += ["", f" = {d['title']} = \n", ""]
            rows += [" " + p + " \n" for p in d["text"].split("\n") if p.strip()]
        table = pa.table({"text": rows})
    else:
        n = len(docs)
        cols: dict[str, list] = {"text": [d["text"] for d in docs]}
        for c in extra:
            if c == "id":
                cols[c] = [f"<urn:uuid:{i:08d}>" for i in range(n)]
            elif c == "language_score":
                cols[c] = [0.9] * n
            elif c == "token_count":
                cols[c] = [len(d["text"]) // 4 for d in docs]
            else:
                cols[c] = [f"{c}-{i}" for i in range(n)]
        table = pa.table(cols)
    pq.write_table(table, dest / rel)
    split_glob = str(Path(rel).parent / "*")
    (dest / "README.md").write_text(
        f"---\nconfigs:\n- config_name: {config}\n  data_files:\n  - split: train\n    path: {split_glob}\n---\n"
        f"Local stand-in for {repo} (kdmem tests): {table.num_rows} rows, columns {', '.join(table.column_names)}.\n"
    )
    return dest


def populate(work: Path, cfg: dict, tok_dir: Path) -> None:
    """Stand-ins for every checkpoint, tokenizer and hf dataset a config names, under those names."""
    for fam_name, fam in cfg["families"].items():
        family = next(f for f in ARCH if fam_name.startswith(f))
        for size, (hidden, layers) in (("large", (64, 2)), ("small", (32, 1))):
            name = fam[size]["checkpoint"]
            save_model(work / name, family, tok_dir, hidden, layers, seed=1 if size == "large" else 2)
        if not (work / fam["tokenizer"]).exists():
            shutil.copytree(tok_dir, work / fam["tokenizer"])
    for ds in cfg["datasets"].values():
        if ds["source"] == "hf":
            save_dataset(work, ds["name"])
