// Decoding what the stores hold, as a damaged or foreign store could hold
// it: the embedded store's values (store/stored_value.h) and the etcd
// layout's keys, values and watch events (etcd/layout.h).
//
// The first byte picks the decoder; FuzzedDataProvider splits the rest.
// Properties, beyond not crashing under ASan and UBSan:
// - embedded store: a revision decodes only from decimal digits and spells
//   back to a value that decodes the same; a bad instance value is DataLoss
//   naming the key in hex; a decoded one comes back the same from what a
//   commit writes for it (after one round: a foreign value may hold fields
//   that no commit writes);
// - etcd keys: Parse accepts exactly the keys the layout makes (re-made from
//   the parsed parts, they are the same bytes);
// - etcd values: a decoded instance is the one its key names, with the key's
//   revisions, and decodes the same from what EncodeValue writes for it;
// - etcd watch events: changes come in revision order, one per instance and
//   revision, each of a revision that the events had, none without an id.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstddef>
#include <cstdint>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "etcd/layout.h"
#include "fuzz_support.h"
#include "store/stored_value.h"

namespace muster::fuzz {
namespace {

std::string Hex(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    out.push_back(kHex[c >> 4]);
    out.push_back(kHex[c & 15]);
  }
  return out;
}

void StoreRevision(FuzzedDataProvider& in) {
  const std::string value = in.ConsumeRemainingBytesAsString();
  absl::StatusOr<uint64_t> revision = DecodeStoredRevision(value);
  if (!revision.ok()) {
    CheckError(revision.status(), absl::StatusCode::kDataLoss, false, value);
    return;
  }
  FUZZ_CHECK(!value.empty() && value.find_first_not_of("0123456789") == std::string::npos,
             StrCat("revision decoded from ", Escaped(value)));
  absl::StatusOr<uint64_t> again = DecodeStoredRevision(StoredRevisionValue(*revision));
  FUZZ_CHECK(again.ok() && *again == *revision, StrCat("revision ", *revision, " does not round-trip"));
}

void StoreInstance(FuzzedDataProvider& in) {
  const std::string key = in.ConsumeRandomLengthString(64);
  const std::string value = in.ConsumeRemainingBytesAsString();
  absl::StatusOr<Instance> decoded = DecodeStoredInstance(key, value);
  if (!decoded.ok()) {
    CheckError(decoded.status(), absl::StatusCode::kDataLoss, false, value);
    FUZZ_CHECK(MessageOf(decoded.status()).find(StrCat("under key ", Hex(key), ": ")) !=
                   std::string_view::npos,
               StrCat("message does not name the key: ", Escaped(MessageOf(decoded.status()))));
    return;
  }
  // What Commit writes for it, under its own key, read back; and once more,
  // for the value may have held what no commit writes (a ttl check's
  // target, say), which the first round drops.
  const std::string key1 = StoredInstanceKey(KeyOf(*decoded));
  absl::StatusOr<Instance> loaded = DecodeStoredInstance(key1, StoredInstanceValue(*decoded));
  FUZZ_CHECK(loaded.ok(), loaded.status().ToString());
  FUZZ_CHECK(KeyOf(*loaded) == KeyOf(*decoded), "the names changed in a commit and a load");
  absl::StatusOr<Instance> reloaded = DecodeStoredInstance(key1, StoredInstanceValue(*loaded));
  FUZZ_CHECK(reloaded.ok(), reloaded.status().ToString());
  CheckSameInstance(*loaded, *reloaded, "a stored instance differs after a commit and a load");
}

// A name for the key layout: mostly well-formed, sometimes anything.
std::string Name(FuzzedDataProvider& in) {
  static const char* const kNames[] = {"default", "orders", "v1", "~", "!deregistered", "a/b", ""};
  if (in.ConsumeBool()) return kNames[in.ConsumeIntegralInRange<size_t>(0, std::size(kNames) - 1)];
  return in.ConsumeRandomLengthString(16);
}

etcd::Layout MakeLayout(FuzzedDataProvider& in) {
  switch (in.ConsumeIntegralInRange(0, 3)) {
    case 0:
      return etcd::Layout();
    case 1:
      return etcd::Layout("");
    case 2:
      return etcd::Layout("/m/");
    default:
      return etcd::Layout(in.ConsumeRandomLengthString(12));
  }
}

std::string MakeKey(FuzzedDataProvider& in, const etcd::Layout& layout) {
  switch (in.ConsumeIntegralInRange(0, 2)) {
    case 0: {
      Instance named;
      named.ns = Name(in);
      named.service = Name(in);
      named.version = Name(in);
      named.id = Name(in);
      return layout.InstanceKey(named);
    }
    case 1:
      return layout.DeregisteredKey(Name(in), Name(in));
    default:
      return in.ConsumeRandomLengthString(96);
  }
}

void EtcdKey(FuzzedDataProvider& in) {
  const etcd::Layout layout = MakeLayout(in);
  const std::string key = MakeKey(in, layout);
  std::optional<etcd::Layout::Parsed> parsed = layout.Parse(key);
  if (!parsed) return;
  FUZZ_CHECK(!parsed->ns.empty() && !parsed->service.empty(), StrCat("empty names from ", Escaped(key)));
  std::string remade;
  if (parsed->marker) {
    remade = layout.DeregisteredKey(parsed->ns, parsed->service);
  } else {
    FUZZ_CHECK(!parsed->id.empty(), StrCat("empty id from ", Escaped(key)));
    Instance named;
    named.ns = parsed->ns;
    named.service = parsed->service;
    named.version = parsed->version;
    named.id = parsed->id;
    remade = layout.InstanceKey(named);
  }
  FUZZ_CHECK(remade == key, StrCat(Escaped(key), " parsed and re-made as ", Escaped(remade)));
}

mvccpb::KeyValue MakeKv(FuzzedDataProvider& in, const etcd::Layout& layout) {
  mvccpb::KeyValue kv;
  kv.set_key(MakeKey(in, layout));
  kv.set_create_revision(in.ConsumeIntegral<int64_t>());
  kv.set_mod_revision(in.ConsumeIntegral<int64_t>());
  kv.set_version(in.ConsumeIntegral<int64_t>());
  kv.set_value(in.ConsumeRandomLengthString(1024));
  return kv;
}

void EtcdValue(FuzzedDataProvider& in) {
  const etcd::Layout layout = MakeLayout(in);
  const mvccpb::KeyValue kv = MakeKv(in, layout);
  absl::StatusOr<Instance> decoded = etcd::DecodeInstance(layout, kv);
  if (!decoded.ok()) {
    CheckError(decoded.status(), absl::StatusCode::kInvalidArgument, false, kv.value());
    return;
  }
  FUZZ_CHECK(layout.InstanceKey(*decoded) == kv.key(),
             StrCat("instance ", Escaped(SerializeInstance(*decoded)), " under key ", Escaped(kv.key())));
  FUZZ_CHECK(decoded->modify_revision == static_cast<uint64_t>(kv.mod_revision()),
             "modify_revision is not the key's");
  FUZZ_CHECK(decoded->health == decoded->WorstCheck(), "health is not the checks' worst");
  // What the cluster store writes for it, read back (twice, as above).
  mvccpb::KeyValue written = kv;
  written.set_value(etcd::EncodeValue(*decoded, decoded->create_revision));
  absl::StatusOr<Instance> again = etcd::DecodeInstance(layout, written);
  FUZZ_CHECK(again.ok(), again.status().ToString());
  written.set_value(etcd::EncodeValue(*again, again->create_revision));
  absl::StatusOr<Instance> third = etcd::DecodeInstance(layout, written);
  FUZZ_CHECK(third.ok(), third.status().ToString());
  CheckSameInstance(*again, *third, "an etcd value differs after EncodeValue and DecodeInstance");
}

void EtcdEvents(FuzzedDataProvider& in) {
  const etcd::Layout layout = MakeLayout(in);
  std::vector<mvccpb::Event> events;
  std::set<int64_t> revisions;
  int64_t revision = in.ConsumeIntegralInRange<int64_t>(1, 1000);
  while (events.size() < 16 && in.remaining_bytes() > 0) {
    mvccpb::Event event;
    event.set_type(in.ConsumeBool() ? mvccpb::Event::PUT : mvccpb::Event::DELETE);
    revision += in.ConsumeIntegralInRange<int64_t>(0, 1);
    *event.mutable_kv() = MakeKv(in, layout);
    if (in.ConsumeBool()) {
      // A value that decodes, for the key it sits under.
      if (std::optional<etcd::Layout::Parsed> p = layout.Parse(event.kv().key()); p && !p->marker) {
        Instance instance;
        instance.ns = p->ns;
        instance.service = p->service;
        instance.version = p->version;
        instance.id = p->id;
        instance.address = "127.0.0.1:9000";
        event.mutable_kv()->set_value(etcd::EncodeValue(instance));
      }
    }
    event.mutable_kv()->set_mod_revision(revision);
    if (in.ConsumeBool()) *event.mutable_prev_kv() = MakeKv(in, layout);
    revisions.insert(revision);
    events.push_back(std::move(event));
  }
  const std::vector<Change> changes = etcd::ChangesFromEvents(layout, events);
  FUZZ_CHECK(changes.size() <= events.size(), "more changes than events");
  std::set<std::tuple<uint64_t, std::string, std::string, std::string>> seen;
  uint64_t last = 0;
  for (const Change& change : changes) {
    FUZZ_CHECK(change.revision >= last, "changes out of revision order");
    last = change.revision;
    FUZZ_CHECK(revisions.count(static_cast<int64_t>(change.revision)) == 1,
               StrCat("change at revision ", change.revision, " that no event had"));
    FUZZ_CHECK(!change.instance.id.empty(), "a change without an instance id");
    FUZZ_CHECK(seen.emplace(change.revision, change.instance.ns, change.instance.service,
                            change.instance.id)
                   .second,
               StrCat("two changes of ", change.instance.id, " at revision ", change.revision));
  }
}

}  // namespace
}  // namespace muster::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  switch (in.ConsumeIntegralInRange(0, 4)) {
    case 0:
      muster::fuzz::StoreRevision(in);
      break;
    case 1:
      muster::fuzz::StoreInstance(in);
      break;
    case 2:
      muster::fuzz::EtcdKey(in);
      break;
    case 3:
      muster::fuzz::EtcdValue(in);
      break;
    default:
      muster::fuzz::EtcdEvents(in);
      break;
  }
  return 0;
}
