// Poisson observations: per-sample loss mu - y log mu (NeMoS's negative log-likelihood up to a
// constant), with the exp or the softplus inverse link.
//
// Every family struct has the same members: loss(eta, y), its first and second derivatives in
// eta, change(eta, y, t) = loss(eta + t, y) - loss(eta, y) computed without cancellation (the
// line search needs it near the optimum, far below the objective's rounding), and
// intercept_at_infinity(mean response): true when the intercept-only model has no finite optimum.
#pragma once

#include <cmath>

#include "families/common.hpp"

namespace popglm::detail {

struct PoissonExp {
  double loss(double eta, double y) const { return std::exp(eta) - y * eta; }
  double first(double eta, double y) const { return std::exp(eta) - y; }
  double second(double eta, double) const { return std::exp(eta); }
  double change(double eta, double y, double t) const { return std::exp(eta) * std::expm1(t) - y * t; }
  bool intercept_at_infinity(double mean) const { return mean == 0.0; }
};

struct PoissonSoftplus {
  double loss(double eta, double y) const {
    const double mu = softplus(eta);
    return mu - y * std::log(mu);
  }
  double first(double eta, double y) const { return sigmoid(eta) * (1.0 - y / softplus(eta)); }
  double second(double eta, double y) const {
    const double s = sigmoid(eta), mu = softplus(eta);
    return s * (1.0 - s) * (1.0 - y / mu) + s * s * y / (mu * mu);
  }
  double change(double eta, double y, double t) const {
    const double mu = softplus(eta), delta = softplus_change(eta, t);
    return delta - (y > 0.0 ? y * std::log1p(delta / mu) : 0.0);
  }
  bool intercept_at_infinity(double mean) const { return mean == 0.0; }
};

}  // namespace popglm::detail
