// The hand-written Cholesky factorisation of the Newton solvers: a Jacobi-scaled factor with a
// cheap bound on its condition number, and the Newton system built on it, which falls back to a
// truncated eigendecomposition for rank-deficient Hessians (the minimum-norm step).
#pragma once

#include <Eigen/Cholesky>
#include <Eigen/Eigenvalues>
#include <algorithm>
#include <utility>
#include <vector>

#include "kernels.hpp"
#include "popglm/constants.hpp"
#include "popglm/types.hpp"

namespace popglm::detail {

using Eigen::VectorXd;

/// The Cholesky factor L of a Jacobi-scaled symmetric positive definite matrix, for many solves
/// (the factor and the substitutions are kernels: see kernels.hpp).
class CholeskySolver {
 public:
  /// scale = 1 / sqrt(diagonal of a), scaled = diag(scale) a diag(scale), norm1 = ||scaled||_1,
  /// and the factor of scaled with inverse_bound >= ||scaled^{-1}||_1; false if scaled is not
  /// numerically positive definite.
  bool compute_scaled(const MatrixColMajor& a, VectorXd& scale, MatrixColMajor& scaled, double& norm1,
                      double& inverse_bound) {
    const Index q = a.rows();
    scale.resize(q);
    scaled.resize(q, q);
    lower_.resize(q, q);
    work_.resize(q);
    block_inverses_.resize(static_cast<std::size_t>(
        (q + kernels::kCholeskyBlock - 1) / kernels::kCholeskyBlock * kernels::kCholeskyBlock * kernels::kCholeskyBlock));
    return kernels::active().scaled_cholesky(q, a.data(), scale.data(), scaled.data(), &norm1, lower_.data(),
                                             block_inverses_.data(), &inverse_bound, work_.data());
  }

  /// x <- (L L^T)^{-1} x.
  void solve_in_place(Eigen::Ref<VectorXd> x) const {
    kernels::active().cholesky_solve(lower_.rows(), lower_.data(), block_inverses_.data(), x.data());
  }

  Index size() const { return lower_.rows(); }

