#include "bindings.hpp"
#include "kernels.hpp"
#include "popglm/constants.hpp"

#include <string>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace {

namespace py = pybind11;

/// True when this CPU runs x86-64-v3 code (AVX2 and FMA), i.e. popglm._kernels_v3 is usable.
bool cpu_supports_x86_64_v3() {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
         __builtin_cpu_supports("bmi2");
#else
  return false;
#endif
}

/// True when this CPU runs x86-64-v4 code (AVX-512 F/BW/CD/DQ/VL), i.e. popglm._kernels_v4 is usable.
bool cpu_supports_x86_64_v4() {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  __builtin_cpu_init();
  return cpu_supports_x86_64_v3() && __builtin_cpu_supports("avx512f") &&
         __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512cd") &&
         __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
#else
  return false;
#endif
}

/// Threads an OpenMP region started by the calling thread would get: OMP_NUM_THREADS, or what
/// threadpoolctl's threadpool_limits set through omp_set_num_threads.
int openmp_max_threads() {
#ifdef _OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}

/// Make the kernel table in `capsule` (a kernel module's `table`) the one every kernel runs in.
void use_kernels(const py::object& table) {
  constexpr const char* kName = "popglm.kernels.Table";
  if (!PyCapsule_IsValid(table.ptr(), kName))
    throw py::type_error("use_kernels: expected the table capsule of a popglm kernel module");
  popglm::kernels::set_active(*static_cast<const popglm::kernels::Table*>(PyCapsule_GetPointer(table.ptr(), kName)));
}

}  // namespace

PYBIND11_MODULE(_core, m) {
  m.doc() = "popglm's C++ kernels. Private: use popglm.basis and popglm.glm.";
  popglm::bindings::register_convolve(m);
  popglm::bindings::register_glm(m);
  popglm::bindings::register_simulate(m);
  m.def("cpu_supports_x86_64_v3", &cpu_supports_x86_64_v3);
  m.def("cpu_supports_x86_64_v4", &cpu_supports_x86_64_v4);
  m.def("openmp_max_threads", &openmp_max_threads);
  m.def("use_kernels", &use_kernels, py::arg("table"),
        "Run every kernel in the given build (popglm._kernels_v3.table, ...); see popglm._native.");
  m.def("active_isa", [] { return std::string(popglm::kernels::active().isa); },
        "The instruction set of the kernels in use: baseline, x86-64-v3 or x86-64-v4.");
  m.attr("kernels") = py::capsule(
      const_cast<popglm::kernels::Table*>(&popglm::kernels::table()), "popglm.kernels.Table");
  m.attr("ARMIJO") = popglm::kArmijo;
  m.attr("MAX_HALVINGS") = popglm::kMaxHalvings;
  m.attr("RANK_TOLERANCE") = popglm::kRankTolerance;
#ifdef _OPENMP
  m.attr("openmp") = true;
#else
  m.attr("openmp") = false;
#endif
}
