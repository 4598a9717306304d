#include "catalog/catalog.h"

#include <utility>

namespace muster {

Catalog::Catalog(CatalogOptions options, std::unique_ptr<WritePath> writes)
    : CatalogView(options.history, options.history_bytes), writes_(std::move(writes)) {}

// The write path stops (its threads are joined) while the view it writes is
// still whole.
Catalog::~Catalog() { writes_->Stop(); }

}  // namespace muster
