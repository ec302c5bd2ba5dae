// Turning command-line inputs into the list of files `prepare` reads, and the
// validation split.
#include <doctest/doctest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "data/input_files.hpp"
#include "temp_dir.hpp"

namespace fs = std::filesystem;
using namespace mb::data;

namespace {

using mb::test::TempDir;

// Create the file (and its directories) under `root`; returns its path as a string.
std::string touch(const fs::path& root, const std::string& rel) {
  const fs::path p = root / rel;
  fs::create_directories(p.parent_path());
  std::ofstream(p) << rel;
  return p.string();
}

std::vector<std::string> expand(const std::vector<std::string>& args, Modality m = Modality::text,
                                const std::string& list = "") {
  std::istringstream in(list);
  return expand_inputs(args, m, in);
}

std::vector<std::string> fake_paths(std::size_t n, const std::string& prefix = "corpus/") {
  std::vector<std::string> v;
  for (std::size_t i = 0; i < n; ++i)
    v.push_back(prefix + std::string("file-") + std::to_string(i * 7919 % 100003) + ".txt");
  return v;
}

std::size_t count_true(const std::vector<bool>& v) {
  return static_cast<std::size_t>(std::count(v.begin(), v.end(), true));
}

}  // namespace

TEST_CASE("expand_inputs: a directory is walked recursively, sorted, hidden entries skipped") {
  TempDir tmp("inputs-walk");
  const fs::path d = tmp.path / "corpus";
  // Created out of order, so that sorting is needed.
  const std::string b = touch(d, "b.txt");
  const std::string deep = touch(d, "sub/deeper/d.txt");
  const std::string a = touch(d, "a.txt");
  const std::string upper = touch(d, "A.txt");
  const std::string c = touch(d, "sub/c.txt");
  const std::string noext = touch(d, "sub/README");
  touch(d, ".hidden.txt");
  touch(d, ".git/config");
  touch(d, ".git/objects/ab/cdef");
  touch(d, "sub/.cache/x.txt");
  fs::create_directories(d / "empty" / "dir");

  const auto got = expand({d.string()});
  const std::vector<std::string> want = {upper, a, b, noext, c, deep};
  CHECK(got == want);
  CHECK(std::is_sorted(got.begin(), got.end()));

  SUBCASE("split keys are relative to the directory walked; explicit files keep their path") {
    std::istringstream in;
    const auto files = list_inputs({d.string(), b}, Modality::text, in);
    REQUIRE(files.size() == want.size());
    CHECK(files[0].split_key == "A.txt");
    CHECK(files[5].split_key == "sub/deeper/d.txt");
    // The explicit b repeats a walked file and is dropped.
    const auto only = list_inputs({b}, Modality::text, in);
    REQUIRE(only.size() == 1);
    CHECK(only[0].split_key == b);
  }
  SUBCASE("an explicitly named hidden file is kept") {
    const std::string h = (d / ".hidden.txt").string();
    CHECK(expand({h}) == std::vector<std::string>{h});
  }
}

TEST_CASE(
    "expand_inputs: image and audio walks keep their extensions; explicit files always stay") {
  TempDir tmp("inputs-ext");
  const fs::path d = tmp.path / "media";
  const std::string png = touch(d, "x.png");
  const std::string jpg = touch(d, "y.JPG");
  const std::string jpeg = touch(d, "sub/q.jpeg");
  const std::string wav = touch(d, "w.wav");
  const std::string flac = touch(d, "sub/song.FLAC");
  const std::string txt = touch(d, "notes.txt");
  const std::string noext = touch(d, "png");
  touch(d, ".thumb.png");

  CHECK(expand({d.string()}, Modality::image) == std::vector<std::string>{jpeg, png, jpg});
  CHECK(expand({d.string()}, Modality::audio) == std::vector<std::string>{flac, wav});
  CHECK(expand({d.string()}, Modality::text).size() == 7);
  // Named explicitly, a file is taken whatever its extension.
  CHECK(expand({txt, d.string()}, Modality::image) ==
        std::vector<std::string>{txt, jpeg, png, jpg});
  CHECK(expand({noext}, Modality::audio) == std::vector<std::string>{noext});

  CHECK(has_modality_extension("a/b.PnG", Modality::image));
  CHECK_FALSE(has_modality_extension("a/b.png.txt", Modality::image));
  CHECK_FALSE(has_modality_extension("a/png", Modality::image));
  CHECK(has_modality_extension("x.opus", Modality::audio));
  CHECK_FALSE(has_modality_extension("x.png", Modality::audio));
  CHECK(has_modality_extension("anything", Modality::text));
}

TEST_CASE("expand_inputs: \"-\" reads a list, order is kept and repeats are dropped") {
  TempDir tmp("inputs-list");
  const std::string a = touch(tmp.path, "a.txt");
  const std::string b = touch(tmp.path, "b.txt");
  const std::string c = touch(tmp.path, "c.txt");
  const std::string dir_file = touch(tmp.path, "d/z.txt");
  const std::string dir = (tmp.path / "d").string();

  // CRLF line ends and blank lines are tolerated.
  CHECK(expand({c, "-", a}, Modality::text, b + "\r\n\n" + dir + "\n") ==
        std::vector<std::string>{c, b, dir_file, a});
  CHECK(expand({"-"}, Modality::text, "").empty());
  CHECK(expand({a, a, b, a}) == std::vector<std::string>{a, b});
  CHECK(expand({"-", a}, Modality::text, a + "\n" + a + "\n") == std::vector<std::string>{a});
  // A file named explicitly and found again in a directory walk appears once, where first named.
  CHECK(expand({dir_file, dir}) == std::vector<std::string>{dir_file});
  CHECK(expand({dir, dir_file}) == std::vector<std::string>{dir_file});
}

