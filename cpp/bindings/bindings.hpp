// Shared declarations for the pybind11 bindings of popglm._core.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <thread>

#include <pybind11/eigen.h>
#include <pybind11/pybind11.h>

#include "popglm/stop_token.hpp"

namespace popglm::bindings {

namespace py = pybind11;

/// True once the interpreter has begun to shut down.
inline bool interpreter_finalizing() {
#if PY_VERSION_HEX >= 0x030D0000
  return Py_IsFinalizing() != 0;
#else
  return _Py_IsFinalizing() != 0;
#endif
}

/// Releases the GIL for a kernel (pybind11's call_guard) and takes it back afterwards, unless
/// the interpreter is shutting down by then. A daemon thread that asks for the GIL during
/// shutdown is ended by CPython (< 3.14) with pthread_exit, whose unwinding through a destructor
/// or an OpenMP region aborts the process ("terminate called without an active exception").
/// Such a thread instead waits here, outside Python, until the process exits: what CPython 3.14
/// does with threads that ask for the GIL too late.
class GilRelease {
 public:
  GilRelease() : state_(PyEval_SaveThread()) {}
  GilRelease(const GilRelease&) = delete;
  GilRelease& operator=(const GilRelease&) = delete;
  // noexcept(false): should shutdown begin between the check and taking the GIL, CPython's
  // thread exit unwinds from here into pybind11, which lets it pass.
  ~GilRelease() noexcept(false) {
    while (interpreter_finalizing()) std::this_thread::sleep_for(std::chrono::hours(1));
    PyEval_RestoreThread(state_);
  }

 private:
  PyThreadState* state_;
};

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
  // During shutdown the poll stops the kernel without asking for the GIL (see GilRelease).
  const popglm::StopToken stop([] {
    if (interpreter_finalizing()) return true;
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
      if (interpreter_finalizing()) {
        token->request();
        return;
      }
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
    GilRelease release;
    work(&stop, progress);
  }
  if (stop.requested()) throw py::error_already_set();
}

void register_convolve(py::module_& m);
void register_glm(py::module_& m);
void register_simulate(py::module_& m);

}  // namespace popglm::bindings
