#include <string>

#include "bindings.hpp"
#include "kernels.hpp"
#include "popglm/simulate.hpp"

namespace popglm::bindings {
namespace {

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

}  // namespace

void register_simulate(py::module_& m) {
  m.def("simulate_recurrent", &simulate, py::arg("coupling").noconvert(),
        py::arg("basis").noconvert(), py::arg("drive").noconvert(),
        py::arg("intercept").noconvert(), py::arg("init_y").noconvert(), py::arg("link"),
        py::arg("seed"), py::arg("max_rate"), py::arg("spikes").noconvert(),
        py::arg("rates").noconvert(), py::call_guard<GilRelease>(),
        "Bin-by-bin simulation of a coupled Poisson network; writes spikes and rates.");
}

}  // namespace popglm::bindings
