"""Analyses of the paper (docs/protocol.md "Overlaps", "Entropy vs log-probability", "Soft vs hard",
"Predicting memorization", removal), computed in SQL on the DuckDB store, plus the findings table
with bootstrap CIs over samples (and over seeds, for the baseline).

Nothing here pulls all scores into Python lists: sets and counts are SQL; the bootstrap draws over
numpy arrays of per-sample booleans.
"""

from __future__ import annotations

import logging

import duckdb
import numpy as np

log = logging.getLogger(__name__)

PAPER_RATES = {  # Pythia / FineWeb, in % (docs/protocol.md headline table)
    "teacher": 0.33, "baseline": 0.17, "student": 0.07, "hard_student": 0.07,
}


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
    rows = con.execute("SELECT DISTINCT role || CASE WHEN data_variant = 'cleaned' THEN '_cleaned' ELSE '' END FROM models "
                       "WHERE family = ? AND dataset = ?", [family, dataset]).fetchall()
    return {r[0] for r in rows}


def overlaps(con, family: str, dataset: str) -> dict:
    inh = _one(con, "SELECT * FROM inheritance WHERE family = ? AND dataset = ?", [family, dataset])
    if not inh:
        return {}

    def share(a, b):
        return None if not inh.get(b) else inh[a] / inh[b]

    inh.update(
        share_student_in_teacher_and_baseline=share("student_in_teacher_and_baseline", "student"),
        share_teacher_only_inherited=share("student_inherits_teacher_only", "teacher_only"),
        share_hard_teacher_only_inherited=share("hard_inherits_teacher_only", "teacher_only"),
        share_hard_in_teacher_and_baseline=share("hard_in_teacher_and_baseline", "hard_student"),
        teacher_coverage_of_baseline=share("baseline_covered_by_teacher", "baseline"),
        share_soft_also_hard=share("student_and_hard", "student"),
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
          AND m.role IN ('teacher', 'baseline', 'student')
        GROUP BY m.role ORDER BY m.role"""
    rows = _rows(con, sql, [family, dataset, family, dataset])
    points = {r["role"]: (r.pop("ent"), r.pop("lp")) for r in rows}
    return rows, points


def exposure_curve(con, family: str, dataset: str) -> dict:
    rows = _rows(con, """SELECT m.role || CASE WHEN m.data_variant = 'cleaned' THEN '_cleaned' ELSE '' END AS role,
                                s.n_exposures, avg(s.exact::INT) AS rate, count(*) AS n
                         FROM scores s JOIN models m USING (model, family, dataset)
                         WHERE s.split = 'train' AND m.is_primary AND m.family = ? AND m.dataset = ?
                         GROUP BY ALL ORDER BY 1, 2""", [family, dataset])
    out: dict[str, tuple[list, list]] = {}
    for r in rows:
        out.setdefault(r["role"], ([], []))
        out[r["role"]][0].append(r["n_exposures"])
        out[r["role"]][1].append(r["rate"])
    return out


def _arrays(con, family: str, dataset: str) -> dict[str, np.ndarray]:
    cur = con.execute(
        """SELECT coalesce(teacher, false) AS teacher, coalesce(baseline, false) AS baseline,
                  coalesce(student, false) AS student, coalesce(hard_student, false) AS hard_student,
                  coalesce(student_cleaned, false) AS student_cleaned
           FROM "overlaps" WHERE family = ? AND dataset = ? ORDER BY sample_id""", [family, dataset])
    arr = {k: np.asarray(v, dtype=bool) for k, v in cur.fetchnumpy().items()}
    seeds = con.execute(
        """SELECT list(s.exact ORDER BY s.sample_id) FROM scores s JOIN models m USING (model, family, dataset)
           WHERE s.split = 'train' AND m.role = 'baseline' AND m.family = ? AND m.dataset = ? GROUP BY m.seed ORDER BY m.seed""",
        [family, dataset]).fetchall()
    arr["baseline_seeds"] = np.asarray([r[0] for r in seeds], dtype=bool)  # (n_seeds, n)
    val = con.execute(
        """SELECT m.role, list(ln(s.ppl) ORDER BY s.sample_id) FROM scores s JOIN models m USING (model, family, dataset)
           WHERE s.split = 'val' AND m.data_variant = 'full' AND m.family = ? AND m.dataset = ?
             AND (m.is_primary OR m.role = 'baseline') GROUP BY m.role, m.seed ORDER BY m.role, m.seed""",
        [family, dataset]).fetchall()
    for role, losses in val:
        arr.setdefault(f"val_{role}", [])
        arr[f"val_{role}"].append(np.asarray(losses, dtype=float))
    return arr


def _ci(vals: np.ndarray) -> tuple[float, float]:
    vals = vals[~np.isnan(vals)]
    if len(vals) == 0:
        return (float("nan"), float("nan"))
    return float(np.percentile(vals, 2.5)), float(np.percentile(vals, 97.5))


def _seed_mean(seeds: np.ndarray, i: np.ndarray, pick: np.ndarray) -> float:
    """Mean memorization rate over the picked baseline seeds, on the resampled samples i."""
    return float(seeds[pick][:, i].mean())


def bootstrap(a: dict[str, np.ndarray], n_boot: int, seed: int) -> dict[str, np.ndarray]:
    """Distributions of each finding's statistic under resampling.

    Samples are resampled with replacement; the baseline's rate is the mean over its seeds, and the
    seeds are resampled too (with replacement, as many as there are), so F1, F2 and the baseline's
    rate CI measure the same seed-mean statistic as their point values."""
    rng = np.random.default_rng(seed)
    n = len(a["teacher"])
    out: dict[str, list] = {k: [] for k in ("F1", "F2", "F3", "F4", "F8", "rate_baseline_seeds")}
    seeds = a["baseline_seeds"]
    n_seeds = seeds.shape[0] if seeds.size else 0
    for _ in range(n_boot):
        i = rng.integers(0, n, n)
        t, s, h = a["teacher"][i], a["student"][i], a["hard_student"][i]
        b_rate = _seed_mean(seeds, i, rng.integers(0, n_seeds, n_seeds)) if n_seeds else float(a["baseline"][i].mean())
        b_primary = a["baseline"][i]
        out["F1"].append(b_rate - s.mean())
        out["F2"].append(t.mean() - b_rate)
        out["F3"].append((s & t & b_primary).sum() / s.sum() if s.sum() else np.nan)
        to = t & ~b_primary
        out["F4"].append((s & to).sum() / to.sum() if to.sum() else np.nan)
        out["F8"].append(float((h & to).sum()) - float((s & to).sum()))
        out["rate_baseline_seeds"].append(b_rate)
    return {k: np.asarray(v, dtype=float) for k, v in out.items()}


def removal_effect(student: np.ndarray, cleaned: np.ndarray, n_boot: int, seed: int) -> tuple[float | None, tuple[float, float]]:
    """The removal's own effect: 1 - (cleaned student's memorized) / (student-on-D's memorized), with a
    bootstrap CI over samples. None when the student on D memorized nothing (no effect to measure)."""
    if not student.sum():
        return None, (float("nan"), float("nan"))
    value = 1 - cleaned.sum() / student.sum()
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(n_boot):
        i = rng.integers(0, len(student), len(student))
        d = student[i].sum()
        draws.append(1 - cleaned[i].sum() / d if d else np.nan)
    return float(value), _ci(np.asarray(draws))


def trial_interval(aucs: list[float]) -> tuple[float, float]:
    """2.5-97.5 percentiles of the classifier's trial AUCs: the spread of one trial's AUC over resampled
    negatives and splits (not the uncertainty of their mean)."""
    return _ci(np.asarray(aucs, dtype=float))


def findings(con, family: str, dataset: str, classifier: dict | None, n_boot: int, seed: int, min_positives: int = 25) -> list[dict]:
    """The paper's qualitative claims F1-F8: measured value, 95 % CI, reproduced or not, and the rule used."""
    present = roles_present(con, family, dataset)
    a = _arrays(con, family, dataset)
    boot = bootstrap(a, n_boot, seed)
    ov = overlaps(con, family, dataset)
    rows = []

    def add(fid, claim, value, ci, ok, rule, paper, needs=()):
        missing = [r for r in needs if r not in present]
        if missing:
            rows.append({"id": fid, "claim": claim, "value": None, "ci": None, "verdict": f"not computed: no {', '.join(missing)} in this run",
                         "rule": rule, "paper": paper})
            return
        verdict = "n/a" if value is None or (isinstance(value, float) and np.isnan(value)) else ("reproduced" if ok else "not reproduced")
        rows.append({"id": fid, "claim": claim, "value": value, "ci": ci, "verdict": verdict, "rule": rule, "paper": paper})

    f1 = float(a["baseline_seeds"].mean() - a["student"].mean()) if a["baseline_seeds"].size else float("nan")
    lo, hi = _ci(boot["F1"])
    add("F1", "student memorizes less than the baseline (rate difference, baseline seed mean - student)", f1, (lo, hi), lo > 0,
        "95 % CI of the difference > 0", "0.17 % vs 0.07 % (2.4x)", ("baseline", "student"))
    b_mean = float(a["baseline_seeds"].mean()) if a["baseline_seeds"].size else float(a["baseline"].mean())
    f2 = float(a["teacher"].mean()) - b_mean
    lo, hi = _ci(boot["F2"])
    add("F2", "teacher memorizes more than the baseline (rate difference, teacher - baseline seed mean)", f2, (lo, hi), lo > 0,
        "95 % CI of the difference > 0", "0.33 % vs 0.17 %", ("teacher", "baseline"))
    f3 = ov.get("share_student_in_teacher_and_baseline")
    lo, hi = _ci(boot["F3"])
    add("F3", "student-memorized samples lie in teacher∩baseline (share)", f3, (lo, hi), f3 is not None and lo >= 0.7,
        "CI lower bound >= 0.70 (the lowest share the paper reports, Qwen-3)", "95.7 % (70-96 % across settings)", ("teacher", "baseline", "student"))
    f4 = ov.get("share_teacher_only_inherited")
    lo, hi = _ci(boot["F4"])
    add("F4", "the student inherits little of the teacher-only set (share inherited)", f4, (lo, hi), f4 is not None and hi < 0.27,
        "CI upper bound < 0.27 (the highest share the paper reports)", "0.9 % (18 of 1,955)", ("teacher", "baseline", "student"))
    n_student = int(a["student"].sum())
    if n_student == 0:
        rows[-1]["verdict"] += " (vacuous: the student memorized no sample)"
    elif n_student < 5:
        for r in rows[-2:]:  # F3 and F4 rest on the student's memorized set
            r["verdict"] += f" (on only {n_student} student-memorized sample{'s' if n_student > 1 else ''})"
    val_s, val_b = a.get("val_student"), a.get("val_baseline")
    if val_s and val_b:
        diff = np.mean([v.mean() for v in val_b]) - val_s[0].mean()
        rng = np.random.default_rng(seed)
        draws = []
        m = len(val_s[0])
        for _ in range(n_boot):
            i = rng.integers(0, m, m)
            draws.append(val_b[rng.integers(0, len(val_b))][i].mean() - val_s[0][i].mean())
        lo, hi = _ci(np.asarray(draws))
        add("F5", "student validation loss <= baseline's (baseline - student, nats)", float(diff), (lo, hi), diff >= 0,
            "point estimate >= 0 (CI shown)", "2.85 vs 2.87 (Pythia)", ("baseline", "student"))
    else:
        add("F5", "student validation loss <= baseline's", None, None, False, "point estimate >= 0", "2.85 vs 2.87", ("baseline", "student"))
    if classifier and classifier.get("status") == "ok":
        auc = classifier["auc_mean"]
        aucs = classifier.get("trial_aucs") or [auc]
        add("F6", "memorization is predictable before distillation (mean ROC-AUC over trials; interval: 2.5-97.5 percentile of trial AUCs)",
            auc, trial_interval(aucs), auc >= 0.9, "mean AUC over trials >= 0.90", "0.9997 ± 0.0005")
    else:
        msg = (classifier or {}).get("message", "no classifier output")
        rows.append({"id": "F6", "claim": "memorization is predictable before distillation (ROC-AUC)", "value": None, "ci": None,
                     "verdict": f"not computed: {msg}", "rule": "mean AUC >= 0.90", "paper": "0.9997 ± 0.0005"})
    rem = _one(con, "SELECT * FROM removal WHERE family = ? AND dataset = ?", [family, dataset])
    removed = (classifier or {}).get("n_predicted", 0) if (classifier or {}).get("status") == "ok" else 0
    f7_claim = "removing predicted-memorized samples cuts the student's memorization (1 - cleaned student / student on D)"
    f7_rule = "reduction >= 90 % and its 95 % CI > 0"
    f7_paper = "99.8 % against the baseline (1,698 -> 4), 99.4 % against the student (706 -> 4)"
    if "student_cleaned" in present and not removed:
        rows.append({"id": "F7", "claim": f7_claim, "value": None, "ci": None,
                     "verdict": "not computed: the classifier removed no sample, so the cleaned D equals D", "rule": f7_rule, "paper": f7_paper})
    elif "student_cleaned" in present and rem.get("student_on_d"):
        red, (lo, hi) = removal_effect(a["student"], a["student_cleaned"], n_boot, seed)
        add("F7", f7_claim, red, (lo, hi), red is not None and red >= 0.9 and lo > 0, f7_rule, f7_paper, ("student", "student_cleaned"))
        rows[-1]["verdict"] += (f" (removed {removed}; baseline on D {rem['baseline_on_d']}, student on D {rem['student_on_d']}, "
                                f"student on cleaned D {rem['student_on_cleaned_d']}, of which {rem['new_in_cleaned']} new)")
    else:
        add("F7", f7_claim, None, None, False, f7_rule, f7_paper, ("student", "student_cleaned"))
    f8 = ov.get("hard_inherits_teacher_only", 0) - ov.get("student_inherits_teacher_only", 0) if ov else None
    lo, hi = _ci(boot["F8"])
    add("F8", "hard KD inherits more teacher-only samples than soft KD (count difference)", f8, (lo, hi), f8 is not None and lo > 0,
        "95 % CI of the difference > 0", "50 vs 18", ("hard_student", "student", "teacher", "baseline"))
    # How many memorized samples (or validation samples, for F5) each verdict rests on.
    teacher_only = int((a["teacher"] & ~a["baseline"]).sum())
    n_val = len(a["val_student"][0]) if a.get("val_student") else 0
    positives = {"F1": n_student, "F2": int(a["baseline"].sum()), "F3": n_student, "F4": teacher_only, "F5": n_val,
                 "F6": int((classifier or {}).get("n_positives", 0)), "F7": n_student, "F8": teacher_only}
    for r in rows:
        r["positives"] = positives.get(r["id"])
        if r["value"] is not None and r["positives"] is not None and r["positives"] < min_positives:
            r["verdict"] += f" (rests on {r['positives']} < {min_positives} positives)"
    return rows


def rate_rows(con, family: str, dataset: str, n_boot: int, seed: int) -> list[dict]:
    """Rates of the primary models with 95 % CIs; the baseline's CI spans seeds and samples."""
    # join on the model name only: temperature is NULL for most roles, and NULL never equals NULL
    rows = _rows(con, """SELECT r.role || CASE WHEN r.data_variant = 'cleaned' THEN '_cleaned' ELSE '' END AS role, r.model, r.rate, r.memorized, r.n
                         FROM memorization_rates r JOIN models m ON r.model = m.model AND r.family = m.family AND r.dataset = m.dataset
                         WHERE r.split = 'train' AND r.family = ? AND r.dataset = ? AND (m.is_primary OR r.role = 'baseline')
                         ORDER BY 1, 2""", [family, dataset])
    a = _arrays(con, family, dataset)
    rng = np.random.default_rng(seed)
    out = []
    for r in rows:
        key = r["role"]
        if key == "baseline":
            continue
        v = a.get(key)
        draws = [v[rng.integers(0, len(v), len(v))].mean() for _ in range(n_boot)] if v is not None and len(v) else [np.nan]
        lo, hi = _ci(np.asarray(draws))
        out.append({"role": key, "label": r["model"], "rate": r["rate"], "lo": lo, "hi": hi, "memorized": r["memorized"], "n": r["n"]})
    seeds = a["baseline_seeds"]
    if seeds.size:
        boot = bootstrap(a, n_boot, seed)["rate_baseline_seeds"]
        lo, hi = _ci(boot)
        counts = seeds.sum(1).tolist()
        out.append({"role": "baseline", "label": f"baseline ({len(counts)} seeds)", "rate": float(seeds.mean()), "lo": lo, "hi": hi,
                    "memorized": counts, "n": int(seeds.shape[1])})
    order = {"teacher": 0, "baseline": 1, "student": 2, "hard_student": 3, "student_cleaned": 4}
    return sorted(out, key=lambda r: order.get(r["role"], 9))


def connect_ro(path) -> duckdb.DuckDBPyConnection:
    return duckdb.connect(str(path), read_only=True)


def mia_rows(con, family: str, dataset: str) -> list[dict]:
    """The mia_summary view's rows of one (family, dataset); none when membership inference was off."""
    if not _one(con, "SELECT count(*) AS n FROM information_schema.tables WHERE table_name = 'mia_summary'", [])["n"]:
        return []
    return _rows(con, "SELECT * FROM mia_summary WHERE family = ? AND dataset = ?", [family, dataset])


def soft_student_rows(con, family: str, dataset: str) -> list[dict]:
    """Every soft student on the full D, by temperature and loss: memorized samples, how many of them the
    primary student also memorizes, validation loss and, when membership inference ran, its loss-signal AUC."""
    has_mia = bool(_one(con, "SELECT count(*) AS n FROM information_schema.tables WHERE table_name = 'mia'", [])["n"])
    mia = "(SELECT auc FROM mia x WHERE x.family = m.family AND x.dataset = m.dataset AND x.model = m.model AND x.signal = 'loss')"
    return _rows(con, f"""
        WITH mem AS (SELECT s.model, s.sample_id FROM scores s JOIN models m USING (model, family, dataset)
                     WHERE s.exact AND s.split = 'train' AND m.family = ? AND m.dataset = ?),
             prim AS (SELECT mem.sample_id FROM mem JOIN models m USING (model)
                      WHERE m.role = 'student' AND m.is_primary AND m.data_variant = 'full' AND m.family = ? AND m.dataset = ?)
        SELECT m.temperature, m.loss, m.model, m.is_primary, r.memorized, r.rate,
               (SELECT count(*) FROM mem JOIN prim USING (sample_id) WHERE mem.model = m.model) AS shared_with_primary,
               m.val_loss, {mia if has_mia else 'NULL'} AS mia_loss_auc
        FROM models m JOIN memorization_rates r USING (model, family, dataset)
        WHERE m.role = 'student' AND m.data_variant = 'full' AND r.split = 'train' AND m.family = ? AND m.dataset = ?
        ORDER BY m.temperature, m.loss""", [family, dataset] * 3)


def sweep_rows(rows: list[dict], by: str) -> list[dict]:
    """The soft students that differ from the primary one in `by` alone (temperature or loss): a sweep's rows."""
    keep = "loss" if by == "temperature" else "temperature"
    primary = [r[keep] for r in rows if r["is_primary"]]
    return [r for r in rows if primary and r[keep] == primary[0]]
