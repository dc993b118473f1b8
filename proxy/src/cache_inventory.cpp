#include "cache_inventory.hpp"

#include <algorithm>
#include <set>

namespace proxy {

CacheInventory readInventory(BlobStore& store, Metadata& metadata) {
  metadata.flushUses();
  CacheInventory inventory;
  for (const auto& digest : store.list()) {
    const auto stat = store.stat(digest);
    if (!stat) {
      continue; // removed meanwhile
    }
    StoredContent content{stat->size, stat->last_used, false, {}, {}};
    if (auto record = metadata.manifestRecord(digest)) {
      content.manifest = true;
      content.media_type = std::move(record->media_type);
      content.references = std::move(record->references);
    }
    inventory.bytes += content.size;
    inventory.content.emplace(digest, std::move(content));
  }
  for (const auto& upstream : metadata.upstreams()) {
    for (const auto& name : metadata.repositories(upstream)) {
      auto repository = RepositoryName::parse(name);
      if (!repository) {
        continue;
      }
      StoredRepository stored{upstream, *repository, metadata.tagRecords(upstream, *repository),
                              metadata.links(upstream, *repository)};
      inventory.repositories.push_back(std::move(stored));
    }
  }
  inventory.space = store.space();
  return inventory;
}

std::vector<Digest> closureOf(const CacheInventory& inventory, const Digest& root) {
  std::vector<Digest> out;
  std::set<Digest> seen;
  std::vector<Digest> pending{root};
  while (!pending.empty()) {
    const auto digest = std::move(pending.back());
    pending.pop_back();
    const auto it = inventory.content.find(digest);
    if (it == inventory.content.end() || !seen.insert(digest).second) {
      continue;
    }
    out.push_back(digest);
    for (const auto& reference : it->second.references) {
      pending.push_back(reference);
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<CachedImage> cachedImages(const CacheInventory& inventory) {
  std::set<Digest> named;
  for (const auto& [digest, content] : inventory.content) {
    for (const auto& reference : content.references) {
      if (reference != digest) {
        named.insert(reference);
      }
    }
  }

  std::vector<CachedImage> images;
  std::set<Digest> covered;
  for (const auto& [digest, content] : inventory.content) {
    if (!content.manifest || named.count(digest) > 0) {
      continue;
    }
    CachedImage image{digest, closureOf(inventory, digest), 0, content.last_used, true};
    for (const auto& part : image.content) {
      const auto& stored = inventory.content.at(part);
      image.bytes += stored.size;
      if (stored.manifest) {
        image.last_used = std::max(image.last_used, stored.last_used);
      }
      covered.insert(part);
    }
    images.push_back(std::move(image));
  }
  // Content no image names (a blob fetched on its own, or left by a manifest that went, or
  // manifests naming each other in a cycle) is its own unit.
  for (const auto& [digest, content] : inventory.content) {
    if (covered.count(digest) == 0) {
      images.push_back(
          CachedImage{digest, {digest}, content.size, content.last_used, content.manifest});
    }
  }
  std::sort(images.begin(), images.end(), [](const CachedImage& a, const CachedImage& b) {
    return a.last_used != b.last_used ? a.last_used < b.last_used : a.root < b.root;
  });
  return images;
}

} // namespace proxy
