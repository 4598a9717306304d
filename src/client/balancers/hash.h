// Hashing for the balancers: a stable 64-bit string hash for placing instances
// (ring points, Maglev offsets) and a 64-bit mixer for request keys and random
// numbers.
//
// Stable means the same on every host, build and run (unlike std::hash or
// absl::Hash): two clients balancing the same instance list put the same key
// on the same instance.
#pragma once

#include <cstdint>
#include <string_view>

namespace muster {

// MurmurHash64A (Austin Appleby, public domain): fast, well distributed.
// Bytes are read little-endian whatever the host, so results are portable.
inline uint64_t Hash64(std::string_view data, uint64_t seed) {
  constexpr uint64_t kMul = 0xc6a4a7935bd1e995ULL;
  constexpr int kShift = 47;
  const auto* p = reinterpret_cast<const unsigned char*>(data.data());
  size_t n = data.size();
  uint64_t h = seed ^ (n * kMul);
  for (; n >= 8; n -= 8, p += 8) {
    uint64_t k = 0;
    for (int i = 7; i >= 0; --i) k = (k << 8) | p[i];
    k *= kMul;
    k ^= k >> kShift;
    k *= kMul;
    h ^= k;
    h *= kMul;
  }
  if (n > 0) {
    for (size_t i = n; i-- > 0;) h ^= uint64_t{p[i]} << (8 * i);
    h *= kMul;
  }
  h ^= h >> kShift;
  h *= kMul;
  h ^= h >> kShift;
  return h;
}

// A bijective 64-bit mixer (the splitmix64 finalizer): every input bit affects
// every output bit. Applied to request hash keys so that small or sequential
// keys spread over the whole ring or table.
inline uint64_t Mix64(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

// A uniform number in [0, n) from a uniform 64-bit `r`, by multiply-shift
// (Lemire's "fastrange"): no division, and the bias is below n / 2^64.
inline uint64_t Below(uint64_t r, uint64_t n) {
  __extension__ using Uint128 = unsigned __int128;
  return static_cast<uint64_t>((static_cast<Uint128>(r) * n) >> 64);
}

}  // namespace muster
