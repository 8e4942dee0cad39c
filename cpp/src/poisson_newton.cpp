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
// At a finite optimum the exact Newton step is tiny. When the MLE is at infinity (silent neuron,
// perfect separation) it keeps moving the linear predictor by ~1 on the rows whose rate is being
// driven to zero, however small the gradient already is: a step this large flags that case.
constexpr double kDivergentStep = 0.5;
// That check (one float64 Hessian) runs only when some predicted rate is below this fraction of
// the mean count, i.e. more than ~14 e-folds under it.
constexpr double kVanishingRate = 1e-6;
// ... and, before the gradient is within tol, only from this many iterations on.
constexpr int kLateIteration = 20;
constexpr int kDivergentConfirmations = 3;
// A reused Hessian factor is kept while each step it gives cuts the max |gradient| at least by
// this factor; otherwise the Hessian is recomputed at the new point.
constexpr double kChordContraction = 0.5;
// Extra steps taken after the gradient is within tol (see solve_neuron).
constexpr int kPolishSteps = 30;
// ... while the next step would still move a coefficient by more than kPolishStep * tol
// (relative to the largest) and each cuts the gradient at least by kPolishContraction.
constexpr double kPolishStep = 0.1;
constexpr double kPolishContraction = 0.9;
// float32 Hessians (relative error ~1e-6) are used only when the scaled Gram matrix of the
// neuron's design has a reciprocal condition number above this; below it, float64 throughout.
constexpr double kSinglePrecisionRcond = 1e-6;
// Hessians are formed on every k-th row when a neuron has more than this many rows per parameter
// (sub-sampled Newton); the exact gradient still decides steps and convergence.
constexpr Index kHessianRowsPerParam = 32;
// Factor reuse is tried only when (Hessian rows) * q >= this * n, i.e. when a Hessian costs
// well over the two matrix-vector passes of a step.
constexpr Index kChordWorthIt = 32;
// Row chunks of the Gram matrix pass (fixed, so sums do not depend on the thread count).
constexpr Index kGramChunks = 8;
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
  const Design& design() const { return design_; }
  Index row(Index i) const { return rows_[i]; }

  /// out = [1, X_active] * theta over the valid rows.
  void multiply(const VectorXd& theta, VectorXd& out) {
    if (reads_design_in_place()) {
      out.noalias() = design_.middleRows(rows_[0], n_rows()) * theta.tail(n_params() - 1);
      out.array() += theta[0];
      return;
    }
    for (Index start = 0; start < n_rows(); start += block_rows_) {
      const Index len = std::min(block_rows_, n_rows() - start);
      gather(start, len);
      out.segment(start, len).noalias() = block_.topRows(len) * theta;
    }
  }

  /// gradient = A^T (mu - y) / n.
  void gradient(const VectorXd& mu, const VectorXd& y, VectorXd& gradient) {
    if (reads_design_in_place()) {
      const VectorXd residual = mu - y;
      gradient[0] = residual.sum();
      gradient.tail(n_params() - 1).noalias() =
          design_.middleRows(rows_[0], n_rows()).transpose() * residual;
      gradient /= static_cast<double>(n_rows());
      return;
    }
    gradient.setZero();
    for (Index start = 0; start < n_rows(); start += block_rows_) {
      const Index len = std::min(block_rows_, n_rows() - start);
      gather(start, len);
      gradient.noalias() += block_.topRows(len).transpose() * (mu.segment(start, len) - y.segment(start, len));
    }
    gradient /= static_cast<double>(n_rows());
  }

  /// gradient = A^T (mu - y) / n and hessian = A^T diag(mu) A / n, A = [1, X_active]; with
  /// `single_precision` each block's product is formed in float32 and summed in float64.
  void gradient_and_hessian(const VectorXd& mu, const VectorXd& y, VectorXd& gradient,
                            MatrixColMajor& hessian, bool single_precision) {
    gradient.setZero();
    hessian.setZero();
    const Index q = n_params();
    if (single_precision) {
      block_single_.resize(block_rows_, q);
      hessian_single_.resize(q, q);
    }
    for (Index start = 0; start < n_rows(); start += block_rows_) {
      const Index len = std::min(block_rows_, n_rows() - start);
      gather(start, len);
      auto rows_block = block_.topRows(len);
      gradient.noalias() += rows_block.transpose() * (mu.segment(start, len) - y.segment(start, len));
      rows_block.array().colwise() *= mu.segment(start, len).array().sqrt();
      if (single_precision) {
        block_single_.topRows(len) = rows_block.template cast<float>();
        hessian_single_.setZero();
        hessian_single_.selfadjointView<Eigen::Lower>().rankUpdate(block_single_.topRows(len).transpose());
        hessian.template triangularView<Eigen::Lower>() += hessian_single_.template cast<double>();
      } else {
        hessian.selfadjointView<Eigen::Lower>().rankUpdate(rows_block.transpose());
      }
    }
    const double inv_n = 1.0 / static_cast<double>(n_rows());
    gradient *= inv_n;
    hessian = hessian.selfadjointView<Eigen::Lower>();
    hessian *= inv_n;
  }

 private:
  /// Matrix-vector products can read X directly (no gathered copy) when every feature is active
  /// and the valid rows are one contiguous range.
  bool reads_design_in_place() const {
    return rows_are_contiguous_ && n_rows() > 0 &&
           static_cast<Index>(active_.size()) == design_.cols();
  }

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
  Eigen::Ref<const IndexVector> rows_;
  std::vector<Index> active_;
  Index block_rows_ = 1;
  bool rows_are_contiguous_ = false;
  MatrixColMajor block_;
  Eigen::MatrixXf block_single_;
  Eigen::MatrixXf hessian_single_;
};

