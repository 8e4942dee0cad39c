"""Cross-validated Ridge per neuron against one NeMoS fit, on a real recording (issue 20).

    python bench/cv.py [--data ../shared/data/s1_spikes.npz] [--no-nemos]
    python bench/cv.py --case S        # a simulated case of bench/run.py instead

Fits on the first 80% of bins, scores on the last 20% (each neuron's held-out log-likelihood per
bin, summed over neurons): popglm's PopulationGLMCV (Ridge, 20 strengths, 5 contiguous folds,
gap = window, plus the refit), popglm's unpenalised fit, an intercept-only model, and NeMoS
0.2.8's PopulationGLM with its LBFGS solver (its default gradient descent returns NaN there), all
on the same features in this one process, popglm first (NeMoS's JAX threads start after it).
Prints a Markdown table for bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import pathlib
import time
import warnings

import numpy as np
from scipy.special import gammaln

import popglm as nmo

DEFAULT_DATA = pathlib.Path(__file__).resolve().parents[2] / "shared" / "data" / "s1_spikes.npz"


def held_out(rate: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Per-neuron Poisson log-likelihood per bin."""
    rate = np.maximum(rate, 1e-300)
    return (y * np.log(rate) - rate - gammaln(y + 1)).mean(axis=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=pathlib.Path, default=DEFAULT_DATA)
    parser.add_argument("--no-nemos", action="store_true")
    parser.add_argument("--case", default="real", help="'real' or a simulated case of run.py")
    args = parser.parse_args()
    if args.case == "real":
        if not args.data.is_file():
            raise SystemExit(f"no recording at {args.data}: nothing to run")
        counts = np.load(args.data)["counts"].astype(np.float64)
        basis = nmo.basis.RaisedCosineLogConv(4, window_size=10)
    else:
        import sys
        import tempfile

        sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
        import run

        spec = run.CASES[args.case]
        path = run.make_case(args.case, spec, pathlib.Path(tempfile.gettempdir()))
        counts = np.load(path)["counts"].astype(np.float64)
        basis = getattr(nmo.basis, spec[2][0])(**spec[2][1])
    X = basis.compute_features(counts)
    cut = int(0.8 * counts.shape[0])
    X_train, y_train, X_test, y_test = X[:cut], counts[:cut], X[cut:], counts[cut:]
    keep = np.isfinite(X_train).all(axis=1)
    rows = []

    start = time.perf_counter()
    cv = nmo.glm.PopulationGLMCV(gap=basis.window_size).fit(X_train, y_train)
    rows.append(("popglm PopulationGLMCV (Ridge, 20 x 5 + refit)", time.perf_counter() - start,
                 held_out(cv.predict(X_test), y_test)))  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        start = time.perf_counter()
        plain = nmo.glm.PopulationGLM().fit(X_train, y_train)
        rows.append(("popglm PopulationGLM (unpenalised MLE)", time.perf_counter() - start,
                     held_out(plain.predict(X_test), y_test)))  # fmt: skip
    rows.append(
        (
            "intercept only",
            0.0,
            held_out(np.broadcast_to(y_train.mean(axis=0), y_test.shape), y_test),
        )
    )
    if not args.no_nemos:
        import jax

        jax.config.update("jax_enable_x64", True)
        import nemos

        model = nemos.glm.PopulationGLM(solver_name="LBFGS")
        model.fit(X_train[keep][:2000], y_train[keep][:2000])  # compile first
        start = time.perf_counter()
        model.fit(X_train[keep], y_train[keep])
        elapsed = time.perf_counter() - start
        rate = np.asarray(model.predict(X_test))
        rows.append((f"NeMoS {nemos.__version__} PopulationGLM (LBFGS, warm)", elapsed,
                     held_out(rate, y_test)))  # fmt: skip

    strengths = cv.regularizer_strength_
    print(f"{args.case}: {counts.shape[1]} neurons, {X.shape[1]} features, {cut} training bins")
    print(f"chosen Ridge strengths: {strengths.min():.3g} .. {strengths.max():.3g} (median "
          f"{np.median(strengths):.3g}); grid {cv.cv_strengths_[0]:.3g} .. {cv.cv_strengths_[-1]:.3g}")  # fmt: skip
    print()
    print("| fit | seconds | held-out LL/bin, sum over neurons | worst neuron |")
    print("|---|---|---|---|")
    for name, seconds, scores in rows:
        finite = np.isfinite(scores)
        total = scores.sum() if finite.all() else float("nan")
        print(f"| {name} | {seconds:.2f} | {total:.4f} | {scores[finite].min():.4f} |")


if __name__ == "__main__":
    main()
