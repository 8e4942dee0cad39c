#include "popglm/design.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace popglm {
namespace {

template <class Matrix>
void scan_design_impl(const Matrix& matrix, Eigen::Ref<MaskVector> out, Eigen::Ref<Eigen::VectorXd> max_abs,
                      int n_threads) {
  const Index n_rows = matrix.rows();
  const Index n_cols = matrix.cols();
  if (out.size() != n_rows) throw std::invalid_argument("scan_design: out must have n_rows entries");
  if (max_abs.size() != n_cols) throw std::invalid_argument("scan_design: max_abs must have n_cols entries");
  max_abs.setZero();
  // Blocks of rows keep each thread on its own slice of `out`; within a block the loop
  // order follows the storage order of the matrix. A maximum does not depend on the order in
  // which the threads' partial maxima meet, so neither does the result.
  constexpr Index block = 4096;
  const Index n_blocks = (n_rows + block - 1) / block;
  // Waking threads costs more than scanning a few blocks.
#pragma omp parallel num_threads(sanitize_threads(n_threads)) if (n_blocks > 4)
  {
    Eigen::VectorXd local = Eigen::VectorXd::Zero(n_cols);
#pragma omp for schedule(static)
    for (Index b = 0; b < n_blocks; ++b) {
      const Index start = b * block;
      const Index stop = std::min(n_rows, start + block);
      for (Index r = start; r < stop; ++r) out[r] = 1;
      if constexpr (Matrix::IsRowMajor) {
        for (Index r = start; r < stop; ++r)
          for (Index c = 0; c < n_cols; ++c) {
            const double value = std::abs(matrix(r, c));
            if (!std::isfinite(value)) out[r] = 0;
            else if (value > local[c]) local[c] = value;
          }
      } else {
        for (Index c = 0; c < n_cols; ++c)
          for (Index r = start; r < stop; ++r) {
            const double value = std::abs(matrix(r, c));
            if (!std::isfinite(value)) out[r] = 0;
            else if (value > local[c]) local[c] = value;
          }
      }
    }
#pragma omp critical(popglm_scan_design)
    max_abs = max_abs.cwiseMax(local);
  }
}

template <class Matrix>
void counted_square_sums_impl(const Matrix& design, const Eigen::Ref<const IndexVector>& rows,
                              const Eigen::Ref<const MatrixColMajor>& counts, Eigen::Ref<MatrixColMajor> sums,
                              Eigen::Ref<Eigen::VectorXd> low, Eigen::Ref<Eigen::VectorXd> high, int n_threads) {
  const Index n_features = design.cols();
  const Index n_neurons = counts.cols();
  if (counts.rows() != design.rows() || sums.rows() != n_features || sums.cols() != n_neurons ||
      low.size() != n_features || high.size() != n_features)
    throw std::invalid_argument("counted_square_sums: inconsistent shapes");
  for (Index i = 0; i < rows.size(); ++i)
    if (rows[i] < 0 || rows[i] >= design.rows())
      throw std::invalid_argument("counted_square_sums: row index out of range");
  // Per fitted row, the neurons with a count there: counts are sparse, so every feature's pass
  // touches only those.
  std::vector<Index> offsets(static_cast<std::size_t>(rows.size()) + 1, 0);
  std::vector<Index> neurons;
  for (Index i = 0; i < rows.size(); ++i) {
    for (Index j = 0; j < n_neurons; ++j)
      if (counts(rows[i], j) > 0.0) neurons.push_back(j);
    offsets[static_cast<std::size_t>(i) + 1] = static_cast<Index>(neurons.size());
  }
  // Waking threads costs more than a small design's pass.
  const bool parallel = n_features > 1 && static_cast<double>(rows.size()) * static_cast<double>(n_features) > 262144.0;
#pragma omp parallel num_threads(sanitize_threads(n_threads)) if (parallel)
  {
    Eigen::VectorXd column_sums(n_neurons);
#pragma omp for schedule(static)
    for (Index p = 0; p < n_features; ++p) {
      column_sums.setZero();
      double smallest = std::numeric_limits<double>::infinity();
      double largest = -smallest;
      for (Index i = 0; i < rows.size(); ++i) {
        const double value = design(rows[i], p);
        smallest = std::min(smallest, value);
        largest = std::max(largest, value);
        const double square = value * value;
        for (Index k = offsets[static_cast<std::size_t>(i)]; k < offsets[static_cast<std::size_t>(i) + 1]; ++k)
          column_sums[neurons[static_cast<std::size_t>(k)]] += square;
      }
      sums.row(p) = column_sums.transpose();
      low[p] = rows.size() ? smallest : 0.0;
      high[p] = rows.size() ? largest : 0.0;
    }
  }
}
}  // namespace

int scan_counts(const Eigen::Ref<const MatrixColMajor>& counts, Eigen::Ref<MaskVector> valid,
                bool drop_nonfinite_rows, int n_threads) {
  const Index n_rows = counts.rows();
  if (valid.size() != n_rows) throw std::invalid_argument("scan_counts: valid must have n_rows entries");
  constexpr Index block = 4096;
  const Index n_blocks = (n_rows + block - 1) / block;
  int flags = 0;
#pragma omp parallel for schedule(static) reduction(| : flags) num_threads(sanitize_threads(n_threads)) if (n_blocks > 4)
  for (Index b = 0; b < n_blocks; ++b) {
    const Index start = b * block;
    const Index stop = std::min(n_rows, start + block);
    for (Index c = 0; c < counts.cols(); ++c) {
      const double* column = counts.col(c).data();
      for (Index r = start; r < stop; ++r) {
        const double value = column[r];
        if (!std::isfinite(value)) {
          if (drop_nonfinite_rows) valid[r] = 0;
          continue;
        }
        if (value < 0.0) flags |= kNegativeCount;
        if (value != std::trunc(value)) flags |= kFractionalCount;
      }
    }
  }
  return flags;
}

void scan_design(const Eigen::Ref<const MatrixColMajor>& matrix, Eigen::Ref<MaskVector> out,
                 Eigen::Ref<Eigen::VectorXd> max_abs, int n_threads) {
  scan_design_impl(matrix, out, max_abs, n_threads);
}

void scan_design(const Eigen::Ref<const MatrixRowMajor>& matrix, Eigen::Ref<MaskVector> out,
                 Eigen::Ref<Eigen::VectorXd> max_abs, int n_threads) {
  scan_design_impl(matrix, out, max_abs, n_threads);
}

void counted_square_sums(const Eigen::Ref<const MatrixColMajor>& design, const Eigen::Ref<const IndexVector>& rows,
                         const Eigen::Ref<const MatrixColMajor>& counts, Eigen::Ref<MatrixColMajor> sums,
                         Eigen::Ref<Eigen::VectorXd> low, Eigen::Ref<Eigen::VectorXd> high, int n_threads) {
  counted_square_sums_impl(design, rows, counts, sums, low, high, n_threads);
}

void counted_square_sums(const Eigen::Ref<const MatrixRowMajor>& design, const Eigen::Ref<const IndexVector>& rows,
                         const Eigen::Ref<const MatrixColMajor>& counts, Eigen::Ref<MatrixColMajor> sums,
                         Eigen::Ref<Eigen::VectorXd> low, Eigen::Ref<Eigen::VectorXd> high, int n_threads) {
  counted_square_sums_impl(design, rows, counts, sums, low, high, n_threads);
}

}  // namespace popglm
