"""The `kdmem` command: one subcommand per pipeline stage, each called by one Snakemake rule.

Every subcommand takes --config (the study config) and --log; bad input ends in one line on
stderr and exit code 2 (a traceback only with --debug), and no output is left half-written.
"""

from __future__ import annotations

import argparse
import errno
import logging
import os
import shutil
import sys
from pathlib import Path

from kdmem.errors import KdmemError

log = logging.getLogger("kdmem")


def _setup_logging(log_file: str | None, debug: bool) -> None:
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    handlers[0].setLevel(logging.DEBUG if debug else logging.WARNING)
    # The one-line error is printed once by main(); the stderr handler must not repeat it.
    handlers[0].addFilter(lambda r: not getattr(r, "file_only", False))
    if log_file:
        Path(log_file).parent.mkdir(parents=True, exist_ok=True)
        fh = logging.FileHandler(log_file, mode="w")
        fh.setLevel(logging.INFO)
        handlers.append(fh)
    logging.basicConfig(level=logging.INFO, handlers=handlers, format="%(asctime)s %(name)s %(levelname)s %(message)s", force=True)


def _common(p: argparse.ArgumentParser, config: bool = True) -> None:
    if config:
        p.add_argument("--config", required=True, help="study config (YAML or JSON)")
    p.add_argument("--log", help="log file (the Snakemake rule's log:)")
    p.add_argument("--debug", action="store_true", help="show full tracebacks")


def _model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--family", required=True, help="family name (config families.<name>)")
    p.add_argument("--dataset", required=True, help="dataset name (config datasets.<name>)")


def _training_args(p: argparse.ArgumentParser, train_help: str) -> None:
    """The inputs and outputs every training command shares (pretrain, finetune, distill)."""
    p.add_argument("--tokenizer", required=True, help="the family's tokenizer folder or hub name")
    p.add_argument("--train", required=True, help=train_help)
    p.add_argument("--val", required=True, help="validation samples (held-out documents)")
    p.add_argument("--out", required=True, help="model folder to write (safetensors, metrics.json, train_log.jsonl)")
    p.add_argument("--ckpt", required=True, help="checkpoint folder, kept across a killed run so the rerun resumes")
    p.add_argument("--nproc", type=int, default=0, help="processes, one per GPU (the rule passes its gpu resource); "
                   "above 1 the command reruns itself under torchrun: DDP, or FSDP for models >= parallel.fsdp_min_params")


