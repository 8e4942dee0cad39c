// The engine's dense products, exposed for inference, the distributed fits, tests and benchmarks.
#pragma once

#include "popglm/types.hpp"

namespace popglm {

/// [1, X]^T diag(weights) [1, X] over `rows` (the Hessian kernel, lower triangle by rank
/// updates); with `single_precision` the block products are float32, summed in float64.
MatrixColMajor weighted_gram(const Eigen::Ref<const MatrixColMajor>& design,
                             const Eigen::Ref<const IndexVector>& rows,
                             const Eigen::Ref<const Eigen::VectorXd>& weights, bool single_precision);
MatrixColMajor weighted_gram(const Eigen::Ref<const MatrixRowMajor>& design,
                             const Eigen::Ref<const IndexVector>& rows,
                             const Eigen::Ref<const Eigen::VectorXd>& weights, bool single_precision);

/// out = X[rows] coefs + offsets (row-wise): the product that forms every neuron's step at once.
void design_multiply(const Eigen::Ref<const MatrixColMajor>& design, const Eigen::Ref<const IndexVector>& rows,
                     const Eigen::Ref<const MatrixColMajor>& coefs, const Eigen::Ref<const Eigen::VectorXd>& offsets,
                     Eigen::Ref<MatrixColMajor> out, int n_threads);
void design_multiply(const Eigen::Ref<const MatrixRowMajor>& design, const Eigen::Ref<const IndexVector>& rows,
                     const Eigen::Ref<const MatrixColMajor>& coefs, const Eigen::Ref<const Eigen::VectorXd>& offsets,
                     Eigen::Ref<MatrixColMajor> out, int n_threads);

/// [1, X[rows]]^T residual / n_rows: the product that forms every neuron's gradient at once.
MatrixColMajor design_transpose_multiply(const Eigen::Ref<const MatrixColMajor>& design,
                                         const Eigen::Ref<const IndexVector>& rows,
                                         const Eigen::Ref<const MatrixColMajor>& residual, int n_threads);
MatrixColMajor design_transpose_multiply(const Eigen::Ref<const MatrixRowMajor>& design,
                                         const Eigen::Ref<const IndexVector>& rows,
                                         const Eigen::Ref<const MatrixColMajor>& residual, int n_threads);

/// out = convolve_history(inputs, kernels) * coef + intercept (row-wise), NaN for rows < window.
void history_linear_predictor(const Eigen::Ref<const MatrixColMajor>& inputs,
                              const Eigen::Ref<const MatrixColMajor>& kernels,
                              const Eigen::Ref<const MatrixColMajor>& coef,
                              const Eigen::Ref<const Eigen::VectorXd>& intercept,
                              Eigen::Ref<MatrixColMajor> out, int n_threads);

}  // namespace popglm
