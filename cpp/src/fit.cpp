// fit_population: the problem is checked here, once, for every design source and method; then
// the method is picked (engines.hpp).
#include "popglm/fit.hpp"

#include <cmath>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "design_rows.hpp"
#include "engines.hpp"

namespace popglm {
namespace {

void require(bool condition, const char* message) {
  if (!condition) throw std::invalid_argument(std::string("fit_population: ") + message);
}

template <class Matrix>
bool finite_and_non_negative(const Matrix& values) {
  return values.allFinite() && (values.array() >= 0.0).all();
}

void check_problem(Index n_samples, Index n_features, const Eigen::Ref<const MatrixColMajor>& counts,
                   const Eigen::Ref<const IndexVector>& rows, const Eigen::Ref<const MaskMatrix>& mask,
                   const Penalty& penalty, const FitOptions& options, const Eigen::Ref<MatrixColMajor>& coef,
                   const Eigen::Ref<Eigen::VectorXd>& intercept, const PopulationFitReport& report) {
  const Index n_neurons = counts.cols();
  require(counts.rows() == n_samples, "design and counts differ in n_samples");
  require(mask.rows() == n_features && mask.cols() == n_neurons, "mask must have shape (n_features, n_neurons)");
  auto per_coefficient = [&](Index rows_, Index cols_) {
    return (rows_ == 0 && cols_ == 0) || (rows_ == n_features && cols_ == n_neurons);
  };
  require(per_coefficient(penalty.l1.rows(), penalty.l1.cols()) && per_coefficient(penalty.l2.rows(), penalty.l2.cols()) &&
              per_coefficient(penalty.group.rows(), penalty.group.cols()) &&
              (penalty.group_weight.size() == 0 || penalty.group_weight.cols() == n_neurons),
          "penalty arrays must be empty or have shape (n_features, n_neurons) (group_weight: (n_groups, n_neurons))");
  require(finite_and_non_negative(penalty.l1) && finite_and_non_negative(penalty.l2) &&
              finite_and_non_negative(penalty.group_weight),
          "penalty strengths must be finite and >= 0");
  const Index n_groups = penalty.group_weight.rows();
  require(!((penalty.group.array() < -1).any() || (penalty.group.array() >= n_groups).any()),
          "group ids must be -1 or < n_groups");
  require(coef.rows() == n_features && coef.cols() == n_neurons && intercept.size() == n_neurons,
          "coef/intercept have the wrong shape");
  require(report.status.size() == n_neurons && report.n_iter.size() == n_neurons &&
              report.gradient_norm.size() == n_neurons && report.objective.size() == n_neurons &&
              report.n_hessian.size() == n_neurons,
          "report arrays need n_neurons entries");
  for (Index i = 0; i < rows.size(); ++i) require(rows[i] >= 0 && rows[i] < n_samples, "row index out of range");
  require(options.tol > 0.0 && options.max_iter >= 0, "tol must be > 0 and max_iter >= 0");
  require(options.scale > 0.0 && std::isfinite(options.scale), "scale must be finite and > 0");
  const auto family = static_cast<std::int32_t>(options.family);
  require(family >= 0 && family <= static_cast<std::int32_t>(ObservationFamily::gaussian_identity),
          "unknown observation family");
}

}  // namespace

bool Penalty::smooth() const {
  return (l1.size() == 0 || l1.isZero(0.0)) && (group.size() == 0 || (group.array() < 0).all());
}

void fit_population(const Design& design, const Eigen::Ref<const MatrixColMajor>& counts,
                    const Eigen::Ref<const IndexVector>& rows, const Eigen::Ref<const MaskMatrix>& mask,
                    const Penalty& penalty, const FitOptions& options, Eigen::Ref<MatrixColMajor> coef,
                    Eigen::Ref<Eigen::VectorXd> intercept, PopulationFitReport& report) {
  const detail::Problem problem{counts, rows, mask, penalty, options};
  // Poisson with the exp link and at most an l2 penalty has the fast smooth engine.
  const bool smooth_poisson = options.family == ObservationFamily::poisson_exp && penalty.smooth();
  auto run = [&](const auto& source) {
    check_problem(source.rows(), source.cols(), counts, rows, mask, penalty, options, coef, intercept, report);
    if (rows.size() == 0) {
      report.status.setConstant(static_cast<std::int32_t>(FitStatus::no_valid_rows));
      report.n_iter.setZero();
      report.n_hessian.setZero();
      report.gradient_norm.setConstant(std::numeric_limits<double>::quiet_NaN());
      report.objective.setConstant(std::numeric_limits<double>::quiet_NaN());
      return;
    }
    if (smooth_poisson) {
      detail::smooth_poisson_newton(source, problem, coef, intercept, report);
    } else {
      detail::proximal_newton(source, problem, coef, intercept, report);
    }
  };
  std::visit(
      [&](const auto& rows_of) {
        using Kind = std::decay_t<decltype(rows_of)>;
        if constexpr (std::is_same_v<Kind, HistoryDesign>) {
          const Index window = rows_of.kernels.rows();
          if (window < 1) throw std::invalid_argument("fit_population: empty kernels");
          for (Index i = 0; i < rows.size(); ++i)
            if (rows[i] < window) throw std::invalid_argument("fit_population: rows before the first full window");
          run(detail::HistoryRows(rows_of.inputs, rows_of.kernels));
        } else {
          run(detail::DenseRows<Kind>(rows_of));
        }
      },
      design);
}

}  // namespace popglm
