// tmpfs: a writable file system in kernel memory. Directories are lists of named entries that
// hold a reference to their vnode; symbolic links keep their target in a heap string; a regular
// file's bytes are the pages of a memory object (core/mm/vm_object.h), Linux's shmem design:
// read and write reach the same pages as every MAP_SHARED mapping of the file, so a store
// through a mapping is what read() returns, in any process. memfd_create makes such a file
// with no name in any directory (tmpfs_create_memfd).
//
// One spin lock per tmpfs instance guards every directory's entries and serializes writers
// (O_APPEND stays atomic), readers and truncation; a file's pages and size are guarded by its
// object's lock as well, which the fault path takes. Copies to and from user memory happen under
// the tmpfs lock (a fault there takes the address-space lock and then an object's lock, which
// rank above it) but never under the object's lock, because the user buffer may be a mapping of
// the very same file. A page is looked up (or made) under the object's lock and copied after it
// is dropped: why that page cannot be freed meanwhile: a file's pages are freed only by
// truncate, which holds the tmpfs lock the copy runs under, or by the object's last release,
// and the open file holds the node that holds the object (mappings never drop pages of a file:
// MADV_DONTNEED only unmaps shared pages). A vnode's last release never happens under the tmpfs
// lock, because freeing a directory releases its children, which takes it again.
#include "core/kernel.h"
#include "core/fs/vfs.h"
#include "core/mm/vm_object.h"

namespace tandem {

namespace {

// Linux's limit is the page cache's (MAX_LFS_FILESIZE); pages only exist once written, so this
// only bounds offsets.
constexpr u64 kMaxFileSize = 1ull << 40;

struct TmpFs : FileSystem {
  SpinLock lock{LockRank::Wait};
  u64 next_ino = 2;
};

class TmpNode;

struct TmpEntry {
  TmpEntry* next;
  TmpNode* node;  // retained
  u8 length;
  char name[kNameMax + 1];
};

class TmpNode final : public Vnode {
 public:
  TmpNode(TmpFs* fs, u64 ino, u32 mode, TmpNode* parent) : Vnode(fs, ino, mode), m_parent(parent) {
    m_mtime_ns = hal::realtime_ns();
  }

  TmpFs* tfs() const { return static_cast<TmpFs*>(m_fs); }
  bool m_owns_fs = false;  // the root the mount made: frees the TmpFs record last
  Heap& heap() const { return m_fs->kernel->heap(); }
  // A new node that tmpfs_create_memfd makes into an unlinked file holding `data`.
  void become_memfd(VmObject* data) {
    m_links = 0;
    m_data = data;
  }

  Result<Vnode*> lookup(const char* name, usize length) override {
    SpinLockGuard guard(tfs()->lock);
    TmpEntry* e = find(name, length);
    if (e == nullptr) return Errno::kENOENT;
    e->node->retain();
    return static_cast<Vnode*>(e->node);
  }

  Vnode* parent() override {
    SpinLockGuard guard(tfs()->lock);
    Vnode* p = m_parent != nullptr ? static_cast<Vnode*>(m_parent) : this;
    p->retain();
    return p;
  }

  Result<bool> readdir(u64* cookie, DirEntry* entry) override {
    if (!is_directory()) return Errno::kENOTDIR;
    SpinLockGuard guard(tfs()->lock);
    if (*cookie < 2) {
      entry->ino = *cookie == 0 ? m_ino : (m_parent != nullptr ? m_parent->ino() : m_ino);
      entry->type = 4;  // DT_DIR
      entry->name[0] = '.';
      entry->name[1] = *cookie == 0 ? 0 : '.';
      entry->name[2] = 0;
      ++*cookie;
      return true;
    }
    u64 index = *cookie - 2;
    TmpEntry* e = m_entries;
    while (e != nullptr && index > 0) {
      e = e->next;
      --index;
    }
    if (e == nullptr) return false;
    entry->ino = e->node->ino();
    entry->type = static_cast<u8>(e->node->type() >> 12);
    copy_bytes(entry->name, e->name, e->length + 1u);
    ++*cookie;
    return true;
  }

