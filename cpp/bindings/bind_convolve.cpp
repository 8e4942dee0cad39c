#include "bindings.hpp"
#include "kernels.hpp"
#include "popglm/design.hpp"

namespace popglm::bindings {

void register_convolve(py::module_& m) {
  // The GIL is released in every kernel below: they read and write only the NumPy buffers
  // passed in (kept alive by the caller's references) and never touch Python objects.
  // The convolutions run in the kernel build chosen at import (kernels.hpp).
  m.def("convolve_history",
        [](const Eigen::Ref<const MatrixColMajor>& x, const Eigen::Ref<const MatrixColMajor>& kernels,
           Eigen::Ref<MatrixColMajor> out, int n_threads) {
          popglm::kernels::active().convolve_history(x, kernels, out, n_threads);
        },
        py::arg("x").noconvert(),
        py::arg("kernels").noconvert(), py::arg("out").noconvert(), py::arg("n_threads"),
        py::call_guard<GilRelease>(),
        "Causal shifted convolution of each column of x (F-ordered float64) with each kernel;\n"
        "writes out (n_samples, n_inputs * n_kernels), NaN in the first window rows.");

  m.def("convolve_aligned",
        [](const Eigen::Ref<const MatrixColMajor>& x, const Eigen::Ref<const MatrixColMajor>& kernels,
           Index offset, Eigen::Ref<MatrixColMajor> out, int n_threads) {
          popglm::kernels::active().convolve_aligned_columns(x, kernels, offset, out, n_threads);
        },
        py::arg("x").noconvert(), py::arg("kernels").noconvert(), py::arg("offset"),
        py::arg("out").noconvert(), py::arg("n_threads"), py::call_guard<GilRelease>());
  m.def("convolve_aligned",
        [](const Eigen::Ref<const MatrixRowMajor>& x, const Eigen::Ref<const MatrixColMajor>& kernels,
           Index offset, Eigen::Ref<MatrixColMajor> out, int n_threads) {
          popglm::kernels::active().convolve_aligned_rows(x, kernels, offset, out, n_threads);
        },
        py::arg("x").noconvert(), py::arg("kernels").noconvert(), py::arg("offset"),
        py::arg("out").noconvert(), py::arg("n_threads"), py::call_guard<GilRelease>(),
        "out[t, i * n_kernels + k] = sum_m kernels[m, k] * x[t + offset - m, i] where every\n"
        "index exists, NaN elsewhere (x float64 in F or C order, read in place; kernels and out\n"
        "F-ordered float64).");

  m.def("scan_design",
        py::overload_cast<const Eigen::Ref<const MatrixColMajor>&, Eigen::Ref<MaskVector>,
                          Eigen::Ref<Eigen::VectorXd>, int>(&popglm::scan_design),
        py::arg("matrix").noconvert(), py::arg("out").noconvert(), py::arg("max_abs").noconvert(),
        py::arg("n_threads"), py::call_guard<GilRelease>());
  m.def("scan_design",
        py::overload_cast<const Eigen::Ref<const MatrixRowMajor>&, Eigen::Ref<MaskVector>,
                          Eigen::Ref<Eigen::VectorXd>, int>(&popglm::scan_design),
        py::arg("matrix").noconvert(), py::arg("out").noconvert(), py::arg("max_abs").noconvert(),
        py::arg("n_threads"), py::call_guard<GilRelease>(),
        "One pass over a design (float64, F- or C-ordered): out[t] = 1 where row t is all\n"
        "finite, else 0; max_abs[c] = the largest |entry| among column c's finite entries.");
  m.def("scan_counts", &popglm::scan_counts, py::arg("counts").noconvert(),
        py::arg("valid").noconvert(), py::arg("drop_nonfinite_rows"), py::arg("n_threads"),
        py::call_guard<GilRelease>(),
        "One pass over counts (F-ordered float64): valid[t] = 0 for rows with NaN/inf when\n"
        "drop_nonfinite_rows; returns NEGATIVE_COUNT | FRACTIONAL_COUNT for what it found among\n"
        "the finite entries.");
  m.def("counted_square_sums",
        py::overload_cast<const Eigen::Ref<const MatrixColMajor>&, const Eigen::Ref<const IndexVector>&,
                          const Eigen::Ref<const MatrixColMajor>&, Eigen::Ref<MatrixColMajor>,
                          Eigen::Ref<Eigen::VectorXd>, Eigen::Ref<Eigen::VectorXd>, int>(&popglm::counted_square_sums),
        py::arg("design").noconvert(), py::arg("rows").noconvert(), py::arg("counts").noconvert(),
        py::arg("sums").noconvert(), py::arg("low").noconvert(), py::arg("high").noconvert(), py::arg("n_threads"),
        py::call_guard<GilRelease>());
  m.def("counted_square_sums",
        py::overload_cast<const Eigen::Ref<const MatrixRowMajor>&, const Eigen::Ref<const IndexVector>&,
                          const Eigen::Ref<const MatrixColMajor>&, Eigen::Ref<MatrixColMajor>,
                          Eigen::Ref<Eigen::VectorXd>, Eigen::Ref<Eigen::VectorXd>, int>(&popglm::counted_square_sums),
        py::arg("design").noconvert(), py::arg("rows").noconvert(), py::arg("counts").noconvert(),
        py::arg("sums").noconvert(), py::arg("low").noconvert(), py::arg("high").noconvert(), py::arg("n_threads"),
        py::call_guard<GilRelease>(),
        "sums[p, j] = sum of design[r, p]**2 over the r in rows with counts[r, j] > 0; low/high: each\n"
        "feature's extremes over rows (design float64 F or C order; counts, sums F-ordered).");
  m.attr("NEGATIVE_COUNT") = popglm::kNegativeCount;
  m.attr("FRACTIONAL_COUNT") = popglm::kFractionalCount;
}

}  // namespace popglm::bindings
