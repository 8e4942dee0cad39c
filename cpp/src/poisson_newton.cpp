// The smooth engine: Poisson with the exp link, unpenalised or with an l2 penalty, by
// safeguarded Newton with Hessians formed only when needed (see PopulationSolver).
#include "cholesky.hpp"
#include "design_rows.hpp"
#include "engines.hpp"
#include "line_search.hpp"
#include "lockstep.hpp"
#include "popglm/constants.hpp"

#include <Eigen/Cholesky>
#include <Eigen/Eigenvalues>
#include <algorithm>
#include <array>
#include <cmath>
#include <functional>
#include <limits>
#include <map>
#include <utility>
#include <stdexcept>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace popglm::detail {
namespace {

// kArmijo, kMaxHalvings: the line search (constants.hpp). Below kRankTolerance, Cholesky is not
// trusted and the step comes from a truncated eigendecomposition (rank-deficient designs).
// At a finite optimum the exact Newton step is tiny. When the MLE is at infinity (silent neuron,
// perfect separation) it keeps moving the linear predictor by ~1 on the rows whose rate is being
// driven to zero, however small the gradient already is: a step this large flags that case.
constexpr double kDivergentStep = 0.5;
// That check (one float64 Hessian) runs only when some predicted rate is below this fraction of
// the mean count, i.e. more than ~14 e-folds under it.
constexpr double kVanishingRate = 1e-6;
// ... and, before the gradient is within tol, only from this many iterations on, repeated every
// kRecheckInterval iterations after a check that found no divergence.
constexpr int kLateIteration = 20;
// At the end of polishing the check also runs below this fraction of the mean count when that is
// under 10 n tol (see rates_at_tol_floor).
constexpr double kTolFloorRate = 1e-4;
constexpr int kRecheckInterval = 10;
constexpr int kDivergentConfirmations = 3;
// A Hessian factor is reused while each step it gives cuts the max |gradient| at least by this
// factor; otherwise the Hessian is recomputed at the new point. Steps share matrix products
// across neurons and cost far less than a Hessian, so reuse is always tried.
constexpr double kChordContraction = 0.5;
// A fresh approximate (sub-sampled or float32) factor whose full step does not achieve that
// contraction counts as a miss; after this many misses the neuron's Hessians get more accurate.
// One miss is not enough: far from the optimum even an exact Newton step may not halve it.
constexpr int kApproximationMisses = 3;
constexpr double kMissContraction = 0.5;
// Curvature pairs (step, gradient change) kept per neuron to correct an approximate or reused
// factor by limited-memory BFGS updates; pairs with s.y <= kMinCurvature |s| |y| are skipped.
constexpr std::size_t kCurvaturePairs = 8;
constexpr double kMinCurvature = 1e-10;
// Extra steps taken after the gradient is within tol (see plan_polish_step).
constexpr int kPolishSteps = 30;
// ... while the next step would still move a coefficient by more than kPolishStep * tol
// (relative to the largest) and each cuts the gradient at least by kPolishContraction.
constexpr double kPolishStep = 0.1;
constexpr double kPolishContraction = 0.9;
// Hessians are formed on every k-th row when a neuron has more than this many rows per parameter
// (sub-sampled Newton); the exact gradient still decides steps and convergence.
constexpr Index kHessianRowsPerParam = 32;
// Large populations (P approaching T / 64): a full Hessian costs T P^2 per neuron, N^3 for the
// population, while a step costs 2 T P per neuron; Hessians on this many rows per parameter
// keep large fits from that cliff, the exact gradient still deciding.
constexpr Index kLargeHessianRowsPerParam = 8;
// ... plus every row whose rate exceeds this multiple of the neuron's mean rate.
constexpr double kHeavyRate = 4.0;
// Population steps allowed per Newton iteration of the budget: a guard that the loop ends even if
// a neuron's state machine stopped making progress.
constexpr int kRoundsPerIteration = 4;
// The rates exp(eta) computed with the gradients are kept for the line search when the matrix
// of them (rows x neurons, float64) is at most this large: L's would add 800 MB.
constexpr Index kRateCacheBytes = Index{256} << 20;
// Below this many design elements times neurons a fit runs on one thread.
constexpr Index kSerialWork = Index{1} << 20;



/// The line search along a direction whose linear predictor is `step_eta`, from the point with
/// linear predictor `eta` (rates exp(eta), when known): armijo_step with the objective's change
/// written without cancellation, s * slope + mean(mu * (exp(s x) - 1 - s x)) + s^2 *
/// penalty_curvature, x = A d, penalty_curvature = 0.5 * sum(ridge * d^2).
double backtrack(const Eigen::Ref<const VectorXd>& eta, const double* rates,
                 const Eigen::Ref<const VectorXd>& step_eta, double slope, double penalty_curvature) {
  const Index n = eta.size();
  const auto curvature_sum = kernels::active().curvature_sum;
  return armijo_step(slope, [&](double step) {
    double curvature = 0.0;
    for (Index start = 0; start < n; start += kernels::kCurvatureChunk)
      curvature += curvature_sum(std::min(kernels::kCurvatureChunk, n - start), eta.data() + start,
                                 rates != nullptr ? rates + start : nullptr, step_eta.data() + start, step);
    curvature /= static_cast<double>(n);
    curvature += step * step * penalty_curvature;
    return step * slope + curvature;
  });
}

// Hessians at three accuracies; exact float64 gradients decide every step either way. Sub-sampled
// rows and float32 are used only for well-conditioned designs, and a fresh factor that fails (no
// acceptable step, or a full step that does not halve the gradient) moves the neuron up one level
// for good.
enum Accuracy : int { kNoRefresh = -1, kSampledSingle = 0, kFullSingle = 1, kFullDouble = 2 };

enum class Stage { kStart, kIterate, kPolish, kDone };
// What a neuron does with its direction once the direction's linear predictor X d is known.
enum class Pending { kNothing, kStep, kDivergenceCheck, kPolish };

/// One neuron's safeguarded Newton method, carried from one population step to the next. The
/// method is that of a serial per-neuron loop, cut at the two points where it needs a product
/// with the shared design (the gradient and a direction's linear predictor), so that those
/// products are formed for all neurons at once.
struct NeuronState : NeuronBase {
  bool well_conditioned = false;
  bool at_flat_start = false;  // intercept-only coefficients (all rates equal)
  Index hessian_stride = 1;  // > 1: sub-sampled Hessians take every stride-th light row
  VectorXd ridge;  // per-parameter ridge strength (0 for the intercept); empty when unpenalised

