// The general method: per-neuron GLMs of any observation family with any penalty (Lasso,
// ElasticNet, GroupLasso, Ridge), by proximal Newton: exact Hessians, a coordinate-descent solve
// of each penalised quadratic model, and a line search on the true objective.
#include <Eigen/Cholesky>
#include <Eigen/Eigenvalues>
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "cholesky.hpp"
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
// Coordinate descent hands over to Newton on the support (polish_on_support) once the support
// has not changed for this many sweeps; at most kPolishAttempts tries per model, each of at most
// kPolishNewtonSteps Newton steps.
constexpr int kStableSweeps = 3;
constexpr int kPolishAttempts = 4;
constexpr int kPolishNewtonSteps = 30;
// A group's block of the model is solved exactly (GroupBlock) unless its smallest eigenvalue is
// below this fraction of its largest; such a block takes this many proximal-gradient steps.
constexpr double kGroupCurvatureFloor = 1e-12;
constexpr int kGroupSteps = 4;
// Newton steps for a group's norm (quadratic convergence: a handful suffice).
constexpr int kGroupNewtonSteps = 100;
// Smooth models take the Cholesky Newton step when the Hessian's reciprocal condition exceeds
// this; near-singular ones (collinear features) go through coordinate descent.
constexpr double kCholeskyRcond = 1e-12;
// A neuron's last Hessian is reused for its next steps: always for the first kFreeChordSteps
// (from a warm start the first step lands far from the optimum, which the stationarity measure
// does not show; a step costs two passes over X shared by all neurons, a Hessian one pass per
// neuron), after that while each step cuts the stationarity measure at least by
// kChordContraction (as in poisson_newton.cpp). Kept Hessians take at most kChordBytes in all.
constexpr int kFreeChordSteps = 2;
// ... but not within this factor of the tolerance: there a fresh Hessian's quadratic step jumps
// past it, while kept-Hessian steps creep towards it and can stall where float64 no longer
// resolves the objective's decrease (a 29,000-spike neuron of the S1 recording at 1.5e-8).
constexpr double kExactBelow = 100.0;
constexpr double kChordContraction = 0.5;
constexpr Index kChordBytes = Index{256} << 20;
// A fresh Hessian covers all of a neuron's parameters when its working set holds at least this
// fraction's reciprocal of them (at most 4x the working set's cost).
constexpr Index kWholeHessianShare = 2;
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
  // The last Hessian of the loss (over the parameters `chord_positions`, without the penalty),
  // reused for the next steps while they keep contracting (kChordContraction); empty when not
  // kept. A path's next fit starts with it (CurvatureCache).
  MatrixColMajor chord;
  std::vector<Index> chord_positions;
  bool step_reused = false;  // the pending step came from the kept Hessian
  int chord_steps = 0;        // steps taken with it (0: carried from a path's previous fit)
  double last_stationarity = std::numeric_limits<double>::infinity();
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

/// One group's block of a quadratic model: minimises 0.5 b'Hb - c'b + weight ||b|| exactly. The
/// minimiser is zero when ||c|| <= weight; otherwise b = (H + (weight / t) I)^-1 c with t = ||b||,
/// the root of sum_i c_i^2 / (d_i t + weight)^2 = 1 in H's eigenbasis (d its eigenvalues), found
/// by a safeguarded Newton iteration on the reciprocal square root of the left side, which is
/// exactly linear in t when the eigenvalues are equal. A singular block (a direction with no
/// curvature) falls back to proximal-gradient steps from the current value.
struct GroupBlock {
  MatrixColMajor matrix, vectors;
  VectorXd values;
  double lipschitz = 0.0;

  GroupBlock(const MatrixColMajor& hessian, const std::vector<Index>& group) {
    matrix = hessian(group, group);
    const Eigen::SelfAdjointEigenSolver<MatrixColMajor> eigen(matrix);
    vectors = eigen.eigenvectors();
    values = eigen.eigenvalues();
    lipschitz = std::max(values.maxCoeff(), std::numeric_limits<double>::min());
  }

