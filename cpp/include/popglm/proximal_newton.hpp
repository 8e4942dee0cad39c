// Per-neuron Poisson GLMs with non-smooth penalties (Lasso, ElasticNet, GroupLasso) by proximal
// Newton: exact Hessians, a coordinate-descent solve of each penalised quadratic model, and a
// line search on the true objective.
#pragma once

#include "popglm/poisson_newton.hpp"
#include "popglm/types.hpp"

namespace popglm {

/// The penalty on neuron j's coefficients w (never on the intercept):
///   sum_p l1(p, j) |w_p| + 0.5 * sum_p l2(p, j) w_p^2 + sum_g group_weight(g, j) ||w_{p: group(p, j) = g}||_2.
/// `group(p, j)` is -1 for a feature in no group; a grouped feature should have l1(p, j) = 0.
struct SparsePenalty {
  Eigen::Ref<const MatrixColMajor> l1;            ///< (n_features, n_neurons), >= 0
  Eigen::Ref<const MatrixColMajor> l2;            ///< (n_features, n_neurons), >= 0
  Eigen::Ref<const IndexMatrix> group;            ///< (n_features, n_neurons), -1 or a group id
  Eigen::Ref<const MatrixColMajor> group_weight;  ///< (n_groups, n_neurons), >= 0
};

/// Fit one penalised Poisson GLM (exp link) per column of `counts`: minimise the mean over
/// `rows` of exp(eta) - y * eta plus the penalty. Stops when the minimum-norm subgradient's
/// largest entry is <= tol. Arguments and report as fit_poisson_population.
void fit_poisson_population_sparse(const Eigen::Ref<const MatrixColMajor>& design,
                                   const Eigen::Ref<const MatrixColMajor>& counts,
                                   const Eigen::Ref<const MaskMatrix>& mask,
                                   const SparsePenalty& penalty,
                                   const Eigen::Ref<const IndexVector>& rows,
                                   const NewtonOptions& options, Eigen::Ref<MatrixColMajor> coef,
                                   Eigen::Ref<Eigen::VectorXd> intercept,
                                   PopulationFitReport& report, int n_threads);
void fit_poisson_population_sparse(const Eigen::Ref<const MatrixRowMajor>& design,
                                   const Eigen::Ref<const MatrixColMajor>& counts,
                                   const Eigen::Ref<const MaskMatrix>& mask,
                                   const SparsePenalty& penalty,
                                   const Eigen::Ref<const IndexVector>& rows,
                                   const NewtonOptions& options, Eigen::Ref<MatrixColMajor> coef,
                                   Eigen::Ref<Eigen::VectorXd> intercept,
                                   PopulationFitReport& report, int n_threads);
/// The same on history features (see fit_poisson_population_history).
void fit_poisson_population_sparse_history(const Eigen::Ref<const MatrixColMajor>& inputs,
                                           const Eigen::Ref<const MatrixColMajor>& kernels,
                                           const Eigen::Ref<const MatrixColMajor>& counts,
                                           const Eigen::Ref<const MaskMatrix>& mask,
                                           const SparsePenalty& penalty,
                                           const Eigen::Ref<const IndexVector>& rows,
                                           const NewtonOptions& options,
                                           Eigen::Ref<MatrixColMajor> coef,
                                           Eigen::Ref<Eigen::VectorXd> intercept,
                                           PopulationFitReport& report, int n_threads);

}  // namespace popglm
