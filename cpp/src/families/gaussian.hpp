// Gaussian observations with the identity link: per-sample loss (y - mu)^2 (NeMoS's). Members as
// in families/poisson.hpp.
#pragma once

namespace popglm::detail {

struct GaussianIdentity {
  double loss(double eta, double y) const { return (y - eta) * (y - eta); }
  double first(double eta, double y) const { return 2.0 * (eta - y); }
  double second(double, double) const { return 2.0; }
  double change(double eta, double y, double t) const { return t * (t - 2.0 * (y - eta)); }
  bool intercept_at_infinity(double) const { return false; }
};

}  // namespace popglm::detail
