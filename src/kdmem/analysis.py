"""Analyses of the paper (docs/protocol.md "Overlaps", "Entropy vs log-probability", "Soft vs hard",
"Predicting memorization", removal), computed in SQL on the DuckDB store, and the per-sample arrays
(kdmem.findings.Study) that the findings, the rates and the exposure-response curves read.

Sets and counts are SQL; intervals (kdmem.stats) draw over numpy arrays of per-sample booleans.
"""

from __future__ import annotations

import logging

import duckdb
import numpy as np

from kdmem import findings, settings, stats
from kdmem.layout import Figure, Layout
from kdmem.roster import ModelSpec
from kdmem.vocab import DataVariant, Label, Role, Size, start_label

BASE_LABELS = (Label.BASE_LARGE, Label.BASE_SMALL)
TRAINED_ROLES = tuple(str(x) for x in Label if x not in BASE_LABELS)  # teacher … student_cleaned, in Label's order

log = logging.getLogger(__name__)

def _one(con, sql: str, params: list) -> dict:
    cur = con.execute(sql, params)
    cols = [d[0] for d in cur.description]
    row = cur.fetchone()
    return dict(zip(cols, row, strict=True)) if row else {}


def _rows(con, sql: str, params: list) -> list[dict]:
    cur = con.execute(sql, params)
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]


def pairs(con) -> list[tuple[str, str]]:
    return [tuple(r) for r in con.execute("SELECT DISTINCT family, dataset FROM models ORDER BY 1, 2").fetchall()]


def roles_present(con, family: str, dataset: str) -> set[str]:
    rows = con.execute("SELECT DISTINCT label FROM models WHERE family = ? AND dataset = ?", [family, dataset]).fetchall()
    return {r[0] for r in rows}


def overlaps(con, family: str, dataset: str) -> dict:
    inh = _one(con, "SELECT * FROM inheritance WHERE family = ? AND dataset = ?", [family, dataset])
    if not inh:
        return {}

    def share(a, b):
        return None if not inh.get(b) else inh[a] / inh[b]

    inh.update(
        share_student_in_teacher_and_baseline=share("student_in_teacher_and_baseline", Label.STUDENT),
        share_teacher_only_inherited=share("student_inherits_teacher_only", "teacher_only"),
        share_hard_teacher_only_inherited=share("hard_inherits_teacher_only", "teacher_only"),
        share_hard_in_teacher_and_baseline=share("hard_in_teacher_and_baseline", Label.HARD_STUDENT),
        teacher_coverage_of_baseline=share("baseline_covered_by_teacher", Label.BASELINE),
        share_soft_also_hard=share("student_and_hard", Label.STUDENT),
    )
    return inh


def venn_regions(con, family: str, dataset: str) -> dict[str, int]:
    rows = con.execute(
        """SELECT coalesce(teacher, false), coalesce(baseline, false), coalesce(student, false), count(*)
           FROM "overlaps" WHERE family = ? AND dataset = ? GROUP BY ALL""", [family, dataset]).fetchall()
    out = {}
    for t, b, s, n in rows:
        key = ("T" if t else "") + ("B" if b else "") + ("S" if s else "")
        if key:
            out[key] = n
    return out


def entropy_vs_logprob(con, family: str, dataset: str) -> tuple[list[dict], dict]:
    """Per primary role, over the teacher∩baseline-not-student samples: mean entropy and suffix log-prob."""
    sql = """
        WITH target AS (SELECT sample_id FROM "overlaps" WHERE family = ? AND dataset = ? AND teacher AND baseline AND NOT student)
        SELECT m.role, count(*) AS n, avg(s.entropy) AS mean_entropy, avg(s.suffix_logprob_sum) AS mean_suffix_logprob,
               list(s.entropy ORDER BY s.sample_id) AS ent, list(s.suffix_logprob_sum ORDER BY s.sample_id) AS lp
        FROM scores s JOIN models m USING (model, family, dataset) JOIN target USING (sample_id)
        WHERE s.split = 'train' AND m.is_primary AND m.data_variant = 'full' AND m.family = ? AND m.dataset = ?
          AND m.role IN (?, ?, ?)
        GROUP BY m.role ORDER BY m.role"""
    rows = _rows(con, sql, [family, dataset, family, dataset, Role.TEACHER, Role.BASELINE, Role.STUDENT])
    points = {r["role"]: (r.pop("ent"), r.pop("lp")) for r in rows}
    return rows, points


