// Internal to the core (not installed): the loops whose speed depends on the instruction set.
//
// kernels.cpp, convolve.cpp and simulate.cpp are compiled once per instruction set (any x86-64,
// x86-64-v3, x86-64-v4); the engine that calls them (the Newton solvers, their bookkeeping) and
// the bindings are compiled once. Each build's functions are gathered in a Table of plain
// function pointers. The baseline build is linked into popglm._core; the others live in their
// own extension modules (popglm._kernels_v3, _kernels_v4), each a shared object of its own, so
// that template instances compiled for different instruction sets (Eigen's, the standard
// library's) never merge, and Python hands the best table the CPU runs to the engine at import.
#pragma once

#include <cstdint>

#include "popglm/convolve.hpp"
#include "popglm/simulate.hpp"
#include "popglm/types.hpp"

namespace popglm::kernels {

/// Changes whenever Table's layout or any kernel's contract changes: a kernel module from
/// another build is refused instead of called through the wrong signature.
inline constexpr std::uint32_t kTableVersion = 1;

/// Order of the diagonal blocks whose inverses scaled_cholesky stores (see cholesky_solve).
inline constexpr Index kCholeskyBlock = 4;

struct Table {
  std::uint32_t version;
  std::uint32_t size;  ///< sizeof(Table) of the build that filled it
  const char* isa;     ///< "baseline", "x86-64-v3" or "x86-64-v4"

  /// out(i, k) (+)= sum_d U(i, d) V(d, k), i < rows, k < m, d < depth: U(i, d) at
  /// u[i + d * u_stride], V(d, k) at v[d * v_row_stride + k * v_col_stride], out column-major.
  void (*outer_product_sum)(Index rows, Index depth, Index m, const double* u, Index u_stride,
                            const double* v, Index v_row_stride, Index v_col_stride, double* out,
                            Index out_stride, bool accumulate);
  /// out(r, k) (+)= sum_t A(t, r) B(t, k), r < n_out_rows, k < m, t < length: column r of A at
  /// a + r * a_stride, column k of B at b + k * b_stride, out column-major.
  void (*dot_product_sum)(Index length, Index n_out_rows, Index m, const double* a, Index a_stride,
                          const double* b, Index b_stride, double* out, Index out_stride,
                          bool accumulate);
  /// The lower triangle of gram (q x q, column-major) += B^T B for B = diag(root) block, block
  /// (len x q, column-major, leading dimension ld; scaled in place). With single_precision the
  /// product is formed in float32 in single_block (len x q) and single_gram (q x q) and added.
  void (*add_weighted_gram)(Index len, Index q, double* block, Index ld, const double* root,
                            bool single_precision, float* single_block, float* single_gram,
                            double* gram);
  /// The q x q gram (column-major) made symmetric from its lower triangle, then divided by
  /// normaliser when that is > 0.
  void (*finish_gram)(Index q, double* gram, double normaliser);
  /// out[i] = exp(in[i]), i < n (out may be in).
  void (*exp)(Index n, const double* in, double* out);
  /// sum_i exp(eta_i) (exp(z_i) - 1 - z_i), z = step * step_eta, i < len <= kCurvatureChunk,
  /// without cancellation near z = 0; rates (exp(eta), or null) saves one exp per row.
  double (*curvature_sum)(Index len, const double* eta, const double* rates,
                          const double* step_eta, double step);
  /// The Jacobi-scaled Cholesky factor of the symmetric q x q hessian (column-major):
  /// scale[i] = 1 / sqrt(H_ii) (1 where H_ii is not positive and finite), scaled = diag(scale) H
  /// diag(scale) and norm1 = ||scaled||_1; the factor L of scaled in the lower triangle of lower,
  /// the inverses of L's diagonal blocks in block_inverses (ceil(q / kCholeskyBlock) blocks of
  /// kCholeskyBlock^2, row-major) and inverse_bound >= ||scaled^{-1}||_1 (work: q doubles).
  /// False (lower, block_inverses and inverse_bound unspecified) if a pivot is not positive.
  bool (*scaled_cholesky)(Index q, const double* hessian, double* scale, double* scaled,
                          double* norm1, double* lower, double* block_inverses,
                          double* inverse_bound, double* work);
  /// x <- (L L^T)^{-1} x from scaled_cholesky's lower and block_inverses.
  void (*cholesky_solve)(Index q, const double* lower, const double* block_inverses, double* x);
  /// out(t - first, k) += value_e * kernels(t - time_e - 1, k) for every event e (time, value) of
  /// one input and every t in [first, last] with 1 <= t - time_e <= window: the history
  /// features of rows first..last (out column-major, stride out_stride, n_kernels columns).
  void (*history_scatter)(Index n_events, const Index* times, const double* values, Index first,
                          Index last, const double* kernels, Index kernel_stride, Index window,
                          Index n_kernels, double* out, Index out_stride);
  /// The same for the rows rows[0..len) (increasing), out row i for rows[i].
  void (*history_gather)(Index n_events, const Index* times, const double* values,
                         const std::int64_t* rows, Index len, const double* kernels,
                         Index kernel_stride, Index window, Index n_kernels, double* out,
                         Index out_stride);
  void (*convolve_aligned_columns)(const Eigen::Ref<const MatrixColMajor>& x,
                                   const Eigen::Ref<const MatrixColMajor>& kernels, Index offset,
                                   Eigen::Ref<MatrixColMajor> out, int n_threads);
  void (*convolve_aligned_rows)(const Eigen::Ref<const MatrixRowMajor>& x,
                                const Eigen::Ref<const MatrixColMajor>& kernels, Index offset,
                                Eigen::Ref<MatrixColMajor> out, int n_threads);
  decltype(&popglm::convolve_history) convolve_history;
  decltype(&popglm::simulate_recurrent) simulate_recurrent;
};

/// Rows per call of curvature_sum (its temporaries stay on the stack, in the L1 cache).
inline constexpr Index kCurvatureChunk = 256;

/// This build's table (each kernel module has its own).
const Table& table();

/// The table the engine calls: the baseline build's until set_active.
const Table& active();
/// Make `table` the engine's; throws std::invalid_argument for a table of another version.
void set_active(const Table& table);

}  // namespace popglm::kernels
