#include "popglm/simulate.hpp"

#include <cmath>
#include <random>
#include <stdexcept>
#include <string>

namespace popglm {
namespace {

/// Uniform on (0, 1) from 53 random bits; never exactly 0 or 1.
double open_uniform(std::mt19937_64& engine) {
  return (static_cast<double>(engine() >> 11) + 0.5) * 0x1.0p-53;
}

/// Poisson draw with a fully specified algorithm (std::poisson_distribution is
/// implementation-defined, so its draws would differ between standard libraries).
/// Small rates: inversion by sequential search. Large rates: Hormann's transformed rejection
/// (PTRS, "The transformed rejection method for generating Poisson random variables", 1993).
double poisson_draw(double rate, std::mt19937_64& engine) {
  if (rate <= 0.0) return 0.0;
  if (rate < 10.0) {
    const double u = open_uniform(engine);
    double probability = std::exp(-rate);
    double cumulative = probability;
    double k = 0.0;
    while (u > cumulative && k < 1000.0) {
      k += 1.0;
      probability *= rate / k;
      cumulative += probability;
    }
    return k;
  }
  const double log_rate = std::log(rate);
  const double b = 0.931 + 2.53 * std::sqrt(rate);
  const double a = -0.059 + 0.02483 * b;
  const double inverse_alpha = 1.1239 + 1.1328 / (b - 3.4);
  const double v_r = 0.9277 - 3.6224 / (b - 2.0);
  for (;;) {
    const double u = open_uniform(engine) - 0.5;
    const double v = open_uniform(engine);
    const double us = 0.5 - std::abs(u);
    const double k = std::floor((2.0 * a / us + b) * u + rate + 0.43);
    if (us >= 0.07 && v <= v_r) return k;
    if (k < 0.0 || (us < 0.013 && v > us)) continue;
    if (std::log(v) + std::log(inverse_alpha) - std::log(a / (us * us) + b) <=
        -rate + k * log_rate - std::lgamma(k + 1.0))
      return k;
  }
}

double apply_link(double eta, InverseLink link) {
  if (link == InverseLink::exp) return std::exp(eta);
  return eta > 30.0 ? eta : std::log1p(std::exp(eta));  // softplus without overflow
}

}  // namespace

void simulate_recurrent(const Eigen::Ref<const MatrixColMajor>& coupling,
                        const Eigen::Ref<const MatrixColMajor>& basis,
                        const Eigen::Ref<const MatrixColMajor>& drive,
                        const Eigen::Ref<const Eigen::VectorXd>& intercept,
                        const Eigen::Ref<const MatrixColMajor>& init_y, InverseLink link,
                        std::uint64_t seed, double max_rate, Eigen::Ref<MatrixColMajor> spikes,
                        Eigen::Ref<MatrixColMajor> rates) {
  const Index n_samples = drive.rows();
  const Index n_neurons = intercept.size();
  const Index window = basis.rows();
  const Index n_basis = basis.cols();
  if (drive.cols() != n_neurons || coupling.rows() != n_neurons ||
      coupling.cols() != n_neurons * n_basis || init_y.rows() != window ||
      init_y.cols() != n_neurons || spikes.rows() != n_samples || spikes.cols() != n_neurons ||
      rates.rows() != n_samples || rates.cols() != n_neurons)
    throw std::invalid_argument("simulate_recurrent: inconsistent shapes");

  // Ring buffer: row (t mod window) holds the spikes of bin t; bins before 0 come from init_y.
  MatrixColMajor ring(window, n_neurons);
  for (Index lag = 1; lag <= window; ++lag) {
    const Index slot = ((-lag) % window + window) % window;
    ring.row(slot) = init_y.row(window - lag);
  }

  std::mt19937_64 engine(seed);
  MatrixColMajor filtered(n_basis, n_neurons);  // h(t, j, b) as (b, j)
  Eigen::VectorXd eta(n_neurons);
  for (Index t = 0; t < n_samples; ++t) {
    filtered.setZero();
    for (Index lag = 1; lag <= window; ++lag) {
      const Index slot = ((t - lag) % window + window) % window;
      for (Index j = 0; j < n_neurons; ++j) {
        const double y = ring(slot, j);
        if (y != 0.0) filtered.col(j) += y * basis.row(lag - 1).transpose();
      }
    }
    eta = drive.row(t).transpose() + intercept;
    eta.noalias() += coupling * Eigen::Map<const Eigen::VectorXd>(filtered.data(), n_basis * n_neurons);
    const Index slot = t % window;
    for (Index i = 0; i < n_neurons; ++i) {
      const double rate = apply_link(eta[i], link);
      if (!(rate <= max_rate))
        throw std::domain_error("simulate_recurrent: the rate of neuron " + std::to_string(i) +
                                " reached " + std::to_string(rate) + " at bin " + std::to_string(t) +
                                " (above max_rate): the network is unstable");
      rates(t, i) = rate;
      spikes(t, i) = poisson_draw(rate, engine);
      ring(slot, i) = spikes(t, i);
    }
  }
}

}  // namespace popglm
