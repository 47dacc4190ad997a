#include "data/split.h"

#include <algorithm>
#include <cstdio>

#include "tensor/error.h"

namespace cudl::data {

namespace {
constexpr int kN = 624;
constexpr int kM = 397;
constexpr uint32_t kMatrixA = 0x9908b0dfu;
constexpr uint32_t kUpper = 0x80000000u;
constexpr uint32_t kLower = 0x7fffffffu;
}  // namespace

void RandomState::seed_int(uint32_t seed) {
  for (int i = 0; i < kN; ++i) {
    key_[i] = seed;
    seed = 1812433253u * (seed ^ (seed >> 30)) + static_cast<uint32_t>(i + 1);
  }
  pos_ = kN;
}

void RandomState::seed_array(const std::vector<uint32_t>& key) {
  CUDL_CHECK(!key.empty(), "RandomState: the seed array must not be empty (as in NumPy)");
  seed_int(19650218u);
  uint32_t* mt = key_;
  size_t i = 1, j = 0;
  const size_t n = key.size();
  for (size_t k = std::max<size_t>(kN, n); k; --k) {
    mt[i] =
        (mt[i] ^ ((mt[i - 1] ^ (mt[i - 1] >> 30)) * 1664525u)) + key[j] + static_cast<uint32_t>(j);
    ++i;
    ++j;
    if (i >= static_cast<size_t>(kN)) {
      mt[0] = mt[kN - 1];
      i = 1;
    }
    if (j >= n) j = 0;
  }
  for (size_t k = kN - 1; k; --k) {
    mt[i] = (mt[i] ^ ((mt[i - 1] ^ (mt[i - 1] >> 30)) * 1566083941u)) - static_cast<uint32_t>(i);
    ++i;
    if (i >= static_cast<size_t>(kN)) {
      mt[0] = mt[kN - 1];
      i = 1;
    }
  }
  mt[0] = 0x80000000u;
  pos_ = kN;
}

void RandomState::generate() {
  int i = 0;
  uint32_t y;
  for (; i < kN - kM; ++i) {
    y = (key_[i] & kUpper) | (key_[i + 1] & kLower);
    key_[i] = key_[i + kM] ^ (y >> 1) ^ ((0u - (y & 1u)) & kMatrixA);
  }
  for (; i < kN - 1; ++i) {
    y = (key_[i] & kUpper) | (key_[i + 1] & kLower);
    key_[i] = key_[i + (kM - kN)] ^ (y >> 1) ^ ((0u - (y & 1u)) & kMatrixA);
  }
  y = (key_[kN - 1] & kUpper) | (key_[0] & kLower);
  key_[kN - 1] = key_[kM - 1] ^ (y >> 1) ^ ((0u - (y & 1u)) & kMatrixA);
  pos_ = 0;
}

uint32_t RandomState::next_uint32() {
  if (pos_ == kN) generate();
  uint32_t y = key_[pos_++];
  y ^= y >> 11;
  y ^= (y << 7) & 0x9d2c5680u;
  y ^= (y << 15) & 0xefc60000u;
  y ^= y >> 18;
  return y;
}

uint64_t RandomState::next_uint64() {
  const uint64_t hi = next_uint32();
  return hi << 32 | next_uint32();
}

double RandomState::random_sample() {
  const int32_t a = static_cast<int32_t>(next_uint32() >> 5);
  const int32_t b = static_cast<int32_t>(next_uint32() >> 6);
  return (a * 67108864.0 + b) / 9007199254740992.0;
}

uint64_t RandomState::random_interval(uint64_t max) {
  if (max == 0) return 0;
  uint64_t mask = max;
  mask |= mask >> 1;
  mask |= mask >> 2;
  mask |= mask >> 4;
  mask |= mask >> 8;
  mask |= mask >> 16;
  mask |= mask >> 32;
  uint64_t value;
  if (max <= 0xffffffffull) {
    while ((value = (next_uint32() & mask)) > max) {
    }
  } else {
    while ((value = (next_uint64() & mask)) > max) {
    }
  }
  return value;
}

std::vector<int64_t> RandomState::permutation(int64_t n) {
  CUDL_CHECK(n >= 0, "permutation: n must be >= 0, got ", n);
  std::vector<int64_t> p(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) p[static_cast<size_t>(i)] = i;
  shuffle(p);
  return p;
}

Split split_by_rand_pct(int64_t n, double valid_pct, uint32_t seed) {
  CUDL_CHECK(valid_pct >= 0.0 && valid_pct <= 1.0,
             "split_by_rand_pct: valid_pct must be between 0 and 1, got ", valid_pct);
  CUDL_CHECK(n >= 0, "split_by_rand_pct: n must be >= 0, got ", n);
  RandomState rs(seed);
  const std::vector<int64_t> perm = rs.permutation(n);
  const auto cut = static_cast<int64_t>(valid_pct * static_cast<double>(n));  // int() truncates
  Split s;
  s.valid.assign(perm.begin(), perm.begin() + cut);
  std::vector<bool> is_valid(static_cast<size_t>(n), false);
  for (int64_t v : s.valid) is_valid[static_cast<size_t>(v)] = true;
  for (int64_t i = 0; i < n; ++i)
    if (!is_valid[static_cast<size_t>(i)]) s.train.push_back(i);
  return s;
}

Split split_by_flags(const std::vector<bool>& is_valid) {
  Split s;
  for (size_t i = 0; i < is_valid.size(); ++i)
    (is_valid[i] ? s.valid : s.train).push_back(static_cast<int64_t>(i));
  return s;
}

std::string file_set_hash(std::vector<std::string> names) {
  std::sort(names.begin(), names.end());
  uint64_t h = 14695981039346656037ull;
  for (const std::string& name : names) {
    for (unsigned char ch : name + '\n') {
      h ^= ch;
      h *= 1099511628211ull;
    }
  }
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(h));
  return hex;
}

}  // namespace cudl::data
