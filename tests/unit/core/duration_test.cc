#include "core/duration.h"

#include <chrono>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "support/status_matchers.h"

namespace muster {
namespace {

using ::muster::testing::IsOk;
using ::muster::testing::StatusIs;
using ::testing::HasSubstr;
using std::chrono::milliseconds;

constexpr auto kInvalid = absl::StatusCode::kInvalidArgument;

// The millisecond value of a duration that must parse.
int64_t Ms(std::string_view text) {
  auto d = ParseDuration(text);
  EXPECT_THAT(d, IsOk()) << text;
  return d.ok() ? d->count() : -1;
}

// Each Go-style unit parses to its length.
TEST(DurationTest, ParsesEachUnit) {
  EXPECT_EQ(Ms("500ms"), 500);
  EXPECT_EQ(Ms("30s"), 30'000);
  EXPECT_EQ(Ms("5m"), 300'000);
  EXPECT_EQ(Ms("1h"), 3'600'000);
  EXPECT_EQ(Ms("1500us"), 2);  // rounded to the nearest millisecond
  EXPECT_EQ(Ms("2000000ns"), 2);
}

// Units combine, largest first, as Go writes them.
TEST(DurationTest, ParsesCompoundDurations) {
  EXPECT_EQ(Ms("1h30m"), 5'400'000);
  EXPECT_EQ(Ms("1m30s"), 90'000);
  EXPECT_EQ(Ms("2h3m4s5ms"), 7'384'005);
}

// Fractions are allowed on any unit.
TEST(DurationTest, ParsesFractions) {
  EXPECT_EQ(Ms("1.5s"), 1'500);
  EXPECT_EQ(Ms("0.5m"), 30'000);
  EXPECT_EQ(Ms(".25s"), 250);
}

// A bare number is seconds ("wait=10" means ten seconds).
TEST(DurationTest, BareNumberIsSeconds) {
  EXPECT_EQ(Ms("10"), 10'000);
  EXPECT_EQ(Ms("0"), 0);
  EXPECT_EQ(Ms("2.5"), 2'500);
}

// Zero is a duration.
TEST(DurationTest, ParsesZero) { EXPECT_EQ(Ms("0s"), 0); }

// The empty string is not a duration.
TEST(DurationTest, RejectsEmpty) {
  EXPECT_THAT(ParseDuration(""), StatusIs(kInvalid, HasSubstr("bad duration \"\"")));
}

// Unknown units are refused, with the input quoted in the message.
TEST(DurationTest, RejectsUnknownUnit) {
  EXPECT_THAT(ParseDuration("5x"), StatusIs(kInvalid, HasSubstr("bad duration \"5x\"")));
  EXPECT_THAT(ParseDuration("5d"), StatusIs(kInvalid, HasSubstr("bad duration")));
  EXPECT_THAT(ParseDuration("5S"), StatusIs(kInvalid, HasSubstr("bad duration")));
}

// A unit without a number is refused.
TEST(DurationTest, RejectsUnitWithoutNumber) {
  EXPECT_THAT(ParseDuration("ms"), StatusIs(kInvalid, HasSubstr("bad duration \"ms\"")));
  EXPECT_THAT(ParseDuration("s"), StatusIs(kInvalid, HasSubstr("bad duration")));
}

// Durations are never negative.
TEST(DurationTest, RejectsNegative) {
  EXPECT_THAT(ParseDuration("-1s"), StatusIs(kInvalid, HasSubstr("bad duration \"-1s\"")));
}

// A bare number only stands alone; spaces, signs and stray characters are refused.
TEST(DurationTest, RejectsMalformedText) {
  for (const char* text : {"1s5", "10 s", " 10s", "10s ", "+1s", "1.2.3s", "1e3s", "1..5s",
                           "5m-1s"}) {
    EXPECT_THAT(ParseDuration(text), StatusIs(kInvalid, HasSubstr("bad duration"))) << text;
  }
}

// A number with no digits at all is refused, not thrown on.
TEST(DurationTest, RejectsLoneDot) {
  EXPECT_THAT(ParseDuration("."), StatusIs(kInvalid, HasSubstr("bad duration")));
  EXPECT_THAT(ParseDuration(".s"), StatusIs(kInvalid, HasSubstr("bad duration")));
}

// Absurdly long or huge inputs are refused rather than overflowing.
TEST(DurationTest, RejectsHugeValues) {
  EXPECT_THAT(ParseDuration("99999999999999h"), StatusIs(kInvalid, HasSubstr("bad duration")));
  EXPECT_THAT(ParseDuration(std::string(40, '1') + "s"),
              StatusIs(kInvalid, HasSubstr("bad duration")));
}

// FormatDuration writes the shortest Go-style spelling.
TEST(DurationTest, FormatsShortestSpelling) {
  EXPECT_EQ(FormatDuration(milliseconds(0)), "0s");
  EXPECT_EQ(FormatDuration(milliseconds(250)), "250ms");
  EXPECT_EQ(FormatDuration(milliseconds(1'000)), "1s");
  EXPECT_EQ(FormatDuration(milliseconds(1'500)), "1.5s");
  EXPECT_EQ(FormatDuration(milliseconds(1'050)), "1.05s");
  EXPECT_EQ(FormatDuration(milliseconds(90'000)), "1m30s");
  EXPECT_EQ(FormatDuration(milliseconds(300'000)), "5m");
  EXPECT_EQ(FormatDuration(milliseconds(3'600'000)), "1h");
  EXPECT_EQ(FormatDuration(milliseconds(5'400'000)), "1h30m");
  EXPECT_EQ(FormatDuration(milliseconds(3'601'000)), "1h1s");
  EXPECT_EQ(FormatDuration(milliseconds(3'723'004)), "1h2m3.004s");
}

// Negative durations keep their sign.
TEST(DurationTest, FormatsNegative) { EXPECT_EQ(FormatDuration(milliseconds(-500)), "-500ms"); }

// What FormatDuration writes, ParseDuration reads back to the same value.
TEST(DurationTest, FormatThenParseRoundTrips) {
  for (int64_t ms : {0, 1, 999, 1'000, 1'001, 59'999, 60'000, 90'500, 3'600'000, 5'400'000,
                     86'400'000, 600'000}) {
    auto parsed = ParseDuration(FormatDuration(milliseconds(ms)));
    ASSERT_THAT(parsed, IsOk()) << ms;
    EXPECT_EQ(parsed->count(), ms);
  }
}

}  // namespace
}  // namespace muster
