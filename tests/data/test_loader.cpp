// ImageDataset and DataLoader: caching, batch contents, order and determinism, drop_last,
// workers vs inline, error propagation, shutdown mid-epoch, augmentation, the splits of
// load_image_data, and (with a GPU) pinned asynchronous uploads, also ahead of use.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <future>
#include <set>
#include <thread>

#include "data/loader.h"
#include "tests/common/test_util.h"
#include "tests/data/data_test_util.h"

namespace cudl::data {
namespace {

using ::cudl::testing::error_of;
using ::testing::AllOf;
using ::testing::HasSubstr;
using testing::TempDir;

constexpr int kSize = 24;

// n images of varied sizes and content in DIR/images, labels.csv with multi-label rows (or one
// label per row), optionally an is_valid column.
struct Folder {
  TempDir dir;
  int n;
  Folder(int n_, bool multi = true, bool valid_column = false) : n(n_) {
    std::filesystem::create_directory(dir / "images");
    std::string csv = valid_column ? "filename,labels,is_valid\n" : "filename,labels\n";
    const char* names[] = {"can", "carton", "milk_bottle", "water_bottle"};
    for (int i = 0; i < n; ++i) {
      const std::string f = "img" + std::to_string(i) + ".jpg";
      write_file(dir / ("images/" + f), testing::test_jpeg(30 + 3 * (i % 5), 40 - 2 * (i % 4), i));
      std::string labels = names[i % 4];
      if (multi && i % 3 == 0) labels += std::string(" ") + names[(i + 1) % 4];
      csv += f + "," + labels + (valid_column ? (i % 4 == 1 ? ",True" : ",False") : "") + "\n";
    }
    testing::write_text(dir / "labels.csv", csv);
  }
  std::string csv() const { return dir / "labels.csv"; }
  std::string images() const { return dir / "images"; }
  std::shared_ptr<ImageDataset> dataset() const {
    LoadOptions lo;
    lo.size = kSize;
    return std::make_shared<ImageDataset>(
        std::make_shared<const LabelTable>(read_labels(csv(), images())), lo);
  }
};

std::vector<Batch> epoch_batches(DataLoader& dl, int64_t epoch) {
  dl.start_epoch(epoch);
  std::vector<Batch> out;
  Batch b;
  while (dl.next(b)) out.push_back(b);
  return out;
}

std::vector<int64_t> flat_indices(const std::vector<Batch>& bs) {
  std::vector<int64_t> v;
  for (const auto& b : bs) v.insert(v.end(), b.indices.begin(), b.indices.end());
  return v;
}

bool same_values(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && a.dtype() == b.dtype() &&
         (a.dtype() == kInt64 ? a.to_vector<int64_t>() == b.to_vector<int64_t>()
                              : a.to_vector<float>() == b.to_vector<float>());
}

TEST(Dataset, DecodesOnceAndCachesTheCrop) {
  Folder f(6);
  auto ds = f.dataset();
  EXPECT_FALSE(ds->is_cached(2));
  auto a = ds->image(2);
  EXPECT_TRUE(ds->is_cached(2));
  EXPECT_EQ(ds->image(2).get(), a.get());  // the same cached object, not a new decode
  EXPECT_EQ(a->height, kSize);
  EXPECT_EQ(a->width, kSize);
  EXPECT_EQ(ds->preload(2), 0);
  EXPECT_EQ(ds->cache_bytes(), 6 * kSize * kSize * 3);
  // Subsets share the cache.
  ImageDataset sub = ds->subset({2, 0});
  EXPECT_EQ(sub.image(0).get(), a.get());
  EXPECT_EQ(sub.item(1).filename, "img0.jpg");
  // The cached pixels are load_resized()'s.
  LoadOptions lo;
  lo.size = kSize;
  EXPECT_EQ(load_resized(f.images() + "/img2.jpg", lo).pixels, a->pixels);
}

TEST(Dataset, KeepUncroppedKeepsTheResizedImageAroundTheCrop) {
  Folder f(1);
  LoadOptions lo;
  lo.size = 10;
  lo.keep_uncropped = true;
  // img0: 30 x 40 (h x w) -> 10 x 13, crop x offset int((13 - 10 + 1) / 2) = 2.
  const ResizedImage r = load_resized(f.images() + "/img0.jpg", lo);
  EXPECT_EQ(r.height, 10);
  EXPECT_EQ(r.width, 13);
  EXPECT_EQ(r.crop_x, 2);
  lo.keep_uncropped = false;
  const ResizedImage c = load_resized(f.images() + "/img0.jpg", lo);
  for (int y = 0; y < 10; ++y)
    for (int x = 0; x < 30; ++x)
      ASSERT_EQ(c.pixels[static_cast<size_t>(y) * 30 + x],
                r.crop()[static_cast<size_t>(y) * r.stride() + x]);
}

TEST(DataLoader, InOrderBatchesWithShortLastBatchAndRightContents) {
  Folder f(10);
  auto ds = f.dataset();
  DataLoaderOptions o;
  o.batch_size = 4;
  DataLoader dl(ds, o);
  EXPECT_EQ(dl.num_batches(), 3);
  const auto bs = epoch_batches(dl, 0);
  ASSERT_EQ(bs.size(), 3u);
  EXPECT_EQ(bs[2].size(), 2);
  EXPECT_EQ(flat_indices(bs), (std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
  EXPECT_EQ(bs[0].images.shape(), (Shape{4, 3, kSize, kSize}));
  EXPECT_EQ(bs[0].targets.shape(), (Shape{4, 4}));
  EXPECT_EQ(bs[1].filenames[1], "img5.jpg");
  // Image 5 of the batch = its cached crop normalised; its target multi-hot.
  const NormalizeTable t;
  std::vector<float> expect(3 * kSize * kSize);
  const auto img = ds->image(5);
  normalise_u8(img->crop(), kSize, kSize, img->stride(), expect.data(), t);
  const std::vector<float> got = bs[1].images.select(0, 1).contiguous().to_vector<float>();
  EXPECT_EQ(got, expect);
  std::vector<float> hot(4);
  ds->multi_hot(5, hot.data());
  EXPECT_EQ(bs[1].targets.select(0, 1).contiguous().to_vector<float>(), hot);
  EXPECT_EQ(hot, (std::vector<float>{0, 1, 0, 0}));  // img5: carton
}

TEST(DataLoader, DropLastAndSingleLabelTargets) {
  Folder f(10, /*multi=*/false);
  auto ds = f.dataset();
  EXPECT_FALSE(ds->multi_label());
  DataLoaderOptions o;
  o.batch_size = 4;
  o.drop_last = true;
  o.shuffle = true;
  DataLoader dl(ds, o);
  EXPECT_EQ(dl.num_batches(), 2);
  const auto bs = epoch_batches(dl, 0);
  ASSERT_EQ(bs.size(), 2u);
  EXPECT_EQ(bs[1].size(), 4);
  EXPECT_EQ(bs[0].targets.dtype(), kInt64);
  EXPECT_EQ(bs[0].targets.shape(), (Shape{4}));
  for (int k = 0; k < 4; ++k)
    EXPECT_EQ(bs[0].targets.to_vector<int64_t>()[k], bs[0].indices[k] % 4);  // class i % 4
}

TEST(DataLoader, ShuffleIsDeterministicPerSeedAndEpoch) {
  Folder f(13);
  auto ds = f.dataset();
  DataLoaderOptions o;
  o.batch_size = 5;
  o.shuffle = true;
  o.seed = 42;
  DataLoader a(ds, o), b(ds, o);
  const auto a0 = epoch_batches(a, 0), a1 = epoch_batches(a, 1), b0 = epoch_batches(b, 0);
  EXPECT_EQ(flat_indices(a0), flat_indices(b0));
  EXPECT_NE(flat_indices(a0), flat_indices(a1));
  EXPECT_EQ(flat_indices(a0), a.epoch_order(0));
  RandomState rs(std::vector<uint32_t>{42, 0, 1});
  EXPECT_EQ(flat_indices(a1), rs.permutation(13));
  for (size_t i = 0; i < a0.size(); ++i) EXPECT_TRUE(same_values(a0[i].images, b0[i].images));
  // Each epoch is a permutation of all items.
  std::vector<int64_t> s = flat_indices(a1);
  std::sort(s.begin(), s.end());
  EXPECT_EQ(s, (std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}));
  o.seed = 43;
  DataLoader c(ds, o);
  EXPECT_NE(flat_indices(epoch_batches(c, 0)), flat_indices(a0));
}

TEST(DataLoader, WorkerCountDoesNotChangeBatches) {
  Folder f(11);
  auto ds = f.dataset();
  DataLoaderOptions o;
  o.batch_size = 3;
  o.shuffle = true;
  o.seed = 5;
  o.augment.flip = true;
  o.augment.brightness = 0.2f;
  o.num_workers = 0;
  DataLoader inline_dl(ds, o);
  const auto ref = epoch_batches(inline_dl, 3);
  for (int workers : {1, 3}) {
    for (int prefetch : {1, 4}) {
      o.num_workers = workers;
      o.prefetch = prefetch;
      DataLoader dl(ds, o);
      const auto bs = epoch_batches(dl, 3);
      ASSERT_EQ(bs.size(), ref.size());
      for (size_t i = 0; i < bs.size(); ++i) {
        EXPECT_EQ(bs[i].indices, ref[i].indices);
        EXPECT_TRUE(same_values(bs[i].images, ref[i].images)) << workers << " workers, batch " << i;
        EXPECT_TRUE(same_values(bs[i].targets, ref[i].targets));
      }
    }
  }
}

TEST(DataLoader, EpochsFollowOneAnotherAndRestartMidEpoch) {
  Folder f(7);
  auto ds = f.dataset();
  DataLoaderOptions o;
  o.batch_size = 2;
  o.shuffle = true;
  DataLoader dl(ds, o);
  Batch b;
  int count = 0;
  while (dl.next(b)) ++count;  // epoch 0 starts by itself
  EXPECT_EQ(count, 4);
  EXPECT_EQ(dl.epoch(), 0);
  ASSERT_TRUE(dl.next(b));  // epoch 1
  EXPECT_EQ(dl.epoch(), 1);
  EXPECT_EQ(b.indices[0], dl.epoch_order(1)[0]);
  dl.start_epoch(5);  // abandon epoch 1 with batches in flight
  std::vector<int64_t> seen;
  while (dl.next(b)) seen.insert(seen.end(), b.indices.begin(), b.indices.end());
  EXPECT_EQ(seen, dl.epoch_order(5));
}

TEST(DataLoader, WorkerErrorsReachTheCallerWithTheFileName) {
  Folder f(9);
  // Corrupt image 4 after the labels were read (not preloaded, so a worker meets it).
  testing::write_text(f.images() + "/img4.jpg", "this is not a JPEG");
  auto ds = f.dataset();
  DataLoaderOptions o;
  o.batch_size = 3;
  o.num_workers = 2;
  DataLoader dl(ds, o);
  dl.start_epoch(0);
  Batch b;
  ASSERT_TRUE(dl.next(b));  // 0, 1, 2
  try {
    dl.next(b);  // 3, 4, 5
    ADD_FAILURE() << "expected the bad image's error";
  } catch (const Error& e) {
    EXPECT_THAT(std::string(e.what()),
                AllOf(HasSubstr("img4.jpg"), HasSubstr("not a JPEG or PNG image"),
                      HasSubstr("line 6 of"), HasSubstr("labels.csv")));
  }
  ASSERT_TRUE(dl.next(b));  // the epoch goes on: 6, 7, 8
  EXPECT_EQ(b.indices[0], 6);
  EXPECT_FALSE(dl.next(b));
}

TEST(DataLoader, DestroyedMidEpochStopsCleanly) {
  Folder f(20);
  auto ds = f.dataset();
  DataLoaderOptions o;
  o.batch_size = 2;
  o.num_workers = 3;
  o.prefetch = 2;
  // A hang in the destructor fails the test after a minute instead of blocking the suite (the
  // stuck threads cannot be joined, so the process ends there).
  auto finished = std::async(std::launch::async, [&] {
    int served = 0;
    for (int taken = 0; taken < 4; ++taken) {
      DataLoader dl(ds, o);
      Batch b;
      for (int i = 0; i < taken; ++i) served += dl.next(b);
      // Destroyed here: workers busy decoding, or waiting on a full queue, or never started.
    }
    return served;
  });
  if (finished.wait_for(std::chrono::seconds(60)) != std::future_status::ready) {
    ADD_FAILURE() << "a DataLoader destroyed mid-epoch did not stop within 60 s";
    std::_Exit(1);
  }
  EXPECT_EQ(finished.get(), 0 + 1 + 2 + 3);
}

TEST(DataLoader, BadOptions) {
  Folder f(2);
  auto ds = f.dataset();
  DataLoaderOptions o;
  o.batch_size = 0;
  EXPECT_THROW(DataLoader(ds, o), Error);
  o.batch_size = 1;
  o.prefetch = 0;
  EXPECT_THROW(DataLoader(ds, o), Error);
}

TEST(Augment, DeterministicPerImageAndEpochAndOffByDefault) {
  Folder f(4);
  LoadOptions lo;
  lo.size = kSize;
  lo.keep_uncropped = true;
  auto ds = std::make_shared<ImageDataset>(
      std::make_shared<const LabelTable>(read_labels(f.csv(), f.images())), lo);
  const auto img = ds->image(0);  // 30 x 40 -> 24 x 32 kept, crop at x 4
  EXPECT_EQ(img->width, 32);
  AugmentOptions none;
  EXPECT_FALSE(none.any());
  const AugmentDraw plain = draw_augment(*img, kSize, none, 1, 0, 0);
  EXPECT_EQ(plain.x, img->crop_x);
  EXPECT_FALSE(plain.flip);
  AugmentOptions aug;
  aug.flip = true;
  aug.random_resized_crop = true;
  aug.brightness = 0.3f;
  aug.contrast = 0.3f;
  std::set<std::tuple<bool, int, int, int, int>> draws;
  int flips = 0;
  for (int64_t epoch = 0; epoch < 40; ++epoch) {
    const AugmentDraw d = draw_augment(*img, kSize, aug, 7, epoch, 0);
    const AugmentDraw again = draw_augment(*img, kSize, aug, 7, epoch, 0);
    EXPECT_EQ(d.flip, again.flip);
    EXPECT_EQ(d.x, again.x);
    EXPECT_EQ(d.brightness, again.brightness);
    EXPECT_GE(d.x, 0);
    EXPECT_LE(d.x + d.w, img->width);
    EXPECT_LE(d.y + d.h, img->height);
    EXPECT_LE(std::fabs(d.brightness), 0.3f);
    EXPECT_LE(std::fabs(d.contrast - 1.f), 0.3f);
    flips += d.flip;
    draws.insert({d.flip, d.x, d.y, d.w, d.h});
  }
  EXPECT_GT(flips, 8);  // about half of 40
  EXPECT_LT(flips, 32);
  EXPECT_GT(draws.size(), 20u);
  // Enabling colour jitter does not change the flip and crop draws.
  AugmentOptions geo = aug;
  geo.brightness = geo.contrast = 0;
  const AugmentDraw g = draw_augment(*img, kSize, geo, 7, 3, 0),
                    full = draw_augment(*img, kSize, aug, 7, 3, 0);
  EXPECT_EQ(g.flip, full.flip);
  EXPECT_EQ(g.x, full.x);
  EXPECT_EQ(g.w, full.w);
  // A flip-only rendering is the mirror image of the plain one.
  AugmentOptions flip;
  flip.flip = true;
  const NormalizeTable t;
  std::vector<float> a(3 * kSize * kSize), b(3 * kSize * kSize);
  render_image(*img, kSize, AugmentOptions{}, 7, 0, 0, Normalization{}, t, a.data());
  int64_t e = 0;
  while (!draw_augment(*img, kSize, flip, 7, e, 0).flip) ++e;
  render_image(*img, kSize, flip, 7, e, 0, Normalization{}, t, b.data());
  for (int c = 0; c < 3; ++c)
    for (int y = 0; y < kSize; ++y)
      for (int x = 0; x < kSize; ++x)
        ASSERT_EQ(a[(static_cast<size_t>(c) * kSize + y) * kSize + x],
                  b[(static_cast<size_t>(c) * kSize + y) * kSize + kSize - 1 - x]);
}

TEST(ImageData, RandomSplitIsNumPysOverTheRows) {
  Folder f(20);
  ImageDataOptions o;
  o.csv_path = f.csv();
  o.image_dir = f.images();
  o.load.size = kSize;
  o.valid_pct = 0.25;
  o.seed = 10;
  const ImageData d = load_image_data(o);
  const Split s = split_by_rand_pct(20, 0.25, 10);
  EXPECT_EQ(d.valid->rows(), s.valid);
  EXPECT_EQ(d.train->rows(), s.train);
  EXPECT_TRUE(d.multi_label);
  EXPECT_EQ(d.classes.size(), 4u);
  EXPECT_TRUE(d.train->is_cached(0));  // preloaded
  // Validation keeps its order and its short last batch.
  DataLoaderOptions lo;
  lo.batch_size = 4;
  DataLoader dl(d.valid, lo);
  const auto bs = epoch_batches(dl, 0);
  ASSERT_EQ(bs.size(), 2u);
  EXPECT_EQ(bs[1].size(), 1);
  std::vector<std::string> names;
  for (const auto& b : bs) names.insert(names.end(), b.filenames.begin(), b.filenames.end());
  for (size_t i = 0; i < names.size(); ++i)
    EXPECT_EQ(names[i], "img" + std::to_string(s.valid[i]) + ".jpg");
}

TEST(ImageData, ValidColumnAndValidCsvSplits) {
  Folder f(8, true, /*valid_column=*/true);
  ImageDataOptions o;
  o.csv_path = f.csv();
  o.image_dir = f.images();
  o.load.size = kSize;
  o.split = SplitMode::kValidColumn;
  const ImageData d = load_image_data(o);
  EXPECT_EQ(d.valid->rows(), (std::vector<int64_t>{1, 5}));
  EXPECT_EQ(d.train->size(), 6);
  // A separate validation file with a label the training file lacks: classes cover both.
  testing::write_text(f.dir / "valid.csv", "filename,labels\nimg1.jpg,juice\nimg2.jpg,can\n");
  o.split = SplitMode::kValidCsv;
  o.valid_csv = f.dir / "valid.csv";
  const ImageData v = load_image_data(o);
  EXPECT_EQ(v.train->size(), 8);
  EXPECT_EQ(v.valid->size(), 2);
  EXPECT_EQ(v.classes,
            (std::vector<std::string>{"can", "carton", "juice", "milk_bottle", "water_bottle"}));
  std::vector<float> hot(5);
  v.valid->multi_hot(0, hot.data());
  EXPECT_EQ(hot, (std::vector<float>{0, 0, 1, 0, 0}));
  // The column split needs the column.
  Folder plain(3);
  o.csv_path = plain.csv();
  o.image_dir = plain.images();
  o.split = SplitMode::kValidColumn;
  EXPECT_THAT(
      [&] {
        try {
          load_image_data(o);
        } catch (const Error& e) {
          return std::string(e.what());
        }
        return std::string();
      }(),
      AllOf(HasSubstr("no 'is_valid' column")));
}

TEST(ImageData, NoSplitAndATaskGivenByAModel) {
  // Single-label rows scored by a multi-label model: multi-hot targets, every row in order.
  Folder f(6, /*multi=*/false);
  ImageDataOptions o;
  o.csv_path = f.csv();
  o.image_dir = f.images();
  o.load.size = kSize;
  o.split = SplitMode::kNone;
  o.preload = false;
  EXPECT_FALSE(load_image_data(o).multi_label);
  o.multi_label = true;
  const ImageData d = load_image_data(o);
  EXPECT_TRUE(d.multi_label);
  EXPECT_EQ(d.train->rows(), (std::vector<int64_t>{0, 1, 2, 3, 4, 5}));
  EXPECT_EQ(d.valid->size(), 0);
  EXPECT_FALSE(d.train->is_cached(0));  // preload = false
  DataLoaderOptions lo;
  lo.batch_size = 6;
  DataLoader dl(d.train, lo);
  const auto bs = epoch_batches(dl, 0);
  ASSERT_EQ(bs.size(), 1u);
  ASSERT_EQ(bs[0].targets.shape(), (Shape{6, 4}));  // multi-hot, not class indices
  const std::vector<float> hot = bs[0].targets.to_vector<float>();
  for (int64_t i = 0; i < 6; ++i)  // Folder's row i has the label names[i % 4]
    for (int64_t k = 0; k < 4; ++k) EXPECT_EQ(hot[i * 4 + k], k == i % 4 ? 1.f : 0.f) << i << k;
  // The same rows as a single-label model's: class indices.
  o.multi_label = false;
  DataLoader single(load_image_data(o).train, lo);
  const auto sb = epoch_batches(single, 0);
  ASSERT_EQ(sb.size(), 1u);
  EXPECT_EQ(sb[0].targets.to_vector<int64_t>(), (std::vector<int64_t>{0, 1, 2, 3, 0, 1}));
  // A single-label model's task: a row with two labels is bad.
  Folder m(6, /*multi=*/true);
  o.csv_path = m.csv();
  o.image_dir = m.images();
  o.multi_label = false;
  EXPECT_THAT(error_of([&] { load_image_data(o); }),
              AllOf(HasSubstr("labels.csv:2"), HasSubstr("2 labels for 'img0.jpg'")));
  o.labels.skip_bad = true;
  const ImageData s = load_image_data(o);
  EXPECT_FALSE(s.multi_label);
  EXPECT_EQ(s.skipped, 2);  // img0 and img3
  EXPECT_EQ(s.train->size(), 4);
  // Decoded first with skip_bad: an image that fails is dropped too; without a split, none left
  // is an empty result for the caller to judge, not "no training images after the split".
  o.preload = true;
  testing::write_text(m.images() + "/img1.jpg", "");
  EXPECT_EQ(load_image_data(o).train->size(), 3);
  for (int i = 0; i < 6; ++i) testing::write_text(m.images() + "/img" + std::to_string(i) + ".jpg", "");
  const ImageData none = load_image_data(o);
  EXPECT_EQ(none.train->size(), 0);
  EXPECT_EQ(none.skipped, 6);
}

TEST(ImageData, BadImagesFailNamingFileAndLineOrAreSkipped) {
  Folder f(10);
  testing::write_text(f.images() + "/img3.jpg", "");  // empty
  std::vector<uint8_t> half = testing::test_jpeg(40, 40);
  half.resize(half.size() / 2);
  write_file(f.images() + "/img7.jpg", half);         // truncated
  std::filesystem::remove(f.images() + "/img8.jpg");  // missing
  ImageDataOptions o;
  o.csv_path = f.csv();
  o.image_dir = f.images();
  o.load.size = kSize;
  try {
    load_image_data(o);
    ADD_FAILURE() << "expected an error";
  } catch (const BadDataError& e) {
    EXPECT_EQ(e.kind(), BadDataError::Kind::kRow);
    EXPECT_THAT(std::string(e.what()),
                AllOf(HasSubstr("labels.csv:10"), HasSubstr("img8.jpg' not found")));
  }
  std::filesystem::copy_file(f.images() + "/img0.jpg", f.images() + "/img8.jpg");
  try {
    load_image_data(o);
    ADD_FAILURE() << "expected an error";
  } catch (const BadDataError& e) {  // the first bad image in row order, one to skip
    EXPECT_EQ(e.kind(), BadDataError::Kind::kImage);
    EXPECT_THAT(std::string(e.what()),
                AllOf(HasSubstr("img3.jpg"), HasSubstr("empty file"), HasSubstr("line 5")));
  }
  std::filesystem::remove(f.images() + "/img8.jpg");
  o.labels.skip_bad = true;
  const ImageData d = load_image_data(o);
  EXPECT_EQ(d.skipped, 3);
  EXPECT_EQ(d.train->size() + d.valid->size(), 7);
  const Split s = split_by_rand_pct(7, 0.2, 10);  // over the 7 usable rows
  EXPECT_EQ(d.valid->size(), static_cast<int64_t>(s.valid.size()));
}

// Shuffled batches of 4 from 23 images (6 per epoch) with the given prefetch (on the GPU:
// prefetch + 1 pinned buffers, each reused), loaded for the CPU and for the GPU.
DataLoaderOptions upload_test_options(Device device, int prefetch) {
  DataLoaderOptions o;
  o.batch_size = 4;
  o.shuffle = true;
  o.seed = 3;
  o.prefetch = prefetch;
  o.device = device;
  return o;
}
struct CpuAndGpuLoaders {
  Folder folder{23};
  std::shared_ptr<ImageDataset> ds = folder.dataset();
  DataLoader cpu, gpu;
  explicit CpuAndGpuLoaders(int prefetch = 2)
      : cpu(ds, upload_test_options(Device::cpu(), prefetch)),
        gpu(ds, upload_test_options(Device::cuda(0), prefetch)) {}
};

// One epoch of both loaders (a CPU and a CUDA one over the same data): the same batches.
void expect_same_epoch(DataLoader& cpu, DataLoader& gpu, int64_t epoch) {
  const auto a = epoch_batches(cpu, epoch), b = epoch_batches(gpu, epoch);
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].indices, b[i].indices) << "epoch " << epoch << " batch " << i;
    EXPECT_TRUE(b[i].images.device().is_cuda());
    EXPECT_TRUE(same_values(a[i].images, b[i].images.to(Device::cpu()))) << "batch " << i;
    EXPECT_TRUE(same_values(a[i].targets, b[i].targets.to(Device::cpu())));
  }
}