/// A factorisation of the Hessian that turns gradients into Newton directions. It is kept
/// across iterations so that near the optimum the same factor can serve several steps.
class NewtonSystem {
 public:
  /// Factorise; returns false when the Hessian is numerically rank deficient.
  bool factorize(const MatrixColMajor& hessian) {
    const Index q = hessian.rows();
    scale_.resize(q);
    for (Index i = 0; i < q; ++i) {
      const double diagonal = hessian(i, i);
      scale_[i] = (diagonal > 0.0 && std::isfinite(diagonal)) ? 1.0 / std::sqrt(diagonal) : 1.0;
    }
    // Jacobi scaling makes the rank decision independent of the features' units.
    const MatrixColMajor scaled = scale_.asDiagonal() * hessian * scale_.asDiagonal();
    cholesky_.compute(scaled);
    full_rank_ = cholesky_.info() == Eigen::Success && cholesky_.rcond() > kRankTolerance;
    if (full_rank_) return true;

    Eigen::SelfAdjointEigenSolver<MatrixColMajor> eigen(scaled);
    vectors_ = eigen.eigenvectors();
    const VectorXd& values = eigen.eigenvalues();
    const double cutoff = kRankTolerance * std::max(values.maxCoeff(), 0.0);
    inverse_values_.resize(q);
    std::vector<Index> null_columns;
    for (Index i = 0; i < q; ++i) {
      inverse_values_[i] = values[i] > cutoff ? 1.0 / values[i] : 0.0;
      if (values[i] <= cutoff) null_columns.push_back(i);
    }
    weighted_null_.resize(q, static_cast<Index>(null_columns.size()));
    for (std::size_t c = 0; c < null_columns.size(); ++c)
      weighted_null_.col(static_cast<Index>(c)) = scale_.cwiseProduct(vectors_.col(null_columns[c]));
    null_columns_ = std::move(null_columns);
    null_gram_.compute(weighted_null_.transpose() * weighted_null_);
    return false;
  }

  /// direction = -H^{-1} gradient, or for a singular H the minimum-norm solution, which lies in
  /// the range of H: iterates never move along the design's null space.
  void solve(const VectorXd& gradient, VectorXd& direction) const {
    const VectorXd scaled_gradient = scale_.cwiseProduct(gradient);
    if (full_rank_) {
      direction = -scale_.cwiseProduct(cholesky_.solve(scaled_gradient));
      return;
    }
    // In scaled coordinates e = direction / scale every solution is e_range + null * z; the
    // minimum-norm unscaled direction makes scale * e orthogonal to scale * null.
    VectorXd solution = vectors_ * inverse_values_.cwiseProduct(vectors_.transpose() * scaled_gradient);
    if (!null_columns_.empty()) {
      const VectorXd z = null_gram_.solve(weighted_null_.transpose() * scale_.cwiseProduct(solution));
      for (std::size_t c = 0; c < null_columns_.size(); ++c)
        solution -= z[static_cast<Index>(c)] * vectors_.col(null_columns_[c]);
    }
    direction = -scale_.cwiseProduct(solution);
  }

