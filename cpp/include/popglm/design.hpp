// Scans of design and response matrices: rows to fit, counts to check, features that recede.
#pragma once

#include "popglm/types.hpp"

namespace popglm {

/// One pass over a design: out(t) = 1 when every entry of row t of `matrix` is finite, else 0;
/// max_abs(c) = the largest |entry| among the finite entries of column c (0 if none).
void scan_design(const Eigen::Ref<const MatrixColMajor>& matrix, Eigen::Ref<MaskVector> out,
                 Eigen::Ref<Eigen::VectorXd> max_abs, int n_threads);
/// Row-major overload of scan_design.
void scan_design(const Eigen::Ref<const MatrixRowMajor>& matrix, Eigen::Ref<MaskVector> out,
                 Eigen::Ref<Eigen::VectorXd> max_abs, int n_threads);

/// What scan_counts found among the finite entries (bit flags).
inline constexpr int kNegativeCount = 1;
inline constexpr int kFractionalCount = 2;

/// One pass over a response matrix (n_rows x n_neurons): sets valid(t) = 0 for rows with a NaN or
/// inf entry when drop_nonfinite_rows, and returns kNegativeCount | kFractionalCount for the
/// finite entries that are negative or not integers (every row is checked, valid or not).
int scan_counts(const Eigen::Ref<const MatrixColMajor>& counts, Eigen::Ref<MaskVector> valid,
                bool drop_nonfinite_rows, int n_threads);

/// The single-feature scan for directions of recession: for each feature p and neuron j,
/// sums(p, j) = sum of design(rows[i], p)^2 over the i with counts(rows[i], j) > 0, and each
/// feature's smallest and largest value over `rows` in low(p), high(p). Each sum is accumulated
/// in row order by one thread, so the result does not depend on n_threads. Throws
/// std::invalid_argument for inconsistent shapes or a row out of range.
void counted_square_sums(const Eigen::Ref<const MatrixColMajor>& design, const Eigen::Ref<const IndexVector>& rows,
                         const Eigen::Ref<const MatrixColMajor>& counts, Eigen::Ref<MatrixColMajor> sums,
                         Eigen::Ref<Eigen::VectorXd> low, Eigen::Ref<Eigen::VectorXd> high, int n_threads);
/// Row-major overload of counted_square_sums.
void counted_square_sums(const Eigen::Ref<const MatrixRowMajor>& design, const Eigen::Ref<const IndexVector>& rows,
                         const Eigen::Ref<const MatrixColMajor>& counts, Eigen::Ref<MatrixColMajor> sums,
                         Eigen::Ref<Eigen::VectorXd> low, Eigen::Ref<Eigen::VectorXd> high, int n_threads);

}  // namespace popglm
