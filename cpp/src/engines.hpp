// The two methods behind fit_population (fit.cpp checks the problem once and picks one):
// smooth_poisson_newton (poisson_newton.cpp) for Poisson with the exp link and at most an l2
// penalty, proximal_newton (proximal_newton.cpp) for every family and penalty. Each is
// instantiated for the three row sources of design_rows.hpp.
#pragma once

#include "design_rows.hpp"
#include "popglm/fit.hpp"

namespace popglm::detail {

/// A checked problem, apart from its design.
struct Problem {
  Eigen::Ref<const MatrixColMajor> counts;
  Eigen::Ref<const IndexVector> rows;  // non-empty
  Eigen::Ref<const MaskMatrix> mask;
  const Penalty& penalty;
  const FitOptions& options;
};

using ColMajorRows = DenseRows<Eigen::Ref<const MatrixColMajor>>;
using RowMajorRows = DenseRows<Eigen::Ref<const MatrixRowMajor>>;

template <class Source>
void smooth_poisson_newton(const Source& design, const Problem& problem, Eigen::Ref<MatrixColMajor> coef,
                           Eigen::Ref<Eigen::VectorXd> intercept, PopulationFitReport& report);

template <class Source>
void proximal_newton(const Source& design, const Problem& problem, Eigen::Ref<MatrixColMajor> coef,
                     Eigen::Ref<Eigen::VectorXd> intercept, PopulationFitReport& report);

}  // namespace popglm::detail
