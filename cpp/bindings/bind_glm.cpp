#include "bindings.hpp"
#include "kernels.hpp"
#include "popglm/poisson_newton.hpp"
#include "popglm/proximal_newton.hpp"
#include "popglm/simulate.hpp"

namespace popglm::bindings {
namespace {

template <class Design>
void fit_population(const Eigen::Ref<const Design>& design,
                    const Eigen::Ref<const MatrixColMajor>& counts,
                    const Eigen::Ref<const MaskMatrix>& mask, const Eigen::Ref<const MatrixColMajor>& ridge, const Eigen::Ref<const IndexVector>& rows,
                    Eigen::Ref<MatrixColMajor> coef, Eigen::Ref<Eigen::VectorXd> intercept,
                    Eigen::Ref<IntVector> status, Eigen::Ref<IntVector> n_iter,
                    Eigen::Ref<Eigen::VectorXd> gradient_norm, Eigen::Ref<Eigen::VectorXd> objective,
                    Eigen::Ref<IntVector> n_hessian, double tol, int max_iter, int n_threads,
                    const py::object& progress) {
  NewtonOptions options;
  options.tol = tol;
  options.max_iter = max_iter;
  PopulationFitReport report{status, n_iter, gradient_norm, objective, n_hessian};
  run_interruptibly(progress, [&](const StopToken* stop, const ProgressFunction& report_progress) {
    options.stop = stop;
    options.progress = report_progress;
    popglm::fit_poisson_population(design, counts, mask, ridge, rows, options, coef, intercept,
                                   report, n_threads);
  });
}

template <class Design>
void def_kernels(py::module_& m) {
  m.def(
      "weighted_gram",
      [](const Eigen::Ref<const Design>& design, const Eigen::Ref<const IndexVector>& rows,
         const Eigen::Ref<const Eigen::VectorXd>& weights, bool single_precision) {
        return popglm::weighted_gram(design, rows, weights, single_precision);
      },
      py::arg("design").noconvert(), py::arg("rows").noconvert(), py::arg("weights").noconvert(),
      py::arg("single_precision"), py::call_guard<py::gil_scoped_release>(),
      "[1, X]^T diag(weights) [1, X] over rows: the Hessian kernel.");
  m.def(
      "design_multiply",
      [](const Eigen::Ref<const Design>& design, const Eigen::Ref<const IndexVector>& rows,
         const Eigen::Ref<const MatrixColMajor>& coefs, const Eigen::Ref<const Eigen::VectorXd>& offsets,
         Eigen::Ref<MatrixColMajor> out, int n_threads) {
        popglm::design_multiply(design, rows, coefs, offsets, out, n_threads);
      },
      py::arg("design").noconvert(), py::arg("rows").noconvert(), py::arg("coefs").noconvert(),
      py::arg("offsets").noconvert(), py::arg("out").noconvert(), py::arg("n_threads"),
      py::call_guard<py::gil_scoped_release>(),
      "out = X[rows] @ coefs + offsets: the batched step product.");
  m.def(
      "design_transpose_multiply",
      [](const Eigen::Ref<const Design>& design, const Eigen::Ref<const IndexVector>& rows,
         const Eigen::Ref<const MatrixColMajor>& residual, int n_threads) {
        return popglm::design_transpose_multiply(design, rows, residual, n_threads);
      },
      py::arg("design").noconvert(), py::arg("rows").noconvert(), py::arg("residual").noconvert(),
      py::arg("n_threads"), py::call_guard<py::gil_scoped_release>(),
      "[1, X[rows]]^T @ residual / len(rows): the batched gradient product.");
}

template <class Design>
void def_fit(py::module_& m) {
  // The fits release the GIL inside (run_interruptibly) so that Ctrl-C can stop them.
  m.def("fit_poisson_population", &fit_population<Design>, py::arg("design").noconvert(),
        py::arg("counts").noconvert(), py::arg("mask").noconvert(), py::arg("ridge").noconvert(), py::arg("rows").noconvert(),
        py::arg("coef").noconvert(), py::arg("intercept").noconvert(),
        py::arg("status").noconvert(), py::arg("n_iter").noconvert(),
        py::arg("gradient_norm").noconvert(), py::arg("objective").noconvert(),
        py::arg("n_hessian").noconvert(), py::arg("tol"),
        py::arg("max_iter"), py::arg("n_threads"), py::arg("progress") = py::none(),
        "Per-neuron masked Poisson Newton solves. coef/intercept hold the start on entry and the\n"
        "solution on exit; status, n_iter, gradient_norm, objective, n_hessian receive the\n"
        "diagnostics.");
}

void fit_population_history(const Eigen::Ref<const MatrixColMajor>& inputs,
                            const Eigen::Ref<const MatrixColMajor>& kernels,
                            const Eigen::Ref<const MatrixColMajor>& counts,
                            const Eigen::Ref<const MaskMatrix>& mask,
                            const Eigen::Ref<const MatrixColMajor>& ridge,
                            const Eigen::Ref<const IndexVector>& rows,
                            Eigen::Ref<MatrixColMajor> coef, Eigen::Ref<Eigen::VectorXd> intercept,
                            Eigen::Ref<IntVector> status, Eigen::Ref<IntVector> n_iter,
                            Eigen::Ref<Eigen::VectorXd> gradient_norm,
                            Eigen::Ref<Eigen::VectorXd> objective, Eigen::Ref<IntVector> n_hessian,
                            double tol, int max_iter, int n_threads,
                            const py::object& progress) {
  NewtonOptions options;
  options.tol = tol;
  options.max_iter = max_iter;
  PopulationFitReport report{status, n_iter, gradient_norm, objective, n_hessian};
  run_interruptibly(progress, [&](const StopToken* stop, const ProgressFunction& report_progress) {
    options.stop = stop;
    options.progress = report_progress;
    popglm::fit_poisson_population_history(inputs, kernels, counts, mask, ridge, rows, options,
                                           coef, intercept, report, n_threads);
  });
}

void simulate(const Eigen::Ref<const MatrixColMajor>& coupling,
              const Eigen::Ref<const MatrixColMajor>& basis,
              const Eigen::Ref<const MatrixColMajor>& drive,
              const Eigen::Ref<const Eigen::VectorXd>& intercept,
              const Eigen::Ref<const MatrixColMajor>& init_y, const std::string& link,
              std::uint64_t seed, double max_rate, Eigen::Ref<MatrixColMajor> spikes,
              Eigen::Ref<MatrixColMajor> rates) {
  InverseLink inverse_link;
  if (link == "exp") {
    inverse_link = InverseLink::exp;
  } else if (link == "softplus") {
    inverse_link = InverseLink::softplus;
  } else {
    throw std::invalid_argument("simulate_recurrent: link must be 'exp' or 'softplus'");
  }
  popglm::kernels::active().simulate_recurrent(coupling, basis, drive, intercept, init_y,
                                               inverse_link, seed, max_rate, spikes, rates);
}

ObservationFamily checked_family(int family) {
  if (family < 0 || family > static_cast<int>(ObservationFamily::gaussian_identity))
    throw std::invalid_argument("fit_glm_population: unknown observation family code");
  return static_cast<ObservationFamily>(family);
}

/// Positional arguments shared by the sparse fits after the design: see fit_poisson_population.
template <class Design>
void fit_sparse(const Eigen::Ref<const Design>& design, const Eigen::Ref<const MatrixColMajor>& counts,
                const Eigen::Ref<const MaskMatrix>& mask, const Eigen::Ref<const MatrixColMajor>& l1,
                const Eigen::Ref<const MatrixColMajor>& l2, const Eigen::Ref<const IndexMatrix>& group,
                const Eigen::Ref<const MatrixColMajor>& group_weight,
                const Eigen::Ref<const IndexVector>& rows, int family, double scale,
                Eigen::Ref<MatrixColMajor> coef,
                Eigen::Ref<Eigen::VectorXd> intercept, Eigen::Ref<IntVector> status,
                Eigen::Ref<IntVector> n_iter, Eigen::Ref<Eigen::VectorXd> gradient_norm,
                Eigen::Ref<Eigen::VectorXd> objective, Eigen::Ref<IntVector> n_hessian, double tol,
                int max_iter, int n_threads, const py::object& progress) {
  NewtonOptions options;
  options.tol = tol;
  options.max_iter = max_iter;
  PopulationFitReport report{status, n_iter, gradient_norm, objective, n_hessian};
  const SparsePenalty penalty{l1, l2, group, group_weight};
  const ObservationFamily observation = checked_family(family);
  run_interruptibly(progress, [&](const StopToken* stop, const ProgressFunction& report_progress) {
    options.stop = stop;
    options.progress = report_progress;
    popglm::fit_glm_population(design, counts, mask, penalty, rows, observation, scale, options,
                               coef, intercept, report, n_threads);
  });
}

void fit_sparse_history(const Eigen::Ref<const MatrixColMajor>& inputs,
                        const Eigen::Ref<const MatrixColMajor>& kernels,
                        const Eigen::Ref<const MatrixColMajor>& counts,
                        const Eigen::Ref<const MaskMatrix>& mask,
                        const Eigen::Ref<const MatrixColMajor>& l1,
                        const Eigen::Ref<const MatrixColMajor>& l2,
                        const Eigen::Ref<const IndexMatrix>& group,
                        const Eigen::Ref<const MatrixColMajor>& group_weight,
                        const Eigen::Ref<const IndexVector>& rows, int family, double scale,
                        Eigen::Ref<MatrixColMajor> coef,
                        Eigen::Ref<Eigen::VectorXd> intercept, Eigen::Ref<IntVector> status,
                        Eigen::Ref<IntVector> n_iter, Eigen::Ref<Eigen::VectorXd> gradient_norm,
                        Eigen::Ref<Eigen::VectorXd> objective, Eigen::Ref<IntVector> n_hessian,
                        double tol, int max_iter, int n_threads,
                        const py::object& progress) {
  NewtonOptions options;
  options.tol = tol;
  options.max_iter = max_iter;
  PopulationFitReport report{status, n_iter, gradient_norm, objective, n_hessian};
  const SparsePenalty penalty{l1, l2, group, group_weight};
  const ObservationFamily observation = checked_family(family);
  run_interruptibly(progress, [&](const StopToken* stop, const ProgressFunction& report_progress) {
    options.stop = stop;
    options.progress = report_progress;
    popglm::fit_glm_population_history(inputs, kernels, counts, mask, penalty, rows, observation,
                                       scale, options, coef, intercept, report, n_threads);
  });
}

template <class Design>
void def_sparse(py::module_& m) {
  m.def("fit_glm_population", &fit_sparse<Design>, py::arg("design").noconvert(),
        py::arg("counts").noconvert(), py::arg("mask").noconvert(), py::arg("l1").noconvert(),
        py::arg("l2").noconvert(), py::arg("group").noconvert(),
        py::arg("group_weight").noconvert(), py::arg("rows").noconvert(), py::arg("family"),
        py::arg("scale"), py::arg("coef").noconvert(), py::arg("intercept").noconvert(),
        py::arg("status").noconvert(), py::arg("n_iter").noconvert(),
        py::arg("gradient_norm").noconvert(), py::arg("objective").noconvert(),
        py::arg("n_hessian").noconvert(), py::arg("tol"), py::arg("max_iter"),
        py::arg("n_threads"), py::arg("progress") = py::none(),
        "Per-neuron GLM fits (any family code, L1/L2/group penalties) by proximal Newton.");
}

}  // namespace

void register_glm(py::module_& m) {
  def_fit<MatrixColMajor>(m);
  def_fit<MatrixRowMajor>(m);
  def_kernels<MatrixColMajor>(m);
  def_kernels<MatrixRowMajor>(m);
  def_sparse<MatrixColMajor>(m);
  def_sparse<MatrixRowMajor>(m);
  m.def("fit_glm_population_history", &fit_sparse_history,
        py::arg("inputs").noconvert(), py::arg("kernels").noconvert(),
        py::arg("counts").noconvert(), py::arg("mask").noconvert(), py::arg("l1").noconvert(),
        py::arg("l2").noconvert(), py::arg("group").noconvert(),
        py::arg("group_weight").noconvert(), py::arg("rows").noconvert(), py::arg("family"),
        py::arg("scale"), py::arg("coef").noconvert(), py::arg("intercept").noconvert(),
        py::arg("status").noconvert(), py::arg("n_iter").noconvert(),
        py::arg("gradient_norm").noconvert(), py::arg("objective").noconvert(),
        py::arg("n_hessian").noconvert(), py::arg("tol"), py::arg("max_iter"),
        py::arg("n_threads"), py::arg("progress") = py::none(),
        "fit_glm_population on history features without forming them.");

  m.def("fit_poisson_population_history", &fit_population_history,
        py::arg("inputs").noconvert(), py::arg("kernels").noconvert(),
        py::arg("counts").noconvert(), py::arg("mask").noconvert(), py::arg("ridge").noconvert(), py::arg("rows").noconvert(),
        py::arg("coef").noconvert(), py::arg("intercept").noconvert(),
        py::arg("status").noconvert(), py::arg("n_iter").noconvert(),
        py::arg("gradient_norm").noconvert(), py::arg("objective").noconvert(),
        py::arg("n_hessian").noconvert(), py::arg("tol"), py::arg("max_iter"),
        py::arg("n_threads"), py::arg("progress") = py::none(),
        "fit_poisson_population on convolve_history(inputs, kernels) without forming it.");
  m.def("simulate_recurrent", &simulate, py::arg("coupling").noconvert(),
        py::arg("basis").noconvert(), py::arg("drive").noconvert(),
        py::arg("intercept").noconvert(), py::arg("init_y").noconvert(), py::arg("link"),
        py::arg("seed"), py::arg("max_rate"), py::arg("spikes").noconvert(),
        py::arg("rates").noconvert(), py::call_guard<py::gil_scoped_release>(),
        "Bin-by-bin simulation of a coupled Poisson network; writes spikes and rates.");
  m.def("history_linear_predictor", &popglm::history_linear_predictor,
        py::arg("inputs").noconvert(), py::arg("kernels").noconvert(),
        py::arg("coef").noconvert(), py::arg("intercept").noconvert(),
        py::arg("out").noconvert(), py::arg("n_threads"),
        py::call_guard<py::gil_scoped_release>(),
        "out = convolve_history(inputs, kernels) @ coef + intercept; NaN rows before the window.");

  py::enum_<FitStatus>(m, "FitStatus")
      .value("converged", FitStatus::converged)
      .value("max_iter_reached", FitStatus::max_iter_reached)
      .value("line_search_failed", FitStatus::line_search_failed)
      .value("mle_at_infinity", FitStatus::mle_at_infinity)
      .value("no_valid_rows", FitStatus::no_valid_rows)
      .value("internal_error", FitStatus::internal_error)
      .value("interrupted", FitStatus::interrupted);
}

}  // namespace popglm::bindings