  VectorXd theta_before_polish;
  NewtonSystem system;
  int level = kFullDouble;
  int factor_level = kFullDouble;
  bool factor_is_fresh = false;  // factor computed at the current point
  int pending_refresh = kSampledSingle;
  Stage stage = Stage::kStart;
  Pending pending = Pending::kNothing;
  bool needs_gradient = true;
  bool has_new_gradient = false;
  bool just_stepped = false;
  bool within_tol = false;
  bool fresh_approximate_full_step = false;
  double slope = 0.0;
  double previous_norm = 0.0;
  double polish_step = 0.0;
  int divergent_confirmations = 0;
  bool checked_after_polish = false;  // the end-of-polish divergence check has run
  int polish_count = 0;
  int approximation_misses = 0;
  int next_divergence_check = kLateIteration;
  // Limited-memory BFGS corrections on top of the factor (oldest first).
  std::vector<VectorXd> pair_steps, pair_changes;
  std::vector<double> pair_rho;
  VectorXd last_move, gradient_before_move;
  VectorXd change;  // scratch for the newest curvature pair and the two-loop recursion
};

/// Safeguarded Newton for all neurons at once. Exact float64 gradients decide everything (steps,
/// line search, stopping); the Hessian only shapes the steps, so it is recomputed only when the
/// last factor stops halving the gradient ("chord" steps), for well-conditioned designs it is
/// formed on a row sub-sample and/or in float32, and approximate or reused factors are corrected
/// by L-BFGS updates from the exact gradients. A step that fails with a reused or approximate
/// factor is retried with a fresh float64 Hessian. Each neuron's arithmetic is its own and the
/// shared products use fixed row partitions, so results do not depend on the thread count.
template <class Source>
class PopulationSolver {
 public:
  PopulationSolver(const Source& design, const Eigen::Ref<const MatrixColMajor>& counts,
                   const Eigen::Ref<const IndexVector>& rows, const MatrixColMajor& gram,
                   const FitOptions& options, int n_threads)
      : design_(design),
        gram_(gram),
        shared_(design, rows),
        counts_(counts),
        rows_(rows),
        rows_contiguous_(is_contiguous(rows)),
        options_(options),
        n_threads_(n_threads) {
    shared_.set_stop(options.stop);
  }

  void solve(std::vector<NeuronState>& states) {
    const Index n = rows_.size();
    const Index n_neurons = static_cast<Index>(states.size());
    eta_.resize(n, n_neurons);
    step_eta_.resize(n, n_neurons);
    rates_current_.assign(static_cast<std::size_t>(n_neurons), 0);
    if (n * n_neurons <= kRateCacheBytes / Index{sizeof(double)}) rates_.resize(n, n_neurons);

    cache_sampled_designs(states);
    std::vector<NeuronState*> running;
    for (auto& state : states) running.push_back(&state);
    linear_predictors(running, /*of_theta=*/true);
    for (NeuronState* state : running) eta_.col(state->neuron) = step_eta_.col(state->batch_column);

    // In 64 bits: max_iter may be INT_MAX (no limit).
    const std::int64_t max_rounds =
        std::int64_t{kRoundsPerIteration} * (std::int64_t{options_.max_iter} + kPolishSteps) + 16;
    run_lockstep(states, *this, max_rounds, options_, n_threads_);
  }

