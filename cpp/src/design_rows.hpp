// Internal to the core (not installed): the design as row sources, and the matrix products the
// Newton solvers share. Rows come from a dense matrix or are rebuilt from spike counts and basis
// kernels; every sum over rows uses fixed chunks so results do not depend on the thread count.
#pragma once

#include <algorithm>
#include <cmath>
#include <vector>

#include "popglm/stop_token.hpp"
#include "popglm/types.hpp"
#include "kernels.hpp"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace popglm::detail {

using Eigen::VectorXd;
using popglm::StopToken;
using popglm::stop_requested;

// Every sum over rows is split into at most this many fixed chunks of at least kMinChunkRows
// rows, summed in order: the result does not depend on the thread count.
constexpr Index kRowChunks = 8;
constexpr Index kMinChunkRows = 4096;
// Rows per block of the Hessian pass: a float64 block (rows x features) of 512 KB stays in a
// core's L2 cache while it is scaled, converted and fed to the rank update (blocks from L3 ran
// the Hessian markedly slower). Wide designs keep at least 256 rows per block: shorter blocks
// slowed the rank updates of wide history designs (bench/RESULTS.md has both measurements).
constexpr Index kBlockElements = Index{1} << 16;
constexpr Index kMinBlockRows = 256;
// Rows per block of the products shared by all neurons (one block per task of X D).
constexpr Index kProductBlockRows = 256;
// Rows per block of X^T R: a register tile's columns of X and of R (4 + 4 here) stay in L1.
constexpr Index kTransposeBlockRows = 256;

/// largest = max(largest, value) over finite values, with NaN meaning "none yet" (the progress
/// report's largest max |gradient| before any neuron has a gradient).
inline void keep_largest_finite(double& largest, double value) {
  if (std::isfinite(value) && !(value <= largest)) largest = value;
}

inline bool inside_parallel_region() {
#ifdef _OPENMP
  return omp_in_parallel() != 0;
#else
  return false;
#endif
}

inline Index block_rows_for(Index n_columns, Index n_rows) {
  const Index rows = std::clamp<Index>(kBlockElements / std::max<Index>(n_columns, 1), kMinBlockRows, 8192);
  return std::max<Index>(std::min(rows, n_rows), 1);
}

inline Index row_chunks(Index n_rows) { return std::clamp<Index>(n_rows / kMinChunkRows, 1, kRowChunks); }

inline bool is_contiguous(const Eigen::Ref<const IndexVector>& rows) {
  for (Index i = 1; i < rows.size(); ++i)
    if (rows[i] != rows[0] + i) return false;
  return true;
}

/// Row access to a dense feature matrix (a NumPy array of either order).
template <class Matrix>
class DenseRows {
 public:
  static constexpr bool kHasViews = true;

  explicit DenseRows(const Matrix& matrix) : matrix_(matrix) {}

  Index rows() const { return matrix_.rows(); }
  Index cols() const { return matrix_.cols(); }
  auto view(Index first, Index len) const { return matrix_.middleRows(first, len); }

  /// out(i, offset + a) = X(rows[start + i], feature a), features `*active` or all of them.
  void gather(const Eigen::Ref<const IndexVector>& rows, Index start, Index len, bool contiguous,
              const std::vector<Index>* active, Index offset, MatrixColMajor& out) const {
    const Index n_selected = active ? static_cast<Index>(active->size()) : cols();
    auto feature = [&](Index a) { return active ? (*active)[static_cast<std::size_t>(a)] : a; };
    if constexpr (Matrix::IsRowMajor) {
      for (Index i = 0; i < len; ++i) {
        const Index row = rows[start + i];
        for (Index a = 0; a < n_selected; ++a) out(i, offset + a) = matrix_(row, feature(a));
      }
    } else if (contiguous) {
      for (Index a = 0; a < n_selected; ++a)
        out.col(offset + a).head(len) = matrix_.col(feature(a)).segment(rows[start], len);
    } else {
      for (Index a = 0; a < n_selected; ++a) {
        const auto column = matrix_.col(feature(a));
        for (Index i = 0; i < len; ++i) out(i, offset + a) = column[rows[start + i]];
      }
    }
  }

 private:
  const Matrix& matrix_;
};