  void minimise(const VectorXd& linear, double weight, const VectorXd& current, VectorXd& out) const {
    const double norm = linear.norm();
    if (norm <= weight) {
      out.setZero(linear.size());
      return;
    }
    const double smallest = values.minCoeff();
    if (!(smallest > kGroupCurvatureFloor * lipschitz)) {
      proximal_gradient(linear, weight, current, out);
      return;
    }
    const VectorXd rotated = vectors.transpose() * linear;
    // F(t) = sum rotated^2 / (values t + weight)^2 falls from (norm / weight)^2 > 1 at t = 0 to
    // at most 1 at t = (norm - weight) / smallest: the root lies between.
    double low = 0.0, high = (norm - weight) / smallest, t = 0.0;
    for (int iteration = 0; iteration < kGroupNewtonSteps; ++iteration) {
      double f = 0.0, slope = 0.0;
      for (Index i = 0; i < values.size(); ++i) {
        const double denominator = values[i] * t + weight;
        const double term = rotated[i] * rotated[i] / (denominator * denominator);
        f += term;
        slope -= 2.0 * term * values[i] / denominator;
      }
      if (f > 1.0) low = t; else high = t;
      // G = f^-1/2, G' = -0.5 f^-3/2 f'; Newton on G(t) = 1.
      const double g = 1.0 / std::sqrt(f);
      const double g_slope = -0.5 * g / f * slope;
      double next = g_slope > 0.0 ? t + (1.0 - g) / g_slope : 0.5 * (low + high);
      if (!(next > low && next < high)) next = 0.5 * (low + high);
      const bool settled = std::abs(next - t) <= 4.0 * std::numeric_limits<double>::epsilon() * next;
      t = next;
      if (settled) break;
    }
    out.noalias() = vectors * (rotated.array() * (t / (values.array() * t + weight))).matrix();
  }

  void proximal_gradient(const VectorXd& linear, double weight, const VectorXd& current, VectorXd& out) const {
    out = current;
    const double step = 1.0 / lipschitz;
    for (int inner = 0; inner < kGroupSteps; ++inner) {
      const VectorXd target = out - step * (matrix * out - linear);
      const double norm = target.norm();
      out = (norm > 0.0 ? std::max(0.0, 1.0 - step * weight / norm) : 0.0) * target;
    }
  }
};

