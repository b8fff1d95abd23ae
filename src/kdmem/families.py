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
  is our reading of "the zlib entropies of the examples correlate". 95 % CI: Fisher's z over the
  bins. Against exposure alone: the r two sets drawn at random within each
  exposure level, as many per level as each family memorized, give (`exposure_null`).
"""

from __future__ import annotations

from itertools import combinations

import numpy as np

from kdmem import nulls
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


def _bin(z: np.ndarray, edges: np.ndarray) -> np.ndarray:
    return np.clip(np.searchsorted(edges, z, side="right") - 1, 0, len(edges) - 2)


def _profile(z: np.ndarray, edges: np.ndarray) -> np.ndarray:
    return np.bincount(_bin(z, edges), minlength=len(edges) - 1) / len(z)


def _pearson(x: np.ndarray, y: np.ndarray) -> float | None:
    if x.std() == 0 or y.std() == 0:
        return None
    return float(np.corrcoef(x, y)[0, 1])


def zlib_correlation(za: np.ndarray, zb: np.ndarray, edges: np.ndarray) -> dict:
    """Pearson r of two sets' zlib profiles over the bins `edges`, with the Fisher-z 95 % interval for a correlation of
    that many bins. Not a bootstrap over the sets' members: a resampled set's profile carries sampling noise on top of
    the set's own, which pulls every resampled r toward 0, so that interval lay wholly below the r it was about (0.92
    [0.08, 0.87] on the two-family run; BCa overshot the other way, [0.957, 0.964]). The profiles' own noise is what
    the exposure null (`exposure_null`) carries."""
    r = _pearson(_profile(za, edges), _profile(zb, edges)) if len(za) > 1 and len(zb) > 1 else None
    n = len(edges) - 1
    if r is None or n < 4:
        return {"r": r, "lo": None, "hi": None}
    z, half = np.arctanh(np.clip(r, -1 + 1e-12, 1 - 1e-12)), 1.959963984540054 / np.sqrt(n - 3)
    return {"r": r, "lo": float(np.tanh(z - half)), "hi": float(np.tanh(z + half))}


def exposure_null(da: tuple[np.ndarray, np.ndarray, np.ndarray], db: tuple[np.ndarray, np.ndarray, np.ndarray],
                  edges: np.ndarray, r: float | None, n_perm: int, seed: int) -> dict:
    """What exposure alone gives: r between two sets each family would memorize if, within every exposure level, it
    memorized as many samples as it did but chose them at random. Each argument is a family's D as (zlib_bytes,
    n_exposures, memorized). The duplicated samples sit at every zlib level, so a high r that the null also gives says
    both families memorize by exposure, not by compressibility. p: the share of null r at least the observed one."""
    if r is None:
        return {"r_exposure_null": None, "r_exposure_null_hi": None, "p_exposure": None}
    # Each family's null profiles: its memorized set's labels permuted within exposure levels, summed over one-hot bins
    # (nulls.level_subset_sums, which draws in chunks to bound memory). Own seed per family: with one D and equal
    # counts, a shared seed would draw the same samples for both and inflate the null r.
    onehot = np.eye(len(edges) - 1)
    pa, pb = (nulls.level_subset_sums(onehot[_bin(z, edges)], m, e, n_perm, (seed, 7, i)) / m.sum()
              for i, (z, e, m) in enumerate((da, db)))
    ca, cb = pa - pa.mean(1, keepdims=True), pb - pb.mean(1, keepdims=True)
    den = np.sqrt((ca**2).sum(1) * (cb**2).sum(1))
    null = ((ca * cb).sum(1) / np.where(den > 0, den, np.nan))
    null = null[np.isfinite(null)]
    if not null.size:
        return {"r_exposure_null": None, "r_exposure_null_hi": None, "p_exposure": None}
    return {"r_exposure_null": float(null.mean()), "r_exposure_null_hi": float(np.percentile(null, 95)),
            "p_exposure": nulls.p_value(null, r, +1)}


def zlib_correlations(con, dataset: str, sets: dict[tuple[str, str], set[str]], n_perm: int, seed: int,
                      bins: int = 10) -> list[dict]:
    # Keyed by family: with two tokenizers one sample_id can name two different windows of text.
    d: dict[str, tuple[list[str], np.ndarray, np.ndarray]] = {}
    for f, ids, z, e in con.execute("""SELECT family, list(sample_id ORDER BY sample_id), list(zlib_bytes ORDER BY sample_id),
                                              list(n_exposures ORDER BY sample_id)
                                       FROM samples WHERE dataset = ? AND split = 'train' GROUP BY family""", [dataset]).fetchall():
        d[f] = (ids, np.array(z, float), np.array(e, np.int64))
    edges = np.unique(np.quantile(np.concatenate([z for _, z, _ in d.values()]), np.linspace(0, 1, bins + 1)))
    out = []
    families = sorted({f for f, _ in sets})
    for role in ROLES:
        for fa, fb in combinations(families, 2):
            if (fa, role) not in sets or (fb, role) not in sets:
                continue
            da, db = ((d[f][1], d[f][2], np.isin(d[f][0], list(sets[(f, role)]))) for f in (fa, fb))
            za, zb = da[0][da[2]], db[0][db[2]]
            row = {"role": role, "family_a": fa, "family_b": fb, "n_a": len(za), "n_b": len(zb),
                   "mean_zlib_a": float(za.mean()) if len(za) else None, "mean_zlib_b": float(zb.mean()) if len(zb) else None,
                   **zlib_correlation(za, zb, edges)}
            out.append({**row, **exposure_null(da, db, edges, row["r"], n_perm, seed)})
    return out


def across_families(con, n_perm: int, seed: int) -> list[dict]:
    """Per dataset shared by two or more families: comparability, set overlaps and zlib-profile correlations."""
    out = []
    for dataset, families in shared_datasets(con).items():
        sets = memorized_sets(con, dataset)
        out.append({"dataset": dataset, "families": families, "comparable": comparable(con, dataset, families),
                    "overlaps": set_overlaps(sets), "zlib": zlib_correlations(con, dataset, sets, n_perm, seed)})
    return out
