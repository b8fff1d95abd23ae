"""The report: one self-contained HTML page (inline CSS, figures as base64 PNG, no scripts or
fonts fetched), readable offline. It renders what `kdmem.analysis.analyze` computed (analysis.json)
and computes nothing itself; the paper's values come from kdmem.paper. Findings are never tuned:
where the miniature disagrees with the paper, the verdict says so.
"""

from __future__ import annotations

import base64
import html
import math
from pathlib import Path
from typing import Any

from kdmem import paper
from kdmem.errors import KdmemError
from kdmem.io import atomic_path
from kdmem.layout import Figure, Layout
from kdmem.vocab import BASE_ROLE

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


MIA_SETS = {"val": "validation windows drawn as D is (the primary comparison)",
            "heldout": "windows of held-out documents (a second comparison: these differ from D in topic and make-up)"}


def mia_section(rows: list[dict], by_level: list[dict] | None = None) -> str:
    """Membership inference per non-member set: one row per model, each signal's AUC [95 % CI] and TPR at 1 % FPR,
    the blind (text-only) baseline and the bases' AUC as the 0.5 check; then the loss AUC per exposure level."""
    head = "<h3>Membership inference (beyond the paper)</h3>"
    if not rows:
        return head + "<p class=na>Not run (mia.enabled is off).</p>"
    parts = [head]
    for source in [x for x in MIA_SETS if any(r.get("nonmember_split") == x for r in rows)]:
        sub = [r for r in rows if r.get("nonmember_split") == source]
        by_model: dict[str, dict] = {}
        for r in sub:
            row = by_model.setdefault(r["model"], {"model": r["model"], "role": r.get("label") or r["role"]})
            row[f"{r['signal']} AUC"] = f"{r['auc']:.3f} [{r['auc_lo']:.3f}, {r['auc_hi']:.3f}]"
            tpr = r.get("tpr_at_1pct_fpr")
            row[f"{r['signal']} TPR@FPR<1%"] = "–" if tpr is None or (isinstance(tpr, float) and math.isnan(tpr)) else \
                f"{tpr:.3f} [{r['tpr_lo']:.3f}, {r['tpr_hi']:.3f}]"
        n = sub[0]
        bases = [r for r in sub if r["role"] == BASE_ROLE and r["signal"] == "loss"]
        check = "; ".join(f"{r['model']} {r['auc']:.3f} [{r['auc_lo']:.3f}, {r['auc_hi']:.3f}]" +
                          (" contains 0.5" if r["auc_lo"] <= 0.5 <= r["auc_hi"] else " <b>excludes 0.5: the two sets differ without training</b>")
                          for r in bases)
        blind = ", ".join(f"{r['auc']:.3f} [{r['auc_lo']:.3f}, {r['auc_hi']:.3f}]" for r in sub if r["role"] == "blind") or "–"
        parts.append(f"<h4>Non-members: {n['n_nonmembers']:,} {html.escape(MIA_SETS[source])}; members: {n['n_members']:,} samples of D</h4>")
        parts.append(table(list(by_model.values()), title=f"mia_{source}"))
        parts.append(f"<p>The 0.5 check (the bases never saw D; loss signal): {check or 'bases not scored'}. "
                     f"Blind baseline (no model: a logistic regression on zlib entropy and character shares of the text, out of fold, "
                     f"Das et al. 2024): AUC {blind}.</p>")
    if by_level:
        parts.append("<h4>Loss-signal AUC per exposure level (members of that level against every validation-window non-member)</h4>")
        parts.append(table(by_level, title="mia_by_exposure"))
    parts.append("<p>Signals (higher says member): loss (Yeom et al. 2018), zlib_loss_ratio (−loss / zlib_bytes, Carlini et al. 2021), "
                 "Min-K % Prob and Min-K %++ at k = 20 %, averaging int(k·n) tokens (Shi et al. 2024; Zhang et al. 2025), and the "
                 "reference-model difference with each model's own starting checkpoint as the reference (Carlini et al. 2021). "
                 "Non-members drawn as the members are (Duan et al. 2024): the validation windows come from the same seeded draw over "
                 "the same documents as D, so a base scores 0.5 up to noise. AUC interval: 95 % bootstrap over members and non-members. "
                 "TPR is read at FPR strictly below 1 %, with an exact interval over the members, and only where that admits at "
                 "least 10 non-members (–: too few non-members to set the threshold).</p>")
    return "\n".join(parts)