  // The method's part of the lockstep rounds (lockstep.hpp).
  bool done(const NeuronState& state) const { return state.stage == Stage::kDone; }
  static bool wants_gradient(NeuronState& state) {
    state.has_new_gradient = state.needs_gradient;
    return state.needs_gradient;
  }
  static bool has_step(const NeuronState& state) { return state.pending != Pending::kNothing; }
  void step_predictors(const std::vector<NeuronState*>& batch) { linear_predictors(batch, /*of_theta=*/false); }
  static void abandon(NeuronState& state, FitStatus status) {
    state.pending = Pending::kNothing;
    state.stage = Stage::kDone;
    state.result.status = status;
  }

  double count(Index position, Index neuron) const {
    return counts_(rows_contiguous_ ? rows_[0] + position : rows_[position], neuron);
  }

  /// Exact gradients of the mean NLL, [1, X_active]^T (mu - y) / n, of the listed neurons, from
  /// one product with the design.
  void gradients(const std::vector<NeuronState*>& batch) {
    if (batch.empty()) return;
    const Index m = static_cast<Index>(batch.size());
    const bool keep_rates = rates_.size() > 0;
    auto fill_residual = [&](Index start, Index len, MatrixColMajor& residual) {
      for (Index k = 0; k < m; ++k) {
        const Index neuron = batch[static_cast<std::size_t>(k)]->neuron;
        auto column = residual.col(k);
        kernels::active().exp(len, eta_.col(neuron).data() + start, column.data());
        if (keep_rates) rates_.col(neuron).segment(start, len) = column;
        if (rows_contiguous_) {
          column -= counts_.col(neuron).segment(rows_[0] + start, len);
        } else {
          for (Index i = 0; i < len; ++i) column[i] -= count(start + i, neuron);
        }
      }
    };
    MatrixColMajor full_gradients;
    shared_.transpose_multiply(m, fill_residual, full_gradients, n_threads_);
    if (keep_rates)
      for (const NeuronState* state : batch) rates_current_[static_cast<std::size_t>(state->neuron)] = 1;
    for (Index k = 0; k < m; ++k) {
      NeuronState& state = *batch[static_cast<std::size_t>(k)];
      gather_gradient(full_gradients, k, state);
      if (state.ridge.size() > 0) state.gradient += state.ridge.cwiseProduct(state.theta);
      state.needs_gradient = false;
    }
  }

  /// step_eta_.col(k) = [1, X_active] v for the k-th listed neuron, v its direction (or theta).
  void linear_predictors(const std::vector<NeuronState*>& batch, bool of_theta) {
    batched_linear_predictors(shared_, batch, of_theta, step_eta_, n_threads_);
  }

  void refresh_hessian(NeuronState& state, int minimum_level) {
    state.factor_level = std::max(state.level, minimum_level);
    if (state.at_flat_start && state.factor_level == kSampledSingle) {
      // Every rate is exp(theta[0]) at the intercept-only start, so the Hessian is that times
      // the Gram matrix of the neuron's design, already formed for all neurons.
      MatrixColMajor hessian = std::exp(state.theta[0]) * gram_block(gram_, state.active);
      add_ridge(state, hessian);
      state.system.factorize(hessian);
      state.factor_is_fresh = true;
      return;
    }
    MatrixColMajor hessian;
    VectorXd mu(eta_.rows());
    if (rates_current_[static_cast<std::size_t>(state.neuron)]) {
      mu = rates_.col(state.neuron);
    } else {
      kernels::active().exp(mu.size(), eta_.col(state.neuron).data(), mu.data());
    }
    const double n = static_cast<double>(rows_.size());
    if (state.factor_level == kSampledSingle) {
      // Grid rows (every stride-th valid row, from the compact copy when there is one), then
      // the heavy rows off the grid.
      VectorXd grid_weights, heavy_weights;
      IndexVector heavy_rows;
      sample_hessian_rows(mu, state.hessian_stride, grid_weights, heavy_rows, heavy_weights);
      const auto cached = sampled_designs_.find(state.hessian_stride);
      if (cached != sampled_designs_.end()) {
        const DenseRows<MatrixColMajor> grid_source(cached->second);
        const IndexVector positions = IndexVector::LinSpaced(grid_weights.size(), 0, grid_weights.size() - 1);
        NeuronRows<DenseRows<MatrixColMajor>>(grid_source, positions, state.active)
            .hessian(grid_weights, n, hessian, true, options_.stop, n_threads_);
      } else {
        NeuronRows<Source>(design_, grid_rows(state.hessian_stride), state.active)
            .hessian(grid_weights, n, hessian, true, options_.stop, n_threads_);
      }
      if (heavy_rows.size() > 0) {
        MatrixColMajor heavy_part;
        NeuronRows<Source>(design_, heavy_rows, state.active)
            .hessian(heavy_weights, n, heavy_part, true, options_.stop, n_threads_);
        hessian += heavy_part;
      }
    } else {
      NeuronRows<Source>(design_, rows_, state.active)
          .hessian(mu, n, hessian, state.factor_level == kFullSingle, options_.stop, n_threads_);
    }
    add_ridge(state, hessian);
    state.system.factorize(hessian);
    state.factor_is_fresh = true;
    ++state.result.n_hessian;
  }