  Result<Vnode*> create(const char* name, usize length, u32 mode) override {
    if (!is_directory()) return Errno::kENOTDIR;
    if (length > kNameMax) return Errno::kENAMETOOLONG;
    auto* entry = static_cast<TmpEntry*>(heap().allocate(sizeof(TmpEntry)));
    if (entry == nullptr) return Errno::kENOMEM;
    TmpNode* node = heap().make<TmpNode>(tfs(), 0, mode, this);
    if (node == nullptr) {
      heap().free(entry, sizeof(TmpEntry));
      return Errno::kENOMEM;
    }
    SpinLockGuard guard(tfs()->lock);
    if (m_removed) {
      guard.unlock();
      free_unlinked(node, entry);
      return Errno::kENOENT;
    }
    if (find(name, length) != nullptr) {
      guard.unlock();
      free_unlinked(node, entry);
      return Errno::kEEXIST;
    }
    node->m_ino = tfs()->next_ino++;
    link_entry(entry, node, name, length);
    node->retain();  // one for the entry, one for the caller
    m_mtime_ns = node->m_mtime_ns;
    return static_cast<Vnode*>(node);
  }

  Result<Vnode*> symlink(const char* name, usize length, const char* target, usize target_length) override {
    if (target_length >= kPathMax) return Errno::kENAMETOOLONG;
    char* text = static_cast<char*>(heap().allocate(target_length + 1));
    if (text == nullptr) return Errno::kENOMEM;
    copy_bytes(text, target, target_length);
    text[target_length] = 0;
    auto created = create(name, length, kIfLnk | 0777);
    if (created.is_error()) {
      heap().free(text, target_length + 1);
      return created.error();
    }
    auto* node = static_cast<TmpNode*>(created.value());
    SpinLockGuard guard(tfs()->lock);
    node->m_link = text;
    node->m_size = target_length;
    return created.value();
  }

  Result<void> link(const char* name, usize length, Vnode* target_vnode) override {
    if (!is_directory()) return Errno::kENOTDIR;
    if (length > kNameMax) return Errno::kENAMETOOLONG;
    auto* target = static_cast<TmpNode*>(target_vnode);
    auto* entry = static_cast<TmpEntry*>(heap().allocate(sizeof(TmpEntry)));
    if (entry == nullptr) return Errno::kENOMEM;
    SpinLockGuard guard(tfs()->lock);
    Errno error = static_cast<Errno>(0);
    if (m_removed) error = Errno::kENOENT;
    else if (find(name, length) != nullptr) error = Errno::kEEXIST;
    else if (target->m_links == 0) error = Errno::kENOENT;  // linking an unlinked open file
    if (error != static_cast<Errno>(0)) {
      guard.unlock();
      heap().free(entry, sizeof(TmpEntry));
      return error;
    }
    target->retain();
    ++target->m_links;
    link_entry(entry, target, name, length);
    return {};
  }

  Result<void> unlink(const char* name, usize length, bool directory) override {
    TmpNode* victim = nullptr;
    {
      SpinLockGuard guard(tfs()->lock);
      TmpEntry* e = find(name, length);
      if (e == nullptr) return Errno::kENOENT;
      if (directory) {
        if (!e->node->is_directory()) return Errno::kENOTDIR;
        if (e->node->m_entries != nullptr) return Errno::kENOTEMPTY;
        e->node->become_removed();
      } else if (e->node->is_directory()) {
        return Errno::kEISDIR;
      }
      victim = e->node;
      unlink_entry(e);
      --victim->m_links;
      m_mtime_ns = hal::realtime_ns();
    }
    victim->release();
    return {};
  }