/// Row access to the history features of convolve_history(inputs, kernels) without storing them:
/// feature i * n_kernels + k at row t is sum_{l=1..window} kernels(l - 1, k) * inputs(t - l, i),
/// formed with the same operations in the same order, so the values are those of the stored
/// matrix. Rows t < window (NaN there) must not be requested.
class HistoryRows {
 public:
  static constexpr bool kHasViews = false;

  HistoryRows(const Eigen::Ref<const MatrixColMajor>& inputs,
              const Eigen::Ref<const MatrixColMajor>& kernels)
      : kernels_(kernels), n_samples_(inputs.rows()) {
    // Spike counts are mostly zero: keep each input's non-zero samples (time, value) only.
    const auto n_inputs = static_cast<std::size_t>(inputs.cols());
    times_.resize(n_inputs);
    values_.resize(n_inputs);
    for (std::size_t input = 0; input < n_inputs; ++input) {
      const auto column = inputs.col(static_cast<Index>(input));
      for (Index s = 0; s < column.size(); ++s) {
        if (column[s] == 0.0) continue;
        times_[input].push_back(s);
        values_[input].push_back(column[s]);
      }
    }
  }

  Index rows() const { return n_samples_; }
  Index cols() const { return static_cast<Index>(times_.size()) * kernels_.cols(); }

  void gather(const Eigen::Ref<const IndexVector>& rows, Index start, Index len, bool contiguous,
              const std::vector<Index>* active, Index offset, MatrixColMajor& out) const {
    if (!active) {
      if (contiguous) {
        scatter_range(rows[start], len, out, offset);
      } else {
        increasing_rows(rows, start, len, out, offset);
      }
      return;
    }
    // Masked neurons: form all features, keep the active ones.
    MatrixColMajor all(len, cols());
    const IndexVector positions = rows.segment(start, len);
    gather(positions, 0, len, contiguous, nullptr, 0, all);
    for (std::size_t a = 0; a < active->size(); ++a)
      out.col(offset + static_cast<Index>(a)).head(len) = all.col((*active)[a]);
  }

 private:
  /// The non-zero samples of `input` at times [begin, end), in time order.
  std::pair<std::size_t, std::size_t> samples_in(std::size_t input, Index begin, Index end) const {
    const auto& times = times_[input];
    const auto first = std::lower_bound(times.begin(), times.end(), begin);
    const auto last = std::lower_bound(first, times.end(), end);
    return {static_cast<std::size_t>(first - times.begin()), static_cast<std::size_t>(last - times.begin())};
  }

  /// Rows first..first+len-1 into out(:, offset..): every non-zero input sample is scattered into
  /// the window that follows it, O(non-zeros * window) instead of O(rows * window).
  void scatter_range(Index first, Index len, MatrixColMajor& out, Index offset) const {
    const Index n_kernels = kernels_.cols();
    out.middleCols(offset, cols()).topRows(len).setZero();
    const Index last_row = first + len - 1;
    const auto& kernels = popglm::kernels::active();
    for (std::size_t input = 0; input < times_.size(); ++input) {
      const auto [begin, end] = samples_in(input, first - kernels_.rows(), last_row);
      kernels.history_scatter(static_cast<Index>(end - begin), times_[input].data() + begin,
                              values_[input].data() + begin, first, last_row, kernels_.data(),
                              kernels_.outerStride(), kernels_.rows(), n_kernels,
                              &out(0, offset + static_cast<Index>(input) * n_kernels), out.outerStride());
    }
  }

  /// Scattered rows (a Hessian's row sample), each formed from the samples in its window. Rows
  /// come in increasing order, so one cursor per input walks its samples once for all rows.
  void increasing_rows(const Eigen::Ref<const IndexVector>& rows, Index start, Index len,
                       MatrixColMajor& out, Index offset) const {
    const Index n_kernels = kernels_.cols();
    out.middleCols(offset, cols()).topRows(len).setZero();
    const auto& kernels = popglm::kernels::active();
    for (std::size_t input = 0; input < times_.size(); ++input)
      kernels.history_gather(static_cast<Index>(times_[input].size()), times_[input].data(),
                             values_[input].data(), rows.data() + start, len, kernels_.data(),
                             kernels_.outerStride(), kernels_.rows(), n_kernels,
                             &out(0, offset + static_cast<Index>(input) * n_kernels), out.outerStride());
  }

  Eigen::Ref<const MatrixColMajor> kernels_;
  Index n_samples_;
  std::vector<std::vector<Index>> times_;
  std::vector<std::vector<double>> values_;
};

