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
def finite_rows(
    matrix: NDArray[np.float64],  # (n_rows, n_cols), C or Fortran order
    out: NDArray[np.uint8],  # (n_rows,), written
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

def fit_poisson_population(
    design: NDArray[np.float64],  # (n_samples, n_features), C or Fortran order
    counts: NDArray[np.float64],  # (n_samples, n_neurons), Fortran order
    mask: NDArray[np.uint8],  # (n_features, n_neurons), Fortran order
    ridge: NDArray[np.float64],  # (n_features, n_neurons) Fortran order, or (0, 0): no penalty
    rows: NDArray[np.int64],  # (n_rows,) valid row indices
    coef: NDArray[np.float64],  # (n_features, n_neurons), Fortran order, start in / answer out
    intercept: NDArray[np.float64],  # (n_neurons,), start in / answer out
    status: NDArray[np.int32],  # (n_neurons,), written
    n_iter: NDArray[np.int32],  # (n_neurons,), written
    gradient_norm: NDArray[np.float64],  # (n_neurons,), written
    objective: NDArray[np.float64],  # (n_neurons,), written
    n_hessian: NDArray[np.int32],  # (n_neurons,), written
    tol: float,
    max_iter: int,
    n_threads: int,
    progress: Callable[[int, int, float], None] | None = None,  # (done, n_neurons, max |grad|)
) -> None: ...
def fit_poisson_population_history(
    inputs: NDArray[np.float64],  # (n_samples, n_inputs), Fortran order: the history source
    kernels: NDArray[np.float64],  # (window_size, n_kernels), Fortran order
    counts: NDArray[np.float64],  # (n_samples, n_neurons), Fortran order
    mask: NDArray[np.uint8],  # (n_inputs * n_kernels, n_neurons), Fortran order
    ridge: NDArray[np.float64],  # like mask, or (0, 0): no penalty
    rows: NDArray[np.int64],  # (n_rows,) valid row indices, all >= window_size
    coef: NDArray[np.float64],  # start in / answer out
    intercept: NDArray[np.float64],
    status: NDArray[np.int32],
    n_iter: NDArray[np.int32],
    gradient_norm: NDArray[np.float64],
    objective: NDArray[np.float64],
    n_hessian: NDArray[np.int32],
    tol: float,
    max_iter: int,
    n_threads: int,
    progress: Callable[[int, int, float], None] | None = None,  # (done, n_neurons, max |grad|)
) -> None: ...
def fit_glm_population(
    design: NDArray[np.float64],  # (n_samples, n_features), C or Fortran order
    counts: NDArray[np.float64],  # (n_samples, n_neurons), Fortran order
    mask: NDArray[np.uint8],  # (n_features, n_neurons), Fortran order
    l1: NDArray[np.float64],  # (n_features, n_neurons) or (0, 0)
    l2: NDArray[np.float64],  # (n_features, n_neurons) or (0, 0)
    group: NDArray[np.int64],  # (n_features, n_neurons) group ids (-1: none) or (0, 0)
    group_weight: NDArray[np.float64],  # (n_groups, n_neurons) or (0, 0)
    rows: NDArray[np.int64],  # (n_rows,) valid row indices
    family: int,  # popglm::ObservationFamily code
    scale: float,
    coef: NDArray[np.float64],  # start in / answer out
    intercept: NDArray[np.float64],
    status: NDArray[np.int32],
    n_iter: NDArray[np.int32],
    gradient_norm: NDArray[np.float64],
    objective: NDArray[np.float64],
    n_hessian: NDArray[np.int32],
    tol: float,
    max_iter: int,
    n_threads: int,
    progress: Callable[[int, int, float], None] | None = None,
) -> None: ...
def fit_glm_population_history(
    inputs: NDArray[np.float64],  # (n_samples, n_inputs), Fortran order: the history source
    kernels: NDArray[np.float64],  # (window_size, n_kernels), Fortran order
    counts: NDArray[np.float64],
    mask: NDArray[np.uint8],
    l1: NDArray[np.float64],
    l2: NDArray[np.float64],
    group: NDArray[np.int64],
    group_weight: NDArray[np.float64],
    rows: NDArray[np.int64],
    family: int,
    scale: float,
    coef: NDArray[np.float64],
    intercept: NDArray[np.float64],
    status: NDArray[np.int32],
    n_iter: NDArray[np.int32],
    gradient_norm: NDArray[np.float64],
    objective: NDArray[np.float64],
    n_hessian: NDArray[np.int32],
    tol: float,
    max_iter: int,
    n_threads: int,
    progress: Callable[[int, int, float], None] | None = None,
) -> None: ...
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
