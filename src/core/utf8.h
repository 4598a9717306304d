// UTF-8 checks for text musterd echoes back: every JSON answer must be valid
// UTF-8, including error messages that quote what a client sent.
#pragma once

#include <string>
#include <string_view>

namespace muster {

// Whether `text` is well-formed UTF-8 (RFC 3629: no overlong forms, no
// surrogates, nothing above U+10FFFF).
bool IsValidUtf8(std::string_view text);

// `text` with each ill-formed sequence replaced by U+FFFD (one per maximal
// ill-formed subpart, as Unicode recommends); valid text is returned as it is.
std::string ToValidUtf8(std::string_view text);

// The longest prefix of valid UTF-8 `text` of at most `max_bytes` bytes that
// does not cut a character in two.
std::string_view Utf8Prefix(std::string_view text, size_t max_bytes);

// Any `text` as an error message quotes it: made valid UTF-8, cut to at most
// `max_bytes` bytes (then ending in "..."), in double quotes.
std::string QuotedPrefix(std::string_view text, size_t max_bytes = 64);

}  // namespace muster
