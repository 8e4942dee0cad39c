#include "popglm/proximal_newton.hpp"

#include <Eigen/Cholesky>
#include <Eigen/Eigenvalues>
#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <vector>

#include "design_rows.hpp"
#include "popglm/constants.hpp"

namespace popglm {
namespace {

using namespace detail;  // NOLINT: the row sources and shared products

// Coordinate descent on each quadratic model stops when no coordinate moves by more than this,
// relative to the largest coefficient: far below what the outer tolerance can see.
constexpr double kSweepTolerance = 1e-15;
constexpr int kMaxSweeps = 20000;
// Block proximal-gradient steps per group and sweep (a group's quadratic has no closed form).
constexpr int kGroupSteps = 4;
// Smooth models take the Cholesky Newton step when the Hessian's reciprocal condition exceeds
// this; near-singular ones (collinear features) go through coordinate descent.
constexpr double kCholeskyRcond = 1e-12;
// Outer iterations allowed beyond max_iter for the rounds loop to end in any case.
constexpr int kExtraRounds = 4;

double softplus(double x) { return x > 0.0 ? x + std::log1p(std::exp(-x)) : std::log1p(std::exp(x)); }
double sigmoid(double x) {
  if (x >= 0.0) return 1.0 / (1.0 + std::exp(-x));
  const double e = std::exp(x);
  return e / (1.0 + e);
}
/// softplus(a + b) - softplus(a) without cancellation.
double softplus_change(double a, double b) {
  if (a + b > 0.0 && a > 0.0) return b + std::log1p(std::exp(-a - b)) - std::log1p(std::exp(-a));
  return std::log1p(sigmoid(a) * std::expm1(b));
}

/// Per-sample loss l(eta, y) of each observation model (NeMoS's negative log-likelihood up to
/// constants), its first two derivatives in eta, and l(eta + t, y) - l(eta, y) computed without
/// cancellation, which the line search needs near the optimum.
struct Observation {
  ObservationFamily family = ObservationFamily::poisson_exp;
  double scale = 1.0;  // negative binomial dispersion phi

