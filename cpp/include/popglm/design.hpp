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

}  // namespace popglm