  /// For dense designs, a compact copy of the sub-sampled Hessians' grid rows (every stride-th
  /// valid row) for each stride in use. Read in place, those rows are strided through the
  /// whole design: every sub-sampled Hessian touched every cache line of X. Strides whose copies
  /// would exceed half the design are not copied.
  void cache_sampled_designs(const std::vector<NeuronState>& states) {
    if constexpr (Source::kHasViews) {
      const Index n = rows_.size();
      Index budget = n * design_.cols() / 2;
      for (const auto& state : states) {
        const Index stride = state.hessian_stride;
        if (state.stage == Stage::kDone || state.level != kSampledSingle || stride < 2 ||
            sampled_designs_.count(stride) > 0)
          continue;
        const Index copy_size = (n + stride - 1) / stride * design_.cols();
        if (copy_size > budget) continue;
        budget -= copy_size;
        const IndexVector grid = grid_rows(stride);
        MatrixColMajor& copy = sampled_designs_[stride];
        copy.resize(grid.size(), design_.cols());
        // By column ranges, one per thread: the strided reads touch every cache line of X.
        const Index p = design_.cols();
        const bool contiguous = is_contiguous(grid);
        const int threads = sanitize_threads(n_threads_);
#pragma omp parallel for schedule(static) num_threads(threads) if (threads > 1 && p > 1)
        for (int part = 0; part < threads; ++part) {
          const Index first = p * part / threads, last = p * (part + 1) / threads;
          std::vector<Index> columns;
          for (Index c = first; c < last; ++c) columns.push_back(c);
          if (!columns.empty()) design_.gather(grid, 0, grid.size(), contiguous, &columns, first, copy);
        }
      }
    }
  }

  /// The design rows of the sub-sampled Hessians' grid: every stride-th valid row.
  IndexVector grid_rows(Index stride) const {
    IndexVector grid((rows_.size() + stride - 1) / stride);
    for (Index k = 0; k < grid.size(); ++k) grid[k] = rows_[k * stride];
    return grid;
  }

  /// Rows and weights of a sub-sampled Hessian: every stride-th row (the grid) with stride times
  /// its weight, and every row whose rate is heavy (above kHeavyRate times the mean, at most
  /// n / stride of them) with its own weight, on the grid or off it (heavy_rows). Spiking data
  /// put much of the Hessian on a few rows (bursts, post-spike rates); uniform sampling alone
  /// would miss them.
  void sample_hessian_rows(const Eigen::Ref<const VectorXd>& mu, Index stride, VectorXd& grid_weights,
                           IndexVector& heavy_rows, VectorXd& heavy_weights) const {
    const Index n = mu.size();
    const double threshold = heavy_threshold(mu, stride);
    grid_weights.resize((n + stride - 1) / stride);
    for (Index k = 0; k < grid_weights.size(); ++k) {
      const double rate = mu[k * stride];
      grid_weights[k] = rate > threshold ? rate : static_cast<double>(stride) * rate;
    }
    std::vector<Index> rows;
    std::vector<double> weights;
    for (Index i = 0; i < n; ++i)
      if (mu[i] > threshold && i % stride != 0) {
        rows.push_back(rows_[i]);
        weights.push_back(mu[i]);
      }
    heavy_rows = Eigen::Map<const IndexVector>(rows.data(), static_cast<Index>(rows.size()));
    heavy_weights = Eigen::Map<const VectorXd>(weights.data(), static_cast<Index>(weights.size()));
  }

  /// The rate above which a row is heavy: kHeavyRate times the mean, raised so that at most
  /// n / stride rows are.
  static double heavy_threshold(const Eigen::Ref<const VectorXd>& mu, Index stride) {
    const Index n = mu.size();
    const Index budget = std::max<Index>(n / stride, 1);
    double threshold = kHeavyRate * mu.mean();
    if ((mu.array() > threshold).count() > budget) {
      std::vector<double> sorted(mu.data(), mu.data() + n);
      std::nth_element(sorted.begin(), sorted.begin() + budget, sorted.end(), std::greater<>());
      threshold = sorted[static_cast<std::size_t>(budget)];
    }
    return threshold;
  }

  static void add_ridge(const NeuronState& state, MatrixColMajor& hessian) {
    if (state.ridge.size() > 0) hessian.diagonal() += state.ridge;
  }

  static void escalate(NeuronState& state) {
    state.level = std::max(state.level, std::min<int>(state.factor_level + 1, kFullDouble));
  }

