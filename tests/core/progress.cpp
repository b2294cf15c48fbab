// Progress reports: silent without a callback, rate-limited, always the last step.
#include "mint/core/progress.hpp"

#include <doctest/doctest.h>

#include <sstream>
#include <vector>

TEST_CASE("a reporter without a callback stays silent") {
  mint::progress_reporter quiet;
  CHECK_FALSE(quiet.active());
  quiet.report(1, {{"loss", 1.0}});
}

TEST_CASE("reports are rate-limited but the last step always comes through") {
  std::vector<std::int64_t> steps;
  mint::progress_reporter reporter([&](const mint::progress& p) { steps.push_back(p.step); }, "train", 1000, 3600.0);
  CHECK(reporter.active());
  for (std::int64_t step = 1; step <= 1000; ++step) reporter.report(step);
  REQUIRE(steps.size() == 1);
  CHECK(steps[0] == 1000);

  std::vector<std::int64_t> every;
  mint::progress_reporter eager([&](const mint::progress& p) { every.push_back(p.step); }, "sweep", 0, 0.0);
  for (std::int64_t step = 1; step <= 5; ++step) eager.report(step);
  CHECK(every.size() == 5);
}

TEST_CASE("print_progress writes one line with the task, step and values") {
  std::ostringstream out;
  mint::progress_reporter reporter(mint::print_progress(out), "train topk", 10, 0.0);
  reporter.report(10, {{"loss", 0.0412}, {"l0", 31.5}});
  const std::string line = out.str();
  CHECK(line.find("train topk  step 10/10  ") == 0);
  CHECK(line.find("loss 0.0412  l0 31.5\n") != std::string::npos);
}
