#include "popglm/poisson_newton.hpp"

#include <Eigen/Cholesky>
#include <Eigen/Eigenvalues>
#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace popglm {
namespace {

using Eigen::VectorXd;

// Armijo sufficient-decrease constant and the number of step halvings before giving up.
constexpr double kArmijo = 1e-4;
constexpr int kMaxHalvings = 60;
// Reciprocal condition (of the Jacobi-scaled Hessian) below which Cholesky is not trusted and
// the step comes from a truncated eigendecomposition instead (rank-deficient designs).
constexpr double kRankTolerance = 1e-11;
// Newton converges quadratically, so its last step is tiny. When the MLE is at infinity
// (silent neuron, perfect separation) the steps keep moving the linear predictor by ~1 while
// the gradient decays geometrically: a final step this large flags that case.
constexpr double kDivergentStep = 0.5;
constexpr int kDivergentConfirmations = 3;
// Rows per block of the Hessian pass: the gathered block (rows x features) stays ~2 MB.
constexpr Index kBlockElements = Index{1} << 18;

/// exp(z) - 1 - z without cancellation: the curvature part of the Poisson objective along a line.
double expm1_minus_identity(double z) {
  if (std::abs(z) < 1e-3) return z * z * 0.5 * (1.0 + z / 3.0 * (1.0 + z / 4.0 * (1.0 + z / 5.0)));
  return std::expm1(z) - z;
}

/// One neuron's design: an implicit intercept column followed by the active features,
/// restricted to the valid rows.
template <class Design>
class NeuronDesign {
 public:
  NeuronDesign(const Design& design, const Eigen::Ref<const IndexVector>& rows,
               std::vector<Index> active)
      : design_(design), rows_(rows), active_(std::move(active)) {
    const Index q = n_params();
    block_rows_ = std::clamp<Index>(kBlockElements / q, 64, 8192);
    block_rows_ = std::min<Index>(block_rows_, std::max<Index>(n_rows(), 1));
    block_.resize(block_rows_, q);
    // The usual case, only the leading NaN rows of convolutional features dropped, is one
    // contiguous range of rows: copying it needs no index lookups.
    rows_are_contiguous_ = true;
    for (Index i = 1; i < n_rows() && rows_are_contiguous_; ++i)
      rows_are_contiguous_ = rows_[i] == rows_[0] + i;
  }

  Index n_rows() const { return rows_.size(); }
  Index n_params() const { return static_cast<Index>(active_.size()) + 1; }
  const std::vector<Index>& active() const { return active_; }

  /// out = [1, X_active] * theta over the valid rows.
  void multiply(const VectorXd& theta, VectorXd& out) {
    for (Index start = 0; start < n_rows(); start += block_rows_) {
      const Index len = std::min(block_rows_, n_rows() - start);
      gather(start, len);
      out.segment(start, len).noalias() = block_.topRows(len) * theta;
    }
  }

  /// gradient = A^T (mu - y) / n.
  void gradient(const VectorXd& mu, const VectorXd& y, VectorXd& gradient) {
    gradient.setZero();
    for (Index start = 0; start < n_rows(); start += block_rows_) {
      const Index len = std::min(block_rows_, n_rows() - start);
      gather(start, len);
      gradient.noalias() += block_.topRows(len).transpose() * (mu.segment(start, len) - y.segment(start, len));
    }
    gradient /= static_cast<double>(n_rows());
  }

  /// gradient = A^T (mu - y) / n and hessian = A^T diag(mu) A / n, A = [1, X_active].
  void gradient_and_hessian(const VectorXd& mu, const VectorXd& y, VectorXd& gradient,
                            MatrixColMajor& hessian) {
    gradient.setZero();
    hessian.setZero();
    for (Index start = 0; start < n_rows(); start += block_rows_) {
      const Index len = std::min(block_rows_, n_rows() - start);
      gather(start, len);
      auto rows_block = block_.topRows(len);
      gradient.noalias() += rows_block.transpose() * (mu.segment(start, len) - y.segment(start, len));
      rows_block.array().colwise() *= mu.segment(start, len).array().sqrt();
      hessian.selfadjointView<Eigen::Lower>().rankUpdate(rows_block.transpose());
    }
    const double inv_n = 1.0 / static_cast<double>(n_rows());
    gradient *= inv_n;
    hessian = hessian.selfadjointView<Eigen::Lower>();
    hessian *= inv_n;
  }