  /// True when the neuron is silent or some predicted rate vanishes relative to its mean count.
  bool rates_reach_zero(const NeuronState& state) const {
    if (!options_.detect_divergence) return false;
    return state.mean_count == 0.0 ||
           std::exp(eta_.col(state.neuron).minCoeff()) < kVanishingRate * state.mean_count;
  }

  /// rates_reach_zero, or some rate so small that its row's share of the mean gradient is near
  /// tol (rate < 10 n tol) while far below the mean count: where a ray towards an MLE at infinity
  /// can end within tol without its rates ever looking vanishing against the mean.
  bool rates_at_tol_floor(const NeuronState& state) const {
    if (!options_.detect_divergence) return false;
    const double floor = std::max(
        kVanishingRate * state.mean_count,
        std::min(10.0 * static_cast<double>(rows_.size()) * options_.tol, kTolFloorRate * state.mean_count));
    return state.mean_count == 0.0 || std::exp(eta_.col(state.neuron).minCoeff()) < floor;
  }

  void set_point(NeuronState& state, const VectorXd& eta) {
    eta_.col(state.neuron) = eta;
    rates_current_[static_cast<std::size_t>(state.neuron)] = 0;
  }

  void move(NeuronState& state, double step) {
    state.at_flat_start = false;
    state.last_move = step * state.direction;
    state.gradient_before_move = state.gradient;
    const auto step_eta = step_eta_.col(state.batch_column);
    state.theta.noalias() += step * state.direction;
    eta_.col(state.neuron) += step * step_eta;
    rates_current_[static_cast<std::size_t>(state.neuron)] = 0;
  }

  /// Record the curvature seen along the last move (exact gradients at both ends).
  static void remember_curvature(NeuronState& state) {
    state.change = state.gradient - state.gradient_before_move;
    const double curvature = state.last_move.dot(state.change);
    if (!(curvature > kMinCurvature * state.last_move.norm() * state.change.norm())) return;
    if (state.pair_steps.size() == kCurvaturePairs) {
      // Recycle the oldest pair's vectors (oldest first is kept by rotating them to the back).
      std::rotate(state.pair_steps.begin(), state.pair_steps.begin() + 1, state.pair_steps.end());
      std::rotate(state.pair_changes.begin(), state.pair_changes.begin() + 1, state.pair_changes.end());
      std::rotate(state.pair_rho.begin(), state.pair_rho.begin() + 1, state.pair_rho.end());
      state.pair_steps.back() = state.last_move;
      state.pair_changes.back().swap(state.change);
      state.pair_rho.back() = 1.0 / curvature;
      return;
    }
    state.pair_steps.push_back(state.last_move);
    state.pair_changes.push_back(state.change);
    state.pair_rho.push_back(1.0 / curvature);
  }

  static void forget_curvature(NeuronState& state) {
    state.pair_steps.clear();
    state.pair_changes.clear();
    state.pair_rho.clear();
  }

  /// The step direction: -B^{-1} g, where B is the factor corrected by the recent curvature pairs
  /// (L-BFGS two-loop recursion with the factor as the initial matrix). Sub-sampled, float32 or
  /// reused factors converge only linearly; the corrections restore fast convergence without
  /// another Hessian. A fresh float64 factor is exact and used alone.
  static void newton_direction(NeuronState& state) {
    const std::size_t n_pairs = state.pair_steps.size();
    if (n_pairs == 0 || (state.factor_is_fresh && state.factor_level == kFullDouble)) {
      state.system.solve(state.gradient, state.direction);
      return;
    }
    VectorXd& residual = state.change;  // scratch here: remember_curvature refills it
    residual = state.gradient;
    std::array<double, kCurvaturePairs> alpha{};
    for (std::size_t i = n_pairs; i-- > 0;) {
      alpha[i] = state.pair_rho[i] * state.pair_steps[i].dot(residual);
      residual -= alpha[i] * state.pair_changes[i];
    }
    state.system.solve(residual, state.direction);  // = -B0^{-1} residual
    for (std::size_t i = 0; i < n_pairs; ++i) {
      const double beta = -state.pair_rho[i] * state.pair_changes[i].dot(state.direction);
      state.direction -= (alpha[i] - beta) * state.pair_steps[i];
    }
  }

  void finish(NeuronState& state, FitStatus status) {
    const auto eta = eta_.col(state.neuron);
    double sum = 0.0;
    for (Index i = 0; i < eta.size(); ++i) sum += std::exp(eta[i]) - count(i, state.neuron) * eta[i];
    state.result.status = status;
    state.result.objective = sum / static_cast<double>(eta.size());
    if (state.ridge.size() > 0)
      state.result.objective += 0.5 * state.ridge.dot(state.theta.cwiseAbs2());
    state.stage = Stage::kDone;
    state.pending = Pending::kNothing;
  }

