"""The DuckDB store (docs/protocol.md, all tables): every per-sample result in one file, with views.

`build` reads every parquet and JSON output into a fresh database file next to the target, then
renames it over the target, so a reader never sees a half-built database and a reader holding the
old file keeps a consistent snapshot. Rebuilding from the same inputs gives the same table content.
All values reach SQL as parameters or as file lists handed to read_parquet; nothing is pasted.

Tables: samples, models, bases, scores, classifier_trials, classifier_coefficients, predictions, runs,
and with membership inference on, mia and mia_scores.
Views: memorization_rates, overlaps, inheritance, memorization_gain, removal, utility, and mia_summary (one
row per non-member set, model and signal, with the model's role; the model-free "blind" rows have no model).
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from pathlib import Path

import duckdb

from kdmem.errors import KdmemError
from kdmem.roster import ModelSpec
from kdmem.vocab import BASE_ROLE, DEFAULT_LOSS, CacheKind, DataVariant, Label, Role, Size, Split, label_of

log = logging.getLogger(__name__)

# The scored bases' model names, which the views join each model to (its own starting checkpoint).
BASE_LARGE, BASE_SMALL = ModelSpec.base(Size.LARGE).name, ModelSpec.base(Size.SMALL).name

VIEWS = {
    # newly_memorized: memorized by the model and not by the base it started from (the large base for the
    # teacher, the small base for every other role); null where the bases were not scored.
    "memorization_rates": f"""
        SELECT m.model, m.family, m.dataset, m.role, m.seed, m.temperature, m.loss, m.data_variant, s.split,
               count(*) AS n, sum(s.exact::INT) AS memorized, avg(s.exact::INT) AS rate,
               sum(CASE WHEN b.exact IS NULL THEN NULL ELSE (s.exact AND NOT b.exact)::INT END) AS newly_memorized,
               sum(s.extractable::INT) AS extractable, avg(s.extractable::INT) AS extractable_rate,
               avg(exp(s.extract_logprob)) AS mean_extract_prob,
               sum(s.extractable_full::INT) AS extractable_full, avg((s.extract_logprob = '-inf'::DOUBLE)::INT) AS topk_truncated_share
        FROM scores s JOIN models m USING (model, family, dataset)
        LEFT JOIN scores b ON b.family = s.family AND b.dataset = s.dataset AND b.split = s.split AND b.sample_id = s.sample_id
             AND b.model = CASE m.role WHEN '{BASE_ROLE}' THEN NULL WHEN '{Role.TEACHER}' THEN '{BASE_LARGE}' ELSE '{BASE_SMALL}' END
        GROUP BY ALL ORDER BY m.family, m.dataset, s.split, m.role, m.seed, m.temperature, m.loss, m.data_variant, m.model""",
    # One row per training sample: which primary models memorized it (the paper's overlap sets).
    "overlaps": f"""
        SELECT s.family, s.dataset, s.sample_id, any_value(s.n_exposures) AS n_exposures,
            bool_or(s.exact) FILTER (WHERE m.label = '{Label.TEACHER}' AND m.is_primary) AS teacher,
            sum(s.exact::INT) FILTER (WHERE m.label = '{Label.TEACHER}') AS teacher_seed_count,
            bool_or(s.exact) FILTER (WHERE m.label = '{Label.BASELINE}' AND m.is_primary) AS baseline,
            bool_and(s.exact) FILTER (WHERE m.label = '{Label.BASELINE}') AS baseline_all_seeds,
            bool_or(s.exact) FILTER (WHERE m.label = '{Label.BASELINE}') AS baseline_any_seed,
            sum(s.exact::INT) FILTER (WHERE m.label = '{Label.BASELINE}') AS baseline_seed_count,
            bool_or(s.exact) FILTER (WHERE m.role = '{Role.STUDENT}' AND m.is_primary AND m.data_variant = '{DataVariant.FULL}') AS student,
            bool_or(s.exact) FILTER (WHERE m.label = '{Label.HARD_STUDENT}') AS hard_student,
            bool_or(s.exact) FILTER (WHERE m.label = '{Label.STUDENT_CLEANED}') AS student_cleaned
        FROM scores s JOIN models m USING (model, family, dataset)
        WHERE s.split = '{Split.TRAIN}'
        GROUP BY s.family, s.dataset, s.sample_id""",
    # Teacher-only and teacher ∩ baseline against every baseline seed: against one seed, samples another
    # seed memorizes would count as the teacher's own (docs/protocol.md "Findings").
    "inheritance": """
        SELECT family, dataset,
            count(*) AS n_train,
            count(*) FILTER (WHERE teacher) AS teacher,
            count(*) FILTER (WHERE baseline) AS baseline,
            count(*) FILTER (WHERE baseline_any_seed) AS baseline_any_seed,
            count(*) FILTER (WHERE student) AS student,
            count(*) FILTER (WHERE hard_student) AS hard_student,
            count(*) FILTER (WHERE teacher AND baseline_any_seed) AS teacher_and_baseline,
            count(*) FILTER (WHERE teacher AND NOT baseline_any_seed) AS teacher_only,
            count(*) FILTER (WHERE student AND teacher AND baseline_any_seed) AS student_in_teacher_and_baseline,
            count(*) FILTER (WHERE student AND teacher AND NOT baseline_any_seed) AS student_inherits_teacher_only,
            count(*) FILTER (WHERE hard_student AND teacher AND NOT baseline_any_seed) AS hard_inherits_teacher_only,
            count(*) FILTER (WHERE hard_student AND teacher AND baseline_any_seed) AS hard_in_teacher_and_baseline,
            count(*) FILTER (WHERE teacher AND baseline_any_seed AND NOT student) AS teacher_and_baseline_not_student,
            count(*) FILTER (WHERE baseline_all_seeds AND NOT student) AS baseline_all_seeds_student_none,
            count(*) FILTER (WHERE baseline AND teacher) AS baseline_covered_by_teacher,
            count(*) FILTER (WHERE student AND hard_student) AS student_and_hard
        FROM "overlaps" GROUP BY family, dataset""",
    # The continuous measure (docs/protocol.md "Memorization gain"): per sample, the suffix log-prob per token of a
    # trained model minus that of the base it started from, and that gain less the model's mean gain on the
    # validation windows (windows of D's documents it never trained on), so 0 is "as on unseen windows".
    "memorization_gain": f"""
        WITH g AS (
            SELECT s.family, s.dataset, s.model, m.label, m.seed, s.split, s.sample_id, s.n_exposures,
                   s.suffix_logprob_mean - b.suffix_logprob_mean AS gain
            FROM scores s JOIN models m USING (model, family, dataset)
            JOIN scores b ON b.family = s.family AND b.dataset = s.dataset AND b.split = s.split AND b.sample_id = s.sample_id
                 AND b.model = CASE m.role WHEN '{Role.TEACHER}' THEN '{BASE_LARGE}' ELSE '{BASE_SMALL}' END
            WHERE m.role <> '{BASE_ROLE}')
        SELECT g.*, g.gain - avg(g.gain) FILTER (WHERE g.split = '{Split.VAL}') OVER (PARTITION BY g.family, g.dataset, g.model) AS gain_calibrated
        FROM g ORDER BY g.family, g.dataset, g.model, g.split, g.sample_id""",
    # The removal experiment: the cleaned student is compared with the student on D on the samples it
    # trained on (retained); a removed sample is not "forgotten" by a student that never saw it.
    "removal": """
        SELECT o.family, o.dataset,
            count(*) FILTER (WHERE baseline) AS baseline_on_d,
            count(*) FILTER (WHERE student) AS student_on_d,
            count(*) FILTER (WHERE student_cleaned) AS student_on_cleaned_d,
            count(*) FILTER (WHERE coalesce(p.predicted, false)) AS removed,
            count(*) FILTER (WHERE coalesce(p.predicted, false) AND student) AS removed_memorized_by_student,
            count(*) FILTER (WHERE NOT coalesce(p.predicted, false)) AS retained,
            count(*) FILTER (WHERE student AND NOT coalesce(p.predicted, false)) AS student_on_retained,
            count(*) FILTER (WHERE student_cleaned AND NOT coalesce(p.predicted, false)) AS cleaned_on_retained,
            count(*) FILTER (WHERE student_cleaned AND NOT student) AS new_in_cleaned,
            count(*) FILTER (WHERE student_cleaned AND student) AS kept_in_cleaned
        FROM "overlaps" o LEFT JOIN predictions p USING (family, dataset, sample_id) GROUP BY o.family, o.dataset""",
    # Every model's validation loss, beside its starting checkpoint's and a unigram model's, so a reader
    # sees whether the bases are language models and whether training kept or lost utility. val_loss is on
    # windows of D's documents (or held-out documents, with val_split: document); heldout_loss on documents
    # no model saw (datasets.*.n_heldout; null when there are none). val_change and heldout_change: the model's loss
    # on each (from its scores) minus its own base's on the same samples: negative is better than where it started.
    "utility": f"""
        WITH h AS (SELECT family, dataset, model, avg(ln(ppl)) FILTER (WHERE split = '{Split.HELDOUT}') AS heldout_loss,
                          avg(ln(ppl)) FILTER (WHERE split = '{Split.VAL}') AS val_scored FROM scores GROUP BY ALL),
        u AS (
            SELECT model, family, dataset, role, seed, temperature, loss, data_variant, n_params, val_loss, val_ppl, tokens_per_s,
                   cache, cache_mean_tail_mass, 2 AS sort_key, model AS scored_as
            FROM models WHERE role <> '{BASE_ROLE}'
            UNION ALL
            SELECT model, family, dataset, '{BASE_ROLE}' AS role, NULL, NULL, NULL, size, n_params, val_loss, val_ppl, NULL, NULL, NULL, 1,
                   '{BASE_ROLE}-' || size FROM bases
            UNION ALL
            SELECT DISTINCT 'unigram' AS model, family, dataset, 'reference' AS role, NULL, NULL, NULL, unigram_reference, NULL,
                   unigram_val_ce, exp(unigram_val_ce), NULL, NULL, NULL, 0, NULL FROM bases)
        SELECT u.model, u.family, u.dataset, u.role, u.seed, u.temperature, u.loss, u.data_variant, u.n_params, u.val_loss, u.val_ppl,
               h.heldout_loss, exp(h.heldout_loss) AS heldout_ppl,
               h.val_scored - b.val_scored AS val_change, h.heldout_loss - b.heldout_loss AS heldout_change,
               u.tokens_per_s, u.cache, u.cache_mean_tail_mass, u.sort_key
        FROM u LEFT JOIN h ON h.family = u.family AND h.dataset = u.dataset AND h.model = u.scored_as
        LEFT JOIN h b ON b.family = u.family AND b.dataset = u.dataset
             AND b.model = CASE WHEN u.sort_key < 2 THEN NULL WHEN u.role = '{Role.TEACHER}' THEN '{BASE_LARGE}' ELSE '{BASE_SMALL}' END
        ORDER BY u.family, u.dataset, u.sort_key, u.role, u.seed, u.temperature, u.loss, u.model""",
}


MIA_SUMMARY = """
    SELECT x.family, x.dataset, x.model, coalesce(m.role, x.model) AS role, m.label, m.seed, m.temperature, m.loss, m.data_variant,
           x.nonmember_split, x.signal, x.auc, x.auc_lo, x.auc_hi, x.tpr_at_1pct_fpr, x.tpr_lo, x.tpr_hi, x.n_members, x.n_nonmembers
    FROM mia x LEFT JOIN models m USING (family, dataset, model)
    ORDER BY x.family, x.dataset, x.nonmember_split DESC, m.role NULLS FIRST, m.seed, m.temperature, m.loss, m.data_variant, x.signal"""


def _connect(path: Path) -> duckdb.DuckDBPyConnection:
    try:
        return duckdb.connect(str(path))
    except duckdb.Error as e:
        raise KdmemError(f"cannot open DuckDB file {path}: {str(e).splitlines()[0]}") from None


def _read_parquets(con, table: str, files: list[str], order: str) -> None:
    for f in files:
        if not Path(f).is_file():
            raise KdmemError(f"input {f} does not exist; run the step that writes it")
        try:
            con.execute("SELECT count(*) FROM read_parquet(?)", [f]).fetchone()
        except duckdb.Error as e:
            raise KdmemError(f"corrupt parquet {f}: {str(e).splitlines()[0]}; delete it and rerun its step") from None
    con.execute(f"CREATE TABLE {table} AS SELECT * FROM read_parquet(?, union_by_name = true) ORDER BY {order}", [files])


def build(
    out: str | Path, *, samples: list[str], models: list[str], scores: list[str], trials: list[str] = (),
    coefficients: list[str] = (), predictions: list[str] = (), bases: list[str] = (), primary: dict | None = None,
    mia: list[str] = (), mia_scores: list[str] = (),
    run: dict | None = None, near_copy: tuple[int, int, int] | None = None,
) -> None:
    """Build the database at `out` atomically from the pipeline's outputs (lists of files)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    tmp.unlink()  # duckdb must create the file itself
    t0 = time.time()
    try:
        con = _connect(tmp)
        _read_parquets(con, "samples_raw", samples, "sample_id")
        _read_parquets(con, "scores", scores, "model, split, sample_id")
        # Each samples file carries its own family, dataset and split columns (kdmem prepare writes them).
        con.execute(
            """CREATE TABLE samples AS
               SELECT family, dataset, split, sample_id, doc_id, "offset", n_exposures, zlib_bytes, zlib_ratio, text, input_ids
               FROM samples_raw ORDER BY family, dataset, split, sample_id"""
        )
        con.execute("DROP TABLE samples_raw")
        if near_copy:
            _add_near_copies(con, *near_copy)
        else:  # the column exists either way, so every query reads one schema
            con.execute("ALTER TABLE samples ADD COLUMN near_copy_ngrams INTEGER")
        rows = []
        for f in models:
            rec = json.loads(Path(f).read_text())
            spec = ModelSpec.of_record(rec)  # the record the training command wrote, never read off the folder
            name = spec.name
            rows.append((name, spec.family, spec.dataset, spec.role, spec.seed, spec.temperature,
                         spec.data_variant, rec.get("n_params"), rec.get("val_loss"), rec.get("val_ppl"),
                         rec.get("tokens_per_s"), rec.get("train_seconds"), rec.get("steps"), rec.get("fingerprint"),
                         rec.get("config_hash"), rec.get("git_commit"), json.dumps(rec.get("versions", {}), sort_keys=True),
                         rec.get("started_at"), rec.get("finished_at"), name in (primary or {}).get("models", [name]),
                         rec.get("cache_mean_tail_mass"),
                         # models trained before losses and cache kinds were recorded: forward KL from a top-k cache
                         spec.loss or (DEFAULT_LOSS if spec.role == Role.STUDENT else None),
                         rec.get("cache") or (CacheKind.TOPK if spec.role == Role.STUDENT else None)))
        con.execute(
            """CREATE TABLE models (model VARCHAR, family VARCHAR, dataset VARCHAR, role VARCHAR, seed BIGINT,
               temperature DOUBLE, data_variant VARCHAR, n_params BIGINT, val_loss DOUBLE, val_ppl DOUBLE,
               tokens_per_s DOUBLE, train_seconds DOUBLE, steps BIGINT, fingerprint VARCHAR, config_hash VARCHAR,
               git_commit VARCHAR, versions VARCHAR, started_at VARCHAR, finished_at VARCHAR, is_primary BOOLEAN,
               cache_mean_tail_mass DOUBLE, loss VARCHAR, cache VARCHAR)"""
        )
        if rows:
            con.executemany("INSERT INTO models VALUES (" + ",".join(["?"] * 23) + ")", sorted(rows, key=lambda r: (r[1], r[2], r[0])))
        # The scored bases (role base, the base-model control) are models too, so every view that joins scores
        # to models sees them; their validation loss lives in the bases table.
        con.execute("""INSERT INTO models (model, family, dataset, role, data_variant, fingerprint, is_primary)
                       SELECT DISTINCT model, family, dataset, role, data_variant, fingerprint, false FROM scores
                       WHERE role = ? ORDER BY family, dataset, model""", [BASE_ROLE])
        # Each model's analysis label (kdmem.vocab.label_of), stored once so that no query rebuilds it.
        labels = [(str(label_of(r, v, m)), m, f, d) for m, f, d, r, v in
                  con.execute("SELECT model, family, dataset, role, data_variant FROM models").fetchall()]
        con.execute("ALTER TABLE models ADD COLUMN label VARCHAR")
        if labels:
            con.executemany("UPDATE models SET label = ? WHERE model = ? AND family = ? AND dataset = ?", labels)
        for table, files, order in (("classifier_trials", trials, "family, dataset, protocol, features, trial"),
                                    ("classifier_coefficients", coefficients, "family, dataset, feature"),
                                    ("predictions", predictions, "family, dataset, sample_id"),
                                    ("mia", mia, "family, dataset, model, signal"),
                                    ("mia_scores", mia_scores, "family, dataset, model, split, sample_id")):
            if files:
                _read_parquets(con, table, list(files), order)
        if not predictions:  # the removal view joins it; a run without a classifier has an empty one
            con.execute("""CREATE TABLE predictions (sample_id VARCHAR, prob DOUBLE, predicted BOOLEAN, label BOOLEAN,
                           family VARCHAR, dataset VARCHAR)""")
        # The starting checkpoints and the unigram reference, on the same validation samples as every model.
        base_rows = []
        for f in bases:
            b = json.loads(Path(f).read_text())
            base_rows += [(b["family"], b["dataset"], r["model"], r["size"], r["checkpoint"], r["n_params"], r["val_loss"],
                           r["val_ppl"], b.get("unigram_val_ce"), b.get("unigram_reference")) for r in b["bases"]]
        con.execute(
            """CREATE TABLE bases (family VARCHAR, dataset VARCHAR, model VARCHAR, size VARCHAR, checkpoint VARCHAR,
               n_params BIGINT, val_loss DOUBLE, val_ppl DOUBLE, unigram_val_ce DOUBLE, unigram_reference VARCHAR)"""
        )
        if base_rows:
            con.executemany("INSERT INTO bases VALUES (" + ",".join(["?"] * 10) + ")", sorted(base_rows))
        con.execute(
            """CREATE TABLE runs AS SELECT model AS what, config_hash, git_commit, versions, started_at, finished_at
               FROM models WHERE role <> ? ORDER BY what""", [BASE_ROLE]
        )
        if run:
            con.execute("INSERT INTO runs VALUES (?, ?, ?, ?, ?, ?)",
                        ["build-db", run.get("config_hash"), run.get("git_commit"), json.dumps(run.get("versions", {}), sort_keys=True),
                         time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(t0)), time.strftime("%Y-%m-%dT%H:%M:%S")])
        for name, sql in VIEWS.items():
            con.execute(f"CREATE VIEW \"{name}\" AS {sql}")  # quoted: OVERLAPS is a DuckDB keyword
        if mia:
            con.execute(f"CREATE VIEW mia_summary AS {MIA_SUMMARY}")
        con.close()
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        Path(str(tmp) + ".wal").unlink(missing_ok=True)
        raise
    log.info("built %s in %.1fs", out, time.time() - t0)


