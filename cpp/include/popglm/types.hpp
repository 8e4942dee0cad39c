// Shared matrix aliases for the popglm core.
#pragma once

#include <Eigen/Core>
#include <cstdint>

namespace popglm {

using Index = Eigen::Index;
using MatrixColMajor = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::ColMajor>;
using MatrixRowMajor = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using MaskMatrix = Eigen::Matrix<std::uint8_t, Eigen::Dynamic, Eigen::Dynamic, Eigen::ColMajor>;
using MaskVector = Eigen::Matrix<std::uint8_t, Eigen::Dynamic, 1>;
using IndexVector = Eigen::Matrix<std::int64_t, Eigen::Dynamic, 1>;
using IndexMatrix = Eigen::Matrix<std::int64_t, Eigen::Dynamic, Eigen::Dynamic, Eigen::ColMajor>;
using IntVector = Eigen::Matrix<std::int32_t, Eigen::Dynamic, 1>;

/// Number of OpenMP threads to use: values < 1 mean one thread.
inline int sanitize_threads(int n_threads) { return n_threads < 1 ? 1 : n_threads; }

}  // namespace popglm
