// Internal to the core (not installed): products of the design with thin matrices (one column per
// neuron, or one row per feature). A general matrix product copies ("packs") both operands into
// blocks first; with 20-50 columns on the thin side, packing the design costs as much as the
// multiplication itself (bench/RESULTS.md), so these kernels read the design in place.
#pragma once

#include "popglm/types.hpp"

namespace popglm::detail {

namespace thin {
using Packet = Eigen::internal::packet_traits<double>::type;
constexpr int kWidth = Eigen::internal::packet_traits<double>::size;
constexpr int kLineDoubles = 8;     // a 64-byte cache line
constexpr Index kDotPrefetch = 128;  // doubles ahead in each column of A
// Register tiles: accumulators plus the operands of one step fill most of the vector registers
// (32 with AVX-512, 16 otherwise).
#if defined(__AVX512F__)
constexpr int kOuterRowPackets = 3, kOuterColumns = 8;
constexpr int kDotRows = 4, kDotColumns = 4;
#else
constexpr int kOuterRowPackets = 2, kOuterColumns = 6;
constexpr int kDotRows = 3, kDotColumns = 3;
#endif

template <int RowPackets, int Columns>
inline void outer_tile(Index depth, const double* u, Index u_stride, const double* v, Index v_row_stride,
                       Index v_col_stride, double* out, Index out_stride, bool accumulate) {
  using namespace Eigen::internal;
  Packet acc[RowPackets][Columns];
  for (int c = 0; c < Columns; ++c)
    for (int r = 0; r < RowPackets; ++r) acc[r][c] = pset1<Packet>(0.0);
  for (Index d = 0; d < depth; ++d) {
    const double* column = u + d * u_stride;
    Packet x[RowPackets];
    for (int r = 0; r < RowPackets; ++r) x[r] = ploadu<Packet>(column + r * kWidth);
    // The tile after next, one cache line at a time: a tile reads a few lines from each of
    // `depth` columns far apart, a pattern the hardware prefetchers do not follow (without this
    // the kernel ran at half speed once X outgrew the L2 cache).
    for (int r = 0; r < RowPackets * kWidth; r += kLineDoubles)
      Eigen::internal::prefetch(column + 2 * RowPackets * kWidth + r);
    const double* row = v + d * v_row_stride;
    for (int c = 0; c < Columns; ++c) {
      const Packet b = pset1<Packet>(row[c * v_col_stride]);
      for (int r = 0; r < RowPackets; ++r) acc[r][c] = pmadd(x[r], b, acc[r][c]);
    }
  }
  for (int c = 0; c < Columns; ++c)
    for (int r = 0; r < RowPackets; ++r) {
      double* target = out + c * out_stride + r * kWidth;
      pstoreu(target, accumulate ? padd(acc[r][c], ploadu<Packet>(target)) : acc[r][c]);
    }
}

template <int RowPackets, int Columns>
inline void outer_columns(Index depth, Index m, const double* u, Index u_stride, const double* v,
                          Index v_row_stride, Index v_col_stride, double* out, Index out_stride,
                          bool accumulate) {
  if constexpr (Columns > 0) {
    for (; m >= Columns; m -= Columns, v += Columns * v_col_stride, out += Columns * out_stride)
      outer_tile<RowPackets, Columns>(depth, u, u_stride, v, v_row_stride, v_col_stride, out, out_stride, accumulate);
    outer_columns<RowPackets, Columns - 1>(depth, m, u, u_stride, v, v_row_stride, v_col_stride, out,
                                           out_stride, accumulate);
  }
}

template <int RowPackets>
inline void outer_row_packets(Index& i, Index rows, Index depth, Index m, const double* u, Index u_stride,
                              const double* v, Index v_row_stride, Index v_col_stride, double* out,
                              Index out_stride, bool accumulate) {
  for (; i + RowPackets * kWidth <= rows; i += RowPackets * kWidth)
    outer_columns<RowPackets, kOuterColumns>(depth, m, u + i, u_stride, v, v_row_stride, v_col_stride,
                                             out + i, out_stride, accumulate);
}

template <int RowsTile, int Columns>
inline void dot_tile(Index length, const double* a, Index a_stride, const double* b, Index b_stride,
                     double* out, Index out_stride, bool accumulate) {
  using namespace Eigen::internal;
  Packet acc[RowsTile][Columns];
  for (int r = 0; r < RowsTile; ++r)
    for (int c = 0; c < Columns; ++c) acc[r][c] = pset1<Packet>(0.0);
  Index t = 0;
  for (; t + kWidth <= length; t += kWidth) {
    for (int r = 0; r < RowsTile; ++r) Eigen::internal::prefetch(a + r * a_stride + t + kDotPrefetch);
    Packet x[RowsTile], y[Columns];
    for (int r = 0; r < RowsTile; ++r) x[r] = ploadu<Packet>(a + r * a_stride + t);
    for (int c = 0; c < Columns; ++c) y[c] = ploadu<Packet>(b + c * b_stride + t);
    for (int r = 0; r < RowsTile; ++r)
      for (int c = 0; c < Columns; ++c) acc[r][c] = pmadd(x[r], y[c], acc[r][c]);
  }
  for (int r = 0; r < RowsTile; ++r)
    for (int c = 0; c < Columns; ++c) {
      // Lanes summed through memory: Eigen's predux on AVX-512 trips GCC 12's -Wuninitialized.
      double lanes[kWidth];
      pstoreu(lanes, acc[r][c]);
      double sum = 0.0;
      for (int lane = 0; lane < kWidth; ++lane) sum += lanes[lane];
      for (Index s = t; s < length; ++s) sum += a[r * a_stride + s] * b[c * b_stride + s];
      double& target = out[r + c * out_stride];
      target = accumulate ? target + sum : sum;
    }
}

template <int RowsTile, int Columns>
inline void dot_columns(Index length, Index m, const double* a, Index a_stride, const double* b, Index b_stride,
                        double* out, Index out_stride, bool accumulate) {
  if constexpr (Columns > 0) {
    for (; m >= Columns; m -= Columns, b += Columns * b_stride, out += Columns * out_stride)
      dot_tile<RowsTile, Columns>(length, a, a_stride, b, b_stride, out, out_stride, accumulate);
    dot_columns<RowsTile, Columns - 1>(length, m, a, a_stride, b, b_stride, out, out_stride, accumulate);
  }
}

template <int RowsTile>
inline void dot_rows(Index length, Index n_out_rows, Index m, const double* a, Index a_stride, const double* b,
                     Index b_stride, double* out, Index out_stride, bool accumulate) {
  if constexpr (RowsTile > 0) {
    for (; n_out_rows >= RowsTile; n_out_rows -= RowsTile, a += RowsTile * a_stride, out += RowsTile)
      dot_columns<RowsTile, kDotColumns>(length, m, a, a_stride, b, b_stride, out, out_stride, accumulate);
    dot_rows<RowsTile - 1>(length, n_out_rows, m, a, a_stride, b, b_stride, out, out_stride, accumulate);
  }
}
}  // namespace thin

/// out(i, k) (+)= sum_d U(i, d) V(d, k) for i < rows, k < m, d < depth: U(i, d) at
/// u[i + d * u_stride] (columns contiguous), V(d, k) at v[d * v_row_stride + k * v_col_stride],
/// out column-major. Register tiles of rows x columns accumulate rank-one updates; U is read in
/// place, never packed.
inline void outer_product_sum(Index rows, Index depth, Index m, const double* u, Index u_stride,
                              const double* v, Index v_row_stride, Index v_col_stride, double* out,
                              Index out_stride, bool accumulate) {
  using namespace thin;
  Index i = 0;
  outer_row_packets<kOuterRowPackets>(i, rows, depth, m, u, u_stride, v, v_row_stride, v_col_stride, out, out_stride, accumulate);
  if constexpr (kOuterRowPackets > 1)
    outer_row_packets<1>(i, rows, depth, m, u, u_stride, v, v_row_stride, v_col_stride, out, out_stride, accumulate);
  for (; i < rows; ++i)
    for (Index k = 0; k < m; ++k) {
      double sum = 0.0;
      for (Index d = 0; d < depth; ++d) sum += u[i + d * u_stride] * v[d * v_row_stride + k * v_col_stride];
      double& target = out[i + k * out_stride];
      target = accumulate ? target + sum : sum;
    }
}

/// out(r, k) (+)= sum_t A(t, r) B(t, k) for r < n_out_rows, k < m, t < length: the columns of A
/// and of B contiguous (at a + r * a_stride, b + k * b_stride), out column-major. Each register
/// tile of (r, k) pairs accumulates over t in packets, then sums across the packet.
inline void dot_product_sum(Index length, Index n_out_rows, Index m, const double* a, Index a_stride,
                            const double* b, Index b_stride, double* out, Index out_stride, bool accumulate) {
  thin::dot_rows<thin::kDotRows>(length, n_out_rows, m, a, a_stride, b, b_stride, out, out_stride, accumulate);
}

}  // namespace popglm::detail
