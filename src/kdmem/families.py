"""Across model families (docs/protocol.md "Across families"; beyond the paper's single-family tables).

The paper reports that different families' memorized sets are disjoint, yet the zlib entropies of the
memorized examples correlate at Pearson r = 0.95-0.99, and that within a family the larger model covers
most of the smaller one's set (the hierarchy). For every dataset that two or more families share, this
module computes, from the DuckDB store:

- `set_overlaps`: for every pair of primary models (teacher, baseline, soft student, hard student of
  every family), how many memorized samples each has, how many both have, and which share of each set
  the other covers. Within a family the teacher-baseline row is the size hierarchy; across families the
  rows say whether the sets are disjoint. Samples are matched by sample_id, which is only meaningful
  when the families cut the same samples (the same tokenizer); `comparable` says whether they did.
- `zlib_correlations`: per role and pair of families, the Pearson r between the two memorized sets'
  zlib profiles. A profile is the share of a set in each of `bins` bins of zlib entropy whose edges are
  the quantiles of all of D's samples (equal-mass bins), so r compares where in D's compressibility
  range each family memorizes, not which samples. The paper does not state its exact procedure; this
  is our reading of "the zlib entropies of the examples correlate". 95 % CI: bootstrap over the
  members of each memorized set.
"""

from __future__ import annotations

from itertools import combinations

import numpy as np

from kdmem.vocab import Role

ROLES = tuple(str(r) for r in Role)  # the trained roles, in the vocabulary's order


def shared_datasets(con) -> dict[str, list[str]]:
    """Datasets with two or more families, and their families."""
    rows = con.execute("SELECT dataset, list(DISTINCT family ORDER BY family) FROM models GROUP BY dataset ORDER BY dataset").fetchall()
    return {d: fams for d, fams in rows if len(fams) > 1}


def memorized_sets(con, dataset: str) -> dict[tuple[str, str], set[str]]:
    """{(family, role): memorized train sample_ids} of every primary full-data model on `dataset`."""
    rows = con.execute(
        """SELECT m.family, m.role, list(s.sample_id) FILTER (WHERE s.exact)
           FROM scores s JOIN models m USING (model, family, dataset)
           WHERE s.dataset = ? AND s.split = 'train' AND m.is_primary AND m.data_variant = 'full'
           GROUP BY ALL ORDER BY 1, 2""", [dataset]).fetchall()
    return {(f, r): set(ids or []) for f, r, ids in rows if r in ROLES}


def comparable(con, dataset: str, families: list[str]) -> bool:
    """Do the families' training sets hold the same samples (same sample_ids)? Only then do overlaps mean anything."""
    sets = [set(r[0]) for f in families
            for r in con.execute("SELECT list(sample_id) FROM samples WHERE dataset = ? AND family = ? AND split = 'train'", [dataset, f]).fetchall()]
    return all(s == sets[0] for s in sets[1:])


def set_overlaps(sets: dict[tuple[str, str], set[str]]) -> list[dict]:
    out = []
    for (a, sa), (b, sb) in combinations(sorted(sets.items()), 2):
        both = len(sa & sb)
        out.append({"a": f"{a[0]}/{a[1]}", "b": f"{b[0]}/{b[1]}", "same_family": a[0] == b[0], "n_a": len(sa), "n_b": len(sb),
                    "n_both": both, "share_of_a_in_b": both / len(sa) if sa else None, "share_of_b_in_a": both / len(sb) if sb else None,
                    "jaccard": both / len(sa | sb) if sa | sb else None})
    return out


def _profile(z: np.ndarray, edges: np.ndarray) -> np.ndarray:
    idx = np.clip(np.searchsorted(edges, z, side="right") - 1, 0, len(edges) - 2)
    return np.bincount(idx, minlength=len(edges) - 1) / len(z)


def _pearson(x: np.ndarray, y: np.ndarray) -> float | None:
    if x.std() == 0 or y.std() == 0:
        return None
    return float(np.corrcoef(x, y)[0, 1])


def zlib_correlation(za: np.ndarray, zb: np.ndarray, edges: np.ndarray, n_boot: int, seed: int) -> dict:
    """Pearson r of two sets' zlib profiles over the bins `edges`, with a bootstrap 95 % CI."""
    if len(za) < 2 or len(zb) < 2:
        return {"r": None, "lo": None, "hi": None}
    rng = np.random.default_rng(seed)
    boot = [_pearson(_profile(rng.choice(za, len(za)), edges), _profile(rng.choice(zb, len(zb)), edges)) for _ in range(n_boot)]
    boot = np.array([b for b in boot if b is not None])
    lo, hi = (float(np.percentile(boot, 2.5)), float(np.percentile(boot, 97.5))) if boot.size else (None, None)
    return {"r": _pearson(_profile(za, edges), _profile(zb, edges)), "lo": lo, "hi": hi}


def zlib_correlations(con, dataset: str, sets: dict[tuple[str, str], set[str]], n_boot: int, seed: int, bins: int = 10) -> list[dict]:
    # Keyed by family too: with two tokenizers one sample_id can name two different windows of text.
    zlib = {(f, s): z for f, s, z in con.execute("SELECT family, sample_id, zlib_bytes FROM samples WHERE dataset = ? AND split = 'train'",
                                                 [dataset]).fetchall()}
    edges = np.unique(np.quantile(np.fromiter(zlib.values(), float), np.linspace(0, 1, bins + 1)))
    out = []
    families = sorted({f for f, _ in sets})
    for role in ROLES:
        for fa, fb in combinations(families, 2):
            if (fa, role) not in sets or (fb, role) not in sets:
                continue
            za, zb = (np.array([zlib[(f, s)] for s in sets[(f, role)]], float) for f in (fa, fb))
            out.append({"role": role, "family_a": fa, "family_b": fb, "n_a": len(za), "n_b": len(zb),
                        "mean_zlib_a": float(za.mean()) if len(za) else None, "mean_zlib_b": float(zb.mean()) if len(zb) else None,
                        **zlib_correlation(za, zb, edges, n_boot, seed)})
    return out


def across_families(con, n_boot: int, seed: int) -> list[dict]:
    """Per dataset shared by two or more families: comparability, set overlaps and zlib-profile correlations."""
    out = []
    for dataset, families in shared_datasets(con).items():
        sets = memorized_sets(con, dataset)
        out.append({"dataset": dataset, "families": families, "comparable": comparable(con, dataset, families),
                    "overlaps": set_overlaps(sets), "zlib": zlib_correlations(con, dataset, sets, n_boot, seed)})
    return out
