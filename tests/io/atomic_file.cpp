// The atomic writer: the target is replaced only by commit(); a writer that
// dies first leaves the old file and no temporary.
#include "mint/io/atomic_file.hpp"

#include <doctest/doctest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.hpp"
#include "mint/io/npy.hpp"

TEST_CASE("atomic_file replaces the target on commit only") {
  io_test::temp_folder tmp;
  {
    mint::atomic_file out(tmp / "f.txt");
    out.write("old");
    out.commit();
    CHECK_THROWS_AS(out.commit(), mint::argument_error);
  }
  try {
    mint::atomic_file out(tmp / "f.txt");
    out.write("new, but never finished");
    CHECK(tmp.entries() == 2);  // the temporary sits beside the target
    throw std::runtime_error("killed mid-way");
  } catch (const std::runtime_error&) {
  }
  CHECK(io_test::read_bytes(tmp / "f.txt") == io_test::bytes_of("old"));
  CHECK(tmp.entries() == 1);
  // Large writes bypass the buffer; the size counts everything.
  mint::atomic_file big(tmp / "big.bin");
  big.write(std::string(3 << 20, 'x'));
  big.write_zeros(5);
  CHECK(big.size() == (3u << 20) + 5);
  big.commit();
  CHECK(io_test::read_bytes(tmp / "big.bin").size() == (3u << 20) + 5);
}

TEST_CASE("a file written atomically gets the permissions of a plain new file") {
  io_test::temp_folder tmp;
  const mode_t mask = ::umask(022);
  mint::write_npy(tmp / "a.npy", mint::ndarray<float>({2}));
  ::umask(mask);
  struct stat info {};
  REQUIRE(::stat((tmp / "a.npy").c_str(), &info) == 0);
  CHECK((info.st_mode & 0777) == 0644);
}

TEST_CASE("writing into a folder that does not exist is an argument error") {
  CHECK_THROWS_AS(mint::write_npy("/nonexistent-mint-folder/a.npy", mint::ndarray<float>({2})), mint::argument_error);
  io_test::check_format_error([] { mint::read_npy<float>("/nonexistent-mint-folder/a.npy"); }, "cannot be opened");
}

TEST_CASE("a killed writer's temporary is removed by the next writer of the target; live ones are kept") {
  io_test::temp_folder tmp;
  // A process that is gone: a child that exits at once.
  const pid_t child = ::fork();
  if (child == 0) ::_exit(0);
  REQUIRE(child > 0);
  ::waitpid(child, nullptr, 0);
  namespace fs = std::filesystem;
  const auto now = fs::file_time_type::clock::now();
  auto leave = [&](const std::string& name, fs::file_time_type when) {
    std::ofstream(tmp / name) << "half a file";
    fs::last_write_time(tmp / name, when);
  };
  const std::string dead = std::to_string(child), self = std::to_string(::getpid());
  leave(".f.txt.tmp-" + dead + "-7", now - std::chrono::hours(1));   // killed: removed
  leave(".f.txt.tmp-" + dead + "-8", now + std::chrono::hours(1));   // newer than the writer: kept
  leave(".f.txt.tmp-" + self + "-9", now - std::chrono::hours(1));   // this process's: kept
  leave(".f.txt.tmp-1-10", now - std::chrono::hours(1));             // pid 1 is alive: kept
  leave(".g.txt.tmp-" + dead + "-1", now - std::chrono::hours(1));   // another target's: kept
  leave(".f.txt.tmp-77", now - std::chrono::hours(1));               // no pid in the name: kept
  mint::atomic_file out(tmp / "f.txt");
  out.write("new");
  out.commit();
  CHECK_FALSE(fs::exists(tmp / (".f.txt.tmp-" + dead + "-7")));
  CHECK(fs::exists(tmp / (".f.txt.tmp-" + dead + "-8")));
  CHECK(fs::exists(tmp / (".f.txt.tmp-" + self + "-9")));
  CHECK(fs::exists(tmp / ".f.txt.tmp-1-10"));
  CHECK(fs::exists(tmp / (".g.txt.tmp-" + dead + "-1")));
  CHECK(fs::exists(tmp / ".f.txt.tmp-77"));
  CHECK(tmp.entries() == 6);  // f.txt and the five kept
}
