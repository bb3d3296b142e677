// The cpio root as a VFS file system: read-only (EROFS for every change), with vnodes made on
// lookup that name an archive path. Archives may leave directory entries out; a path that is a
// prefix of some entry is then a directory of its own (0755).
#include "core/fs/cpio.h"
#include "core/kernel.h"
#include "core/fs/vfs.h"
#include "core/lib/print.h"

namespace tandem {

namespace {

void strip(const char*& name, usize& length) {
  for (;;) {
    if (length >= 2 && name[0] == '.' && name[1] == '/') { name += 2; length -= 2; continue; }
    if (length >= 1 && name[0] == '/') { name += 1; length -= 1; continue; }
    if (length == 1 && name[0] == '.') { name += 1; length -= 1; continue; }
    break;
  }
}

// Byte order of names, a shorter name before every longer one it begins.
int compare_names(const char* a, usize a_length, const char* b, usize b_length) {
  const int c = compare_bytes(a, b, min(a_length, b_length));
  if (c != 0) return c;
  return a_length < b_length ? -1 : (a_length > b_length ? 1 : 0);
}

// The archive's entries by name (leading "./" and "/" stripped), only the last of equal names
// (the one the kernel's unpacker would leave): lookups search it instead of walking every
// header of the archive (beam.smp's start looks up about a thousand paths).
struct CpioIndex {
  // Heap objects are at most a page, so the entries live in page-sized chunks reached through
  // one page of chunk pointers: up to 512 chunks of 73 entries (a larger archive is walked).
  static constexpr usize kPerChunk = Heap::kMaxObject / sizeof(CpioFile);
  static constexpr usize kMaxChunks = Heap::kMaxObject / sizeof(CpioFile*);

  // `size` entries in chunks.
  struct Chunks {
    CpioFile** chunk = nullptr;
    usize slots = 0;      // length of the chunk pointer array
    usize allocated = 0;  // chunks allocated so far

    CpioFile& operator[](usize i) const { return chunk[i / kPerChunk][i % kPerChunk]; }
    bool allocate(Heap& heap, usize size) {
      slots = (size + kPerChunk - 1) / kPerChunk;
      if (slots == 0 || slots > kMaxChunks) return false;
      chunk = static_cast<CpioFile**>(heap.allocate(slots * sizeof(CpioFile*)));
      if (chunk == nullptr) return false;
      for (allocated = 0; allocated < slots; ++allocated) {
        chunk[allocated] = static_cast<CpioFile*>(heap.allocate(kPerChunk * sizeof(CpioFile)));
        if (chunk[allocated] == nullptr) {
          release(heap);
          return false;
        }
      }
      return true;
    }
    void release(Heap& heap) {
      if (chunk == nullptr) return;
      for (usize i = 0; i < allocated; ++i) heap.free(chunk[i], kPerChunk * sizeof(CpioFile));
      heap.free(chunk, slots * sizeof(CpioFile*));
      chunk = nullptr;
      slots = allocated = 0;
    }
  };

  Chunks entries;  // name and name_length are the stripped name; none when not built
  usize count = 0;

  bool built() const { return entries.chunk != nullptr; }

  // The first entry whose name is not below `key`.
  usize lower_bound(const char* key, usize length) const {
    usize lo = 0, hi = count;
    while (lo < hi) {
      const usize mid = lo + (hi - lo) / 2;
      if (compare_names(entries[mid].name, entries[mid].name_length, key, length) < 0) lo = mid + 1; else hi = mid;
    }
    return lo;
  }

  // Builds it from `archive` with `heap`; false (and nothing kept) without the memory for it.
  bool build(Heap& heap, const CpioFs& archive) {
    const usize capacity = archive.entry_count();
    if (capacity == 0) return true;
    Chunks scratch;
    if (!entries.allocate(heap, capacity) || !scratch.allocate(heap, capacity)) {
      entries.release(heap);
      count = 0;
      return false;
    }
    struct Collect {
      CpioIndex* index;
      usize capacity;
    } collect_state{this, capacity};
    auto collect = [](const CpioFile& file, void* context) {
      auto* c = static_cast<Collect*>(context);
      if (c->index->count == c->capacity) return false;
      CpioFile entry = file;
      strip(entry.name, entry.name_length);
      if (entry.name_length > 0) c->index->entries[c->index->count++] = entry;
      return true;
    };
    (void)cpio_walk(archive.data(), archive.size(), collect, &collect_state, nullptr);
    // A stable merge sort (archive order within equal names), bottom up.
    for (usize width = 1; width < count; width *= 2) {
      for (usize left = 0; left < count; left += 2 * width) {
        const usize mid = min(left + width, count), right = min(left + 2 * width, count);
        usize i = left, j = mid, out = left;
        while (i < mid && j < right) {
          const bool take_right = compare_names(entries[j].name, entries[j].name_length, entries[i].name,
                                                entries[i].name_length) < 0;
          scratch[out++] = take_right ? entries[j++] : entries[i++];
        }
        while (i < mid) scratch[out++] = entries[i++];
        while (j < right) scratch[out++] = entries[j++];
      }
      for (usize k = 0; k < count; ++k) entries[k] = scratch[k];
    }
    scratch.release(heap);
    // Equal names: the last in archive order stays.
    usize kept = 0;
    for (usize k = 0; k < count; ++k) {
      const bool last_of_name = k + 1 == count || compare_names(entries[k].name, entries[k].name_length,
                                                                entries[k + 1].name, entries[k + 1].name_length) != 0;
      if (last_of_name) entries[kept++] = entries[k];
    }
    count = kept;
    return true;
  }