  double loss(double eta, double y) const {
    switch (family) {
      case ObservationFamily::poisson_exp: return std::exp(eta) - y * eta;
      case ObservationFamily::poisson_softplus: { const double mu = softplus(eta); return mu - y * std::log(mu); }
      case ObservationFamily::bernoulli_logistic: return softplus(eta) - y * eta;
      case ObservationFamily::gamma_inverse:
        return eta > 0.0 ? y * eta - std::log(eta) : std::numeric_limits<double>::infinity();
      case ObservationFamily::gamma_exp: return y * std::exp(-eta) + eta;
      case ObservationFamily::negative_binomial_exp:
        return (y + 1.0 / scale) * softplus(eta + std::log(scale)) - y * eta - y * std::log(scale);
      case ObservationFamily::gaussian_identity: return (y - eta) * (y - eta);
    }
    return 0.0;
  }
  double first(double eta, double y) const {
    switch (family) {
      case ObservationFamily::poisson_exp: return std::exp(eta) - y;
      case ObservationFamily::poisson_softplus: return sigmoid(eta) * (1.0 - y / softplus(eta));
      case ObservationFamily::bernoulli_logistic: return sigmoid(eta) - y;
      case ObservationFamily::gamma_inverse: return y - 1.0 / eta;
      case ObservationFamily::gamma_exp: return 1.0 - y * std::exp(-eta);
      case ObservationFamily::negative_binomial_exp:
        return (y + 1.0 / scale) * sigmoid(eta + std::log(scale)) - y;
      case ObservationFamily::gaussian_identity: return 2.0 * (eta - y);
    }
    return 0.0;
  }
  double second(double eta, double y) const {
    switch (family) {
      case ObservationFamily::poisson_exp: return std::exp(eta);
      case ObservationFamily::poisson_softplus: {
        const double s = sigmoid(eta), mu = softplus(eta);
        return s * (1.0 - s) * (1.0 - y / mu) + s * s * y / (mu * mu);
      }
      case ObservationFamily::bernoulli_logistic: { const double s = sigmoid(eta); return s * (1.0 - s); }
      case ObservationFamily::gamma_inverse: return 1.0 / (eta * eta);
      case ObservationFamily::gamma_exp: return y * std::exp(-eta);
      case ObservationFamily::negative_binomial_exp: {
        const double s = sigmoid(eta + std::log(scale));
        return (y + 1.0 / scale) * s * (1.0 - s);
      }
      case ObservationFamily::gaussian_identity: return 2.0;
    }
    return 0.0;
  }
  double change(double eta, double y, double t) const {
    switch (family) {
      case ObservationFamily::poisson_exp: return std::exp(eta) * std::expm1(t) - y * t;
      case ObservationFamily::poisson_softplus: {
        const double mu = softplus(eta), delta = softplus_change(eta, t);
        return delta - (y > 0.0 ? y * std::log1p(delta / mu) : 0.0);
      }
      case ObservationFamily::bernoulli_logistic: return softplus_change(eta, t) - y * t;
      case ObservationFamily::gamma_inverse:
        return eta + t > 0.0 ? y * t - std::log1p(t / eta) : std::numeric_limits<double>::infinity();
      case ObservationFamily::gamma_exp: return y * std::exp(-eta) * std::expm1(-t) + t;
      case ObservationFamily::negative_binomial_exp:
        return (y + 1.0 / scale) * softplus_change(eta + std::log(scale), t) - y * t;
      case ObservationFamily::gaussian_identity: return t * (t - 2.0 * (y - eta));
    }
    return 0.0;
  }
  /// True when the mean response leaves no finite optimum for the intercept.
  bool intercept_at_infinity(double mean_response) const {
    switch (family) {
      case ObservationFamily::poisson_exp:
      case ObservationFamily::poisson_softplus:
      case ObservationFamily::negative_binomial_exp: return mean_response == 0.0;
      case ObservationFamily::bernoulli_logistic: return mean_response == 0.0 || mean_response == 1.0;
      default: return false;
    }
  }
};

struct SparseState {
  Index neuron = 0;
  std::vector<Index> active;
  VectorXd theta, gradient, direction, l1, l2;
  std::vector<std::vector<Index>> groups;  // parameter positions (1..q-1) of each group
  std::vector<double> group_weights;
  std::vector<char> grouped;  // per parameter
  double mean_count = 0.0;
  double smooth_slope = 0.0;
  double loss_slope = 0.0;  // the part of smooth_slope from the loss (the rest is the l2 penalty)
  double predicted_change = 0.0;
  bool needs_gradient = true;
  bool pending_step = false;
  bool done = false;
  Index batch_column = -1;
  FitStatus status = FitStatus::internal_error;
  int n_iter = 0;
  int n_hessian = 0;
  double gradient_norm = std::numeric_limits<double>::quiet_NaN();
  double objective = std::numeric_limits<double>::quiet_NaN();

