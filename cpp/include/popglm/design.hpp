// Row screening of design matrices.
#pragma once

#include "popglm/types.hpp"

namespace popglm {

/// out(t) = 1 when every entry of row t of `matrix` is finite, else 0.
void finite_rows(const Eigen::Ref<const MatrixColMajor>& matrix, Eigen::Ref<MaskVector> out,
                 int n_threads);
/// Row-major overload of finite_rows.
void finite_rows(const Eigen::Ref<const MatrixRowMajor>& matrix, Eigen::Ref<MaskVector> out,
                 int n_threads);

/// What scan_counts found among the finite entries (bit flags).
inline constexpr int kNegativeCount = 1;
inline constexpr int kFractionalCount = 2;

/// One pass over a response matrix (n_rows x n_neurons): sets valid(t) = 0 for rows with a NaN or
/// inf entry when drop_nonfinite_rows, and returns kNegativeCount | kFractionalCount for the
/// finite entries that are negative or not integers (every row is checked, valid or not).
int scan_counts(const Eigen::Ref<const MatrixColMajor>& counts, Eigen::Ref<MaskVector> valid,
                bool drop_nonfinite_rows, int n_threads);

}  // namespace popglm
