// matmul [N]: naive i-j-k product of two deterministic N x N matrices (see crates/matmul).
// Built with -ffp-contract=off: a fused multiply-add would change the rounding per target.
#include <cstring>
#include <vector>

#include "protocol.hpp"

int main(int argc, char** argv) {
    wnb::print_start("matmul");
    long n = 100;
    if (argc > 2) wnb::fail("matmul", 2, "unexpected argument\nusage: matmul [N]");
    if (argc == 2) {
        char* end = nullptr;
        n = std::strtol(argv[1], &end, 10);
        if (*argv[1] == '\0' || *end != '\0' || n < 1 || n > 10000)
            wnb::fail("matmul", 2, std::string("N must be a whole number from 1 to 10000, got \"") + argv[1] + "\"");
    }
    size_t N = size_t(n);
    wnb::SplitMix64 rng(1);
    std::vector<double> a(N * N), b(N * N), c(N * N);
    for (auto& x : a) x = rng.next_f64();
    for (auto& x : b) x = rng.next_f64();
    for (size_t i = 0; i < N; i++)
        for (size_t j = 0; j < N; j++) {
            double sum = 0.0;
            for (size_t k = 0; k < N; k++) sum += a[i * N + k] * b[k * N + j];
            c[i * N + j] = sum;
        }
    wnb::Fnv1a64 hash;
    for (double x : c) {
        uint64_t bits;
        std::memcpy(&bits, &x, 8);
        unsigned char le[8];
        for (int i = 0; i < 8; i++) le[i] = (unsigned char)(bits >> (8 * i));
        hash.update(le, 8);
    }
    std::printf("matmul n=%zu c[0][0]=%.6f c[n-1][n-1]=%.6f\n", N, c[0], c[N * N - 1]);
    wnb::print_end(hash.state);
    return 0;
}