def _add_near_copies(con, prefix_len: int, suffix_len: int, n: int) -> None:
    """Column samples.near_copy_ngrams (kdmem.data.near_copy_ngrams): per sample of every split, how many of its
    suffix n-grams occur in another sample of its D."""
    import polars as pl

    from kdmem.data import near_copy_ngrams

    parts = []
    for family, dataset in con.execute("SELECT DISTINCT family, dataset FROM samples ORDER BY 1, 2").fetchall():
        d = con.execute("SELECT list(input_ids ORDER BY sample_id) FROM samples WHERE family = ? AND dataset = ? AND split = 'train'",
                        [family, dataset]).fetchone()[0] or []
        for split, sid, ids in con.execute("""SELECT split, list(sample_id ORDER BY sample_id), list(input_ids ORDER BY sample_id)
                                              FROM samples WHERE family = ? AND dataset = ? GROUP BY split ORDER BY split""",
                                           [family, dataset]).fetchall():
            counts = near_copy_ngrams(d, ids, prefix_len, prefix_len + suffix_len, n, in_d=split == "train")
            parts.append(pl.DataFrame({"family": family, "dataset": dataset, "split": split, "sample_id": sid,
                                       "near_copy_ngrams": pl.Series(counts, dtype=pl.Int32)}))
    near = pl.concat(parts) if parts else pl.DataFrame(schema={"family": pl.String, "dataset": pl.String, "split": pl.String,
                                                               "sample_id": pl.String, "near_copy_ngrams": pl.Int32})
    con.register("near_df", near)  # data as a registered frame, never as SQL text
    con.execute("""CREATE TABLE samples_nc AS SELECT s.*, n.near_copy_ngrams FROM samples s
                   LEFT JOIN near_df n USING (family, dataset, split, sample_id) ORDER BY s.family, s.dataset, s.split, s.sample_id""")
    con.unregister("near_df")
    con.execute("DROP TABLE samples")
    con.execute("ALTER TABLE samples_nc RENAME TO samples")


def write_audit(path: str | Path, risk) -> None:
    """Put an audit's per-sample risks into table `audit` of a DuckDB file (replacing an earlier audit)."""
    con = _connect(Path(path))
    try:
        con.register("risk_df", risk)
        # the table name is fixed; the data arrive as a registered frame, never as SQL text
        con.execute("CREATE OR REPLACE TABLE audit AS SELECT * FROM risk_df")
    finally:
        con.close()
