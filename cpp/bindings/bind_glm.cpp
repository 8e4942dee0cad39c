#include <string>

#include "bindings.hpp"
#include "popglm/fit.hpp"
#include "popglm/products.hpp"

namespace popglm::bindings {
namespace {

/// A NumPy argument viewed as an Eigen::Ref without a copy (as py::arg(...).noconvert() would),
/// or a TypeError naming it.
template <class Ref>
class View {
 public:
  View(const py::handle& value, const char* name, const char* expected) {
    if (!caster_.load(value, /*convert=*/false))
      throw py::type_error(std::string("fit_population: ") + name + " must be " + expected);
  }
  Ref get() { return py::detail::cast_op<Ref>(caster_); }

 private:
  py::detail::make_caster<Ref> caster_;
};

using MatrixView = View<Eigen::Ref<const MatrixColMajor>>;

/// The design argument of fit_population: a float64 array (either order) or a tuple
/// (inputs, kernels) of Fortran-ordered float64 arrays for history features.
struct DesignArgument {
  explicit DesignArgument(const py::object& design) {
    if (py::isinstance<py::tuple>(design)) {
      const auto parts = design.cast<py::tuple>();
      if (parts.size() != 2) throw py::type_error("fit_population: a history design is the tuple (inputs, kernels)");
      inputs.emplace(parts[0], "design inputs", "a Fortran-ordered float64 array");
      kernels.emplace(parts[1], "design kernels", "a Fortran-ordered float64 array");
      value.emplace(HistoryDesign{inputs->get(), kernels->get()});
    } else if (col_major.load(design, false)) {
      value.emplace(py::detail::cast_op<Eigen::Ref<const MatrixColMajor>>(col_major));
    } else if (row_major.load(design, false)) {
      value.emplace(py::detail::cast_op<Eigen::Ref<const MatrixRowMajor>>(row_major));
    } else {
      throw py::type_error("fit_population: design must be a 2-D float64 array in C or Fortran order, or (inputs, kernels)");
    }
  }
  std::optional<MatrixView> inputs, kernels;
  py::detail::make_caster<Eigen::Ref<const MatrixColMajor>> col_major;
  py::detail::make_caster<Eigen::Ref<const MatrixRowMajor>> row_major;
  std::optional<Design> value;
};

/// The penalty argument: a dict with any of l1, l2 (float64, Fortran), group (int64, Fortran),
/// group_weight (float64, Fortran); a missing or None entry is an empty term.
struct PenaltyArgument {
  explicit PenaltyArgument(const py::object& penalty) {
    const py::dict terms = penalty.is_none() ? py::dict() : penalty.cast<py::dict>();
    for (auto item : terms) {
      const auto key = item.first.cast<std::string>();
      if (key != "l1" && key != "l2" && key != "group" && key != "group_weight")
        throw py::value_error("fit_population: unknown penalty term '" + key + "'");
    }
    auto term = [&](const char* key) { return terms.contains(key) && !terms[key].is_none(); };
    if (term("l1")) l1.emplace(terms["l1"], "penalty['l1']", "a Fortran-ordered float64 array");
    if (term("l2")) l2.emplace(terms["l2"], "penalty['l2']", "a Fortran-ordered float64 array");
    if (term("group")) group.emplace(terms["group"], "penalty['group']", "a Fortran-ordered int64 array");
    if (term("group_weight"))
      group_weight.emplace(terms["group_weight"], "penalty['group_weight']", "a Fortran-ordered float64 array");
  }
  Penalty get() {
    return Penalty{l1 ? l1->get() : Eigen::Ref<const MatrixColMajor>(empty_),
                   l2 ? l2->get() : Eigen::Ref<const MatrixColMajor>(empty_),
                   group ? group->get() : Eigen::Ref<const IndexMatrix>(empty_group_),
                   group_weight ? group_weight->get() : Eigen::Ref<const MatrixColMajor>(empty_)};
  }
  std::optional<MatrixView> l1, l2, group_weight;
  std::optional<View<Eigen::Ref<const IndexMatrix>>> group;
  MatrixColMajor empty_;
  IndexMatrix empty_group_;
};

py::dict fit(const py::object& design, const Eigen::Ref<const MatrixColMajor>& counts,
             const Eigen::Ref<const IndexVector>& rows, const Eigen::Ref<const MaskMatrix>& mask,
             Eigen::Ref<MatrixColMajor> coef, Eigen::Ref<Eigen::VectorXd> intercept, FitOptions options,
             const py::object& penalty, const py::object& progress) {
  DesignArgument design_argument(design);
  PenaltyArgument penalty_argument(penalty);
  const Penalty terms = penalty_argument.get();
  const Index n_neurons = counts.cols();
  IntVector status(n_neurons), n_iter(n_neurons), n_hessian(n_neurons);
  Eigen::VectorXd gradient_norm(n_neurons), objective(n_neurons);
  PopulationFitReport report{status, n_iter, gradient_norm, objective, n_hessian};
  run_interruptibly(progress, [&](const StopToken* stop, const ProgressFunction& report_progress) {
    options.stop = stop;
    options.progress = report_progress;
    popglm::fit_population(*design_argument.value, counts, rows, mask, terms, options, coef, intercept, report);
  });
  py::dict out;
  out["status"] = py::cast(status);
  out["n_iter"] = py::cast(n_iter);
  out["gradient_norm"] = py::cast(gradient_norm);
  out["objective"] = py::cast(objective);
  out["n_hessian"] = py::cast(n_hessian);
  return out;
}

template <class Design>
void def_products(py::module_& m) {
  m.def(
      "weighted_gram",
      [](const Eigen::Ref<const Design>& design, const Eigen::Ref<const IndexVector>& rows,
         const Eigen::Ref<const Eigen::VectorXd>& weights, bool single_precision) {
        return popglm::weighted_gram(design, rows, weights, single_precision);
      },
      py::arg("design").noconvert(), py::arg("rows").noconvert(), py::arg("weights").noconvert(),
      py::arg("single_precision"), py::call_guard<GilRelease>(),
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
      py::call_guard<GilRelease>(), "out = X[rows] @ coefs + offsets: the batched step product.");
  m.def(
      "design_transpose_multiply",
      [](const Eigen::Ref<const Design>& design, const Eigen::Ref<const IndexVector>& rows,
         const Eigen::Ref<const MatrixColMajor>& residual, int n_threads) {
        return popglm::design_transpose_multiply(design, rows, residual, n_threads);
      },
      py::arg("design").noconvert(), py::arg("rows").noconvert(), py::arg("residual").noconvert(),
      py::arg("n_threads"), py::call_guard<GilRelease>(),
      "[1, X[rows]]^T @ residual / len(rows): the batched gradient product.");
}

}  // namespace

void register_glm(py::module_& m) {
  py::enum_<FitStatus>(m, "FitStatus")
      .value("converged", FitStatus::converged)
      .value("max_iter_reached", FitStatus::max_iter_reached)
      .value("line_search_failed", FitStatus::line_search_failed)
      .value("mle_at_infinity", FitStatus::mle_at_infinity)
      .value("no_valid_rows", FitStatus::no_valid_rows)
      .value("internal_error", FitStatus::internal_error)
      .value("interrupted", FitStatus::interrupted);
  py::enum_<ObservationFamily>(m, "ObservationFamily")
      .value("poisson_exp", ObservationFamily::poisson_exp)
      .value("poisson_softplus", ObservationFamily::poisson_softplus)
      .value("bernoulli_logistic", ObservationFamily::bernoulli_logistic)
      .value("gamma_inverse", ObservationFamily::gamma_inverse)
      .value("gamma_exp", ObservationFamily::gamma_exp)
      .value("negative_binomial_exp", ObservationFamily::negative_binomial_exp)
      .value("gaussian_identity", ObservationFamily::gaussian_identity);
  py::class_<CurvatureCache, std::shared_ptr<CurvatureCache>>(
      m, "CurvatureCache", "Hessians kept between the fits of a regularisation path (see popglm/fit.hpp).")
      .def(py::init<>());
  py::class_<FitOptions>(m, "FitOptions", "Settings of one fit_population call.")
      .def(py::init([](ObservationFamily family, double scale, double tol, int max_iter, int n_threads,
                       bool detect_divergence) {
             FitOptions options;
             options.family = family;
             options.scale = scale;
             options.tol = tol;
             options.max_iter = max_iter;
             options.n_threads = n_threads;
             options.detect_divergence = detect_divergence;
             return options;
           }),
           py::arg("family") = ObservationFamily::poisson_exp, py::arg("scale") = 1.0, py::arg("tol") = 1e-8,
           py::arg("max_iter") = 100, py::arg("n_threads") = 1, py::arg("detect_divergence") = true)
      .def_readwrite("family", &FitOptions::family)
      .def_readwrite("scale", &FitOptions::scale)
      .def_readwrite("tol", &FitOptions::tol)
      .def_readwrite("max_iter", &FitOptions::max_iter)
      .def_readwrite("n_threads", &FitOptions::n_threads)
      .def_readwrite("detect_divergence", &FitOptions::detect_divergence)
      .def_readwrite("curvature", &FitOptions::curvature);

  // Releases the GIL inside (run_interruptibly) so that Ctrl-C can stop it.
  m.def("fit_population", &fit, py::arg("design"), py::arg("counts").noconvert(), py::arg("rows").noconvert(),
        py::arg("mask").noconvert(), py::arg("coef").noconvert(), py::arg("intercept").noconvert(),
        py::arg("options"), py::arg("penalty") = py::none(), py::arg("progress") = py::none(),
        "One GLM per column of counts (see popglm/fit.hpp). design: a float64 array (C or Fortran\n"
        "order) or (inputs, kernels) for history features; penalty: a dict of any of l1, l2, group,\n"
        "group_weight. coef/intercept hold the start on entry and the solution on exit. Returns the\n"
        "per-neuron status, n_iter, gradient_norm, objective and n_hessian.");

  def_products<MatrixColMajor>(m);
  def_products<MatrixRowMajor>(m);
  m.def("history_linear_predictor", &popglm::history_linear_predictor, py::arg("inputs").noconvert(),
        py::arg("kernels").noconvert(), py::arg("coef").noconvert(), py::arg("intercept").noconvert(),
        py::arg("out").noconvert(), py::arg("n_threads"), py::call_guard<GilRelease>(),
        "out = convolve_history(inputs, kernels) @ coef + intercept; NaN rows before the window.");
}

}  // namespace popglm::bindings
