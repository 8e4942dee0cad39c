// The instruction-set-dependent loops of the engine (see kernels.hpp), compiled once per ISA.
#include "kernels.hpp"

#include <Eigen/Cholesky>
#include <algorithm>
#include <cmath>

#include "thin_products.hpp"

#ifndef POPGLM_ISA
#define POPGLM_ISA "baseline"
#endif

namespace popglm::kernels {
namespace {

using Eigen::Dynamic;
using Eigen::OuterStride;
using StridedMatrix = Eigen::Map<MatrixColMajor, 0, OuterStride<>>;
using ConstStridedMatrix = Eigen::Map<const MatrixColMajor, 0, OuterStride<>>;

void add_weighted_gram(Index len, Index q, double* block, Index ld, const double* root,
                       bool single_precision, float* single_block, float* single_gram,
                       double* gram) {
  StridedMatrix rows(block, len, q, OuterStride<>(ld));
  const Eigen::Map<const Eigen::ArrayXd> weights(root, len);
  Eigen::Map<MatrixColMajor> sum(gram, q, q);
  // One pass per column that scales and, for float32, converts: at Hessian sizes these passes
  // cost as much as the product.
  if (single_precision) {
    Eigen::Map<Eigen::MatrixXf> rows_single(single_block, len, q);
    Eigen::Map<Eigen::MatrixXf> sum_single(single_gram, q, q);
    for (Index a = 0; a < q; ++a) rows_single.col(a) = (rows.col(a).array() * weights).cast<float>();
    sum_single.setZero();
    sum_single.selfadjointView<Eigen::Lower>().rankUpdate(rows_single.transpose());
    sum.triangularView<Eigen::Lower>() += sum_single.cast<double>();
  } else {
    for (Index a = 0; a < q; ++a) rows.col(a).array() *= weights;
    sum.selfadjointView<Eigen::Lower>().rankUpdate(rows.transpose());
  }
}

void finish_gram(Index q, double* gram, double normaliser) {
  Eigen::Map<MatrixColMajor> sum(gram, q, q);
  sum = sum.selfadjointView<Eigen::Lower>();
  if (normaliser > 0.0) sum /= normaliser;
}

void exp_values(Index n, const double* in, double* out) {
  Eigen::Map<Eigen::ArrayXd>(out, n) = Eigen::Map<const Eigen::ArrayXd>(in, n).exp();
}

// GCC 12 cannot see that the reductions below read only the `len` entries just written to the
// stack-backed arrays (false positive of -Wmaybe-uninitialized at -O3 with AVX2).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
/// Near 0, where exp(z) - 1 - z cancels, a series (relative truncation error < 3e-15 for
/// |z| < 1e-3); elsewhere the formula. Both are evaluated as packets and selected per row: a
/// scalar libm expm1 per row dominated the line search.
double curvature_sum(Index len, const double* eta, const double* rates, const double* step_eta,
                     double step) {
  using Chunk = Eigen::Array<double, Dynamic, 1, 0, kCurvatureChunk, 1>;  // on the stack
  const Chunk z = step * Eigen::Map<const Eigen::ArrayXd>(step_eta, len);
  const Chunk series = z * z * 0.5 * (1.0 + z / 3.0 * (1.0 + z / 4.0 * (1.0 + z / 5.0)));
  const Chunk formula = z.exp() - 1.0 - z;
  const Chunk curvature = (z.abs() < 1e-3).select(series, formula);
  if (rates != nullptr) return (Eigen::Map<const Eigen::ArrayXd>(rates, len) * curvature).sum();
  return (Eigen::Map<const Eigen::ArrayXd>(eta, len).exp() * curvature).sum();
}
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

// Up to this order the factor is computed here, by panels of kCholeskyBlock columns whose update
// of the trailing columns is one fused pass per column; Eigen's blocked LLT spends more on
// setting up its panel products than on arithmetic at these sizes, and wins above.
constexpr Index kSmallFactor = 64;
constexpr Index kBlockSize = kCholeskyBlock * kCholeskyBlock;

/// values[first, last) -= columns[:, 0:width] * block, the columns stored with stride q.
void subtract_columns(const double* columns, Index q, const double* block, Index width,
                      Index first, Index last, double* __restrict values) {
  if (width == kCholeskyBlock) {
    const double* __restrict c0 = columns;
    const double* __restrict c1 = columns + q;
    const double* __restrict c2 = columns + 2 * q;
    const double* __restrict c3 = columns + 3 * q;
    const double b0 = block[0], b1 = block[1], b2 = block[2], b3 = block[3];
    for (Index i = first; i < last; ++i)
      values[i] -= (c0[i] * b0 + c1[i] * b1) + (c2[i] * b2 + c3[i] * b3);
    return;
  }
  for (Index b = 0; b < width; ++b) {
    const double* __restrict column = columns + b * q;
    for (Index i = first; i < last; ++i) values[i] -= column[i] * block[b];
  }
}

/// L into the lower triangle of l (which holds A there); false for a pivot that is not
/// positive (or NaN).
bool factorize_small(Index q, double* l) {
  for (Index low = 0; low < q; low += kCholeskyBlock) {
    const Index width = std::min(kCholeskyBlock, q - low);
    for (Index a = 0; a < width; ++a) {  // the panel's own columns, left-looking
      const Index j = low + a;
      double* column = l + j * q;
      double weights[kCholeskyBlock] = {};
      for (Index b = 0; b < a; ++b) weights[b] = l[(low + b) * q + j];  // L(j, low + b)
      subtract_columns(l + low * q, q, weights, a, j, q, column);
      if (!(column[j] > 0.0)) return false;
      const double root = std::sqrt(column[j]);
      column[j] = root;
      const double reciprocal = 1.0 / root;
      for (Index i = j + 1; i < q; ++i) column[i] *= reciprocal;
    }
    for (Index c = low + width; c < q; ++c) {  // trailing columns, lower triangle only
      double weights[kCholeskyBlock] = {};
      for (Index b = 0; b < width; ++b) weights[b] = l[(low + b) * q + c];  // L(c, low + b)
      subtract_columns(l + low * q, q, weights, width, c, q, l + c * q);
    }
  }
  return true;
}

bool cholesky_factor(Index q, double* matrix, double* block_inverses) {
  if (q <= kSmallFactor) {
    if (!factorize_small(q, matrix)) return false;
  } else {
    Eigen::Map<MatrixColMajor> lower(matrix, q, q);
    Eigen::LLT<Eigen::Ref<MatrixColMajor>> cholesky(lower);  // in place: matrix holds L
    if (cholesky.info() != Eigen::Success) return false;
  }
  // The inverses of L's diagonal blocks turn each block's substitution (a chain of dependent
  // multiply-adds) into a small matrix-vector product.
  std::fill(block_inverses, block_inverses + (q + kCholeskyBlock - 1) / kCholeskyBlock * kBlockSize, 0.0);
  for (Index low = 0; low < q; low += kCholeskyBlock) {
    double* inverse = block_inverses + (low / kCholeskyBlock) * kBlockSize;  // row-major
    const Index width = std::min(kCholeskyBlock, q - low);
    for (Index c = 0; c < width; ++c)
      for (Index r = c; r < width; ++r) {
        double value = r == c ? 1.0 : 0.0;
        for (Index k = c; k < r; ++k) value -= matrix[(low + k) * q + low + r] * inverse[k * kCholeskyBlock + c];
        inverse[r * kCholeskyBlock + c] = value * (1.0 / matrix[(low + r) * q + low + r]);
      }
  }
  return true;
}

/// An upper bound on ||A^{-1}||_1 <= ||L^{-1}||_inf ||L^{-1}||_1 from two substitutions with
/// L's comparison matrix (|diagonal|, -|off-diagonal|), whose inverse bounds |L^{-1}|
/// entrywise (Higham, Accuracy and Stability of Numerical Algorithms, section 8.3). Cheap,
/// but can be pessimistic by orders of magnitude.
double inverse_norm1_bound(Index q, const double* lower, double* work) {
  const Eigen::Map<const MatrixColMajor> l(lower, q, q);
  Eigen::Map<Eigen::VectorXd> y(work, q);
  y.setOnes();
  for (Index j = 0; j < q; ++j) {  // M(L) y = e: every term is non-negative
    y[j] *= 1.0 / l(j, j);
    y.tail(q - j - 1) += y[j] * l.col(j).tail(q - j - 1).cwiseAbs();
  }
  const double row_norm = y.maxCoeff();  // bounds ||L^{-1}||_inf
  for (Index j = q; j-- > 0;)  // M(L)^T z = e
    y[j] = (1.0 + l.col(j).tail(q - j - 1).cwiseAbs().dot(y.tail(q - j - 1))) * (1.0 / l(j, j));
  return row_norm * y.maxCoeff();
}

bool scaled_cholesky(Index q, const double* hessian, double* scale, double* scaled, double* norm1,
                     double* lower, double* block_inverses, double* inverse_bound, double* work) {
  const Eigen::Map<const MatrixColMajor> h(hessian, q, q);
  Eigen::Map<Eigen::VectorXd> s(scale, q);
  for (Index i = 0; i < q; ++i) {
    const double diagonal = h(i, i);
    s[i] = (diagonal > 0.0 && std::isfinite(diagonal)) ? 1.0 / std::sqrt(diagonal) : 1.0;
  }
  Eigen::Map<MatrixColMajor> a(scaled, q, q);
  a = s.asDiagonal() * h * s.asDiagonal();
  *norm1 = a.cwiseAbs().colwise().sum().maxCoeff();
  Eigen::Map<MatrixColMajor>(lower, q, q) = a;
  if (!cholesky_factor(q, lower, block_inverses)) return false;
  *inverse_bound = inverse_norm1_bound(q, lower, work);
  return true;
}

/// The substitutions go by blocks of kCholeskyBlock unknowns, each solved by the inverse of its
/// diagonal block (no chain of dependent steps) and applied to the rest of the vector in one
/// pass: Eigen's triangular solves and plain column-by-column substitution (each unknown waiting
/// on the store of the previous column's update) made the solves a quarter of a small fit's time.
void cholesky_solve(Index q, const double* lower, const double* block_inverses, double* values) {
  const Eigen::Map<const MatrixColMajor> l(lower, q, q);
  const Eigen::Map<const Eigen::VectorXd> x(values, q);
  // L y = x: solve a block, then subtract its columns from the rows below in one pass.
  for (Index low = 0; low < q; low += kCholeskyBlock) {
    const Index width = std::min(kCholeskyBlock, q - low);
    const double* inverse = block_inverses + (low / kCholeskyBlock) * kBlockSize;
    double rhs[kCholeskyBlock] = {}, block[kCholeskyBlock] = {};
    for (Index a = 0; a < width; ++a) rhs[a] = values[low + a];
    for (Index a = 0; a < kCholeskyBlock; ++a) {
      double value = 0.0;
      for (Index b = 0; b < kCholeskyBlock; ++b) value += inverse[a * kCholeskyBlock + b] * rhs[b];
      block[a] = value;
    }
    for (Index a = 0; a < width; ++a) values[low + a] = block[a];
    subtract_columns(lower + low * q, q, block, width, low + width, q, values);
  }
  // L^T z = y, the same blocks from the last up: the block's rows of L^T are columns of L, so
  // the solved unknowns below enter through independent dot products.
  for (Index low = (q - 1) / kCholeskyBlock * kCholeskyBlock; low >= 0; low -= kCholeskyBlock) {
    const Index width = std::min(kCholeskyBlock, q - low);
    const Index below = q - low - width;
    const double* inverse = block_inverses + (low / kCholeskyBlock) * kBlockSize;
    double rhs[kCholeskyBlock] = {};
    for (Index a = 0; a < width; ++a) rhs[a] = values[low + a] - l.col(low + a).tail(below).dot(x.tail(below));
    for (Index a = 0; a < width; ++a) {
      double value = 0.0;
      for (Index b = 0; b < kCholeskyBlock; ++b) value += inverse[b * kCholeskyBlock + a] * rhs[b];
      values[low + a] = value;
    }
  }
}

void history_scatter(Index n_events, const Index* times, const double* values, Index first,
                     Index last, const double* kernels, Index kernel_stride, Index window,
                     Index n_kernels, double* out, Index out_stride) {
  const ConstStridedMatrix kernel(kernels, window, n_kernels, OuterStride<>(kernel_stride));
  StridedMatrix rows(out, last - first + 1, n_kernels, OuterStride<>(out_stride));
  for (Index e = 0; e < n_events; ++e) {
    const Index s = times[e];
    const double value = values[e];
    const Index t_begin = std::max(s + 1, first);
    const Index t_end = std::min(s + window, last);  // inclusive
    const Index n_t = t_end - t_begin + 1;
    if (n_t <= 0) continue;
    for (Index k = 0; k < n_kernels; ++k)
      rows.col(k).segment(t_begin - first, n_t) += value * kernel.col(k).segment(t_begin - s - 1, n_t);
  }
}

void history_gather(Index n_events, const Index* times, const double* values,
                    const std::int64_t* rows, Index len, const double* kernels, Index kernel_stride,
                    Index window, Index n_kernels, double* out, Index out_stride) {
  const ConstStridedMatrix kernel(kernels, window, n_kernels, OuterStride<>(kernel_stride));
  StridedMatrix block(out, len, n_kernels, OuterStride<>(out_stride));
  Index cursor = 0;
  Index previous = -1;
  for (Index i = 0; i < len; ++i) {
    const Index t = rows[i];
    if (t < previous) cursor = 0;  // not increasing after all: restart the walk
    previous = t;
    while (cursor < n_events && times[cursor] < t - window) ++cursor;
    for (Index e = cursor; e < n_events && times[e] < t; ++e) {
      const Index s = times[e];
      for (Index k = 0; k < n_kernels; ++k) block(i, k) += values[e] * kernel(t - s - 1, k);
    }
  }
}

void convolve_aligned_columns(const Eigen::Ref<const MatrixColMajor>& x,
                              const Eigen::Ref<const MatrixColMajor>& kernels, Index offset,
                              Eigen::Ref<MatrixColMajor> out, int n_threads) {
  popglm::convolve_aligned(x, kernels, offset, out, n_threads);
}

void convolve_aligned_rows(const Eigen::Ref<const MatrixRowMajor>& x,
                           const Eigen::Ref<const MatrixColMajor>& kernels, Index offset,
                           Eigen::Ref<MatrixColMajor> out, int n_threads) {
  popglm::convolve_aligned(x, kernels, offset, out, n_threads);
}

}  // namespace

const Table& table() {
  static const Table kernels{
      kTableVersion,
      static_cast<std::uint32_t>(sizeof(Table)),
      POPGLM_ISA,
      &detail::outer_product_sum,
      &detail::dot_product_sum,
      &add_weighted_gram,
      &finish_gram,
      &exp_values,
      &curvature_sum,
      &scaled_cholesky,
      &cholesky_solve,
      &history_scatter,
      &history_gather,
      &convolve_aligned_columns,
      &convolve_aligned_rows,
      &popglm::convolve_history,
      &popglm::simulate_recurrent,
  };
  return kernels;
}

}  // namespace popglm::kernels
