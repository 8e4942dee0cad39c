// The one line search of the Newton methods (the distributed sample-parallel fit, whose objective
// lives on the workers, applies the same backtracking rule with the same constants from Python).
#pragma once

#include <cmath>

#include "popglm/constants.hpp"

namespace popglm::detail {

/// See armijo_step.
inline constexpr double kExtendRatio = 0.9;

/// Backtracking from the full step: the first of 1, 1/2, ..., 2^-kMaxHalvings at which the
/// objective's change `change(step)` is finite and at most kArmijo * step * predicted (Armijo's
/// sufficient decrease; `predicted` < 0 is the change the local model predicts for the full
/// step: the slope for a smooth objective). 0 when none is. Callers compute the change term by
/// term without cancellation, so the test still works when it is far below the objective's own
/// rounding error.
///
/// When the full step decreases the objective by nearly all its slope predicts (at least
/// kExtendRatio of it, where a quadratic gives one half), the objective is almost linear along
/// the direction: the log-likelihood of rows whose rates are being driven towards zero. Newton
/// would then walk ~1 unit per iteration towards an optimum that may lie thousands of units away
/// (near separation), so the step is doubled while the objective keeps decreasing.
template <class Change>
double armijo_step(double predicted, const Change& change) {
  double step = 1.0;
  for (int halving = 0; halving <= kMaxHalvings; ++halving, step *= 0.5) {
    const double value = change(step);
    if (!(std::isfinite(value) && value <= kArmijo * step * predicted)) continue;
    if (halving > 0 || !(value <= kExtendRatio * predicted)) return step;
    double best = value;
    for (int doubling = 0; doubling < kMaxHalvings; ++doubling) {
      const double next = change(2.0 * step);
      if (!(std::isfinite(next) && next < best)) break;
      best = next;
      step *= 2.0;
    }
    return step;
  }
  return 0.0;
}

}  // namespace popglm::detail
