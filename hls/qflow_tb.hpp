// C-simulation testbench of a generated top: int64 input codes in, int64 outputs out.
//
//   tb INPUT OUTPUT [EXPECTED]
// INPUT: raw little-endian int64 codes [N, InFeatures]; OUTPUT: the top's outputs
// [N, OutFeatures] decoded as OT, same format; EXPECTED (optional): reference outputs,
// and the exit status is 1 unless every output equals it. Exit status 2 on bad input.
#ifndef QFLOW_TB_HPP
#define QFLOW_TB_HPP

#include <cstdint>
#include <cstdio>
#include <vector>

#include "qflow_types.hpp"

namespace qflow {

inline bool read_int64(const char* path, std::vector<int64_t>& data) {
  std::FILE* f = std::fopen(path, "rb");
  if (!f) return false;
  int64_t v;
  while (std::fread(&v, sizeof v, 1, f) == 1) data.push_back(v);
  const bool ok = !std::ferror(f);
  std::fclose(f);
  return ok;
}

template <class IT, unsigned InFeatures, unsigned InElems, class OT, unsigned OutFeatures,
          unsigned OutElems, class Top>
int testbench(int argc, char** argv, Top top) {
  if (argc != 3 && argc != 4) {
    std::fprintf(stderr, "usage: %s INPUT.bin OUTPUT.bin [EXPECTED.bin]\n", argv[0]);
    return 2;
  }
  std::vector<int64_t> codes, expected;
  if (!read_int64(argv[1], codes) || codes.size() % InFeatures) {
    std::fprintf(stderr, "%s: not int64 codes [N, %u]\n", argv[1], InFeatures);
    return 2;
  }
  const std::size_t n = codes.size() / InFeatures;
  if (argc == 4 && (!read_int64(argv[3], expected) || expected.size() != n * OutFeatures)) {
    std::fprintf(stderr, "%s: not int64 outputs [%zu, %u]\n", argv[3], n, OutFeatures);
    return 2;
  }
  std::vector<int64_t> outputs(n * OutFeatures);
  hls::stream<ap_uint<InElems * IT::bits>> in("tb.in");
  hls::stream<ap_uint<OutElems * OT::bits>> out("tb.out");
  for (std::size_t i = 0; i < n; i++) {
    for (unsigned w = 0; w < InFeatures / InElems; w++) {
      ap_uint<InElems * IT::bits> word = 0;
      for (unsigned e = 0; e < InElems; e++) {
        const int64_t c = codes[i * InFeatures + w * InElems + e];
        const ap_uint<IT::bits> f = IT::encode(c);
        if (int64_t(IT::decode(f)) != c) {
          std::fprintf(stderr, "sample %zu, input %u: code %lld outside the input type\n", i,
                       w * InElems + e, static_cast<long long>(c));
          return 2;
        }
        set_field<IT::bits>(word, e, f);
      }
      in.write(word);
    }
    top(in, out);
    for (unsigned w = 0; w < OutFeatures / OutElems; w++) {
      const ap_uint<OutElems * OT::bits> word = out.read();
      for (unsigned e = 0; e < OutElems; e++)
        outputs[i * OutFeatures + w * OutElems + e] = OT::decode(field<OT::bits>(word, e));
    }
    if (!in.empty() || !out.empty()) {
      std::fprintf(stderr, "sample %zu: the top left %zu input / %zu output words\n", i,
                   in.size(), out.size());
      return 2;
    }
  }
  std::FILE* f = std::fopen(argv[2], "wb");
  if (!f || std::fwrite(outputs.data(), sizeof(int64_t), outputs.size(), f) != outputs.size()) {
    std::fprintf(stderr, "%s: cannot write\n", argv[2]);
    if (f) std::fclose(f);
    return 2;
  }
  std::fclose(f);
  std::size_t wrong = 0;
  for (std::size_t i = 0; i < expected.size(); i++) wrong += outputs[i] != expected[i];
  std::printf("qflow csim: %zu samples, %zu of %zu outputs differ from the expected\n", n,
              wrong, expected.size());
  return wrong ? 1 : 0;
}

}  // namespace qflow

#endif  // QFLOW_TB_HPP