def build_parser() -> argparse.ArgumentParser:
    from kdmem import commands as c

    ap = argparse.ArgumentParser(prog="kdmem", description="Memorization in knowledge distillation: pipeline stages.")
    sub = ap.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("validate", help="validate a config and print it with defaults filled")
    _common(p)
    p.set_defaults(func=c.cmd_validate)

    p = sub.add_parser("tokenizer", help="train a scratch family's BPE tokenizer on the pretraining split")
    _common(p)
    p.add_argument("--family", required=True, help="family name")
    p.add_argument("--out", required=True, help="tokenizer folder to write")
    p.set_defaults(func=c.cmd_tokenizer)

    p = sub.add_parser("prepare", help="cut a dataset into fixed-length samples: train/val (+ pretrain) parquet")
    _common(p)
    _model_args(p)
    p.add_argument("--tokenizer", required=True, help="tokenizer folder or hub name")
    p.add_argument("--out-train", help="train.parquet to write (D, with n_exposures)")
    p.add_argument("--out-val", help="val.parquet to write (held-out documents)")
    p.add_argument("--out-stats", required=True, help="data_stats.json to write (counts, drops, seconds)")
    p.add_argument("--out-pretrain", help="pretrain.parquet to write (scratch families only)")
    p.add_argument("--cache-dir", help="datasets cache folder (default: next to the outputs)")
    p.set_defaults(func=c.cmd_prepare)

    p = sub.add_parser("pretrain", help="pretrain a scratch family's base model (teacher or small size) with CE")
    _common(p)
    p.add_argument("--family", required=True, help="family name")
    p.add_argument("--size", required=True, choices=["teacher", "small"], help="which base")
    _training_args(p, "pretrain.parquet")
    p.set_defaults(func=c.cmd_pretrain)

    p = sub.add_parser("finetune", help="fine-tune the teacher or a baseline on D with cross-entropy")
    _common(p)
    _model_args(p)
    p.add_argument("--role", required=True, choices=["teacher", "baseline"], help="teacher (large) or baseline (small)")
    p.add_argument("--seed", type=int, required=True, help="seed: data order and dropout")
    p.add_argument("--base", required=True, help="base model folder or hub checkpoint")
    _training_args(p, "train.parquet (D)")
    p.set_defaults(func=c.cmd_finetune)

    p = sub.add_parser("export-bases", help="copy a scratch family's tokenizer and pretrained bases into a shipped folder with a model card")
    _common(p)
    p.add_argument("--family", required=True, help="family name")
    p.add_argument("--results", required=True, help="the results folder the bases config wrote (its `results:`)")
    p.add_argument("--out", required=True, help="folder to write, e.g. resources/bases/<family>")
    p.set_defaults(func=c.cmd_export_bases)

    p = sub.add_parser("evaluate-bases", help="validation loss of the family's two base models, beside the unigram reference")
    _common(p)
    _model_args(p)
    p.add_argument("--tokenizer", required=True, help="the family's tokenizer")
    p.add_argument("--teacher-base", required=True, help="teacher base folder or hub checkpoint")
    p.add_argument("--small-base", required=True, help="small base folder or hub checkpoint")
    p.add_argument("--val", required=True, help="val.parquet")
    p.add_argument("--stats", required=True, help="the dataset's data_stats.json (holds the unigram cross-entropy)")
    p.add_argument("--out", required=True, help="bases.json to write")
    p.set_defaults(func=c.cmd_evaluate_bases)

    p = sub.add_parser("cache-logits", help="cache the teacher's top-k log-probs + tail mass at temperature T")
    _common(p)
    _model_args(p)
    p.add_argument("--teacher", required=True, help="fine-tuned teacher folder")
    p.add_argument("--tokenizer", required=True, help="the family's tokenizer")
    p.add_argument("--train", required=True, help="train.parquet (every sample is cached once)")
    p.add_argument("--temperature", type=float, required=True, help="T the cached distributions are softened with")
    p.add_argument("--out", required=True, help="cache folder to write")
    p.set_defaults(func=c.cmd_cache_logits)

    p = sub.add_parser("generate-hard", help="teacher greedily continues each sample's prefix: hard-KD data")
    _common(p)
    _model_args(p)
    p.add_argument("--teacher", required=True, help="fine-tuned teacher folder")
    p.add_argument("--tokenizer", required=True, help="the family's tokenizer")
    p.add_argument("--train", required=True, help="train.parquet")
    p.add_argument("--out", required=True, help="hard.parquet to write (same sample_ids)")
    p.set_defaults(func=c.cmd_generate_hard)

    p = sub.add_parser("distill", help="train the student: soft (KD from the teacher) or hard (CE on teacher text)")
    _common(p)
    _model_args(p)
    p.add_argument("--mode", required=True, choices=["soft", "hard"], help="soft: KL at T; hard: CE on generated text")
    p.add_argument("--seed", type=int, required=True, help="seed: data order")
    p.add_argument("--base", required=True, help="small base model folder or hub checkpoint")
    _training_args(p, "training samples: train.parquet (soft) or hard.parquet (hard)")
    p.add_argument("--temperature", type=float, help="soft: T")
    p.add_argument("--cache", help="soft: teacher logit cache folder")
    p.add_argument("--teacher", help="soft: teacher folder (checks the cache's fingerprint; without --cache, online KD)")
    p.add_argument("--drop", help="predictions.parquet: leave out its predicted-memorized samples (removal experiment)")
    p.set_defaults(func=c.cmd_distill)

    p = sub.add_parser("score", help="per-sample memorization and signals of one model on one sample file")
    _common(p)
    _model_args(p)
    p.add_argument("--model", required=True, help="trained model folder (with metrics.json)")
    p.add_argument("--tokenizer", required=True, help="the family's tokenizer")
    p.add_argument("--samples", required=True, help="train.parquet or val.parquet")
    p.add_argument("--split", required=True, choices=["train", "val"], help="which split the samples are")
    p.add_argument("--cache", help="teacher cache at T=1 (gives kl_to_teacher; train split only)")
    p.add_argument("--teacher", help="teacher folder: checks the cache's fingerprint")
    p.add_argument("--out", required=True, help="scores parquet to write")
    p.add_argument("--summary", required=True, help="summary JSON to write (counts, rate, by n_exposures, agreement)")
    p.set_defaults(func=c.cmd_score)

    p = sub.add_parser("classify", help="logistic regression predicting student memorization from pre-distillation features")
    _common(p)
    _model_args(p)
    p.add_argument("--teacher-scores", required=True, help="teacher's train scores parquet")
    p.add_argument("--baseline-scores", required=True, help="primary baseline's train scores parquet")
    p.add_argument("--student-scores", required=True, help="primary student's train scores parquet (the labels)")
    p.add_argument("--out", required=True, help="classifier.json: metrics (mean, sd) and the fitted model")
    p.add_argument("--out-trials", required=True, help="per-trial AUC/precision/recall parquet")
    p.add_argument("--out-coefficients", required=True, help="standardized coefficients parquet")
    p.add_argument("--out-predictions", required=True, help="per-sample probability and predicted flag over all of D")
    p.add_argument("--out-roc", required=True, help="ROC figure (PNG)")
    p.set_defaults(func=c.cmd_classify)

    p = sub.add_parser("build-db", help="collect every output into one DuckDB file (built aside, then renamed)")
    _common(p)
    p.add_argument("--out", required=True, help="the .duckdb file")
    p.add_argument("--samples", nargs="+", required=True, help="train/val samples parquet files")
    p.add_argument("--models", nargs="+", required=True, help="metrics.json of every model")
    p.add_argument("--bases", nargs="*", help="bases.json of every (family, dataset): base models' validation loss and the unigram")
    p.add_argument("--scores", nargs="+", required=True, help="scores parquet files")
    p.add_argument("--trials", nargs="*", help="classifier trials parquet files")
    p.add_argument("--coefficients", nargs="*", help="classifier coefficient parquet files")
    p.add_argument("--predictions", nargs="*", help="classifier prediction parquet files")
    p.add_argument("--primary", nargs="*", help="model names used for overlaps (the first baseline seed, the first T)")
    p.set_defaults(func=c.cmd_build_db)

    p = sub.add_parser("analyze", help="overlaps, entropy vs log-prob, exposure curves, findings (from the DuckDB)")
    _common(p)
    p.add_argument("--db", required=True, help="the .duckdb file")
    p.add_argument("--classifier", nargs="*", help="classifier.json files")
    p.add_argument("--out-dir", required=True, help="folder for analysis.json and figures")
    p.set_defaults(func=c.cmd_analyze)

    p = sub.add_parser("report", help="render the self-contained HTML report")
    _common(p, config=False)
    p.add_argument("--analysis", required=True, help="analysis.json (figures are read from its folder)")
    p.add_argument("--roc", nargs="*", help="ROC figures from classify")
    p.add_argument("--out", required=True, help="report.html")
    p.set_defaults(func=c.cmd_report)

    p = sub.add_parser("audit", help="score a new dataset's memorization risk before distilling on it")
    _common(p)
    p.add_argument("--data", required=True, help="jsonl/parquet of texts, or a kdmem samples parquet")
    p.add_argument("--teacher", required=True, help="fine-tuned teacher folder")
    p.add_argument("--baseline", required=True, help="fine-tuned baseline folder")
    p.add_argument("--classifier", required=True, help="classifier.json from the classify step")
    p.add_argument("--tokenizer", help="tokenizer (default: the teacher folder's)")
    p.add_argument("--seq-len", type=int, default=64, help="tokens per sample when cutting texts")
    p.add_argument("--text-field", default="text", help="text column/key of the input")
    p.add_argument("--out", required=True, help="per-sample risk parquet")
    p.add_argument("--drop-list", required=True, help="text file: sample_ids to drop, one per line")
    p.add_argument("--db", help="also write the risks to table 'audit' of this DuckDB file")
    p.set_defaults(func=c.cmd_audit)
    return ap


