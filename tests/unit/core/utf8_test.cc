#include "core/utf8.h"

#include <gtest/gtest.h>

namespace muster {
namespace {

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";

TEST(Utf8Test, AcceptsWellFormedText) {
  for (std::string_view s : std::initializer_list<std::string_view>{"", "plain ascii", "caf\xC3\xA9", "\xE2\x82\xAC 5", "\xF0\x9F\x98\x80",
                             "\xED\x9F\xBF", "\xF4\x8F\xBF\xBF", std::string_view("nul\0inside", 10)}) {
    EXPECT_TRUE(IsValidUtf8(s)) << s;
    EXPECT_EQ(ToValidUtf8(s), s);
  }
}

TEST(Utf8Test, RejectsIllFormedText) {
  for (std::string_view s : {"\xFF", "\x80", "a\xC3", "\xC0\xAF" /* overlong */, "\xE0\x80\xAF",
                             "\xED\xA0\x80" /* surrogate */, "\xF4\x90\x80\x80" /* over U+10FFFF */,
                             "\xF5\x80\x80\x80", "\xE2\x82", "\xF0\x9F\x98"}) {
    EXPECT_FALSE(IsValidUtf8(s)) << s;
    EXPECT_TRUE(IsValidUtf8(ToValidUtf8(s))) << s;
  }
}

// One U+FFFD per maximal ill-formed subpart (Unicode's recommended practice).
TEST(Utf8Test, ReplacesEachIllFormedSubpartOnce) {
  EXPECT_EQ(ToValidUtf8("a\xFF" "b"), std::string("a") + std::string(kReplacement) + "b");
  EXPECT_EQ(ToValidUtf8("\xE2\x82" "A"), std::string(kReplacement) + "A");  // a cut euro sign
  EXPECT_EQ(ToValidUtf8("\xF0\x9F\x98"), std::string(kReplacement));
  EXPECT_EQ(ToValidUtf8("\xC0\xAF"), std::string(kReplacement) + std::string(kReplacement));
  EXPECT_EQ(ToValidUtf8("\xED\xA0\x80"),
            std::string(kReplacement) + std::string(kReplacement) + std::string(kReplacement));
}

TEST(Utf8Test, PrefixDoesNotCutACharacter) {
  const std::string text = "ab\xC3\xA9" "cd";  // a b é c d
  EXPECT_EQ(Utf8Prefix(text, 3), "ab");
  EXPECT_EQ(Utf8Prefix(text, 4), "ab\xC3\xA9");
  EXPECT_EQ(Utf8Prefix(text, 100), text);
  EXPECT_EQ(Utf8Prefix("\xF0\x9F\x98\x80", 3), "");
  EXPECT_TRUE(IsValidUtf8(Utf8Prefix(std::string(63, 'a') + "\xC3\xA9", 64)));
}

}  // namespace
}  // namespace muster