/// The design on the valid rows, shared by every neuron. Products with one coefficient vector per
/// neuron are done as matrix-matrix products: X is read once per population step, not once per
/// neuron, and the arithmetic runs at matrix-multiply speed instead of memory speed.
template <class Source>
class SharedDesign {
 public:
  SharedDesign(const Source& design, const Eigen::Ref<const IndexVector>& rows)
      : design_(design),
        rows_(rows),
        contiguous_(is_contiguous(rows)),
        block_rows_(std::max<Index>(std::min<Index>(kProductBlockRows, rows.size()), 1)) {}

  Index n_rows() const { return rows_.size(); }
  Index n_features() const { return design_.cols(); }

  /// Blocks are skipped once `stop` fires (the products are then incomplete, to be discarded).
  void set_stop(const StopToken* stop) { stop_ = stop; }

  /// out.col(k) = offsets[k] + X coefs.col(k) on the valid rows, for k < coefs.cols().
  void multiply(const Eigen::Ref<const MatrixColMajor>& coefs,
                const Eigen::Ref<const VectorXd>& offsets, MatrixColMajor& out,
                int n_threads) const {
    const Index m = coefs.cols();
    const Index n_blocks = (n_rows() + block_rows_ - 1) / block_rows_;
#pragma omp parallel num_threads(sanitize_threads(n_threads)) if (n_blocks > 1)
    {
      MatrixColMajor buffer;
      // Dynamic: on a busy machine a thread that is descheduled leaves its blocks to the others
      // instead of holding the rest at the barrier (each block owns its rows of out).
#pragma omp for schedule(dynamic, 4)
      for (Index b = 0; b < n_blocks; ++b) {
        if (stop_requested(stop_)) continue;
        const Index start = b * block_rows_;
        const Index len = std::min(block_rows_, n_rows() - start);
        auto out_rows = out.block(start, 0, len, m);
        bool done = false;
        if constexpr (Source::kHasViews) {
          if (contiguous_) {
            multiply_rows(design_.view(rows_[0] + start, len), coefs, out_rows);
            done = true;
          }
        }
        if (!done) {
          gather(start, len, buffer);
          multiply_rows(buffer.topRows(len), coefs, out_rows);
        }
        out_rows.rowwise() += offsets.transpose();
      }
    }
  }

  /// out = [1, X]^T R / n on the valid rows, where fill_residual(start, len, block) writes rows
  /// start..start+len of R (n x m) into block.
  template <class FillResidual>
  void transpose_multiply(Index m, const FillResidual& fill_residual, MatrixColMajor& out,
                          int n_threads) const {
    const Index n = n_rows();
    const Index p = n_features();
    const Index n_chunks = row_chunks(n);
    const Index block_rows = kTransposeBlockRows;
    std::vector<MatrixColMajor> partial(static_cast<std::size_t>(n_chunks));
#pragma omp parallel num_threads(sanitize_threads(n_threads)) if (n_chunks > 1)
    {
      MatrixColMajor buffer, residual;
#pragma omp for schedule(dynamic, 1)  // each chunk owns its partial sum (see multiply)
      for (Index c = 0; c < n_chunks; ++c) {
        MatrixColMajor& sum = partial[static_cast<std::size_t>(c)];
        sum.setZero(p + 1, m);
        const Index chunk_end = n * (c + 1) / n_chunks;
        for (Index start = n * c / n_chunks; start < chunk_end; start += block_rows) {
          if (stop_requested(stop_)) break;
          const Index len = std::min(block_rows, chunk_end - start);
          residual.resize(len, m);
          fill_residual(start, len, residual);
          sum.row(0) += residual.colwise().sum();
          auto gradients = sum.bottomRows(p);
          bool done = false;
          if constexpr (Source::kHasViews) {
            if (contiguous_) {
              add_transpose_product(design_.view(rows_[0] + start, len), residual, gradients);
              done = true;
            }
          }
          if (!done) {
            gather(start, len, buffer);
            add_transpose_product(buffer.topRows(len), residual, gradients);
          }
        }
      }
    }
    out.setZero(p + 1, m);
    for (const auto& sum : partial) out += sum;
    if (n > 0) out /= static_cast<double>(n);
  }

