// Cooperative cancellation of long computations (Ctrl-C in Python).
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <thread>
#include <utility>

namespace popglm {

/// A stop request that long kernels check between units of work (Newton rounds, row blocks).
/// Any thread may call `requested()`; only the thread that created the token runs `poll`, at
/// most every kPollInterval, because the poll may need that thread's locks (the GIL) and
/// signal handlers run on it. A kernel that sees a request leaves its outputs incomplete: the
/// caller must discard them.
class StopToken {
 public:
  StopToken() = default;
  explicit StopToken(std::function<bool()> poll)
      : poll_(std::move(poll)), owner_(std::this_thread::get_id()) {}

  bool requested() const {
    if (stopped_.load(std::memory_order_relaxed)) return true;
    if (!poll_ || std::this_thread::get_id() != owner_) return false;
    const auto now = std::chrono::steady_clock::now();
    if (now < next_poll_) return false;
    next_poll_ = now + kPollInterval;
    if (poll_()) stopped_.store(true, std::memory_order_relaxed);
    return stopped_.load(std::memory_order_relaxed);
  }

  void request() const { stopped_.store(true, std::memory_order_relaxed); }

 private:
  // Short enough that Ctrl-C feels immediate, long enough that polling costs nothing.
  static constexpr std::chrono::milliseconds kPollInterval{20};
  std::function<bool()> poll_;
  std::thread::id owner_;
  mutable std::atomic<bool> stopped_{false};
  mutable std::chrono::steady_clock::time_point next_poll_{};  // touched by the owner only
};

/// True when `stop` is set and has been requested.
inline bool stop_requested(const StopToken* stop) { return stop != nullptr && stop->requested(); }

}  // namespace popglm