def families_section(x: dict, layout: Layout) -> str:
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
                 "entropy (our reading of the paper's r = 0.95–0.99), with the Fisher-z 95 % interval over the bins. "
                 "<code>r_exposure_null</code> (mean) and <code>r_exposure_null_hi</code> (95th percentile): the r of two sets "
                 "drawn at random within each exposure level, as many per level as each family memorized; "
                 "<code>p_exposure</code>: the share of those draws whose r is at least the observed one. A p above 0.05 says "
                 "exposure alone gives such a correlation.</p>")
    parts.append(_img(_figure(layout.families_figure(x["dataset"], Figure.COVERAGE)),
                      "Share of each row model's memorized set that the column model also memorizes."))
    return "\n".join(parts)


def _interval(ci) -> str:
    return "–" if not ci or any(v is None or (isinstance(v, float) and math.isnan(v)) for v in ci) else f"[{ci[0]:.4g}, {ci[1]:.4g}]"


def _strata(d: dict) -> str:
    return "; ".join(f"{k}×: {_fmt(v)}" if str(k).isdigit() else f"{k}: {_fmt(v)}" for k, v in (d or {}).items()) or "–"


def findings_table(findings: list[dict]) -> str:
    rows = []
    for f in findings:
        eo = f.get("exposure_only") or {}
        rows.append({"finding": f["id"], "claim": f["claim"], "measured": f["value"], "95 % interval": _interval(f["ci"]),
                     "interval method": f["ci_method"] or "–", "seed placebo": f["placebo"], "placebo is": f["placebo_what"] or "–",
                     "within exposure strata": _strata(f["strata"]),
                     "expected under exposure": eo.get("expected"), "excess [95 %]": (f"{_fmt(eo.get('excess'))} {_interval(eo.get('excess_ci'))}"
                                                                                 if eo else "–"),
                     "p (exposure null)": eo.get("p"),
                     "positives": f.get("positives"), "paper": f["paper"], "verdict": f["verdict"], "why": f["why"], "rule": f["rule"]})
    t = table(rows, title="findings")
    for v, cls in (("reproduced", "ok"), ("not reproduced", "no"), ("inconclusive", "na")):
        t = t.replace(f"<td>{v}</td>", f"<td class={cls}>{v}</td>")
    return t