def _primary_student_filter() -> str:
    """SQL: the soft students of the primary temperature and loss (every seed), on the full D."""
    return f"""m.role = '{Role.STUDENT}' AND m.data_variant = '{DataVariant.FULL}' AND EXISTS (
                  SELECT 1 FROM models p WHERE p.role = '{Role.STUDENT}' AND p.is_primary AND p.data_variant = '{DataVariant.FULL}'
                    AND p.family = m.family AND p.dataset = m.dataset AND p.temperature = m.temperature AND p.loss = m.loss)"""


# Which models make up each role of a study, every seed: the SQL condition on models m.
# Every label is its own filter (vocabulary constants, not user input) but the soft student's, which takes every seed of
# the primary temperature and loss.
ROLE_FILTERS = {str(x): f"m.label = '{x}'" for x in Label} | {str(Label.STUDENT): _primary_student_filter()}


def study(con, family: str, dataset: str, n_perm: int = 10000) -> findings.Study:
    """The per-sample arrays the findings read: every seed of every role, D's documents and exposures,
    the classifier's removed set and the validation losses."""
    pair = [family, dataset]
    ids = con.execute("""SELECT list(doc_id ORDER BY sample_id), list(n_exposures ORDER BY sample_id) FROM samples
                         WHERE split = 'train' AND family = ? AND dataset = ?""", pair).fetchone()
    mem, val, ext = {}, {}, {}
    for role, cond in ROLE_FILTERS.items():
        rows = con.execute(f"""SELECT s.split, list(s.exact ORDER BY s.sample_id), list(ln(s.ppl) ORDER BY s.sample_id),
                                      list(s.extractable ORDER BY s.sample_id)
                               FROM scores s JOIN models m USING (model, family, dataset)
                               WHERE m.family = ? AND m.dataset = ? AND {cond} GROUP BY s.split, m.is_primary, m.seed, m.model
                               ORDER BY s.split, NOT m.is_primary, m.seed, m.model""", pair).fetchall()  # cond: a fixed string above
        # The primary model first: for the teacher, the one every student distils from (row 0 in findings.Study).
        train = [r[1] for r in rows if r[0] == "train"]
        if train:
            mem[role] = np.asarray(train, dtype=bool)
            ext[role] = np.asarray([r[3] for r in rows if r[0] == "train"], dtype=bool)
        for split in ("val", "heldout"):
            if vals := [r[2] for r in rows if r[0] == split and r[2]]:
                val.setdefault(split, {})[role] = [np.asarray(v, dtype=float) for v in vals]
    removed = None
    if _one(con, "SELECT count(*) AS n FROM information_schema.tables WHERE table_name = 'predictions'", [])["n"]:
        r = con.execute("""SELECT list(coalesce(p.predicted, false) ORDER BY s.sample_id) FROM samples s LEFT JOIN predictions p
                           USING (family, dataset, sample_id) WHERE s.split = 'train' AND s.family = ? AND s.dataset = ?""", pair).fetchone()
        removed = np.asarray(r[0], dtype=bool) if r and r[0] else None
    docs = {split: con.execute("""SELECT list(doc_id ORDER BY sample_id) FROM samples WHERE split = ? AND family = ? AND dataset = ?""",
                               [split, *pair]).fetchone()[0] for split in ("val", "heldout")}
    return findings.Study(doc_ids=np.asarray(ids[0] or []), exposures=np.asarray(ids[1] or [], dtype=np.int64), mem=mem,
                          removed=removed, val=val, val_doc_ids={k: np.asarray(v) for k, v in docs.items() if v}, extractable=ext,
                          features=content_features(con, family, dataset), n_perm=n_perm)


