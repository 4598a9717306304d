#include "core/footprint.h"

#include <algorithm>
#include <map>

namespace muster {
namespace {

// libstdc++: a red-black tree node is the colour and three links, then the value.
constexpr size_t kMapNodeLinks = 32;
// make_shared's control block (a vtable pointer and two counts) shares the
// object's allocation.
constexpr size_t kSharedControlBlock = 16;

// Upper bounds on what InstanceToJson and CheckToJson write besides the
// strings of the instance: field names, quotes, colons, commas, braces, the
// enum names and the numbers and durations at their longest.
constexpr size_t kInstanceJsonFixed = 256;
constexpr size_t kCheckJsonFixed = 320;

size_t MapBytes(const std::map<std::string, std::string>& map) {
  size_t bytes = 0;
  for (const auto& [k, v] : map) {
    bytes += HeapBlockBytes(kMapNodeLinks + sizeof(std::pair<const std::string, std::string>)) +
             HeapBytes(k) + HeapBytes(v);
  }
  return bytes;
}

size_t CheckHeapBytes(const Check& c) {
  size_t bytes = HeapBytes(c.id) + HeapBytes(c.target) + HeapBytes(c.method) +
                 HeapBytes(c.grpc_service) + HeapBytes(c.output) + MapBytes(c.headers);
  bytes += HeapBlockBytes(c.args.capacity() * sizeof(std::string));
  for (const std::string& a : c.args) bytes += HeapBytes(a);
  return bytes;
}

}  // namespace

size_t HeapBlockBytes(size_t n) {
  if (n == 0) return 0;
  return std::max<size_t>(32, (n + 8 + 15) & ~size_t{15});
}

size_t HeapBytes(const std::string& s) {
  // A default-constructed std::string holds 15 characters inline.
  return s.capacity() > 15 ? HeapBlockBytes(s.capacity() + 1) : 0;
}

size_t ApproximateBytes(const Instance& in) {
  size_t bytes = HeapBlockBytes(sizeof(Instance) + kSharedControlBlock);
  bytes += HeapBytes(in.ns) + HeapBytes(in.service) + HeapBytes(in.id) + HeapBytes(in.version) +
           HeapBytes(in.address);
  bytes += MapBytes(in.metadata);
  bytes += HeapBlockBytes(in.tags.capacity() * sizeof(std::string));
  for (const std::string& t : in.tags) bytes += HeapBytes(t);
  bytes += HeapBlockBytes(in.checks.capacity() * sizeof(Check));
  for (const Check& c : in.checks) bytes += CheckHeapBytes(c);
  return bytes;
}

size_t JsonStringBytes(std::string_view s) {
  size_t bytes = s.size() + 2;
  for (unsigned char ch : s) {
    if (ch == '"' || ch == '\\' || ch == '\b' || ch == '\f' || ch == '\n' || ch == '\r' ||
        ch == '\t') {
      bytes += 1;
    } else if (ch < 0x20 || ch == 0x7f) {
      bytes += 5;  // \u00XX (counted for DEL too, which a serializer may escape)
    }
  }
  return bytes;
}

size_t ApproximateJsonBytes(const Check& c) {
  size_t bytes = kCheckJsonFixed + JsonStringBytes(c.id) + JsonStringBytes(c.target) +
                 JsonStringBytes(c.method) + JsonStringBytes(c.grpc_service) +
                 JsonStringBytes(c.output);
  for (const auto& [k, v] : c.headers) bytes += JsonStringBytes(k) + JsonStringBytes(v) + 2;
  for (const std::string& a : c.args) bytes += JsonStringBytes(a) + 1;
  return bytes;
}

size_t ApproximateJsonBytes(const Instance& in) {
  size_t bytes = kInstanceJsonFixed + JsonStringBytes(in.id) + JsonStringBytes(in.service) +
                 JsonStringBytes(in.ns) + JsonStringBytes(in.version) +
                 JsonStringBytes(in.address);
  for (const auto& [k, v] : in.metadata) bytes += JsonStringBytes(k) + JsonStringBytes(v) + 2;
  if (!in.tags.empty()) bytes += sizeof("\"tags\":[],") - 1;
  for (const std::string& t : in.tags) bytes += JsonStringBytes(t) + 1;
  for (const Check& c : in.checks) bytes += ApproximateJsonBytes(c) + 1;
  return bytes;
}

}  // namespace muster
