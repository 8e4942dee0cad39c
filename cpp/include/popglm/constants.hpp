// Numerical rules shared by the solvers and by Python (exported as popglm._core.ARMIJO,
// MAX_HALVINGS and RANK_TOLERANCE), so that each is written once.
#pragma once

namespace popglm {

/// Armijo's sufficient-decrease constant of every line search.
inline constexpr double kArmijo = 1e-4;
/// Step halvings a line search tries (after the full step) before it gives up.
inline constexpr int kMaxHalvings = 60;
/// Reciprocal condition number (1-norm, of the Jacobi-scaled matrix) or relative eigenvalue
/// below which a Hessian or Gram matrix is treated as rank deficient.
inline constexpr double kRankTolerance = 1e-11;

}  // namespace popglm