  /// Decide what to do with the gradient at the current point: refresh the Hessian or keep the
  /// factor, stop, or compute a direction (whose X d the next product forms).
  void plan(NeuronState& state) {
    state.pending = Pending::kNothing;
    if (state.has_new_gradient && !take_gradient(state)) return;

    if (state.pending_refresh != kNoRefresh) {
      refresh_hessian(state, state.pending_refresh);
      state.pending_refresh = kNoRefresh;
    }
    state.result.gradient_norm = state.gradient.cwiseAbs().maxCoeff();
    state.within_tol = state.result.gradient_norm <= options_.tol;
    if ((state.within_tol || state.result.n_iter >= state.next_divergence_check) &&
        rates_reach_zero(state)) {
      // Some predicted rates are vanishing: either a legitimately extreme fit or an MLE at
      // infinity (silent neuron, perfect separation). Only the latter still has a large exact
      // Newton step, which no loose or reused factor can hide. Checked late in slow fits too:
      // a divergence can crawl for hundreds of iterations before its gradient reaches tol.
      if (!(state.factor_is_fresh && state.factor_level == kFullDouble))
        refresh_hessian(state, kFullDouble);
      state.system.solve(state.gradient, state.direction);
      state.pending = Pending::kDivergenceCheck;
      return;
    }
    if (state.within_tol) {
      newton_direction(state);
      start_polish(state, /*may_check=*/true);
      return;
    }
    if (state.result.n_iter >= options_.max_iter) {
      finish(state, FitStatus::max_iter_reached);
      return;
    }
    for (;;) {
      newton_direction(state);
      state.slope = state.gradient.dot(state.direction);
      if (state.slope < 0.0 && state.direction.allFinite()) break;
      if (!state.pair_steps.empty()) {
        forget_curvature(state);  // the corrections spoilt it: retry with the factor alone
        continue;
      }
      // Not a descent direction: only a fresh float64 factor is trusted to say so.
      if (state.factor_is_fresh && state.factor_level == kFullDouble) {
        finish(state, FitStatus::line_search_failed);
        return;
      }
      if (state.factor_is_fresh) escalate(state);
      refresh_hessian(state, kFullDouble);
    }
    state.pending = Pending::kStep;
  }

  /// Take in the gradient just computed at the current point; false when the neuron has nothing
  /// more to do this round.
  bool take_gradient(NeuronState& state) {
    const double norm = state.gradient.cwiseAbs().maxCoeff();
    switch (state.stage) {
      case Stage::kStart:
        if (!state.gradient.allFinite()) {
          // A start far enough out to overflow exp(eta): restart from the intercept-only model.
          state.theta.setZero();
          state.theta[0] = std::log(std::max(state.mean_count, 0.5 / static_cast<double>(rows_.size())));
          set_point(state, VectorXd::Constant(rows_.size(), state.theta[0]));
          state.pending_refresh = kFullDouble;
          state.needs_gradient = true;
          state.stage = Stage::kIterate;
          return false;
        }
        state.stage = Stage::kIterate;
        return true;
      case Stage::kPolish: {
        if (!(norm < state.result.gradient_norm)) {
          // The polishing step did not help: go back to the point before it.
          state.theta = state.theta_before_polish;
          const VectorXd eta = eta_.col(state.neuron) - state.polish_step * step_eta_.col(state.batch_column);
          set_point(state, eta);
          state.gradient = state.gradient_before_move;  // the gradient at that point
          finish_converged(state, /*may_check=*/true);
          return false;
        }
        const double previous_norm = state.result.gradient_norm;
        state.result.gradient_norm = norm;
        ++state.result.n_iter;
        ++state.polish_count;
        remember_curvature(state);
        if (norm > kPolishContraction * previous_norm || state.polish_count >= kPolishSteps) {
          finish_converged(state, /*may_check=*/true);
          return false;
        }
        newton_direction(state);
        plan_polish_step(state, /*may_check=*/true);
        return false;
      }
      case Stage::kIterate:
        if (state.just_stepped) {
          state.just_stepped = false;
          remember_curvature(state);
          if (norm <= kChordContraction * state.previous_norm) {
            state.factor_is_fresh = false;  // the factor still works: keep it for the next step
          } else {
            // Full steps from fresh approximate factors that keep failing to halve the gradient
            // mean the approximation is not good enough for this neuron.
            if (state.fresh_approximate_full_step && !(norm <= kMissContraction * state.previous_norm) &&
                ++state.approximation_misses >= kApproximationMisses)
              escalate(state);
            state.pending_refresh = kSampledSingle;
          }
        }
        return true;
      case Stage::kDone:
        return false;
    }
    return false;
  }

  /// `may_check`: called while planning (not while advancing), when a divergence check can
  /// still be scheduled for this round's products.
  void start_polish(NeuronState& state, bool may_check) {
    state.result.status = FitStatus::converged;
    state.polish_count = 0;
    plan_polish_step(state, may_check);
  }

