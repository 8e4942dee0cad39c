// Shared declarations for the pybind11 bindings of popglm._core.
#pragma once

#include <chrono>
#include <functional>
#include <memory>

#include <pybind11/eigen.h>
#include <pybind11/pybind11.h>

#include "popglm/stop_token.hpp"

namespace popglm::bindings {

namespace py = pybind11;

/// Progress reports from the core: (neurons done, neurons, largest max |gradient| running).
using ProgressFunction = std::function<void(Eigen::Index, Eigen::Index, double)>;

/// Runs `work(stop, progress)` with the GIL released, for kernels that may run for minutes.
/// `stop` polls Python's signal handlers from this thread (taking the GIL for a moment every
/// 20 ms), so Ctrl-C ends the kernel early. `progress` calls the Python callable `callback`
/// (unless it is None) at most every 100 ms, with the GIL taken; an exception it raises stops the
/// kernel too. The pending Python exception is re-raised here once the kernel has returned, and
/// the incomplete outputs are never seen by Python code.
template <class Work>
void run_interruptibly(const py::object& callback, Work&& work) {
  const popglm::StopToken stop([] {
    py::gil_scoped_acquire gil;
    return PyErr_CheckSignals() != 0;
  });
  ProgressFunction progress;
  if (!callback.is_none()) {
    // Captures pointers only: copying the function must not touch reference counts without the GIL.
    auto last_call = std::make_shared<std::chrono::steady_clock::time_point>(
        std::chrono::steady_clock::now());
    const py::object* function = &callback;
    const popglm::StopToken* token = &stop;
    progress = [function, token, last_call](Eigen::Index done, Eigen::Index total, double gradient) {
      const auto now = std::chrono::steady_clock::now();
      if (now - *last_call < std::chrono::milliseconds(100)) return;
      *last_call = now;
      py::gil_scoped_acquire gil;
      try {
        (*function)(done, total, gradient);
      } catch (py::error_already_set& error) {
        error.restore();
        token->request();
      }
    };
  }
  {
    // Safe: the kernels read and write only the NumPy buffers handed to them, which the caller
    // keeps alive, and touch Python objects only in the two callbacks above, which take the GIL.
    py::gil_scoped_release release;
    work(&stop, progress);
  }
  if (stop.requested()) throw py::error_already_set();
}

void register_convolve(py::module_& m);
void register_glm(py::module_& m);
void register_simulate(py::module_& m);

}  // namespace popglm::bindings
