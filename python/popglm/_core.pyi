"""Type stubs for popglm's private C++ extension."""

import enum
from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray

kernels: object  # this module's (baseline) kernel table, a capsule

def use_kernels(table: object) -> None: ...
def active_isa() -> str: ...

openmp: bool
ARMIJO: float
MAX_HALVINGS: int
RANK_TOLERANCE: float

class FitStatus(enum.IntEnum):
    converged = 0
    max_iter_reached = 1
    line_search_failed = 2
    mle_at_infinity = 3
    no_valid_rows = 4
    internal_error = 5
    interrupted = 6

def cpu_supports_x86_64_v3() -> bool: ...
def cpu_supports_x86_64_v4() -> bool: ...
def openmp_max_threads() -> int: ...
def convolve_history(
    x: NDArray[np.float64],  # (n_samples, n_inputs), Fortran order
    kernels: NDArray[np.float64],  # (window_size, n_kernels), Fortran order
    out: NDArray[np.float64],  # (n_samples, n_inputs * n_kernels), Fortran order, written
    n_threads: int,
) -> None: ...
def convolve_aligned(
    x: NDArray[np.float64],  # (n_samples, n_inputs), C or Fortran order (read in place)
    kernels: NDArray[np.float64],  # (window_size, n_kernels), Fortran order
    offset: int,  # out[t] uses x[t + offset - window + 1 .. t + offset]
    out: NDArray[np.float64],  # (n_samples, n_inputs * n_kernels), Fortran order, written
    n_threads: int,
) -> None: ...
def scan_design(
    matrix: NDArray[np.float64],  # (n_rows, n_cols), C or Fortran order
    out: NDArray[np.uint8],  # (n_rows,), 1 where the row is all finite; written
    max_abs: NDArray[np.float64],  # (n_cols,), largest |finite entry| per column; written
    n_threads: int,
) -> None: ...
def scan_counts(
    counts: NDArray[np.float64],  # (n_rows, n_neurons), Fortran order
    valid: NDArray[np.uint8],  # (n_rows,), rows with NaN/inf set to 0 when drop_nonfinite_rows
    drop_nonfinite_rows: bool,
    n_threads: int,
) -> int: ...  # NEGATIVE_COUNT | FRACTIONAL_COUNT, for the finite entries

NEGATIVE_COUNT: int
FRACTIONAL_COUNT: int

class ObservationFamily(enum.Enum):  # one struct each in cpp/src/families/
    poisson_exp = 0
    poisson_softplus = 1
    bernoulli_logistic = 2
    gamma_inverse = 3
    gamma_exp = 4
    negative_binomial_exp = 5
    gaussian_identity = 6

class CurvatureCache:
    # per-neuron loss Hessians carried between the fits of a regularisation path
    def __init__(self) -> None: ...

class FitOptions:
    def __init__(
        self,
        family: ObservationFamily = ...,
        scale: float = 1.0,  # the family's fixed scale (negative binomial dispersion)
        tol: float = 1e-8,
        max_iter: int = 100,
        n_threads: int = 1,
        detect_divergence: bool = True,
    ) -> None: ...
    family: ObservationFamily
    scale: float
    tol: float
    max_iter: int
    n_threads: int
    detect_divergence: bool
    curvature: CurvatureCache | None

def fit_population(
    # (n_samples, n_features) float64, C or Fortran order; or (inputs, kernels), Fortran order:
    # the history features of inputs (n_samples, n_inputs) through kernels (window, n_kernels)
    design: NDArray[np.float64] | tuple[NDArray[np.float64], NDArray[np.float64]],
    counts: NDArray[np.float64],  # (n_samples, n_neurons), Fortran order
    rows: NDArray[np.int64],  # (n_rows,) valid row indices (>= window for history designs)
    mask: NDArray[np.uint8],  # (n_features, n_neurons), Fortran order
    coef: NDArray[np.float64],  # (n_features, n_neurons), Fortran order, start in / answer out
    intercept: NDArray[np.float64],  # (n_neurons,), start in / answer out
    options: FitOptions,
    # any of l1, l2 (float64), group (int64 ids, -1: none): (n_features, n_neurons), and
    # group_weight (n_groups, n_neurons); Fortran order; a missing term is zero
    penalty: dict[str, NDArray] | None = None,
    progress: Callable[[int, int, float], None] | None = None,  # (done, n_neurons, max |grad|)
) -> dict[str, NDArray]: ...  # status, n_iter, gradient_norm, objective, n_hessian per neuron
def history_linear_predictor(
    inputs: NDArray[np.float64],  # (n_samples, n_inputs), Fortran order
    kernels: NDArray[np.float64],  # (window_size, n_kernels), Fortran order
    coef: NDArray[np.float64],  # (n_inputs * n_kernels, n_neurons), Fortran order
    intercept: NDArray[np.float64],  # (n_neurons,)
    out: NDArray[np.float64],  # (n_samples, n_neurons), Fortran order, written
    n_threads: int,
) -> None: ...
def weighted_gram(
    design: NDArray[np.float64],  # (n_samples, n_features), C or Fortran order
    rows: NDArray[np.int64],  # (n_rows,)
    weights: NDArray[np.float64],  # (n_rows,), >= 0
    single_precision: bool,
) -> NDArray[np.float64]: ...  # (n_features + 1, n_features + 1): [1, X]^T diag(w) [1, X]
def design_multiply(
    design: NDArray[np.float64],  # (n_samples, n_features), C or Fortran order
    rows: NDArray[np.int64],  # (n_rows,)
    coefs: NDArray[np.float64],  # (n_features, m), Fortran order
    offsets: NDArray[np.float64],  # (m,)
    out: NDArray[np.float64],  # (n_rows, m), Fortran order, written
    n_threads: int,
) -> None: ...
def design_transpose_multiply(
    design: NDArray[np.float64],  # (n_samples, n_features), C or Fortran order
    rows: NDArray[np.int64],  # (n_rows,)
    residual: NDArray[np.float64],  # (n_rows, m), Fortran order
    n_threads: int,
) -> NDArray[np.float64]: ...  # (n_features + 1, m): [1, X[rows]]^T residual / n_rows
def simulate_recurrent(
    coupling: NDArray[np.float64],  # (n_neurons, n_neurons * n_basis), Fortran order
    basis: NDArray[np.float64],  # (window_size, n_basis), Fortran order
    drive: NDArray[np.float64],  # (n_samples, n_neurons), Fortran order: feedforward input
    intercept: NDArray[np.float64],  # (n_neurons,)
    init_y: NDArray[np.float64],  # (window_size, n_neurons), Fortran order, last row most recent
    link: str,  # "exp" or "softplus"
    seed: int,
    max_rate: float,
    spikes: NDArray[np.float64],  # (n_samples, n_neurons), Fortran order, written
    rates: NDArray[np.float64],  # (n_samples, n_neurons), Fortran order, written
) -> None: ...