  Result<void> rename(const char* name, usize length, Vnode* new_dir_vnode, const char* new_name, usize new_length,
                      u32 flags) override {
    constexpr u32 kNoReplace = 1;
    if ((flags & ~kNoReplace) != 0) return Errno::kEINVAL;
    if (new_length > kNameMax) return Errno::kENAMETOOLONG;
    auto* new_dir = static_cast<TmpNode*>(new_dir_vnode);
    auto* fresh = static_cast<TmpEntry*>(heap().allocate(sizeof(TmpEntry)));
    if (fresh == nullptr) return Errno::kENOMEM;
    TmpNode* replaced = nullptr;
    {
      SpinLockGuard guard(tfs()->lock);
      TmpEntry* source = find(name, length);
      if (source == nullptr) {
        guard.unlock();
        heap().free(fresh, sizeof(TmpEntry));
        return Errno::kENOENT;
      }
      TmpNode* node = source->node;
      auto refuse = [&](Errno e) -> Result<void> {
        guard.unlock();
        heap().free(fresh, sizeof(TmpEntry));
        return e;
      };
      if (new_dir->m_removed) return refuse(Errno::kENOENT);
      // A directory cannot move below itself.
      if (node->is_directory()) {
        for (TmpNode* p = new_dir; p != nullptr; p = p->m_parent) {
          if (p == node) return refuse(Errno::kEINVAL);
        }
      }
      TmpEntry* target = new_dir->find(new_name, new_length);
      if (target != nullptr) {
        if (target->node == node) {
          // Two names of one file: rename(2) does nothing and succeeds.
          guard.unlock();
          heap().free(fresh, sizeof(TmpEntry));
          return {};
        }
        if ((flags & kNoReplace) != 0) return refuse(Errno::kEEXIST);
        if (node->is_directory()) {
          if (!target->node->is_directory()) return refuse(Errno::kENOTDIR);
          if (target->node->m_entries != nullptr) return refuse(Errno::kENOTEMPTY);
          target->node->become_removed();
        } else if (target->node->is_directory()) {
          return refuse(Errno::kEISDIR);
        }
        replaced = target->node;
        --replaced->m_links;
        new_dir->unlink_entry(target);
      }
      // Move the entry: unlink from here, link there under the new name.
      node->retain();
      unlink_entry(source);
      new_dir->link_entry(fresh, node, new_name, new_length);
      node->release_locked_nonlast();
      if (node->is_directory()) node->m_parent = new_dir;
      m_mtime_ns = new_dir->m_mtime_ns = hal::realtime_ns();
    }
    if (replaced != nullptr) replaced->release();
    return {};
  }

  Result<usize> read(u64 offset, const IoBuffer& out, usize length) override {
    if (is_directory()) return Errno::kEISDIR;
    // Under the tmpfs lock: no truncate can free a page between its lookup and the copy.
    SpinLockGuard guard(tfs()->lock);
    VmObject* data = m_data;
    if (data == nullptr) return usize{0};  // never written: empty
    static const u8 kZeros[512] = {};
    usize done = 0;
    while (done < length) {
      const u64 at = offset + done;
      const u64 in_page = at % hal::kPageSize;
      usize chunk = 0;
      u64 phys = 0;
      {
        SpinLockGuard data_guard(data->lock());
        const u64 size = data->size_locked();
        if (at >= size) break;
        chunk = min<u64>(min<u64>(length - done, size - at), hal::kPageSize - in_page);
        if (VmObject::Page* page = data->find_locked(at / hal::kPageSize)) phys = page->phys;
      }
      bool ok = true;
      if (phys != 0) {
        ok = out.put(done, static_cast<u8*>(hal::phys_to_virt(phys)) + in_page, chunk);
      } else {
        // A hole reads zeros.
        for (usize z = 0; z < chunk && ok; z += sizeof(kZeros)) ok = out.put(done + z, kZeros, min(sizeof(kZeros), chunk - z));
      }
      if (!ok) {
        if (done == 0) return Errno::kEFAULT;
        break;
      }
      done += chunk;
    }
    return done;
  }

  Result<usize> write(u64 offset, const IoBuffer& in, usize length) override {
    if (is_directory()) return Errno::kEISDIR;
    SpinLockGuard guard(tfs()->lock);
    return write_locked(offset, in, length, false, nullptr);
  }

