// How a subcommand talks to musterd and shows what it answered: CallAndPrint
// sends one request and prints the answer (verbatim with --json, else through
// the subcommand's renderer); the helpers read fields of the JSON answer and
// lay them out as text and tables.
#pragma once

#include <boost/json.hpp>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "cli/options.h"
#include "core/wire/http_client.h"

namespace muster::cli {

namespace json = boost::json;
using wire::HttpResponse;

// ---------------------------------------------------------------------------
// Reading answers.

absl::Status UnexpectedAnswer(std::string_view why);

absl::StatusOr<json::object> ParseObject(const std::string& text);

// A non-negative integer field; 0 when absent or of another type.
uint64_t GetUnsigned(const json::object& o, std::string_view key);

// A string field; empty when absent or of another type.
std::string GetString(const json::object& o, std::string_view key);

// The array field `key`; UnexpectedAnswer when missing.
absl::StatusOr<const json::array*> GetArray(const json::object& o, std::string_view key);

// ---------------------------------------------------------------------------
// Output.

// Prints a body verbatim (--json), ending it with a newline.
void PrintRaw(const std::string& body);

// Prints rows under a header, each column padded to its widest cell and
// separated by two spaces; the last column is not padded.
void PrintTable(const std::vector<std::string>& header,
                const std::vector<std::vector<std::string>>& rows);

// "k=v,k=v" in key order, "-" when empty.
std::string FormatMetadata(const std::map<std::string, std::string>& metadata);
// Tags joined with commas in their order; "-" when none.
std::string FormatTags(const std::vector<std::string>& tags);

std::string FormatTtl(uint64_t seconds);

// ---------------------------------------------------------------------------
// One request and its answer.

// One request of a subcommand; `target` from core/wire/paths.h.
struct Request {
  std::string method;
  std::string target;
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers = {};
};

// Prints a successful answer as text; gets the response and its JSON object.
using Render = std::function<absl::Status(const HttpResponse&, const json::object&)>;

// Sends `request` (bounded by --timeout) and returns the 2xx answer; any other
// becomes the error status the server described.
absl::StatusOr<HttpResponse> Call(const GlobalOptions& options, Request request);

// Sends `request` (bounded by --timeout) and prints the answer: verbatim with
// --json, else through `render`. A non-2xx answer becomes the error status the
// server described.
absl::Status CallAndPrint(const GlobalOptions& options, Request request, const Render& render);

}  // namespace muster::cli
