// Shared declarations for the pybind11 bindings of popglm._core.
#pragma once

#include <pybind11/eigen.h>
#include <pybind11/pybind11.h>

namespace popglm::bindings {

namespace py = pybind11;

void register_convolve(py::module_& m);
void register_glm(py::module_& m);

}  // namespace popglm::bindings
