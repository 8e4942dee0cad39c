"""popglm's command line: ``python -m popglm demo`` and ``python -m popglm fit COUNTS``.

Exit codes: 0 success; 1 the fit ran but some neurons did not converge (or writing an output
failed); 2 bad usage or input (missing file, bad basis spec, bad counts).
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import time
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from . import __version__
from .basis import HistoryConv, RaisedCosineLogConv
from .exceptions import ConvergenceWarning
from .glm import PopulationGLM
from .simulation import coupling_coef_from_model, random_coupled_network, simulate_recurrent

__all__ = ["main", "parse_basis"]

BASIS_HELP = (
    "history basis: raised-cosine-log:N_BASIS:WINDOW (default raised-cosine-log:8:100) or "
    "history:WINDOW (one feature per lag)"
)


class UsageError(Exception):
    """Bad arguments or input files: exit code 2."""


def parse_basis(spec: str):
    """Build a basis from ``raised-cosine-log:N_BASIS:WINDOW`` or ``history:WINDOW``.

    Parameters
    ----------
    spec : str
        The basis spec given on the command line.

    Returns
    -------
    RaisedCosineLogConv or HistoryConv

    Examples
    --------
    >>> basis = parse_basis("raised-cosine-log:4:20")
    >>> type(basis).__name__, basis.n_basis_funcs, basis.window_size
    ('RaisedCosineLogConv', 4, 20)
    """
    name, *numbers = spec.strip().split(":")
    try:
        values = [int(number) for number in numbers]
    except ValueError:
        raise UsageError(f"--basis {spec!r}: the sizes must be integers ({BASIS_HELP})") from None
    if len(values) == 2 and values[0] > values[1] > 0:
        raise UsageError(
            f"--basis {spec!r}: {values[0]} basis functions for a window of {values[1]} bins; "
            "use at most one per bin"
        )
    try:
        if name in ("raised-cosine-log", "rcl") and len(values) == 2:
            return RaisedCosineLogConv(values[0], window_size=values[1], label="coupling")
        if name == "history" and len(values) == 1:
            return HistoryConv(window_size=values[0], label="coupling")
    except ValueError as error:
        raise UsageError(f"--basis {spec!r}: {error}") from None
    raise UsageError(f"--basis {spec!r} is not a basis spec: {BASIS_HELP}")


def load_counts(path: str) -> np.ndarray:
    """Read a (n_samples, n_neurons) count matrix from .npy, .npz (first array) or .csv."""
    file = pathlib.Path(path)
    if not file.is_file():
        raise UsageError(f"{path}: no such file")
    suffix = file.suffix.lower()
    try:
        if suffix == ".npy":
            counts = np.load(file, allow_pickle=False)
        elif suffix == ".npz":
            with np.load(file, allow_pickle=False) as data:
                key = "counts" if "counts" in data.files else data.files[0]
                counts = data[key]
        elif suffix in (".csv", ".txt"):
            counts = np.loadtxt(file, delimiter="," if suffix == ".csv" else None, ndmin=2)
        else:
            raise UsageError(f"{path}: expected a .npy, .npz or .csv file of spike counts")
    except UsageError:
        raise
    except Exception as error:  # noqa: BLE001 - empty, truncated or damaged: all unreadable
        raise UsageError(
            f"{path}: could not read spike counts: {error or type(error).__name__}"
        ) from None
    counts = np.asarray(counts)
    if counts.ndim == 1:
        counts = counts[:, None]
    if counts.ndim != 2 or counts.shape[0] < 2:
        raise UsageError(
            f"{path}: expected counts of shape (n_samples, n_neurons), got {counts.shape}"
        )
    if counts.dtype.kind not in "biuf" or not np.isfinite(counts).all():
        raise UsageError(f"{path}: counts must be finite numbers")
    if (counts < 0).any() or (counts != np.round(counts)).any():
        raise UsageError(f"{path}: counts must be non-negative integers")
    return counts.astype(np.float64)


def build_mask(spec: str, n_neurons: int, n_basis_funcs: int) -> np.ndarray | None:
    """Feature mask from ``all``, ``self`` (each neuron's own history only) or a .npy file.

    The .npy file holds an (n_neurons, n_neurons) connectivity matrix: entry (s, r) non-zero
    keeps sender s's features in receiver r's model.
    """
    if spec == "all":
        return None
    if spec == "self":
        connectivity = np.eye(n_neurons)
    else:
        file = pathlib.Path(spec)
        if not file.is_file():
            raise UsageError(f"--mask {spec}: no such file (or use 'all' or 'self')")
        try:
            connectivity = np.load(file, allow_pickle=False)
        except Exception as error:  # noqa: BLE001 - empty, truncated or damaged: all unreadable
            raise UsageError(
                f"--mask {spec}: could not read: {error or type(error).__name__}"
            ) from None
        if not isinstance(connectivity, np.ndarray):
            connectivity.close()
            raise UsageError(f"--mask {spec}: expected a .npy file holding one array")
        if connectivity.dtype.kind not in "biuf" or not np.isfinite(connectivity).all():
            raise UsageError(f"--mask {spec}: the connectivity matrix must hold finite numbers")
        if connectivity.shape != (n_neurons, n_neurons):
            raise UsageError(
                f"--mask {spec}: expected a (n_neurons, n_neurons) = ({n_neurons}, {n_neurons}) "
                f"connectivity matrix, got shape {connectivity.shape}"
            )
    return np.repeat(connectivity != 0, n_basis_funcs, axis=0).astype(np.float64)


def _summary_table(
    model: PopulationGLM, counts: np.ndarray, bin_size: float | None,
    held_out: np.ndarray | None = None,
) -> str:  # fmt: skip
    info = model.fit_info_
    rate_unit = "spikes/s" if bin_size else "spikes/bin"
    scale = 1.0 / bin_size if bin_size else 1.0
    header = f"{'neuron':>6} {'mean ' + rate_unit:>16} {'status':>16} {'iter':>5} {'max|grad|':>10}"
    if held_out is not None:
        header += f" {'held-out LL/bin':>16}"
    lines = [header]
    for j in range(counts.shape[1]):
        line = (
            f"{j:>6} {counts[:, j].mean() * scale:>16.4g} {info['reason'][j]:>16} "
            f"{info['n_iter'][j]:>5} {info['gradient_norm'][j]:>10.2e}"
        )
        if held_out is not None:
            line += f" {held_out[j]:>16.4f}"
        lines.append(line)
    return "\n".join(lines)


def _save_figures(
    model, basis, X, out_dir: pathlib.Path, names: str, inference=None, truth=None
) -> list[tuple[pathlib.Path, str]]:
    """Write the figures of a fit; return each file with a caption saying what its marks mean.

    ``truth`` (sender, lag, receiver), a simulated network's filters, adds a true-vs-fitted map and
    draws the strongest true couplings (else the strongest fitted ones) with the truth dashed.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no figures (pip install 'popglm[plot]')")
        return []
    from .inference import benjamini_hochberg
    from .plotting import coupling_filters_of, plot_connectivity, plot_coupling_filters

    out_dir.mkdir(parents=True, exist_ok=True)
    if inference is None:
        inference = _inference(model, X)
    _, p_values = inference.coupling_test(basis.n_basis_funcs)
    off_diagonal = ~np.eye(p_values.shape[0], p_values.shape[1], dtype=bool)
    found = benjamini_hochberg(np.where(off_diagonal, p_values, np.nan), fdr=0.05)
    fitted = coupling_filters_of(model, basis).sum(axis=1)  # (sender, receiver)
    written = []

    def save(fig, suffix: str, caption: str) -> None:
        path = out_dir / f"{names}_{suffix}.png"
        fig.savefig(path, dpi=120, bbox_inches="tight")
        plt.close(fig)
        written.append((path, caption))

    save(
        plot_connectivity(fitted, significant=found),
        "connectivity",
        "fitted coupling strength of each sender (row) on each receiver (column): its filter "
        "summed over lags, the log-rate change one spike causes (red excitatory, blue "
        "inhibitory; the diagonal is each neuron's own history); black dots: pairs significant "
        "at FDR 5% (Wald chi-square per pair, Benjamini-Hochberg, diagonal excluded)",
    )
    if truth is not None:
        true_strength = truth.sum(axis=1)
        limit = float(max(np.abs(true_strength).max(), np.abs(fitted).max())) or 1.0
        fig, (left, right) = plt.subplots(1, 2, figsize=(11.0, 4.8))
        plot_connectivity(true_strength, ax=left, vmax=limit)
        plot_connectivity(fitted, significant=found, ax=right, vmax=limit)
        left.set_title("True connectivity")
        right.set_title("Fitted connectivity")
        fig.tight_layout()
        save(
            fig,
            "true_vs_fitted",
            "true (left) and fitted (right) coupling strength on one colour scale (sum over "
            "lags); black dots on the right: pairs significant at FDR 5%",
        )
    n_neurons = fitted.shape[0]
    band = "its pointwise 95% Wald band (shaded)"
    if truth is None and n_neurons <= 8:
        fig = plot_coupling_filters(model, basis, inference)
        caption = (
            f"every coupling filter, sender (row) by receiver (column), lag 1 first: fitted "
            f"(line, red on the diagonal: the neuron's own history) with {band}"
        )
    else:
        strength = np.abs(truth.sum(axis=1) if truth is not None else fitted)
        strength = np.where(off_diagonal, strength, -np.inf)
        order = np.argsort(strength, axis=None)[::-1][: min(6, int(off_diagonal.sum()))]
        pairs = np.column_stack(np.unravel_index(order, strength.shape))
        fig = plot_coupling_filters(model, basis, inference, pairs=pairs, reference=truth)
        which = "true" if truth is not None else "fitted"
        caption = (
            f"the {len(pairs)} strongest {which} couplings (sender \u2192 receiver), lag 1 "
            f"first: fitted filter (line) with {band}"
            + ("; the true filter dashed" if truth is not None else "")
        )
    save(fig, "filters", caption)
    return written


def run_demo(args: argparse.Namespace) -> int:
    """Simulate a coupled network, fit it, print recovery and timings, write a figure."""
    basis = parse_basis(args.basis)
    print(
        f"popglm {__version__} demo: {args.neurons} coupled neurons, {args.samples} bins, {basis!r}"
    )
    start = time.perf_counter()
    network = random_coupled_network(
        basis, args.neurons, connection_probability=0.15, coupling_strength=1.5, seed=args.seed
    )
    counts, _ = simulate_recurrent(
        coupling_coef_from_model(network.coef, basis.n_basis_funcs),
        np.zeros((args.neurons, 1)),
        network.intercept,
        args.seed,
        np.zeros((args.samples, args.neurons, 1)),
        basis.kernel_,
        np.zeros((basis.window_size, args.neurons)),
    )
    simulated = time.perf_counter()
    print(f"simulated in {simulated - start:.2f} s; mean rate {counts.mean():.3f} spikes/bin")

    X = basis.compute_features(counts)
    featured = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        model = PopulationGLM(n_threads=args.threads, verbose=args.progress).fit(X, counts)
    fitted = time.perf_counter()
    for warning in caught:
        print(f"warning: {warning.message}", file=sys.stderr)
    print(
        f"features in {featured - simulated:.2f} s ({X.shape[0]} x {X.shape[1]}); "
        f"exact fit of {args.neurons} neurons in {fitted - featured:.2f} s; "
        f"converged: {int(model.converged_.sum())}/{args.neurons}, "
        f"largest max |gradient| {model.fit_info_['gradient_norm'].max():.1e}"
    )

    truth = network.filters()  # (sender, lag, receiver)
    estimate = np.einsum(
        "lb,sbr->slr",
        basis.kernel_,
        model.coef_.reshape(args.neurons, basis.n_basis_funcs, args.neurons),
    )
    off_diagonal = ~np.eye(args.neurons, dtype=bool)
    connected = (np.abs(truth).sum(axis=1) > 0) & off_diagonal
    diagonal = np.arange(args.neurons)

    def correlation(pairs_true, pairs_estimate) -> float:
        return float(np.corrcoef(pairs_true.ravel(), pairs_estimate.ravel())[0, 1])

    pairs = np.nonzero(connected)
    print(
        "recovery: correlation of true and fitted filters: "
        f"{correlation(truth[pairs[0], :, pairs[1]], estimate[pairs[0], :, pairs[1]]):.3f} "
        f"over the {int(connected.sum())} true couplings, "
        f"{correlation(truth[diagonal, :, diagonal], estimate[diagonal, :, diagonal]):.3f} "
        "over the self (refractory) filters"
    )

    inference = _inference(model, X)
    from .inference import benjamini_hochberg

    _, p_values = inference.coupling_test(basis.n_basis_funcs)
    found = benjamini_hochberg(np.where(off_diagonal, p_values, np.nan), fdr=0.05)
    print(
        f"detection (Wald test per pair, Benjamini-Hochberg FDR 5%): "
        f"{int((found & connected).sum())}/{int(connected.sum())} true couplings found, "
        f"{int((found & ~connected).sum())} false positives among "
        f"{int((~connected & off_diagonal).sum())} absent pairs"
    )
    if args.out is not None:
        figures = _save_figures(model, basis, X, pathlib.Path(args.out), "demo", inference, truth)
        for path, caption in figures:
            print(f"wrote {path}: {caption}")
    print(f"total {time.perf_counter() - start:.2f} s")
    return 0


def run_fit(args: argparse.Namespace) -> int:
    """Fit a user's counts with history features; print a summary, save the model and figures."""
    basis = parse_basis(args.basis)
    counts = load_counts(args.counts)
    n_samples, n_neurons = counts.shape
    if n_samples <= basis.window_size:
        raise UsageError(
            f"{args.counts}: {n_samples} samples, but the basis window is {basis.window_size}: "
            "need more samples than the window"
        )
    mask = build_mask(args.mask, n_neurons, basis.n_basis_funcs)
    if args.bin_size is not None and not (np.isfinite(args.bin_size) and args.bin_size > 0):
        raise UsageError(f"--bin-size must be a positive number of seconds, got {args.bin_size}")
    if args.out and (pathlib.Path(args.out).is_dir() or not pathlib.Path(args.out).name.strip(".")):
        raise UsageError(f"--out must name a file (model.npz), got {args.out!r}, a folder")
    fraction = args.test_fraction
    if not (np.isfinite(fraction) and 0.0 <= fraction < 1.0):
        raise UsageError(f"--test-fraction must be in [0, 1), got {fraction}")
    held_out_bins = int(round(fraction * n_samples))
    train_bins = n_samples - held_out_bins
    if fraction and (held_out_bins < 1 or train_bins <= basis.window_size):
        raise UsageError(
            f"--test-fraction {fraction}: {train_bins} training and {held_out_bins} held-out bins "
            f"of {n_samples}; training needs more than the basis window ({basis.window_size})"
        )
    print(f"fitting {n_neurons} neurons on {train_bins} bins with {basis!r}")
    if held_out_bins:
        print(f"scoring on the last {held_out_bins} bins (their history reaches back before them)")
    start = time.perf_counter()
    X = basis.history_features(counts[:train_bins])
    model = PopulationGLM(
        feature_mask=mask,
        regularizer="Ridge" if args.ridge else None,
        regularizer_strength=args.ridge,
        n_threads=args.threads,
        verbose=args.progress,
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        model.fit(X, counts[:train_bins])
    print(f"fit in {time.perf_counter() - start:.2f} s")
    held_out = None
    if held_out_bins:
        tail = counts[train_bins - basis.window_size :]
        held_out = model.score(
            basis.history_features(tail), tail, per_neuron=True
        )  # the first window rows, without a full history, are dropped
    print(_summary_table(model, counts[:train_bins], args.bin_size, held_out))
    for warning in caught:
        print(f"warning: {warning.message}", file=sys.stderr)
    status = 0 if model.converged_.all() else 1
    try:
        if args.out:
            model.save_params(args.out)
            print(f"wrote {args.out}")
        if args.figures:
            for path, caption in _save_figures(model, basis, X, pathlib.Path(args.figures), "fit"):
                print(f"wrote {path}: {caption}")
    except OSError as error:
        print(f"error: could not write output: {error}", file=sys.stderr)
        return 1
    return status


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser of ``python -m popglm``."""
    parser = argparse.ArgumentParser(
        prog="popglm", description="Fit fully coupled Poisson GLMs to neural populations."
    )
    parser.add_argument("--version", action="version", version=f"popglm {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    demo = commands.add_parser("demo", help="simulate a coupled network, fit it, report recovery")
    demo.add_argument("--neurons", type=int, default=20, help="neurons (default 20)")
    demo.add_argument("--samples", type=int, default=50_000, help="time bins (default 50000)")
    demo.add_argument(
        "--basis", default="raised-cosine-log:6:50", help=BASIS_HELP.replace(":8:100", ":6:50")
    )
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--out", default=".", help="folder for the figures (default: here)")
    demo.add_argument("--no-figures", dest="out", action="store_const", const=None)

    fit = commands.add_parser("fit", help="fit a count matrix (n_samples x n_neurons)")
    fit.add_argument(
        "counts", help="spike counts: .npy, .npz or .csv, shape (n_samples, n_neurons)"
    )
    fit.add_argument("--basis", default="raised-cosine-log:8:100", help=BASIS_HELP)
    fit.add_argument(
        "--mask",
        default="all",
        help="'all' (default), 'self', or a .npy (n_neurons, n_neurons) connectivity matrix",
    )
    fit.add_argument("--ridge", type=float, default=None, help="Ridge strength (default: none)")
    fit.add_argument(
        "--bin-size", type=float, default=None, help="seconds per bin, for rates in the table"
    )
    fit.add_argument(
        "--out", default="model.npz", help="where to save the model (default model.npz)"
    )
    fit.add_argument("--figures", default=None, help="folder for the figures (default: none)")
    fit.add_argument(
        "--test-fraction", type=float, default=0.0,
        help="fit on the first bins, and show each neuron's log-likelihood per bin on this "
        "fraction of last bins (default 0: fit on all)",
    )  # fmt: skip

    for command in (demo, fit):
        command.add_argument(
            "--threads", type=int, default=None, help="threads (default: all cores)"
        )
        command.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                             help="progress bar (default: when run in a terminal)")  # fmt: skip
    return parser


def _inference(model: Any, X: Any) -> Any:
    """model.inference(X), with its warnings (e.g. a barely identified neuron) printed as notes."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        inference = model.inference(X)
    for warning in caught:
        print(f"warning: {warning.message}", file=sys.stderr)
    return inference


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "demo":
            if args.neurons < 2 or args.samples < 10 * 100:
                raise UsageError("demo needs --neurons >= 2 and --samples >= 1000")
            return run_demo(args)
        return run_fit(args)
    except UsageError as error:
        print(f"popglm {args.command}: error: {error}", file=sys.stderr)
        return 2
    except (ValueError, TypeError) as error:
        print(f"popglm {args.command}: error: {error}", file=sys.stderr)
        return 2