  Index n_params() const { return static_cast<Index>(active.size()) + 1; }
};

double soft_threshold(double value, double threshold) {
  if (value > threshold) return value - threshold;
  if (value < -threshold) return value + threshold;
  return 0.0;
}

/// The non-smooth part of the penalty (the l2 part belongs to the smooth objective).
double nonsmooth_penalty(const SparseState& state, const VectorXd& theta) {
  double total = 0.0;
  for (Index i = 1; i < theta.size(); ++i)
    if (!state.grouped[static_cast<std::size_t>(i)]) total += state.l1[i] * std::abs(theta[i]);
  for (std::size_t g = 0; g < state.groups.size(); ++g) {
    double squares = 0.0;
    for (Index i : state.groups[g]) squares += theta[i] * theta[i];
    total += state.group_weights[g] * std::sqrt(squares);
  }
  return total;
}

/// Largest entry of the minimum-norm subgradient of the objective: zero exactly at the optimum.
double stationarity(const SparseState& state) {
  const VectorXd& g = state.gradient;
  const VectorXd& theta = state.theta;
  double worst = std::abs(g[0]);
  for (Index i = 1; i < theta.size(); ++i) {
    if (state.grouped[static_cast<std::size_t>(i)]) continue;
    const double value = theta[i] != 0.0 ? std::abs(g[i] + std::copysign(state.l1[i], theta[i]))
                                          : std::max(std::abs(g[i]) - state.l1[i], 0.0);
    worst = std::max(worst, value);
  }
  for (std::size_t k = 0; k < state.groups.size(); ++k) {
    const auto& group = state.groups[k];
    const double weight = state.group_weights[k];
    double theta_norm = 0.0, gradient_norm = 0.0, gradient_max = 0.0;
    for (Index i : group) {
      theta_norm += theta[i] * theta[i];
      gradient_norm += g[i] * g[i];
      gradient_max = std::max(gradient_max, std::abs(g[i]));
    }
    theta_norm = std::sqrt(theta_norm);
    gradient_norm = std::sqrt(gradient_norm);
    if (theta_norm > 0.0) {
      for (Index i : group) worst = std::max(worst, std::abs(g[i] + weight * theta[i] / theta_norm));
    } else if (gradient_norm > weight) {
      worst = std::max(worst, gradient_max * (1.0 - weight / gradient_norm));
    }
  }
  return worst;
}

/// Minimise g.(z - theta) + 0.5 (z - theta)' H (z - theta) + nonsmooth_penalty(z) over z by
/// cyclic coordinate (and group) descent; returns the direction z - theta.
VectorXd solve_model(const SparseState& state, const MatrixColMajor& hessian) {
  const Index q = state.n_params();
  if (state.groups.empty() && state.l1.isZero(0.0)) {
    // A smooth model (another family, or Ridge): the Newton step itself, by Cholesky when the
    // Hessian is safely positive definite; coordinate descent below handles the rest.
    const Eigen::LLT<MatrixColMajor> cholesky(hessian);
    if (cholesky.info() == Eigen::Success && cholesky.rcond() > kCholeskyRcond) {
      VectorXd step = -cholesky.solve(state.gradient);
      if (step.allFinite()) return step;
    }
  }
  VectorXd z = state.theta;
  VectorXd residual = state.gradient;  // = g + H (z - theta), kept up to date
  std::vector<double> group_lipschitz(state.groups.size());
  for (std::size_t k = 0; k < state.groups.size(); ++k) {
    const auto& group = state.groups[k];
    const Index m = static_cast<Index>(group.size());
    MatrixColMajor block(m, m);
    for (Index a = 0; a < m; ++a)
      for (Index b = 0; b < m; ++b) block(a, b) = hessian(group[a], group[b]);
    const double largest = Eigen::SelfAdjointEigenSolver<MatrixColMajor>(block, Eigen::EigenvaluesOnly)
                               .eigenvalues()
                               .maxCoeff();
    group_lipschitz[k] = std::max(largest, std::numeric_limits<double>::min());
  }
  auto move = [&](Index i, double new_value) {
    const double change = new_value - z[i];
    if (change == 0.0) return 0.0;
    z[i] = new_value;
    residual.noalias() += change * hessian.col(i);
    return std::abs(change);
  };
  for (int sweep = 0; sweep < kMaxSweeps; ++sweep) {
    double largest_change = 0.0;
    for (Index i = 0; i < q; ++i) {
      if (i > 0 && state.grouped[static_cast<std::size_t>(i)]) continue;
      const double curvature = hessian(i, i);
      if (!(curvature > 0.0)) {
        if (i > 0 && state.l1[i] > 0.0) largest_change = std::max(largest_change, move(i, 0.0));
        continue;
      }
      const double target = z[i] - residual[i] / curvature;
      const double value = i == 0 ? target : soft_threshold(target, state.l1[i] / curvature);
      largest_change = std::max(largest_change, move(i, value));
    }
    for (std::size_t k = 0; k < state.groups.size(); ++k) {
      const auto& group = state.groups[k];
      const double step = 1.0 / group_lipschitz[k];
      for (int inner = 0; inner < kGroupSteps; ++inner) {
        double norm = 0.0;
        std::vector<double> target(group.size());
        for (std::size_t a = 0; a < group.size(); ++a) {
          target[a] = z[group[a]] - step * residual[group[a]];
          norm += target[a] * target[a];
        }
        norm = std::sqrt(norm);
        const double shrink = norm > 0.0 ? std::max(0.0, 1.0 - step * state.group_weights[k] / norm) : 0.0;
        double group_change = 0.0;
        for (std::size_t a = 0; a < group.size(); ++a)
          group_change = std::max(group_change, move(group[a], shrink * target[a]));
        largest_change = std::max(largest_change, group_change);
        if (group_change == 0.0) break;
      }
    }
    if (largest_change <= kSweepTolerance * (1.0 + z.cwiseAbs().maxCoeff())) break;
  }
  return z - state.theta;
}

template <class Source>
class SparseSolver {
 public:
  SparseSolver(const Source& design, const Eigen::Ref<const MatrixColMajor>& counts,
               const Eigen::Ref<const IndexVector>& rows, const Observation& observation,
               const NewtonOptions& options, int n_threads)
      : observation_(observation),
        design_(design),
        shared_(design, rows),
        counts_(counts),
        rows_(rows),
        contiguous_(is_contiguous(rows)),
        options_(options),
        n_threads_(n_threads) {
    shared_.set_stop(options.stop);
  }

