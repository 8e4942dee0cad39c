// Bernoulli observations with the logistic inverse link: per-sample loss
// -y log p - (1 - y) log(1 - p) = softplus(eta) - y eta. Members as in families/poisson.hpp.
#pragma once

#include "families/common.hpp"

namespace popglm::detail {

struct BernoulliLogistic {
  double loss(double eta, double y) const { return softplus(eta) - y * eta; }
  double first(double eta, double y) const { return sigmoid(eta) - y; }
  double second(double eta, double) const {
    const double s = sigmoid(eta);
    return s * (1.0 - s);
  }
  double change(double eta, double y, double t) const { return softplus_change(eta, t) - y * t; }
  bool intercept_at_infinity(double mean) const { return mean == 0.0 || mean == 1.0; }
};

}  // namespace popglm::detail
