#include "core/fs/vfs.h"

#include "core/ipc/ipc.h"
#include "core/kernel.h"
#include "core/mm/vm_object.h"

namespace tandem {

// ---------------------------------------------------------------------------------------------
// Vnodes and files
// ---------------------------------------------------------------------------------------------

void Vnode::fill_stat(KernelStat* st) {
  fill_bytes(st, 0, sizeof(*st));
  st->st_dev = m_fs->device;
  st->st_ino = m_ino;
  st->st_nlink = nlink();
  st->st_mode = m_mode;
  st->st_rdev = rdev();
  st->st_size = static_cast<i64>(size());
  st->st_blksize = 4096;
  st->st_blocks = static_cast<i64>(align_up(static_cast<u64>(st->st_size), 512) / 512);
  st->st_mtime_sec = st->st_atime_sec = st->st_ctime_sec = static_cast<i64>(m_mtime_ns / 1'000'000'000);
  st->st_mtime_nsec = st->st_atime_nsec = st->st_ctime_nsec = static_cast<i64>(m_mtime_ns % 1'000'000'000);
}

void File::release() {
  if (m_refs.fetch_sub(1) == 1) {
    epoll_forget_file(*this);
    on_last_close();
  }
}

void File::on_last_close() {
  if (m_path != nullptr) m_kernel.heap().free(m_path, string_length(m_path) + 1);
  if (m_vnode != nullptr) m_vnode->release();
  // A plain vnode file (other kinds override on_last_close and free themselves).
  Heap& heap = m_kernel.heap();
  this->File::~File();
  heap.free(this, sizeof(File));
}

Result<void> File::set_path(const char* path, usize length) {
  char* copy = static_cast<char*>(m_kernel.heap().allocate(length + 1));
  if (copy == nullptr) return Errno::kENOMEM;
  copy_bytes(copy, path, length);
  copy[length] = 0;
  m_path = copy;
  return {};
}

Result<usize> File::read(const IoBuffer& out, usize length, u64* offset) {
  if (m_vnode == nullptr) return Errno::kEINVAL;
  if (m_vnode->is_directory()) return Errno::kEISDIR;
  // A device that is not ready (a terminal without input) does not block a non-blocking file.
  if (nonblocking() && length > 0 && m_vnode->pollable() && (m_vnode->poll_events() & pollev::kIn) == 0)
    return Errno::kEAGAIN;
  const u64 at = offset != nullptr ? *offset : 0;
  const usize done = TRY(m_vnode->read(at, out, length));
  if (offset != nullptr) *offset = at + done;
  return done;
}

Result<usize> File::write(const IoBuffer& in, usize length, u64* offset) {
  if (m_vnode == nullptr) return Errno::kEINVAL;
  u64 at = offset != nullptr ? *offset : 0;
  // RLIMIT_FSIZE: a regular file grows only up to the limit; a write that starts at or past it
  // raises SIGXFSZ and fails with EFBIG, one that crosses it is cut short.
  if (m_vnode->is_regular() && length > 0) {
    const u64 limit = file_size_limit();
    if (limit != ~0ull) {
      const u64 start = (flags() & oflag::kAppend) != 0 ? m_vnode->size() : at;
      if (start >= limit) {
        deliver_sigxfsz();
        return Errno::kEFBIG;
      }
      if (length > limit - start) length = static_cast<usize>(limit - start);
    }
  }
  // O_APPEND: every write goes to the end as it is then, whatever the offset says.
  if ((flags() & oflag::kAppend) != 0 && m_vnode->is_regular()) {
    u64 end = 0;
    const usize done = TRY(m_vnode->append(in, length, &end));
    if (offset != nullptr) *offset = end;
    return done;
  }
  const usize done = TRY(m_vnode->write(at, in, length));
  if (offset != nullptr) *offset = at + done;
  return done;
}

void File::note_interest() {
  if (Thread* self = Kernel::current_thread()) self->readiness_interest |= readiness_bit(readiness_key());
}

u32 File::poll_for_wait() {
  note_interest();
  return poll_events();
}

u32 File::poll_events() {
  if (m_vnode == nullptr) return 0;
  return m_vnode->poll_events();
}

Result<i64> File::ioctl(u64 request, u64 argument) {
  if (m_vnode == nullptr) return Errno::kENOTTY;
  return m_vnode->ioctl(*this, request, argument);
}

void File::stat(KernelStat* st) {
  if (m_vnode != nullptr) {
    m_vnode->fill_stat(st);
  } else {
    fill_bytes(st, 0, sizeof(*st));
  }
}

// ---------------------------------------------------------------------------------------------
// Scratch paths and user strings
// ---------------------------------------------------------------------------------------------

PathBuffer::PathBuffer(Kernel& kernel) : m_kernel(kernel), m_data(static_cast<char*>(kernel.heap().allocate(kPathMax))) {
  if (m_data != nullptr) m_data[0] = 0;
}

PathBuffer::~PathBuffer() {
  if (m_data != nullptr) m_kernel.heap().free(m_data, kPathMax);
}

Result<void> copy_path_from_user(u64 address, char* out, bool allow_empty) {
  // Copy up to each page end at a time: the string may end just before an unmapped page.
  usize done = 0;
  while (done < kPathMax) {
    const u64 at = address + done;
    if (at < address) return Errno::kEFAULT;
    const usize chunk = min<u64>(kPathMax - done, hal::kPageSize - (at & (hal::kPageSize - 1)));
    if (!hal::copy_from_user(out + done, at, chunk)) return Errno::kEFAULT;
    for (usize i = 0; i < chunk; ++i) {
      if (out[done + i] == 0) {
        if (done + i == 0 && !allow_empty) return Errno::kENOENT;
        return {};
      }
    }
    done += chunk;
  }
  return Errno::kENAMETOOLONG;
}

// ---------------------------------------------------------------------------------------------
// The mount table
// ---------------------------------------------------------------------------------------------

Result<Vfs*> kernel_vfs(Kernel& kernel) {
  // The first caller builds it; the init thread does so before any user thread runs in the
  // booted kernel, and a simulated PID 1 before its first thread, so there is no race to build
  // two. A compare-exchange still settles it should two ever meet.
  Vfs* vfs = kernel.vfs.load(MemoryOrder::Acquire);
  if (vfs != nullptr) return vfs;
  Vfs* created = TRY(Vfs::create(kernel, kernel.root_archive));
  Vfs* expected = nullptr;
  if (!kernel.vfs.compare_exchange(expected, created)) {
    created->destroy();
    return expected;
  }
  return created;
}

Result<Vfs*> Vfs::create(Kernel& kernel, const CpioFs* root_archive) {
  Vfs* vfs = kernel.heap().make<Vfs>(kernel);
  if (vfs == nullptr) return Errno::kENOMEM;
  auto fail = [&](Errno e) -> Result<Vfs*> {
    vfs->destroy();
    return e;
  };
  // Device numbers as Linux shows them for such file systems (0:N for anonymous ones).
  auto root = root_archive != nullptr ? cpiofs_create(kernel, root_archive, 1) : tmpfs_create(kernel, 1);
  if (root.is_error()) return fail(root.error());
  vfs->m_root = root.value();
  vfs->m_mounts[0] = Mount{1, 1, "/", nullptr, "", vfs->m_root, vfs->m_root->fs()};
  vfs->m_mount_count = 1;
  if (root_archive == nullptr) {
    // An empty root (the simulator): make the mount points, as an initramfs has them.
    static const char* const kMountPoints[] = {"tmp", "dev", "proc", "sys"};
    for (const char* name : kMountPoints) {
      auto made = vfs->m_root->create(name, string_length(name), kIfDir | 0755);
      if (made.is_error()) return fail(made.error());
      made.value()->release();
    }
  }

  auto tmp = tmpfs_create(kernel, 2);
  if (tmp.is_error()) return fail(tmp.error());
  if (auto r = vfs->add_mount("/tmp", "tmp", tmp.value()); r.is_error()) return fail(r.error());
  auto dev = devfs_create(kernel, 3, &vfs->m_console);
  if (dev.is_error()) return fail(dev.error());
  if (auto r = vfs->add_mount("/dev", "dev", dev.value()); r.is_error()) return fail(r.error());
  auto proc = procfs_create(kernel, 4);
  if (proc.is_error()) return fail(proc.error());
  if (auto r = vfs->add_mount("/proc", "proc", proc.value()); r.is_error()) return fail(r.error());
  auto sys = sysfs_create(kernel, 5);
  if (sys.is_error()) return fail(sys.error());
  if (auto r = vfs->add_mount("/sys", "sys", sys.value()); r.is_error()) return fail(r.error());
  return vfs;
}

Result<void> Vfs::add_mount(const char* path, const char* name, Vnode* root) {
  VERIFY(m_mount_count < kMaxMounts);
  m_root->retain();
  m_mounts[m_mount_count] = Mount{m_mount_count + 1, 1, path, m_root, name, root, root->fs()};
  ++m_mount_count;
  return {};
}

void Vfs::drop_user() {
  if (m_users.fetch_sub(1) != 1) return;
  Vfs* self = this;
  if (m_kernel.vfs.compare_exchange(self, nullptr)) destroy();
}

void Vfs::destroy() {
  // The console first: it lives in devfs, whose record goes with devfs's root.
  if (m_console != nullptr) m_console->release();
  m_console = nullptr;
  for (u32 i = 0; i < m_mount_count; ++i) {
    if (m_mounts[i].parent_dir != nullptr) m_mounts[i].parent_dir->release();
    m_mounts[i].root->release();
  }
  m_kernel.heap().destroy(this);
}

Vnode* Vfs::mounted_at(Vnode* dir, const char* name, usize length) {
  for (u32 i = 1; i < m_mount_count; ++i) {
    const Mount& m = m_mounts[i];
    if (m.parent_dir == dir && string_length(m.name) == length && compare_bytes(m.name, name, length) == 0) {
      m.root->retain();
      return m.root;
    }
  }
  return nullptr;
}

// The parent of `dir` (retained): crosses from a mounted root back to where it is mounted, and
// stays at the global root.
Vnode* Vfs::dotdot(Vnode* dir) {
  for (u32 i = 1; i < m_mount_count; ++i) {
    if (m_mounts[i].root == dir) {
      m_mounts[i].parent_dir->retain();
      return m_mounts[i].parent_dir;
    }
  }
  return dir->parent();
}

Result<u64> Vnode::seek_data_or_hole(u64 offset, bool hole) {
  const u64 size = this->size();
  if (offset >= size) return Errno::kENXIO;
  VmObject* object = vm_object();  // retained
  if (object == nullptr) return hole ? size : offset;
  const u64 pages = align_up(size, hal::kPageSize) / hal::kPageSize;
  u64 found;
  {
    SpinLockGuard guard(object->lock());
    u64 index = offset / hal::kPageSize;
    if (!hole) {
      index = object->next_page_index_locked(index, pages);
      found = index >= pages ? ~0ull : max(offset, index * hal::kPageSize);
    } else {
      while (index < pages && object->find_locked(index) != nullptr) ++index;
      found = min(max(offset, index * hal::kPageSize), size);
    }
  }
  object->release();
  if (found == ~0ull) return Errno::kENXIO;
  return found;
}

Result<File*> Vfs::open_console() { return open_vnode(m_console, oflag::kRdWr); }

Result<File*> Vfs::open_vnode(Vnode* vnode, u32 flags) {
  File* file = m_kernel.heap().make<File>(m_kernel, vnode, flags);
  if (file == nullptr) return Errno::kENOMEM;
  vnode->retain();
  return file;
}

void Vfs::notify_readiness(u64 bits) {
  SpinLockGuard guard(m_readiness.lock);
  m_readiness_sequence.fetch_add(1);
  if (bits == kAnyReadiness) {
    while (Thread* waiter = m_readiness.waiters.pop_front()) m_kernel.wake(waiter, kWakeNormal);
    return;
  }
  // A sleeper's interest is stable while it is queued (it changes it only when awake).
  m_readiness.waiters.for_each([&](Thread* waiter) {
    if ((waiter->readiness_interest & bits) == 0) return;
    m_readiness.waiters.remove(waiter);
    m_kernel.wake(waiter, kWakeNormal);
  });
}

// ---------------------------------------------------------------------------------------------
// Path resolution
// ---------------------------------------------------------------------------------------------

Result<Vnode*> Vfs::resolve(const PathStart& start, const char* path, bool follow, char* canonical) {
  return walk(start, path, follow, false, nullptr, canonical);
}

Result<void> Vfs::resolve_parent(const PathStart& start, const char* path, ParentLookup* out, char* canonical) {
  TRY(walk(start, path, false, true, out, canonical));
  return {};
}

Result<void> Vfs::check_create(const ParentLookup& parent, bool directory) {
  if (parent.is_dot) return Errno::kEEXIST;
  if (parent.dir->removed()) return Errno::kENOENT;
  if (parent.name_too_long) return Errno::kENAMETOOLONG;
  Vnode* existing = mounted_at(parent.dir, parent.name, parent.length);
  if (existing == nullptr) {
    auto found = parent.dir->lookup(parent.name, parent.length);
    if (found.ok()) existing = found.value();
    else if (found.error() != Errno::kENOENT) return found.error();
  }
  if (existing != nullptr) {
    existing->release();
    return Errno::kEEXIST;
  }
  if (parent.trailing_slash && !directory) return Errno::kENOENT;
  return {};
}

bool Vfs::is_ancestor(Vnode* a, Vnode* b) {
  Vnode* node = b;
  node->retain();
  for (;;) {
    if (node == a) break;
    if (node == m_root) {
      node->release();
      return false;
    }
    Vnode* up = dotdot(node);
    const bool stuck = up == node;  // a removed file system root: nothing above
    node->release();
    node = up;
    if (stuck) {
      node->release();
      return false;
    }
  }
  node->release();
  return true;
}

Result<usize> Vfs::path_of(Vnode* dir, char* out) {
  // Built from the end of `out` towards its start, one "/name" per level, then moved down.
  usize start = kPathMax - 1;
  out[start] = 0;
  Vnode* node = dir;
  node->retain();
  auto fail = [&](Errno e) -> Result<usize> {
    node->release();
    return e;
  };
  while (node != m_root) {
    if (node->removed()) return fail(Errno::kENOENT);
    // Up one level: across a mount to the directory it hangs in, else the parent, where the
    // name is the entry that holds this directory (directories have one name).
    Vnode* up = nullptr;
    const char* name = nullptr;
    usize length = 0;
    for (u32 i = 1; i < m_mount_count; ++i) {
      if (m_mounts[i].root == node) {
        up = m_mounts[i].parent_dir;
        up->retain();
        name = m_mounts[i].name;
        length = string_length(name);
      }
    }
    DirEntry entry;
    if (up == nullptr) {
      up = node->parent();
      if (up == node) {  // the root of a file system that is not mounted (anymore)
        up->release();
        return fail(Errno::kENOENT);
      }
      u64 cookie = 0;
      for (;;) {
        auto more = up->readdir(&cookie, &entry);
        if (more.is_error() || !more.value()) {
          up->release();
          return fail(more.is_error() ? more.error() : Errno::kENOENT);
        }
        const usize n = string_length(entry.name);
        const bool dots = (n == 1 && entry.name[0] == '.') || (n == 2 && entry.name[0] == '.' && entry.name[1] == '.');
        if (!dots && entry.ino == node->ino()) break;
      }
      name = entry.name;
      length = string_length(entry.name);
    }
    if (length + 1 > start) {
      up->release();
      return fail(Errno::kENAMETOOLONG);
    }
    start -= length;
    copy_bytes(out + start, name, length);
    out[--start] = '/';
    node->release();
    node = up;
  }
  node->release();
  if (start == kPathMax - 1) out[--start] = '/';
  const usize length = kPathMax - 1 - start;
  move_bytes(out, out + start, length + 1);
  return length;
}

namespace {

// The canonical absolute path being walked, kept beside the vnode so getcwd and fchdir know
// where a directory is.
struct CanonicalPath {
  char* text;  // kPathMax bytes, or null when the caller does not want it
  usize length;

  void reset_to_root() {
    if (text == nullptr || lost) return;
    text[0] = '/';
    text[1] = 0;
    length = 1;
  }
  void pop() {
    if (text == nullptr || lost) return;
    while (length > 1 && text[length - 1] != '/') --length;
    if (length > 1) --length;
    text[length] = 0;
  }
  // A path past kPathMax stops being tracked (Linux resolves such paths; only getcwd, which
  // computes its answer from the tree, reports their length): the text becomes "".
  void push(const char* name, usize n) {
    if (text == nullptr || lost) return;
    const usize needed = length + (length > 1 ? 1 : 0) + n;
    if (needed + 1 > kPathMax) {
      lost = true;
      text[0] = 0;
      length = 0;
      return;
    }
    if (length > 1) text[length++] = '/';
    copy_bytes(text + length, name, n);
    length += n;
    text[length] = 0;
  }
  bool lost = false;
};

// The rests of a path waiting behind symbolic links being walked (see Vfs::walk), newest on
// top, each in a path buffer of its own. Every push follows a link, so there are at most
// kMaxSymlinks.
class RestStack {
 public:
  explicit RestStack(Kernel& kernel) : m_kernel(kernel) {}
  ~RestStack() {
    while (m_depth > 0) m_kernel.heap().free(m_text[--m_depth], kPathMax);
  }
  TANDEM_NONCOPYABLE(RestStack);

  bool empty() const { return m_depth == 0; }
  Result<void> push(const char* text, usize length) {
    VERIFY(m_depth < kMaxSymlinks && length < kPathMax);
    auto* copy = static_cast<char*>(m_kernel.heap().allocate(kPathMax));
    if (copy == nullptr) return Errno::kENOMEM;
    copy_bytes(copy, text, length);
    copy[length] = 0;
    m_text[m_depth] = copy;
    m_length[m_depth] = length;
    ++m_depth;
    return {};
  }
  // Moves the newest rest into `out` (kPathMax bytes); returns its length.
  usize pop(char* out) {
    --m_depth;
    const usize length = m_length[m_depth];
    copy_bytes(out, m_text[m_depth], length + 1);
    m_kernel.heap().free(m_text[m_depth], kPathMax);
    return length;
  }

 private:
  Kernel& m_kernel;
  char* m_text[kMaxSymlinks] = {};
  usize m_length[kMaxSymlinks] = {};
  u32 m_depth = 0;
};

}  // namespace

Result<Vnode*> Vfs::walk(const PathStart& start, const char* path, bool follow, bool parent_only, ParentLookup* parent,
                         char* canonical) {
  // The walk consumes `pending`, a copy of the path. A symbolic link's body replaces it; what
  // was left after the link waits on `rests` and is walked when the body is done, as Linux
  // walks a link's body and then the rest (so a path has no length limit beyond PATH_MAX for
  // itself and each body, and links nest until the 40-link limit).
  PathBuffer pending_buffer(m_kernel);
  if (!pending_buffer.ok()) return Errno::kENOMEM;
  char* pending = pending_buffer.data();
  usize pending_length = string_length(path);
  if (pending_length >= kPathMax) return Errno::kENAMETOOLONG;
  copy_bytes(pending, path, pending_length + 1);
  RestStack rests(m_kernel);

  CanonicalPath canon{canonical, 0};
  Vnode* current;
  if (pending_length > 0 && pending[0] == '/') {
    current = m_root;
    canon.reset_to_root();
  } else {
    current = start.dir;
    if (canonical != nullptr) {
      canon.length = string_length(start.path);
      copy_bytes(canonical, start.path, canon.length + 1);
    }
  }
  current->retain();
  auto fail = [&](Errno e) -> Result<Vnode*> {
    current->release();
    return e;
  };

  // Trailing slashes ask for a directory: the path's own, a last link body's, or the slashes
  // that followed a last link.
  bool tail_slash = false;
  auto trailing = [&] {
    return rests.empty() && (tail_slash || (pending_length > 0 && pending[pending_length - 1] == '/'));
  };
  u32 links = parent_only ? parent->links : 0;
  usize position = 0;
  for (;;) {
    while (position < pending_length && pending[position] == '/') ++position;
    if (position >= pending_length && !rests.empty()) {
      pending_length = rests.pop(pending);
      position = 0;
      continue;
    }
    if (position >= pending_length) {
      if (parent_only) {
        // "/" or "a/.": no last name to create or remove.
        parent->dir = current;
        parent->length = 0;
        parent->is_dot = true;
        parent->trailing_slash = trailing();
        parent->links = links;
        return current;
      }
      if (trailing() && !current->is_directory()) return fail(Errno::kENOTDIR);
      return current;
    }
    usize end = position;
    while (end < pending_length && pending[end] != '/') ++end;
    const char* name = pending + position;
    const usize length = end - position;
    usize after = end;
    while (after < pending_length && pending[after] == '/') ++after;
    const bool last = after >= pending_length && rests.empty();
    position = end;
    // As Linux: a non-directory before a long name; a long last name of a create or remove is
    // for the caller to report in its own order.
    if (!current->is_directory()) return fail(Errno::kENOTDIR);

    const bool dot = length == 1 && name[0] == '.';
    const bool dotdot_name = length == 2 && name[0] == '.' && name[1] == '.';
    if (last && parent_only) {
      const usize kept = min<usize>(length, kNameMax);
      parent->dir = current;
      parent->length = kept;
      parent->name_too_long = length > kNameMax;
      copy_bytes(parent->name, name, kept);
      parent->name[kept] = 0;
      parent->trailing_slash = trailing();
      parent->is_dot = dot || dotdot_name;
      parent->links = links;
      return current;
    }
    // A removed directory has no entries: its lookups fail before a name's length is looked at.
    if (length > kNameMax && !dot && !dotdot_name)
      return fail(current->removed() ? Errno::kENOENT : Errno::kENAMETOOLONG);
    if (dot) continue;
    if (dotdot_name) {
      Vnode* up = dotdot(current);
      current->release();
      current = up;
      canon.pop();
      continue;
    }

    Vnode* child = mounted_at(current, name, length);
    if (child == nullptr) {
      auto found = current->lookup(name, length);
      if (found.is_error()) return fail(found.error());
      child = found.value();
    }
    if (child->is_symlink() && (follow || !last || trailing())) {
      if (++links > kMaxSymlinks) {
        child->release();
        return fail(Errno::kELOOP);
      }
      // What follows the link waits while its body is walked; slashes alone after a last link
      // are the path's trailing slash.
      bool more = false;
      for (usize i = position; i < pending_length && !more; ++i) more = pending[i] != '/';
      if (more) {
        if (auto r = rests.push(pending + position, pending_length - position); r.is_error()) {
          child->release();
          return fail(r.error());
        }
      } else if (position < pending_length && rests.empty()) {
        tail_slash = true;
      }
      auto body = child->readlink(pending, kPathMax - 1);
      child->release();
      if (body.is_error()) return fail(body.error());
      if (body.value() == 0) return fail(Errno::kENOENT);
      pending_length = body.value();
      pending[pending_length] = 0;
      position = 0;
      if (pending[0] == '/') {
        current->release();
        current = m_root;
        current->retain();
        canon.reset_to_root();
      }
      continue;
    }
    canon.push(name, length);
    current->release();
    current = child;
  }
}

}  // namespace tandem