 private:
  MatrixColMajor lower_;  // L in the lower triangle (the upper one is not read)
  VectorXd work_;
  std::vector<double> block_inverses_;  // per diagonal block of L, its inverse (row-major)
};

/// Hager's estimate of ||A^{-1}||_1 with Higham's alternating-sign safeguard (as LAPACK's dpocon
/// and Eigen's LLT::rcond), from the Cholesky factor of the symmetric A; v, sign and old_sign
/// are scratch.
inline double inverse_norm1_estimate(const CholeskySolver& factor, VectorXd& v, VectorXd& sign,
                              VectorXd& old_sign) {
  const Index q = factor.size();
  v.setConstant(q, 1.0 / static_cast<double>(q));
  factor.solve_in_place(v);
  double lower_bound = v.lpNorm<1>();
  if (q == 1) return lower_bound;
  double old_lower_bound = lower_bound;
  Index max_index = -1, old_max_index = -1;
  sign.resize(q);
  for (int k = 0; k < 4; ++k) {
    for (Index i = 0; i < q; ++i) sign[i] = v[i] < 0.0 ? -1.0 : 1.0;
    if (k > 0 && sign == old_sign) break;  // stagnated
    v = sign;
    factor.solve_in_place(v);  // A is symmetric: A^{-T} = A^{-1}
    v.cwiseAbs().maxCoeff(&max_index);
    if (max_index == old_max_index) break;
    v.setZero();
    v[max_index] = 1.0;
    factor.solve_in_place(v);
    lower_bound = v.lpNorm<1>();
    if (lower_bound <= old_lower_bound) break;
    old_sign = sign;
    old_max_index = max_index;
    old_lower_bound = lower_bound;
  }
  double alternating = 1.0;
  for (Index i = 0; i < q; ++i, alternating = -alternating)
    v[i] = alternating * (1.0 + static_cast<double>(i) / static_cast<double>(q - 1));
  factor.solve_in_place(v);
  return std::max(lower_bound, 2.0 * v.lpNorm<1>() / (3.0 * static_cast<double>(q)));
}

/// Scratch vectors of a condition check, kept by their owner to save allocations.
struct ConditionWork {
  VectorXd scale, v, sign, old_sign;
  MatrixColMajor scaled;
};

/// Factor the Jacobi-scaled `a` into `factor` and decide whether its reciprocal condition number
/// (1-norm) exceeds `threshold`. The cheap bound settles most matrices; only when it cannot is
/// Hager's estimate (several solves) run. Both lead to the same decision: the bound's rcond is
/// never above the estimate's. False when the scaled matrix is not numerically positive definite.
inline bool factor_with_rcond_above(const MatrixColMajor& a, double threshold, CholeskySolver& factor,
                             ConditionWork& work) {
  double norm1 = 0.0, inverse_bound = 0.0;
  if (!factor.compute_scaled(a, work.scale, work.scaled, norm1, inverse_bound) || !(norm1 > 0.0)) return false;
  return a.rows() == 1 || 1.0 / (inverse_bound * norm1) > threshold ||
         1.0 / (inverse_norm1_estimate(factor, work.v, work.sign, work.old_sign) * norm1) > threshold;
}

/// float32 Hessians (relative error ~1e-6) serve a matrix whose Jacobi-scaled reciprocal
/// condition number is above this; below it, float64.
constexpr double kSinglePrecisionRcond = 1e-6;

/// True when the symmetric `a` is conditioned well enough for float32 Hessians of its shape: a
/// design's Gram matrix (whose conditioning a Hessian A^T W A starts from), or a Hessian formed
/// in float32 itself. False with a non-positive diagonal (an all-zero feature).
inline bool suits_single_precision(const MatrixColMajor& a) {
  if (!(a.diagonal().array() > 0.0).all()) return false;
  CholeskySolver factor;
  ConditionWork work;
  return factor_with_rcond_above(a, kSinglePrecisionRcond, factor, work);
}

/// A factorisation of the Hessian that turns gradients into Newton directions. It is kept
/// across iterations so that near the optimum the same factor can serve several steps.
class NewtonSystem {
 public:
  /// Factorise; returns false when the Hessian is numerically rank deficient.
  bool factorize(const MatrixColMajor& hessian) {
    const Index q = hessian.rows();
    // Jacobi scaling makes the rank decision independent of the features' units.
    full_rank_ = factor_with_rcond_above(hessian, kRankTolerance, factor_, work_);
    // Solves need only the factor and the scaling: the scaled copy is released, which halves
    // what a kept system holds (a neuron of a large population keeps one of q^2 doubles).
    if (full_rank_) {
      work_.scaled = MatrixColMajor();
      return true;
    }

    Eigen::SelfAdjointEigenSolver<MatrixColMajor> eigen(work_.scaled);
    work_.scaled = MatrixColMajor();
    vectors_ = eigen.eigenvectors();
    const VectorXd& values = eigen.eigenvalues();
    const double cutoff = kRankTolerance * std::max(values.maxCoeff(), 0.0);
    inverse_values_.resize(q);
    std::vector<Index> null_columns;
    for (Index i = 0; i < q; ++i) {
      inverse_values_[i] = values[i] > cutoff ? 1.0 / values[i] : 0.0;
      if (values[i] <= cutoff) null_columns.push_back(i);
    }
    weighted_null_.resize(q, static_cast<Index>(null_columns.size()));
    for (std::size_t c = 0; c < null_columns.size(); ++c)
      weighted_null_.col(static_cast<Index>(c)) = work_.scale.cwiseProduct(vectors_.col(null_columns[c]));
    null_columns_ = std::move(null_columns);
    null_gram_.compute(weighted_null_.transpose() * weighted_null_);
    return false;
  }

  /// direction = -H^{-1} gradient, or for a singular H the minimum-norm solution, which lies in
  /// the range of H: iterates never move along the design's null space. `direction` may be
  /// `gradient`.
  void solve(const VectorXd& gradient, VectorXd& direction) const {
    if (full_rank_) {
      direction = work_.scale.cwiseProduct(gradient);
      factor_.solve_in_place(direction);
      direction = -work_.scale.cwiseProduct(direction);
      return;
    }
    const VectorXd scaled_gradient = work_.scale.cwiseProduct(gradient);
    // In scaled coordinates e = direction / scale every solution is e_range + null * z; the
    // minimum-norm unscaled direction makes scale * e orthogonal to scale * null.
    VectorXd solution = vectors_ * inverse_values_.cwiseProduct(vectors_.transpose() * scaled_gradient);
    if (!null_columns_.empty()) {
      const VectorXd z = null_gram_.solve(weighted_null_.transpose() * work_.scale.cwiseProduct(solution));
      for (std::size_t c = 0; c < null_columns_.size(); ++c)
        solution -= z[static_cast<Index>(c)] * vectors_.col(null_columns_[c]);
    }
    direction = -work_.scale.cwiseProduct(solution);
  }

 private:
  ConditionWork work_;  // work_.scale: the Jacobi scaling (work_.scaled only while factorising)
  CholeskySolver factor_;  // of the scaled Hessian
  bool full_rank_ = false;
  MatrixColMajor vectors_;
  VectorXd inverse_values_;
  std::vector<Index> null_columns_;
  MatrixColMajor weighted_null_;
  Eigen::LDLT<MatrixColMajor> null_gram_;
};

}  // namespace popglm::detail