def nulls_section(findings: list[dict], overlap_nulls: list[dict]) -> str:
    """The set findings' exposure nulls, every reported overlap's, the teacher-seed placebo and F6's content test."""
    parts = ["<h3>Against exposure alone</h3>"]
    rows = [{"quantity": r["quantity"], "observed": r["observed"], "expected under exposure": r["expected"], "excess": r["excess"],
             "excess 95 %": _interval(r["excess_ci"]), "null 95 % range": _interval(r["null_range"]), "p (two-sided)": r["p_two_sided"]}
            for r in overlap_nulls]
    parts.append(table(rows, title="overlap_nulls"))
    parts.append("<p>Each share against a null in which exposure is all there is: the set's labels are permuted among the samples of "
                 "the same exposure level (each sample's seeds kept together; a sample weighs the share of the role's seeds that memorize "
                 "it), and the expected value is that null's exact mean. The excess interval is a bootstrap over documents and seeds. "
                 "A share near 0 or 1 is what exposure gives when memorization is a sharp function of exposure: read the excess.</p>")
    tp = [(f["id"], f.get("teacher_placebo")) for f in findings if f.get("teacher_placebo")]
    if tp:
        parts.append("<h4>Inheritance placebo: the teacher's own samples against another teacher seed's</h4>")
        parts.append(table([{"finding": fid, "own teacher (seed 0)": t["own"], "other teacher seeds": t["other"], "own − other": t["diff"],
                             "95 % interval": _interval(t["diff_ci"]), "own samples": t["n_own"], "other seeds' samples": t["n_other"]}
                            for fid, t in tp], title="teacher_placebo"))
        parts.append("<p>A teacher seed's own samples: memorized by it and by no other teacher seed and no baseline seed. The students "
                     "distil from teacher 0 only, so what they take of the other seeds' own samples is what they would take without "
                     "inheriting anything (F4: the student's share; F8: hard − soft).</p>")
    f6 = next((f for f in findings if f["id"] == "F6"), None)
    ct = (f6 or {}).get("content_test")
    parts.append("<h4>F6's content test: does content predict memorization within exposure levels?</h4>")
    if not ct or ct.get("status") != "ok":
        parts.append(f"<p class=na>Not run: {html.escape((ct or {}).get('message', 'no classifier or features'))}.</p>")
        return "\n".join(parts)
    parts.append(f"<p>Every sample of the levels where the student's rate lies in 5–95 % ({', '.join(map(str, ct['levels']))}× per epoch; "
                 f"{ct['n_samples']} samples; positives per seed {ct['positives_per_seed']}, negatives {ct['negatives_per_seed']}); "
                 f"{ct['n_tests']} tests: the joint test decides the verdict, the drop-one tests are Holm-adjusted.</p>")
    parts.append(table([{"feature": r["feature"], "stratified AUC": r["auc"], "95 % interval": _interval(r["auc_ci"]), "permutation p": r["p"]}
                        for r in ct["features"]], title="content_auc"))
    parts.append(table([{"test": k, "LR": t["lr"], "df": t["df"], "p (chi-square, seed × sample rows)": t["p_chi2"],
                         "p (permutation within levels)": t["p_perm"], "Holm": t.get("p_holm")} for k, t in ct["tests"].items()],
                       title="content_lr"))
    parts.append("<p>Stratified AUC: memorized against not within one level, pooled over levels, averaged over the student's seeds (below "
                 "0.5: a low value goes with memorized); interval: bootstrap over documents; p: the feature permuted within levels. LR: "
                 "memorized ~ level fixed effects + the standardized features, the rows being seed × sample; the chi-square p treats "
                 "those rows as independent, the permutation p (the tested features' rows permuted within levels) does not.</p>")
    return "\n".join(parts)


def gain_section(by_level: list[dict], content: list[dict]) -> str:
    if not by_level:
        return ""
    parts = ["<h3>Memorization gain: the continuous measure (beyond the paper)</h3>",
             table([{"role": r["role"], "exposures per epoch": r["n_exposures"], "samples": r["n"], "seeds": r["seeds"],
                     "calibrated gain (nats/token)": r["gain"], "95 % interval": _interval(r["ci"])} for r in by_level], title="gain_by_level"),
             "<p>Per sample: the suffix log-probability per token under the model minus under the base it started from, less the "
             "model's mean of that on the validation windows (the same documents, never trained on), so the validation row is 0 by "
             "construction and a training level's value is what training on the sample added. Interval: bootstrap over documents "
             "and seeds. Exact match is blind below the exposure a model needs to reproduce a suffix; this measure is not.</p>"]
    if content:
        parts.append("<h4>Content on the once-seen samples: does a feature move the gain more where the model trained?</h4>")
        parts.append(table([{"role": r["role"], "feature": r["feature"], "slope, trained": r["slope_trained"], "slope, untrained": r["slope_untrained"],
                             "difference": r["difference"], "95 % interval": _interval(r["ci"]), "p": r["p"]} for r in content],
                           title="gain_content"))
        parts.append("<p>Slope of the gain on the standardized feature among the once-seen training windows and among the validation "
                     "windows; their difference is the feature's effect on memorization net of its effect on any fine-tune's gain. "
                     "Interval and two-sided p: bootstrap over documents (a document brings both its kinds of window) and seeds.</p>")
    return "\n".join(parts)