/// Newton's method on the model restricted to the support of z (the intercept, the nonzero
/// ungrouped coefficients with their signs, the nonzero groups), where the penalty is smooth:
/// coordinate descent identifies the support in a few sweeps but converges slowly within it when
/// features are correlated. Returns whether z was replaced by the model's exact minimiser: the
/// support's equations solved, its signs and nonzero groups kept, and every parameter at zero
/// optimal there; otherwise z is left as it was.
bool polish_on_support(const SparseState& state, const MatrixColMajor& hessian, VectorXd& z) {
  const Index q = state.n_params();
  std::vector<Index> support;
  support.push_back(0);
  for (Index i = 1; i < q; ++i)
    if (!state.grouped[static_cast<std::size_t>(i)] && (z[i] != 0.0 || state.l1[i] == 0.0)) support.push_back(i);
  std::vector<std::size_t> live_groups;
  std::vector<char> live(state.groups.size(), 0);
  for (std::size_t k = 0; k < state.groups.size(); ++k) {
    for (Index i : state.groups[k]) live[k] = live[k] || z[i] != 0.0;
    if (!live[k]) continue;
    live_groups.push_back(k);
    for (Index i : state.groups[k]) support.push_back(i);
  }
  const Index m = static_cast<Index>(support.size());
  std::vector<Index> slot(static_cast<std::size_t>(q), -1);
  for (Index a = 0; a < m; ++a) slot[static_cast<std::size_t>(support[static_cast<std::size_t>(a)])] = a;
  const MatrixColMajor base = hessian(support, support);
  VectorXd candidate = z;
  const double scale = 1.0 + z.cwiseAbs().maxCoeff();
  bool settled = false;
  for (int iteration = 0; iteration < kPolishNewtonSteps && !settled; ++iteration) {
    // Residual of the support's equations: (g + H (z - theta))_S + the penalty's gradient.
    VectorXd equations(m);
    const VectorXd moved = candidate - state.theta;
    for (Index a = 0; a < m; ++a) {
      const Index i = support[static_cast<std::size_t>(a)];
      equations[a] = state.gradient[i] + hessian.row(i).dot(moved);
      if (i > 0 && !state.grouped[static_cast<std::size_t>(i)]) equations[a] += std::copysign(state.l1[i], z[i]);
    }
    MatrixColMajor jacobian = base;
    for (std::size_t k : live_groups) {
      const auto& group = state.groups[k];
      double norm = 0.0;
      for (Index i : group) norm += candidate[i] * candidate[i];
      norm = std::sqrt(norm);
      if (!(norm > 0.0)) return false;
      const double weight = state.group_weights[k];
      for (Index i : group) {
        const Index a = slot[static_cast<std::size_t>(i)];
        equations[a] += weight * candidate[i] / norm;
        for (Index j : group)
          jacobian(a, slot[static_cast<std::size_t>(j)]) -= weight * candidate[i] * candidate[j] / (norm * norm * norm);
        jacobian(a, a) += weight / norm;
      }
    }
    const Eigen::LLT<MatrixColMajor> cholesky(jacobian);
    if (cholesky.info() != Eigen::Success) return false;
    const VectorXd delta = -cholesky.solve(equations);
    if (!delta.allFinite()) return false;
    for (Index a = 0; a < m; ++a) candidate[support[static_cast<std::size_t>(a)]] += delta[a];
    settled = delta.cwiseAbs().maxCoeff() <= kSweepTolerance * scale;
  }
  if (!settled) return false;
  // The support keeps its signs, and the parameters at zero satisfy their optimality conditions.
  const VectorXd residual = state.gradient + hessian * (candidate - state.theta);
  for (Index i = 1; i < q; ++i) {
    if (state.grouped[static_cast<std::size_t>(i)]) continue;
    if (state.l1[i] == 0.0) continue;
    if (z[i] != 0.0 ? candidate[i] * z[i] <= 0.0 : std::abs(residual[i]) > state.l1[i]) return false;
  }
  for (std::size_t k = 0; k < state.groups.size(); ++k) {
    if (live[k]) continue;
    double squares = 0.0;
    for (Index i : state.groups[k]) squares += residual[i] * residual[i];
    if (std::sqrt(squares) > state.group_weights[k]) return false;
  }
  z = candidate;
  return true;
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
  std::vector<GroupBlock> blocks;
  blocks.reserve(state.groups.size());
  for (const auto& group : state.groups) blocks.emplace_back(hessian, group);
  auto move = [&](Index i, double new_value) {
    const double change = new_value - z[i];
    if (change == 0.0) return 0.0;
    z[i] = new_value;
    residual.noalias() += change * hessian.col(i);
    return std::abs(change);
  };
  VectorXd linear, target;
  std::vector<char> last_pattern;
  int stable_sweeps = 0, polish_attempts = 0;
  for (int sweep = 0; sweep < kMaxSweeps; ++sweep) {
    double largest_change = 0.0;
    for (Index i = 0; i < q; ++i) {
      if (i > 0 && state.grouped[static_cast<std::size_t>(i)]) continue;
      const double curvature = hessian(i, i);
      if (!(curvature > 0.0)) {
        if (i > 0 && state.l1[i] > 0.0) largest_change = std::max(largest_change, move(i, 0.0));
        continue;
      }
      const double value = z[i] - residual[i] / curvature;
      largest_change = std::max(largest_change, move(i, i == 0 ? value : soft_threshold(value, state.l1[i] / curvature)));
    }
    for (std::size_t k = 0; k < state.groups.size(); ++k) {
      const auto& group = state.groups[k];
      const GroupBlock& block = blocks[k];
      const Index m = static_cast<Index>(group.size());
      // The group's model with the others fixed: 0.5 b'H_GG b - linear'b + weight ||b||.
      VectorXd current(m);
      for (Index a = 0; a < m; ++a) current[a] = z[group[a]];
      linear.noalias() = block.matrix * current;
      for (Index a = 0; a < m; ++a) linear[a] -= residual[group[a]];
      block.minimise(linear, state.group_weights[k], current, target);
      double group_change = 0.0;
      for (Index a = 0; a < m; ++a) group_change = std::max(group_change, move(group[a], target[a]));
      largest_change = std::max(largest_change, group_change);
    }
    if (largest_change <= kSweepTolerance * (1.0 + z.cwiseAbs().maxCoeff())) break;
    // Once the support has held for a few sweeps, try to finish by Newton on it.
    std::vector<char> pattern(static_cast<std::size_t>(q));
    for (Index i = 0; i < q; ++i) pattern[static_cast<std::size_t>(i)] = z[i] > 0.0 ? 1 : (z[i] < 0.0 ? 2 : 0);
    stable_sweeps = pattern == last_pattern ? stable_sweeps + 1 : 0;
    last_pattern = std::move(pattern);
    if (stable_sweeps == kStableSweeps && polish_attempts < kPolishAttempts) {
      ++polish_attempts;
      stable_sweeps = 0;
      if (polish_on_support(state, hessian, z)) break;
    }
  }
  return z - state.theta;
}

