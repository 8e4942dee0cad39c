// Per-neuron GLMs of any observation model, with any penalty (Lasso, ElasticNet, GroupLasso,
// Ridge), by proximal Newton: exact Hessians, a coordinate-descent solve of each penalised
// quadratic model, and a line search on the true objective. Unpenalised and Ridge Poisson fits
// with the exp link take the faster smooth engine (poisson_newton.hpp).
#pragma once

#include "popglm/poisson_newton.hpp"
#include "popglm/types.hpp"

namespace popglm {

/// Observation model and inverse link, with NeMoS's per-sample losses (up to constants):
/// Poisson mu - y log mu; Bernoulli -y log p - (1 - y) log(1 - p); Gamma y / mu + log mu;
/// negative binomial (dispersion phi = scale) -y log(phi mu / (1 + phi mu)) + log(1 + phi mu) / phi;
/// Gaussian (y - mu)^2.
enum class ObservationFamily : int {
  poisson_exp = 0,
  poisson_softplus = 1,
  bernoulli_logistic = 2,
  gamma_inverse = 3,  ///< mu = 1 / eta (NeMoS's default for Gamma); needs eta > 0 on every row
  gamma_exp = 4,
  negative_binomial_exp = 5,
  gaussian_identity = 6,
};

/// The penalty on neuron j's coefficients w (never on the intercept):
///   sum_p l1(p, j) |w_p| + 0.5 * sum_p l2(p, j) w_p^2 + sum_g group_weight(g, j) ||w_{p: group(p, j) = g}||_2.
/// `group(p, j)` is -1 for a feature in no group; a grouped feature should have l1(p, j) = 0.
struct SparsePenalty {
  Eigen::Ref<const MatrixColMajor> l1;            ///< (n_features, n_neurons), >= 0
  Eigen::Ref<const MatrixColMajor> l2;            ///< (n_features, n_neurons), >= 0
  Eigen::Ref<const IndexMatrix> group;            ///< (n_features, n_neurons), -1 or a group id
  Eigen::Ref<const MatrixColMajor> group_weight;  ///< (n_groups, n_neurons), >= 0
};

/// Fit one penalised GLM per column of `counts`: minimise the mean over `rows` of the family's
/// loss plus the penalty. Stops when the minimum-norm subgradient's largest entry is <= tol.
/// Arguments and report as fit_poisson_population; the start must be in the family's domain.
void fit_glm_population(const Eigen::Ref<const MatrixColMajor>& design,
                                   const Eigen::Ref<const MatrixColMajor>& counts,
                                   const Eigen::Ref<const MaskMatrix>& mask,
                                   const SparsePenalty& penalty,
                                   const Eigen::Ref<const IndexVector>& rows,
                                   ObservationFamily family, double scale,
                                   const NewtonOptions& options, Eigen::Ref<MatrixColMajor> coef,
                                   Eigen::Ref<Eigen::VectorXd> intercept,
                                   PopulationFitReport& report, int n_threads);
void fit_glm_population(const Eigen::Ref<const MatrixRowMajor>& design,
                                   const Eigen::Ref<const MatrixColMajor>& counts,
                                   const Eigen::Ref<const MaskMatrix>& mask,
                                   const SparsePenalty& penalty,
                                   const Eigen::Ref<const IndexVector>& rows,
                                   ObservationFamily family, double scale,
                                   const NewtonOptions& options, Eigen::Ref<MatrixColMajor> coef,
                                   Eigen::Ref<Eigen::VectorXd> intercept,
                                   PopulationFitReport& report, int n_threads);
/// The same on history features (see fit_poisson_population_history).
void fit_glm_population_history(const Eigen::Ref<const MatrixColMajor>& inputs,
                                           const Eigen::Ref<const MatrixColMajor>& kernels,
                                           const Eigen::Ref<const MatrixColMajor>& counts,
                                           const Eigen::Ref<const MaskMatrix>& mask,
                                           const SparsePenalty& penalty,
                                           const Eigen::Ref<const IndexVector>& rows,
                                           ObservationFamily family, double scale,
                                           const NewtonOptions& options,
                                           Eigen::Ref<MatrixColMajor> coef,
                                           Eigen::Ref<Eigen::VectorXd> intercept,
                                           PopulationFitReport& report, int n_threads);

}  // namespace popglm
