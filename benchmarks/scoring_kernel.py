"""Scoring kernel and Monte Carlo: ours against pymcdm and scikit-criteria on the same matrices."""

from __future__ import annotations

import sys
import time
import warnings
from typing import Any

import numpy as np
from common import ROOT, repeat, save, stats

sys.path.insert(0, str(ROOT))
warnings.filterwarnings("ignore")

from scoring import entropy_weights, load_methodology, rescale_50_100, topsis  # noqa: E402

SIZES = [2, 2, 3, 2, 2, 6]
DIRS = [[1, 1], [1, 1], [1, 1, 1], [-1, 1], [1, 1], [1, -1, -1, -1, -1, 1]]
W = np.array([0.13, 0.27, 0.15, 0.15, 0.16, 0.14])


def data(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    return [rng.uniform(1, 100, size=(n, k)) for k in SIZES]


def ours(blocks):
    S = np.column_stack(
        [rescale_50_100(topsis(X, entropy_weights(X), d, "minmax")) for X, d in zip(blocks, DIRS, strict=True)]
    )
    return S @ W


def with_pymcdm(blocks):
    from pymcdm.methods import TOPSIS
    from pymcdm.weights import entropy_weights as pm_entropy

    t = TOPSIS()
    S = np.column_stack(
        [rescale_50_100(t(X, pm_entropy(X), np.array(d), validation=False)) for X, d in zip(blocks, DIRS, strict=True)]
    )
    return S @ W


def with_skcriteria(blocks):
    import skcriteria as skc
    from skcriteria.agg.similarity import TOPSIS
    from skcriteria.preprocessing.scalers import MinMaxScaler
    from skcriteria.preprocessing.weighters import EntropyWeighter

    cols = []
    for X, d in zip(blocks, DIRS, strict=True):
        dm = skc.mkdm(X, [max if v > 0 else min for v in d])
        dm = EntropyWeighter().transform(dm)
        dm = MinMaxScaler(target="matrix").transform(dm)
        rank = TOPSIS().evaluate(dm)
        cols.append(rescale_50_100(rank.e_.similarity))
    return np.column_stack(cols) @ W


def kernel(runs: int = 5) -> dict:
    out: dict[str, Any] = {}
    for n in (30, 1_000, 10_000, 100_000):
        blocks = data(n)
        ref = ours(blocks)
        row: dict[str, Any] = {"n": n}
        for name, fn in (("ours", ours), ("pymcdm", with_pymcdm), ("scikit-criteria", with_skcriteria)):
            if name == "scikit-criteria" and n > 10_000:
                continue
            diff = float(np.abs(fn(blocks) - ref).max())
            samples = repeat(lambda fn=fn, blocks=blocks: fn(blocks), runs=runs)
            row[name] = {"seconds": stats(samples), "max_abs_diff_vs_ours": diff}
        # pair by pair in the same process: ratio of each run's ours/pymcdm
        pairs = []
        for _ in range(runs):
            t = time.perf_counter()
            ours(blocks)
            a = time.perf_counter() - t
            t = time.perf_counter()
            with_pymcdm(blocks)
            b = time.perf_counter() - t
            pairs.append(a / b)
        row["ratio_ours_over_pymcdm"] = stats(pairs)
        if "scikit-criteria" in row:
            row["ratio_ours_over_skcriteria"] = (
                row["ours"]["seconds"]["median"] / row["scikit-criteria"]["seconds"]["median"]
            )
        out[str(n)] = row
        print(
            f"  kernel n={n:>6}: ours {row['ours']['seconds']['median'] * 1e3:8.2f} ms, pymcdm "
            f"{row['pymcdm']['seconds']['median'] * 1e3:8.2f} ms, ratio {row['ratio_ours_over_pymcdm']['median']:.2f}",
            flush=True,
        )
    return out


def monte_carlo_bench(runs: int = 5) -> dict:
    import pandas as pd
    from pymcdm.methods import TOPSIS
    from pymcdm.weights import entropy_weights as pm_entropy

    from scoring.uncertainty import monte_carlo

    m = load_methodology()
    rng = np.random.default_rng(1)
    values = pd.DataFrame(
        rng.uniform(1, 100, size=(30, 17)), columns=[i.id for i in m.indicators], index=[f"c{i}" for i in range(30)]
    )
    ours_t = repeat(lambda: monte_carlo(values, m, draws=10_000, seed=1), runs=runs)
    X = values.to_numpy()
    starts = np.cumsum([0] + SIZES)
    t = TOPSIS()

    def loop(draws: int):
        r = np.random.default_rng(2)
        for _ in range(draws):
            w = r.dirichlet(100 * W)
            cols = []
            for j, d in enumerate(DIRS):
                B = X[:, starts[j] : starts[j + 1]]
                cols.append(rescale_50_100(t(B, pm_entropy(B), np.array(d), validation=False)))
            final = np.column_stack(cols) @ w
            np.argsort(np.argsort(-final))

    loop_draws = 1_000
    loop_t = repeat(lambda: loop(loop_draws), runs=runs, warmup=0)
    ours_rate = 10_000 / np.median(ours_t)
    loop_rate = loop_draws / np.median(loop_t)
    print(
        f"  monte carlo: ours {ours_rate:,.0f} draws/s ({np.median(ours_t):.3f} s for 10,000), "
        f"pymcdm loop {loop_rate:,.0f} draws/s, {ours_rate / loop_rate:.0f}x",
        flush=True,
    )
    return {
        "ours_10000_draws_seconds": stats(ours_t),
        "ours_draws_per_s": ours_rate,
        "pymcdm_loop_draws_per_s": loop_rate,
        "loop_draws_timed": loop_draws,
        "speedup_ours_over_loop": ours_rate / loop_rate,
    }


if __name__ == "__main__":
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    save("scoring_kernel", kernel(runs))
    print(save("monte_carlo", monte_carlo_bench(runs)))
