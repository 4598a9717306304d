// The instance and check JSON decoder (core/json_codec.h), both ways it is
// used: ParseRegistration on a register request's body (strict, validated)
// and ParseInstance on what the registry itself wrote (lenient).
//
// Properties, beyond not crashing under ASan and UBSan:
// - a rejected body is InvalidArgument with a UTF-8 message;
// - an accepted registration is valid, keeps the path's names, and comes back
//   the same, field for field, from what the store writes for it
//   (SerializeInstance, read by ParseInstance after a restart) and from
//   sending its listed JSON back as a registration;
// - whatever ParseInstance accepts, it reads the same from its own encoding
//   (SerializeInstance is a fixpoint after one round).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/json_codec.h"
#include "core/validation.h"
#include "fuzz_support.h"

namespace muster::fuzz {
namespace {

constexpr std::string_view kNs = "default", kService = "orders", kId = "orders-1";

void Lenient(std::string_view text, bool utf8) {
  absl::StatusOr<Instance> in = ParseInstance(text);
  if (!in.ok()) {
    CheckError(in.status(), absl::StatusCode::kInvalidArgument, utf8, text);
    return;
  }
  const std::string once = SerializeInstance(*in);
  FUZZ_CHECK(IsUtf8(once), StrCat("encoding is not UTF-8: ", Escaped(once)));
  absl::StatusOr<Instance> again = ParseInstance(once);
  FUZZ_CHECK(again.ok(), StrCat("its own encoding does not decode: ", Escaped(once), ": ",
                                again.status().ToString()));
  const std::string twice = SerializeInstance(*again);
  FUZZ_CHECK(twice == once, StrCat("encoding changed in a round trip:\n", Escaped(once), "\n",
                                   Escaped(twice)));
}

void Strict(std::string_view text, bool utf8) {
  const Limits limits;
  absl::StatusOr<Instance> in = ParseRegistration(text, kNs, kService, kId, limits);
  if (!in.ok()) {
    CheckError(in.status(), absl::StatusCode::kInvalidArgument, utf8, text);
    return;
  }
  FUZZ_CHECK(ValidateInstance(*in, limits).ok(), "an accepted registration is not valid");
  FUZZ_CHECK(in->ns == kNs && in->service == kService && in->id == kId,
             StrCat("names not the path's: ", SerializeInstance(*in)));
  // What the embedded store writes and reads back after a restart. The
  // registry fills in check states and health before it stores an instance.
  Instance stored = *in;
  stored.AdoptCheckStates(nullptr);
  stored.create_revision = 7;
  stored.modify_revision = 9;
  absl::StatusOr<Instance> loaded = ParseInstance(SerializeInstance(stored));
  FUZZ_CHECK(loaded.ok(), loaded.status().ToString());
  CheckSameInstance(stored, *loaded, "a registered instance differs after the store's round trip");
  // A listed instance sent back registers the same instance.
  absl::StatusOr<Instance> resent =
      ParseRegistration(SerializeInstance(stored), kNs, kService, kId, limits);
  FUZZ_CHECK(resent.ok(), StrCat("its listed JSON is refused: ", resent.status().ToString(), "\n",
                                 Escaped(SerializeInstance(stored))));
  FUZZ_CHECK(resent->SameSpec(*in), StrCat("its listed JSON registers another instance:\n",
                                           Escaped(text), "\n", Escaped(SerializeInstance(*resent))));
}

}  // namespace
}  // namespace muster::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const bool utf8 = muster::fuzz::IsUtf8(text);
  muster::fuzz::Lenient(text, utf8);
  muster::fuzz::Strict(text, utf8);
  return 0;
}
