#include "popglm/design.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace popglm {
namespace {

template <class Matrix>
void finite_rows_impl(const Matrix& matrix, Eigen::Ref<MaskVector> out, int n_threads) {
  const Index n_rows = matrix.rows();
  const Index n_cols = matrix.cols();
  if (out.size() != n_rows) throw std::invalid_argument("finite_rows: out must have n_rows entries");
  // Blocks of rows keep each thread on its own slice of `out`; within a block the loop
  // order follows the storage order of the matrix.
  constexpr Index block = 4096;
  const Index n_blocks = (n_rows + block - 1) / block;
  // Waking threads costs more than scanning a few blocks.
#pragma omp parallel for schedule(static) num_threads(sanitize_threads(n_threads)) if (n_blocks > 4)
  for (Index b = 0; b < n_blocks; ++b) {
    const Index start = b * block;
    const Index stop = std::min(n_rows, start + block);
    for (Index r = start; r < stop; ++r) out[r] = 1;
    if constexpr (Matrix::IsRowMajor) {
      for (Index r = start; r < stop; ++r)
        for (Index c = 0; c < n_cols; ++c)
          if (!std::isfinite(matrix(r, c))) { out[r] = 0; break; }
    } else {
      for (Index c = 0; c < n_cols; ++c)
        for (Index r = start; r < stop; ++r)
          if (!std::isfinite(matrix(r, c))) out[r] = 0;
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

void finite_rows(const Eigen::Ref<const MatrixColMajor>& matrix, Eigen::Ref<MaskVector> out,
                 int n_threads) {
  finite_rows_impl(matrix, out, n_threads);
}

void finite_rows(const Eigen::Ref<const MatrixRowMajor>& matrix, Eigen::Ref<MaskVector> out,
                 int n_threads) {
  finite_rows_impl(matrix, out, n_threads);
}

}  // namespace popglm