  /// Within tol at the end of polishing. Polishing can drive a rate to zero that was not
  /// vanishing when the gradient first reached tol: a single separated row's rate is only ~n tol
  /// there. So once, if some rate now vanishes, an exact Newton step decides whether this is an
  /// MLE at infinity approached along a ray (see advance).
  void finish_converged(NeuronState& state, bool may_check) {
    if (!may_check || state.checked_after_polish || !rates_at_tol_floor(state)) {
      finish(state, FitStatus::converged);
      return;
    }
    state.checked_after_polish = true;
    state.stage = Stage::kIterate;
    // Polishing moves without clearing factor_is_fresh: the factor in hand may predate the move
    // that made the rates vanish, so the Hessian is always formed at this point.
    refresh_hessian(state, kFullDouble);
    state.system.solve(state.gradient, state.direction);
    state.pending = Pending::kDivergenceCheck;
  }

  /// Within tol, more steps with the factor in hand (exact or approximate) take the gradient
  /// towards rounding level, so the coefficients are exact even where the Hessian is small. Each
  /// costs two products, not a Hessian; they stop once progress stalls.
  void plan_polish_step(NeuronState& state, bool may_check) {
    // The remaining step bounds the coefficients' error: stop once it is negligible.
    const double scale = 1.0 + state.theta.cwiseAbs().maxCoeff();
    state.slope = state.gradient.dot(state.direction);
    if (state.direction.cwiseAbs().maxCoeff() <= kPolishStep * options_.tol * scale ||
        !(state.slope < 0.0) || !state.direction.allFinite()) {
      finish_converged(state, may_check);
      return;
    }
    state.stage = Stage::kPolish;
    state.pending = Pending::kPolish;
  }

  /// Use the direction's linear predictor: line search and move, or the divergence verdict.
  void advance(NeuronState& state) {
    const auto step_eta = step_eta_.col(state.batch_column);
    if (state.pending == Pending::kDivergenceCheck) {
      const bool diverging = step_eta.cwiseAbs().maxCoeff() > kDivergentStep;
      state.next_divergence_check = state.result.n_iter + (diverging ? 1 : kRecheckInterval);
      if (diverging) {
        // Confirm over a few steps so that a loose tol cannot mislabel a finite optimum.
        if (state.divergent_confirmations >= kDivergentConfirmations ||
            state.result.n_iter >= options_.max_iter) {
          finish(state, FitStatus::mle_at_infinity);
          return;
        }
        ++state.divergent_confirmations;
      } else if (state.within_tol) {
        start_polish(state, /*may_check=*/false);  // with this direction, whose X d is in hand
        if (state.stage == Stage::kDone) return;
      } else if (state.result.n_iter >= options_.max_iter) {
        finish(state, FitStatus::max_iter_reached);
        return;
      }
      if (state.pending == Pending::kDivergenceCheck) {
        state.slope = state.gradient.dot(state.direction);
        if (!(state.slope < 0.0) || !state.direction.allFinite()) {
          // The factor is fresh and float64 here: no descent direction exists numerically.
          finish(state, FitStatus::line_search_failed);
          return;
        }
        state.pending = Pending::kStep;
      }
    }

    const double penalty_curvature =
        state.ridge.size() > 0 ? 0.5 * state.ridge.dot(state.direction.cwiseAbs2()) : 0.0;
    const double* rates =
        rates_current_[static_cast<std::size_t>(state.neuron)] ? rates_.col(state.neuron).data() : nullptr;
    const double step = backtrack(eta_.col(state.neuron), rates, step_eta, state.slope, penalty_curvature);
    if (state.pending == Pending::kPolish) {
      if (step == 0.0) {
        finish(state, FitStatus::converged);
        return;
      }
      state.theta_before_polish = state.theta;
      state.polish_step = step;
      move(state, step);
      state.needs_gradient = true;
      return;
    }
    if (step == 0.0) {
      if (state.factor_is_fresh && state.factor_level == kFullDouble) {
        finish(state, FitStatus::line_search_failed);
        return;
      }
      if (state.factor_is_fresh) escalate(state);
      state.pending_refresh = kFullDouble;  // retry from the same point and gradient
      return;
    }
    state.fresh_approximate_full_step =
        state.factor_is_fresh && state.factor_level < kFullDouble && step == 1.0;
    move(state, step);
    ++state.result.n_iter;
    state.previous_norm = state.result.gradient_norm;
    state.just_stepped = true;
    state.needs_gradient = true;
  }