  Result<usize> append(const IoBuffer& in, usize length, u64* end) override {
    if (is_directory()) return Errno::kEISDIR;
    // The end is read under the same lock as the write: two appenders never overlap.
    SpinLockGuard guard(tfs()->lock);
    return write_locked(0, in, length, true, end);
  }

  // The file's memory object, made on first use (tfs()->lock held).
  Result<VmObject*> data_locked() {
    if (m_data == nullptr) {
      m_data = VmObject::create(heap(), VmObject::Kind::File, 0);
      if (m_data == nullptr) return Errno::kENOSPC;
    }
    return m_data;
  }

  u64 size_of_data() {
    VmObject* data;
    {
      SpinLockGuard guard(tfs()->lock);
      data = m_data;
    }
    if (data == nullptr) return 0;
    SpinLockGuard guard(data->lock());
    return data->size_locked();
  }

  // tfs()->lock held: writers are serialized, so the size read here stays the end for appends.
  Result<usize> write_locked(u64 offset, const IoBuffer& in, usize length, bool append, u64* end) {
    VmObject* data = TRY(data_locked());
    {
      SpinLockGuard guard(data->lock());
      if (append) offset = data->size_locked();
      if (data->seals_locked() & seal::kAnyWrite) return Errno::kEPERM;  // fcntl(2): F_SEAL_WRITE
    }
    if (offset >= kMaxFileSize) return Errno::kEFBIG;
    length = min<u64>(length, kMaxFileSize - offset);
    usize done = 0;
    while (done < length) {
      const u64 at = offset + done;
      const u64 in_page = at % hal::kPageSize;
      const usize chunk = min<u64>(length - done, hal::kPageSize - in_page);
      u64 phys = 0;
      {
        SpinLockGuard data_guard(data->lock());
        if ((data->seals_locked() & seal::kGrow) && at + chunk > data->size_locked()) {
          // F_SEAL_GROW: nothing past the end (Linux's shmem_write_begin).
          if (done == 0) return Errno::kEPERM;
          break;
        }
        VmObject::Page* page = data->get_or_make_locked(at / hal::kPageSize);
        if (page == nullptr) {
          if (done == 0) return Errno::kENOSPC;
          break;
        }
        phys = page->phys;
      }
      // The copy runs under the tmpfs lock only (see the header comment).
      if (!in.get(static_cast<u8*>(hal::phys_to_virt(phys)) + in_page, done, chunk)) {
        if (done == 0) return Errno::kEFAULT;
        break;
      }
      done += chunk;
      SpinLockGuard data_guard(data->lock());
      if (at + chunk > data->size_locked()) data->set_size_locked(at + chunk);
    }
    m_mtime_ns = hal::realtime_ns();
    if (end != nullptr) *end = offset + done;
    return done;
  }

  Result<void> truncate(u64 size) override {
    if (is_directory()) return Errno::kEISDIR;
    if (size > kMaxFileSize) return Errno::kEFBIG;
    SpinLockGuard guard(tfs()->lock);
    VmObject* data = TRY(data_locked());
    SpinLockGuard data_guard(data->lock());
    if ((size < data->size_locked() && (data->seals_locked() & seal::kShrink)) ||
        (size > data->size_locked() && (data->seals_locked() & seal::kGrow)))
      return Errno::kEPERM;  // F_SEAL_SHRINK, F_SEAL_GROW
    if (size < data->size_locked()) {
      const u64 keep_pages = align_up(size, hal::kPageSize) / hal::kPageSize;
      // Pages past the new end may be mapped in some address space (MAP_SHARED); unmapping
      // them from every space that maps the file is not supported, so such a shrink is
      // refused rather than freeing pages a mapping still reaches. Growing, and shrinking a
      // file no mapping holds (the file's own reference is the only one), always work.
      if (data->referenced_beyond(1) && data->has_pages_from_locked(keep_pages)) return Errno::kEBUSY;
      // Zero the tail of the last kept page and free whole pages past the end, so growing
      // the file again reads zeros.
      if (size % hal::kPageSize != 0) {
        if (VmObject::Page* page = data->find_locked(size / hal::kPageSize)) {
          fill_bytes(static_cast<u8*>(hal::phys_to_virt(page->phys)) + size % hal::kPageSize, 0,
                     hal::kPageSize - size % hal::kPageSize);
        }
      }
      data->free_pages_from_locked(keep_pages);
    }
    data->set_size_locked(size);
    m_mtime_ns = hal::realtime_ns();
    return {};
  }

