// The NumPy legacy RandomState port against NumPy itself (tests/reference/data.py, run by
// /usr/bin/python3 before these tests): permutations, bounded integers on both sides of 2^32,
// random_sample, the notebook's split and the DataLoader's epoch orders. Integers must match
// exactly; random_sample to the last bit.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "data/split.h"
#include "tests/common/test_util.h"

namespace cudl::data {
namespace {

std::vector<int64_t> ref_ints(const std::string& name) {
  return testing::load_reference("split", name).to_vector<int64_t>();
}

TEST(SplitParity, PermutationsMatchNumPy) {
  for (uint32_t seed : {0u, 1u, 10u, 42u, 123456789u, 4294967295u}) {
    for (int64_t n : {1, 2, 3, 10, 128, 1000, 65537}) {
      RandomState rs(seed);
      const std::vector<int64_t> ours = rs.permutation(n);
      const std::vector<int64_t> numpy =
          ref_ints("perm_" + std::to_string(seed) + "_" + std::to_string(n));
      ASSERT_EQ(ours, numpy) << "np.random.seed(" << seed << "); np.random.permutation(" << n
                             << ")";
    }
  }
}

TEST(SplitParity, ArraySeedMatchesNumPy) {
  RandomState rs(std::vector<uint32_t>{1, 2, 3});
  EXPECT_EQ(rs.permutation(100), ref_ints("perm_array_1_2_3_100"));
}

TEST(SplitParity, BoundedIntegersMatchNumPyOnBothPaths) {
  // randint(0, high) = random_interval(high - 1): 32-bit draws up to 2^32 - 1, 64-bit above.
  const std::vector<uint64_t> bounds = {1,
                                        2,
                                        7,
                                        1000,
                                        1ull << 31,
                                        (1ull << 32) - 1,
                                        1ull << 32,
                                        (1ull << 32) + 1,
                                        (1ull << 40) + 12345,
                                        (1ull << 62) + 3};
  for (uint32_t seed : {0u, 10u}) {
    for (uint64_t high : bounds) {
      RandomState rs(seed);
      std::vector<int64_t> ours;
      for (int i = 0; i < 50; ++i)
        ours.push_back(static_cast<int64_t>(rs.random_interval(high - 1)));
      EXPECT_EQ(ours, ref_ints("randint_" + std::to_string(seed) + "_" + std::to_string(high)))
          << "np.random.seed(" << seed << "); np.random.randint(0, " << high << ", 50)";
    }
  }
}

TEST(SplitParity, RandomSampleMatchesNumPyBitForBit) {
  for (uint32_t seed : {0u, 10u}) {
    RandomState rs(seed);
    const std::vector<double> ref =
        testing::load_reference("split", "random_sample_" + std::to_string(seed))
            .to_vector<double>();
    for (size_t i = 0; i < ref.size(); ++i) EXPECT_EQ(rs.random_sample(), ref[i]) << "draw " << i;
  }
}

TEST(SplitParity, NotebookSplitIs25ValidationRowsInPermutationOrder) {
  const std::vector<int64_t> perm = ref_ints("perm_10_128");
  const Split s = split_by_rand_pct(128, 0.2, 10);
  ASSERT_EQ(s.valid.size(), 25u);  // int(0.2 * 128)
  ASSERT_EQ(s.train.size(), 103u);
  EXPECT_EQ(s.valid, std::vector<int64_t>(perm.begin(), perm.begin() + 25));
  std::vector<int64_t> rest(perm.begin() + 25, perm.end());
  std::sort(rest.begin(), rest.end());
  EXPECT_EQ(s.train, rest);
}

TEST(SplitParity, LoaderEpochOrderIsNumPyRandomStateOfSeedAndEpoch) {
  for (uint64_t seed : {uint64_t{7}, (uint64_t{1} << 40) + 5}) {
    for (int epoch = 0; epoch < 3; ++epoch) {
      RandomState rs(std::vector<uint32_t>{static_cast<uint32_t>(seed),
                                           static_cast<uint32_t>(seed >> 32),
                                           static_cast<uint32_t>(epoch)});
      EXPECT_EQ(rs.permutation(37),
                ref_ints("loader_order_" + std::to_string(seed) + "_" + std::to_string(epoch)));
    }
  }
}

TEST(Split, RandPctEdgeCasesAndErrors) {
  EXPECT_EQ(split_by_rand_pct(10, 0.0, 1).valid.size(), 0u);
  EXPECT_EQ(split_by_rand_pct(10, 1.0, 1).train.size(), 0u);
  EXPECT_EQ(split_by_rand_pct(0, 0.2, 1).train.size(), 0u);
  EXPECT_THROW(split_by_rand_pct(10, 1.5, 1), Error);
  EXPECT_THROW(split_by_rand_pct(10, -0.1, 1), Error);
  const Split f = split_by_flags({true, false, false, true});
  EXPECT_EQ(f.valid, (std::vector<int64_t>{0, 3}));
  EXPECT_EQ(f.train, (std::vector<int64_t>{1, 2}));
}

}  // namespace
}  // namespace cudl::data
