// sort [--mode lines|chars] [--generate LINES] INPUT OUTPUT (see crates/sort for the definition).
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include "protocol.hpp"

static const char* USAGE = "usage: sort [--mode lines|chars] [--generate LINES] INPUT OUTPUT";

[[noreturn]] static void usage(const std::string& msg) { wnb::fail("sort", 2, msg + "\n" + USAGE); }

int main(int argc, char** argv) {
    wnb::print_start("sort");
    bool by_chars = false;
    bool generate = false;
    unsigned long long generate_lines = 0;
    std::vector<std::string> files;
    for (int i = 1; i < argc; i++) {
        std::string arg = argv[i];
        if (arg == "--mode") {
            std::string v = i + 1 < argc ? argv[++i] : "";
            if (v == "lines") by_chars = false;
            else if (v == "chars") by_chars = true;
            else usage("--mode takes `lines` or `chars`, got \"" + v + "\"");
        } else if (arg == "--generate") {
            std::string v = i + 1 < argc ? argv[++i] : "";
            char* end = nullptr;
            generate_lines = std::strtoull(v.c_str(), &end, 10);
            if (v.empty() || *end != '\0' || v[0] == '-') usage("--generate takes a line count, got \"" + v + "\"");
            generate = true;
        } else if (arg.rfind("--", 0) == 0) {
            usage("unknown option " + arg);
        } else {
            files.push_back(arg);
        }
    }
    if (files.size() != 2) usage("expected INPUT and OUTPUT, got " + std::to_string(files.size()) + " file arguments");
    const std::string &input_path = files[0], &output_path = files[1];

    if (generate) {
        wnb::SplitMix64 rng(42);
        std::string gen;
        for (unsigned long long l = 0; l < generate_lines; l++) {
            uint64_t len = 3 + rng.next_below(10);
            for (uint64_t k = 0; k < len; k++) gen.push_back(char('a' + rng.next_below(26)));
            gen.push_back('\n');
        }
        if (!wnb::write_file(input_path, gen))
            wnb::fail("sort", 1, "cannot write generated input " + input_path + ": " + std::strerror(errno));
    }
    std::string input;
    if (!wnb::read_file(input_path, input)) wnb::fail("sort", 1, "cannot read " + input_path + ": " + std::strerror(errno));

    std::vector<std::string> lines;
    if (!input.empty()) {
        size_t end = input.back() == '\n' ? input.size() - 1 : input.size();
        size_t pos = 0;
        while (true) {
            size_t nl = input.find('\n', pos);
            if (nl == std::string::npos || nl >= end) {
                lines.push_back(input.substr(pos, end - pos));
                break;
            }
            lines.push_back(input.substr(pos, nl - pos));
            pos = nl + 1;
        }
    }
    // std::string compares as unsigned char, i.e. bytewise, like the Rust and Go versions.
    if (by_chars)
        for (auto& l : lines) std::sort(l.begin(), l.end(), [](char a, char b) { return (unsigned char)a < (unsigned char)b; });
    else
        std::sort(lines.begin(), lines.end());
    std::string output;
    output.reserve(input.size() + 1);
    for (auto& l : lines) {
        output += l;
        output.push_back('\n');
    }
    if (!wnb::write_file(output_path, output))
        wnb::fail("sort", 1, "cannot write " + output_path + ": " + std::strerror(errno));

    wnb::Fnv1a64 hash;
    hash.update(output.data(), output.size());
    std::printf("sort mode=%s lines=%zu bytes=%zu output=%s\n", by_chars ? "chars" : "lines", lines.size(), output.size(),
                output_path.c_str());
    wnb::print_end(hash.state);
    return 0;
}
