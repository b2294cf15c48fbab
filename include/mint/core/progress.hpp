// Progress reports from long loops (training, sweeps). Silent unless the caller
// passes a callback; then at most one report per interval, plus the last step.
// A loop without a callback pays one branch per step.
#pragma once

#include "mint/core/error.hpp"  // the C++20 check

#include <chrono>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <ostream>
#include <span>
#include <string>
#include <string_view>
#include <utility>

namespace mint {

/// One named figure in a report, e.g. {"loss", 0.031}.
struct progress_value {
  std::string_view name;
  double value;
};

/// What a long loop reports: where it is and how it is doing.
struct progress {
  std::string_view task;                  ///< what runs, e.g. "train topk"
  std::int64_t step = 0;                  ///< steps done
  std::int64_t total = 0;                 ///< steps planned (0 when unknown)
  double seconds = 0.0;                   ///< wall time since the loop began
  std::span<const progress_value> values; ///< figures of the moment (loss, L0, ...)
};

/// What a caller passes to hear about progress.
using progress_callback = std::function<void(const progress&)>;

/// Rate-limits reports to a callback; inert when the callback is empty.
class progress_reporter {
public:
  progress_reporter() = default;
  progress_reporter(progress_callback callback, std::string task, std::int64_t total,
                    double min_interval_seconds = 0.5)
      : callback_(std::move(callback)),
        task_(std::move(task)),
        total_(total),
        interval_(min_interval_seconds),
        start_(std::chrono::steady_clock::now()),
        last_(start_) {}

  /// True when someone listens.
  bool active() const noexcept { return bool(callback_); }

  /// Reports `step` if the interval has passed since the last report, or if it is the last step.
  void report(std::int64_t step, std::initializer_list<progress_value> values = {}) {
    if (!callback_) return;
    const auto now = std::chrono::steady_clock::now();
    const bool last = total_ > 0 && step >= total_;
    if (!last && seconds_between(last_, now) < interval_) return;
    last_ = now;
    callback_(progress{task_, step, total_, seconds_between(start_, now),
                       std::span<const progress_value>(values.begin(), values.size())});
  }

private:
  static double seconds_between(std::chrono::steady_clock::time_point a, std::chrono::steady_clock::time_point b) {
    return std::chrono::duration<double>(b - a).count();
  }

  progress_callback callback_;
  std::string task_;
  std::int64_t total_ = 0;
  double interval_ = 0.5;
  std::chrono::steady_clock::time_point start_{}, last_{};
};

/// A callback that prints one line per report: "train  step 120/1000  3.1 s  loss 0.0412  l0 31.5".
inline progress_callback print_progress(std::ostream& out) {
  return [&out](const progress& p) {
    out << p.task << "  step " << p.step;
    if (p.total > 0) out << '/' << p.total;
    out << "  " << std::fixed;
    out.precision(1);
    out << p.seconds << " s";
    out.unsetf(std::ios::floatfield);
    out.precision(4);
    for (const auto& v : p.values) out << "  " << v.name << ' ' << v.value;
    out << '\n' << std::flush;
  };
}

}  // namespace mint
