// The run directory (train/run_directory.hpp): one process at a time, by a lock that dies
// with its holder; --resume starts a run that has not started; a started run is refused to a
// fresh start and to another config; a killed run's temporaries are removed.
#include <doctest/doctest.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "error_of.hpp"
#include "model/config.hpp"
#include "temp_dir.hpp"
#include "train/run_directory.hpp"

namespace fs = std::filesystem;
using mb::model::Config;
using mb::test::contains;
using mb::test::error_of;
using mb::test::TempDir;
using mb::train::open_run_directory;
using mb::train::RunLock;

namespace {

void touch(const fs::path& p) { std::ofstream(p) << "x"; }

}  // namespace

TEST_CASE("run directory: a second lock is refused at once, naming the holder") {
  TempDir tmp("run-lock");
  RunLock first(tmp.path);
  const std::string e = error_of([&] { RunLock second(tmp.path); });
  CHECK(contains(e, "in use by another megabyte train"));
  CHECK(contains(e, "pid " + std::to_string(::getpid())));
  // Released with its holder: a later lock is taken.
  { RunLock moved = std::move(first); }
  RunLock again(tmp.path);
}

TEST_CASE("run directory: the lock of a process killed with SIGKILL does not block") {
  TempDir tmp("run-lock-killed");
  int ready[2];
  REQUIRE(::pipe(ready) == 0);
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    RunLock held(tmp.path);
    const char byte = 1;
    if (::write(ready[1], &byte, 1) != 1) ::_exit(2);
    for (;;) ::pause();  // until SIGKILL: the lock is never released by the program
  }
  char byte = 0;
  REQUIRE(::read(ready[0], &byte, 1) == 1);
  const std::string e = error_of([&] { RunLock second(tmp.path); });
  CHECK(contains(e, "pid " + std::to_string(child)));
  ::kill(child, SIGKILL);
  int status = 0;
  ::waitpid(child, &status, 0);
  CHECK(WIFSIGNALED(status));
  ::close(ready[0]);
  ::close(ready[1]);
  CHECK(fs::exists(tmp.path / mb::train::kRunLockFile));  // stale, and harmless:
  RunLock after(tmp.path);
}

TEST_CASE("run directory: --resume starts a run that has not started") {
  TempDir tmp("run-dir-start");
  const Config config;
  SUBCASE("absent") {
    const fs::path dir = tmp.path / "a" / "run";
    RunLock lock = open_run_directory(config, dir, /*resume=*/true);
    CHECK(fs::exists(dir / "config.yaml"));
  }
  SUBCASE("killed before config.yaml: its lock and temporary are all it holds") {
    touch(tmp.path / mb::train::kRunLockFile);
    touch(tmp.path / ".config.yaml.tmp-12345");
    RunLock lock = open_run_directory(config, tmp.path, /*resume=*/true);
    CHECK(fs::exists(tmp.path / "config.yaml"));
    CHECK(!fs::exists(tmp.path / ".config.yaml.tmp-12345"));
  }
  SUBCASE("and so does a fresh start there") {
    touch(tmp.path / ".config.yaml.tmp-12345");
    RunLock lock = open_run_directory(config, tmp.path, /*resume=*/false);
    CHECK(fs::exists(tmp.path / "config.yaml"));
  }
  SUBCASE("but not in a directory of something else") {
    touch(tmp.path / "notes.txt");
    const std::string e = error_of([&] { open_run_directory(config, tmp.path, true); });
    CHECK(contains(e, "exists and is not empty"));
    CHECK(contains(e, "no config.yaml"));
    CHECK(!fs::exists(tmp.path / "config.yaml"));
    CHECK(!fs::exists(tmp.path / mb::train::kRunLockFile));
  }
}

TEST_CASE("run directory: a started run") {
  TempDir tmp("run-dir-started");
  Config config;
  { RunLock lock = open_run_directory(config, tmp.path, false); }
  SUBCASE("is refused to a fresh start") {
    CHECK(contains(error_of([&] { open_run_directory(config, tmp.path, false); }),
                   "holds another run"));
  }
  SUBCASE("is refused to another config, which is named") {
    config.train.steps += 1;
    CHECK(contains(error_of([&] { open_run_directory(config, tmp.path, true); }), "train.steps"));
  }
  SUBCASE("is refused to a second process while the first holds it") {
    RunLock first = open_run_directory(config, tmp.path, true);
    CHECK(contains(error_of([&] { open_run_directory(config, tmp.path, true); }), "in use"));
  }
  SUBCASE("resumes, removing the temporaries of writes a killed run did not finish") {
    touch(tmp.path / ".metrics.jsonl.tmp-77");
    touch(tmp.path / ".trained-on.yaml.tmp-78");
    touch(tmp.path / ".metrics.jsonl.tmp-notapid");  // not ours: kept
    RunLock lock = open_run_directory(config, tmp.path, true);
    CHECK(!fs::exists(tmp.path / ".metrics.jsonl.tmp-77"));
    CHECK(!fs::exists(tmp.path / ".trained-on.yaml.tmp-78"));
    CHECK(fs::exists(tmp.path / ".metrics.jsonl.tmp-notapid"));
  }
  SUBCASE("puts its checkpoints in order after a kill while one was written, replaced, pruned") {
    const fs::path c = tmp.path / "checkpoints";
    for (const char* d : {"step-00000004", ".step-00000008.partial-4242", ".step-00000004.pruned",
                          ".step-00000012.new", ".step-00000012.replaced", ".step-00000016.new",
                          "step-00000016", ".step-00000020.new.partial-99"})
      fs::create_directories(c / d);
    touch(c / ".step-00000012.new" / "model.safetensors");
    touch(c / "step-00000016" / "model.safetensors");
    RunLock lock = open_run_directory(config, tmp.path, true);
    std::vector<std::string> left;
    for (const auto& e : fs::directory_iterator(c)) left.push_back(e.path().filename().string());
    std::sort(left.begin(), left.end());
    // The complete replacement of step 12 takes its name; step 16's own stays; the rest goes.
    CHECK(left == std::vector<std::string>{"step-00000004", "step-00000012", "step-00000016"});
    CHECK(fs::exists(c / "step-00000012" / "model.safetensors"));
    CHECK(fs::exists(c / "step-00000016" / "model.safetensors"));
  }
}
