#include "data/csv.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "tensor/error.h"

namespace cudl::data {

namespace {
bool is_blank(char c) {
  return c == ' ' || c == '\t';
}

std::string trimmed(const std::string& s) {
  size_t b = 0, e = s.size();
  while (b < e && is_blank(s[b])) ++b;
  while (e > b && is_blank(s[e - 1])) --e;
  return s.substr(b, e - b);
}

std::string char_name(char c) {
  if (c >= 32 && c < 127) return std::string("'") + c + "'";
  return str("byte ", static_cast<int>(static_cast<unsigned char>(c)));
}
}  // namespace

CsvTable parse_csv(const std::string& text, const std::string& name, char delimiter) {
  size_t i = 0;
  const size_t n = text.size();
  if (n >= 3 && static_cast<unsigned char>(text[0]) == 0xEF &&
      static_cast<unsigned char>(text[1]) == 0xBB && static_cast<unsigned char>(text[2]) == 0xBF)
    i = 3;
  // UTF-16 (a byte-order mark, or NUL bytes in text) is not read as UTF-8: said plainly instead
  // of a header of garbled bytes.
  const bool utf16_bom = n >= 2 && ((static_cast<unsigned char>(text[0]) == 0xFF &&
                                     static_cast<unsigned char>(text[1]) == 0xFE) ||
                                    (static_cast<unsigned char>(text[0]) == 0xFE &&
                                     static_cast<unsigned char>(text[1]) == 0xFF));
  CUDL_CHECK(!utf16_bom && text.find('\0') == std::string::npos, name,
             ": not UTF-8 text (UTF-16", utf16_bom ? "" : " or binary", " content); save it as "
             "UTF-8 (or ASCII) CSV");
  int64_t line = 1;
  std::vector<CsvRecord> records;
  while (i < n) {
    // One record. Skip blank lines first.
    size_t j = i;
    while (j < n && is_blank(text[j])) ++j;
    if (j < n && (text[j] == '\n' || text[j] == '\r')) {
      i = j + (text[j] == '\r' && j + 1 < n && text[j + 1] == '\n' ? 2 : 1);
      ++line;
      continue;
    }
    if (j >= n) break;
    CsvRecord rec;
    rec.line = line;
    bool end_of_record = false;
    while (!end_of_record) {
      // One field starting at i.
      while (i < n && is_blank(text[i])) ++i;
      std::string field;
      if (i < n && text[i] == '"') {
        const int64_t opened = line;
        ++i;
        bool closed = false;
        while (i < n) {
          const char c = text[i];
          if (c == '"') {
            if (i + 1 < n && text[i + 1] == '"') {
              field += '"';
              i += 2;
              continue;
            }
            ++i;
            closed = true;
            break;
          }
          if (c == '\n' || (c == '\r' && !(i + 1 < n && text[i + 1] == '\n'))) ++line;
          field += c;
          ++i;
        }
        CUDL_CHECK(closed, name, ":", opened, ": unterminated quoted field (a '\"' opened on line ",
                   opened, " is never closed): expected a closing '\"'");
        while (i < n && is_blank(text[i])) ++i;
        CUDL_CHECK(i >= n || text[i] == delimiter || text[i] == '\n' || text[i] == '\r', name, ":",
                   line, ": unexpected ", char_name(text[i]), " after a closing quote: expected '",
                   delimiter, "' or the end of the line");
      } else {
        const size_t start = i;
        while (i < n && text[i] != delimiter && text[i] != '\n' && text[i] != '\r') ++i;
        field = trimmed(text.substr(start, i - start));
      }
      rec.fields.push_back(std::move(field));
      if (i < n && text[i] == delimiter) {
        ++i;
        continue;
      }
      end_of_record = true;
      if (i < n) {  // at '\r' or '\n'
        i += (text[i] == '\r' && i + 1 < n && text[i + 1] == '\n') ? 2 : 1;
        ++line;
      }
    }
    records.push_back(std::move(rec));
  }
  CUDL_CHECK(!records.empty(), name,
             ": empty CSV file: expected a header line naming the columns (e.g. filename,labels)");
  CsvTable t;
  t.header = std::move(records.front().fields);
  t.header_line = records.front().line;
  t.rows.assign(std::make_move_iterator(records.begin() + 1),
                std::make_move_iterator(records.end()));
  return t;
}

CsvTable read_csv(const std::string& path, char delimiter) {
  std::ifstream f(path, std::ios::binary);
  if (!f) CUDL_THROW(path, ": cannot open CSV file: ", std::strerror(errno));
  std::ostringstream ss;
  ss << f.rdbuf();
  CUDL_CHECK(!f.bad(), path, ": cannot read CSV file");
  return parse_csv(ss.str(), path, delimiter);
}

}  // namespace cudl::data
