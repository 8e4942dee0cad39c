// Negative binomial observations with the exp link and dispersion phi (the model's scale):
// per-sample loss -y log(phi mu / (1 + phi mu)) + log(1 + phi mu) / phi. Members as in
// families/poisson.hpp.
#pragma once

#include <cmath>

#include "families/common.hpp"

namespace popglm::detail {

struct NegativeBinomialExp {
  double scale = 1.0;  ///< dispersion phi > 0

  double loss(double eta, double y) const {
    return (y + 1.0 / scale) * softplus(eta + std::log(scale)) - y * eta - y * std::log(scale);
  }
  double first(double eta, double y) const { return (y + 1.0 / scale) * sigmoid(eta + std::log(scale)) - y; }
  double second(double eta, double y) const {
    const double s = sigmoid(eta + std::log(scale));
    return (y + 1.0 / scale) * s * (1.0 - s);
  }
  double change(double eta, double y, double t) const {
    return (y + 1.0 / scale) * softplus_change(eta + std::log(scale), t) - y * t;
  }
  bool intercept_at_infinity(double mean) const { return mean == 0.0; }
};

}  // namespace popglm::detail
