"""Beyond the pipeline: score a new dataset's memorization risk before distilling on it."""

from __future__ import annotations

import argparse
import logging

from kdmem.commands import common as c

log = logging.getLogger("kdmem")


def audit_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, help="jsonl/parquet of texts, or a kdmem samples parquet")
    c.option(p, "--teacher")
    p.add_argument("--baseline", required=True, help="fine-tuned baseline folder")
    c.option(p, "--classifier", nargs=None, default=None, help="classifier.json from the classify step")
    c.option(p, "--tokenizer", required=False)
    p.add_argument("--seq-len", type=int, default=64, help="tokens per sample when cutting texts")
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
    mem = cfg["memorization"]
    if not Path(args.classifier).is_file():
        raise KdmemError(f"classifier {args.classifier} does not exist; run the pipeline's classify step first")
    clf = read_json(args.classifier)
    tok = load_tokenizer(args.tokenizer or args.teacher)
    teacher, baseline = load_model(args.teacher), load_model(args.baseline)
    vocab = shared_vocab(teacher, tok, "teacher")
    shared_vocab(baseline, tok, "baseline")
    samples = kaudit.load_audit_samples(args.data, tok, args.seq_len, args.text_field)
    feats = kaudit.features(teacher, baseline, c.device(cfg), samples, vocab, mem["prefix_len"] + mem["suffix_len"], tok,
                            cfg["distill"]["soft"]["top_k"])
    risk = kaudit.audit(feats, clf.get("model"))
    write_parquet(risk, args.out)
    with atomic_path(args.removal_list) as tmp:
        tmp.write_text("".join(f"{s}\n" for s in risk.filter("predicted")["sample_id"]))
    if args.db:
        db.write_audit(args.db, risk)
    log.info("audit: %d samples, %d predicted", risk.height, int(risk["predicted"].sum()))


COMMANDS = [c.Command("audit", "score a new dataset's memorization risk before distilling on it", audit_args, audit)]
