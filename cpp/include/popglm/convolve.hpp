// Causal history convolutions (the features of NeMoS's *Conv bases).
#pragma once

#include "popglm/types.hpp"

namespace popglm {

/// Causal, shifted convolution of every input column with every kernel column:
/// out(t, i * n_kernels + k) = sum_{l=1..window} kernels(l - 1, k) * x(t - l, i) for t >= window,
/// NaN for t < window (NeMoS's `predictor_causality="causal"`, `shift=True`).
void convolve_history(const Eigen::Ref<const MatrixColMajor>& x,
                      const Eigen::Ref<const MatrixColMajor>& kernels,
                      Eigen::Ref<MatrixColMajor> out, int n_threads);

}  // namespace popglm
