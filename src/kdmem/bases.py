"""Shipped base checkpoints for the embedded family (docs/protocol.md "The miniature").

The paper starts every role from a published pretrained checkpoint. The embedded default does the
same: `make bases` pretrains the tokenizer and the two GPT-NeoX bases from the embedded corpus
(configs/bases.yaml, the pipeline's own tokenizer and pretrain rules, deterministic on CPU), and
`export` copies the weights into resources/bases/<family>/ with a model card that records where they
came from. config.yaml then loads them with `init: checkpoint`, the code path the paper configs use.

Only weights, model configs and the tokenizer are copied: metrics and training logs carry wall
clocks, so the exported folder is byte-identical whenever the weights are.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from kdmem.io import atomic_path, read_json, sha256_file
from kdmem.vocab import Size

MODEL_FILES = ("config.json", "generation_config.json", "model.safetensors")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")


def _copy(src: Path, dst: Path, names: tuple[str, ...]) -> list[Path]:
    dst.mkdir(parents=True)
    out = []
    for n in names:
        if (src / n).is_file():
            shutil.copyfile(src / n, dst / n)
            out.append(dst / n)
    return out


def card(family: str, cfg: dict, metrics: dict[str, dict], files: dict[str, str], corpus_sha: str, pretrain_stats: dict) -> str:
    ds_name = cfg["pretrain"]["dataset"]
    ds = cfg["datasets"][ds_name]
    from kdmem.config import pretrain_optim

    any_m = next(iter(metrics.values()))
    lines = [
        f"# Base checkpoints of the `{family}` family",
        "",
        "Pretrained from scratch by kdmem (`make bases`, config `configs/bases.yaml`) on the pretraining split of the",
        "embedded corpus, so that every role of the embedded default starts from a pretrained checkpoint, as the paper's",
        "roles start from Pythia. Rebuilt by `make bases`; on CPU the weights are byte-identical (sha256 below).",
        "",
        "## Data",
        f"- Corpus: `{ds['path']}` (sha256 `{corpus_sha}`); sources and licences in `resources/LICENSE-corpus.md`.",
        f"- Split by document (seed {cfg['seed']}): validation {ds['val_frac']}, pretraining {ds['pretrain_frac']}, the rest is",
        "  the pool D is drawn from. The bases never see a document of D or of validation.",
        f"- Pretraining: {pretrain_stats.get('samples', {}).get('pretrain')} samples of {ds['seq_len']} tokens "
        f"({pretrain_stats.get('tokens', {}).get('pretrain')} tokens) per epoch.",
        f"- Tokenizer: byte-level BPE, {cfg['families'][family]['tokenizer']['train']['vocab_size']} ids, trained on the pretraining documents.",
        "",
        "## Models (GPT-NeoX, Pythia's architecture)",
        "| size | hidden / layers / heads / ff | parameters | epochs | steps | lr | weight decay | val loss (nats) | val ppl |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for size, m in metrics.items():
        a = cfg["families"][family][size]["arch"]
        o = pretrain_optim(cfg, size)
        lines.append(f"| {size} | {a['hidden_size']} / {a['num_layers']} / {a['num_heads']} / {a['intermediate_size']} "
                     f"| {m['n_params']:,} | {o['epochs']} | {m['steps']} | {o['lr']} {o['schedule']} | {o['weight_decay']} "
                     f"| {m['val_loss']:.3f} | {m['val_ppl']:.1f} |")
    lines += [
        "",
        "Optimizer: AdamW (HF Trainer), warmup share as configured, fp32; batch 32 sequences.",
        "Validation: the held-out documents' samples of `configs/bases.yaml`; the pipeline reports each base again on its own",
        "validation samples (`bases` table, utility view).",
        "",
        "## Provenance (from each base's training record)",
    ]
    lines += [f"- {size}: config hash `{m.get('config_hash')}`, git commit `{m.get('git_commit')}`, trained {m.get('started_at')}"
              for size, m in metrics.items()]
    lines += [
        f"- versions: {', '.join(f'{k} {v}' for k, v in sorted(any_m.get('versions', {}).items()))}",
        "",
        "## Files (sha256)",
    ]
    lines += [f"- `{name}`: `{sha}`" for name, sha in sorted(files.items())]
    return "\n".join(lines) + "\n"


def export(family: str, cfg: dict, tokenizer: Path, large: Path, small: Path, out: Path, pretrain_stats: Path) -> dict[str, str]:
    """Copy the tokenizer and both bases into `out` (atomically) with a MODEL_CARD.md; returns file -> sha256."""
    dirs = {Size.LARGE: large, Size.SMALL: small}
    metrics = {size: read_json(d / "metrics.json") for size, d in dirs.items()}
    corpus_sha = sha256_file(cfg["datasets"][cfg["pretrain"]["dataset"]]["path"])
    with atomic_path(out, is_dir=True) as tmp:
        written = _copy(tokenizer, tmp / "tokenizer", TOKENIZER_FILES)
        for size, src in dirs.items():
            written += _copy(src, tmp / size, MODEL_FILES)
        files = {p.relative_to(tmp).as_posix(): sha256_file(p) for p in written}
        (tmp / "MODEL_CARD.md").write_text(card(family, cfg, metrics, files, corpus_sha, read_json(pretrain_stats)))
    return files
