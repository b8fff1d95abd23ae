"""Subcommand bodies: read arguments, call the package, write outputs atomically."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from kdmem import config as kconfig
from kdmem.io import atomic_path, write_json, write_parquet

log = logging.getLogger("kdmem")


def cmd_validate(args: argparse.Namespace) -> None:
    cfg = kconfig.load(args.config)
    print(json.dumps(cfg, indent=2, sort_keys=True))


def cmd_tokenizer(args: argparse.Namespace) -> None:
    from kdmem.data import pretrain_texts
    from kdmem.errors import KdmemError
    from kdmem.tokenizer import train_bpe

    cfg = kconfig.load(args.config)
    fam = cfg["families"].get(args.family)
    if fam is None:
        raise KdmemError(f"family '{args.family}' is not in the config (families: {', '.join(cfg['families'])})")
    if not isinstance(fam["tokenizer"], dict):
        raise KdmemError(f"families.{args.family}.tokenizer is {fam['tokenizer']!r}: nothing to train")
    texts = pretrain_texts(cfg, cfg["pretrain"]["dataset"], cache_dir=Path(args.out).parent / ".hf_cache")
    with atomic_path(args.out, is_dir=True) as tmp:
        train_bpe(texts, fam["tokenizer"]["train"]["vocab_size"], tmp)
    log.info("trained tokenizer for %s on %d documents -> %s", args.family, len(texts), args.out)


def cmd_prepare(args: argparse.Namespace) -> None:
    from kdmem.data import prepare
    from kdmem.errors import KdmemError
    from kdmem.tokenizer import load_tokenizer

    cfg = kconfig.load(args.config)
    if args.dataset not in cfg["datasets"]:
        raise KdmemError(f"dataset '{args.dataset}' is not in the config (datasets: {', '.join(cfg['datasets'])})")
    if not (args.out_train and args.out_val) and not args.out_pretrain:
        raise KdmemError("prepare needs --out-train and --out-val, or --out-pretrain")
    tok = load_tokenizer(args.tokenizer)
    cache = Path(args.cache_dir) if args.cache_dir else Path(args.out_stats).parent / ".hf_cache"
    out = prepare(cfg, args.dataset, tok, with_pretrain=bool(args.out_pretrain), cache_dir=cache)
    # Write everything only after all of it was computed: a failure leaves no output at all.
    if args.out_train:
        write_parquet(out["train"], args.out_train)
        write_parquet(out["val"], args.out_val)
    if args.out_pretrain:
        write_parquet(out["pretrain"], args.out_pretrain)
    write_json({**out["stats"], "family": args.family}, args.out_stats)


# ---- training stages -------------------------------------------------------------------------


def _family(cfg: dict, family: str) -> dict:
    from kdmem.errors import KdmemError

    if family not in cfg["families"]:
        raise KdmemError(f"family '{family}' is not in the config (families: {', '.join(cfg['families'])})")
    return cfg["families"][family]


def _prov(cfg: dict, meta: dict) -> dict:
    import time

    from kdmem.provenance import record

    return {**meta, **record(cfg), "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}


def _load(cfg: dict, family: str, size: str, path: str, tok, what: str):
    """A model folder or checkpoint of the family, with its vocab checked against the tokenizer."""
    from kdmem.models import load_model, shared_vocab

    m = _family(cfg, family)[size]
    model = load_model(path, trust_remote_code=m.get("trust_remote_code", False), revision=m.get("revision"))
    return model, shared_vocab(model, tok, what)


def cmd_pretrain(args: argparse.Namespace) -> None:
    from kdmem.data import read_samples
    from kdmem.errors import KdmemError
    from kdmem.models import build_scratch, pick_device, shared_vocab
    from kdmem.tokenizer import load_tokenizer
    from kdmem.training import train_model

    cfg = kconfig.load(args.config)
    m = _family(cfg, args.family)[args.size]
    if m["init"] != "scratch":
        raise KdmemError(f"families.{args.family}.{args.size} is a checkpoint: it needs no pretraining")
    tok = load_tokenizer(args.tokenizer)
    train, val = read_samples(args.train), read_samples(args.val)
    model = build_scratch(m["arch"], len(tok), len(train["input_ids"][0]), cfg["seed"], tok.eos_token_id)
    vocab = shared_vocab(model, tok, f"{args.family}/{args.size}")
    meta = {"family": args.family, "role": f"base_{args.size}", "seed": cfg["seed"]}
    train_model(
        model=model, tok=tok, vocab=vocab, train_df=train, val_df=val, optim=kconfig.pretrain_optim(cfg, args.size), seed=cfg["seed"],
        out_dir=args.out, ckpt_dir=args.ckpt, dev=pick_device(cfg["device"]), meta=_prov(cfg, meta), parallel=cfg["parallel"],
    )


def cmd_finetune(args: argparse.Namespace) -> None:
    from kdmem.data import read_samples
    from kdmem.models import pick_device
    from kdmem.tokenizer import load_tokenizer
    from kdmem.training import train_model

    cfg = kconfig.load(args.config)
    tok = load_tokenizer(args.tokenizer)
    size = "teacher" if args.role == "teacher" else "small"
    model, vocab = _load(cfg, args.family, size, args.base, tok, f"{args.family}/{args.role}")
    meta = {"family": args.family, "dataset": args.dataset, "role": args.role, "seed": args.seed, "temperature": None, "base": args.base}
    train_model(
        model=model, tok=tok, vocab=vocab, train_df=read_samples(args.train), val_df=read_samples(args.val),
        optim=cfg["finetune"][args.role], seed=args.seed, out_dir=args.out, ckpt_dir=args.ckpt,
        dev=pick_device(cfg["device"]), meta=_prov(cfg, meta), parallel=cfg["parallel"],
    )


def cmd_export_bases(args: argparse.Namespace) -> None:
    from kdmem import bases

    cfg = kconfig.load(args.config)
    _family(cfg, args.family)
    root = Path(args.results) / args.family
    files = bases.export(args.family, cfg, root / "tokenizer", root / "base" / "teacher", root / "base" / "small", Path(args.out),
                         root / "pretrain" / "data_stats.json")
    for name, sha in sorted(files.items()):
        print(f"{sha}  {name}")


def cmd_evaluate_bases(args: argparse.Namespace) -> None:
    from kdmem.data import read_samples
    from kdmem.io import read_json
    from kdmem.models import evaluate_loss, n_params, pick_device
    from kdmem.tokenizer import load_tokenizer

    cfg = kconfig.load(args.config)
    tok = load_tokenizer(args.tokenizer)
    val = read_samples(args.val)
    dev = pick_device(cfg["device"])
    bases = []
    for size, path in (("teacher", args.teacher_base), ("small", args.small_base)):
        model, vocab = _load(cfg, args.family, size, path, tok, f"{args.family}/base-{size}")
        bases.append({"model": f"base-{size}", "size": size, "checkpoint": path, "n_params": n_params(model),
                      **evaluate_loss(model, val, vocab, dev)})
        del model
    stats = read_json(args.stats)
    out = {"family": args.family, "dataset": args.dataset, "unigram_val_ce": stats.get("val_unigram_ce"),
           "unigram_reference": stats.get("unigram_reference"), "bases": bases}
    write_json(out, args.out)
    log.info("bases on %s/%s validation: %s; unigram %.3f", args.family, args.dataset,
             {b["model"]: round(b["val_loss"], 3) for b in bases}, out["unigram_val_ce"] or float("nan"))


def teacher_identity(teacher_dir: str, tok) -> dict:
    from kdmem.models import fingerprint
    from kdmem.tokenizer import vocab_fingerprint

    return {"teacher_fingerprint": fingerprint(teacher_dir), "tokenizer_fingerprint": vocab_fingerprint(tok)}


def cmd_cache_logits(args: argparse.Namespace) -> None:
    from kdmem.data import read_samples
    from kdmem.errors import KdmemError
    from kdmem.logit_cache import write_cache
    from kdmem.models import pick_device
    from kdmem.tokenizer import load_tokenizer

    cfg = kconfig.load(args.config)
    if args.temperature <= 0:
        raise KdmemError(f"temperature must be > 0, got {args.temperature}")
    tok = load_tokenizer(args.tokenizer)
    model, vocab = _load(cfg, args.family, "teacher", args.teacher, tok, f"{args.family}/teacher")
    samples = read_samples(args.train)
    write_cache(
        model, pick_device(cfg["device"]), samples, vocab, args.temperature, cfg["distill"]["soft"]["top_k"], args.out,
        meta={**teacher_identity(args.teacher, tok), "family": args.family, "dataset": args.dataset},
        batch_size=cfg["memorization"]["batch_size"],
    )


def cmd_generate_hard(args: argparse.Namespace) -> None:
    from kdmem.data import read_samples
    from kdmem.generate import generate_hard
    from kdmem.models import pick_device
    from kdmem.tokenizer import load_tokenizer

    cfg = kconfig.load(args.config)
    tok = load_tokenizer(args.tokenizer)
    model, vocab = _load(cfg, args.family, "teacher", args.teacher, tok, f"{args.family}/teacher")
    hard = cfg["distill"]["hard"]
    out = generate_hard(model, tok, pick_device(cfg["device"]), read_samples(args.train), hard["prefix_len"], vocab, hard["batch_size"])
    write_parquet(out, args.out)


def cmd_distill(args: argparse.Namespace) -> None:
    import polars as pl

    from kdmem.data import read_samples
    from kdmem.errors import KdmemError
    from kdmem.logit_cache import CacheReader
    from kdmem.models import pick_device
    from kdmem.tokenizer import load_tokenizer
    from kdmem.training import train_model

    cfg = kconfig.load(args.config)
    tok = load_tokenizer(args.tokenizer)
    model, vocab = _load(cfg, args.family, "small", args.base, tok, f"{args.family}/student")
    train = read_samples(args.train)
    if args.drop:
        dropped = set(pl.read_parquet(args.drop).filter(pl.col("predicted"))["sample_id"].to_list())
        train = train.filter(~pl.col("sample_id").is_in(list(dropped)))
        log.info("removal: dropped %d predicted-memorized samples, %d remain", len(dropped), train.height)
    role = "student" if args.mode == "soft" else "hard_student"
    meta = {"family": args.family, "dataset": args.dataset, "role": role, "seed": args.seed, "base": args.base,
            "data_variant": "cleaned" if args.drop else "full"}
    dev = pick_device(cfg["device"])
    if args.mode == "hard":
        optim, cache, kd, mode, teacher = cfg["distill"]["hard"]["optim"], None, None, "ce", None
        meta["temperature"] = None
    else:
        soft = cfg["distill"]["soft"]
        if args.temperature is None or args.temperature <= 0:
            raise KdmemError(f"distill --mode soft needs a temperature > 0, got {args.temperature}")
        if not args.cache and not args.teacher:
            raise KdmemError("distill --mode soft needs --cache (top-k logits) or --teacher (online KD)")
        kd = {**soft, "temperature": args.temperature}
        optim, meta["temperature"] = soft["optim"], args.temperature
        cache = teacher = None
        if args.cache:
            expect = {"temperature": args.temperature, "k": soft["top_k"], "seq_len": len(train["input_ids"][0])}
            if args.teacher:  # with a cache, --teacher only proves the cache came from this teacher
                expect.update(teacher_identity(args.teacher, tok))
            cache, mode = CacheReader(args.cache, expect), "cache"
            meta["cache_top_k"], meta["cache_mean_tail_mass"] = soft["top_k"], cache.meta.get("mean_tail_mass")
        else:
            teacher, _ = _load(cfg, args.family, "teacher", args.teacher, tok, f"{args.family}/teacher")
            mode = "online"
    train_model(
        model=model, tok=tok, vocab=vocab, train_df=train, val_df=read_samples(args.val), optim=optim, seed=args.seed,
        out_dir=args.out, ckpt_dir=args.ckpt, dev=dev, mode=mode, cache=cache, kd=kd, meta=_prov(cfg, meta),
        teacher=teacher, parallel=cfg["parallel"],
    )


# ---- scoring ---------------------------------------------------------------------------------


def cmd_score(args: argparse.Namespace) -> None:
    from kdmem.data import read_samples
    from kdmem.logit_cache import CacheReader
    from kdmem.models import pick_device
    from kdmem.scoring import model_identity, score_samples, summary, with_identity
    from kdmem.tokenizer import load_tokenizer

    cfg = kconfig.load(args.config)
    mem = cfg["memorization"]
    tok = load_tokenizer(args.tokenizer)
    ident = model_identity(args.model, Path(args.model).name)
    size = "teacher" if ident["role"] == "teacher" else "small"
    model, vocab = _load(cfg, args.family, size, args.model, tok, f"{args.family}/{ident['model']}")
    samples = read_samples(args.samples)
    cache = None
    if args.cache:
        expect = {"temperature": 1.0, "seq_len": len(samples["input_ids"][0])}
        if args.teacher:
            expect.update(teacher_identity(args.teacher, tok))
        cache = CacheReader(args.cache, expect)
    log.info("scoring %s on %s: %d samples", ident["model"], args.split, samples.height)
    scores = score_samples(
        model, tok, pick_device(cfg["device"]), samples, vocab, mem["prefix_len"], mem["suffix_len"],
        batch_size=mem["batch_size"], frac=mem["frac"], cache=cache,
    )
    out = with_identity(scores, ident, args.split)
    summ = {**ident, "split": args.split, **summary(out)}
    write_parquet(out, args.out)
    write_json(summ, args.summary)
    log.info("scored %s on %s: %d/%d memorized", ident["model"], args.split, summ["memorized"], summ["n"])


# ---- analysis --------------------------------------------------------------------------------


def cmd_classify(args: argparse.Namespace) -> None:
    import polars as pl

    from kdmem import classifier, figures

    cfg = kconfig.load(args.config)
    t, b, s = (read_samples_scores(p) for p in (args.teacher_scores, args.baseline_scores, args.student_scores))
    df = classifier.feature_table(t, b, s)
    res = classifier.run(df, cfg, seed=cfg["seed"])
    ident = {"family": args.family, "dataset": args.dataset}
    trials = pl.DataFrame(res["trials"], schema={"trial": pl.Int64, "auc": pl.Float64, "precision": pl.Float64,
                                                "recall": pl.Float64, "n_test": pl.Int64})
    coefs = pl.DataFrame(res["coefficients"], schema={"feature": pl.String, "coefficient": pl.Float64})
    preds = classifier.predict(res["model"], df).join(df.select("sample_id", "label"), on="sample_id")
    add = [pl.lit(v).alias(k) for k, v in ident.items()]
    write_parquet(trials.with_columns(add), args.out_trials)
    write_parquet(coefs.with_columns(add), args.out_coefficients)
    write_parquet(preds.with_columns(add), args.out_predictions)
    figures.roc(res["roc"], res.get("auc_mean"), res["status"], args.out_roc)
    summary = {k: v for k, v in res.items() if k not in ("trials", "roc")}
    summary.update(ident, n_predicted=int(preds["predicted"].sum()))
    write_json(summary, args.out)


def read_samples_scores(path: str):
    import polars as pl

    from kdmem.errors import KdmemError

    try:
        df = pl.read_parquet(path)
    except Exception as e:  # noqa: BLE001 - polars raises several types for a corrupt file
        raise KdmemError(f"cannot read scores parquet {path}: {str(e).splitlines()[0]}; rerun its score step") from None
    need = {"sample_id", "exact", "ppl", "zlib", "kl_to_teacher", "n_exposures"}
    if missing := sorted(need - set(df.columns)):
        raise KdmemError(f"scores file {path} lacks columns {missing}; it must come from 'kdmem score'")
    return df


def cmd_build_db(args: argparse.Namespace) -> None:
    from kdmem import db
    from kdmem.provenance import record

    cfg = kconfig.load(args.config)
    db.build(
        args.out, samples=args.samples, models=args.models, scores=args.scores, trials=args.trials or [],
        coefficients=args.coefficients or [], predictions=args.predictions or [], bases=args.bases or [],
        primary={"models": args.primary or []}, run=record(cfg),
    )


def cmd_analyze(args: argparse.Namespace) -> None:
    from kdmem import report

    cfg = kconfig.load(args.config)
    clfs = {}
    for f in args.classifier or []:
        c = json.loads(Path(f).read_text())
        clfs[(c["family"], c["dataset"])] = c
    report.analyze(args.db, clfs, args.out_dir, cfg["analysis"]["bootstrap"], cfg["seed"], cfg["analysis"]["min_positives"])


def cmd_report(args: argparse.Namespace) -> None:
    from kdmem import report
    from kdmem.errors import KdmemError

    path = Path(args.analysis)
    if not path.is_file():
        raise KdmemError(f"analysis file {path} does not exist; run 'kdmem analyze' first")
    roc = {}
    for f in args.roc or []:
        parts = Path(f).parts  # results/<family>/<dataset>/analysis/roc.png
        roc[(parts[-4], parts[-3])] = Path(f)
    report.render(json.loads(path.read_text()), path.parent, args.out, roc)


def cmd_audit(args: argparse.Namespace) -> None:
    from kdmem import audit as kaudit
    from kdmem.errors import KdmemError
    from kdmem.models import load_model, pick_device, shared_vocab
    from kdmem.tokenizer import load_tokenizer

    cfg = kconfig.load(args.config)
    mem = cfg["memorization"]
    clf_path = Path(args.classifier)
    if not clf_path.is_file():
        raise KdmemError(f"classifier {clf_path} does not exist; run the pipeline's classify step first")
    clf = json.loads(clf_path.read_text())
    tok = load_tokenizer(args.tokenizer or args.teacher)
    teacher, baseline = load_model(args.teacher), load_model(args.baseline)
    vocab = shared_vocab(teacher, tok, "teacher")
    shared_vocab(baseline, tok, "baseline")
    samples = kaudit.load_audit_samples(args.data, tok, args.seq_len, args.text_field)
    feats = kaudit.features(teacher, baseline, pick_device(cfg["device"]), samples, vocab, mem["prefix_len"] + mem["suffix_len"], tok,
                            cfg["distill"]["soft"]["top_k"])
    risk = kaudit.audit(feats, clf.get("model"))
    write_parquet(risk, args.out)
    from kdmem.io import atomic_path

    with atomic_path(args.drop_list) as tmp:
        tmp.write_text("".join(f"{s}\n" for s in risk.filter("drop")["sample_id"]))
    if args.db:
        import duckdb

        con = duckdb.connect(args.db)
        con.register("risk_df", risk)
        # the table name is fixed; the data arrive as a registered frame, never as SQL text
        con.execute("CREATE OR REPLACE TABLE audit AS SELECT * FROM risk_df")
        con.close()
    log.info("audit: %d samples, %d to drop", risk.height, int(risk["drop"].sum()))
