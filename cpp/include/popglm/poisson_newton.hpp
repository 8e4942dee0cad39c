// Per-neuron masked Poisson maximum likelihood by safeguarded Newton (IRLS).
#pragma once

#include <functional>

#include "popglm/stop_token.hpp"
#include "popglm/types.hpp"

namespace popglm {

/// Why a neuron's solve stopped; the values are part of the Python API (`fit_info_`).
enum class FitStatus : std::int32_t {
  converged = 0,           ///< max |gradient| <= tol
  max_iter_reached = 1,    ///< iteration budget exhausted before tol
  line_search_failed = 2,  ///< no step decreased the objective (numerical floor)
  mle_at_infinity = 3,     ///< converged in value, but the MLE does not exist (separation)
  no_valid_rows = 4,       ///< nothing to fit
  internal_error = 5,      ///< an exception (e.g. allocation failure) inside the solve
  interrupted = 6,         ///< the stop token fired; the outputs are incomplete
};

struct NewtonOptions {
  double tol = 1e-8;   ///< stop when max |gradient of the mean NLL| <= tol
  int max_iter = 100;  ///< Newton iterations per neuron
  /// Checked between rounds and row blocks; when it fires, unfinished neurons end `interrupted`.
  const StopToken* stop = nullptr;
  /// Called by the calling thread between rounds with (neurons done, neurons, largest max
  /// |gradient| among the running ones, NaN before any is known); may be empty.
  std::function<void(Index, Index, double)> progress;
};

/// Per-neuron diagnostics, one entry per neuron (column of y).
struct PopulationFitReport {
  Eigen::Ref<IntVector> status;
  Eigen::Ref<IntVector> n_iter;
  Eigen::Ref<Eigen::VectorXd> gradient_norm;
  Eigen::Ref<Eigen::VectorXd> objective;
  Eigen::Ref<IntVector> n_hessian;  ///< Hessians formed (the dominant cost)
};

/// Fit one Poisson GLM (exp link) per column of `counts`.
///
/// Each neuron j uses the features p with mask(p, j) != 0 and an intercept, on the rows
/// listed in `rows`. The objective is the mean over those rows of exp(eta) - y * eta, plus
/// sum_p 0.5 * ridge(p, j) * coef(p, j)^2 when `ridge` (n_features x n_neurons, >= 0) is not
/// empty; the intercept is never penalised.
/// `coef` (n_features x n_neurons) and `intercept` hold the starting point on entry and the
/// solution on exit; masked coefficients are set to exactly 0. Rank-deficient designs give
/// the solution closest to the starting point (the minimum-norm MLE from a zero start).
void fit_poisson_population(const Eigen::Ref<const MatrixColMajor>& design,
                            const Eigen::Ref<const MatrixColMajor>& counts,
                            const Eigen::Ref<const MaskMatrix>& mask,
                            const Eigen::Ref<const MatrixColMajor>& ridge,
                            const Eigen::Ref<const IndexVector>& rows,
                            const NewtonOptions& options, Eigen::Ref<MatrixColMajor> coef,
                            Eigen::Ref<Eigen::VectorXd> intercept,
                            PopulationFitReport& report, int n_threads);

/// Row-major-design overload of fit_poisson_population (C-ordered NumPy arrays).
void fit_poisson_population(const Eigen::Ref<const MatrixRowMajor>& design,
                            const Eigen::Ref<const MatrixColMajor>& counts,
                            const Eigen::Ref<const MaskMatrix>& mask,
                            const Eigen::Ref<const MatrixColMajor>& ridge,
                            const Eigen::Ref<const IndexVector>& rows,
                            const NewtonOptions& options, Eigen::Ref<MatrixColMajor> coef,
                            Eigen::Ref<Eigen::VectorXd> intercept,
                            PopulationFitReport& report, int n_threads);

/// fit_poisson_population on the history features of `inputs` (n_samples x n_inputs) through
/// `kernels` (window x n_kernels), i.e. on the design convolve_history(inputs, kernels), without
/// forming it: row blocks are rebuilt from the inputs when needed, so memory stays O(n_samples x
/// n_neurons) instead of O(n_samples x n_features). Every row in `rows` must be >= window.
void fit_poisson_population_history(const Eigen::Ref<const MatrixColMajor>& inputs,
                                    const Eigen::Ref<const MatrixColMajor>& kernels,
                                    const Eigen::Ref<const MatrixColMajor>& counts,
                                    const Eigen::Ref<const MaskMatrix>& mask,
                                    const Eigen::Ref<const MatrixColMajor>& ridge,
                                    const Eigen::Ref<const IndexVector>& rows,
                                    const NewtonOptions& options, Eigen::Ref<MatrixColMajor> coef,
                                    Eigen::Ref<Eigen::VectorXd> intercept,
                                    PopulationFitReport& report, int n_threads);

/// out = convolve_history(inputs, kernels) * coef + intercept (row-wise), NaN for rows < window.
void history_linear_predictor(const Eigen::Ref<const MatrixColMajor>& inputs,
                              const Eigen::Ref<const MatrixColMajor>& kernels,
                              const Eigen::Ref<const MatrixColMajor>& coef,
                              const Eigen::Ref<const Eigen::VectorXd>& intercept,
                              Eigen::Ref<MatrixColMajor> out, int n_threads);

// The engine's two dense kernels, exposed for tests and benchmarks.

/// [1, X]^T diag(weights) [1, X] over `rows` (the Hessian kernel, lower triangle by rank
/// updates); with `single_precision` the block products are float32, summed in float64.
MatrixColMajor weighted_gram(const Eigen::Ref<const MatrixColMajor>& design,
                             const Eigen::Ref<const IndexVector>& rows,
                             const Eigen::Ref<const Eigen::VectorXd>& weights,
                             bool single_precision);
MatrixColMajor weighted_gram(const Eigen::Ref<const MatrixRowMajor>& design,
                             const Eigen::Ref<const IndexVector>& rows,
                             const Eigen::Ref<const Eigen::VectorXd>& weights,
                             bool single_precision);

/// out = X[rows] coefs + offsets (row-wise): the product that forms every neuron's step at once.
void design_multiply(const Eigen::Ref<const MatrixColMajor>& design,
                     const Eigen::Ref<const IndexVector>& rows,
                     const Eigen::Ref<const MatrixColMajor>& coefs,
                     const Eigen::Ref<const Eigen::VectorXd>& offsets,
                     Eigen::Ref<MatrixColMajor> out, int n_threads);
void design_multiply(const Eigen::Ref<const MatrixRowMajor>& design,
                     const Eigen::Ref<const IndexVector>& rows,
                     const Eigen::Ref<const MatrixColMajor>& coefs,
                     const Eigen::Ref<const Eigen::VectorXd>& offsets,
                     Eigen::Ref<MatrixColMajor> out, int n_threads);

/// [1, X[rows]]^T residual / n_rows: the product that forms every neuron's gradient at once.
MatrixColMajor design_transpose_multiply(const Eigen::Ref<const MatrixColMajor>& design,
                                         const Eigen::Ref<const IndexVector>& rows,
                                         const Eigen::Ref<const MatrixColMajor>& residual, int n_threads);
MatrixColMajor design_transpose_multiply(const Eigen::Ref<const MatrixRowMajor>& design,
                                         const Eigen::Ref<const IndexVector>& rows,
                                         const Eigen::Ref<const MatrixColMajor>& residual, int n_threads);

}  // namespace popglm
