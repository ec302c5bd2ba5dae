#include <doctest/doctest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "core/atomic_file.hpp"
#include "core/error.hpp"
#include "core/file_io.hpp"
#include "temp_dir.hpp"

namespace fs = std::filesystem;

TEST_CASE("AtomicFile: the target appears only on commit") {
  mb::test::TempDir tmp("atomic");
  const fs::path& d = tmp.path;
  fs::path target = d / "out.bin";
  {
    mb::AtomicFile f(target);
    f.write(std::string_view("hello"));
    CHECK_FALSE(fs::exists(target));
    f.commit();
  }
  CHECK(fs::exists(target));
  auto bytes = mb::read_whole_file(target);
  CHECK(std::string(bytes.begin(), bytes.end()) == "hello");
  CHECK(std::distance(fs::directory_iterator(d), fs::directory_iterator{}) == 1);
}

TEST_CASE("AtomicFile: an abandoned write leaves nothing behind") {
  mb::test::TempDir tmp("abandon");
  const fs::path& d = tmp.path;
  {
    mb::AtomicFile f(d / "out.bin");
    f.write(std::string_view("partial"));
  }
  CHECK(fs::is_empty(d));
}

TEST_CASE("AtomicDirectory: refuses an existing target and cleans up when abandoned") {
  mb::test::TempDir tmp("atomicdir");
  const fs::path& d = tmp.path;
  fs::create_directory(d / "exists");
  CHECK_THROWS_AS(mb::AtomicDirectory(d / "exists"), mb::Error);
  {
    mb::AtomicDirectory ad(d / "new");
    mb::write_file_atomic(ad.staging() / "a.txt", "x");
  }
  CHECK_FALSE(fs::exists(d / "new"));
  CHECK(std::distance(fs::directory_iterator(d), fs::directory_iterator{}) == 1);
  {
    mb::AtomicDirectory ad(d / "new");
    mb::write_file_atomic(ad.staging() / "a.txt", "x");
    ad.commit();
  }
  CHECK(fs::exists(d / "new" / "a.txt"));
}

TEST_CASE("AtomicDirectory: removes the staging directories of dead processes, not of live ones") {
  mb::test::TempDir tmp("atomic-stale");
  const pid_t child = ::fork();  // a pid that no longer runs once waited for
  REQUIRE(child >= 0);
  if (child == 0) ::_exit(0);
  ::waitpid(child, nullptr, 0);
  const fs::path dead = tmp.path / (".d.partial-" + std::to_string(child));
  const fs::path live = tmp.path / (".d.partial-" + std::to_string(::getppid()));
  const fs::path other = tmp.path / (".e.partial-" + std::to_string(child));  // another target's
  for (const fs::path& p : {dead, live, other}) fs::create_directories(p / "sub");
  {
    mb::AtomicDirectory dir(tmp.path / "d");
    CHECK(!fs::exists(dead));
    CHECK(fs::exists(live));
    CHECK(fs::exists(other));
  }
  CHECK(!fs::exists(tmp.path / "d"));
}

TEST_CASE("read_whole_file names the file it cannot read") {
  try {
    mb::read_whole_file("/nonexistent/file.txt");
    FAIL("no error");
  } catch (const mb::Error& e) {
    CHECK(std::string(e.what()).find("/nonexistent/file.txt") != std::string::npos);
  }
}