  void release(Heap& heap) {
    entries.release(heap);
    count = 0;
  }
};

struct CpioVfs : FileSystem {
  const CpioFs* archive;
  CpioIndex index;  // empty when there was no memory for it: lookups then walk the archive
};

u64 path_ino(const char* path, usize length) {
  if (length == 0) return 1;
  u64 h = 1469598103934665603ull;  // FNV-1a
  for (usize i = 0; i < length; ++i) h = (h ^ static_cast<u8>(path[i])) * 1099511628211ull;
  return h | 2;
}

class CpioNode final : public Vnode {
 public:
  CpioNode(CpioVfs* fs, const char* path, usize length, const CpioFile& file)
      : Vnode(fs, path_ino(path, length), file.mode), m_length(length), m_data(file.data), m_size(file.size) {
    copy_bytes(m_path, path, length);
    m_path[length] = 0;
    m_mtime_ns = file.mtime * 1'000'000'000ull;
  }

  const CpioFs& archive() const { return *static_cast<CpioVfs*>(m_fs)->archive; }

  Result<Vnode*> lookup(const char* name, usize length) override {
    if (!is_directory()) return Errno::kENOTDIR;
    char child[kNameMax + 1 + 256];
    const usize n = m_length + (m_length > 0 ? 1 : 0) + length;
    if (n > 255) return Errno::kENAMETOOLONG;
    usize at = 0;
    if (m_length > 0) {
      copy_bytes(child, m_path, m_length);
      child[m_length] = '/';
      at = m_length + 1;
    }
    copy_bytes(child + at, name, length);
    return make(child, n);
  }

  Vnode* parent() override {
    if (m_length == 0) {
      retain();
      return this;
    }
    usize n = m_length;
    while (n > 0 && m_path[n - 1] != '/') --n;
    if (n > 0) --n;
    auto r = make(m_path, n);
    if (r.is_error()) {
      retain();
      return this;
    }
    return r.value();
  }

  Result<bool> readdir(u64* cookie, DirEntry* entry) override {
    if (!is_directory()) return Errno::kENOTDIR;
    if (*cookie < 2) {
      entry->ino = *cookie == 0 ? m_ino : path_ino(m_path, 0);
      entry->type = 4;
      entry->name[0] = '.';
      entry->name[1] = *cookie == 0 ? 0 : '.';
      entry->name[2] = 0;
      ++*cookie;
      return true;
    }
    struct Search {
      const char* dir;
      usize dir_length;
      u64 skip;     // entries of the archive before the cookie
      u64 ordinal;  // this entry's position
      DirEntry* out;
      bool found;
    } s{m_path, m_length, *cookie - 2, 0, entry, false};
    auto visit = [](const CpioFile& file, void* context) {
      auto* s = static_cast<Search*>(context);
      const u64 ordinal = s->ordinal++;
      if (ordinal < s->skip) return true;
      const char* name = file.name;
      usize length = file.name_length;
      strip(name, length);
      if (length == 0) return true;
      if (s->dir_length > 0) {
        if (length <= s->dir_length + 1 || compare_bytes(name, s->dir, s->dir_length) != 0 || name[s->dir_length] != '/')
          return true;
        name += s->dir_length + 1;
        length -= s->dir_length + 1;
      }
      for (usize i = 0; i < length; ++i) {
        if (name[i] == '/') return true;  // deeper
      }
      if (length > kNameMax) return true;
      s->out->ino = path_ino(file.name, file.name_length);
      s->out->type = static_cast<u8>((file.mode & kIfMt) >> 12);
      copy_bytes(s->out->name, name, length);
      s->out->name[length] = 0;
      s->found = true;
      s->skip = ordinal + 1;
      return false;
    };
    (void)cpio_walk(archive().data(), archive().size(), visit, &s, nullptr);
    if (!s.found) return false;
    // The inode number is that of the normalized path, the one lookup gives.
    char full[kNameMax + 1 + 256];
    usize n = 0;
    if (m_length > 0) {
      copy_bytes(full, m_path, m_length);
      full[m_length] = '/';
      n = m_length + 1;
    }
    const usize name_length = string_length(entry->name);
    copy_bytes(full + n, entry->name, name_length);
    entry->ino = path_ino(full, n + name_length);
    *cookie = s.skip + 2;
    return true;
  }