def _os_error_line(e: OSError, out: str | None) -> str:
    # numpy reports a short write on a full disk as "N requested and M written", with no errno.
    short_write = e.errno is None and "requested and" in str(e) and "written" in str(e)
    if e.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG) or short_write:
        where = Path(out) if out else Path(e.filename or ".")
        while not where.exists() and where != where.parent:
            where = where.parent
        free = shutil.disk_usage(where).free
        return (f"No space left on device writing {out or e.filename} ({free // 1024} KiB free there); "
                "free space, or point results: at a larger disk, and rerun")
    where = f" ({e.filename})" if e.filename else ""
    return f"{e.strerror or e}{where}; check the path and its permissions"


def main(argv: list[str] | None = None) -> int:
    # Nothing in kdmem may reach a hub unless the user removes this on purpose.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    # stderr carries the one-line error; per-file "Loading weights" bars would bury it (training keeps its bar)
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    from kdmem.launch import distributed_argv, relaunch_distributed

    ap = build_parser()
    argv = argv if argv is not None else distributed_argv()  # inside torchrun: the relaunched command line
    args = ap.parse_args(argv)
    if getattr(args, "nproc", 0) > 1:
        relaunch_distributed(args.nproc, sys.argv[1:] if argv is None else argv)  # returns only inside torchrun
    _setup_logging(getattr(args, "log", None), args.debug)
    try:
        args.func(args)
    except KdmemError as e:
        if args.debug:
            raise
        log.error("%s", e, extra={"file_only": True})
        print(f"kdmem {args.command}: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        # A full disk or quota mid-write: the atomic writers have already removed their temporaries.
        if args.debug:
            raise
        line = _os_error_line(e, getattr(args, "out", None))
        log.error("%s", line, extra={"file_only": True})
        print(f"kdmem {args.command}: error: {line}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"kdmem {args.command}: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