 private:
  /// out = rows coefs, for a block of rows stored by columns or by rows.
  template <class Rows, class Out>
  static void multiply_rows(const Rows& rows, const Eigen::Ref<const MatrixColMajor>& coefs, Out& out) {
    const Index len = rows.rows(), p = rows.cols(), m = coefs.cols();
    if constexpr (Rows::IsRowMajor) {
      // out(t, k) = <row t, column k of coefs>: both contiguous.
      popglm::kernels::active().dot_product_sum(p, len, m, rows.data(), rows.outerStride(), coefs.data(),
                                                coefs.outerStride(), out.data(), out.outerStride(), false);
    } else {
      popglm::kernels::active().outer_product_sum(len, p, m, rows.data(), rows.outerStride(), coefs.data(), 1,
                                                  coefs.outerStride(), out.data(), out.outerStride(), false);
    }
  }

  /// out += rows^T residual, for a block of rows stored by columns or by rows.
  template <class Rows, class Out>
  static void add_transpose_product(const Rows& rows, const MatrixColMajor& residual, Out& out) {
    const Index len = rows.rows(), p = rows.cols(), m = residual.cols();
    if constexpr (Rows::IsRowMajor) {
      // A sum of outer products, row t of X with row t of R.
      popglm::kernels::active().outer_product_sum(p, len, m, rows.data(), rows.outerStride(), residual.data(), 1,
                                                  residual.outerStride(), out.data(), out.outerStride(), true);
    } else {
      // out(a, k) = <column a of X, column k of R>: both contiguous.
      popglm::kernels::active().dot_product_sum(len, p, m, rows.data(), rows.outerStride(), residual.data(),
                                                residual.outerStride(), out.data(), out.outerStride(), true);
    }
  }

  void gather(Index start, Index len, MatrixColMajor& buffer) const {
    buffer.resize(len, n_features());
    design_.gather(rows_, start, len, contiguous_, nullptr, 0, buffer);
  }

  const Source& design_;
  Eigen::Ref<const IndexVector> rows_;
  bool contiguous_;
  Index block_rows_;
  const StopToken* stop_ = nullptr;
};

/// One neuron's design for its Hessian: an implicit intercept column followed by the active
/// features, on a list of rows (all valid rows, or a sub-sample of them).
template <class Source>
class NeuronRows {
 public:
  NeuronRows(const Source& design, const Eigen::Ref<const IndexVector>& rows,
             const std::vector<Index>& active)
      : design_(design),
        rows_(rows),
        active_(active),
        contiguous_(is_contiguous(rows)),
        block_rows_(block_rows_for(n_params(), rows.size())) {}

  Index n_rows() const { return rows_.size(); }
  Index n_params() const { return static_cast<Index>(active_.size()) + 1; }

  /// hessian = A^T diag(weights) A / normaliser, A = [1, X_active]; with `single_precision` each
  /// block's product is formed in float32 (twice the throughput) and summed in float64. The rows
  /// are summed in fixed chunks (row_chunks), in order, so the result does not depend on the
  /// thread count; the chunks run on up to n_threads threads when called outside a parallel
  /// region (a neuron finishing alone, e.g. a divergence check's float64 Hessian, then uses every
  /// core). Stops early, leaving a partial sum, when `stop` fires.
  void hessian(const Eigen::Ref<const VectorXd>& weights, double normaliser,
               MatrixColMajor& hessian, bool single_precision, const StopToken* stop = nullptr,
               int n_threads = 1) const {
    const Index n = n_rows();
    const Index n_chunks = row_chunks(n);
    auto chunk = [&](Index c, MatrixColMajor& out) {
      chunk_hessian(n * c / n_chunks, n * (c + 1) / n_chunks, weights, single_precision, stop, out);
    };
    if (n_chunks > 1 && n_threads > 1 && !inside_parallel_region()) {
      std::vector<MatrixColMajor> partial(static_cast<std::size_t>(n_chunks));
#pragma omp parallel for schedule(dynamic, 1) num_threads(sanitize_threads(n_threads))
      for (Index c = 0; c < n_chunks; ++c) chunk(c, partial[static_cast<std::size_t>(c)]);
      hessian = std::move(partial[0]);
      for (std::size_t c = 1; c < partial.size(); ++c) hessian += partial[c];
    } else {
      // The same sums in the same order, holding one chunk at a time (on L a chunk is 5 MB).
      chunk(0, hessian);
      MatrixColMajor next;
      for (Index c = 1; c < n_chunks; ++c) {
        chunk(c, next);
        hessian += next;
      }
    }
    popglm::kernels::active().finish_gram(hessian.rows(), hessian.data(), normaliser);
  }

