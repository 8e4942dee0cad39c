// Numerically safe pieces shared by the observation families' losses.
#pragma once

#include <cmath>

namespace popglm::detail {

inline double softplus(double x) {
  return x > 0.0 ? x + std::log1p(std::exp(-x)) : std::log1p(std::exp(x));
}

inline double sigmoid(double x) {
  if (x >= 0.0) return 1.0 / (1.0 + std::exp(-x));
  const double e = std::exp(x);
  return e / (1.0 + e);
}

/// softplus(a + b) - softplus(a) without cancellation.
inline double softplus_change(double a, double b) {
  if (a + b > 0.0 && a > 0.0) return b + std::log1p(std::exp(-a - b)) - std::log1p(std::exp(-a));
  return std::log1p(sigmoid(a) * std::expm1(b));
}

}  // namespace popglm::detail