  Result<usize> read(u64 offset, const IoBuffer& out, usize length) override {
    if (is_directory()) return Errno::kEISDIR;
    if (offset >= m_size) return usize{0};
    length = min<u64>(length, m_size - offset);
    if (!out.put(0, m_data + offset, length)) return Errno::kEFAULT;
    return length;
  }
  Result<usize> write(u64, const IoBuffer&, usize) override { return Errno::kEROFS; }
  Result<void> truncate(u64) override { return Errno::kEROFS; }
  u64 size() override { return is_directory() ? 0 : m_size; }
  Result<usize> readlink(char* out, usize capacity) override {
    if (!is_symlink()) return Errno::kEINVAL;
    const usize n = min<usize>(m_size, capacity);
    copy_bytes(out, m_data, n);
    return n;
  }

  // Finds `path` (normalized, no leading slash) in the archive; "" is the root.
  Result<Vnode*> make(const char* path, usize length) {
    struct Search {
      const char* path;
      usize length;
      CpioFile found;
      bool hit;
      bool prefix;
    } s{path, length, {}, false, false};
    auto visit = [](const CpioFile& file, void* context) {
      auto* s = static_cast<Search*>(context);
      const char* name = file.name;
      usize n = file.name_length;
      strip(name, n);
      if (n == s->length && compare_bytes(name, s->path, n) == 0) {
        s->found = file;  // the last entry of a name wins, as the kernel's unpacker overwrites
        s->hit = true;
      } else if (n > s->length && (s->length == 0 || (compare_bytes(name, s->path, s->length) == 0 && name[s->length] == '/'))) {
        s->prefix = true;
      }
      return true;
    };
    const CpioIndex& index = static_cast<CpioVfs*>(m_fs)->index;
    if (length > 0 && index.built()) {
      // The entry itself, then whether any name begins with "path/" (the first such sorts first
      // among the names not below "path/").
      const usize at = index.lower_bound(path, length);
      if (at < index.count && compare_names(index.entries[at].name, index.entries[at].name_length, path, length) == 0) {
        s.found = index.entries[at];
        s.hit = true;
      } else {
        char key[kNameMax + 1 + 256 + 1];
        if (length + 1 <= sizeof(key)) {
          copy_bytes(key, path, length);
          key[length] = '/';
          const usize child = index.lower_bound(key, length + 1);
          s.prefix = child < index.count && index.entries[child].name_length > length + 1 &&
                     compare_bytes(index.entries[child].name, key, length + 1) == 0;
        }
      }
    } else if (length > 0) {
      (void)cpio_walk(archive().data(), archive().size(), visit, &s, nullptr);
    }
    if constexpr (hal::kDebugAsserts) {
      // Debug and simulator builds check every indexed answer against the walk it replaces.
      if (length > 0 && index.built()) {
        Search walked{path, length, {}, false, false};
        (void)cpio_walk(archive().data(), archive().size(), visit, &walked, nullptr);
        VERIFY(walked.hit == s.hit);
        VERIFY(s.hit ? (walked.found.data == s.found.data && walked.found.mode == s.found.mode) : walked.prefix == s.prefix);
      }
    }
    CpioFile file;
    if (s.hit) {
      file = s.found;
    } else if (s.prefix || length == 0) {
      file.mode = kIfDir | 0755;
    } else {
      return Errno::kENOENT;
    }
    auto* fs = static_cast<CpioVfs*>(m_fs);
    CpioNode* node = fs->kernel->heap().make<CpioNode>(fs, path, length, file);
    if (node == nullptr) return Errno::kENOMEM;
    return static_cast<Vnode*>(node);
  }

  // The root the mount made owns the file system record (other "" nodes come from "..").
  bool m_owns_fs = false;

 protected:
  void destroy() override {
    Heap& heap = m_fs->kernel->heap();
    if (m_owns_fs) {
      // The root is made once, by the mount, and owns the file system record.
      auto* fs = static_cast<CpioVfs*>(m_fs);
      heap.destroy(this);
      fs->index.release(heap);
      heap.destroy(fs);
      return;
    }
    heap.destroy(this);
  }

 private:
  char m_path[256];
  usize m_length;
  const u8* m_data;
  u64 m_size;
};

}  // namespace

Result<Vnode*> cpiofs_create(Kernel& kernel, const CpioFs* archive, u32 device) {
  CpioVfs* fs = kernel.heap().make<CpioVfs>();
  if (fs == nullptr) return Errno::kENOMEM;
  fs->kernel = &kernel;
  fs->device = device;
  fs->read_only = true;
  fs->type_name = "rootfs";
  fs->archive = archive;
  // Without the memory for the index, lookups walk the archive: slower, the same answers.
  if (!fs->index.build(kernel.heap(), *archive)) {
    klog("rootfs: no index for %lu names (no memory, or too many): lookups walk the archive",
         static_cast<unsigned long>(archive->entry_count()));
  }
  CpioFile root;
  root.mode = kIfDir | 0755;
  CpioNode* node = kernel.heap().make<CpioNode>(fs, "", 0, root);
  if (node == nullptr) {
    kernel.heap().destroy(fs);
    return Errno::kENOMEM;
  }
  node->m_owns_fs = true;
  return static_cast<Vnode*>(node);
}

}  // namespace tandem