def content_features(con, family: str, dataset: str) -> dict[str, np.ndarray]:
    """Per sample of D (sample_id order): the classifier's four features from the primary teacher and baseline, and two
    controls, the small base's loss (what the sample's text costs a model that never saw D) and the natural near-copy
    count. Empty where the primary teacher or baseline was not scored."""
    r = con.execute("""
        SELECT list(ln(t.ppl) ORDER BY x.sample_id), list(ln(b.ppl) ORDER BY x.sample_id), list(b.kl_to_teacher ORDER BY x.sample_id),
               list(x.zlib_bytes ORDER BY x.sample_id), list(ln(z.ppl) ORDER BY x.sample_id), list(x.near_copy_ngrams ORDER BY x.sample_id)
        FROM samples x
        JOIN (scores JOIN models USING (model, family, dataset)) t ON t.sample_id = x.sample_id AND t.label = ? AND t.is_primary
             AND t.split = 'train' AND t.family = x.family AND t.dataset = x.dataset
        JOIN (scores JOIN models USING (model, family, dataset)) b ON b.sample_id = x.sample_id AND b.label = ? AND b.is_primary
             AND b.split = 'train' AND b.family = x.family AND b.dataset = x.dataset
        LEFT JOIN scores z ON z.sample_id = x.sample_id AND z.model = ? AND z.split = 'train' AND z.family = x.family
             AND z.dataset = x.dataset
        WHERE x.split = 'train' AND x.family = ? AND x.dataset = ?""",
        [Label.TEACHER, Label.BASELINE, ModelSpec.base(Size.SMALL).name, family, dataset]).fetchone()
    if not r or not r[0]:
        return {}
    names = ("log_teacher_ppl", "log_baseline_ppl", "kl_teacher_baseline", "zlib_bytes", "log_base_small_ppl", "near_copy_ngrams")
    return {k: np.asarray(v, dtype=float) for k, v in zip(names, r, strict=True) if v and not any(x is None for x in v)}


def all_findings(con, family: str, dataset: str, classifier: dict | None, n_boot: int, seed: int, min_positives: int = 25,
                 margin: float = 0.05, n_perm: int = 10000) -> list[dict]:
    """F1-F8 of one (family, dataset): value, interval, placebo, exposure null and verdict (kdmem.findings)."""
    return findings.all_findings(study(con, family, dataset, n_perm), n_boot, seed, classifier, margin, min_positives)


def rate_rows(con, family: str, dataset: str, n_boot: int, seed: int, s: findings.Study | None = None) -> list[dict]:
    """Each role's memorization rate (seed mean) with its interval: exact (Clopper-Pearson) for one model,
    a bootstrap over documents and seeds for several; and the newly memorized count (not memorized by the
    checkpoint the role started from), where the bases were scored."""
    s = s or study(con, family, dataset)  # analyze passes the study it built once
    clusters = stats.Clusters.of(s.doc_ids)
    out = []
    for role in (*TRAINED_ROLES, *BASE_LABELS):
        if not s.has(role):
            continue
        m = s.mem[role]
        cp = stats.sample_ci(m)  # distinct samples, each weighing its share of seeds
        if m.shape[0] > 1:
            draws = stats.cluster_bootstrap(lambda i, rng, m=m: stats.seed_mean(m, i, rng), clusters, n_boot, seed)
            (lo, hi), method = stats.interval(draws, cp)
        else:
            (lo, hi), method = cp, "clopper-pearson"
        start = start_label(role)
        new = (m & ~s.mem[start][0]).sum(1).tolist() if s.has(start) and role not in BASE_LABELS else None
        x = s.extractable.get(role)
        out.append({"role": role, "seeds": m.shape[0], "memorized": m.sum(1).tolist(), "newly_memorized": new, "n": s.n,
                    "rate": float(m.mean()), "lo": lo, "hi": hi, "ci_method": method,
                    "extractable": x.sum(1).tolist() if x is not None else None,
                    "extractable_ci": stats.sample_ci(x) if x is not None else None})
    return out


