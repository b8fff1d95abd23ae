"""Matplotlib figures of the report (PNG, Agg backend: no display needed)."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from kdmem.io import atomic_path  # noqa: E402
from kdmem.vocab import Label  # noqa: E402

ROLE_COLORS = {Label.TEACHER: "#1f77b4", Label.BASELINE: "#ff7f0e", Label.STUDENT: "#2ca02c", Label.HARD_STUDENT: "#9467bd",
               Label.STUDENT_CLEANED: "#8c564b", Label.BASELINE_ONCE: "#e377c2", Label.BASE_LARGE: "#7f7f7f", Label.BASE_SMALL: "#bcbd22"}


def _save(fig, out: str | Path) -> None:
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)


def roc(curves: list[dict], auc: float | None, status: str, out: str | Path) -> None:
    fig, ax = plt.subplots(figsize=(4.2, 4))
    for c in curves:
        ax.plot(c["fpr"], c["tpr"], color="#2ca02c", alpha=0.25, lw=1)
    ax.plot([0, 1], [0, 1], "k--", lw=0.8)
    title = f"ROC over trials (mean AUC {auc:.3f})" if status == "ok" and auc is not None else "ROC: too few positives"
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title=title)
    _save(fig, out)


def rates(rows: list[dict], out: str | Path) -> None:
    """Memorization rate per role; error bars are 95 % intervals (exact for one model, clustered bootstrap for several seeds)."""
    fig, ax = plt.subplots(figsize=(6, 3.6))
    names = [f"{r['role']} ({r['seeds']} seed{'s' if r['seeds'] > 1 else ''})" for r in rows]
    vals = [100 * r["rate"] for r in rows]
    err = [[100 * (r["rate"] - r["lo"]) for r in rows], [100 * (r["hi"] - r["rate"]) for r in rows]]
    ax.bar(names, vals, yerr=err, capsize=4, color=[ROLE_COLORS.get(r["role"], "grey") for r in rows])
    ax.set(ylabel="memorized (% of D)", title="Exact memorization rate per role")
    ax.tick_params(axis="x", rotation=20)
    _save(fig, out)


def venn(sets: dict[str, int], out: str | Path) -> None:
    """Teacher / baseline / student overlap as a 3-set Venn diagram of region counts."""
    from matplotlib.patches import Circle

    fig, ax = plt.subplots(figsize=(5, 4.4))
    centers = {Label.TEACHER: (0.38, 0.58), Label.BASELINE: (0.62, 0.58), Label.STUDENT: (0.5, 0.36)}
    for name, (x, y) in centers.items():
        ax.add_patch(Circle((x, y), 0.24, alpha=0.25, color=ROLE_COLORS[name], label=name))
        ax.text(x + (x - 0.5) * 1.25, y + (y - 0.5) * 1.3, name, ha="center", fontsize=10, weight="bold")
    pos = {"T": (0.27, 0.66), "B": (0.73, 0.66), "S": (0.5, 0.2), "TB": (0.5, 0.7), "TS": (0.36, 0.4), "BS": (0.64, 0.4), "TBS": (0.5, 0.5)}
    for region, (x, y) in pos.items():
        ax.text(x, y, str(sets.get(region, 0)), ha="center", va="center", fontsize=11)
    ax.set(xlim=(0, 1), ylim=(0, 1), aspect="equal", title="Memorized sets (counts per region)")
    ax.axis("off")
    _save(fig, out)


def entropy_logprob(points: dict[str, tuple[list[float], list[float]]], out: str | Path) -> None:
    fig, ax = plt.subplots(figsize=(5, 4))
    for role, (ent, lp) in points.items():
        ax.scatter(lp, ent, s=14, alpha=0.6, label=role, color=ROLE_COLORS.get(role, "grey"))
    ax.set(xlabel="suffix log-probability (sum, nats)", ylabel="mean entropy over suffix (nats)",
           title="Teacher∩baseline, not student: entropy vs log-prob")
    ax.legend(fontsize=8)
    _save(fig, out)


def exposure_curve(curves: dict[str, dict], out: str | Path) -> None:
    """Exposure-response per role: measured rates with exact intervals, and the logistic fit in log(exposures)."""
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for role, c in curves.items():
        x = [p["n_exposures"] for p in c["points"]]
        y = [100 * p["rate"] for p in c["points"]]
        err = [[100 * (p["rate"] - p["ci"][0]) for p in c["points"]], [100 * (p["ci"][1] - p["rate"]) for p in c["points"]]]
        color = ROLE_COLORS.get(role, "grey")
        ax.errorbar(x, y, yerr=err, fmt="o", ms=4, capsize=2, color=color, label=role)
        if c.get("slope") is not None and len(x) > 1:
            grid = np.exp(np.linspace(np.log(min(x)), np.log(max(x)), 100))
            ax.plot(grid, 100 / (1 + np.exp(-(c["intercept"] + c["slope"] * np.log(grid)))), color=color, lw=1, alpha=0.7)
    ax.set(xscale="log", xlabel="exposures per epoch (n_exposures)", ylabel="memorized (%)", title="Exposure-response, logistic fits")
    ax.legend(fontsize=7)
    _save(fig, out)


def soft_sweep(rows: list[dict], by: str, out: str | Path) -> None:
    """The soft students against their distillation temperature or loss: memorized samples, validation loss, MIA AUC."""
    x = [r[by] for r in rows]
    pos = x if by == "temperature" else list(range(len(x)))  # temperatures on a log axis, losses as categories
    panels = [("memorized", "memorized training samples"), ("val_loss", "validation loss (nats)"), ("mia_loss_auc", "MIA ROC-AUC (loss)")]
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.2))
    for ax, (key, label) in zip(axes, panels, strict=True):
        ax.plot(pos, [r.get(key) if r.get(key) is not None else float("nan") for r in rows], "o-", color=ROLE_COLORS[Label.STUDENT])
        ax.set(xscale="log" if by == "temperature" else "linear", xlabel="temperature T" if by == "temperature" else "KD loss", ylabel=label)
        ax.set_xticks(pos, [f"{v:g}" if by == "temperature" else v for v in x])
    fig.suptitle(f"Soft students by distillation {by}")
    _save(fig, out)


def coverage(overlaps: list[dict], out: str | Path) -> None:
    """A heatmap of set coverage: cell (row a, column b) is the share of a's memorized samples b memorizes too."""
    names = sorted({r["a"] for r in overlaps} | {r["b"] for r in overlaps})
    m = np.full((len(names), len(names)), np.nan)
    for r in overlaps:
        i, j = names.index(r["a"]), names.index(r["b"])
        m[i, j] = r["share_of_a_in_b"] if r["share_of_a_in_b"] is not None else np.nan
        m[j, i] = r["share_of_b_in_a"] if r["share_of_b_in_a"] is not None else np.nan
    np.fill_diagonal(m, 1.0)
    fig, ax = plt.subplots(figsize=(1.2 + 0.9 * len(names), 1 + 0.8 * len(names)))
    im = ax.imshow(m, vmin=0, vmax=1, cmap="viridis")
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(len(names)), names, fontsize=8)
    for (i, j), v in np.ndenumerate(m):
        if not np.isnan(v):
            ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7, color="white" if v < 0.6 else "black")
    fig.colorbar(im, ax=ax, label="share of row's set also memorized by column")
    ax.set_title("Memorized-set coverage across families and sizes")
    _save(fig, out)
