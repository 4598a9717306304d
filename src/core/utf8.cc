#include "core/utf8.h"

#include <cstdint>

namespace muster {
namespace {

// The length of the well-formed sequence at the start of `s`, or 0 when it
// is ill-formed; `*bad` is then the length of its maximal ill-formed subpart
// (at least 1), the bytes one U+FFFD replaces.
size_t SequenceLength(std::string_view s, size_t* bad) {
  const auto byte = [&](size_t i) { return static_cast<uint8_t>(s[i]); };
  const uint8_t b0 = byte(0);
  *bad = 1;
  if (b0 < 0x80) return 1;
  size_t len = 0;
  uint8_t lo = 0x80, hi = 0xBF;  // the range of the second byte
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    len = 2;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    len = 3;
    if (b0 == 0xE0) lo = 0xA0;  // no overlong forms
    if (b0 == 0xED) hi = 0x9F;  // no surrogates
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    len = 4;
    if (b0 == 0xF0) lo = 0x90;  // no overlong forms
    if (b0 == 0xF4) hi = 0x8F;  // nothing above U+10FFFF
  } else {
    return 0;
  }
  for (size_t i = 1; i < len; ++i) {
    // The bytes before i are a valid start: together they are the
    // ill-formed subpart when byte i is missing or wrong.
    *bad = i;
    if (i >= s.size()) return 0;
    const uint8_t b = byte(i);
    const bool ok = i == 1 ? (b >= lo && b <= hi) : (b >= 0x80 && b <= 0xBF);
    if (!ok) return 0;
  }
  return len;
}

}  // namespace

bool IsValidUtf8(std::string_view text) {
  size_t i = 0;
  while (i < text.size()) {
    // ASCII runs are most of what is checked: skip them a byte at a time
    // without the decoder.
    if (static_cast<uint8_t>(text[i]) < 0x80) {
      ++i;
      continue;
    }
    size_t bad = 0;
    const size_t len = SequenceLength(text.substr(i), &bad);
    if (len == 0) return false;
    i += len;
  }
  return true;
}

std::string ToValidUtf8(std::string_view text) {
  if (IsValidUtf8(text)) return std::string(text);
  std::string out;
  out.reserve(text.size() + 8);
  size_t i = 0;
  while (i < text.size()) {
    size_t bad = 0;
    const size_t len = SequenceLength(text.substr(i), &bad);
    if (len == 0) {
      out += "\xEF\xBF\xBD";
      i += bad;
    } else {
      out.append(text.substr(i, len));
      i += len;
    }
  }
  return out;
}

std::string_view Utf8Prefix(std::string_view text, size_t max_bytes) {
  if (text.size() <= max_bytes) return text;
  size_t end = max_bytes;
  // Back up over continuation bytes to the start of the cut character.
  while (end > 0 && (static_cast<uint8_t>(text[end]) & 0xC0) == 0x80) --end;
  return text.substr(0, end);
}

std::string QuotedPrefix(std::string_view text, size_t max_bytes) {
  const std::string valid = ToValidUtf8(text);
  const std::string_view cut = Utf8Prefix(valid, max_bytes);
  std::string out = "\"";
  out.append(cut);
  out.append(cut.size() < valid.size() ? "...\"" : "\"");
  return out;
}

}  // namespace muster