def power_rows(s: findings.Study, lo: float = 0.05, hi: float = 0.95) -> list[dict]:
    """The study's power to see content decide, per trained model (every seed): content can only matter in
    exposure levels where exposure does not already decide, i.e. where the model's rate of newly memorized
    samples (memorized, and not by the base it started from) lies in [lo, hi]. Counts the newly memorized
    samples in those levels, and the once-seen samples the model memorizes (newly and at all)."""
    out = []
    levels = np.unique(s.exposures)
    for role in TRAINED_ROLES:
        if not s.has(role):
            continue
        start = start_label(role)
        base = s.mem[start][0] if s.has(start) else np.zeros(s.n, dtype=bool)
        for i, m in enumerate(s.mem[role]):
            new = m & ~base
            mid = [int(v) for v in levels if lo <= new[s.exposures == v].mean() <= hi]
            once = s.exposures == 1
            out.append({"role": role, "seed_index": i, "transition_levels": mid,
                        "newly_in_transition": int(new[np.isin(s.exposures, mid)].sum()), "newly_memorized": int(new.sum()),
                        "once_seen_memorized": int(m[once].sum()), "once_seen_newly": int(new[once].sum()), "once_seen_n": int(once.sum()),
                        "base_scored": s.has(start)})
    return out


def exposure_response(con, family: str, dataset: str, n_boot: int, seed: int, s: findings.Study | None = None) -> dict[str, dict]:
    """Per role: memorization rate at each exposure level (exact intervals), a logistic fit of memorized on
    log(exposures) pooled over seeds, and E50, the exposure at which half the samples are memorized, with a
    bootstrap interval over documents. E50 is None where the fit has no rising slope (no dose response) or
    its midpoint lies outside the observed exposures."""
    s = s or study(con, family, dataset)  # analyze passes the study it built once
    levels = np.unique(s.exposures)
    clusters = stats.Clusters.of(s.doc_ids)
    out = {}
    for role, m in s.mem.items():
        points = []
        for v in levels:
            sel = m[:, s.exposures == v]
            points.append({"n_exposures": int(v), "memorized": int(sel.sum()), "seeds": sel.shape[0], "n": sel.shape[1],
                           "rate": float(sel.mean()), "ci": stats.sample_ci(sel)})
        fit = _logistic_e50(m, s.exposures)
        draws = stats.cluster_bootstrap(lambda i, rng, m=m: _logistic_e50(m[:, i], s.exposures[i])["e50"] or np.nan, clusters, n_boot, seed) \
            if fit["e50"] is not None else np.asarray([])
        out[role] = {"points": points, **fit, "e50_ci": stats.percentile(draws) if draws.size else None}
    return out


def _logistic_e50(m: np.ndarray, exposures: np.ndarray) -> dict:
    """memorized ~ a + b·log(exposures), every seed's rows pooled; E50 = exp(-a / b). A weak ridge (C = 1e4)
    keeps the fit finite where the levels separate perfectly; E50 then lies between the two levels. The fit
    is stats.logistic_fit (sklearn's objective), since the bootstrap refits it a thousand times per role."""
    # The only feature takes one value per exposure level: fit on (level, outcome) counts, the same objective on
    # 16 rows instead of seeds x samples (the bootstrap's thousand refits per role were most of analyze's time).
    levels, inv = np.unique(exposures, return_inverse=True)
    hits = np.bincount(inv, weights=m.sum(0), minlength=levels.size)
    counts = np.bincount(inv, minlength=levels.size) * m.shape[0]
    if hits.sum() == counts.sum() or not hits.any() or levels.size < 2:
        return {"intercept": None, "slope": None, "e50": None}
    ux = np.log(levels.astype(float))
    coef, a = stats.logistic_fit(np.concatenate([ux, ux])[:, None], np.repeat([True, False], ux.size), 1e4,
                                 weight=np.concatenate([hits, counts - hits]))
    b = float(coef[0])
    # No E50 without a rising slope, nor outside the observed exposures (it would be an extrapolation).
    mid = -a / b if b > 0 else None
    inside = mid is not None and float(ux[0]) <= mid <= float(ux[-1])
    return {"intercept": a, "slope": b, "e50": float(np.exp(mid)) if inside else None}


def connect_ro(path) -> duckdb.DuckDBPyConnection:
    return duckdb.connect(str(path), read_only=True)