def classifier_section(c: dict) -> str:
    parts = ["<h3>Classifier</h3>"]
    if c.get("status") != "ok":
        return parts[0] + f"<p class=no>Classifier not fitted: {html.escape(c.get('message', 'no classifier output'))}</p>"
    for name, p in c["protocols"].items():
        label = {"paper": "paper protocol (random negatives, 1:3)", "exposure_matched": "exposure-matched negatives"}[name]
        if p.get("status") != "ok":
            parts.append(f"<p class=na>{html.escape(label)}: {html.escape(p.get('message', 'not run'))}</p>")
            continue
        rows = [{"features": "all four", "AUC": p["all"]["auc"], "95 % trial interval": _interval(p["all"]["ci"]),
                 "precision": p["all"]["precision"], "recall": p["all"]["recall"]}]
        for f in p["single"]:
            rows.append({"features": f"only {f}", "AUC": p["single"][f]["auc"], "95 % trial interval": _interval(p["single"][f]["ci"])})
        for f in p["drop_one"]:
            rows.append({"features": f"all but {f}", "AUC": p["drop_one"][f]["auc"], "95 % trial interval": _interval(p["drop_one"][f]["ci"])})
        for f, v in p["permutation"].items():
            rows.append({"features": f"permutation importance of {f} (AUC lost)", "AUC": v["mean"], "95 % trial interval": _interval(v["ci"])})
        parts.append(f"<h4>{html.escape(label)}: C = {p['C']:.4g} (5-fold CV AUC), {p['n_negatives_per_trial']} negatives per trial</h4>")
        parts.append(table(rows, title=f"classifier_{name}"))
    d = c["on_all_of_d"]
    parts.append(f"<p>Label-shuffled placebo AUC: {_fmt(c.get('placebo_auc'))}. The predicted set on all of D: {d['n_predicted']} samples, "
                 f"precision {_fmt(d['precision'])} {_interval(d['precision_ci'])}, recall {_fmt(d['recall'])} {_interval(d['recall_ci'])} "
                 "(exact intervals; the trial precision above is on rebalanced test splits).</p>")
    parts.append(table([{"n_exposures": k, "in D": d["d_by_exposure"][k], "predicted": v} for k, v in d["predicted_by_exposure"].items()],
                       title="classifier_predicted_by_exposure"))
    parts.append(table(c["coefficients"], title="coefficients"))
    parts.append(f"<p>Paper (Pythia/FineWeb): {html.escape(paper.CLASSIFIER)}. Standardized coefficients are shown for completeness "
                 "only: where the classes nearly separate they are not identified (they move with C), so which feature matters is read "
                 "from the single-feature, drop-one and permutation rows.</p>")
    return "\n".join(parts)


def exposure_section(expo: dict) -> str:
    rows = [{"role": role, "slope (per log exposure)": c.get("slope"), "E50 (exposures per epoch)": c.get("e50"),
             "E50 95 % interval": _interval(c.get("e50_ci")),
             "rate by exposure": "; ".join(f"{p['n_exposures']}×: {p['memorized']}/{p.get('seeds', 1)}×{p['n']}" for p in c["points"])}
            for role, c in expo.items()]
    return ("<h3>Exposure-response</h3>" + table(rows, title="exposure_response") +
            "<p>Per role, a logistic fit of memorized on log(exposures per epoch), every seed pooled; E50 is the exposure at which half "
            "the samples are memorized (bootstrap over documents). Roles compared on the same samples share their exposure distribution, "
            "so a rate difference between them is a shift of this curve; a missing E50 means no rising fit.</p>")


def power_section(rows: list[dict], need: int = 25) -> str:
    if not rows:
        return ""
    out = [{"role": r["role"], "seed": r["seed_index"], "transition levels (5-95 % newly memorized)": ", ".join(map(str, r["transition_levels"])) or "none",
            "newly memorized there": r["newly_in_transition"], f"≥ {need}": r["newly_in_transition"] >= need,
            "newly memorized, all of D": r["newly_memorized"],
            "once-seen memorized (newly)": f"{r['once_seen_memorized']} ({r['once_seen_newly']}) of {r['once_seen_n']}"} for r in rows]
    return ("<h3>Power: where content can decide</h3>" + table(out, title="power") +
            "<p>Per trained model (seed index in the role's seed order): the exposure levels where its rate of newly memorized samples "
            "(memorized, and not by its own base) lies between 5 % and 95 %, i.e. where exposure alone does not decide, and how many "
            f"newly memorized samples they hold: the samples on which content can show an effect. The default's design asks for ≥ {need} "
            "per model (reports/regime.md). The once-seen column counts samples memorized after a single exposure per epoch.</p>")