TEST(DataLoaderCuda, PinnedAsyncUploadsMatchTheCpuBatches) {
  CUDL_REQUIRE_CUDA_OR_SKIP();
  // prefetch 1: the window of one batch ahead, which the upload ahead takes from the workers.
  for (const int prefetch : {2, 1}) {
    SCOPED_TRACE("prefetch " + std::to_string(prefetch));
    CpuAndGpuLoaders l(prefetch);
    for (int epoch = 0; epoch < 2; ++epoch) expect_same_epoch(l.cpu, l.gpu, epoch);
  }
}

// Uploads ahead of use (on the copy stream) across an abandoned epoch and a loader destroyed
// with one pending, with a consumer that keeps every batch: the GPU batches are still the
// CPU's, in order. (Whether a given batch went ahead depends on the workers' timing; the sleeps
// make it likely for the third.)
TEST(DataLoaderCuda, UploadsAheadSurviveAnAbandonedEpoch) {
  CUDL_REQUIRE_CUDA_OR_SKIP();
  CpuAndGpuLoaders l;
  // Two batches of epoch 0, giving the workers time to build the third, which the second
  // next() then uploads ahead; epoch 0 is abandoned with that upload pending.
  const std::vector<Batch> first = epoch_batches(l.cpu, 0);
  l.gpu.start_epoch(0);
  Batch b;
  for (size_t i = 0; i < 2; ++i) {
    ASSERT_TRUE(l.gpu.next(b));
    EXPECT_EQ(b.indices, first[i].indices);
    EXPECT_TRUE(same_values(first[i].images, b.images.to(Device::cpu()))) << "batch " << i;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  for (int epoch = 1; epoch < 3; ++epoch) expect_same_epoch(l.cpu, l.gpu, epoch);
  // Destroyed with an upload ahead pending: nothing is left waiting, and a new loader works.
  {
    DataLoader gpu(l.ds, upload_test_options(Device::cuda(0), 2));
    gpu.start_epoch(0);
    ASSERT_TRUE(gpu.next(b));
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    ASSERT_TRUE(gpu.next(b));
  }
  DataLoader again(l.ds, upload_test_options(Device::cuda(0), 2));
  expect_same_epoch(l.cpu, again, 3);
}

}  // namespace
}  // namespace cudl::data
