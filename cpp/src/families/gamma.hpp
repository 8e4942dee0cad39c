// Gamma observations: per-sample loss y / mu + log mu, with the inverse link mu = 1 / eta
// (NeMoS's default for Gamma; it needs eta > 0 on every row) or the exp link. Members as in
// families/poisson.hpp.
#pragma once

#include <cmath>
#include <limits>

namespace popglm::detail {

struct GammaInverse {
  double loss(double eta, double y) const {
    return eta > 0.0 ? y * eta - std::log(eta) : std::numeric_limits<double>::infinity();
  }
  double first(double eta, double y) const { return y - 1.0 / eta; }
  double second(double eta, double) const { return 1.0 / (eta * eta); }
  double change(double eta, double y, double t) const {
    return eta + t > 0.0 ? y * t - std::log1p(t / eta) : std::numeric_limits<double>::infinity();
  }
  bool intercept_at_infinity(double) const { return false; }
};

struct GammaExp {
  double loss(double eta, double y) const { return y * std::exp(-eta) + eta; }
  double first(double eta, double y) const { return 1.0 - y * std::exp(-eta); }
  double second(double eta, double y) const { return y * std::exp(-eta); }
  double change(double eta, double y, double t) const { return y * std::exp(-eta) * std::expm1(-t) + t; }
  bool intercept_at_infinity(double) const { return false; }
};

}  // namespace popglm::detail
