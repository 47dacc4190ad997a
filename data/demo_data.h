// A deterministic generator of a small multi-label "fridge objects" dataset in the layout of the
// notebook's data: DIR/labels.csv ("filename,labels", labels separated by one space) and
// DIR/images/<n>.jpg, n = 1..num_images, JPEG quality 90 through libjpeg.
//
// The classes are the notebook's: can, carton, milk_bottle, water_bottle. Each image shows a
// random non-empty subset of them (all 15 subsets equally likely), each kind drawn with its own
// silhouette and colouring, in varied sizes, colours, positions and order, over a varied,
// textured background (gradients, stripes, smooth colour noise, shelves), with distractor blobs,
// global lighting and colour changes and pixel noise:
//   can           short metallic cylinder (about 0.6 as wide as tall), rims, a highlight, a band
//   carton        gable-top box (roof triangle and fin), a darker side, a coloured band
//   milk_bottle   opaque white body, rounded shoulder and neck, a coloured cap
//   water_bottle  tall, narrow, see-through blue body with ridges, a label band, a blue cap
// Objects keep inside the vertical band that a centre square crop keeps (12.5%..87.5% of the
// height of the default 3:4 portrait image) and are large enough to stay recognisable when the
// image is resized to 64 pixels. Image i depends only on (seed, i).
//
// Learnable but not trivial: no single pixel predicts a label (tests/data/test_demo_data.cpp),
// while a small CNN trained from scratch at 64 px on the default 128 images reaches a validation
// hamming accuracy of 0.9 within about a minute on two CPU cores (bench/data_demo.sh, PyTorch).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "data/image.h"

namespace cudl::data {

struct DemoDataOptions {
  int64_t num_images = 128;
  int height = 333;  // portrait 3:4, half the notebook's 499x666 photos
  int width = 250;
  uint64_t seed = 0;
  int quality = 90;
  int threads = 0;  // for writing; 0: all cores
};

struct DemoDataSummary {
  std::string csv_path;
  std::string image_dir;
  int64_t num_images = 0;
  std::vector<std::string> classes;
  std::vector<int64_t> class_counts;  // images showing each class
};

// can, carton, milk_bottle, water_bottle (sorted, as the classes of a labels file are).
const std::vector<std::string>& demo_classes();

// Image `index` (0-based) and the sorted ids of the classes it shows.
Image render_demo_image(const DemoDataOptions& options, int64_t index, std::vector<int>* labels);

// Writes DIR/labels.csv and DIR/images/*.jpg (creating the folders; existing files with the same
// names are replaced; labels.csv is written last, through a temporary file and a rename).
DemoDataSummary write_demo_data(const std::string& dir, const DemoDataOptions& options = {});

}  // namespace cudl::data