 private:
  VectorXd scale_;
  Eigen::LLT<MatrixColMajor> cholesky_;
  bool full_rank_ = false;
  MatrixColMajor vectors_;
  VectorXd inverse_values_;
  std::vector<Index> null_columns_;
  MatrixColMajor weighted_null_;
  Eigen::LDLT<MatrixColMajor> null_gram_;
};

struct NeuronResult {
  FitStatus status = FitStatus::internal_error;
  int n_iter = 0;
  int n_hessian = 0;
  double gradient_norm = std::numeric_limits<double>::quiet_NaN();
  double objective = std::numeric_limits<double>::quiet_NaN();
};

double mean_objective(const VectorXd& mu, const VectorXd& eta, const VectorXd& y) {
  return (mu.array() - y.array() * eta.array()).mean();
}

/// True when the neuron is silent or some predicted rate is vanishing relative to its mean count.
bool rates_reach_zero(const VectorXd& mu, const VectorXd& y) {
  const double mean_count = y.mean();
  return mean_count == 0.0 || mu.minCoeff() < kVanishingRate * mean_count;
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

/// Safeguarded Newton for one neuron. Exact float64 gradients decide everything (steps, line
/// search, stopping); the Hessian only shapes the steps, so it is recomputed only when the last
/// factor stops halving the gradient ("chord" steps), and after a first float64 Hessian shows
/// the design has full rank it is accumulated in float32 (twice the throughput). A step that
/// fails with a reused or float32 factor is retried with a fresh float64 Hessian.
template <class Design>
NeuronResult solve_neuron(NeuronDesign<Design>& problem, const VectorXd& y, VectorXd& theta,
                          const NewtonOptions& options, bool well_conditioned) {
  NeuronResult result;
  const Index n = problem.n_rows();
  const Index q = problem.n_params();
  if (n == 0) {
    result.status = FitStatus::no_valid_rows;
    return result;
  }
  VectorXd eta(n), mu(n), step_eta(n), gradient(q), trial_gradient(q), direction(q);
  MatrixColMajor hessian(q, q);
  NewtonSystem system;

  // Hessians at three accuracies; exact float64 gradients decide every step either way.
  // Sub-sampled rows and float32 are used only for well-conditioned designs, and a fresh factor
  // that fails (no acceptable step, or a full step that does not halve the gradient) moves the
  // neuron up one level for good.
  enum Accuracy : int { kSampledSingle = 0, kFullSingle = 1, kFullDouble = 2 };
  const Index stride = n / (kHessianRowsPerParam * q);
  IndexVector sampled_rows;
  std::vector<Index> sampled_positions;
  if (stride >= 2) {
    for (Index i = 0; i < n; i += stride) sampled_positions.push_back(i);
    sampled_rows.resize(static_cast<Index>(sampled_positions.size()));
    for (std::size_t k = 0; k < sampled_positions.size(); ++k)
      sampled_rows[static_cast<Index>(k)] = problem.row(sampled_positions[k]);
  }
  NeuronDesign<Design> sampled(problem.design(), sampled_rows, problem.active());
  VectorXd sampled_mu(sampled_rows.size()), sampled_gradient(q);
  int level = !well_conditioned ? kFullDouble : (stride >= 2 ? kSampledSingle : kFullSingle);
  int factor_level = kFullDouble;
  bool factor_is_fresh = false;  // factor computed at the current point

  auto refresh_hessian = [&](int minimum_level) {
    factor_level = std::max(level, minimum_level);
    if (factor_level == kSampledSingle) {
      problem.gradient(mu, y, gradient);
      for (std::size_t k = 0; k < sampled_positions.size(); ++k)
        sampled_mu[static_cast<Index>(k)] = mu[sampled_positions[k]];
      // y is not needed for the Hessian; the sampled gradient is discarded.
      sampled.gradient_and_hessian(sampled_mu, sampled_mu, sampled_gradient, hessian, true);
    } else {
      problem.gradient_and_hessian(mu, y, gradient, hessian, factor_level == kFullSingle);
    }
    system.factorize(hessian);
    factor_is_fresh = true;
    ++result.n_hessian;
  };
  auto escalate = [&]() { level = std::max(level, std::min<int>(factor_level + 1, kFullDouble)); };

  problem.multiply(theta, eta);
  mu = eta.array().exp();
  refresh_hessian(kSampledSingle);
  if (!gradient.allFinite()) {
    // A start far enough out to overflow exp(eta): restart from the intercept-only model.
    theta.setZero();
    theta[0] = std::log(std::max(y.mean(), 0.5 / static_cast<double>(n)));
    problem.multiply(theta, eta);
    mu = eta.array().exp();
    refresh_hessian(kFullDouble);
  }

  int divergent_confirmations = 0;
  result.status = FitStatus::max_iter_reached;
  for (;;) {
    result.gradient_norm = gradient.cwiseAbs().maxCoeff();
    const bool within_tol = result.gradient_norm <= options.tol;
    bool diverging = false;
    if ((within_tol || result.n_iter >= kLateIteration) && rates_reach_zero(mu, y)) {
      // Some predicted rates are vanishing: either a legitimately extreme fit or an MLE at
      // infinity (silent neuron, perfect separation). Only the latter still has a large exact
      // Newton step, which no loose or reused factor can hide. Checked late in slow fits too:
      // a divergence can crawl for hundreds of iterations before its gradient reaches tol.
      if (!(factor_is_fresh && factor_level == kFullDouble)) refresh_hessian(kFullDouble);
      system.solve(gradient, direction);
      problem.multiply(direction, step_eta);
      diverging = step_eta.cwiseAbs().maxCoeff() > kDivergentStep;
    }
    if (diverging) {
      // Confirm over a few steps so that a loose tol cannot mislabel a finite optimum.
      if (divergent_confirmations >= kDivergentConfirmations || result.n_iter >= options.max_iter) {
        result.status = FitStatus::mle_at_infinity;
        break;
      }
      ++divergent_confirmations;
    } else if (within_tol) {
      result.status = FitStatus::converged;
      // Within tol, more steps with the factor in hand (exact or approximate) take the gradient
      // towards rounding level, so the coefficients are exact even where the Hessian is small.
      // Each costs two matrix-vector passes, not a Hessian; they stop once progress stalls.
      for (int polish = 0; polish < kPolishSteps; ++polish) {
        system.solve(gradient, direction);
        // The remaining step bounds the coefficients' error: stop once it is negligible.
        if (direction.cwiseAbs().maxCoeff() <= kPolishStep * options.tol * (1.0 + theta.cwiseAbs().maxCoeff()))
          break;
        const double slope = gradient.dot(direction);
        if (!(slope < 0.0) || !direction.allFinite()) break;
        problem.multiply(direction, step_eta);
        const double step = backtrack(mu, step_eta, slope);
        if (step == 0.0) break;
        VectorXd polished_eta = eta + step * step_eta;
        VectorXd polished_mu = polished_eta.array().exp();
        problem.gradient(polished_mu, y, trial_gradient);
        const double polished_norm = trial_gradient.cwiseAbs().maxCoeff();
        if (!(polished_norm < result.gradient_norm)) break;
        theta.noalias() += step * direction;
        eta.swap(polished_eta);
        mu.swap(polished_mu);
        gradient.swap(trial_gradient);
        const double previous_norm = result.gradient_norm;
        result.gradient_norm = polished_norm;
        ++result.n_iter;
        if (polished_norm > kPolishContraction * previous_norm) break;
      }
      break;
    }
    if (!within_tol && result.n_iter >= options.max_iter) break;

    system.solve(gradient, direction);
    double slope = gradient.dot(direction);
    double step = 0.0;
    if (slope < 0.0 && direction.allFinite()) {
      problem.multiply(direction, step_eta);
      step = backtrack(mu, step_eta, slope);
    }
    if (step == 0.0) {
      if (factor_is_fresh && factor_level == kFullDouble) {
        result.status = FitStatus::line_search_failed;
        break;
      }
      if (factor_is_fresh) escalate();
      refresh_hessian(kFullDouble);
      continue;
    }
    const bool fresh_approximate_full_step = factor_is_fresh && factor_level < kFullDouble && step == 1.0;
    theta.noalias() += step * direction;
    eta.noalias() += step * step_eta;
    mu = eta.array().exp();
    ++result.n_iter;

    const double previous_norm = result.gradient_norm;
    // Reusing a factor saves a Hessian but costs the steps it does less well; it pays only when
    // a Hessian costs many matrix-vector passes (large q, many Hessian rows).
    const Index hessian_rows = level == kSampledSingle ? sampled_rows.size() : n;
    if (hessian_rows * q >= kChordWorthIt * n) {
      problem.gradient(mu, y, trial_gradient);
      if (trial_gradient.cwiseAbs().maxCoeff() <= kChordContraction * previous_norm) {
        gradient.swap(trial_gradient);  // the factor still works: keep it for the next step
        factor_is_fresh = false;
        continue;
      }
      // A full step from a fresh approximate factor that does not halve the gradient means the
      // approximation is not good enough for this neuron.
      if (fresh_approximate_full_step) escalate();
      refresh_hessian(kSampledSingle);
    } else {
      refresh_hessian(kSampledSingle);
      if (fresh_approximate_full_step && gradient.cwiseAbs().maxCoeff() > kChordContraction * previous_norm)
        escalate();
    }
  }
  result.objective = mean_objective(mu, eta, y);
  return result;
}

/// Gram matrix A^T A / n of A = [1, X] over the valid rows. A fixed partition of the rows
/// (not one per thread) keeps the sum, and so every decision based on it, thread-independent.
template <class Design>
MatrixColMajor design_gram(const Design& design, const Eigen::Ref<const IndexVector>& rows,
                           int n_threads) {
  const Index n = rows.size();
  const Index q = design.cols() + 1;
  std::vector<Index> all_features(static_cast<std::size_t>(design.cols()));
  for (Index p = 0; p < design.cols(); ++p) all_features[static_cast<std::size_t>(p)] = p;
  const Index n_chunks = std::clamp<Index>(n / 4096, 1, kGramChunks);
  std::vector<MatrixColMajor> partial(static_cast<std::size_t>(n_chunks), MatrixColMajor::Zero(q, q));
#pragma omp parallel for schedule(static, 1) num_threads(sanitize_threads(n_threads))
  for (Index c = 0; c < n_chunks; ++c) {
    const Index start = n * c / n_chunks;
    const Index len = n * (c + 1) / n_chunks - start;
    if (len == 0) continue;
    NeuronDesign<Design> chunk(design, rows.segment(start, len), all_features);
    VectorXd unit = VectorXd::Ones(len);
    VectorXd gradient(q);
    chunk.gradient_and_hessian(unit, unit, gradient, partial[static_cast<std::size_t>(c)], false);
    partial[static_cast<std::size_t>(c)] *= static_cast<double>(len);
  }
  MatrixColMajor gram = MatrixColMajor::Zero(q, q);
  for (const auto& block : partial) gram += block;
  return n > 0 ? MatrixColMajor(gram / static_cast<double>(n)) : gram;
}

/// True when a neuron's masked design is well enough conditioned for float32 Hessians: the
/// Hessian A^T W A has the null space of A, and its conditioning starts from that of A^T A.
bool well_conditioned(const MatrixColMajor& gram, const std::vector<Index>& active) {
  const Index q = static_cast<Index>(active.size()) + 1;
  MatrixColMajor block(q, q);
  auto index = [&](Index i) { return i == 0 ? Index{0} : active[static_cast<std::size_t>(i - 1)] + 1; };
  for (Index j = 0; j < q; ++j)
    for (Index i = 0; i < q; ++i) block(i, j) = gram(index(i), index(j));
  VectorXd scale = block.diagonal().cwiseMax(0.0).cwiseSqrt();
  for (Index i = 0; i < q; ++i) scale[i] = scale[i] > 0.0 ? 1.0 / scale[i] : 0.0;
  if ((scale.array() == 0.0).any()) return false;  // an all-zero feature: rank deficient
  const MatrixColMajor scaled = scale.asDiagonal() * block * scale.asDiagonal();
  Eigen::LLT<MatrixColMajor> cholesky(scaled);
  return cholesky.info() == Eigen::Success && cholesky.rcond() > kSinglePrecisionRcond;
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
      report.gradient_norm.size() != n_neurons || report.objective.size() != n_neurons ||
      report.n_hessian.size() != n_neurons)
    throw std::invalid_argument("fit_poisson_population: report arrays need n_neurons entries");
  for (Index i = 0; i < rows.size(); ++i)
    if (rows[i] < 0 || rows[i] >= n_samples)
      throw std::invalid_argument("fit_poisson_population: row index out of range");
  if (!(options.tol > 0.0) || options.max_iter < 0)
    throw std::invalid_argument("fit_poisson_population: tol must be > 0 and max_iter >= 0");

  const MatrixColMajor gram = design_gram(design, rows, n_threads);

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
      result = solve_neuron(problem, y, theta, options, well_conditioned(gram, active));
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
    report.n_hessian[neuron] = result.n_hessian;
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
