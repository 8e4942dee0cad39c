// The population's lockstep rounds, written once for both methods. A method is a per-neuron
// loop cut at the two points where it needs a product with the shared design (the gradients and
// its directions' linear predictors), so that each product is formed for all running neurons at
// once. Per round: gradients for the neurons that need one, plan (in parallel), the directions'
// linear predictors, advance (in parallel).
#pragma once

#include <cstdint>
#include <limits>
#include <vector>

#include "design_rows.hpp"
#include "popglm/fit.hpp"

namespace popglm::detail {

/// How a neuron's solve ended, and what it cost.
struct NeuronResult {
  FitStatus status = FitStatus::internal_error;
  int n_iter = 0;
  int n_hessian = 0;
  double gradient_norm = std::numeric_limits<double>::quiet_NaN();
  double objective = std::numeric_limits<double>::quiet_NaN();
};

/// What every method keeps per neuron: its problem, its point and its result.
struct NeuronBase {
  Index neuron = 0;  // also its column of the linear predictor matrix
  std::vector<Index> active;  // the features its mask keeps
  VectorXd theta;  // intercept, then the active coefficients
  VectorXd gradient, direction;
  double mean_count = 0.0;  // over the fitted rows
  Index batch_column = -1;  // its column in the last batch of products
  NeuronResult result;

  Index n_params() const { return static_cast<Index>(active.size()) + 1; }
};

/// One state per neuron, with its active features, its start and its mean count.
template <class State>
std::vector<State> start_neurons(const Eigen::Ref<const MaskMatrix>& mask,
                                 const Eigen::Ref<const MatrixColMajor>& coef,
                                 const Eigen::Ref<const Eigen::VectorXd>& intercept,
                                 const Eigen::Ref<const MatrixColMajor>& counts,
                                 const Eigen::Ref<const IndexVector>& rows) {
  const Index n_neurons = counts.cols(), n = rows.size();
  std::vector<State> states(static_cast<std::size_t>(n_neurons));
  for (Index neuron = 0; neuron < n_neurons; ++neuron) {
    State& state = states[static_cast<std::size_t>(neuron)];
    state.neuron = neuron;
    for (Index p = 0; p < mask.rows(); ++p)
      if (mask(p, neuron) != 0) state.active.push_back(p);
    state.theta.resize(state.n_params());
    state.theta[0] = intercept[neuron];
    for (std::size_t a = 0; a < state.active.size(); ++a)
      state.theta[static_cast<Index>(a) + 1] = coef(state.active[a], neuron);
    double total = 0.0;
    for (Index i = 0; i < n; ++i) total += counts(rows[i], neuron);
    state.mean_count = n > 0 ? total / static_cast<double>(n) : 0.0;
  }
  return states;
}

/// The solutions into coef and intercept (masked coefficients exactly 0), the results into the
/// report; a neuron that ended in an internal error keeps its start.
template <class State>
void write_back(const std::vector<State>& states, Eigen::Ref<MatrixColMajor> coef,
                Eigen::Ref<Eigen::VectorXd> intercept, PopulationFitReport& report) {
  for (const State& state : states) {
    const Index neuron = state.neuron;
    if (state.result.status != FitStatus::internal_error) {
      coef.col(neuron).setZero();
      for (std::size_t a = 0; a < state.active.size(); ++a)
        coef(state.active[a], neuron) = state.theta[static_cast<Index>(a) + 1];
      intercept[neuron] = state.theta[0];
    }
    report.status[neuron] = static_cast<std::int32_t>(state.result.status);
    report.n_iter[neuron] = state.result.n_iter;
    report.n_hessian[neuron] = state.result.n_hessian;
    report.gradient_norm[neuron] = state.result.gradient_norm;
    report.objective[neuron] = state.result.objective;
  }
}

/// Run `method` over all neurons for at most `max_rounds` rounds; neurons still running then end
/// max_iter_reached. The method supplies:
///   done(state), wants_gradient(state), gradients(batch), plan(state), has_step(state),
///   step_predictors(batch), advance(state), finish(state, status), abandon(state, status).
/// plan and advance run in parallel over neurons, each on its own state only; an exception
/// there ends that neuron with internal_error. When the stop token fires, every unfinished
/// neuron ends interrupted.
template <class State, class Method>
void run_lockstep(std::vector<State>& states, Method& method, std::int64_t max_rounds, const FitOptions& options,
                  int n_threads) {
  const Index n_neurons = static_cast<Index>(states.size());
  auto interrupted = [&] {
    if (!stop_requested(options.stop)) return false;
    for (State& state : states)
      if (!method.done(state)) method.abandon(state, FitStatus::interrupted);
    return true;
  };
  auto in_parallel = [&](const std::vector<State*>& batch, auto&& step) {
    const Index count = static_cast<Index>(batch.size());
#pragma omp parallel for schedule(dynamic, 1) num_threads(sanitize_threads(n_threads)) if (count > 1)
    for (Index k = 0; k < count; ++k) {
      State& state = *batch[static_cast<std::size_t>(k)];
      if (stop_requested(options.stop)) continue;
      try {
        step(state);
      } catch (...) {
        // No exception may leave an OpenMP region: the neuron reports it instead.
        method.abandon(state, FitStatus::internal_error);
      }
    }
  };
  std::vector<State*> running, needing, stepping;
  for (std::int64_t round = 0; round < max_rounds; ++round) {
    running.clear();
    // NaN until some neuron has a gradient (the first rounds): progress reports it as pending.
    double largest_gradient = std::numeric_limits<double>::quiet_NaN();
    for (State& state : states)
      if (!method.done(state)) {
        running.push_back(&state);
        keep_largest_finite(largest_gradient, state.result.gradient_norm);
      }
    if (running.empty()) return;
    if (options.progress)
      options.progress(n_neurons - static_cast<Index>(running.size()), n_neurons, largest_gradient);
    needing.clear();
    for (State* state : running)
      if (method.wants_gradient(*state)) needing.push_back(state);
    if (!needing.empty()) method.gradients(needing);
    if (interrupted()) return;
    in_parallel(running, [&](State& state) { method.plan(state); });
    if (interrupted()) return;
    stepping.clear();
    for (State* state : running)
      if (method.has_step(*state)) stepping.push_back(state);
    if (!stepping.empty()) method.step_predictors(stepping);
    if (interrupted()) return;
    in_parallel(stepping, [&](State& state) { method.advance(state); });
  }
  for (State& state : states)
    if (!method.done(state)) method.finish(state, FitStatus::max_iter_reached);
}

}  // namespace popglm::detail
