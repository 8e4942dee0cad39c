#include "popglm/products.hpp"

#include <limits>
#include <stdexcept>
#include <vector>

#include "design_rows.hpp"

namespace popglm {

using namespace detail;  // NOLINT: the row sources and shared products

namespace {
template <class Matrix>
MatrixColMajor weighted_gram_impl(const Matrix& design, const Eigen::Ref<const IndexVector>& rows,
                                  const Eigen::Ref<const Eigen::VectorXd>& weights,
                                  bool single_precision) {
  if (weights.size() != rows.size())
    throw std::invalid_argument("weighted_gram: weights and rows differ in length");
  for (Index i = 0; i < rows.size(); ++i)
    if (rows[i] < 0 || rows[i] >= design.rows() || !(weights[i] >= 0.0))
      throw std::invalid_argument("weighted_gram: row out of range or negative weight");
  const DenseRows<Matrix> source(design);
  std::vector<Index> all(static_cast<std::size_t>(design.cols()));
  for (Index p = 0; p < design.cols(); ++p) all[static_cast<std::size_t>(p)] = p;
  MatrixColMajor gram;
  NeuronRows<DenseRows<Matrix>>(source, rows, all).hessian(weights, 1.0, gram, single_precision);
  return gram;
}

template <class Matrix>
void design_multiply_impl(const Matrix& design, const Eigen::Ref<const IndexVector>& rows,
                          const Eigen::Ref<const MatrixColMajor>& coefs,
                          const Eigen::Ref<const Eigen::VectorXd>& offsets,
                          Eigen::Ref<MatrixColMajor> out, int n_threads) {
  if (coefs.rows() != design.cols() || offsets.size() != coefs.cols() ||
      out.rows() != rows.size() || out.cols() != coefs.cols())
    throw std::invalid_argument("design_multiply: inconsistent shapes");
  for (Index i = 0; i < rows.size(); ++i)
    if (rows[i] < 0 || rows[i] >= design.rows())
      throw std::invalid_argument("design_multiply: row index out of range");
  const DenseRows<Matrix> source(design);
  MatrixColMajor result(rows.size(), coefs.cols());
  SharedDesign<DenseRows<Matrix>>(source, rows).multiply(coefs, offsets, result, n_threads);
  out = result;
}

template <class Matrix>
MatrixColMajor design_transpose_multiply_impl(const Matrix& design, const Eigen::Ref<const IndexVector>& rows,
                                              const Eigen::Ref<const MatrixColMajor>& residual,
                                              int n_threads) {
  if (residual.rows() != rows.size())
    throw std::invalid_argument("design_transpose_multiply: residual and rows differ in length");
  for (Index i = 0; i < rows.size(); ++i)
    if (rows[i] < 0 || rows[i] >= design.rows())
      throw std::invalid_argument("design_transpose_multiply: row index out of range");
  const DenseRows<Matrix> source(design);
  MatrixColMajor result;
  auto fill = [&](Index start, Index len, MatrixColMajor& block) { block = residual.middleRows(start, len); };
  SharedDesign<DenseRows<Matrix>>(source, rows).transpose_multiply(residual.cols(), fill, result, n_threads);
  return result;
}
}  // namespace

MatrixColMajor design_transpose_multiply(const Eigen::Ref<const MatrixColMajor>& design,
                                         const Eigen::Ref<const IndexVector>& rows,
                                         const Eigen::Ref<const MatrixColMajor>& residual, int n_threads) {
  return design_transpose_multiply_impl(design, rows, residual, n_threads);
}

MatrixColMajor design_transpose_multiply(const Eigen::Ref<const MatrixRowMajor>& design,
                                         const Eigen::Ref<const IndexVector>& rows,
                                         const Eigen::Ref<const MatrixColMajor>& residual, int n_threads) {
  return design_transpose_multiply_impl(design, rows, residual, n_threads);
}

MatrixColMajor weighted_gram(const Eigen::Ref<const MatrixColMajor>& design,
                             const Eigen::Ref<const IndexVector>& rows,
                             const Eigen::Ref<const Eigen::VectorXd>& weights,
                             bool single_precision) {
  return weighted_gram_impl(design, rows, weights, single_precision);
}

MatrixColMajor weighted_gram(const Eigen::Ref<const MatrixRowMajor>& design,
                             const Eigen::Ref<const IndexVector>& rows,
                             const Eigen::Ref<const Eigen::VectorXd>& weights,
                             bool single_precision) {
  return weighted_gram_impl(design, rows, weights, single_precision);
}

void design_multiply(const Eigen::Ref<const MatrixColMajor>& design,
                     const Eigen::Ref<const IndexVector>& rows,
                     const Eigen::Ref<const MatrixColMajor>& coefs,
                     const Eigen::Ref<const Eigen::VectorXd>& offsets,
                     Eigen::Ref<MatrixColMajor> out, int n_threads) {
  design_multiply_impl(design, rows, coefs, offsets, out, n_threads);
}

void design_multiply(const Eigen::Ref<const MatrixRowMajor>& design,
                     const Eigen::Ref<const IndexVector>& rows,
                     const Eigen::Ref<const MatrixColMajor>& coefs,
                     const Eigen::Ref<const Eigen::VectorXd>& offsets,
                     Eigen::Ref<MatrixColMajor> out, int n_threads) {
  design_multiply_impl(design, rows, coefs, offsets, out, n_threads);
}

void history_linear_predictor(const Eigen::Ref<const MatrixColMajor>& inputs,
                              const Eigen::Ref<const MatrixColMajor>& kernels,
                              const Eigen::Ref<const MatrixColMajor>& coef,
                              const Eigen::Ref<const Eigen::VectorXd>& intercept,
                              Eigen::Ref<MatrixColMajor> out, int n_threads) {
  const Index window = kernels.rows();
  const Index n_samples = inputs.rows();
  if (window < 1) throw std::invalid_argument("history_linear_predictor: empty kernels");
  if (coef.rows() != inputs.cols() * kernels.cols() || intercept.size() != coef.cols() ||
      out.rows() != n_samples || out.cols() != coef.cols())
    throw std::invalid_argument("history_linear_predictor: inconsistent shapes");
  const Index first = std::min(window, n_samples);
  out.topRows(first).setConstant(std::numeric_limits<double>::quiet_NaN());
  if (first == n_samples) return;
  IndexVector rows(n_samples - first);
  for (Index i = 0; i < rows.size(); ++i) rows[i] = first + i;
  const HistoryRows source(inputs, kernels);
  MatrixColMajor result(rows.size(), coef.cols());
  SharedDesign<HistoryRows>(source, rows).multiply(coef, intercept, result, n_threads);
  out.bottomRows(rows.size()) = result;
}

}  // namespace popglm
