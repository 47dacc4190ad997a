// Train/validation splits, NumPy-identical.
//
// fastai's split_by_rand_pct(valid_pct, seed) does np.random.seed(seed),
// perm = np.random.permutation(n), cut = int(valid_pct * n): validation rows are perm[:cut] in
// that order, training rows the others in increasing order (np.setdiff1d). RandomState below is
// a port of NumPy's legacy generator (numpy.random.RandomState / np.random.seed): MT19937 with
// init_genrand seeding for an integer seed and init_by_array for an array seed, and the legacy
// Fisher-Yates shuffle that draws each bound with random_interval (a masked rejection sampler on
// 32-bit draws for bounds below 2^32, on 64-bit draws above). The same seed gives the same numbers
// as NumPy, bit for bit (checked against /usr/bin/python3 by tests/data/test_split.cpp).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace cudl::data {

class RandomState {
 public:
  explicit RandomState(uint32_t seed = 0) { seed_int(seed); }
  explicit RandomState(const std::vector<uint32_t>& key) { seed_array(key); }
  void seed_int(uint32_t seed);                       // np.random.seed(seed)
  void seed_array(const std::vector<uint32_t>& key);  // np.random.seed([k0, k1, ...])

  uint32_t next_uint32();
  uint64_t next_uint64();  // (first << 32) | second, as NumPy's legacy MT19937
  double random_sample();  // np.random.random_sample(): 53 random bits in [0, 1)
  // Uniform on [0, max] by masked rejection (NumPy's random_interval).
  uint64_t random_interval(uint64_t max);
  // NumPy's legacy shuffle of a 1-d array: for i = n-1 .. 1: swap(x[i], x[random_interval(i)]).
  template <class T>
  void shuffle(std::vector<T>& x) {
    for (size_t i = x.size(); i-- > 1;) {
      const size_t j = static_cast<size_t>(random_interval(i));
      std::swap(x[i], x[j]);
    }
  }
  std::vector<int64_t> permutation(int64_t n);  // np.random.permutation(n)

 private:
  uint32_t key_[624];
  int pos_ = 624;
  void generate();
};

struct Split {
  std::vector<int64_t> train;  // increasing
  std::vector<int64_t> valid;  // in the order the split chose them
};

// fastai's split_by_rand_pct on n rows. valid_pct in [0, 1].
Split split_by_rand_pct(int64_t n, double valid_pct = 0.2, uint32_t seed = 10);
// Rows whose flag is set are validation rows; both lists increasing.
Split split_by_flags(const std::vector<bool>& is_valid);

// A fingerprint of a set of file names (FNV-1a over the sorted names, 16 hex digits): the same
// files in any order give the same value. fridge_train records its validation files' in
// checkpoints and models, so that a resumed run or fridge_eval --split can tell whether they
// are on the same split.
std::string file_set_hash(std::vector<std::string> names);

}  // namespace cudl::data
