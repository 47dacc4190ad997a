// Small file helpers for the training outputs: atomic text writes (temporary file in the same
// folder, fsync, rename), so a reader never sees half a file, even if the process is killed.
#pragma once

#include <string>

namespace cudl::train {

void write_file_atomically(const std::string& path, const std::string& content);
std::string read_file(const std::string& path);
bool file_exists(const std::string& path);
// Creates the folder and its parents; throws naming the folder when that fails or when this
// process may not write into it.
void make_dirs(const std::string& path);
std::string join_path(const std::string& a, const std::string& b);

}  // namespace cudl::train
