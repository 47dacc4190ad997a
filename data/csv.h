// A small RFC 4180 CSV reader for label files.
//
// Fields are separated by `delimiter` (default ','); a field may be double-quoted, and inside
// quotes the delimiter, line breaks and doubled quotes ("" = ") are literal. Records end at LF,
// CRLF or a lone CR. A UTF-8 byte order mark at the start is skipped. Blank lines (nothing but
// spaces or tabs) are skipped. Spaces and tabs around a field are trimmed (outside the quotes
// of a quoted field), so "a.jpg, cat" reads as two clean fields. Every record keeps the 1-based
// physical line it starts on, for error messages; a quoted field left open at the end of the
// file is an error naming the line it was opened on.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace cudl::data {

struct CsvRecord {
  std::vector<std::string> fields;
  int64_t line = 0;  // 1-based line the record starts on
};

struct CsvTable {
  std::vector<std::string> header;  // the first record
  int64_t header_line = 0;
  std::vector<CsvRecord> rows;  // the records after the header
};

// `name` (the file's path) starts every error message. Throws on an empty text (no header).
CsvTable parse_csv(const std::string& text, const std::string& name, char delimiter = ',');
CsvTable read_csv(const std::string& path, char delimiter = ',');

}  // namespace cudl::data
