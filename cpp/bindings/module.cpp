#include "bindings.hpp"

PYBIND11_MODULE(_core, m) {
  m.doc() = "popglm's C++ kernels. Private: use popglm.basis and popglm.glm.";
  popglm::bindings::register_convolve(m);
  popglm::bindings::register_glm(m);
#ifdef _OPENMP
  m.attr("openmp") = true;
#else
  m.attr("openmp") = false;
#endif
}
