"""The report: one self-contained HTML page (inline CSS, figures as base64 PNG, no scripts or
fonts fetched), readable offline. It recomputes the paper's tables from the DuckDB store and puts
the paper's value beside ours wherever one exists. Findings are never tuned: where the miniature
disagrees with the paper, the verdict says so.
"""

from __future__ import annotations

import base64
import html
import math
from pathlib import Path
from typing import Any

from kdmem import analysis, families, figures
from kdmem.io import atomic_path, write_json

SWEEPS = {"temperature": "primary_temperature", "loss": "primary_loss"}  # what a soft-student sweep varies, and the key naming the primary

CSS = """body{font-family:Helvetica,Arial,sans-serif;max-width:1100px;margin:2em auto;color:#222;line-height:1.4}
table{border-collapse:collapse;margin:.6em 0 1.4em}td,th{border:1px solid #bbb;padding:3px 8px;font-size:13px;text-align:right}
th{background:#eee}td:first-child,th:first-child{text-align:left}.ok{color:#176317;font-weight:bold}.no{color:#a11;font-weight:bold}
.na{color:#777}figure{display:inline-block;margin:0 1em 1em 0}figcaption{font-size:12px;color:#555;max-width:520px}
code{background:#f4f4f4;padding:0 3px}"""


def _fmt(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        if math.isnan(v):
            return "–"
        return f"{v:.4g}"
    if isinstance(v, list | tuple):
        return ", ".join(_fmt(x) for x in v)
    return html.escape(str(v))


def table(rows: list[dict], cols: list[str] | None = None, title: str = "") -> str:
    if not rows:
        return f"<p class=na data-title='{html.escape(title)}'>{html.escape(title)}: no rows (the set is empty).</p>"
    cols = cols or list(rows[0])
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    body = "".join("<tr>" + "".join(f"<td>{_fmt(r.get(c))}</td>" for c in cols) + "</tr>" for r in rows)
    return f"<table data-title='{html.escape(title)}'><tr>{head}</tr>{body}</table>"


def _img(path: Path, caption: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    return f"<figure><img alt='{html.escape(caption)}' src='data:image/png;base64,{data}' width=480><figcaption>{html.escape(caption)}</figcaption></figure>"


def analyze(db: str | Path, classifiers: dict[tuple[str, str], dict], out_dir: str | Path, n_boot: int, seed: int,
            min_positives: int = 25) -> dict:
    """Every analysis per (family, dataset) into analysis.json and figures in out_dir."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    con = analysis.connect_ro(db)
    result: dict[str, Any] = {"pairs": []}
    for family, dataset in analysis.pairs(con):
        tag = f"{family}-{dataset}"
        clf = classifiers.get((family, dataset))
        rates = analysis.rate_rows(con, family, dataset, n_boot, seed)
        ent_rows, points = analysis.entropy_vs_logprob(con, family, dataset)
        expo = analysis.exposure_curve(con, family, dataset)
        figures.rates(rates, out_dir / f"{tag}-rates.png")
        figures.venn(analysis.venn_regions(con, family, dataset), out_dir / f"{tag}-venn.png")
        figures.entropy_logprob(points, out_dir / f"{tag}-entropy.png")
        figures.exposure_curve(expo, out_dir / f"{tag}-exposure.png")
        soft = analysis.soft_student_rows(con, family, dataset)
        sweeps = {by: analysis.sweep_rows(soft, by) for by in SWEEPS}
        for by, rows in sweeps.items():
            if len(rows) > 1:
                figures.soft_sweep(rows, by, out_dir / f"{tag}-{by}.png")
        result["pairs"].append({
            "family": family, "dataset": dataset, "rates": rates, "overlaps": analysis.overlaps(con, family, dataset),
            "entropy_vs_logprob": ent_rows, "exposure": {k: {"n_exposures": v[0], "rate": v[1]} for k, v in expo.items()},
            "findings": analysis.findings(con, family, dataset, clf, n_boot, seed, min_positives),
            "removal": analysis._one(con, "SELECT * FROM removal WHERE family = ? AND dataset = ?", [family, dataset]),
            "classifier": {k: v for k, v in (clf or {}).items() if k != "model"},
            "roles_present": sorted(analysis.roles_present(con, family, dataset)),
            "mia": analysis.mia_rows(con, family, dataset),
            "soft_students": soft,
            "sweeps": sweeps,
        })
    result["across_families"] = families.across_families(con, n_boot, seed)
    for x in result["across_families"]:
        figures.coverage(x["overlaps"], out_dir / f"families-{x['dataset']}-coverage.png")
    result["rates_all"] = analysis._rows(con, "SELECT * FROM memorization_rates", [])
    result["utility"] = analysis._rows(con, "SELECT * FROM utility", [])
    con.close()
    write_json(result, out_dir / "analysis.json")
    return result


def mia_section(rows: list[dict]) -> str:
    """Membership inference per model: one row per model, each signal's AUC [95 % CI] and TPR at 1 % FPR."""
    head = "<h3>Membership inference (beyond the paper)</h3>"
    if not rows:
        return head + "<p class=na>Not run (mia.enabled is off).</p>"
    by_model: dict[str, dict] = {}
    for r in rows:
        label = r["role"] + ("_cleaned" if r["data_variant"] == "cleaned" else "")
        row = by_model.setdefault(r["model"], {"model": r["model"], "role": label})
        row[f"{r['signal']} AUC"] = f"{r['auc']:.3f} [{r['auc_lo']:.3f}, {r['auc_hi']:.3f}]"
        row[f"{r['signal']} TPR@1%FPR"] = f"{r['tpr_at_1pct_fpr']:.3f} [{r['tpr_lo']:.3f}, {r['tpr_hi']:.3f}]"
    n = rows[0]
    return (head + table(list(by_model.values()), title="mia") +
            f"<p>Members: {n['n_members']:,} training samples of D; non-members: {n['n_nonmembers']:,} validation samples. "
            "Signals (higher says member): loss (Yeom et al. 2018), zlib ratio (Carlini et al. 2021), Min-K % Prob and Min-K %++ "
            "at k = 20 % (Shi et al. 2024; Zhang et al. 2025), and the reference-model difference with the small base as the "
            "reference (Carlini et al. 2021). AUC 0.5 is chance. Intervals: 95 % bootstrap over members and non-members. "
            "The question the paper's privacy motivation asks: does the student leak its training data less than the baseline?</p>")


def families_section(x: dict, fig_dir: Path) -> str:
    """Across families on one dataset: the memorized sets' overlaps (hierarchy and disjointness) and zlib-profile correlations."""
    ds = html.escape(x["dataset"])
    parts = [f"<h2>Across families on {ds} (beyond the paper)</h2>",
             f"<p>Families: {html.escape(', '.join(x['families']))}. Primary models only (teacher, first baseline seed, the "
             "primary soft student, the hard student).</p>"]
    if not x["comparable"]:
        parts.append("<p class=no>The families cut different samples (different tokenizers), so their sets cannot be matched "
                     "sample by sample: the cross-family overlaps below are not meaningful; the zlib correlations are.</p>")
    parts.append("<h3>Memorized-set overlaps</h3>")
    parts.append(table(x["overlaps"], title="family_overlaps"))
    parts.append("<p><code>share_of_a_in_b</code>: the share of a's memorized samples that b memorizes too. Within a family, "
                 "teacher vs baseline is the size hierarchy (paper: the 12B teacher covers about 80 % of the 1.4B baseline's set); "
                 "across families the paper finds the sets disjoint.</p>")
    parts.append("<h3>zlib-entropy profiles of the memorized samples</h3>")
    parts.append(table(x["zlib"], title="family_zlib"))
    parts.append("<p><code>r</code>: Pearson correlation of two families' memorized sets' shares in ten equal-mass bins of D's zlib "
                 "entropy, with a 95 % bootstrap CI over each set's members (our reading of the paper's r = 0.95–0.99).</p>")
    fig = fig_dir / f"families-{x['dataset']}-coverage.png"
    if fig.is_file():
        parts.append(_img(fig, "Share of each row model's memorized set that the column model also memorizes."))
    return "\n".join(parts)


def render(result: dict, fig_dir: str | Path, out: str | Path, roc: dict[tuple[str, str], Path] | None = None) -> None:
    fig_dir = Path(fig_dir)
    parts = [f"<!doctype html><html><head><meta charset=utf-8><title>kdmem report</title><style>{CSS}</style></head><body>",
             "<h1>kdmem: memorization in knowledge distillation</h1>",
             "<p>Reproduction of Borkar et al. (2026), arXiv 2601.15394, on the configured study. Paper values are Pythia-12B → 1.4B "
             "on FineWeb unless noted. Rates are exact discoverable memorization on every training sample.</p>"]
    for p in result["pairs"]:
        fam, ds = p["family"], p["dataset"]
        tag = f"{fam}-{ds}"
        parts.append(f"<h2>{html.escape(fam)} / {html.escape(ds)}</h2>")
        parts.append("<h3>Findings</h3>")
        frows = [{"finding": f["id"], "claim": f["claim"], "measured": f["value"], "95 % CI": f["ci"], "positives": f.get("positives"),
                  "paper": f["paper"], "verdict": f["verdict"], "rule": f["rule"]} for f in p["findings"]]
        ft = table(frows, title="findings")
        ft = ft.replace("<td>reproduced</td>", "<td class=ok>reproduced</td>").replace("<td>not reproduced</td>", "<td class=no>not reproduced</td>")
        parts.append(ft)
        parts.append("<h3>Memorization rate per role (train split)</h3>")
        rrows = [{"role": r["role"], "model": r["label"], "memorized": r["memorized"], "n": r["n"], "rate %": 100 * r["rate"],
                  "95 % CI %": (100 * r["lo"], 100 * r["hi"]), "paper %": analysis.PAPER_RATES.get(r["role"])} for r in p["rates"]]
        parts.append(table(rrows, title="rates"))
        parts.append("<h3>Overlaps and inheritance</h3>")
        ov = p["overlaps"]
        paper_ov = {"student_in_teacher_and_baseline": "676 of 706", "share_student_in_teacher_and_baseline": "95.7 %",
                    "teacher_only": "1,955", "student_inherits_teacher_only": "18", "share_teacher_only_inherited": "0.9 %",
                    "teacher_and_baseline_not_student": "696", "baseline_all_seeds_student_none": "494",
                    "teacher_coverage_of_baseline": "~80 %", "hard_inherits_teacher_only": "50",
                    "share_hard_in_teacher_and_baseline": "~90 %", "share_soft_also_hard": "~70 %"}
        parts.append(table([{"quantity": k, "ours": v, "paper": paper_ov.get(k)} for k, v in ov.items() if k not in ("family", "dataset")], title="overlaps"))
        parts.append("<h3>Entropy vs log-probability (teacher∩baseline, not student)</h3>")
        parts.append(table(p["entropy_vs_logprob"], title="entropy_vs_logprob"))
        parts.append("<p>Paper: teacher low entropy / high log-prob; baseline high entropy and high log-prob; student high entropy, low log-prob.</p>")
        parts.append("<h3>Classifier</h3>")
        c = p["classifier"]
        if c.get("status") == "ok":
            parts.append(table([{"metric": m, "mean": c[f"{m}_mean"], "sd over trials": c[f"{m}_std"]} for m in ("auc", "precision", "recall")], title="classifier"))
            if "auc_p2.5" in c:
                parts.append(f"<p>Trial AUCs ({c['n_positives']} positives, {len(c.get('trial_aucs', []))} trials): 2.5–97.5 percentile "
                             f"{c['auc_p2.5']:.4f}–{c['auc_p97.5']:.4f}.</p>")
            parts.append(table(c["coefficients"], title="coefficients"))
            parts.append("<p>Paper (Pythia/FineWeb): AUC 0.9997 ± 0.0005, precision 0.992, recall 1.0; coefficients teacher ppl −0.33, baseline ppl −0.40, zlib −4.50, KL −1.06.</p>")
        else:
            parts.append(f"<p class=no>Classifier not fitted: {html.escape(c.get('message', 'no classifier output'))}</p>")
        parts.append("<h3>Removal experiment</h3>")
        parts.append(table([p["removal"]] if p["removal"] else [], title="removal"))
        parts.append("<p>Three rows, as the paper frames it: baseline on D, student on D, student on the cleaned D (D minus the "
                     "classifier's predicted-memorized samples), and how many of the cleaned student's memorized samples are new. "
                     "The removal's own effect (F7) is the student on D against the student on the cleaned D. "
                     "Paper: baseline 1,698 on D; student on cleaned D 4, all new (the “privacy onion”).</p>")
        parts.append(mia_section(p.get("mia") or []))
        for by, key in SWEEPS.items():
            rows = p.get("sweeps", {}).get(by) or []
            if len(rows) > 1:
                parts.append(f"<h3>Soft students by {by} (beyond the paper)</h3>")
                parts.append(table(rows, title=f"{by}s"))
                parts.append(f"<p>The overlaps, classifier and removal use the student at <code>analysis.{key}</code> "
                             "(<code>is_primary</code>). <code>shared_with_primary</code>: how many of a student's memorized "
                             "samples the primary student memorizes too.</p>")
        figs = [(f"{tag}-rates.png", "Memorization rate per role; 95 % bootstrap CIs (baseline: over seeds and samples)."),
                (f"{tag}-venn.png", "Teacher / baseline / student memorized sets."),
                (f"{tag}-entropy.png", "Entropy vs suffix log-prob on teacher∩baseline∖student, per role."),
                (f"{tag}-exposure.png", "Memorization vs n_exposures per epoch."),
                (f"{tag}-temperature.png", "Soft students by temperature: memorized, validation loss, MIA AUC."),
                (f"{tag}-loss.png", "Soft students by KD loss: memorized, validation loss, MIA AUC.")]
        parts.append("<h3>Figures</h3>")
        for name, cap in figs:
            if (fig_dir / name).is_file():
                parts.append(_img(fig_dir / name, cap))
        if roc and (fam, ds) in roc and Path(roc[(fam, ds)]).is_file():
            parts.append(_img(Path(roc[(fam, ds)]), "Classifier ROC over trials."))
    for x in result.get("across_families", []):
        parts.append(families_section(x, fig_dir))
    parts.append("<h2>Utility (validation loss / perplexity)</h2>")
    parts.append(table([{k: v for k, v in r.items() if k != "sort_key"} for r in result["utility"]], title="utility"))
    parts.append("<p>Validation loss in nats per token over every position of the held-out samples. Rows: the unigram "
                 "reference (a unigram model of the reference tokens, add-one smoothed: a base below it by a wide margin is a "
                 "language model), the two base checkpoints every role starts from, then every trained model. "
                 "<code>cache_mean_tail_mass</code>: for each soft student, the share of the teacher's distribution at T that "
                 "its top-k cache left out, averaged over positions. "
                 "Paper (Pythia/FineWeb): teacher 2.75 / 15.66, baseline 2.87 / 17.69, student 2.85 / 17.31; "
                 "each fine-tune improves on its base.</p>")
    parts.append("<h2>All rates (per model and split)</h2>")
    parts.append(table(result["rates_all"], title="rates_all"))
    parts.append("</body></html>")
    with atomic_path(out) as tmp:
        tmp.write_text("\n".join(parts))

