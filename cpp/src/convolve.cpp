#include "popglm/convolve.hpp"

#include <algorithm>
#include <limits>
#include <stdexcept>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace popglm {

void convolve_history(const Eigen::Ref<const MatrixColMajor>& x,
                      const Eigen::Ref<const MatrixColMajor>& kernels,
                      Eigen::Ref<MatrixColMajor> out, int n_threads) {
  const Index n_samples = x.rows();
  const Index n_inputs = x.cols();
  const Index window = kernels.rows();
  const Index n_kernels = kernels.cols();
  if (window < 1) throw std::invalid_argument("convolve_history: kernels must have >= 1 row");
  if (out.rows() != n_samples || out.cols() != n_inputs * n_kernels)
    throw std::invalid_argument("convolve_history: out must have shape (n_samples, n_inputs * n_kernels)");

  const double nan = std::numeric_limits<double>::quiet_NaN();
  const Index n_nan_rows = std::min(window, n_samples);
  const Index n_columns = n_inputs * n_kernels;

  // Each output column is owned by one iteration, so the result does not depend on the
  // schedule. Spike counts are mostly zero: scattering each non-zero sample into the window
  // that follows it costs O(nnz * window) instead of O(n_samples * window).
#pragma omp parallel for schedule(dynamic, 1) num_threads(sanitize_threads(n_threads))
  for (Index column = 0; column < n_columns; ++column) {
    const Index input = column / n_kernels;
    const Index k = column % n_kernels;
    auto target = out.col(column);
    target.head(n_nan_rows).setConstant(nan);
    target.tail(n_samples - n_nan_rows).setZero();
    const auto source = x.col(input);
    const auto kernel = kernels.col(k);
    for (Index s = 0; s + 1 < n_samples; ++s) {
      const double value = source[s];
      if (value == 0.0) continue;
      // Sample s reaches rows t = s + lag, lag = 1..window; rows before `window` stay NaN.
      const Index first = std::max(s + 1, window);
      const Index last = std::min(s + window, n_samples - 1);
      for (Index t = first; t <= last; ++t) target[t] += value * kernel[t - s - 1];
    }
  }
}

}  // namespace popglm