 private:
  const Source& design_;
  const MatrixColMajor& gram_;
  SharedDesign<Source> shared_;
  Eigen::Ref<const MatrixColMajor> counts_;
  Eigen::Ref<const IndexVector> rows_;
  bool rows_contiguous_;
  const FitOptions& options_;
  int n_threads_;
  // Linear predictors, one column per neuron. Rates exp(eta) are recomputed where needed rather
  // than stored: for long recordings this matrix is the largest allocation of the fit.
  MatrixColMajor eta_;
  MatrixColMajor step_eta_;  // linear predictors of the last batch of directions
  // exp(eta_) where rates_current_ says so (the gradient's rates, until the point moves); empty
  // when too large (kRateCacheBytes).
  MatrixColMajor rates_;
  std::vector<char> rates_current_;
  std::map<Index, MatrixColMajor> sampled_designs_;  // stride -> grid rows (cache_sampled_designs)
};

/// Gram matrix A^T A / n of A = [1, X] on a list of rows (summed in fixed row chunks, so it and
/// every decision based on it are thread-independent).
template <class Source>
MatrixColMajor design_gram(const Source& design, const Eigen::Ref<const IndexVector>& rows,
                           int n_threads) {
  std::vector<Index> all_features(static_cast<std::size_t>(design.cols()));
  for (Index p = 0; p < design.cols(); ++p) all_features[static_cast<std::size_t>(p)] = p;
  MatrixColMajor gram;
  NeuronRows<Source>(design, rows, all_features)
      .hessian(VectorXd::Ones(rows.size()), static_cast<double>(rows.size()), gram, false, nullptr, n_threads);
  return gram;
}

/// True when a neuron's masked design is well enough conditioned for float32 Hessians: the
/// Hessian A^T W A has the null space of A, and its conditioning starts from that of A^T A.
bool well_conditioned(const MatrixColMajor& gram, const std::vector<Index>& active) {
  return suits_single_precision(gram_block(gram, active));
}

/// Row stride of sub-sampled Hessians: about kHessianRowsPerParam rows per parameter remain, or
/// kLargeHessianRowsPerParam when that would keep (nearly) all rows; 1 (no sub-sampling) when
/// even that would.
Index hessian_stride(Index n_rows, Index n_params) {
  Index stride = n_rows / (kHessianRowsPerParam * n_params);
  if (stride < 2) stride = n_rows / (kLargeHessianRowsPerParam * n_params);
  return stride >= 2 ? stride : 1;
}

}  // namespace

template <class Source>
void smooth_poisson_newton(const Source& design, const Problem& problem, Eigen::Ref<MatrixColMajor> coef,
                           Eigen::Ref<VectorXd> intercept, PopulationFitReport& report) {
  const auto& rows = problem.rows;
  const auto& ridge = problem.penalty.l2;
  const Index n_features = design.cols();
  const Index n_neurons = problem.counts.cols();
  const Index n = rows.size();
  // Small problems run serially: waking threads for every population step would cost more than
  // the step itself (results are the same either way).
  int n_threads = problem.options.n_threads;
  if (n * (n_features + 1) * n_neurons < kSerialWork) n_threads = 1;

  // The conditioning gate only needs the Gram matrix roughly: a row sub-sample serves.
  const Index gram_stride = hessian_stride(n, n_features + 1);
  IndexVector gram_rows((n + gram_stride - 1) / gram_stride);
  for (Index k = 0; k < gram_rows.size(); ++k) gram_rows[k] = rows[k * gram_stride];
  const MatrixColMajor gram = design_gram(design, gram_rows, n_threads);

  auto states = start_neurons<NeuronState>(problem.mask, coef, intercept, problem.counts, rows);
  // Neurons with the same active features share the conditioning verdict (without a mask, all
  // do): one factorisation per distinct feature set.
  std::map<std::vector<Index>, bool> conditioning;
  for (NeuronState& state : states) {
    const Index q = state.n_params();
    if (ridge.size() > 0) {
      state.ridge = VectorXd::Zero(q);
      for (std::size_t a = 0; a < state.active.size(); ++a)
        state.ridge[static_cast<Index>(a) + 1] = ridge(state.active[a], state.neuron);
      if (state.ridge.isZero(0.0)) state.ridge.resize(0);
    }
    const auto known = conditioning.find(state.active);
    state.well_conditioned = known != conditioning.end()
                                 ? known->second
                                 : (conditioning[state.active] = well_conditioned(gram, state.active));
    state.at_flat_start = state.theta.tail(q - 1).isZero(0.0);
    state.hessian_stride = hessian_stride(n, q);
    state.level = !state.well_conditioned ? kFullDouble
                  : state.hessian_stride == 1 ? kFullSingle
                                              : kSampledSingle;
  }
  PopulationSolver<Source>(design, problem.counts, rows, gram, problem.options, n_threads).solve(states);
  write_back(states, coef, intercept, report);
}

template void smooth_poisson_newton<ColMajorRows>(const ColMajorRows&, const Problem&,
                                                  Eigen::Ref<MatrixColMajor>, Eigen::Ref<VectorXd>,
                                                  PopulationFitReport&);
template void smooth_poisson_newton<RowMajorRows>(const RowMajorRows&, const Problem&,
                                                  Eigen::Ref<MatrixColMajor>, Eigen::Ref<VectorXd>,
                                                  PopulationFitReport&);
template void smooth_poisson_newton<HistoryRows>(const HistoryRows&, const Problem&,
                                                 Eigen::Ref<MatrixColMajor>, Eigen::Ref<VectorXd>,
                                                 PopulationFitReport&);

}  // namespace popglm::detail