  void solve(std::vector<SparseState>& states) {
    const Index n = rows_.size();
    eta_.resize(n, static_cast<Index>(states.size()));
    step_eta_.resize(n, static_cast<Index>(states.size()));
    std::vector<SparseState*> batch;
    for (auto& state : states)
      if (!state.done) batch.push_back(&state);
    linear_predictors(batch, true);
    for (SparseState* state : batch) eta_.col(state->neuron) = step_eta_.col(state->batch_column);

    const Index n_neurons = static_cast<Index>(states.size());
    for (int round = 0; round < options_.max_iter + kExtraRounds; ++round) {
      std::vector<SparseState*> running, needing, stepping;
      // NaN until some neuron has a gradient (the first rounds): progress reports it as pending.
      double largest_gradient = std::numeric_limits<double>::quiet_NaN();
      for (auto& state : states)
        if (!state.done) {
          running.push_back(&state);
          keep_largest_finite(largest_gradient, state.gradient_norm);
        }
      if (running.empty()) break;
      if (options_.progress)
        options_.progress(n_neurons - static_cast<Index>(running.size()), n_neurons, largest_gradient);
      for (SparseState* state : running)
        if (state->needs_gradient) needing.push_back(state);
      gradients(needing);
      if (interrupted(states)) return;
      for_each(running, [&](SparseState& state) { plan(state); });
      if (interrupted(states)) return;
      for (SparseState* state : running)
        if (state->pending_step) stepping.push_back(state);
      linear_predictors(stepping, false);
      if (interrupted(states)) return;
      for_each(stepping, [&](SparseState& state) { advance(state); });
    }
    for (auto& state : states)
      if (!state.done) finish(state, FitStatus::max_iter_reached);
  }

 private:
  /// True (and every unfinished neuron marked interrupted) once the stop token has fired.
  bool interrupted(std::vector<SparseState>& states) const {
    if (!stop_requested(options_.stop)) return false;
    for (auto& state : states)
      if (!state.done) {
        state.done = true;
        state.pending_step = false;
        state.status = FitStatus::interrupted;
      }
    return true;
  }

  template <class Fn>
  void for_each(const std::vector<SparseState*>& states, const Fn& fn) {
    const Index count = static_cast<Index>(states.size());
#pragma omp parallel for schedule(dynamic, 1) num_threads(sanitize_threads(n_threads_)) if (count > 1)
    for (Index k = 0; k < count; ++k) {
      SparseState& state = *states[static_cast<std::size_t>(k)];
      if (stop_requested(options_.stop)) continue;
      try {
        fn(state);
      } catch (...) {
        // No exception may leave an OpenMP region: the neuron reports an internal error.
        state.pending_step = false;
        state.done = true;
        state.status = FitStatus::internal_error;
      }
    }
  }

  double count(Index position, Index neuron) const {
    return counts_(contiguous_ ? rows_[0] + position : rows_[position], neuron);
  }

  void gradients(const std::vector<SparseState*>& batch) {
    if (batch.empty()) return;
    const Index m = static_cast<Index>(batch.size());
    auto fill_residual = [&](Index start, Index len, MatrixColMajor& residual) {
      for (Index k = 0; k < m; ++k) {
        const Index neuron = batch[static_cast<std::size_t>(k)]->neuron;
        for (Index i = 0; i < len; ++i)
          residual(i, k) = observation_.first(eta_(start + i, neuron), count(start + i, neuron));
      }
    };
    MatrixColMajor full;
    shared_.transpose_multiply(m, fill_residual, full, n_threads_);
    for (Index k = 0; k < m; ++k) {
      SparseState& state = *batch[static_cast<std::size_t>(k)];
      gather_gradient(full, k, state);
      state.gradient += state.l2.cwiseProduct(state.theta);
      state.needs_gradient = false;
    }
  }

