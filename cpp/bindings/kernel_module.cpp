// A kernel module (popglm._kernels_v3, _kernels_v4): one instruction set's build of the kernels,
// handed to popglm._core as a capsule holding its table (see cpp/src/kernels.hpp). Only Python's
// C API: the bindings proper are compiled once, in _core.
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "kernels.hpp"

#define POPGLM_CONCAT(a, b) a##b
#define POPGLM_INIT(name) POPGLM_CONCAT(PyInit_, name)
#define POPGLM_STRING(name) #name
#define POPGLM_NAME(name) POPGLM_STRING(name)

namespace {

PyModuleDef module_definition = {
    PyModuleDef_HEAD_INIT, "popglm." POPGLM_NAME(POPGLM_KERNEL_MODULE),
    "popglm's kernels for one instruction set. Private: popglm._native loads them.", -1,
    nullptr, nullptr, nullptr, nullptr, nullptr};

}  // namespace

PyMODINIT_FUNC POPGLM_INIT(POPGLM_KERNEL_MODULE)(void) {
  PyObject* module = PyModule_Create(&module_definition);
  if (module == nullptr) return nullptr;
  const popglm::kernels::Table& table = popglm::kernels::table();
  // The capsule's name is checked by _core.use_kernels; the table is static, so no destructor.
  PyObject* capsule = PyCapsule_New(const_cast<popglm::kernels::Table*>(&table), "popglm.kernels.Table", nullptr);
  if (capsule == nullptr) {
    Py_DECREF(module);
    return nullptr;
  }
  if (PyModule_AddObject(module, "table", capsule) < 0) {  // steals the capsule only on success
    Py_DECREF(capsule);
    Py_DECREF(module);
    return nullptr;
  }
  if (PyModule_AddStringConstant(module, "isa", table.isa) < 0) {
    Py_DECREF(module);
    return nullptr;
  }
  return module;
}
