// History and covariate convolutions (the features of NeMoS's *Conv bases).
#pragma once

#include "popglm/types.hpp"

namespace popglm {

/// Convolution of every input column with every kernel column at a fixed alignment:
/// out(t, i * n_kernels + k) = sum_{m=0..window-1} kernels(m, k) * x(t + offset - m, i)
/// where every index t + offset - m lies in [0, n_samples), NaN elsewhere.
/// offset = -1 is NeMoS's causal shifted predictor, 0 causal unshifted, window - 1
/// anti-causal unshifted, window anti-causal shifted, window - 1 - (window - 1) / 2 acausal.
void convolve_aligned(const Eigen::Ref<const MatrixColMajor>& x,
                      const Eigen::Ref<const MatrixColMajor>& kernels, Index offset,
                      Eigen::Ref<MatrixColMajor> out, int n_threads);
/// convolve_aligned for row-major (C-ordered) x, read in place.
void convolve_aligned(const Eigen::Ref<const MatrixRowMajor>& x,
                      const Eigen::Ref<const MatrixColMajor>& kernels, Index offset,
                      Eigen::Ref<MatrixColMajor> out, int n_threads);

/// Causal, shifted convolution of every input column with every kernel column:
/// out(t, i * n_kernels + k) = sum_{l=1..window} kernels(l - 1, k) * x(t - l, i) for t >= window,
/// NaN for t < window (NeMoS's `predictor_causality="causal"`, `shift=True`).
void convolve_history(const Eigen::Ref<const MatrixColMajor>& x,
                      const Eigen::Ref<const MatrixColMajor>& kernels,
                      Eigen::Ref<MatrixColMajor> out, int n_threads);

}  // namespace popglm
