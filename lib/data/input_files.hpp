// Turning what the user named (files, directories, "-" for a list on stdin) into the
// ordered list of input files of `prepare`, and deciding each file's split.
#pragma once

#include <istream>
#include <string>
#include <vector>

#include "data/encoders/modality.hpp"

namespace mb::data {

// One input file: its path as enumerated, and the key that decides its split. The key of a
// file found by walking a directory is its path relative to that directory, so a file
// lands in the same split wherever the user's copy of the data lives.
struct InputFile {
  std::string path;
  std::string split_key;
};

// Files are taken as given; directories are walked recursively, their files sorted by
// path and filtered by the modality's usual extensions (all files for text; hidden files
// and directories are skipped); "-" reads one path per line from `list_input`. The result
// keeps the order of the arguments and drops repeats. Throws for a path that does not exist.
std::vector<InputFile> list_inputs(const std::vector<std::string>& args, Modality modality,
                                   std::istream& list_input);
// The same, paths only.
std::vector<std::string> expand_inputs(const std::vector<std::string>& args, Modality modality,
                                       std::istream& list_input);

// One path per line; empty lines skipped, a trailing carriage return removed, nothing
// else trimmed (a path may begin or end with spaces).
std::vector<std::string> read_path_list(std::istream& in);
// The same from a file; throws mb::Error naming it when it cannot be read.
std::vector<std::string> read_path_list_file(const std::string& path);

// Whether a file name has one of the extensions a directory walk keeps for `modality` (any
// name where its encoder lists none).
bool has_modality_extension(const std::string& path, Modality modality);

// The validation split: a file is in it when it is named in `val_files`, or, when
// `val_files` is empty, when the hash of its name (path or split key) falls below `val_fraction`. With a
// positive fraction and at least two files, at least one file (the lowest hash) goes to
// validation; at least one file always stays in train. Returns one flag per file.
std::vector<bool> assign_validation(const std::vector<std::string>& files, double val_fraction,
                                    const std::vector<std::string>& val_files);

}  // namespace mb::data