/// The parameters a Newton step moves: the intercept, every nonzero coefficient and every one
/// (or group) at zero whose optimality condition fails. The others are optimal at zero for now
/// and keep it for this step, so the Hessian is formed over the working set only (a strong
/// penalty leaves few features in it, as in glmnet's and adelie's active sets); the
/// stationarity test before every step covers all parameters, so a feature that starts to
/// violate its condition joins the next step, and convergence means the full optimum.
std::vector<Index> working_set(const SparseState& state) {
  const Index q = state.n_params();
  std::vector<char> keep(static_cast<std::size_t>(q), 0);
  keep[0] = 1;
  for (Index i = 1; i < q; ++i)
    if (!state.grouped[static_cast<std::size_t>(i)])
      keep[static_cast<std::size_t>(i)] = state.theta[i] != 0.0 || std::abs(state.gradient[i]) > state.l1[i];
  for (std::size_t k = 0; k < state.groups.size(); ++k) {
    double theta_norm = 0.0, gradient_squares = 0.0;
    for (Index i : state.groups[k]) {
      theta_norm += std::abs(state.theta[i]);
      gradient_squares += state.gradient[i] * state.gradient[i];
    }
    const bool moves = theta_norm > 0.0 || std::sqrt(gradient_squares) > state.group_weights[k];
    for (Index i : state.groups[k]) keep[static_cast<std::size_t>(i)] = moves;
  }
  std::vector<Index> positions;
  for (Index i = 0; i < q; ++i)
    if (keep[static_cast<std::size_t>(i)]) positions.push_back(i);
  return positions;
}