def removal_section(rem: dict) -> str:
    parts = ["<h3>Removal experiment</h3>"]
    if not rem:
        return parts[0] + "<p class=na>No removal experiment in this run.</p>"
    parts.append(table([{k: v for k, v in rem.items() if k not in ("by_exposure", "family", "dataset")}], title="removal"))
    if rem.get("by_exposure"):
        parts.append(table(rem["by_exposure"], title="removal_by_exposure"))
    parts.append("<p>The cleaned student trained on D minus the classifier's predicted set; it is compared with the student on D "
                 "on the retained samples (<code>student_on_retained</code> vs <code>cleaned_on_retained</code>), since a removed "
                 "sample is not forgotten by a student that never saw it. <code>new_in_cleaned</code>: memorized by the cleaned student "
                 f"and not by the student on D (the “privacy onion”), exact interval of its rate over the retained samples "
                 f"{_interval(rem.get('new_in_cleaned_rate_ci'))}. Paper: {html.escape(paper.REMOVAL)}.</p>")
    return "\n".join(parts)


def _figure(path: str) -> Path:
    """A figure analyze says it drew: missing, the report would silently lose it, so it stops instead."""
    if not Path(path).is_file():
        raise KdmemError(f"figure {path} is missing though analysis.json lists it; rerun 'kdmem analyze'")
    return Path(path)


# Each figure kind's caption, in the order the report shows them.
CAPTIONS = {Figure.RATES: "Memorization rate per role; 95 % intervals (exact for one model, clustered bootstrap over seeds).",
            Figure.EXPOSURE: "Exposure-response per role: rates with exact intervals and logistic fits.",
            Figure.VENN: "Teacher / baseline / student memorized sets.",
            Figure.ENTROPY: "Entropy vs suffix log-prob on teacher∩baseline∖student, per role.",
            Figure.TEMPERATURE: "Soft students by temperature: memorized, validation loss, MIA AUC.",
            Figure.LOSS: "Soft students by KD loss: memorized, validation loss, MIA AUC."}


