#include "core/validation.h"

#include <string>
#include <string_view>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "support/status_matchers.h"

namespace muster {
namespace {

using ::muster::testing::IsOk;
using ::muster::testing::StatusIs;
using ::testing::AllOf;
using ::testing::HasSubstr;

constexpr auto kInvalid = absl::StatusCode::kInvalidArgument;

Instance GoodInstance() {
  Instance in;
  in.ns = "default";
  in.service = "orders";
  in.id = "orders-1";
  in.version = "1.4.2";
  in.address = "10.1.2.3:8080";
  in.metadata = {{"zone", "eu-1"}};
  return in;
}

// Every character of [A-Za-z0-9._-] is allowed in a name.
TEST(ValidationTest, AcceptsNameOfAllAllowedCharacters) {
  EXPECT_THAT(ValidateName("service", "ABCxyz019._-", Limits{}), IsOk());
  EXPECT_THAT(ValidateName("service", "a", Limits{}), IsOk());
}

// A name must have at least one character, and the error names the field.
TEST(ValidationTest, RejectsEmptyName) {
  EXPECT_THAT(ValidateName("service", "", Limits{}),
              StatusIs(kInvalid, HasSubstr("service must not be empty")));
}

// A slash would break the URL paths names appear in.
TEST(ValidationTest, RejectsNameWithSlash) {
  EXPECT_THAT(ValidateName("id", "a/b", Limits{}),
              StatusIs(kInvalid, AllOf(HasSubstr("id"), HasSubstr("may contain only"))));
}

// Characters outside [A-Za-z0-9._-] are refused, whatever they are.
TEST(ValidationTest, RejectsNameWithCharactersOutsideTheAllowedSet) {
  for (const char* name : {"a b", "a@b", "a:b", "a+b", "a%2Fb", "caf\xc3\xa9", "a\tb", "a*",
                           "a?b", "a\"b", "a\\b"}) {
    EXPECT_THAT(ValidateName("metadata key", name, Limits{}),
                StatusIs(kInvalid, HasSubstr("metadata key may contain only")))
        << name;
  }
}

// A NUL byte inside a name is refused too (string_view keeps it).
TEST(ValidationTest, RejectsNameWithNulByte) {
  EXPECT_THAT(ValidateName("id", std::string_view("a\0b", 3), Limits{}),
              StatusIs(kInvalid, HasSubstr("may contain only")));
}

// The default limit is 128 characters: 128 passes, 129 does not.
TEST(ValidationTest, AcceptsNameOf128CharsAndRejects129) {
  EXPECT_THAT(ValidateName("id", std::string(128, 'a'), Limits{}), IsOk());
  EXPECT_THAT(ValidateName("id", std::string(129, 'a'), Limits{}),
              StatusIs(kInvalid, HasSubstr("id is longer than 128 characters")));
}

// The name length limit follows Limits (--max-name-length).
TEST(ValidationTest, NameLengthFollowsConfiguredLimit) {
  Limits limits;
  limits.max_name_length = 8;
  EXPECT_THAT(ValidateName("service", "12345678", limits), IsOk());
  EXPECT_THAT(ValidateName("service", "123456789", limits),
              StatusIs(kInvalid, HasSubstr("longer than 8")));
}

// host:port with a host name, IPv4 or bracketed IPv6 and a port 1..65535.
TEST(ValidationTest, AcceptsAddressForms) {
  for (const char* address : {"localhost:8080", "orders.svc.cluster.local:80", "1.2.3.4:80",
                              "[::1]:80", "[2001:db8::7]:443", "host-1:1", "host:65535"}) {
    EXPECT_THAT(ValidateAddress(address, Limits{}), IsOk()) << address;
  }
}

// An address without a port is not host:port.
TEST(ValidationTest, RejectsAddressWithoutPort) {
  EXPECT_THAT(ValidateAddress("localhost", Limits{}),
              StatusIs(kInvalid, AllOf(HasSubstr("address"), HasSubstr("no port"))));
  EXPECT_THAT(ValidateAddress("1.2.3.4:", Limits{}),
              StatusIs(kInvalid, AllOf(HasSubstr("address"), HasSubstr("port"))));
}

// Port 0 is not a port a client can call.
TEST(ValidationTest, RejectsPortZero) {
  EXPECT_THAT(ValidateAddress("1.2.3.4:0", Limits{}),
              StatusIs(kInvalid, HasSubstr("port must be 1..65535")));
}

// 65536 does not fit in a port.
TEST(ValidationTest, RejectsPortAbove65535) {
  EXPECT_THAT(ValidateAddress("1.2.3.4:65536", Limits{}),
              StatusIs(kInvalid, HasSubstr("port must be 1..65535")));
  EXPECT_THAT(ValidateAddress("1.2.3.4:99999999", Limits{}),
              StatusIs(kInvalid, HasSubstr("port")));
}

// A port must be decimal digits only.
TEST(ValidationTest, RejectsNonNumericPort) {
  for (const char* address : {"1.2.3.4:http", "1.2.3.4:8o", "1.2.3.4:-1", "1.2.3.4:+80"}) {
    EXPECT_THAT(ValidateAddress(address, Limits{}), StatusIs(kInvalid, HasSubstr("port")))
        << address;
  }
}

// ":80" has no host.
TEST(ValidationTest, RejectsEmptyHost) {
  EXPECT_THAT(ValidateAddress(":80", Limits{}),
              StatusIs(kInvalid, HasSubstr("empty host")));
}

// IPv6 needs both brackets, and something between them.
TEST(ValidationTest, RejectsUnbalancedBrackets) {
  EXPECT_THAT(ValidateAddress("[::1:80", Limits{}),
              StatusIs(kInvalid, HasSubstr("unbalanced brackets")));
  EXPECT_THAT(ValidateAddress("[]:80", Limits{}),
              StatusIs(kInvalid, HasSubstr("unbalanced brackets")));
  EXPECT_THAT(ValidateAddress("::1]:80", Limits{}), StatusIs(kInvalid, HasSubstr("address")));
}

// An unbracketed IPv6 address is ambiguous about where the port starts.
TEST(ValidationTest, RejectsUnbracketedIpv6) {
  EXPECT_THAT(ValidateAddress("::1:80", Limits{}),
              StatusIs(kInvalid, HasSubstr("bad host character")));
}

// Spaces, slashes and schemes are not part of a host.
TEST(ValidationTest, RejectsBadHostCharacters) {
  for (const char* address : {"my host:80", "http://a:80", "a/b:80", "[::g]:80"}) {
    EXPECT_THAT(ValidateAddress(address, Limits{}), StatusIs(kInvalid, HasSubstr("address")))
        << address;
  }
}

// Addresses have a length limit, so a huge one is refused before parsing.
TEST(ValidationTest, RejectsOverlongAddress) {
  std::string address = absl::StrCat(std::string(300, 'a'), ":80");
  EXPECT_THAT(ValidateAddress(address, Limits{}), StatusIs(kInvalid, HasSubstr("too long")));
}

// SplitHostPort gives the host without brackets and the numeric port, for
// either use.
TEST(ValidationTest, SplitHostPortSplitsEveryAddressForm) {
  using HostPort = std::pair<std::string, uint16_t>;
  for (AddressUse use : {AddressUse::kListen, AddressUse::kDial}) {
    EXPECT_EQ(SplitHostPort("localhost:8470", use).value_or(HostPort{}), HostPort("localhost", 8470));
    EXPECT_EQ(SplitHostPort("1.2.3.4:80", use).value_or(HostPort{}), HostPort("1.2.3.4", 80));
    EXPECT_EQ(SplitHostPort("[::1]:80", use).value_or(HostPort{}), HostPort("::1", 80));
    EXPECT_EQ(SplitHostPort("[::ffff:1.2.3.4]:1", use).value_or(HostPort{}), HostPort("::ffff:1.2.3.4", 1));
    EXPECT_EQ(SplitHostPort("h:65535", use).value_or(HostPort{}), HostPort("h", 65535));
  }
}

// A listen address may ask for any free port with port 0; an address to dial
// may not.
TEST(ValidationTest, SplitHostPortAllowsPortZeroOnlyToListen) {
  auto split = SplitHostPort("127.0.0.1:0", AddressUse::kListen);
  ASSERT_THAT(split, IsOk());
  EXPECT_EQ(split->first, "127.0.0.1");
  EXPECT_EQ(split->second, 0);
  EXPECT_THAT(SplitHostPort("[::1]:0", AddressUse::kListen), IsOk());
  EXPECT_THAT(SplitHostPort("127.0.0.1:0", AddressUse::kDial),
              StatusIs(kInvalid, HasSubstr("port must be 1..65535")));
  EXPECT_THAT(SplitHostPort("[::1]:0", AddressUse::kDial),
              StatusIs(kInvalid, HasSubstr("port must be 1..65535")));
}

// SplitHostPort refuses what ValidateAddress refuses, port 0 aside: no or
// empty port, a port over 65535 or with more than five digits, signs, no
// host, unbalanced brackets, an unbracketed IPv6 address, an overlong address.
TEST(ValidationTest, SplitHostPortRejectsMalformedAddresses) {
  const std::string overlong = absl::StrCat(std::string(300, 'a'), ":80");
  for (AddressUse use : {AddressUse::kListen, AddressUse::kDial}) {
    for (std::string_view address :
         {std::string_view("localhost"), std::string_view("localhost:"), std::string_view(":80"),
          std::string_view("[::1:80"), std::string_view("[]:80"), std::string_view("1.2.3.4:65536"),
          std::string_view("1.2.3.4:000080"), std::string_view("1.2.3.4:-1"),
          std::string_view("1.2.3.4:+80"), std::string_view("1.2.3.4:8o"),
          std::string_view("::1:80"), std::string_view("a b:80"), std::string_view(""),
          std::string_view(overlong)}) {
      EXPECT_THAT(SplitHostPort(address, use), StatusIs(kInvalid, HasSubstr("address"))) << address;
    }
  }
}

// A complete, ordinary instance passes.
TEST(ValidationTest, AcceptsGoodInstance) { EXPECT_THAT(ValidateInstance(GoodInstance(), Limits{}), IsOk()); }

// Weight is 1..10000 inclusive.
TEST(ValidationTest, WeightBoundsAreOneAndTenThousand) {
  Instance in = GoodInstance();
  in.weight = 0;
  EXPECT_THAT(ValidateInstance(in, Limits{}),
              StatusIs(kInvalid, HasSubstr("weight must be 1..10000")));
  in.weight = 1;
  EXPECT_THAT(ValidateInstance(in, Limits{}), IsOk());
  in.weight = 10000;
  EXPECT_THAT(ValidateInstance(in, Limits{}), IsOk());
  in.weight = 10001;
  EXPECT_THAT(ValidateInstance(in, Limits{}),
              StatusIs(kInvalid, HasSubstr("weight must be 1..10000")));
}

// ttl_seconds is 0..86400; 0 means no lease and is allowed.
TEST(ValidationTest, TtlBoundsAreZeroAndOneDay) {
  Instance in = GoodInstance();
  in.ttl_seconds = 0;
  EXPECT_THAT(ValidateInstance(in, Limits{}), IsOk());
  in.ttl_seconds = 86400;
  EXPECT_THAT(ValidateInstance(in, Limits{}), IsOk());
  in.ttl_seconds = 86401;
  EXPECT_THAT(ValidateInstance(in, Limits{}),
              StatusIs(kInvalid, HasSubstr("ttl_seconds must be 0..86400")));
}

// 64 metadata entries are allowed, 65 are not.
TEST(ValidationTest, RejectsMoreThan64MetadataEntries) {
  Instance in = GoodInstance();
  in.metadata.clear();
  for (int i = 0; i < 64; ++i) in.metadata[absl::StrCat("k", i)] = "v";
  EXPECT_THAT(ValidateInstance(in, Limits{}), IsOk());
  in.metadata["k64"] = "v";
  EXPECT_THAT(ValidateInstance(in, Limits{}),
              StatusIs(kInvalid, HasSubstr("metadata has more than 64 entries")));
}

// A metadata value may be 512 bytes, not 513.
TEST(ValidationTest, RejectsMetadataValueOver512Bytes) {
  Instance in = GoodInstance();
  in.metadata = {{"blob", std::string(512, 'x')}};
  EXPECT_THAT(ValidateInstance(in, Limits{}), IsOk());
  in.metadata = {{"blob", std::string(513, 'x')}};
  EXPECT_THAT(ValidateInstance(in, Limits{}),
              StatusIs(kInvalid, AllOf(HasSubstr("metadata value of \"blob\""),
                                       HasSubstr("over 512 bytes"))));
}

// Tags: at most 64, each 1..128 bytes without control characters, each once;
// any other text is a tag (punctuation, spaces, UTF-8).
TEST(ValidationTest, TagsAreBoundedNonEmptyPrintableAndDistinct) {
  Instance in = GoodInstance();
  in.tags = {"primary", "traefik.http.routers.api.rule=Host(`a.example`)", "zone eu-1", "\xc3\xa9t\xc3\xa9",
             std::string(128, 'x')};
  EXPECT_THAT(ValidateInstance(in, Limits{}), IsOk());
  in.tags = {std::string(129, 'x')};
  EXPECT_THAT(ValidateInstance(in, Limits{}),
              StatusIs(kInvalid, HasSubstr("a tag is longer than 128 bytes")));
  in.tags = {""};
  EXPECT_THAT(ValidateInstance(in, Limits{}), StatusIs(kInvalid, HasSubstr("must not be empty")));
  in.tags = {"a\nb"};
  EXPECT_THAT(ValidateInstance(in, Limits{}), StatusIs(kInvalid, HasSubstr("control characters")));
  in.tags = {"a", "b", "a"};
  EXPECT_THAT(ValidateInstance(in, Limits{}), StatusIs(kInvalid, HasSubstr("\"a\" is given twice")));
  in.tags.clear();
  for (int i = 0; i < 64; ++i) in.tags.push_back(absl::StrCat("t", i));
  EXPECT_THAT(ValidateInstance(in, Limits{}), IsOk());
  in.tags.push_back("t64");
  EXPECT_THAT(ValidateInstance(in, Limits{}), StatusIs(kInvalid, HasSubstr("more than 64 tags")));
}

// Metadata keys are names.
TEST(ValidationTest, RejectsMetadataKeyThatIsNotAName) {
  Instance in = GoodInstance();
  in.metadata = {{"zone name", "a"}};
  EXPECT_THAT(ValidateInstance(in, Limits{}),
              StatusIs(kInvalid, HasSubstr("metadata key may contain only")));
  in.metadata = {{"", "a"}};
  EXPECT_THAT(ValidateInstance(in, Limits{}),
              StatusIs(kInvalid, HasSubstr("metadata key must not be empty")));
}

// The version may be empty, but when given it is a name.
TEST(ValidationTest, VersionIsOptionalButMustBeAName) {
  Instance in = GoodInstance();
  in.version = "";
  EXPECT_THAT(ValidateInstance(in, Limits{}), IsOk());
  in.version = "1.0+build";
  EXPECT_THAT(ValidateInstance(in, Limits{}),
              StatusIs(kInvalid, HasSubstr("version may contain only")));
}

// Each of namespace, service and id is checked, and the error says which.
TEST(ValidationTest, NamesTheOffendingIdentityField) {
  Instance in = GoodInstance();
  in.ns = "team a";
  EXPECT_THAT(ValidateInstance(in, Limits{}), StatusIs(kInvalid, HasSubstr("namespace")));
  in = GoodInstance();
  in.service = "";
  EXPECT_THAT(ValidateInstance(in, Limits{}),
              StatusIs(kInvalid, HasSubstr("service must not be empty")));
  in = GoodInstance();
  in.id = std::string(129, 'i');
  EXPECT_THAT(ValidateInstance(in, Limits{}),
              StatusIs(kInvalid, HasSubstr("id is longer than 128")));
}

// The address of an instance goes through ValidateAddress.
TEST(ValidationTest, RejectsInstanceWithBadAddress) {
  Instance in = GoodInstance();
  in.address = "10.1.2.3";
  EXPECT_THAT(ValidateInstance(in, Limits{}),
              StatusIs(kInvalid, AllOf(HasSubstr("address"), HasSubstr("no port"))));
}

}  // namespace
}  // namespace muster
