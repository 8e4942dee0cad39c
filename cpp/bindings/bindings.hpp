// Shared declarations for the pybind11 bindings of popglm._core.
#pragma once

#include <pybind11/eigen.h>
#include <pybind11/pybind11.h>

#include "popglm/stop_token.hpp"

namespace popglm::bindings {

namespace py = pybind11;

/// Runs `work(stop)` with the GIL released, for kernels that may run for minutes. The token polls
/// Python's signal handlers from this thread (taking the GIL for a moment every 20 ms), so Ctrl-C
/// ends the kernel early; the KeyboardInterrupt the handler raised is re-raised here once the
/// kernel has returned, and the incomplete outputs are never seen by Python code.
template <class Work>
void run_interruptibly(Work&& work) {
  const popglm::StopToken stop([] {
    py::gil_scoped_acquire gil;
    return PyErr_CheckSignals() != 0;
  });
  {
    // Safe: the kernels read and write only the NumPy buffers handed to them, which the caller
    // keeps alive, and touch Python objects only through the poll above, which takes the GIL.
    py::gil_scoped_release release;
    work(&stop);
  }
  if (stop.requested()) throw py::error_already_set();
}

void register_convolve(py::module_& m);
void register_glm(py::module_& m);

}  // namespace popglm::bindings
