#include "popglm/convolve.hpp"

#include <algorithm>
#include <limits>
#include <stdexcept>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace popglm {

void convolve_aligned(const Eigen::Ref<const MatrixColMajor>& x,
                      const Eigen::Ref<const MatrixColMajor>& kernels, Index offset,
                      Eigen::Ref<MatrixColMajor> out, int n_threads) {
  const Index n_samples = x.rows();
  const Index n_inputs = x.cols();
  const Index window = kernels.rows();
  const Index n_kernels = kernels.cols();
  if (window < 1) throw std::invalid_argument("convolve_aligned: kernels must have >= 1 row");
  if (out.rows() != n_samples || out.cols() != n_inputs * n_kernels)
    throw std::invalid_argument(
        "convolve_aligned: out must have shape (n_samples, n_inputs * n_kernels)");
  if (offset < -n_samples - window || offset > n_samples + window)
    throw std::invalid_argument("convolve_aligned: offset out of range");

  const double nan = std::numeric_limits<double>::quiet_NaN();
  // Row t is defined when all of x(t + offset - window + 1 .. t + offset) exist.
  const Index first_row = std::max<Index>(0, window - 1 - offset);
  const Index last_row = std::min<Index>(n_samples - 1, n_samples - 1 - offset);
  const Index n_columns = n_inputs * n_kernels;

  // Each output column is owned by one iteration, so the result does not depend on the
  // schedule. Inputs are often spike counts, mostly zero: scattering each non-zero sample
  // into the rows it reaches costs O(nnz * window) instead of O(n_samples * window), and
  // the only memory used is the output.
#pragma omp parallel for schedule(dynamic, 1) num_threads(sanitize_threads(n_threads))
  for (Index column = 0; column < n_columns; ++column) {
    const Index input = column / n_kernels;
    const Index k = column % n_kernels;
    auto target = out.col(column);
    target.setConstant(nan);
    if (first_row > last_row) continue;
    target.segment(first_row, last_row - first_row + 1).setZero();
    const auto source = x.col(input);
    const auto kernel = kernels.col(k);
    for (Index s = 0; s < n_samples; ++s) {
      const double value = source[s];
      if (value == 0.0) continue;
      // Sample s reaches rows t = s - offset + m, m = 0..window-1, inside [first_row, last_row].
      const Index first = std::max(s - offset, first_row);
      const Index last = std::min(s - offset + window - 1, last_row);
      for (Index t = first; t <= last; ++t) target[t] += value * kernel[t + offset - s];
    }
  }
}

void convolve_history(const Eigen::Ref<const MatrixColMajor>& x,
                      const Eigen::Ref<const MatrixColMajor>& kernels,
                      Eigen::Ref<MatrixColMajor> out, int n_threads) {
  convolve_aligned(x, kernels, -1, out, n_threads);
}

}  // namespace popglm
