// The start-of-main protocol and the shared helpers of the C++ workloads.
// The definition lives in crates/protocol (Rust) and the README; this writes the same bytes:
//   WNB start unix_ns=<u64> workload=<name> lang=cpp arch=<amd64|arm64|riscv64|wasm>
//   WNB end unix_ns=<u64> checksum=<16 lowercase hex digits>
#pragma once

#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <string>

#if defined(__x86_64__)
#define WNB_ARCH "amd64"
#elif defined(__aarch64__)
#define WNB_ARCH "arm64"
#elif defined(__riscv) && __riscv_xlen == 64
#define WNB_ARCH "riscv64"
#elif defined(__wasm__)
#define WNB_ARCH "wasm"
#else
#error "unsupported architecture"
#endif

namespace wnb {

inline uint64_t now_unix_ns() {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return uint64_t(ts.tv_sec) * 1000000000u + uint64_t(ts.tv_nsec);
}

inline void print_start(const char* workload) {
    std::printf("WNB start unix_ns=%" PRIu64 " workload=%s lang=cpp arch=%s\n", now_unix_ns(), workload, WNB_ARCH);
    std::fflush(stdout);
}

inline void print_end(uint64_t checksum) {
    std::printf("WNB end unix_ns=%" PRIu64 " checksum=%016" PRIx64 "\n", now_unix_ns(), checksum);
    std::fflush(stdout);
}

[[noreturn]] inline void fail(const char* workload, int code, const std::string& msg) {
    std::fflush(stdout);
    std::fprintf(stderr, "%s: %s\n", workload, msg.c_str());
    std::exit(code);
}

// FNV-1a, 64-bit.
struct Fnv1a64 {
    uint64_t state = 0xcbf29ce484222325ull;
    void update(const void* data, size_t len) {
        const unsigned char* p = static_cast<const unsigned char*>(data);
        for (size_t i = 0; i < len; i++) state = (state ^ p[i]) * 0x100000001b3ull;
    }
};

// SplitMix64, identical to crates/detrand.
struct SplitMix64 {
    uint64_t state;
    explicit SplitMix64(uint64_t seed) : state(seed) {}
    uint64_t next_u64() {
        state += 0x9e3779b97f4a7c15ull;
        uint64_t z = state;
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        return z ^ (z >> 31);
    }
    double next_f64() { return double(next_u64() >> 11) * (1.0 / 9007199254740992.0); }
    uint64_t next_below(uint64_t bound) { return next_u64() % bound; }
};

// Reads a whole file; false if it cannot be read.
inline bool read_file(const std::string& path, std::string& out) {
    FILE* f = std::fopen(path.c_str(), "rb");
    if (!f) return false;
    // A small buffer: clang's default wasm stack is only 64 KiB.
    char buf[4096];
    size_t n;
    out.clear();
    while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
    bool ok = !std::ferror(f);
    std::fclose(f);
    return ok;
}

inline bool write_file(const std::string& path, const std::string& data) {
    FILE* f = std::fopen(path.c_str(), "wb");
    if (!f) return false;
    bool ok = std::fwrite(data.data(), 1, data.size(), f) == data.size();
    return std::fclose(f) == 0 && ok;
}

}  // namespace wnb