def mia_by_exposure(con, family: str, dataset: str, signal: str = "loss") -> list[dict]:
    """Per model: the loss signal's AUC of the members of each exposure level against every non-member of the
    primary (validation-window) comparison: how much of a model's membership signal the duplicated samples carry."""
    if not _one(con, "SELECT count(*) AS n FROM information_schema.tables WHERE table_name = 'mia_scores'", [])["n"]:
        return []
    rows = con.execute(f"""
        SELECT x.model, coalesce(t.n_exposures, 0) AS level, list(x.member), list(x.{signal})
        FROM mia_scores x LEFT JOIN samples t ON t.family = x.family AND t.dataset = x.dataset AND t.split = 'train'
             AND t.sample_id = x.sample_id AND x.member
        WHERE x.family = ? AND x.dataset = ? AND x.split IN ('train', 'val')
        GROUP BY ALL ORDER BY x.model, level""", [family, dataset]).fetchall()  # signal: a fixed name of kdmem.mia.SIGNALS
    out: dict[str, dict] = {}
    for model, level, member, score in rows:
        out.setdefault(model, {"model": model, "levels": {}})["levels"][int(level)] = (np.asarray(member, dtype=bool), np.asarray(score, dtype=float))
    res = []
    for model, d in out.items():
        neg = d["levels"].get(0)
        if neg is None:
            continue
        row = {"model": model, "signal": signal, "n_nonmembers": int(neg[0].size)}
        for level, (mem, sc) in sorted(d["levels"].items()):
            if level:
                y = np.concatenate([np.ones(mem.size, dtype=bool), np.zeros(neg[0].size, dtype=bool)])
                row[f"{level}×"] = stats.auc(y, np.concatenate([sc, neg[1]]))
        res.append(row)
    return res


def mia_rows(con, family: str, dataset: str) -> list[dict]:
    """The mia_summary view's rows of one (family, dataset); none when membership inference was off."""
    if not _one(con, "SELECT count(*) AS n FROM information_schema.tables WHERE table_name = 'mia_summary'", [])["n"]:
        return []
    return _rows(con, "SELECT * FROM mia_summary WHERE family = ? AND dataset = ?", [family, dataset])


def soft_student_rows(con, family: str, dataset: str) -> list[dict]:
    """Every soft student on the full D, by temperature and loss: memorized samples, how many of them the
    primary student also memorizes, validation loss and, when membership inference ran, its loss-signal AUC."""
    has_mia = bool(_one(con, "SELECT count(*) AS n FROM information_schema.tables WHERE table_name = 'mia'", [])["n"])
    mia = "(SELECT auc FROM mia x WHERE x.family = m.family AND x.dataset = m.dataset AND x.model = m.model AND x.signal = 'loss' AND x.nonmember_split = 'val')"
    return _rows(con, f"""
        WITH mem AS (SELECT s.model, s.sample_id FROM scores s JOIN models m USING (model, family, dataset)
                     WHERE s.exact AND s.split = 'train' AND m.family = ? AND m.dataset = ?),
             prim AS (SELECT mem.sample_id FROM mem JOIN models m USING (model)
                      WHERE m.role = '{Role.STUDENT}' AND m.is_primary AND m.data_variant = 'full' AND m.family = ? AND m.dataset = ?)
        SELECT m.temperature, m.loss, m.model, m.is_primary, r.memorized, r.rate,
               (SELECT count(*) FROM mem JOIN prim USING (sample_id) WHERE mem.model = m.model) AS shared_with_primary,
               m.val_loss, {mia if has_mia else 'NULL'} AS mia_loss_auc
        FROM models m JOIN memorization_rates r USING (model, family, dataset)
        WHERE m.role = '{Role.STUDENT}' AND m.data_variant = 'full' AND r.split = 'train' AND m.family = ? AND m.dataset = ?
        ORDER BY m.temperature, m.loss""", [family, dataset] * 3)


def sweep_rows(rows: list[dict], by: str) -> list[dict]:
    """The soft students that differ from the primary one in `by` alone (temperature or loss): a sweep's rows."""
    keep = "loss" if by == "temperature" else "temperature"
    primary = [r[keep] for r in rows if r["is_primary"]]
    return [r for r in rows if primary and r[keep] == primary[0]]