  void linear_predictors(const std::vector<SparseState*>& batch, bool of_theta) {
    batched_linear_predictors(shared_, batch, of_theta, step_eta_, n_threads_);
  }

  void finish(SparseState& state, FitStatus status) {
    const auto eta = eta_.col(state.neuron);
    double sum = 0.0;
    for (Index i = 0; i < eta.size(); ++i) sum += observation_.loss(eta[i], count(i, state.neuron));
    state.objective = sum / static_cast<double>(eta.size()) +
                      0.5 * state.l2.dot(state.theta.cwiseAbs2()) + nonsmooth_penalty(state, state.theta);
    // E.g. a silent neuron: its intercept has no finite optimum (it is never penalised).
    state.status = status == FitStatus::converged && observation_.intercept_at_infinity(state.mean_count)
                       ? FitStatus::mle_at_infinity
                       : status;
    state.done = true;
    state.pending_step = false;
  }

  void plan(SparseState& state) {
    state.pending_step = false;
    state.gradient_norm = stationarity(state);
    if (state.gradient_norm <= options_.tol) return finish(state, FitStatus::converged);
    if (state.n_iter >= options_.max_iter) return finish(state, FitStatus::max_iter_reached);
    const auto eta = eta_.col(state.neuron);
    VectorXd weights(eta.size());
    for (Index i = 0; i < eta.size(); ++i) weights[i] = observation_.second(eta[i], count(i, state.neuron));
    MatrixColMajor hessian;
    NeuronRows<Source>(design_, rows_, state.active)
        .hessian(weights, static_cast<double>(rows_.size()), hessian, false, options_.stop, n_threads_);
    hessian.diagonal() += state.l2;
    ++state.n_hessian;
    state.direction = solve_model(state, hessian);
    state.smooth_slope = state.gradient.dot(state.direction);
    state.loss_slope = state.smooth_slope - (state.l2.cwiseProduct(state.theta)).dot(state.direction);
    state.predicted_change = state.smooth_slope + nonsmooth_penalty(state, state.theta + state.direction) -
                             nonsmooth_penalty(state, state.theta);
    if (!(state.predicted_change < 0.0) || !state.direction.allFinite())
      return finish(state, FitStatus::line_search_failed);
    state.pending_step = true;
  }

  void advance(SparseState& state) {
    const auto eta = eta_.col(state.neuron);
    const auto step_eta = step_eta_.col(state.batch_column);
    const Index n = eta.size();
    const double l2_curvature = 0.5 * state.l2.dot(state.direction.cwiseAbs2());
    const double penalty_now = nonsmooth_penalty(state, state.theta);
    double step = 1.0;
    for (int halving = 0; halving <= kMaxHalvings; ++halving, step *= 0.5) {
      // Each sample's loss change is computed without cancellation, so the test still works when
      // the change is far below the objective's own rounding error.
      double loss_change = 0.0;
      for (Index i = 0; i < n; ++i)
        loss_change += observation_.change(eta[i], count(i, state.neuron), step * step_eta[i]);
      const double l2_slope = state.smooth_slope - state.loss_slope;
      const double change = loss_change / static_cast<double>(n) + step * l2_slope +
                            step * step * l2_curvature +
                            nonsmooth_penalty(state, state.theta + step * state.direction) - penalty_now;
      if (std::isfinite(change) && change <= kArmijo * step * state.predicted_change) {
        state.theta.noalias() += step * state.direction;
        eta_.col(state.neuron) += step * step_eta;
        ++state.n_iter;
        state.needs_gradient = true;
        return;
      }
    }
    finish(state, FitStatus::line_search_failed);
  }