/// `state` restricted to the parameters at `positions` (ascending, starting with the intercept).
SparseState restricted(const SparseState& state, const std::vector<Index>& positions) {
  const Index m = static_cast<Index>(positions.size());
  SparseState part;
  part.theta.resize(m);
  part.gradient.resize(m);
  part.l1.resize(m);
  part.l2.resize(m);
  part.grouped.resize(static_cast<std::size_t>(m));
  std::vector<Index> slot(static_cast<std::size_t>(state.n_params()), -1);
  for (Index k = 0; k < m; ++k) {
    const Index i = positions[static_cast<std::size_t>(k)];
    slot[static_cast<std::size_t>(i)] = k;
    part.theta[k] = state.theta[i];
    part.gradient[k] = state.gradient[i];
    part.l1[k] = state.l1[i];
    part.l2[k] = state.l2[i];
    part.grouped[static_cast<std::size_t>(k)] = state.grouped[static_cast<std::size_t>(i)];
    if (k > 0) part.active.push_back(state.active[static_cast<std::size_t>(i - 1)]);
  }
  for (std::size_t g = 0; g < state.groups.size(); ++g) {
    if (slot[static_cast<std::size_t>(state.groups[g].front())] < 0) continue;  // all or none
    std::vector<Index> members;
    for (Index i : state.groups[g]) members.push_back(slot[static_cast<std::size_t>(i)]);
    part.groups.push_back(std::move(members));
    part.group_weights.push_back(state.group_weights[g]);
  }
  return part;
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
    chord_budget_ = kChordBytes / Index{sizeof(double)} / std::max<Index>(1, static_cast<Index>(states.size()));
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
    const double previous = state.last_stationarity;
    state.last_stationarity = state.result.gradient_norm;
    const std::vector<Index> positions = working_set(state);
    const Index q = state.n_params();
    const Index m = static_cast<Index>(positions.size());
    state.step_reused = !state.chord_positions.empty() &&
                        std::includes(state.chord_positions.begin(), state.chord_positions.end(), positions.begin(),
                                      positions.end()) &&
                        state.result.gradient_norm > kExactBelow * options_.tol &&
                        (state.chord_steps < kFreeChordSteps || state.result.gradient_norm <= kChordContraction * previous);
    state.chord_steps = state.step_reused ? state.chord_steps + 1 : 1;
    if (!state.step_reused) {
      // Over all parameters when the working set is most of them: the kept Hessian then serves
      // the next steps' working sets, which change as features enter and leave.
      state.chord_positions = positions;
      if (m * kWholeHessianShare >= q) {
        state.chord_positions.resize(static_cast<std::size_t>(q));
        for (Index i = 0; i < q; ++i) state.chord_positions[static_cast<std::size_t>(i)] = i;
      }
      const auto eta = eta_.col(state.neuron);
      VectorXd weights(eta.size());
      for (Index i = 0; i < eta.size(); ++i) weights[i] = family_.second(eta[i], count(i, state.neuron));
      std::vector<Index> active;
      for (std::size_t k = 1; k < state.chord_positions.size(); ++k)
        active.push_back(state.active[static_cast<std::size_t>(state.chord_positions[k] - 1)]);
      const NeuronRows<Source> neuron_rows(design_, rows_, active);
      const double n = static_cast<double>(rows_.size());
      // In float32 (twice the throughput) unless the result is too ill-conditioned for it; the
      // exact gradient decides every step and the convergence either way.
      neuron_rows.hessian(weights, n, state.chord, true, options_.stop, n_threads_);
      if (!suits_single_precision(state.chord))
        neuron_rows.hessian(weights, n, state.chord, false, options_.stop, n_threads_);
      ++state.result.n_hessian;
    }
    // The model's matrix: the working set's block of the kept Hessian (both position lists
    // ascending) plus the l2 penalty, which the kept Hessian leaves out so that it serves
    // other strengths too.
    MatrixColMajor model;
    if (static_cast<Index>(state.chord_positions.size()) == m) {
      model = state.chord;
    } else {
      std::vector<Index> at;
      for (std::size_t k = 0, j = 0; k < positions.size(); ++k) {
        while (state.chord_positions[j] != positions[k]) ++j;
        at.push_back(static_cast<Index>(j));
      }
      model = state.chord(at, at);
    }
    for (Index k = 0; k < m; ++k) model(k, k) += state.l2[positions[static_cast<std::size_t>(k)]];
    if (m == q) {
      state.direction = solve_model(state, model);
    } else {
      const VectorXd step = solve_model(restricted(state, positions), model);
      state.direction = VectorXd::Zero(q);
      for (Index k = 0; k < m; ++k) state.direction[positions[static_cast<std::size_t>(k)]] = step[k];
    }
    if (state.chord.size() > chord_budget_) {
      state.chord_positions.clear();
      state.chord = MatrixColMajor();
    }
    state.smooth_slope = state.gradient.dot(state.direction);
    state.loss_slope = state.smooth_slope - (state.l2.cwiseProduct(state.theta)).dot(state.direction);
    state.predicted_change = state.smooth_slope + nonsmooth_penalty(state, state.theta + state.direction) -
                             nonsmooth_penalty(state, state.theta);
    if (!(state.predicted_change < 0.0) || !state.direction.allFinite()) {
      if (state.step_reused) return drop_kept_hessian(state);
      return finish(state, FitStatus::line_search_failed);
    }
    state.pending_step = true;
  }

  /// The kept Hessian gave no usable step: the next round forms a fresh one at the same point.
  static void drop_kept_hessian(SparseState& state) {
    state.chord_positions.clear();
    state.last_stationarity = std::numeric_limits<double>::infinity();
    state.pending_step = false;
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
    if (step == 0.0 && state.step_reused) return drop_kept_hessian(state);
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
  Index chord_budget_ = 0;  // elements of a kept Hessian per neuron
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
  CurvatureCache* cache = options.curvature.get();
  const Index n_rows = problem.rows.size();
  if (cache != nullptr) {
    cache->neurons.resize(states.size());
    for (SparseState& state : states) {
      auto& entry = cache->neurons[static_cast<std::size_t>(state.neuron)];
      if (entry.n_rows == n_rows && entry.active == state.active && !entry.positions.empty()) {
        state.chord = std::move(entry.hessian);
        state.chord_positions = std::move(entry.positions);
      }
      entry = CurvatureCache::Entry();
    }
  }
  visit_family(options.family, options.scale, [&](const auto& family) {
    using Family = std::decay_t<decltype(family)>;
    SparseSolver<Source, Family>(design, problem.counts, problem.rows, family, options).solve(states);
  });
  write_back(states, coef, intercept, report);
  if (cache != nullptr) {
    for (SparseState& state : states) {
      const bool broken = state.result.status == FitStatus::internal_error || state.result.status == FitStatus::interrupted;
      if (state.chord_positions.empty() || broken) continue;  // (an interrupted Hessian is partial)
      auto& entry = cache->neurons[static_cast<std::size_t>(state.neuron)];
      entry.active = state.active;
      entry.positions = std::move(state.chord_positions);
      entry.hessian = std::move(state.chord);
      entry.n_rows = n_rows;
    }
  }
}

template void proximal_newton<ColMajorRows>(const ColMajorRows&, const Problem&, Eigen::Ref<MatrixColMajor>,
                                            Eigen::Ref<VectorXd>, PopulationFitReport&);
template void proximal_newton<RowMajorRows>(const RowMajorRows&, const Problem&, Eigen::Ref<MatrixColMajor>,
                                            Eigen::Ref<VectorXd>, PopulationFitReport&);
template void proximal_newton<HistoryRows>(const HistoryRows&, const Problem&, Eigen::Ref<MatrixColMajor>,
                                           Eigen::Ref<VectorXd>, PopulationFitReport&);

}  // namespace popglm::detail
