// The one entry of the fitting engine: fit_population(design, counts, rows, mask, penalty,
// options, ...) fits one GLM per column of counts and picks the method itself: the smooth
// Poisson Newton engine for Poisson with the exp link and no L1 or group penalty, proximal
// Newton otherwise.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <variant>
#include <vector>

#include "popglm/stop_token.hpp"
#include "popglm/types.hpp"

namespace popglm {

/// Why a neuron's solve stopped; the values are part of the Python API (`fit_info_`).
enum class FitStatus : std::int32_t {
  converged = 0,           ///< max |gradient| (minimum-norm subgradient) <= tol
  max_iter_reached = 1,    ///< iteration budget exhausted before tol
  line_search_failed = 2,  ///< no step decreased the objective (numerical floor)
  mle_at_infinity = 3,     ///< converged in value, but the MLE does not exist (separation)
  no_valid_rows = 4,       ///< nothing to fit
  internal_error = 5,      ///< an exception (e.g. allocation failure) inside the solve
  interrupted = 6,         ///< the stop token fired; the outputs are incomplete
};

/// Observation model and inverse link (NeMoS's per-sample losses, up to constants); each is a
/// struct in cpp/src/families/.
enum class ObservationFamily : std::int32_t {
  poisson_exp = 0,
  poisson_softplus = 1,
  bernoulli_logistic = 2,
  gamma_inverse = 3,  ///< mu = 1 / eta; needs eta > 0 on every row
  gamma_exp = 4,
  negative_binomial_exp = 5,  ///< dispersion = FitOptions::scale
  gaussian_identity = 6,
};

/// Loss Hessians a penalised fit leaves for the next fit of the same design, rows and counts
/// (the next strength of a regularisation path), one per neuron: at a nearby strength a neuron
/// can start with a step instead of forming a Hessian. An entry is used only when the neuron
/// has the same features and rows as when it was kept; the exact gradient still decides every
/// step and the convergence, so a kept Hessian changes the path taken, not the answer's
/// tolerance. Filled and read by fit_population when FitOptions::curvature is set.
struct CurvatureCache {
  struct Entry {
    std::vector<Index> active;     ///< the neuron's features when the Hessian was kept
    std::vector<Index> positions;  ///< its parameters (0 = intercept) the Hessian covers
    MatrixColMajor hessian;        ///< of the mean loss (no penalty), over `positions`
    Index n_rows = 0;
  };
  std::vector<Entry> neurons;
};

struct FitOptions {
  ObservationFamily family = ObservationFamily::poisson_exp;
  double scale = 1.0;  ///< the family's fixed scale (negative binomial dispersion)
  double tol = 1e-8;   ///< stop when max |gradient of the mean objective| <= tol
  int max_iter = 100;  ///< Newton iterations per neuron
  int n_threads = 1;   ///< OpenMP threads; results do not depend on it
  /// Let the smooth engine end a neuron whose iterates run towards infinity (mle_at_infinity) by
  /// its exact-Newton-step test; off, every neuron iterates to tol or max_iter (for neurons whose
  /// MLE is known to exist).
  bool detect_divergence = true;
  /// Checked between rounds and row blocks; when it fires, unfinished neurons end `interrupted`.
  const StopToken* stop = nullptr;
  /// Hessians carried between the fits of a path (penalised fits only); may be null.
  std::shared_ptr<CurvatureCache> curvature;
  /// Called by the calling thread between rounds with (neurons done, neurons, largest max
  /// |gradient| among the running ones, NaN before any is known); may be empty.
  std::function<void(Index, Index, double)> progress;
};

/// The penalty on neuron j's coefficients w (never on the intercept):
///   sum_p l1(p, j) |w_p| + 0.5 sum_p l2(p, j) w_p^2 + sum_g group_weight(g, j) ||w_{p: group(p, j) = g}||_2.
/// Each array is either empty (no such term) or shaped as noted; group(p, j) is -1 for a feature
/// in no group, and a grouped feature should have l1(p, j) = 0.
struct Penalty {
  Eigen::Ref<const MatrixColMajor> l1;            ///< (n_features, n_neurons), >= 0
  Eigen::Ref<const MatrixColMajor> l2;            ///< (n_features, n_neurons), >= 0
  Eigen::Ref<const IndexMatrix> group;            ///< (n_features, n_neurons), -1 or a group id
  Eigen::Ref<const MatrixColMajor> group_weight;  ///< (n_groups, n_neurons), >= 0

  /// True when only the l2 term can be non-zero (the smooth engine's problems).
  bool smooth() const;
};

/// The history features of `inputs` (n_samples x n_inputs) through `kernels` (window x
/// n_kernels), i.e. convolve_history(inputs, kernels), never formed: row blocks are rebuilt from
/// the inputs when needed, so memory stays O(n_samples x n_inputs). Every fitted row must be
/// >= window.
struct HistoryDesign {
  Eigen::Ref<const MatrixColMajor> inputs;
  Eigen::Ref<const MatrixColMajor> kernels;
};

/// Where the rows of the design come from: a dense matrix of either order, or history features.
using Design = std::variant<Eigen::Ref<const MatrixColMajor>, Eigen::Ref<const MatrixRowMajor>, HistoryDesign>;

/// Per-neuron diagnostics, one entry per neuron (column of counts).
struct PopulationFitReport {
  Eigen::Ref<IntVector> status;
  Eigen::Ref<IntVector> n_iter;
  Eigen::Ref<Eigen::VectorXd> gradient_norm;
  Eigen::Ref<Eigen::VectorXd> objective;
  Eigen::Ref<IntVector> n_hessian;  ///< Hessians formed (the dominant cost)
};

/// Fit one GLM per column of `counts`: neuron j uses the features p with mask(p, j) != 0 and an
/// intercept, on the rows listed in `rows`, and minimises the mean over those rows of the
/// family's loss plus the penalty. `coef` (n_features x n_neurons) and `intercept` hold the
/// starting point on entry (in the family's domain) and the solution on exit; masked
/// coefficients are set to exactly 0. Unpenalised rank-deficient designs give the solution
/// closest to the starting point (the minimum-norm MLE from a zero start). Throws
/// std::invalid_argument, naming the argument, for inconsistent shapes or values.
void fit_population(const Design& design, const Eigen::Ref<const MatrixColMajor>& counts,
                    const Eigen::Ref<const IndexVector>& rows, const Eigen::Ref<const MaskMatrix>& mask,
                    const Penalty& penalty, const FitOptions& options, Eigen::Ref<MatrixColMajor> coef,
                    Eigen::Ref<Eigen::VectorXd> intercept, PopulationFitReport& report);

}  // namespace popglm
