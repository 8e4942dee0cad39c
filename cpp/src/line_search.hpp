// The one line search of the Newton methods (the distributed sample-parallel fit, whose objective
// lives on the workers, applies the same rule with the same constants from Python).
#pragma once

#include <cmath>

#include "popglm/constants.hpp"

namespace popglm::detail {

/// Backtracking from the full step: the first of 1, 1/2, ..., 2^-kMaxHalvings at which the
/// objective's change `change(step)` is finite and at most kArmijo * step * predicted (Armijo's
/// sufficient decrease; `predicted` < 0 is the change the local model predicts for the full
/// step: the slope for a smooth objective). 0 when none is. Callers compute the change term by
/// term without cancellation, so the test still works when it is far below the objective's own
/// rounding error.
template <class Change>
double armijo_step(double predicted, const Change& change) {
  double step = 1.0;
  for (int halving = 0; halving <= kMaxHalvings; ++halving, step *= 0.5) {
    const double value = change(step);
    if (std::isfinite(value) && value <= kArmijo * step * predicted) return step;
  }
  return 0.0;
}

}  // namespace popglm::detail