 private:
  void gather(Index start, Index len) {
    block_.col(0).head(len).setOnes();
    const Index n_active = static_cast<Index>(active_.size());
    if constexpr (Design::IsRowMajor) {
      for (Index i = 0; i < len; ++i) {
        const Index row = rows_[start + i];
        for (Index a = 0; a < n_active; ++a) block_(i, a + 1) = design_(row, active_[a]);
      }
    } else if (rows_are_contiguous_) {
      const Index first = rows_[0] + start;
      for (Index a = 0; a < n_active; ++a)
        block_.col(a + 1).head(len) = design_.col(active_[a]).segment(first, len);
    } else {
      for (Index a = 0; a < n_active; ++a) {
        const auto column = design_.col(active_[a]);
        for (Index i = 0; i < len; ++i) block_(i, a + 1) = column[rows_[start + i]];
      }
    }
  }

  const Design& design_;
  const Eigen::Ref<const IndexVector>& rows_;
  std::vector<Index> active_;
  Index block_rows_ = 1;
  bool rows_are_contiguous_ = false;
  MatrixColMajor block_;
};

/// Newton direction: solves hessian * direction = -gradient; when the Hessian is (numerically)
/// singular, the minimum-norm solution, which lies in the range of the Hessian, so the iterates
/// never move along the design's null space.
void newton_direction(const MatrixColMajor& hessian, const VectorXd& gradient, VectorXd& direction) {
  const Index q = hessian.rows();
  VectorXd scale(q);
  for (Index i = 0; i < q; ++i) {
    const double diagonal = hessian(i, i);
    scale[i] = (diagonal > 0.0 && std::isfinite(diagonal)) ? 1.0 / std::sqrt(diagonal) : 1.0;
  }
  // Jacobi scaling makes the rank decision independent of the features' units.
  const MatrixColMajor scaled = scale.asDiagonal() * hessian * scale.asDiagonal();
  const VectorXd scaled_gradient = scale.cwiseProduct(gradient);
  Eigen::LLT<MatrixColMajor> cholesky(scaled);
  if (cholesky.info() == Eigen::Success && cholesky.rcond() > kRankTolerance) {
    direction = -scale.cwiseProduct(cholesky.solve(scaled_gradient));
    return;
  }
  // Rank deficient: in scaled coordinates e = direction / scale, every solution is
  // e_range + null * z. The minimum-norm *unscaled* direction makes scale * e orthogonal to
  // scale * null, a small (rank-defect sized) least-squares problem for z.
  Eigen::SelfAdjointEigenSolver<MatrixColMajor> eigen(scaled);
  const VectorXd& values = eigen.eigenvalues();
  const MatrixColMajor& vectors = eigen.eigenvectors();
  const double cutoff = kRankTolerance * std::max(values.maxCoeff(), 0.0);
  VectorXd coordinates = vectors.transpose() * scaled_gradient;
  std::vector<Index> null_columns;
  for (Index i = 0; i < q; ++i) {
    if (values[i] > cutoff) {
      coordinates[i] /= values[i];
    } else {
      coordinates[i] = 0.0;
      null_columns.push_back(i);
    }
  }
  VectorXd solution = vectors * coordinates;
  if (!null_columns.empty()) {
    const Index k = static_cast<Index>(null_columns.size());
    MatrixColMajor weighted_null(q, k);
    for (Index c = 0; c < k; ++c)
      weighted_null.col(c) = scale.cwiseProduct(vectors.col(null_columns[static_cast<std::size_t>(c)]));
    const VectorXd weighted_solution = scale.cwiseProduct(solution);
    const VectorXd z = (weighted_null.transpose() * weighted_null)
                           .ldlt()
                           .solve(weighted_null.transpose() * weighted_solution);
    for (Index c = 0; c < k; ++c)
      solution -= z[c] * vectors.col(null_columns[static_cast<std::size_t>(c)]);
  }
  direction = -scale.cwiseProduct(solution);
}

struct NeuronResult {
  FitStatus status = FitStatus::internal_error;
  int n_iter = 0;
  double gradient_norm = std::numeric_limits<double>::quiet_NaN();
  double objective = std::numeric_limits<double>::quiet_NaN();
};

double mean_objective(const VectorXd& mu, const VectorXd& eta, const VectorXd& y) {
  return (mu.array() - y.array() * eta.array()).mean();
}

/// Line search along `direction` (whose linear predictor is `step_eta`) from the point with rates
/// `mu`: the largest step 2^-k that satisfies Armijo's condition, or 0 if none does.
double backtrack(const VectorXd& mu, const VectorXd& step_eta, double slope) {
  // objective(theta + s d) - objective(theta) = s * slope + mean(mu * (exp(s x) - 1 - s x)),
  // x = A d. Written this way the change is computed without cancellation, so the search still
  // works when the change is far below the objective's own rounding error.
  const Index n = mu.size();
  double step = 1.0;
  for (int halving = 0; halving <= kMaxHalvings; ++halving, step *= 0.5) {
    double curvature = 0.0;
    for (Index i = 0; i < n; ++i) curvature += mu[i] * expm1_minus_identity(step * step_eta[i]);
    curvature /= static_cast<double>(n);
    if (std::isfinite(curvature) && curvature <= -(1.0 - kArmijo) * step * slope) return step;
  }
  return 0.0;
}

template <class Design>
NeuronResult solve_neuron(NeuronDesign<Design>& problem, const VectorXd& y, VectorXd& theta,
                          const NewtonOptions& options) {
  NeuronResult result;
  const Index n = problem.n_rows();
  const Index q = problem.n_params();
  if (n == 0) {
    result.status = FitStatus::no_valid_rows;
    return result;
  }
  VectorXd eta(n), mu(n), step_eta(n), gradient(q), direction(q);
  MatrixColMajor hessian(q, q);

  problem.multiply(theta, eta);
  mu = eta.array().exp();
  double last_step_eta = 0.0;
  int divergent_confirmations = 0;
  result.status = FitStatus::max_iter_reached;
  for (int iteration = 0;; ++iteration) {
    problem.gradient_and_hessian(mu, y, gradient, hessian);
    if (!gradient.allFinite() && iteration == 0) {
      // A start far enough out to overflow exp(eta): restart from the intercept-only model.
      theta.setZero();
      theta[0] = std::log(std::max(y.mean(), 0.5 / static_cast<double>(n)));
      problem.multiply(theta, eta);
      mu = eta.array().exp();
      problem.gradient_and_hessian(mu, y, gradient, hessian);
    }
    result.gradient_norm = gradient.cwiseAbs().maxCoeff();
    const bool within_tol = result.gradient_norm <= options.tol;
    if (within_tol && last_step_eta > kDivergentStep) {
      // Small gradient after a large step: either a loose tol or an MLE at infinity. Only the
      // latter keeps taking large steps, so take a few more before deciding.
      if (divergent_confirmations >= kDivergentConfirmations || iteration >= options.max_iter) {
        result.status = FitStatus::mle_at_infinity;
        break;
      }
      ++divergent_confirmations;
    } else if (within_tol) {
      result.status = FitStatus::converged;
      // Within tol the Newton step is essentially exact (quadratic convergence): one more step
      // with the Hessian already in hand takes the gradient to rounding level, so coefficients
      // are exact even where the Hessian is small. It costs two cheap passes, not a Hessian.
      newton_direction(hessian, gradient, direction);
      const double slope = gradient.dot(direction);
      if (slope < 0.0 && direction.allFinite()) {
        problem.multiply(direction, step_eta);
        const double step = backtrack(mu, step_eta, slope);
        if (step > 0.0) {
          VectorXd polished_eta = eta + step * step_eta;
          VectorXd polished_mu = polished_eta.array().exp();
          VectorXd polished_gradient(q);
          problem.gradient(polished_mu, y, polished_gradient);
          const double polished_norm = polished_gradient.cwiseAbs().maxCoeff();
          if (polished_norm <= result.gradient_norm) {
            theta.noalias() += step * direction;
            eta.swap(polished_eta);
            mu.swap(polished_mu);
            result.gradient_norm = polished_norm;
            result.n_iter = iteration + 1;
          }
        }
      }
      break;
    }
    if (!within_tol && iteration >= options.max_iter) break;

    newton_direction(hessian, gradient, direction);
    const double slope = gradient.dot(direction);
    if (!(slope < 0.0) || !direction.allFinite()) {
      result.status = FitStatus::line_search_failed;
      break;
    }
    problem.multiply(direction, step_eta);
    const double step = backtrack(mu, step_eta, slope);
    if (step == 0.0) {
      result.status = FitStatus::line_search_failed;
      break;
    }
    theta.noalias() += step * direction;
    eta.noalias() += step * step_eta;
    mu = eta.array().exp();
    last_step_eta = step * step_eta.cwiseAbs().maxCoeff();
    result.n_iter = iteration + 1;
  }
  result.objective = mean_objective(mu, eta, y);
  return result;
}

template <class Design>
void fit_population_impl(const Design& design, const Eigen::Ref<const MatrixColMajor>& counts,
                         const Eigen::Ref<const MaskMatrix>& mask,
                         const Eigen::Ref<const IndexVector>& rows, const NewtonOptions& options,
                         Eigen::Ref<MatrixColMajor> coef, Eigen::Ref<VectorXd> intercept,
                         PopulationFitReport& report, int n_threads) {
  const Index n_samples = design.rows();
  const Index n_features = design.cols();
  const Index n_neurons = counts.cols();
  if (counts.rows() != n_samples)
    throw std::invalid_argument("fit_poisson_population: design and counts differ in n_samples");
  if (mask.rows() != n_features || mask.cols() != n_neurons)
    throw std::invalid_argument("fit_poisson_population: mask must have shape (n_features, n_neurons)");
  if (coef.rows() != n_features || coef.cols() != n_neurons || intercept.size() != n_neurons)
    throw std::invalid_argument("fit_poisson_population: coef/intercept have the wrong shape");
  if (report.status.size() != n_neurons || report.n_iter.size() != n_neurons ||
      report.gradient_norm.size() != n_neurons || report.objective.size() != n_neurons)
    throw std::invalid_argument("fit_poisson_population: report arrays need n_neurons entries");
  for (Index i = 0; i < rows.size(); ++i)
    if (rows[i] < 0 || rows[i] >= n_samples)
      throw std::invalid_argument("fit_poisson_population: row index out of range");
  if (!(options.tol > 0.0) || options.max_iter < 0)
    throw std::invalid_argument("fit_poisson_population: tol must be > 0 and max_iter >= 0");

  // One neuron per iteration; each writes only its own column and report entries, and its
  // arithmetic is serial, so results are identical for every thread count.
#pragma omp parallel for schedule(dynamic, 1) num_threads(sanitize_threads(n_threads))
  for (Index neuron = 0; neuron < n_neurons; ++neuron) {
    NeuronResult result;
    try {
      std::vector<Index> active;
      for (Index p = 0; p < n_features; ++p)
        if (mask(p, neuron) != 0) active.push_back(p);
      NeuronDesign<Design> problem(design, rows, active);
      VectorXd y(rows.size());
      for (Index i = 0; i < rows.size(); ++i) y[i] = counts(rows[i], neuron);
      VectorXd theta(problem.n_params());
      theta[0] = intercept[neuron];
      for (std::size_t a = 0; a < active.size(); ++a)
        theta[static_cast<Index>(a) + 1] = coef(active[a], neuron);
      result = solve_neuron(problem, y, theta, options);
      coef.col(neuron).setZero();
      for (std::size_t a = 0; a < active.size(); ++a)
        coef(active[a], neuron) = theta[static_cast<Index>(a) + 1];
      intercept[neuron] = theta[0];
    } catch (...) {
      // No exception may leave an OpenMP region; the status record carries it instead.
      result = NeuronResult{};
    }
    report.status[neuron] = static_cast<std::int32_t>(result.status);
    report.n_iter[neuron] = result.n_iter;
    report.gradient_norm[neuron] = result.gradient_norm;
    report.objective[neuron] = result.objective;
  }
}

}  // namespace

void fit_poisson_population(const Eigen::Ref<const MatrixColMajor>& design,
                            const Eigen::Ref<const MatrixColMajor>& counts,
                            const Eigen::Ref<const MaskMatrix>& mask,
                            const Eigen::Ref<const IndexVector>& rows,
                            const NewtonOptions& options, Eigen::Ref<MatrixColMajor> coef,
                            Eigen::Ref<Eigen::VectorXd> intercept, PopulationFitReport& report,
                            int n_threads) {
  fit_population_impl(design, counts, mask, rows, options, coef, intercept, report, n_threads);
}

void fit_poisson_population(const Eigen::Ref<const MatrixRowMajor>& design,
                            const Eigen::Ref<const MatrixColMajor>& counts,
                            const Eigen::Ref<const MaskMatrix>& mask,
                            const Eigen::Ref<const IndexVector>& rows,
                            const NewtonOptions& options, Eigen::Ref<MatrixColMajor> coef,
                            Eigen::Ref<Eigen::VectorXd> intercept, PopulationFitReport& report,
                            int n_threads) {
  fit_population_impl(design, counts, mask, rows, options, coef, intercept, report, n_threads);
}

}  // namespace popglm
