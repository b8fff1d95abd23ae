"""Stage 7, analysis: the memorization classifier, the DuckDB store, the analyses and the report."""

from __future__ import annotations

import argparse

from kdmem.commands import common as c


def classify_args(p: argparse.ArgumentParser) -> None:
    c.pair_options(p)
    p.add_argument("--teacher-scores", required=True, help="teacher's train scores parquet")
    p.add_argument("--baseline-scores", required=True, help="primary baseline's train scores parquet")
    p.add_argument("--student-scores", required=True, help="primary student's train scores parquet (the labels)")
    c.option(p, "--out", help="classifier.json: metrics (mean, sd) and the fitted model")
    p.add_argument("--out-trials", required=True, help="per-trial AUC/precision/recall parquet")
    p.add_argument("--out-coefficients", required=True, help="standardized coefficients parquet")
    p.add_argument("--out-predictions", required=True, help="per-sample probability and predicted flag over all of D")
    p.add_argument("--out-roc", required=True, help="ROC figure (PNG)")


def classify(args: argparse.Namespace) -> None:
    from kdmem import classifier, figures
    from kdmem.io import write_json, write_parquet
    from kdmem.scoring import read_scores
    from kdmem.settings import Classifier

    cfg = c.load_config(args, "classify")
    t, b, s = (read_scores(p) for p in (args.teacher_scores, args.baseline_scores, args.student_scores))
    df = classifier.feature_table(t, b, s)
    res = classifier.run(df, Classifier.of(cfg), cfg["seed"])
    tables = classifier.result_tables(res, df, args.family, args.dataset)
    write_parquet(tables["trials"], args.out_trials)
    write_parquet(tables["coefficients"], args.out_coefficients)
    write_parquet(tables["predictions"], args.out_predictions)
    figures.roc(res["roc"], res.get("auc_mean"), res["status"], args.out_roc)
    summary = {k: v for k, v in res.items() if k not in ("trials", "roc")}
    summary.update(family=args.family, dataset=args.dataset, n_predicted=int(tables["predictions"]["predicted"].sum()))
    write_json(summary, args.out)


def build_db_args(p: argparse.ArgumentParser) -> None:
    c.option(p, "--out", help="the .duckdb file")
    c.option(p, "--samples", help="train/val samples parquet files")
    p.add_argument("--models", nargs="+", required=True, help="metrics.json of every model")
    p.add_argument("--bases", nargs="*", help="bases.json of every (family, dataset): base models' validation loss and the unigram")
    p.add_argument("--scores", nargs="+", required=True, help="scores parquet files")
    p.add_argument("--trials", nargs="*", help="classifier trials parquet files")
    p.add_argument("--coefficients", nargs="*", help="classifier coefficient parquet files")
    p.add_argument("--predictions", nargs="*", help="classifier prediction parquet files")
    p.add_argument("--mia", nargs="*", help="mia.parquet files: per model and signal, AUC and TPR at 1 %% FPR")
    p.add_argument("--mia-scores", nargs="*", help="mia_scores.parquet files: per-sample membership signals")
    p.add_argument("--primary", nargs="*", help="model names used for overlaps (the first baseline seed, the first T)")


def build_db(args: argparse.Namespace) -> None:
    from kdmem import db
    from kdmem.provenance import record

    cfg = c.load_config(args, "build_db")
    db.build(
        args.out, samples=args.samples, models=args.models, scores=args.scores, trials=args.trials or [],
        coefficients=args.coefficients or [], predictions=args.predictions or [], bases=args.bases or [],
        mia=args.mia or [], mia_scores=args.mia_scores or [],
        primary={"models": args.primary or []}, run=record(cfg),
        near_copy=(cfg["memorization"]["prefix_len"], cfg["memorization"]["suffix_len"], cfg["analysis"]["near_copy_n"]),
    )


def analyze_args(p: argparse.ArgumentParser) -> None:
    c.option(p, "--db")
    c.option(p, "--classifier", required=False)
    p.add_argument("--results", required=True, help="the study's results folder: analysis.json and the figures go to their layout paths")


def analyze(args: argparse.Namespace) -> None:
    from kdmem import analysis
    from kdmem.io import read_json
    from kdmem.layout import Layout
    from kdmem.settings import Analysis

    cfg = c.load_config(args, "analyze")
    clfs = {(c["family"], c["dataset"]): c for c in map(read_json, args.classifier or [])}
    analysis.analyze(args.db, clfs, Layout(args.results), Analysis.of(cfg), cfg["seed"])


def report_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--results", required=True, help="the study's results folder: analysis.json and its figures are read from their layout paths")
    c.option(p, "--classifier", required=False, help="classifier.json files (they name the family and dataset of each --roc)")
    p.add_argument("--roc", nargs="*", default=[], help="ROC figures from classify, one per --classifier, in the same order")
    c.option(p, "--out", help="report.html")


def report(args: argparse.Namespace) -> None:
    import json
    from pathlib import Path

    from kdmem import report as kreport
    from kdmem.errors import KdmemError
    from kdmem.io import read_json
    from kdmem.layout import Layout

    layout = Layout(args.results)
    path = Path(layout.analysis())
    if not path.is_file():
        raise KdmemError(f"analysis file {path} does not exist; run 'kdmem analyze' first")
    if len(args.roc) != len(args.classifier):
        raise KdmemError("report: give one --roc per --classifier, in the same order")
    roc = {}
    for clf, fig in zip(map(read_json, args.classifier), args.roc, strict=True):
        roc[(clf["family"], clf["dataset"])] = Path(fig)
    kreport.render(json.loads(path.read_text()), layout, args.out, roc)


COMMANDS = [
    c.Command("classify", "logistic regression predicting student memorization from pre-distillation features", classify_args, classify),
    c.Command("build-db", "collect every output into one DuckDB file (built aside, then renamed)", build_db_args, build_db),
    c.Command("analyze", "overlaps, entropy vs log-prob, exposure curves, findings (from the DuckDB)", analyze_args, analyze),
    c.Command("report", "render the self-contained HTML report", report_args, report, config=False),
]
