// Recurrent simulation of a fitted coupled Poisson GLM.
#pragma once

#include <cstdint>

#include "popglm/types.hpp"

namespace popglm {

enum class InverseLink : int { exp = 0, softplus = 1 };

/// Simulate a coupled network bin by bin.
///
/// At bin t, receiver i has rate link(drive(t, i) + intercept[i] + sum_{j,b} coupling(i, j * n_basis
/// + b) * h(t, j, b)), where h(t, j, b) = sum_lag basis(lag - 1, b) * y(t - lag, j) over the
/// `window` previous bins (the rows of `init_y` precede bin 0; its last row is the most recent),
/// the same convention as convolve_history and NeMoS's simulate_recurrent. Counts are Poisson
/// draws from a generator seeded by `seed`, so a seed gives the same spikes on every platform.
/// Throws std::domain_error naming the bin when a rate exceeds `max_rate` (a runaway network).
void simulate_recurrent(const Eigen::Ref<const MatrixColMajor>& coupling,
                        const Eigen::Ref<const MatrixColMajor>& basis,
                        const Eigen::Ref<const MatrixColMajor>& drive,
                        const Eigen::Ref<const Eigen::VectorXd>& intercept,
                        const Eigen::Ref<const MatrixColMajor>& init_y, InverseLink link,
                        std::uint64_t seed, double max_rate, Eigen::Ref<MatrixColMajor> spikes,
                        Eigen::Ref<MatrixColMajor> rates);

}  // namespace popglm