  VmObject* vm_object() override {
    if (!is_regular()) return nullptr;
    SpinLockGuard guard(tfs()->lock);
    auto data = data_locked();
    if (data.is_error()) return nullptr;
    data.value()->retain();
    return data.value();
  }

  Result<void> set_permissions(u32 bits) override {
    SpinLockGuard guard(tfs()->lock);
    m_mode = (m_mode & kIfMt) | (bits & 07777);
    return {};
  }

  Result<void> set_mtime(u64 ns) override {
    SpinLockGuard guard(tfs()->lock);
    m_mtime_ns = ns;
    return {};
  }

  u64 size() override {
    if (is_regular()) return size_of_data();
    SpinLockGuard guard(tfs()->lock);
    return m_size;
  }

  Result<usize> readlink(char* out, usize capacity) override {
    if (!is_symlink()) return Errno::kEINVAL;
    SpinLockGuard guard(tfs()->lock);
    const usize n = min<usize>(m_size, capacity);
    copy_bytes(out, m_link, n);
    return n;
  }

  bool removed() override {
    SpinLockGuard guard(tfs()->lock);
    return m_removed;
  }

  u32 nlink() override {
    SpinLockGuard guard(tfs()->lock);
    if (!is_directory()) return m_links;
    if (m_removed) return 0;
    u32 n = 2;
    for (TmpEntry* e = m_entries; e != nullptr; e = e->next) n += e->node->is_directory() ? 1 : 0;
    return n;
  }

 protected:
  void destroy() override {
    // Only a directory being torn down with its file system still has entries. The tree is
    // freed with a work list, not by recursion: a user can nest directories far deeper than a
    // kernel stack could recurse.
    Heap& h = heap();
    TmpFs* owned_fs = nullptr;
    TmpNode* dead = this;
    m_next_dead = nullptr;
    while (dead != nullptr) {
      TmpNode* node = dead;
      dead = node->m_next_dead;
      while (TmpEntry* e = node->m_entries) {
        node->m_entries = e->next;
        TmpNode* child = e->node;
        h.free(e, sizeof(TmpEntry));
        child->m_parent = nullptr;
        if (child->m_refs.fetch_sub(1) == 1) {
          child->m_next_dead = dead;
          dead = child;
        }
      }
      // A removed directory held its old parent (for ".."): that reference goes too.
      if (node->m_removed && node->m_parent != nullptr) {
        TmpNode* parent = node->m_parent;
        if (parent->m_refs.fetch_sub(1) == 1) {
          parent->m_next_dead = dead;
          dead = parent;
        }
      }
      if (node->m_data != nullptr) node->m_data->release();  // mappings may still hold it
      if (node->m_link != nullptr) h.free(node->m_link, node->m_size + 1);
      // The root of the instance owns the instance; it goes after every node that uses it.
      if (node->m_owns_fs) owned_fs = node->tfs();
      h.destroy(node);
    }
    if (owned_fs != nullptr) h.destroy(owned_fs);
  }
 private:
  TmpEntry* find(const char* name, usize length) {
    for (TmpEntry* e = m_entries; e != nullptr; e = e->next) {
      if (e->length == length && compare_bytes(e->name, name, length) == 0) return e;
    }
    return nullptr;
  }
  void link_entry(TmpEntry* entry, TmpNode* node, const char* name, usize length) {
    entry->next = nullptr;
    entry->node = node;
    entry->length = static_cast<u8>(length);
    copy_bytes(entry->name, name, length);
    entry->name[length] = 0;
    TmpEntry** tail = &m_entries;
    while (*tail != nullptr) tail = &(*tail)->next;
    *tail = entry;
  }
  // Removes the entry and frees it; the caller owns the entry's node reference afterwards.
  void unlink_entry(TmpEntry* entry) {
    TmpEntry** link = &m_entries;
    while (*link != entry) link = &(*link)->next;
    *link = entry->next;
    heap().free(entry, sizeof(TmpEntry));
  }
  // Drops a reference known not to be the last (under the lock, where a last release would
  // deadlock).
  void release_locked_nonlast() {
    const u32 before = m_refs.fetch_sub(1);
    VERIFY(before > 1);
  }
  void free_unlinked(TmpNode* node, TmpEntry* entry) {
    heap().free(entry, sizeof(TmpEntry));
    heap().destroy(node);
  }

