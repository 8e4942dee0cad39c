// The general method: per-neuron GLMs of any observation family with any penalty (Lasso,
// ElasticNet, GroupLasso, Ridge), by proximal Newton: exact Hessians, a coordinate-descent solve
// of each penalised quadratic model, and a line search on the true objective.
#include <Eigen/Cholesky>
#include <Eigen/Eigenvalues>
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "design_rows.hpp"
#include "engines.hpp"
#include "families.hpp"
#include "line_search.hpp"
#include "lockstep.hpp"
#include "popglm/constants.hpp"

namespace popglm::detail {
namespace {

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

struct SparseState : NeuronBase {
  VectorXd l1, l2;
  std::vector<std::vector<Index>> groups;  // parameter positions (1..q-1) of each group
  std::vector<double> group_weights;
  std::vector<char> grouped;  // per parameter
  double smooth_slope = 0.0;
  double loss_slope = 0.0;  // the part of smooth_slope from the loss (the rest is the l2 penalty)
  double predicted_change = 0.0;
  bool needs_gradient = true;
  bool pending_step = false;
  bool done = false;
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

/// Proximal Newton for all neurons at once, in the lockstep rounds of lockstep.hpp; `Family` is
/// one of the structs of families/.
template <class Source, class Family>
class SparseSolver {
 public:
  SparseSolver(const Source& design, const Eigen::Ref<const MatrixColMajor>& counts,
               const Eigen::Ref<const IndexVector>& rows, const Family& family, const FitOptions& options)
      : family_(family),
        design_(design),
        shared_(design, rows),
        counts_(counts),
        rows_(rows),
        contiguous_(is_contiguous(rows)),
        options_(options),
        n_threads_(options.n_threads) {
    shared_.set_stop(options.stop);
  }

  void solve(std::vector<SparseState>& states) {
    const Index n = rows_.size();
    eta_.resize(n, static_cast<Index>(states.size()));
    step_eta_.resize(n, static_cast<Index>(states.size()));
    std::vector<SparseState*> all;
    for (auto& state : states) all.push_back(&state);
    linear_predictors(all, true);
    for (SparseState* state : all) eta_.col(state->neuron) = step_eta_.col(state->batch_column);
    run_lockstep(states, *this, std::int64_t{options_.max_iter} + kExtraRounds, options_, n_threads_);
  }

  // The method's part of the lockstep rounds (lockstep.hpp).
  static bool done(const SparseState& state) { return state.done; }
  static bool wants_gradient(const SparseState& state) { return state.needs_gradient; }
  static bool has_step(const SparseState& state) { return state.pending_step; }
  void step_predictors(const std::vector<SparseState*>& batch) { linear_predictors(batch, false); }
  static void abandon(SparseState& state, FitStatus status) {
    state.pending_step = false;
    state.done = true;
    state.result.status = status;
  }