def removal_rows(con, family: str, dataset: str) -> dict:
    """The removal experiment (view `removal`), the new-in-cleaned count with its exact interval over the
    retained samples, and the removed set's make-up by exposure level."""
    rem = _one(con, 'SELECT * FROM "removal" WHERE family = ? AND dataset = ?', [family, dataset])
    if not rem or not rem.get("removed"):
        return rem
    rem["new_in_cleaned_rate_ci"] = stats.clopper_pearson(int(rem["new_in_cleaned"]), int(rem["retained"]))
    rem["by_exposure"] = _rows(con, """
        SELECT o.n_exposures, count(*) AS in_d, count(*) FILTER (WHERE coalesce(p.predicted, false)) AS removed,
               count(*) FILTER (WHERE o.student) AS student_on_d,
               count(*) FILTER (WHERE o.student_cleaned AND NOT coalesce(p.predicted, false)) AS cleaned_on_retained
        FROM "overlaps" o LEFT JOIN predictions p USING (family, dataset, sample_id)
        WHERE o.family = ? AND o.dataset = ? GROUP BY o.n_exposures ORDER BY o.n_exposures""", [family, dataset])
    return rem


def analyze(db, classifiers: dict[tuple[str, str], dict], layout: Layout, a: settings.Analysis, seed: int) -> dict:
    """Every analysis per (family, dataset) into the layout's analysis.json, and its figures at the layout's figure
    paths, listed in analysis.json (a pair's `figures`), so the report renders this, computes nothing and knows what
    to expect."""
    from pathlib import Path

    from kdmem import families, figures, gain
    from kdmem.io import write_json

    n_boot, n_perm = a.bootstrap, a.permutations
    Path(layout.analysis()).parent.mkdir(parents=True, exist_ok=True)
    con = connect_ro(db)
    result: dict = {"pairs": []}
    for family, dataset in pairs(con):
        def fig(kind: str, family: str = family, dataset: str = dataset) -> str:
            return layout.figure(family, dataset, kind)

        clf = classifiers.get((family, dataset))
        st = study(con, family, dataset, n_perm)  # one read of the per-sample arrays for every analysis below
        rates = rate_rows(con, family, dataset, n_boot, seed, st)
        ent_rows, points = entropy_vs_logprob(con, family, dataset)
        expo = exposure_response(con, family, dataset, n_boot, seed, st)
        power = power_rows(st)
        g = gain.load(con, family, dataset)
        figures.rates(rates, fig(Figure.RATES))
        figures.venn(venn_regions(con, family, dataset), fig(Figure.VENN))
        figures.entropy_logprob(points, fig(Figure.ENTROPY))
        figures.exposure_curve(expo, fig(Figure.EXPOSURE))
        drawn = [Figure.RATES, Figure.EXPOSURE, Figure.VENN, Figure.ENTROPY]
        soft = soft_student_rows(con, family, dataset)
        sweeps = {by: sweep_rows(soft, by) for by in ("temperature", "loss")}
        for by, rows in sweeps.items():
            if len(rows) > 1:
                figures.soft_sweep(rows, by, fig(Figure(by)))
                drawn.append(Figure(by))
        result["pairs"].append({
            "family": family, "dataset": dataset, "rates": rates, "overlaps": overlaps(con, family, dataset),
            "entropy_vs_logprob": ent_rows, "exposure": expo, "power": power,
            "findings": findings.all_findings(st, n_boot, seed, clf, a.utility_margin, a.min_positives),
            "overlap_nulls": findings.overlap_nulls(st, n_boot, seed),
            "gain_by_level": gain.by_level(g, n_boot, seed),
            "gain_once_seen_content": gain.once_seen_content(g, n_boot, seed),
            "mia_by_exposure": mia_by_exposure(con, family, dataset),
            "removal": removal_rows(con, family, dataset),
            "classifier": {k: v for k, v in (clf or {}).items() if k != "model"},
            "roles_present": sorted(roles_present(con, family, dataset)),
            "mia": mia_rows(con, family, dataset),
            "soft_students": soft,
            "sweeps": sweeps,
            "figures": drawn,
        })
    result["across_families"] = families.across_families(con, n_perm, seed)
    for x in result["across_families"]:
        figures.coverage(x["overlaps"], layout.families_figure(x["dataset"], Figure.COVERAGE))
    result["rates_all"] = _rows(con, "SELECT * FROM memorization_rates", [])
    result["utility"] = _rows(con, "SELECT * FROM utility", [])
    con.close()
    write_json(result, layout.analysis())
    return result
