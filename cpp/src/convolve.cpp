#include "popglm/convolve.hpp"

#include <algorithm>
#include <cmath>
#include <complex>
#include <limits>
#include <stdexcept>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace popglm {

namespace {

using Complex = std::complex<double>;

// Twiddle factors exp(-2 pi i k / n), k < n / 2, each from its own cos/sin call: no error
// accumulates from repeated multiplication.
std::vector<Complex> fft_roots(Index n) {
  std::vector<Complex> roots(static_cast<std::size_t>(n / 2));
  constexpr double pi = 3.141592653589793238462643383279502884;
  const double step = -2.0 * pi / static_cast<double>(n);
  for (Index k = 0; k < n / 2; ++k)
    roots[static_cast<std::size_t>(k)] = std::polar(1.0, step * static_cast<double>(k));
  return roots;
}

// In-place iterative radix-2 FFT of a power-of-two length; the inverse is unscaled.
void fft(std::vector<Complex>& a, const std::vector<Complex>& roots, bool inverse) {
  const std::size_t n = a.size();
  for (std::size_t i = 1, j = 0; i < n; ++i) {
    std::size_t bit = n >> 1;
    for (; j & bit; bit >>= 1) j ^= bit;
    j ^= bit;
    if (i < j) std::swap(a[i], a[j]);
  }
  for (std::size_t len = 2; len <= n; len <<= 1) {
    const std::size_t half = len / 2;
    const std::size_t stride = n / len;
    for (std::size_t start = 0; start < n; start += len) {
      for (std::size_t k = 0; k < half; ++k) {
        const Complex w = inverse ? std::conj(roots[k * stride]) : roots[k * stride];
        const Complex u = a[start + k];
        const Complex v = a[start + k + half] * w;
        a[start + k] = u + v;
        a[start + k + half] = u - v;
      }
    }
  }
}

// FFT length for overlap-add with a window: a power of two >= 4 * window, so that each block
// brings ~3/4 of the length in new samples.
Index fft_length(Index window) {
  Index length = 8;
  while (length < 4 * window) length <<= 1;
  return length;
}

// Output elements per row block of the row-wise scatter (2 MB of float64): a block is filled and
// accumulated while it is still in cache.
constexpr Index kScatterBlockElements = Index{1} << 18;

/// The scatter path for row-major x (C-ordered counts, the usual layout): the samples are read
/// row by row, once, instead of copying x to columns first (a copy that cost a sizeable share of
/// compute_features: bench/RESULTS.md). Each thread owns blocks of output rows, sized to
/// stay in cache while they are filled and accumulated; every output element still receives its
/// terms in increasing sample order, as in the column-wise path.
template <class Matrix>
void scatter_rows(const Matrix& x, const Eigen::Ref<const MatrixColMajor>& kernels, Index offset,
                  Index first_row, Index last_row, Eigen::Ref<MatrixColMajor> out, int threads) {
  const Index n_samples = x.rows();
  const Index n_inputs = x.cols();
  const Index window = kernels.rows();
  const Index n_kernels = kernels.cols();
  const Index n_columns = out.cols();
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const Index block = std::max<Index>(64, kScatterBlockElements / std::max<Index>(n_columns, 1));
  const Index n_blocks = (n_samples + block - 1) / block;
#pragma omp parallel for schedule(static) num_threads(threads)
  for (Index b = 0; b < n_blocks; ++b) {
    const Index r0 = b * block;
    const Index r1 = std::min(n_samples, r0 + block);
    const Index low = std::max(r0, first_row);
    const Index high = std::min(r1 - 1, last_row);
    for (Index column = 0; column < n_columns; ++column) {
      auto target = out.col(column).segment(r0, r1 - r0);
      if (low > high) {
        target.setConstant(nan);
        continue;
      }
      target.head(low - r0).setConstant(nan);
      target.segment(low - r0, high - low + 1).setZero();
      target.tail(r1 - 1 - high).setConstant(nan);
    }
    if (low > high) continue;
    // Sample s reaches rows s - offset .. s - offset + window - 1.
    const Index s_begin = std::max<Index>(0, low + offset - window + 1);
    const Index s_end = std::min<Index>(n_samples - 1, high + offset);
    for (Index s = s_begin; s <= s_end; ++s) {
      const Index first = std::max(s - offset, low);
      const Index last = std::min(s - offset + window - 1, high);
      if (first > last) continue;
      for (Index input = 0; input < n_inputs; ++input) {
        const double value = x(s, input);
        if (value == 0.0) continue;
        for (Index k = 0; k < n_kernels; ++k) {
          double* target = out.col(input * n_kernels + k).data();
          const double* kernel = kernels.col(k).data();
          for (Index t = first; t <= last; ++t) target[t] += value * kernel[t + offset - s];
        }
      }
    }
  }
}

// Whether the FFT keeps every output of `source` within kFftTolerance * ||k||_1 * (the largest
// |x| its window reads) of the direct sum. The rounding of an overlap-add block spreads over
// every output the block reaches, at most ~eps log2(length) ||x_block||_2 ||k||_2 (kFftSafety
// covers the constant): one huge count would otherwise swamp the small outputs around it, far
// outside its own window. A window of `window` samples holds a whole chunk of ceil(window / 2)
// samples, so the smallest chunk maximum near a block bounds its outputs' local scale from
// below; a block whose bound exceeds that scale (a huge value among small ones, or a stretch
// of zeros) sends the whole input to the direct sum, exact to window * eps.
template <class Column>
bool fft_is_accurate(const Column& source, Index window, Index length, double kernel_ratio) {
  constexpr double kFftTolerance = 1e-13;
  constexpr double kFftSafety = 2.0;
  const Index n_samples = source.size();
  const Index chunk = (window + 1) / 2;
  const Index n_chunks = (n_samples + chunk - 1) / chunk;
  std::vector<double> chunk_max(static_cast<std::size_t>(n_chunks), 0.0);
  for (Index s = 0; s < n_samples; ++s) {
    double& top = chunk_max[static_cast<std::size_t>(s / chunk)];
    top = std::max(top, std::abs(source[s]));
  }
  const double unit = kFftSafety * std::numeric_limits<double>::epsilon() *
                      std::log2(static_cast<double>(length)) * kernel_ratio / kFftTolerance;
  const Index block = length - window + 1;
  for (Index start = 0; start < n_samples; start += block) {
    const Index stop = std::min(n_samples, start + block);
    double squares = 0.0;
    for (Index s = start; s < stop; ++s) squares += source[s] * source[s];
    // Outputs this block reaches read samples in [start - window, stop + window).
    const Index first_chunk = std::max<Index>(0, start - window) / chunk;
    const Index last_chunk = (std::min(n_samples, stop + window) - 1) / chunk;
    double scale = std::numeric_limits<double>::infinity();
    for (Index c = first_chunk; c <= last_chunk; ++c)
      scale = std::min(scale, chunk_max[static_cast<std::size_t>(c)]);
    if (!(unit * std::sqrt(squares) <= scale)) return false;
  }
  return true;
}

template <class Matrix>
void convolve_aligned_impl(const Matrix& x, const Eigen::Ref<const MatrixColMajor>& kernels,
                           Index offset, Eigen::Ref<MatrixColMajor> out, int n_threads) {
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
  const int threads = sanitize_threads(n_threads);

  // Cost rule, per input: scattering its non-zero samples costs nnz * window multiply-adds
  // per kernel; FFT overlap-add costs 2 complex FFTs of `length` per block of `block` samples
  // per kernel, ~80 length log2(length) multiply-add equivalents (radix-2, complex arithmetic,
  // no SIMD, against a direct sum the compiler vectorises; bench/convolve.py). Spike counts
  // (sparse) scatter; dense covariates convolved with windows of a few thousand samples take
  // the FFT.
  const Index length = fft_length(window);
  const Index block = length - window + 1;
  const Index n_blocks = (n_samples + block - 1) / block;
  const double fft_cost = 80.0 * static_cast<double>(n_blocks) *
                          static_cast<double>(length) * std::log2(static_cast<double>(length));
  std::vector<char> finite(static_cast<std::size_t>(n_inputs), 1);
  std::vector<Index> nonzero(static_cast<std::size_t>(n_inputs), 0);
  if constexpr (Matrix::IsRowMajor) {
    for (Index s = 0; s < n_samples; ++s)  // one pass in storage order
      for (Index input = 0; input < n_inputs; ++input) {
        const double value = x(s, input);
        if (!std::isfinite(value)) finite[static_cast<std::size_t>(input)] = 0;
        nonzero[static_cast<std::size_t>(input)] += value != 0.0;
      }
  } else {
    for (Index input = 0; input < n_inputs; ++input) {
      finite[static_cast<std::size_t>(input)] = x.col(input).allFinite();
      nonzero[static_cast<std::size_t>(input)] = (x.col(input).array() != 0.0).count();
    }
  }
  // The kernels' largest ||k||_2 / ||k||_1: the error bound is in the first, the scale of an
  // output in the second.
  double kernel_ratio = 0.0;
  for (Index k = 0; k < n_kernels; ++k) {
    const double l1 = kernels.col(k).cwiseAbs().sum();
    if (l1 > 0.0) kernel_ratio = std::max(kernel_ratio, kernels.col(k).norm() / l1);
  }
  std::vector<char> use_fft(static_cast<std::size_t>(n_inputs), 0);
  for (Index input = 0; input < n_inputs; ++input) {
    const auto i = static_cast<std::size_t>(input);
    use_fft[i] = finite[i] && first_row <= last_row &&
                 static_cast<double>(nonzero[i]) * static_cast<double>(window) > fft_cost &&
                 fft_is_accurate(x.col(input), window, length, kernel_ratio);
  }
  const bool any_fft = std::find(use_fft.begin(), use_fft.end(), 1) != use_fft.end();
  if constexpr (Matrix::IsRowMajor) {
    if (!any_fft) {
      scatter_rows(x, kernels, offset, first_row, last_row, out, threads);
      return;
    }
  }
  std::vector<Complex> roots;
  std::vector<std::vector<Complex>> spectra;  // n_kernels x length: O(window) per kernel
  if (any_fft) {
    roots = fft_roots(length);
    spectra.assign(static_cast<std::size_t>(n_kernels),
                   std::vector<Complex>(static_cast<std::size_t>(length)));
    for (Index k = 0; k < n_kernels; ++k) {
      auto& spectrum = spectra[static_cast<std::size_t>(k)];
      for (Index m = 0; m < window; ++m) spectrum[static_cast<std::size_t>(m)] = kernels(m, k);
      fft(spectrum, roots, false);
    }
  }

  // Each output column is owned by one iteration, so the result does not depend on the
  // schedule; the only memory besides the output is one FFT buffer per thread.
#pragma omp parallel num_threads(threads)
  {
    std::vector<Complex> buffer(any_fft ? static_cast<std::size_t>(length) : 0);
#pragma omp for schedule(dynamic, 1)
    for (Index column = 0; column < n_columns; ++column) {
      const Index input = column / n_kernels;
      const Index k = column % n_kernels;
      auto target = out.col(column);
      target.setConstant(nan);
      if (first_row > last_row) continue;
      target.segment(first_row, last_row - first_row + 1).setZero();
      const auto source = x.col(input);
      if (use_fft[static_cast<std::size_t>(input)]) {
        // Overlap-add: block b holds x[b * block, (b + 1) * block); its full convolution
        // y[j] lands on row t = b * block + j - offset.
        const auto& spectrum = spectra[static_cast<std::size_t>(k)];
        const double scale = 1.0 / static_cast<double>(length);
        for (Index start = 0; start < n_samples; start += block) {
          const Index count = std::min(block, n_samples - start);
          std::fill(buffer.begin(), buffer.end(), Complex(0.0, 0.0));
          for (Index s = 0; s < count; ++s)
            buffer[static_cast<std::size_t>(s)] = source[start + s];
          fft(buffer, roots, false);
          for (Index f = 0; f < length; ++f)
            buffer[static_cast<std::size_t>(f)] *= spectrum[static_cast<std::size_t>(f)];
          fft(buffer, roots, true);
          const Index first = std::max(first_row, start - offset);
          const Index last = std::min(last_row, start + count + window - 2 - offset);
          for (Index t = first; t <= last; ++t)
            target[t] += scale * buffer[static_cast<std::size_t>(t + offset - start)].real();
        }
        continue;
      }
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
}

}  // namespace

void convolve_aligned(const Eigen::Ref<const MatrixColMajor>& x,
                      const Eigen::Ref<const MatrixColMajor>& kernels, Index offset,
                      Eigen::Ref<MatrixColMajor> out, int n_threads) {
  convolve_aligned_impl(x, kernels, offset, out, n_threads);
}

void convolve_aligned(const Eigen::Ref<const MatrixRowMajor>& x,
                      const Eigen::Ref<const MatrixColMajor>& kernels, Index offset,
                      Eigen::Ref<MatrixColMajor> out, int n_threads) {
  convolve_aligned_impl(x, kernels, offset, out, n_threads);
}

void convolve_history(const Eigen::Ref<const MatrixColMajor>& x,
                      const Eigen::Ref<const MatrixColMajor>& kernels,
                      Eigen::Ref<MatrixColMajor> out, int n_threads) {
  convolve_aligned(x, kernels, -1, out, n_threads);
}

}  // namespace popglm