  void gradients(const std::vector<SparseState*>& batch) {
    const Index m = static_cast<Index>(batch.size());
    auto fill_residual = [&](Index start, Index len, MatrixColMajor& residual) {
      for (Index k = 0; k < m; ++k) {
        const Index neuron = batch[static_cast<std::size_t>(k)]->neuron;
        for (Index i = 0; i < len; ++i)
          residual(i, k) = family_.first(eta_(start + i, neuron), count(start + i, neuron));
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

  void finish(SparseState& state, FitStatus status) {
    const auto eta = eta_.col(state.neuron);
    double sum = 0.0;
    for (Index i = 0; i < eta.size(); ++i) sum += family_.loss(eta[i], count(i, state.neuron));
    state.result.objective = sum / static_cast<double>(eta.size()) +
                             0.5 * state.l2.dot(state.theta.cwiseAbs2()) + nonsmooth_penalty(state, state.theta);
    // E.g. a silent neuron: its intercept has no finite optimum (it is never penalised).
    state.result.status = status == FitStatus::converged && family_.intercept_at_infinity(state.mean_count)
                              ? FitStatus::mle_at_infinity
                              : status;
    state.done = true;
    state.pending_step = false;
  }

  void plan(SparseState& state) {
    state.pending_step = false;
    state.result.gradient_norm = stationarity(state);
    if (state.result.gradient_norm <= options_.tol) return finish(state, FitStatus::converged);
    if (state.result.n_iter >= options_.max_iter) return finish(state, FitStatus::max_iter_reached);
    const auto eta = eta_.col(state.neuron);
    VectorXd weights(eta.size());
    for (Index i = 0; i < eta.size(); ++i) weights[i] = family_.second(eta[i], count(i, state.neuron));
    MatrixColMajor hessian;
    NeuronRows<Source>(design_, rows_, state.active)
        .hessian(weights, static_cast<double>(rows_.size()), hessian, false, options_.stop, n_threads_);
    hessian.diagonal() += state.l2;
    ++state.result.n_hessian;
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
    const double l2_slope = state.smooth_slope - state.loss_slope;
    const double l2_curvature = 0.5 * state.l2.dot(state.direction.cwiseAbs2());
    const double penalty_now = nonsmooth_penalty(state, state.theta);
    const double step = armijo_step(state.predicted_change, [&](double s) {
      // Each sample's loss change is computed without cancellation (the family's change()).
      double loss_change = 0.0;
      for (Index i = 0; i < n; ++i) loss_change += family_.change(eta[i], count(i, state.neuron), s * step_eta[i]);
      return loss_change / static_cast<double>(n) + s * l2_slope + s * s * l2_curvature +
             nonsmooth_penalty(state, state.theta + s * state.direction) - penalty_now;
    });
    if (step == 0.0) return finish(state, FitStatus::line_search_failed);
    state.theta.noalias() += step * state.direction;
    eta_.col(state.neuron) += step * step_eta;
    ++state.result.n_iter;
    state.needs_gradient = true;
  }

 private:
  double count(Index position, Index neuron) const {
    return counts_(contiguous_ ? rows_[0] + position : rows_[position], neuron);
  }

  void linear_predictors(const std::vector<SparseState*>& batch, bool of_theta) {
    batched_linear_predictors(shared_, batch, of_theta, step_eta_, n_threads_);
  }

  Family family_;
  const Source& design_;
  SharedDesign<Source> shared_;
  Eigen::Ref<const MatrixColMajor> counts_;
  Eigen::Ref<const IndexVector> rows_;
  bool contiguous_;
  const FitOptions& options_;
  int n_threads_;
  MatrixColMajor eta_;
  MatrixColMajor step_eta_;
};

/// Each neuron's penalty in its own parameter positions (1..q-1; the intercept is never
/// penalised); empty penalty arrays are zero terms.
void set_penalty(SparseState& state, const Penalty& penalty) {
  const Index q = state.n_params();
  const Index neuron = state.neuron;
  state.l1 = VectorXd::Zero(q);
  state.l2 = VectorXd::Zero(q);
  state.grouped.assign(static_cast<std::size_t>(q), 0);
  std::vector<Index> group_slot(static_cast<std::size_t>(penalty.group_weight.rows()), -1);
  for (std::size_t a = 0; a < state.active.size(); ++a) {
    const Index p = state.active[a];
    const Index i = static_cast<Index>(a) + 1;
    if (penalty.l1.size() > 0) state.l1[i] = penalty.l1(p, neuron);
    if (penalty.l2.size() > 0) state.l2[i] = penalty.l2(p, neuron);
    const Index g = penalty.group.size() > 0 ? penalty.group(p, neuron) : -1;
    if (g < 0) continue;
    auto& slot = group_slot[static_cast<std::size_t>(g)];
    if (slot < 0) {
      slot = static_cast<Index>(state.groups.size());
      state.groups.emplace_back();
      state.group_weights.push_back(penalty.group_weight(g, neuron));
    }
    state.groups[static_cast<std::size_t>(slot)].push_back(i);
    state.grouped[static_cast<std::size_t>(i)] = 1;
  }
}

}  // namespace

template <class Source>
void proximal_newton(const Source& design, const Problem& problem, Eigen::Ref<MatrixColMajor> coef,
                     Eigen::Ref<Eigen::VectorXd> intercept, PopulationFitReport& report) {
  auto states = start_neurons<SparseState>(problem.mask, coef, intercept, problem.counts, problem.rows);
  for (SparseState& state : states) set_penalty(state, problem.penalty);
  const FitOptions& options = problem.options;
  visit_family(options.family, options.scale, [&](const auto& family) {
    using Family = std::decay_t<decltype(family)>;
    SparseSolver<Source, Family>(design, problem.counts, problem.rows, family, options).solve(states);
  });
  write_back(states, coef, intercept, report);
}

template void proximal_newton<ColMajorRows>(const ColMajorRows&, const Problem&, Eigen::Ref<MatrixColMajor>,
                                            Eigen::Ref<VectorXd>, PopulationFitReport&);
template void proximal_newton<RowMajorRows>(const RowMajorRows&, const Problem&, Eigen::Ref<MatrixColMajor>,
                                            Eigen::Ref<VectorXd>, PopulationFitReport&);
template void proximal_newton<HistoryRows>(const HistoryRows&, const Problem&, Eigen::Ref<MatrixColMajor>,
                                           Eigen::Ref<VectorXd>, PopulationFitReport&);

}  // namespace popglm::detail
