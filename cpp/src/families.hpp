// The observation families the engine solves, one struct per family in families/ (loss,
// derivatives, intercept at infinity), and the one place that maps ObservationFamily to them.
// Adding a family: its struct, a value of ObservationFamily (popglm/fit.hpp), a case below, and
// the Python observation model that names it.
#pragma once

#include <stdexcept>

#include "families/bernoulli.hpp"
#include "families/gamma.hpp"
#include "families/gaussian.hpp"
#include "families/negative_binomial.hpp"
#include "families/poisson.hpp"
#include "popglm/fit.hpp"

namespace popglm::detail {

/// fn(family struct) for the family `code` (NegativeBinomial takes its dispersion from `scale`).
template <class Fn>
void visit_family(ObservationFamily code, double scale, Fn&& fn) {
  switch (code) {
    case ObservationFamily::poisson_exp: return fn(PoissonExp{});
    case ObservationFamily::poisson_softplus: return fn(PoissonSoftplus{});
    case ObservationFamily::bernoulli_logistic: return fn(BernoulliLogistic{});
    case ObservationFamily::gamma_inverse: return fn(GammaInverse{});
    case ObservationFamily::gamma_exp: return fn(GammaExp{});
    case ObservationFamily::negative_binomial_exp: return fn(NegativeBinomialExp{scale});
    case ObservationFamily::gaussian_identity: return fn(GaussianIdentity{});
  }
  throw std::invalid_argument("fit_population: unknown observation family");
}

}  // namespace popglm::detail