 private:
  /// The lower triangle of A^T diag(weights) A over rows [first, last).
  void chunk_hessian(Index first, Index last, const Eigen::Ref<const VectorXd>& weights,
                     bool single_precision, const StopToken* stop, MatrixColMajor& hessian) const {
    const Index q = n_params();
    hessian.setZero(q, q);
    const Index buffer_rows = std::min(block_rows_, std::max<Index>(last - first, 0));
    MatrixColMajor block(buffer_rows, q);
    VectorXd root_weights(buffer_rows);
    std::vector<float> block_single, hessian_single;
    if (single_precision) {
      block_single.resize(static_cast<std::size_t>(buffer_rows * q));
      hessian_single.resize(static_cast<std::size_t>(q * q));
    }
    const auto& kernels = popglm::kernels::active();
    for (Index start = first; start < last; start += block_rows_) {
      if (stop_requested(stop)) break;
      const Index len = std::min(block_rows_, last - start);
      gather(start, len, block);
      // Square roots once per row (not once per element).
      auto root = root_weights.head(len);
      root = weights.segment(start, len).array().sqrt();
      kernels.add_weighted_gram(len, q, block.data(), block.outerStride(), root.data(), single_precision,
                                block_single.data(), hessian_single.data(), hessian.data());
    }
  }

  void gather(Index start, Index len, MatrixColMajor& block) const {
    block.col(0).head(len).setOnes();
    const bool all_features = static_cast<Index>(active_.size()) == design_.cols();
    design_.gather(rows_, start, len, contiguous_, all_features ? nullptr : &active_, 1, block);
  }

  const Source& design_;
  Eigen::Ref<const IndexVector> rows_;
  const std::vector<Index>& active_;
  bool contiguous_;
  Index block_rows_;
};

/// The rows and columns of the Gram matrix of [1, X] that belong to [1, X_active].
inline MatrixColMajor gram_block(const MatrixColMajor& gram, const std::vector<Index>& active) {
  const Index q = static_cast<Index>(active.size()) + 1;
  auto index = [&](Index i) { return i == 0 ? Index{0} : active[static_cast<std::size_t>(i - 1)] + 1; };
  MatrixColMajor block(q, q);
  for (Index j = 0; j < q; ++j)
    for (Index i = 0; i < q; ++i) block(i, j) = gram(index(i), index(j));
  return block;
}

/// out.col(k) = [1, X_active] v for the k-th state of `batch`, v its theta or its direction, from
/// one product with the shared design; each state records its column in batch_column.
template <class Source, class State>
void batched_linear_predictors(const SharedDesign<Source>& shared, const std::vector<State*>& batch,
                               bool of_theta, MatrixColMajor& out, int n_threads) {
  if (batch.empty()) return;
  const Index m = static_cast<Index>(batch.size());
  MatrixColMajor coefs = MatrixColMajor::Zero(shared.n_features(), m);
  VectorXd offsets(m);
  for (Index k = 0; k < m; ++k) {
    State& state = *batch[static_cast<std::size_t>(k)];
    const VectorXd& v = of_theta ? state.theta : state.direction;
    offsets[k] = v[0];
    for (std::size_t a = 0; a < state.active.size(); ++a) coefs(state.active[a], k) = v[static_cast<Index>(a) + 1];
    state.batch_column = k;
  }
  if (coefs.isZero(0.0)) {
    // Intercept-only (every fit's default start): the product is exactly the offsets on the
    // valid (finite) rows, and a pass over X saved.
    for (Index k = 0; k < m; ++k) out.col(k).head(shared.n_rows()).setConstant(offsets[k]);
    return;
  }
  shared.multiply(coefs, offsets, out, n_threads);
}

/// A state's gradient (intercept first, then its active features) from column `column` of the
/// full-design gradients [1, X]^T R / n.
template <class State>
void gather_gradient(const MatrixColMajor& full, Index column, State& state) {
  state.gradient.resize(state.n_params());
  state.gradient[0] = full(0, column);
  for (std::size_t a = 0; a < state.active.size(); ++a)
    state.gradient[static_cast<Index>(a) + 1] = full(state.active[a] + 1, column);
}

}  // namespace popglm::detail