def render(result: dict, layout: Layout, out: str | Path, roc: dict[tuple[str, str], Path] | None = None) -> None:
    """The report of analysis.json (`result`), with the figures it lists read from the layout's paths."""
    parts = [f"<!doctype html><html><head><meta charset=utf-8><title>kdmem report</title><style>{CSS}</style></head><body>",
             "<h1>kdmem: memorization in knowledge distillation</h1>",
             "<p>Reproduction of Borkar et al. (2026), arXiv 2601.15394, on the configured study. Paper values are Pythia-12B → 1.4B "
             "on FineWeb unless noted. Rates are exact discoverable memorization on every training sample. Each finding carries an "
             "interval, a seed placebo (the same statistic between two seeds of one role) and its value within exposure strata; it is "
             "<b>reproduced</b> only if its interval lies on the paper's side, beyond the placebo, and beyond what exposure alone gives "
             "(for a set finding: the excess over a permutation null within exposure levels significant in the paper's direction), "
             "<b>not reproduced</b> if the interval lies on the other side, and <b>inconclusive</b> otherwise. Proportions count "
             "distinct samples (a sample weighs the share of a role's seeds that memorize it), never seed × sample pairs.</p>"]
    for p in result["pairs"]:
        fam, ds = p["family"], p["dataset"]
        parts.append(f"<h2>{html.escape(fam)} / {html.escape(ds)}</h2>")
        parts.append("<h3>Findings</h3>")
        parts.append(findings_table(p["findings"]))
        parts.append("<h3>Figures</h3>")
        for kind, cap in CAPTIONS.items():
            if kind in p["figures"]:
                parts.append(_img(_figure(layout.figure(fam, ds, kind)), cap))
        if roc and (fam, ds) in roc and Path(roc[(fam, ds)]).is_file():
            parts.append(_img(Path(roc[(fam, ds)]), "Classifier ROC over trials (paper protocol)."))
        parts.append("<h3>Memorization rate per role (train split)</h3>")
        rrows = [{"role": r["role"], "seeds": r["seeds"], "memorized": r["memorized"], "newly memorized (not by its base)": r["newly_memorized"],
                  "n": r["n"], "rate %": 100 * r["rate"], "95 % interval %": (100 * r["lo"], 100 * r["hi"]), "interval method": r["ci_method"],
                  "(n, p)-extractable": r.get("extractable"), "extractable 95 % interval %": tuple(100 * v for v in r["extractable_ci"])
                  if r.get("extractable_ci") else None, "paper %": paper.RATES.get(r["role"])} for r in p["rates"]]
        parts.append(table(rrows, title="rates"))
        parts.append("<p>Exact discoverable memorization (greedy suffix equals the truth) per role, every seed; <i>newly memorized</i> "
                     "leaves out what the role's own base already reproduces (the base-model control); <i>(n, p)-extractable</i>: the "
                     "suffix comes out at least once in n sampled continuations with probability ≥ p (Hayes et al. 2024; "
                     "<code>memorization.extraction</code>).</p>")
        parts.append(exposure_section(p.get("exposure") or {}))
        parts.append(nulls_section(p["findings"], p.get("overlap_nulls") or []))
        parts.append(gain_section(p.get("gain_by_level") or [], p.get("gain_once_seen_content") or []))
        parts.append(power_section(p.get("power") or []))
        parts.append("<h3>Overlaps and inheritance</h3>")
        ov = p["overlaps"]
        parts.append(table([{"quantity": paper.OVERLAPS.get(k, (k, None))[0], "ours": v, "paper": paper.OVERLAPS.get(k, (k, None))[1]}
                            for k, v in ov.items() if k not in ("family", "dataset")], title="overlaps"))
        parts.append("<p>“Baseline” in teacher ∩ baseline and teacher-only means any baseline seed.</p>")
        parts.append("<h3>Entropy vs log-probability (teacher∩baseline, not student)</h3>")
        parts.append(table(p["entropy_vs_logprob"], title="entropy_vs_logprob"))
        parts.append("<p>Paper: teacher low entropy / high log-prob; baseline high entropy and high log-prob; student high entropy, low log-prob.</p>")
        parts.append(classifier_section(p["classifier"]))
        parts.append(removal_section(p["removal"]))
        parts.append(mia_section(p.get("mia") or [], p.get("mia_by_exposure")))
        for by, key in SWEEPS.items():
            rows = p.get("sweeps", {}).get(by) or []
            if len(rows) > 1:
                parts.append(f"<h3>Soft students by {by} (beyond the paper)</h3>")
                parts.append(table(rows, title=f"{by}s"))
                parts.append(f"<p>The overlaps, classifier and removal use the student at <code>analysis.{key}</code> "
                             "(<code>is_primary</code>). <code>shared_with_primary</code>: how many of a student's memorized "
                             "samples the primary student memorizes too.</p>")
    for x in result.get("across_families", []):
        parts.append(families_section(x, layout))
    parts.append("<h2>Utility (validation loss / perplexity)</h2>")
    parts.append(table([{k: v for k, v in r.items() if k != "sort_key"} for r in result["utility"]], title="utility"))
    parts.append("<p>Validation loss in nats per token over every position of the held-out samples. Rows: the unigram "
                 "reference (a unigram model of the reference tokens, add-one smoothed: a base below it by a wide margin is a "
                 "language model), the two base checkpoints every role starts from, then every trained model. "
                 "<code>cache_mean_tail_mass</code>: for a soft student of a top-k cache, the share of the teacher's distribution "
                 "at T that the cache left out, averaged over positions (empty for the full, sampled and dense kinds, which leave "
                 f"nothing out or estimate it without bias). <code>val_change</code> and <code>heldout_change</code>: the "
                 "model's loss minus its own base's on the same validation windows and held-out documents, both from the scores "
                 "(negative: better than where it started; the utility condition asks ≤ 0 on validation windows). "
                 f"Paper (Pythia/FineWeb): {html.escape(paper.UTILITY)}; each fine-tune improves on its base.</p>")
    parts.append("<h2>All rates (per model and split)</h2>")
    parts.append(table(result["rates_all"], title="rates_all"))
    parts.append("</body></html>")
    with atomic_path(out) as tmp:
        tmp.write_text("\n".join(parts))
