"""The continuous memorization measure (docs/protocol.md "Memorization gain"): what exact match cannot see.

A small model reproduces a suffix exactly only after many exposures, yet a sample seen once per epoch can
still be partly memorized. Per sample and model, the gain is the suffix log-probability per token under the
model minus that under the base it started from (nats per token; the view memorization_gain), and the
calibrated gain subtracts the model's mean gain on the validation windows: windows of D's own documents that
the model never trained on, so calibrated 0 is "no more than fine-tuning on these documents gives unseen text".

Two analyses, both with intervals from a bootstrap over documents (a drawn document brings its training and
its validation windows) and over each role's seeds:
- by_level: the calibrated gain per role and exposure level;
- once_seen_content: on the once-seen training windows against the validation windows, does a feature of the
  text (zlib entropy, the base's loss, the natural near-copy count) move the gain more where the model trained?
  The statistic is the slope of the gain on the standardized feature among trained windows minus that among
  untrained ones: a content effect on memorization, net of what the feature does to any fine-tune's gain.
"""

from __future__ import annotations

import numpy as np

from kdmem import stats
from kdmem.roster import ModelSpec
from kdmem.vocab import Role, Size

CONTENT_FEATURES = ("zlib_bytes", "log_base_ppl", "near_copy_ngrams")


def load(con, family: str, dataset: str) -> dict:
    """Per role: (seeds, n) gains on D's samples and on the validation windows, with exposures, documents and features."""
    out = {}
    for split in ("train", "val"):
        x = con.execute("""SELECT list(sample_id ORDER BY sample_id), list(doc_id ORDER BY sample_id), list(n_exposures ORDER BY sample_id),
                                  list(zlib_bytes ORDER BY sample_id), list(coalesce(near_copy_ngrams, 0) ORDER BY sample_id)
                           FROM samples WHERE family = ? AND dataset = ? AND split = ?""", [family, dataset, split]).fetchone()
        if not x or not x[0]:
            return {}
        d = {"doc": np.asarray(x[1]), "expo": np.asarray(x[2], dtype=np.int64), "zlib_bytes": np.asarray(x[3], dtype=float),
             "near_copy_ngrams": np.asarray(x[4], dtype=float), "gain": {}, "base_loss": {}}
        for role in Role:
            rows = con.execute("""SELECT list(g.gain_calibrated ORDER BY g.sample_id) FROM memorization_gain g JOIN models m USING (model, family, dataset)
                                  WHERE g.family = ? AND g.dataset = ? AND g.split = ? AND m.label = ? AND m.data_variant = 'full'
                                    AND (m.role <> ? OR m.temperature = (SELECT temperature FROM models p WHERE p.is_primary
                                         AND p.label = ? AND p.family = m.family AND p.dataset = m.dataset))
                                  GROUP BY m.is_primary, m.seed, m.model ORDER BY NOT m.is_primary, m.seed, m.model""",
                               [family, dataset, split, role, Role.STUDENT, Role.STUDENT]).fetchall()
            if rows and all(r[0] for r in rows):
                d["gain"][str(role)] = np.asarray([r[0] for r in rows], dtype=float)
        for size in Size:
            b = con.execute("""SELECT list(-suffix_logprob_mean ORDER BY sample_id) FROM scores WHERE family = ? AND dataset = ?
                               AND split = ? AND model = ?""", [family, dataset, split, ModelSpec.base(size).name]).fetchone()
            if b and b[0]:
                d["base_loss"][str(size)] = np.asarray(b[0], dtype=float)
        out[split] = d
    return out


def _boot(stat, docs: np.ndarray, n_boot: int, seed: int) -> tuple[float, float]:
    return stats.percentile(stats.cluster_bootstrap(stat, stats.Clusters.of(docs), n_boot, seed))


def by_level(data: dict, n_boot: int, seed: int) -> list[dict]:
    """Mean calibrated gain (seed mean) per role and exposure level of D, with the validation windows as a row."""
    if not data:
        return []
    tr, va = data["train"], data["val"]
    out = []
    for role, G in tr["gain"].items():
        for v in np.unique(tr["expo"]):
            m = np.flatnonzero(tr["expo"] == v)
            g = G[:, m]
            ci = _boot(lambda i, rng, g=g: float(g[rng.integers(0, g.shape[0], g.shape[0])][:, i].mean()), tr["doc"][m], n_boot, seed)
            out.append({"role": role, "n_exposures": int(v), "n": int(m.size), "seeds": G.shape[0], "gain": float(g.mean()), "ci": ci})
        if role in va["gain"]:
            g = va["gain"][role]
            out.append({"role": role, "n_exposures": "validation", "n": g.shape[1], "seeds": g.shape[0], "gain": float(g.mean()),
                        "ci": _boot(lambda i, rng, g=g: float(g[:, i].mean()), va["doc"], n_boot, seed)})
    return out


def _slope(y: np.ndarray, x: np.ndarray) -> float:
    x = x - x.mean()
    d = (x * x).sum()
    return float((x * (y - y.mean())).sum() / d) if d > 0 else float("nan")


def once_seen_content(data: dict, n_boot: int, seed: int) -> list[dict]:
    """Per role and feature: slope of the gain (seed mean) on the standardized feature among once-seen training windows,
    among validation windows, and their difference with a bootstrap interval over documents and seeds, and its
    two-sided bootstrap p (twice the share of draws on the other side of 0)."""
    if not data:
        return []
    tr, va = data["train"], data["val"]
    once = np.flatnonzero(tr["expo"] == 1)
    docs = np.concatenate([tr["doc"][once], va["doc"]])
    n_tr = once.size
    out = []
    for role, G in tr["gain"].items():
        if role not in va["gain"] or G.shape[0] != va["gain"][role].shape[0]:
            continue
        size = str(ModelSpec(role).size)
        for feat in CONTENT_FEATURES:
            if feat == "log_base_ppl":
                if size not in tr["base_loss"] or size not in va["base_loss"]:
                    continue
                x = np.concatenate([tr["base_loss"][size][once], va["base_loss"][size]])
            else:
                x = np.concatenate([tr[feat][once], va[feat]])
            if x.std() == 0:
                continue
            z = (x - x.mean()) / x.std()
            Y = np.hstack([G[:, once], va["gain"][role]])  # (seeds, n_tr + n_val)
            trained = np.arange(z.size) < n_tr

            def diff(i: np.ndarray, rng, Y=Y, z=z, trained=trained) -> float:
                y = Y if rng is None else Y[rng.integers(0, Y.shape[0], Y.shape[0])]
                y = y[:, i].mean(0)
                t, zi = trained[i], z[i]
                return _slope(y[t], zi[t]) - _slope(y[~t], zi[~t])

            every = np.arange(z.size)
            y0 = Y.mean(0)
            draws = stats.cluster_bootstrap(diff, stats.Clusters.of(docs), n_boot, seed)
            d = diff(every, None)
            ok = draws[~np.isnan(draws)]
            p = float(min(1.0, 2 * min((ok <= 0).mean(), (ok >= 0).mean()))) if ok.size else float("nan")
            out.append({"role": role, "feature": f"log_base_{size}_ppl" if feat == "log_base_ppl" else feat, "slope_trained": _slope(y0[trained], z[trained]),
                        "slope_untrained": _slope(y0[~trained], z[~trained]), "difference": d, "ci": stats.percentile(draws), "p": p,
                        "n_trained": int(n_tr), "n_untrained": int((~trained).sum())})
    return out