  // Under the tmpfs lock: a directory leaves the tree but keeps its parent, retained now, so
  // that ".." from it (a cwd or a descriptor) still leads where it was, as on Linux.
  void become_removed() {
    m_removed = true;
    if (m_parent != nullptr) m_parent->retain();
  }

  TmpNode* m_next_dead = nullptr;  // destroy()'s work list
  // Not retained while in the tree (a directory's entry holds its children, not the reverse);
  // retained once removed (become_removed).
  TmpNode* m_parent;
  TmpEntry* m_entries = nullptr;
  bool m_removed = false;
  u32 m_links = 1;
  u64 m_size = 0;  // symbolic links: the target's length (a regular file's size is its object's)
  char* m_link = nullptr;
  VmObject* m_data = nullptr;  // regular files: the bytes, made on first write or mapping
};

// memfd inode numbers: each memfd is a file system instance of its own (see tmpfs_create_memfd),
// so they come from one counter, as anonymous inodes do in core/ipc.
Atomic<u64> g_memfd_ino{1};

}  // namespace

Result<Vnode*> tmpfs_create_memfd(Kernel& kernel, const char* name, bool allow_sealing) {
  // Linux makes memfds on its internal shmem mount (st_dev 0:1 there). Here each one is an
  // unlinked regular file on a tmpfs instance that the file itself owns: it lives exactly as
  // long as the descriptors that name it (its data as long as the mappings too), whatever
  // becomes of the mount table meanwhile.
  TmpFs* fs = kernel.heap().make<TmpFs>();
  if (fs == nullptr) return Errno::kENOMEM;
  fs->kernel = &kernel;
  fs->device = 1;
  fs->type_name = "tmpfs";
  // Mode as Linux's memfd_create gives it: a regular file, 0777.
  TmpNode* node = kernel.heap().make<TmpNode>(fs, g_memfd_ino.fetch_add(1), kIfReg | 0777, nullptr);
  VmObject* data = VmObject::create(kernel.heap(), VmObject::Kind::File, 0, name);
  if (node == nullptr || data == nullptr) {
    if (data != nullptr) data->release();
    kernel.heap().destroy(node);
    kernel.heap().destroy(fs);
    return Errno::kENOMEM;
  }
  if (allow_sealing) data->allow_sealing_unpublished();
  node->m_owns_fs = true;
  node->become_memfd(data);
  return static_cast<Vnode*>(node);
}

Result<Vnode*> tmpfs_create(Kernel& kernel, u32 device) {
  TmpFs* fs = kernel.heap().make<TmpFs>();
  if (fs == nullptr) return Errno::kENOMEM;
  fs->kernel = &kernel;
  fs->device = device;
  fs->type_name = "tmpfs";
  TmpNode* root = kernel.heap().make<TmpNode>(fs, 1, kIfDir | 01777, nullptr);
  if (root == nullptr) {
    kernel.heap().destroy(fs);
    return Errno::kENOMEM;
  }
  root->m_owns_fs = true;
  return static_cast<Vnode*>(root);
}

}  // namespace tandem
