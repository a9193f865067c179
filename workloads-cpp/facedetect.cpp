// facedetect CASCADE IMAGE: Viola-Jones face detection, step for step the algorithm specified in
// crates/haar-cascade/src/lib.rs, so both languages report identical boxes.
// PNG decoding: stb_image (Debian libstb-dev). Built with -ffp-contract=off.
#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <vector>

#define STB_IMAGE_IMPLEMENTATION
#define STBI_ONLY_PNG
#define STBI_NO_STDIO
#define STBI_NO_SIMD
#include <stb/stb_image.h>

#include "protocol.hpp"

namespace {

const double SCALE_FACTOR = 1.1;
const size_t MIN_NEIGHBOURS = 3;
const double GROUP_EPS = 0.2;

struct WeightedRect {
    uint32_t x, y, w, h;
    double weight;
};
struct Stump {
    size_t feature;
    double threshold, left, right;
};
struct Stage {
    double threshold;
    std::vector<Stump> stumps;
};
struct Cascade {
    uint32_t width = 0, height = 0;
    std::vector<std::vector<WeightedRect>> features;
    std::vector<Stage> stages;
};
struct Rect {
    int64_t x, y, w, h;
    bool operator<(const Rect& o) const {
        if (x != o.x) return x < o.x;
        if (y != o.y) return y < o.y;
        if (w != o.w) return w < o.w;
        return h < o.h;
    }
};

[[noreturn]] void fail(int code, const std::string& msg) { wnb::fail("facedetect", code, msg); }

// Whitespace-separated tokens of the compact cascade form (see crates/haar-cascade).
struct Tokens {
    const std::string& path;
    const char* p;
    std::string next(const char* what) {
        while (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r') p++;
        const char* start = p;
        while (*p && *p != ' ' && *p != '\n' && *p != '\t' && *p != '\r') p++;
        if (p == start) fail(1, path + ": truncated cascade: missing " + what);
        return std::string(start, p);
    }
    void keyword(const char* kw) {
        std::string t = next(kw);
        if (t != kw) fail(1, path + ": expected `" + kw + "`, found \"" + t + "\"");
    }
    unsigned long long uint(const char* what) {
        std::string t = next(what);
        char* end = nullptr;
        unsigned long long v = std::strtoull(t.c_str(), &end, 10);
        if (*end != '\0' || t[0] == '-') fail(1, path + ": bad " + what + ": \"" + t + "\"");
        return v;
    }
    double real(const char* what) {
        std::string t = next(what);
        char* end = nullptr;
        double v = std::strtod(t.c_str(), &end);
        if (*end != '\0') fail(1, path + ": bad " + what + ": \"" + t + "\"");
        return v;
    }
};

Cascade read_cascade(const std::string& path) {
    std::string text;
    if (!wnb::read_file(path, text)) fail(1, "cannot read " + path + ": " + std::strerror(errno));
    const std::string magic = "wnb-haar-cascade v1\n";
    if (text.compare(0, magic.size(), magic) != 0)
        fail(1, path + ": not a compact cascade: the first line must be `wnb-haar-cascade v1`");
    Tokens t{path, text.c_str() + magic.size()};
    Cascade c;
    t.keyword("window");
    c.width = uint32_t(t.uint("window width"));
    c.height = uint32_t(t.uint("window height"));
    if (c.width < 3 || c.height < 3) fail(1, path + ": window is too small");
    t.keyword("features");
    size_t n_features = t.uint("feature count");
    for (size_t i = 0; i < n_features; i++) {
        size_t n = t.uint("rectangle count");
        if (n < 1 || n > 3) fail(1, path + ": feature " + std::to_string(i) + " needs 1 to 3 rectangles");
        std::vector<WeightedRect> rects;
        for (size_t k = 0; k < n; k++) {
            WeightedRect r;
            r.x = uint32_t(t.uint("x"));
            r.y = uint32_t(t.uint("y"));
            r.w = uint32_t(t.uint("w"));
            r.h = uint32_t(t.uint("h"));
            r.weight = t.real("weight");
            if (r.x + r.w > c.width || r.y + r.h > c.height)
                fail(1, path + ": feature " + std::to_string(i) + " has a rectangle outside the window");
            rects.push_back(r);
        }
        c.features.push_back(rects);
    }
    t.keyword("stages");
    size_t n_stages = t.uint("stage count");
    if (n_stages == 0) fail(1, path + ": the cascade has no stages");
    for (size_t s = 0; s < n_stages; s++) {
        Stage stage;
        size_t n = t.uint("stump count");
        stage.threshold = t.real("stage threshold");
        for (size_t k = 0; k < n; k++) {
            Stump st;
            st.feature = t.uint("feature index");
            st.threshold = t.real("threshold");
            st.left = t.real("left value");
            st.right = t.real("right value");
            if (st.feature >= c.features.size()) fail(1, path + ": stage " + std::to_string(s) + " uses an unknown feature");
            stage.stumps.push_back(st);
        }
        c.stages.push_back(stage);
    }
    while (*t.p == ' ' || *t.p == '\n' || *t.p == '\t' || *t.p == '\r') t.p++;
    if (*t.p) fail(1, path + ": unexpected data after the last stage");
    return c;
}

int64_t rect_sum(const std::vector<int64_t>& table, size_t stride, size_t x, size_t y, size_t w, size_t h) {
    return table[(y + h) * stride + x + w] - table[y * stride + x + w] - table[(y + h) * stride + x] + table[y * stride + x];
}

int64_t round_half_up(double v) { return int64_t(std::floor(v + 0.5)); }

std::vector<Rect> detect_raw(const Cascade& c, const std::vector<uint8_t>& gray, size_t width, size_t height) {
    const size_t win_w = c.width, win_h = c.height;
    std::vector<Rect> found;
    std::vector<uint8_t> resized;
    double scale = 1.0;
    while (true) {
        size_t sw = size_t(double(width) / scale), sh = size_t(double(height) / scale);
        if (sw < win_w || sh < win_h) break;
        resized.clear();
        for (size_t y = 0; y < sh; y++) {
            size_t src_row = (y * height / sh) * width;
            for (size_t x = 0; x < sw; x++) resized.push_back(gray[src_row + x * width / sw]);
        }
        size_t stride = sw + 1;
        std::vector<int64_t> sum(stride * (sh + 1), 0), sq(stride * (sh + 1), 0);
        for (size_t y = 0; y < sh; y++) {
            int64_t row_sum = 0, row_sq = 0;
            for (size_t x = 0; x < sw; x++) {
                int64_t v = resized[y * sw + x];
                row_sum += v;
                row_sq += v * v;
                sum[(y + 1) * stride + x + 1] = sum[y * stride + x + 1] + row_sum;
                sq[(y + 1) * stride + x + 1] = sq[y * stride + x + 1] + row_sq;
            }
        }
        size_t step = scale > 2.0 ? 1 : 2;
        int64_t inner_area = int64_t((win_w - 2) * (win_h - 2));
        for (size_t y = 0; y + win_h <= sh; y += step) {
            for (size_t x = 0; x + win_w <= sw; x += step) {
                int64_t s = rect_sum(sum, stride, x + 1, y + 1, win_w - 2, win_h - 2);
                int64_t q = rect_sum(sq, stride, x + 1, y + 1, win_w - 2, win_h - 2);
                int64_t var = inner_area * q - s * s;
                double nf = var > 0 ? std::sqrt(double(var)) : 1.0;
                bool passed = true;
                for (const Stage& stage : c.stages) {
                    double total = 0.0;
                    for (const Stump& st : stage.stumps) {
                        double value = 0.0;
                        for (const WeightedRect& r : c.features[st.feature])
                            value += r.weight * double(rect_sum(sum, stride, x + r.x, y + r.y, r.w, r.h));
                        total += value < st.threshold * nf ? st.left : st.right;
                    }
                    if (total < stage.threshold) {
                        passed = false;
                        break;
                    }
                }
                if (passed)
                    found.push_back(Rect{round_half_up(double(x) * scale), round_half_up(double(y) * scale),
                                         round_half_up(double(win_w) * scale), round_half_up(double(win_h) * scale)});
            }
        }
        scale *= SCALE_FACTOR;
    }
    return found;
}

bool alike(const Rect& a, const Rect& b) {
    double delta = GROUP_EPS * double(std::min(a.w, b.w) + std::min(a.h, b.h)) * 0.5;
    auto close = [delta](int64_t p, int64_t q) { return double(p > q ? p - q : q - p) <= delta; };
    return close(a.x, b.x) && close(a.y, b.y) && close(a.x + a.w, b.x + b.w) && close(a.y + a.h, b.y + b.h);
}

size_t root(std::vector<size_t>& parent, size_t i) {
    while (parent[i] != i) {
        parent[i] = parent[parent[i]];
        i = parent[i];
    }
    return i;
}

std::vector<Rect> group(const std::vector<Rect>& raw) {
    std::vector<size_t> parent(raw.size());
    for (size_t i = 0; i < raw.size(); i++) parent[i] = i;
    for (size_t i = 0; i < raw.size(); i++)
        for (size_t j = 0; j < i; j++)
            if (alike(raw[i], raw[j])) {
                size_t ri = root(parent, i), rj = root(parent, j);
                if (ri != rj) parent[std::max(ri, rj)] = std::min(ri, rj);
            }
    std::vector<size_t> count(raw.size(), 0);
    std::vector<Rect> sums(raw.size(), Rect{0, 0, 0, 0});
    for (size_t i = 0; i < raw.size(); i++) {
        size_t c = root(parent, i);
        count[c]++;
        sums[c].x += raw[i].x;
        sums[c].y += raw[i].y;
        sums[c].w += raw[i].w;
        sums[c].h += raw[i].h;
    }
    std::vector<Rect> faces;
    for (size_t c = 0; c < raw.size(); c++) {
        if (count[c] <= MIN_NEIGHBOURS) continue;
        int64_t n = int64_t(count[c]);
        auto mean = [n](int64_t v) { return (2 * v + n) / (2 * n); };
        faces.push_back(Rect{mean(sums[c].x), mean(sums[c].y), mean(sums[c].w), mean(sums[c].h)});
    }
    std::sort(faces.begin(), faces.end());
    return faces;
}

}  // namespace

int main(int argc, char** argv) {
    wnb::print_start("facedetect");
    if (argc != 3) fail(2, "usage: facedetect CASCADE IMAGE");
    Cascade cascade = read_cascade(argv[1]);
    std::string png;
    if (!wnb::read_file(argv[2], png)) fail(1, std::string("cannot read ") + argv[2] + ": " + std::strerror(errno));
    int w = 0, h = 0, channels = 0;
    unsigned char* rgb = stbi_load_from_memory(reinterpret_cast<const stbi_uc*>(png.data()), int(png.size()), &w, &h,
                                               &channels, 3);
    if (!rgb) fail(1, std::string(argv[2]) + ": not a readable PNG: " + stbi_failure_reason());
    std::vector<uint8_t> gray(size_t(w) * size_t(h));
    for (size_t i = 0; i < gray.size(); i++) {
        const unsigned char* p = rgb + 3 * i;
        gray[i] = uint8_t((299u * p[0] + 587u * p[1] + 114u * p[2] + 500u) / 1000u);
    }
    stbi_image_free(rgb);

    std::vector<Rect> faces = group(detect_raw(cascade, gray, size_t(w), size_t(h)));
    std::string text;
    for (const Rect& f : faces) {
        std::printf("face x=%lld y=%lld w=%lld h=%lld\n", (long long)f.x, (long long)f.y, (long long)f.w, (long long)f.h);
        text += std::to_string(f.x) + " " + std::to_string(f.y) + " " + std::to_string(f.w) + " " + std::to_string(f.h) + "\n";
    }
    std::printf("faces=%zu\n", faces.size());
    wnb::Fnv1a64 hash;
    hash.update(text.data(), text.size());
    wnb::print_end(hash.state);
    return 0;
}