TEST_CASE("expand_inputs: a missing path is an error naming it") {
  TempDir tmp("inputs-missing");
  const std::string a = touch(tmp.path, "a.txt");
  const std::string missing = (tmp.path / "no-such-file.txt").string();
  for (int from_list = 0; from_list < 2; ++from_list) {
    try {
      if (from_list)
        expand({a, "-"}, Modality::text, a + "\n" + missing + "\n");
      else
        expand({a, missing});
      FAIL_CHECK("no error for a missing path");
    } catch (const mb::Error& e) {
      CHECK(std::string(e.what()).find(missing) != std::string::npos);
      CHECK(std::string(e.what()).find("no such file") != std::string::npos);
    }
  }
}

TEST_CASE("assign_validation: deterministic, by name, with exact --val-files") {
  const auto files = fake_paths(2000);
  const auto v1 = assign_validation(files, 0.1, {});
  const auto v2 = assign_validation(files, 0.1, {});
  CHECK(v1 == v2);
  REQUIRE(v1.size() == files.size());

  SUBCASE("a file's split depends on its name only, not on the other files") {
    std::vector<std::string> half(files.begin() + 500, files.begin() + 1500);
    std::reverse(half.begin(), half.end());
    const auto vh = assign_validation(half, 0.1, {});
    for (std::size_t i = 0; i < half.size(); ++i) CHECK(vh[i] == v1[1500 - 1 - i]);
  }
  SUBCASE("roughly the requested fraction") {
    for (double frac : {0.01, 0.1, 0.5, 0.9}) {
      const auto v = assign_validation(files, frac, {});
      const double got = static_cast<double>(count_true(v)) / static_cast<double>(files.size());
      INFO("fraction " << frac << " gave " << got);
      // Within four standard deviations of a binomial draw.
      const double sd = std::sqrt(frac * (1 - frac) / static_cast<double>(files.size()));
      CHECK(got >= frac - 4 * sd);
      CHECK(got <= frac + 4 * sd);
    }
    const double tenth = static_cast<double>(count_true(v1)) / 2000.0;
    CHECK(tenth >= 0.07);
    CHECK(tenth <= 0.13);
  }
  SUBCASE("a larger fraction only adds files") {
    const auto v3 = assign_validation(files, 0.3, {});
    for (std::size_t i = 0; i < files.size(); ++i)
      if (v1[i]) CHECK(v3[i]);
  }
  SUBCASE("fraction 0 (or less) puts nothing in validation") {
    CHECK(count_true(assign_validation(files, 0.0, {})) == 0);
    CHECK(count_true(assign_validation(files, -0.5, {})) == 0);
    CHECK(count_true(assign_validation({"a", "b"}, 0.0, {})) == 0);
    CHECK(assign_validation({}, 0.5, {}).empty());
  }
  SUBCASE("--val-files: exactly the named files, whatever the fraction") {
    const std::vector<std::string> named = {files[3], files[1999], "not/in/the/list.txt", files[3]};
    for (double frac : {0.0, 0.5}) {
      const auto v = assign_validation(files, frac, named);
      REQUIRE(v.size() == files.size());
      CHECK(count_true(v) == 2);
      CHECK(v[3]);
      CHECK(v[1999]);
    }
  }
}

TEST_CASE(
    "assign_validation: with a positive fraction and two or more files, both splits get one") {
  int forced_val = 0, forced_train = 0;
  for (int t = 0; t < 300; ++t) {
    const std::size_t n = 2 + static_cast<std::size_t>(t % 5);
    const auto files = fake_paths(n, std::string("set") + std::to_string(t) + "/");
    for (double frac : {1e-9, 0.001, 0.5, 0.999, 1.0, 5.0}) {
      const auto v = assign_validation(files, frac, {});
      const std::size_t nval = count_true(v);
      INFO("set " << t << ", " << n << " files, fraction " << frac);
      CHECK(nval >= 1);
      CHECK(nval <= n - 1);
      if (frac == 1e-9) forced_val += nval == 1;
      if (frac == 1.0) forced_train += nval == n - 1;
    }
  }
  CHECK(forced_val == 300);    // the rule did the work: such a fraction alone selects nothing
  CHECK(forced_train == 300);  // and every hash is below 1.0
  // One file always stays in train, whatever the fraction: an empty train split is useless.
  CHECK(count_true(assign_validation({"only.txt"}, 1e-9, {})) == 0);
  CHECK(count_true(assign_validation({"only.txt"}, 1.0, {})) == 0);
}

TEST_CASE("read_path_list: one path per line, CRLF and blank lines handled, spaces kept") {
  std::istringstream in("a.txt\r\n\n b c.txt \nlast");
  const auto paths = read_path_list(in);
  REQUIRE(paths.size() == 3);
  CHECK(paths[0] == "a.txt");
  CHECK(paths[1] == " b c.txt ");
  CHECK(paths[2] == "last");

  TempDir tmp("pathlist");
  const auto file = tmp.path / "list.txt";
  {
    std::ofstream out(file);
    out << "x\r\ny\n";
  }
  CHECK(read_path_list_file(file.string()) == std::vector<std::string>{"x", "y"});
  try {
    read_path_list_file((tmp.path / "absent.txt").string());
    FAIL("no error for a missing list file");
  } catch (const mb::Error& e) {
    CHECK(std::string(e.what()).find("absent.txt") != std::string::npos);
  }
}
