// The kernel table the engine calls (see kernels.hpp).
#include <atomic>
#include <stdexcept>

#include "kernels.hpp"

namespace popglm::kernels {
namespace {

std::atomic<const Table*>& active_table() {
  static std::atomic<const Table*> active{&table()};
  return active;
}

}  // namespace

const Table& active() { return *active_table().load(std::memory_order_acquire); }

void set_active(const Table& table) {
  if (table.version != kTableVersion || table.size != sizeof(Table))
    throw std::invalid_argument(
        "popglm: this kernel module comes from another build of popglm (reinstall popglm)");
  active_table().store(&table, std::memory_order_release);
}

}  // namespace popglm::kernels
