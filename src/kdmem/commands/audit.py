"""Beyond the pipeline: score a new dataset's memorization risk before distilling on it."""

from __future__ import annotations

import argparse
import logging

from kdmem.commands import common as c
from kdmem.vocab import Role

log = logging.getLogger("kdmem")


def audit_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, help="jsonl/parquet of texts, or a kdmem samples parquet")
    c.option(p, "--teacher")
    p.add_argument("--baseline", required=True, help="fine-tuned baseline folder")
    c.option(p, "--classifier", nargs=None, default=None, help="classifier.json from the classify step")
    c.option(p, "--tokenizer", required=False)
    p.add_argument("--seq-len", type=int, default=None, help="tokens per sample when cutting texts; default and only accepted "
                   "value: the classifier's dataset's datasets.<name>.seq_len, the length its features were learned on")
    p.add_argument("--text-field", default="text", help="text column/key of the input")
    c.option(p, "--out", help="per-sample risk parquet")
    p.add_argument("--removal-list", required=True, help="text file: the predicted sample_ids to leave out, one per line")
    c.option(p, "--db", required=False, help="also write the risks to table 'audit' of this DuckDB file")


def audit(args: argparse.Namespace) -> None:
    from pathlib import Path

    from kdmem import audit as kaudit
    from kdmem import db
    from kdmem.errors import KdmemError
    from kdmem.io import atomic_path, read_json, write_parquet
    from kdmem.models import load_model, shared_vocab
    from kdmem.tokenizer import load_tokenizer

    cfg = c.load_config(args, "audit")
    if not Path(args.classifier).is_file():
        raise KdmemError(f"classifier {args.classifier} does not exist; run the pipeline's classify step first")
    clf = read_json(args.classifier)
    seq_len = check_inputs(cfg, clf, args.teacher, args.baseline, args.seq_len)
    tok = load_tokenizer(args.tokenizer or args.teacher)
    teacher, baseline = load_model(args.teacher), load_model(args.baseline)
    vocab = shared_vocab(teacher, tok, Role.TEACHER)
    shared_vocab(baseline, tok, Role.BASELINE)
    samples = kaudit.load_audit_samples(args.data, tok, seq_len, args.text_field)
    if (have := len(samples["input_ids"][0])) != seq_len:
        raise KdmemError(f"audit data {args.data} holds {have}-token samples but the classifier learned on {seq_len}-token ones")
    feats = kaudit.features(teacher, baseline, c.device(cfg), samples, vocab, tok, cfg["distill"]["soft"]["top_k"])
    risk = kaudit.audit(feats, clf.get("model"))
    write_parquet(risk, args.out)
    with atomic_path(args.removal_list) as tmp:
        tmp.write_text("".join(f"{s}\n" for s in risk.filter("predicted")["sample_id"]))
    if args.db:
        db.write_audit(args.db, risk)
    log.info("audit: %d samples, %d predicted", risk.height, int(risk["predicted"].sum()))


def check_inputs(cfg: dict, clf: dict, teacher: str, baseline: str, seq_len: int | None) -> int:
    """The audit's preconditions, each a one-line error: a teacher and a baseline from kdmem fine-tunes on the
    classifier's dataset, and the classifier's window length. Returns that length."""
    from pathlib import Path

    from kdmem.errors import KdmemError
    from kdmem.io import read_json

    dataset = clf.get("dataset")
    if dataset not in cfg["datasets"]:
        raise KdmemError(f"the classifier names dataset {dataset!r}, which the config does not define; audit with the study's config")
    for path, role in ((teacher, Role.TEACHER), (baseline, Role.BASELINE)):
        meta = Path(path) / "metrics.json"
        m = read_json(meta) if meta.is_file() else {}
        if m.get("role") != role or m.get("dataset") != dataset:
            raise KdmemError(f"--{role} {path} must be a kdmem {role} fine-tuned on {dataset!r} (its metrics.json says role "
                             f"{m.get('role')!r}, dataset {m.get('dataset')!r}): the classifier's features describe samples "
                             "the teacher and the baseline were fine-tuned on")
    want = cfg["datasets"][dataset]["seq_len"]
    if seq_len is not None and seq_len != want:
        raise KdmemError(f"--seq-len {seq_len}: the classifier learned on {want}-token samples (datasets.{dataset}.seq_len); "
                         "drop --seq-len or pass that length")
    return want


COMMANDS = [c.Command("audit", "score a new dataset's memorization risk before distilling on it", audit_args, audit)]
