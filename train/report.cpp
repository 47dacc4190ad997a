#include "train/report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

namespace cudl::train {

std::string html_escape(const std::string& s) {
  std::string r;
  r.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&': r += "&amp;"; break;
      case '<': r += "&lt;"; break;
      case '>': r += "&gt;"; break;
      case '"': r += "&quot;"; break;
      case '\'': r += "&#39;"; break;
      default: r += c;
    }
  }
  return r;
}

std::string base64(const std::vector<uint8_t>& b) {
  static const char* tbl = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string r;
  r.reserve((b.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < b.size(); i += 3) {
    uint32_t v = (uint32_t(b[i]) << 16) | (uint32_t(b[i + 1]) << 8) | b[i + 2];
    r += tbl[v >> 18];
    r += tbl[(v >> 12) & 63];
    r += tbl[(v >> 6) & 63];
    r += tbl[v & 63];
  }
  if (i < b.size()) {
    uint32_t v = uint32_t(b[i]) << 16;
    if (i + 1 < b.size()) v |= uint32_t(b[i + 1]) << 8;
    r += tbl[v >> 18];
    r += tbl[(v >> 12) & 63];
    r += i + 1 < b.size() ? tbl[(v >> 6) & 63] : '=';
    r += '=';
  }
  return r;
}

namespace {

std::string fmt(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

// 1, 2 or 5 times a power of ten, close to range / target_ticks.
double nice_step(double range, int target_ticks) {
  if (!(range > 0)) return 1.0;
  double raw = range / target_ticks;
  double p = std::pow(10.0, std::floor(std::log10(raw)));
  double m = raw / p;
  double nice = m < 1.5 ? 1 : m < 3.5 ? 2 : m < 7.5 ? 5 : 10;
  return nice * p;
}

int decimals_for(double step) {
  if (step >= 1) return 0;
  return static_cast<int>(std::ceil(-std::log10(step) - 1e-9));
}

}  // namespace

std::string svg_line_chart(const std::vector<Series>& series, const std::string& title,
                           const std::string& x_label, const std::string& y_label, int width,
                           int height, double marker_x, const std::string& marker_label) {
  double xmin = INFINITY, xmax = -INFINITY, ymin = INFINITY, ymax = -INFINITY;
  for (const Series& s : series) {
    for (size_t i = 0; i < s.x.size() && i < s.y.size(); ++i) {
      if (!std::isfinite(s.x[i]) || !std::isfinite(s.y[i])) continue;
      xmin = std::min(xmin, s.x[i]);
      xmax = std::max(xmax, s.x[i]);
      ymin = std::min(ymin, s.y[i]);
      ymax = std::max(ymax, s.y[i]);
    }
  }
  if (!std::isfinite(xmin)) { xmin = 0; xmax = 1; ymin = 0; ymax = 1; }
  if (xmax <= xmin) xmax = xmin + 1;
  if (ymax <= ymin) { ymax += 0.5; ymin -= 0.5; }
  const double ystep = nice_step(ymax - ymin, 5);
  ymin = std::floor(ymin / ystep) * ystep;
  ymax = std::ceil(ymax / ystep) * ystep;
  const double xstep = nice_step(xmax - xmin, 6);

  const int left = 60, right = 16, top = 34, bottom = 46;
  const double pw = width - left - right, ph = height - top - bottom;
  auto px = [&](double x) { return left + (x - xmin) / (xmax - xmin) * pw; };
  auto py = [&](double y) { return top + (1 - (y - ymin) / (ymax - ymin)) * ph; };

  std::ostringstream o;
  o << "<svg class='chart' width='" << width << "' height='"
    << height << "' viewBox='0 0 " << width << " " << height << "' role='img' aria-label='"
    << html_escape(title) << "'>";
  o << "<text x='" << width / 2 << "' y='20' text-anchor='middle' class='ct'>" << html_escape(title)
    << "</text>";
  // grid and ticks
  for (double y = ymin; y <= ymax + ystep * 1e-6; y += ystep) {
    o << "<line x1='" << left << "' x2='" << left + pw << "' y1='" << fmt(py(y), 1) << "' y2='"
      << fmt(py(y), 1) << "' class='grid'/>";
    o << "<text x='" << left - 6 << "' y='" << fmt(py(y) + 4, 1) << "' text-anchor='end' class='tick'>"
      << fmt(y, decimals_for(ystep)) << "</text>";
  }
  for (double x = std::ceil(xmin / xstep) * xstep; x <= xmax + xstep * 1e-6; x += xstep) {
    o << "<line x1='" << fmt(px(x), 1) << "' x2='" << fmt(px(x), 1) << "' y1='" << top
      << "' y2='" << top + ph << "' class='grid'/>";
    o << "<text x='" << fmt(px(x), 1) << "' y='" << top + ph + 16 << "' text-anchor='middle' class='tick'>"
      << fmt(x, decimals_for(xstep)) << "</text>";
  }
  o << "<rect x='" << left << "' y='" << top << "' width='" << pw << "' height='" << ph
    << "' class='frame'/>";
  o << "<text x='" << left + pw / 2 << "' y='" << height - 8 << "' text-anchor='middle' class='al'>"
    << html_escape(x_label) << "</text>";
  o << "<text transform='translate(14," << top + ph / 2 << ") rotate(-90)' text-anchor='middle' class='al'>"
    << html_escape(y_label) << "</text>";
  if (std::isfinite(marker_x)) {
    o << "<line x1='" << fmt(px(marker_x), 1) << "' x2='" << fmt(px(marker_x), 1) << "' y1='" << top
      << "' y2='" << top + ph << "' class='marker'/>";
    o << "<text x='" << fmt(px(marker_x) + 4, 1) << "' y='" << top + 12 << "' class='tick'>"
      << html_escape(marker_label) << "</text>";
  }
  // series, then the legend on a light box so it stays readable where it must cover a line
  for (const Series& s : series) {
    std::string pts;
    for (size_t i = 0; i < s.x.size() && i < s.y.size(); ++i) {
      if (!std::isfinite(s.y[i])) continue;
      pts += fmt(px(s.x[i]), 1) + "," + fmt(py(s.y[i]), 1) + " ";
    }
    o << "<polyline fill='none' stroke='" << s.colour << "' stroke-width='2'"
      << (s.dashed ? " stroke-dasharray='6 4'" : "") << " points='" << pts << "'/>";
    for (size_t i = 0; i < s.x.size() && i < s.y.size(); ++i) {
      if (!std::isfinite(s.y[i])) continue;
      o << "<circle cx='" << fmt(px(s.x[i]), 1) << "' cy='" << fmt(py(s.y[i]), 1) << "' r='2.5' fill='"
        << s.colour << "'><title>" << html_escape(s.name) << ": " << fmt(s.y[i], 4) << "</title></circle>";
    }
  }
  // The legend box goes into the corner of the plot that hides the fewest points of the lines
  // (each segment sampled), preferring top right, bottom right, top left, bottom left on ties.
  const double box_w = 132, box_h = 16.0 * series.size() + 4;
  const double corners[4][2] = {{left + pw - box_w - 4, top + 2.0},
                                {left + pw - box_w - 4, top + ph - box_h - 2},
                                {left + 4.0, top + 2.0},
                                {left + 4.0, top + ph - box_h - 2}};
  int best = 0;
  long best_hidden = -1;
  for (int c = 0; c < 4; ++c) {
    const double bx = corners[c][0], by = corners[c][1];
    long hidden = 0;
    for (const Series& s : series) {
      for (size_t i = 0; i < s.x.size() && i < s.y.size(); ++i) {
        if (!std::isfinite(s.y[i])) continue;
        const bool has_next = i + 1 < s.x.size() && i + 1 < s.y.size() && std::isfinite(s.y[i + 1]);
        const int samples = has_next ? 8 : 1;
        for (int k = 0; k < samples; ++k) {
          const double f = static_cast<double>(k) / samples;
          const double X = px(s.x[i]) + (has_next ? f * (px(s.x[i + 1]) - px(s.x[i])) : 0);
          const double Y = py(s.y[i]) + (has_next ? f * (py(s.y[i + 1]) - py(s.y[i])) : 0);
          hidden += X >= bx && X <= bx + box_w && Y >= by && Y <= by + box_h;
        }
      }
    }
    if (best_hidden < 0 || hidden < best_hidden) {
      best = c;
      best_hidden = hidden;
    }
  }
  const double lx = corners[best][0], ly = corners[best][1];
  if (!series.empty()) {
    o << "<rect x='" << fmt(lx, 1) << "' y='" << fmt(ly, 1) << "' width='" << box_w << "' height='"
      << box_h << "' class='legendbox'/>";
  }
  double legend_y = ly + 8;
  for (const Series& s : series) {
    o << "<line x1='" << fmt(lx + 6, 1) << "' x2='" << fmt(lx + 26, 1) << "' y1='" << fmt(legend_y, 1)
      << "' y2='" << fmt(legend_y, 1) << "' stroke='" << s.colour << "' stroke-width='2'"
      << (s.dashed ? " stroke-dasharray='6 4'" : "") << "/>";
    o << "<text x='" << fmt(lx + 32, 1) << "' y='" << fmt(legend_y + 4, 1) << "' class='tick'>"
      << html_escape(s.name) << "</text>";
    legend_y += 16;
  }
  o << "</svg>";
  return o.str();
}

namespace {

std::string image_grid(const std::vector<ReportImage>& images) {
  std::ostringstream o;
  o << "<div class='grid'>";
  for (const ReportImage& im : images) {
    o << "<figure><img alt='" << html_escape(im.caption) << "' src='data:image/jpeg;base64,"
      << base64(im.jpeg) << "'/><figcaption><div class='fn'>" << html_escape(im.caption) << "</div>";
    for (size_t i = 0; i < im.labels.size(); ++i) {
      int c = i < im.marks.size() ? im.marks[i] : -1;
      o << "<span class='lab " << (c == 1 ? "ok" : c == 0 ? "bad" : c == 2 ? "miss" : "") << "'>"
        << html_escape(im.labels[i]) << "</span>";
    }
    if (im.labels.empty()) o << "<span class='lab none'>(no label)</span>";
    o << "</figcaption></figure>";
  }
  o << "</div>";
  return o.str();
}

}  // namespace

std::string render_report(const ReportData& d) {
  std::ostringstream o;
  o << "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>" << html_escape(d.title)
    << "</title><style>"
       "body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:24px auto;"
       "max-width:1100px;color:#222;background:#fafafa;padding:0 16px}"
       "h1{font-size:1.6em;margin-bottom:4px}h2{font-size:1.2em;margin-top:28px;"
       "border-bottom:1px solid #ddd;padding-bottom:4px}"
       "table{border-collapse:collapse;font-size:.9em}td,th{padding:3px 10px;text-align:right;"
       "border-bottom:1px solid #e5e5e5}th{background:#f0f0f0}td.k{text-align:left;color:#555}"
       ".charts{display:flex;flex-wrap:wrap;gap:12px}.chart{background:#fff;border:1px solid #ddd;"
       "border-radius:6px}.ct{font-size:14px;font-weight:600}.tick{font-size:11px;fill:#444}"
       ".al{font-size:12px;fill:#333}.grid{stroke:#eee}.frame{fill:none;stroke:#999}"
       ".marker{stroke:#c00;stroke-dasharray:4 3}.legendbox{fill:#fff;fill-opacity:.85;stroke:#ddd}"
       "div.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(170px,1fr));gap:10px}"
       "figure{margin:0;background:#fff;border:1px solid #ddd;border-radius:6px;padding:6px}"
       "figure img{width:100%;height:auto;display:block;border-radius:3px}"
       "figcaption{font-size:.8em;margin-top:4px}.fn{color:#777;margin-bottom:2px}"
       ".lab{display:inline-block;margin:1px 3px 1px 0;padding:0 5px;border-radius:3px;"
       "background:#e8e8e8}.lab.ok{background:#d3f2d3;color:#145214}.lab.bad{background:#f7d4d4;"
       "color:#7a1010;text-decoration:line-through}.lab.miss{background:#fff3cd;color:#6b5200;"
       "outline:1px dashed #c90}.lab.none{background:none;color:#999}"
       ".legend span{margin-right:12px}"
       "</style></head><body>";
  o << "<h1>" << html_escape(d.title) << "</h1>";
  if (!d.summary.empty()) {
    o << "<table>";
    for (const auto& [k, v] : d.summary)
      o << "<tr><td class='k'>" << html_escape(k) << "</td><td>" << html_escape(v) << "</td></tr>";
    o << "</table>";
  }

  if (!d.history.empty()) {
    o << "<h2>Training curves</h2><div class='charts'>";
    Series tl{"train loss", "#1f77b4", {}, {}}, vl{"valid loss", "#ff7f0e", {}, {}};
    Series th{"train hamming", "#1f77b4", {}, {}, true}, vh{"valid hamming", "#1f77b4", {}, {}};
    Series tz{"train zero-one", "#2ca02c", {}, {}, true}, vz{"valid zero-one", "#2ca02c", {}, {}};
    for (const EpochRecord& r : d.history) {
      double e = r.epoch;
      tl.x.push_back(e); tl.y.push_back(r.train_loss);
      vl.x.push_back(e); vl.y.push_back(r.valid_loss);
      th.x.push_back(e); th.y.push_back(r.train_hamming);
      vh.x.push_back(e); vh.y.push_back(r.valid_hamming);
      tz.x.push_back(e); tz.y.push_back(r.train_zero_one);
      vz.x.push_back(e); vz.y.push_back(r.valid_zero_one);
    }
    o << svg_line_chart({tl, vl}, "Loss", "epoch", "BCE loss", 520, 300);
    o << svg_line_chart({th, vh, tz, vz}, "Accuracy", "epoch", "accuracy", 520, 300);
    o << "</div>";
    o << "<table><tr><th>epoch</th><th>train_loss</th><th>valid_loss</th><th>train_hamming</th>"
         "<th>valid_hamming</th><th>train_zero_one</th><th>valid_zero_one</th><th>time (s)</th></tr>";
    for (const EpochRecord& r : d.history) {
      o << "<tr><td>" << r.epoch << "</td><td>" << fmt(r.train_loss, 4) << "</td><td>"
        << fmt(r.valid_loss, 4) << "</td><td>" << fmt(r.train_hamming, 4) << "</td><td>"
        << fmt(r.valid_hamming, 4) << "</td><td>" << fmt(r.train_zero_one, 4) << "</td><td>"
        << fmt(r.valid_zero_one, 4) << "</td><td>" << fmt(r.seconds, 2) << "</td></tr>";
    }
    o << "</table>";
  }

  if (!d.sweep.thresholds.empty()) {
    o << "<h2>Metrics vs threshold (validation)</h2><div class='charts'>";
    Series h{"hamming", "#1f77b4", d.sweep.thresholds, d.sweep.hamming};
    Series z{"zero-one", "#2ca02c", d.sweep.thresholds, d.sweep.zero_one};
    o << svg_line_chart({h, z}, "Accuracy vs threshold", "threshold (probability)", "accuracy", 520,
                        300, d.sweep.best_threshold,
                        "best " + fmt(d.sweep.best_threshold, 2));
    o << "</div><p>Optimal threshold " << fmt(d.sweep.best_threshold, 2) << ": zero-one accuracy "
      << fmt(d.sweep.best_zero_one, 4) << ", hamming accuracy " << fmt(d.sweep.best_hamming, 4)
      << " (model threshold " << fmt(d.threshold, 2) << "; a label is predicted when its "
         "probability is strictly above the threshold).</p>";
  }
  if (!d.train_images.empty()) {
    o << "<h2>Training images and their labels</h2>" << image_grid(d.train_images);
  }
  if (!d.valid_images.empty()) {
    o << "<h2>Validation predictions</h2><p class='legend'><span class='lab ok'>predicted and "
         "true</span><span class='lab bad'>predicted, not true</span><span class='lab miss'>true, "
         "missed</span></p>"
      << image_grid(d.valid_images);
  }
  o << "</body></html>\n";
  return o.str();
}

}  // namespace cudl::train