  Observation observation_;
  const Source& design_;
  SharedDesign<Source> shared_;
  Eigen::Ref<const MatrixColMajor> counts_;
  Eigen::Ref<const IndexVector> rows_;
  bool contiguous_;
  NewtonOptions options_;
  int n_threads_;
  MatrixColMajor eta_;
  MatrixColMajor step_eta_;
};

template <class Source>
void fit_sparse_impl(const Source& design, const Eigen::Ref<const MatrixColMajor>& counts,
                     const Eigen::Ref<const MaskMatrix>& mask, const SparsePenalty& penalty,
                     const Eigen::Ref<const IndexVector>& rows, const Observation& observation,
                     const NewtonOptions& options,
                     Eigen::Ref<MatrixColMajor> coef, Eigen::Ref<Eigen::VectorXd> intercept,
                     PopulationFitReport& report, int n_threads) {
  const Index n_samples = design.rows();
  const Index n_features = design.cols();
  const Index n_neurons = counts.cols();
  const Index n_groups = penalty.group_weight.rows();
  const Index n = rows.size();
  if (counts.rows() != n_samples)
    throw std::invalid_argument("fit_glm_population: design and counts differ in n_samples");
  if (mask.rows() != n_features || mask.cols() != n_neurons)
    throw std::invalid_argument("fit_glm_population: mask must have shape (n_features, n_neurons)");
  if (penalty.l1.rows() != n_features || penalty.l1.cols() != n_neurons ||
      penalty.l2.rows() != n_features || penalty.l2.cols() != n_neurons ||
      penalty.group.rows() != n_features || penalty.group.cols() != n_neurons ||
      penalty.group_weight.cols() != n_neurons)
    throw std::invalid_argument("fit_glm_population: penalty arrays have the wrong shape");
  if (!((penalty.l1.array() >= 0.0).all() && (penalty.l2.array() >= 0.0).all() &&
        (penalty.group_weight.array() >= 0.0).all() && penalty.l1.allFinite() &&
        penalty.l2.allFinite() && penalty.group_weight.allFinite()))
    throw std::invalid_argument("fit_glm_population: penalty strengths must be finite and >= 0");
  if ((penalty.group.array() < -1).any() || (penalty.group.array() >= n_groups).any())
      throw std::invalid_argument("fit_glm_population: group ids must be -1 or < n_groups");
  if (coef.rows() != n_features || coef.cols() != n_neurons || intercept.size() != n_neurons)
    throw std::invalid_argument("fit_glm_population: coef/intercept have the wrong shape");
  if (report.status.size() != n_neurons || report.n_iter.size() != n_neurons ||
      report.gradient_norm.size() != n_neurons || report.objective.size() != n_neurons ||
      report.n_hessian.size() != n_neurons)
    throw std::invalid_argument("fit_glm_population: report arrays need n_neurons entries");
  for (Index i = 0; i < n; ++i)
    if (rows[i] < 0 || rows[i] >= n_samples)
      throw std::invalid_argument("fit_glm_population: row index out of range");
  if (!(options.tol > 0.0) || options.max_iter < 0)
    throw std::invalid_argument("fit_glm_population: tol must be > 0 and max_iter >= 0");
  if (!(observation.scale > 0.0) || !std::isfinite(observation.scale))
    throw std::invalid_argument("fit_glm_population: scale must be finite and > 0");

  std::vector<SparseState> states(static_cast<std::size_t>(n_neurons));
  for (Index neuron = 0; neuron < n_neurons; ++neuron) {
    SparseState& state = states[static_cast<std::size_t>(neuron)];
    state.neuron = neuron;
    for (Index p = 0; p < n_features; ++p)
      if (mask(p, neuron) != 0) state.active.push_back(p);
    const Index q = state.n_params();
    state.theta.resize(q);
    state.l1 = VectorXd::Zero(q);
    state.l2 = VectorXd::Zero(q);
    state.grouped.assign(static_cast<std::size_t>(q), 0);
    std::vector<Index> group_slot(static_cast<std::size_t>(n_groups), -1);
    state.theta[0] = intercept[neuron];
    for (std::size_t a = 0; a < state.active.size(); ++a) {
      const Index p = state.active[a];
      const Index i = static_cast<Index>(a) + 1;
      state.theta[i] = coef(p, neuron);
      state.l1[i] = penalty.l1(p, neuron);
      state.l2[i] = penalty.l2(p, neuron);
      const Index g = penalty.group(p, neuron);
      if (g < 0) continue;
      if (group_slot[static_cast<std::size_t>(g)] < 0) {
        group_slot[static_cast<std::size_t>(g)] = static_cast<Index>(state.groups.size());
        state.groups.emplace_back();
        state.group_weights.push_back(penalty.group_weight(g, neuron));
      }
      state.groups[static_cast<std::size_t>(group_slot[static_cast<std::size_t>(g)])].push_back(i);
      state.grouped[static_cast<std::size_t>(i)] = 1;
    }
    double total = 0.0;
    for (Index i = 0; i < n; ++i) total += counts(rows[i], neuron);
    state.mean_count = n > 0 ? total / static_cast<double>(n) : 0.0;
    if (n == 0) {
      state.done = true;
      state.status = FitStatus::no_valid_rows;
    }
  }
  if (n > 0) SparseSolver<Source>(design, counts, rows, observation, options, n_threads).solve(states);

  for (Index neuron = 0; neuron < n_neurons; ++neuron) {
    const SparseState& state = states[static_cast<std::size_t>(neuron)];
    if (state.status != FitStatus::no_valid_rows && state.status != FitStatus::internal_error) {
      coef.col(neuron).setZero();
      for (std::size_t a = 0; a < state.active.size(); ++a)
        coef(state.active[a], neuron) = state.theta[static_cast<Index>(a) + 1];
      intercept[neuron] = state.theta[0];
    }
    report.status[neuron] = static_cast<std::int32_t>(state.status);
    report.n_iter[neuron] = state.n_iter;
    report.n_hessian[neuron] = state.n_hessian;
    report.gradient_norm[neuron] = state.gradient_norm;
    report.objective[neuron] = state.objective;
  }
}

}  // namespace

void fit_glm_population(const Eigen::Ref<const MatrixColMajor>& design,
                                   const Eigen::Ref<const MatrixColMajor>& counts,
                                   const Eigen::Ref<const MaskMatrix>& mask,
                                   const SparsePenalty& penalty,
                                   const Eigen::Ref<const IndexVector>& rows,
                                   ObservationFamily family, double scale,
                                   const NewtonOptions& options, Eigen::Ref<MatrixColMajor> coef,
                                   Eigen::Ref<Eigen::VectorXd> intercept,
                                   PopulationFitReport& report, int n_threads) {
  const DenseRows<Eigen::Ref<const MatrixColMajor>> source(design);
  fit_sparse_impl(source, counts, mask, penalty, rows, Observation{family, scale}, options, coef, intercept, report, n_threads);
}

void fit_glm_population(const Eigen::Ref<const MatrixRowMajor>& design,
                                   const Eigen::Ref<const MatrixColMajor>& counts,
                                   const Eigen::Ref<const MaskMatrix>& mask,
                                   const SparsePenalty& penalty,
                                   const Eigen::Ref<const IndexVector>& rows,
                                   ObservationFamily family, double scale,
                                   const NewtonOptions& options, Eigen::Ref<MatrixColMajor> coef,
                                   Eigen::Ref<Eigen::VectorXd> intercept,
                                   PopulationFitReport& report, int n_threads) {
  const DenseRows<Eigen::Ref<const MatrixRowMajor>> source(design);
  fit_sparse_impl(source, counts, mask, penalty, rows, Observation{family, scale}, options, coef, intercept, report, n_threads);
}

void fit_glm_population_history(const Eigen::Ref<const MatrixColMajor>& inputs,
                                           const Eigen::Ref<const MatrixColMajor>& kernels,
                                           const Eigen::Ref<const MatrixColMajor>& counts,
                                           const Eigen::Ref<const MaskMatrix>& mask,
                                           const SparsePenalty& penalty,
                                           const Eigen::Ref<const IndexVector>& rows,
                                           ObservationFamily family, double scale,
                                           const NewtonOptions& options,
                                           Eigen::Ref<MatrixColMajor> coef,
                                           Eigen::Ref<Eigen::VectorXd> intercept,
                                           PopulationFitReport& report, int n_threads) {
  if (kernels.rows() < 1) throw std::invalid_argument("fit_glm_population_history: empty kernels");
  if (inputs.rows() != counts.rows())
    throw std::invalid_argument("fit_glm_population_history: inputs and counts differ in n_samples");
  for (Index i = 0; i < rows.size(); ++i)
    if (rows[i] < kernels.rows())
      throw std::invalid_argument("fit_glm_population_history: rows before the first full window");
  const HistoryRows source(inputs, kernels);
  fit_sparse_impl(source, counts, mask, penalty, rows, Observation{family, scale}, options, coef, intercept, report, n_threads);
}

}  // namespace popglm
