// The virtual file system: vnodes (one per file system object, reference counted), open files
// (File: a vnode or an IPC object plus an offset and status flags), the mount table and path
// resolution.
//
// Each file system type implements Vnode's virtual operations; the VFS itself knows nothing of
// how a file system stores its data. Virtual dispatch is the one seam here because several file
// system types live in one kernel at once (the cpio root, tmpfs, devfs, procfs, sysfs), as
// Linux's inode_operations and file_operations tables do. Objects are freed through destroy(),
// never through a virtual destructor, so the freestanding kernel needs no operator delete.
#pragma once

#include <hal.h>

#include "core/lib/atomic.h"
#include "core/lib/list.h"
#include "core/lib/result.h"
#include "core/lib/spinlock.h"
#include "core/proc/thread.h"

namespace tandem {

class Kernel;
class Vnode;
class File;
struct Process;
class CpioFs;
class VmObject;

// Readiness keys. poll, select and epoll_wait sleep on one queue (Vfs::readiness_queue); each
// sleeper carries a 64-bit mask with one bit per object whose readiness it looked at, hashed from
// the object's address, and a change to an object wakes only the sleepers whose mask has its bit.
// Two objects may share a bit: that costs a spurious wake-up (the sleeper looks and sleeps
// again), never a lost one. A change announced without a key wakes every sleeper.
inline constexpr u64 kAnyReadiness = ~0ull;
inline u64 readiness_bit(const void* key) {
  return 1ull << ((reinterpret_cast<u64>(key) * 0x9e3779b97f4a7c15ull) >> 58);
}

inline constexpr usize kPathMax = 4096;  // PATH_MAX, including the NUL
inline constexpr usize kNameMax = 255;   // NAME_MAX
inline constexpr u32 kMaxSymlinks = 40;  // Linux's MAXSYMLINKS

// st_mode type bits.
inline constexpr u32 kIfMt = 0170000, kIfSock = 0140000, kIfLnk = 0120000, kIfReg = 0100000,
                     kIfBlk = 0060000, kIfDir = 0040000, kIfChr = 0020000, kIfIfo = 0010000;

// open(2) flags on x86-64.
namespace oflag {
inline constexpr u32 kAccMode = 03, kRdOnly = 0, kWrOnly = 01, kRdWr = 02, kCreat = 0100, kExcl = 0200,
                     kNoCtty = 0400, kTrunc = 01000, kAppend = 02000, kNonBlock = 04000, kDsync = 010000,
                     kAsync = 020000, kDirect = 040000, kLargeFile = 0100000, kDirectory = 0200000,
                     kNoFollow = 0400000, kNoAtime = 01000000, kCloExec = 02000000, kSync = 04010000,
                     kPath = 010000000, kTmpFile = 020200000;
// The flags F_SETFL may change.
inline constexpr u32 kSettable = kAppend | kNonBlock | kAsync | kDirect | kNoAtime;
}  // namespace oflag

// poll(2) / epoll event bits (the same values for both).
namespace pollev {
inline constexpr u32 kIn = 0x001, kPri = 0x002, kOut = 0x004, kErr = 0x008, kHup = 0x010, kNval = 0x020,
                     kRdNorm = 0x040, kRdBand = 0x080, kWrNorm = 0x100, kWrBand = 0x200, kRdHup = 0x2000;
}

// Linux's struct stat on x86-64.
struct KernelStat {
  u64 st_dev;
  u64 st_ino;
  u64 st_nlink;
  u32 st_mode;
  u32 st_uid;
  u32 st_gid;
  i32 pad0;
  u64 st_rdev;
  i64 st_size;
  i64 st_blksize;
  i64 st_blocks;
  i64 st_atime_sec, st_atime_nsec, st_mtime_sec, st_mtime_nsec, st_ctime_sec, st_ctime_nsec;
  i64 reserved[3];
};
static_assert(sizeof(KernelStat) == 144);

// A buffer a read or write moves bytes to or from: user memory (through the user-copy
// functions, so a bad pointer is EFAULT) or kernel memory (sendfile, generated files).
struct IoBuffer {
  u64 user = 0;
  u8* kernel = nullptr;

  static IoBuffer from_user(u64 address) { return IoBuffer{address, nullptr}; }
  static IoBuffer from_kernel(void* memory) { return IoBuffer{0, static_cast<u8*>(memory)}; }
  // Stores n bytes at buffer offset `at`; false on a fault.
  bool put(usize at, const void* source, usize n) const {
    if (kernel != nullptr) {
      copy_bytes(kernel + at, source, n);
      return true;
    }
    return hal::copy_to_user(user + at, source, n);
  }
  // Loads n bytes from buffer offset `at`; false on a fault.
  bool get(void* destination, usize at, usize n) const {
    if (kernel != nullptr) {
      copy_bytes(destination, kernel + at, n);
      return true;
    }
    return hal::copy_from_user(destination, user + at, n);
  }
};

// One directory entry as readdir hands it out.
struct DirEntry {
  u64 ino;
  u8 type;  // DT_* (the st_mode type >> 12)
  char name[kNameMax + 1];
};

// A file system instance: its vnodes point to it.
struct FileSystem {
  Kernel* kernel = nullptr;
  u32 device = 0;  // st_dev: (major << 8) | minor
  bool read_only = false;
  const char* type_name = "";
};

class Vnode {
 public:
  Vnode(FileSystem* fs, u64 ino, u32 mode) : m_fs(fs), m_ino(ino), m_mode(mode) {}
  TANDEM_NONCOPYABLE(Vnode);

  void retain() { m_refs.fetch_add(1); }
  void release() {
    if (m_refs.fetch_sub(1) == 1) destroy();
  }

  FileSystem* fs() const { return m_fs; }
  u64 ino() const { return m_ino; }
  u32 mode() const { return m_mode; }
  u32 type() const { return m_mode & kIfMt; }
  bool is_directory() const { return type() == kIfDir; }
  bool is_symlink() const { return type() == kIfLnk; }
  bool is_regular() const { return type() == kIfReg; }

  // Directories. `name` is one component, never "." or ".."; the result is retained.
  virtual Result<Vnode*> lookup(const char* name, usize length) { return Errno::kENOTDIR; }
  // The parent directory within this file system (retained); a file system's root returns
  // itself. The VFS crosses mount points itself.
  virtual Vnode* parent() {
    retain();
    return this;
  }
  // Fills `entry` with the entry at `*cookie` and advances it; false at the end.
  virtual Result<bool> readdir(u64* cookie, DirEntry* entry) { return Errno::kENOTDIR; }
  // Creates a regular file or a directory (mode carries the type). EEXIST when present.
  virtual Result<Vnode*> create(const char* name, usize length, u32 mode) { return refuse(); }
  virtual Result<Vnode*> symlink(const char* name, usize length, const char* target, usize target_length) {
    return refuse();
  }
  // link(2): a new name here for `target` (same file system, not a directory; checked by the VFS).
  virtual Result<void> link(const char* name, usize length, Vnode* target) { return refuse(); }
  // Removes a name: a directory when `directory`, anything else otherwise.
  virtual Result<void> unlink(const char* name, usize length, bool directory) { return refuse(); }
  // Moves `name` here to `new_name` in `new_dir` (same file system, checked by the VFS).
  virtual Result<void> rename(const char* name, usize length, Vnode* new_dir, const char* new_name,
                              usize new_length, u32 flags) {
    return refuse();
  }

  // Data.
  virtual Result<usize> read(u64 offset, const IoBuffer& out, usize length) { return Errno::kEINVAL; }
  virtual Result<usize> write(u64 offset, const IoBuffer& in, usize length) { return Errno::kEINVAL; }
  // O_APPEND: writes at the end as it is when the write happens, atomically with respect to
  // other appenders of the same file; *end receives the offset after the write.
  virtual Result<usize> append(const IoBuffer& in, usize length, u64* end) {
    const u64 at = size();
    const usize done = TRY(write(at, in, length));
    *end = at + done;
    return done;
  }
  virtual Result<void> truncate(u64 size) { return refuse(); }
  // The memory object holding a regular file's data (tmpfs, memfd), retained, for MAP_SHARED
  // mappings that share its pages; null for files whose data lives elsewhere (the cpio root),
  // which can only be mapped as private copies.
  virtual VmObject* vm_object() { return nullptr; }
  // lseek's SEEK_DATA (hole = false) and SEEK_HOLE (hole = true) from `offset`: the start of
  // the next data or hole at or after it, page by page for files held in a memory object
  // (tmpfs, memfd: a page never written is a hole), else the whole file is data. ENXIO at or
  // past the end of the file, as Linux.
  Result<u64> seek_data_or_hole(u64 offset, bool hole);
  // chmod: the permission bits (07777). Read-only file systems refuse (EROFS); synthetic
  // ones keep their fixed modes (EPERM), as procfs and sysfs mostly do.
  virtual Result<void> set_permissions(u32 bits) { return refuse(); }
  // utimensat: the modification time (tandem keeps one time for atime, mtime and ctime).
  virtual Result<void> set_mtime(u64 ns) {
    if (m_fs->read_only) return Errno::kEROFS;
    m_mtime_ns = ns;
    return {};
  }
  virtual u64 size() { return 0; }
  virtual Result<usize> readlink(char* out, usize capacity) { return Errno::kEINVAL; }
  // Character devices: readiness for poll and device requests.
  virtual u32 poll_events() { return pollev::kIn | pollev::kOut; }
  // For a pollable vnode whose readiness changes without an event that wakes pollers (polled
  // console input): when poll should look again, 0 for never.
  virtual u64 next_event_ns() { return 0; }
  virtual Result<i64> ioctl(File& file, u64 request, u64 argument) { return Errno::kENOTTY; }
  virtual u32 nlink() { return is_directory() ? 2 : 1; }
  // A directory that rmdir or a replacing rename took out of the tree (it may still be a
  // process's cwd or an open descriptor): nothing can be created in it, getcwd fails.
  virtual bool removed() { return false; }
  virtual u64 rdev() { return 0; }
  // Whether epoll accepts this file (Linux refuses regular files and files without poll).
  virtual bool pollable() { return false; }

  void fill_stat(KernelStat* st);

 protected:
  // Frees the vnode; called when the last reference goes.
  virtual void destroy() = 0;
  Errno refuse() const { return m_fs->read_only ? Errno::kEROFS : Errno::kEPERM; }

  Atomic<u32> m_refs{1};
  FileSystem* m_fs;
  u64 m_ino;
  u32 m_mode;
  u64 m_mtime_ns = 0;
};

// An open file description. Most are vnode files; pipes, eventfd, epoll and timerfd are other
// kinds with their own read, write and poll.
class File {
 public:
  File(Kernel& kernel, Vnode* vnode, u32 flags) : m_kernel(kernel), m_vnode(vnode), m_flags(flags) {}
  TANDEM_NONCOPYABLE(File);

  void retain() { m_refs.fetch_add(1); }
  void release();

  Kernel& kernel() const { return m_kernel; }
  Vnode* vnode() const { return m_vnode; }
  u32 flags() const { return m_flags.load(MemoryOrder::Relaxed); }
  void set_status_flags(u32 flags) {
    m_flags.store((this->flags() & ~oflag::kSettable) | (flags & oflag::kSettable), MemoryOrder::Relaxed);
  }
  bool readable() const { return (flags() & oflag::kAccMode) != oflag::kWrOnly && (flags() & oflag::kPath) == 0; }
  bool writable() const { return (flags() & oflag::kAccMode) != oflag::kRdOnly && (flags() & oflag::kPath) == 0; }
  bool nonblocking() const { return (flags() & oflag::kNonBlock) != 0; }

  // Reads at *offset (advancing it) or, with offset null, where the file kind reads (pipes).
  virtual Result<usize> read(const IoBuffer& out, usize length, u64* offset);
  virtual Result<usize> write(const IoBuffer& in, usize length, u64* offset);
  // Current readiness (pollev bits).
  virtual u32 poll_events();
  // poll_events() for a thread that will sleep until readiness changes (poll, select, epoll):
  // adds this file's readiness bit to the thread's interest first (note_interest()).
  u32 poll_for_wait();
  void note_interest();
  // The object whose changes this file's readiness follows, whose readiness_bit() its notifier
  // passes to Vfs::notify_readiness (a pipe's two ends share their pipe's).
  virtual const void* readiness_key() const { return this; }
  virtual Result<i64> ioctl(u64 request, u64 argument);
  virtual void stat(KernelStat* st);
  // True for files with a seekable offset (vnode files); pipes and the like say ESPIPE.
  virtual bool seekable() const { return m_vnode != nullptr && !m_vnode->pollable(); }
  // The monotonic time at which this file's readiness may change by itself (timerfd); 0: never.
  virtual u64 next_event_ns() { return m_vnode != nullptr ? m_vnode->next_event_ns() : 0; }
  virtual bool is_epoll() const { return false; }
  // A tag naming the file's kind for the few places that must find a subclass (no RTTI).
  virtual const void* kind() const { return nullptr; }
  virtual bool pollable() { return m_vnode != nullptr && m_vnode->pollable(); }

  // Serializes read, write and lseek on a regular file's position, as Linux's f_pos_lock does
  // for files shared across threads or fork: two writers through one description never write
  // at the same offset. Ranked below the file systems' locks, which the I/O takes inside it.
  SpinLock& position_lock() { return m_position_lock; }

  // The position for read/write/lseek of seekable files.
  u64 offset() const { return m_offset.load(MemoryOrder::Relaxed); }
  void set_offset(u64 offset) { m_offset.store(offset, MemoryOrder::Relaxed); }
  // The absolute path this file was opened by, for directories (fchdir, *at): heap copy.
  const char* path() const { return m_path; }
  Result<void> set_path(const char* path, usize length);

  // Takes a reference unless the last one is already gone (epoll's scan meets files that may
  // be closing concurrently).
  bool try_retain() {
    u32 refs = m_refs.load();
    while (refs != 0) {
      if (m_refs.compare_exchange(refs, refs + 1)) return true;
    }
    return false;
  }
  // How many epoll registrations name this file (guarded by the VFS's epoll lock).
  u32 epoll_watches = 0;

 protected:
  // Called once when the last reference goes: releases what the file holds, frees it.
  virtual void on_last_close();

  Atomic<u32> m_refs{1};
  Kernel& m_kernel;
  Vnode* m_vnode;
  Atomic<u32> m_flags;
  Atomic<u64> m_offset{0};
  SpinLock m_position_lock{LockRank::FilePosition};
  char* m_path = nullptr;
};

// Where a relative path starts: a directory vnode and its absolute path.
struct PathStart {
  Vnode* dir;        // not retained by PathStart
  const char* path;  // absolute, canonical
};

// The result of walking to a path's last component's parent (create, unlink, rename).
struct ParentLookup {
  Vnode* dir = nullptr;  // retained
  char name[kNameMax + 1] = {};
  usize length = 0;
  bool trailing_slash = false;
  bool is_dot = false;  // the last component is "." or ".." (or the path is "/")
  // The last name is longer than NAME_MAX (name holds its start): each call reports
  // ENAMETOOLONG where Linux's lookup of it would, after its own earlier checks.
  bool name_too_long = false;
  // Symbolic links followed so far in this system call (in: before the walk; out: after), so
  // that open(O_CREAT), which follows a last link itself, counts against one limit as Linux.
  u32 links = 0;
};

class Vfs {
 public:
  // Builds the mount table: the root (the cpio archive when given, else an empty tmpfs),
  // tmpfs on /tmp, devfs on /dev, procfs on /proc, sysfs on /sys.
  static Result<Vfs*> create(Kernel& kernel, const CpioFs* root_archive);
  // Unmounts everything; vnodes still referenced by open files live until they are closed.
  void destroy();

  Vnode* root() const { return m_root; }
  // Every descriptor table holds the VFS; the last one to go unmounts everything, so a
  // simulated run ends with nothing of it left on the heap.
  void add_user() { m_users.fetch_add(1); }
  void drop_user();

  // Walks `path` from `start` (absolute paths from the root). The result is retained.
  // `canonical` (kPathMax bytes, may be null) receives the absolute path walked.
  Result<Vnode*> resolve(const PathStart& start, const char* path, bool follow, char* canonical = nullptr);
  // Walks all but the last component.
  Result<void> resolve_parent(const PathStart& start, const char* path, ParentLookup* out,
                              char* canonical = nullptr);
  // mkdir, symlink and mknod after resolve_parent: Linux's filename_create checks, in its order
  // (EEXIST for ".", ".." and "/"; ENOENT in a removed directory; ENAMETOOLONG; EEXIST for any
  // existing entry, a dangling link included; ENOENT for a trailing slash on a non-directory).
  Result<void> check_create(const ParentLookup& parent, bool directory);
  // The absolute path of directory `dir` (getcwd, /proc/PID/cwd), computed from the tree as it
  // is now: ENOENT when it or a directory above it was removed, ENAMETOOLONG past kPathMax.
  Result<usize> path_of(Vnode* dir, char* out);
  // Whether directory `a` is `b` or above it (following ".." from b, across mounts).
  bool is_ancestor(Vnode* a, Vnode* b);

  // The console device file, shared by PID 1's descriptors 0, 1 and 2 (a new reference).
  Result<File*> open_console();
  // Opens a vnode as a file (a new reference to the file; the vnode gets retained).
  Result<File*> open_vnode(Vnode* vnode, u32 flags);

  // Lines for /proc/self/mountinfo.
  template <typename F>
  void for_each_mount(F&& f) {
    for (u32 i = 0; i < m_mount_count; ++i) f(m_mounts[i].id, m_mounts[i].parent_id, m_mounts[i].path, m_mounts[i].fs);
  }

  SpinLock& epoll_lock() { return m_epoll_lock; }
  // Every epoll instance, linked through its own pointer (guarded by epoll_lock): a closing
  // file is dropped from each one that watches it.
  File* epoll_list = nullptr;
  // Called after a file's state changed: wakes every thread in poll, select or epoll_wait whose
  // interest has one of `bits` (readiness_bit() of the changed objects; kAnyReadiness wakes every
  // sleeper, and anyone else waiting for readiness of any file to change).
  void notify_readiness(u64 bits = kAnyReadiness);
  // The waiting side: see core/ipc/poll.cpp.
  WaitQueue& readiness_queue() { return m_readiness; }
  u64 readiness_sequence() const { return m_readiness_sequence.load(); }

  Kernel& kernel() const { return m_kernel; }
  // The root of what is mounted on `name` in `dir` (retained), or null.
  Vnode* mounted_at(Vnode* dir, const char* name, usize length);

  explicit Vfs(Kernel& kernel) : m_kernel(kernel) {}

 private:
  struct Mount {
    u32 id;
    u32 parent_id;
    const char* path;  // static text
    Vnode* parent_dir;  // where it hangs (retained); null for the root
    const char* name;   // component name in parent_dir
    Vnode* root;        // retained
    FileSystem* fs;
  };
  static constexpr u32 kMaxMounts = 8;

  Result<void> add_mount(const char* path, const char* name, Vnode* root);
  Vnode* dotdot(Vnode* dir);
  Result<Vnode*> walk(const PathStart& start, const char* path, bool follow, bool parent_only, ParentLookup* parent,
                      char* canonical);

  Kernel& m_kernel;
  Vnode* m_root = nullptr;
  Mount m_mounts[kMaxMounts] = {};
  u32 m_mount_count = 0;
  Vnode* m_console = nullptr;
  // Ranked below the wait locks: an epoll scan polls files (pipe locks) while holding it.
  SpinLock m_epoll_lock{LockRank::Process};
  WaitQueue m_readiness;
  Atomic<u64> m_readiness_sequence{0};
  Atomic<u32> m_users{0};
};

// File system constructors (each returns its root vnode, retained).
Result<Vnode*> tmpfs_create(Kernel& kernel, u32 device);
// memfd_create: an unlinked in-memory regular file (retained) whose object /proc/PID/maps
// names `name` ("memfd:..."), on a tmpfs instance of its own; sealable with `allow_sealing`.
Result<Vnode*> tmpfs_create_memfd(Kernel& kernel, const char* name, bool allow_sealing);
// fcntl F_ADD_SEALS / F_GET_SEALS on an open file (core/syscalls/memfd.cpp): EINVAL for files
// that are not in-memory (tmpfs, memfd).
Result<i64> file_seals(File& file, u32 command, u64 argument);
Result<Vnode*> cpiofs_create(Kernel& kernel, const CpioFs* archive, u32 device);
Result<Vnode*> devfs_create(Kernel& kernel, u32 device, Vnode** console);
Result<Vnode*> procfs_create(Kernel& kernel, u32 device);
Result<Vnode*> sysfs_create(Kernel& kernel, u32 device);

// The kernel's VFS, created on first use (a cheap kernel for scenarios that never open a file).
Result<Vfs*> kernel_vfs(Kernel& kernel);

// A kPathMax-byte scratch buffer from the heap, freed when it goes out of scope (kernel stacks
// are too small for several paths).
class PathBuffer {
 public:
  explicit PathBuffer(Kernel& kernel);
  ~PathBuffer();
  TANDEM_NONCOPYABLE(PathBuffer);
  bool ok() const { return m_data != nullptr; }
  char* data() { return m_data; }

 private:
  Kernel& m_kernel;
  char* m_data;
};

// Copies a NUL-terminated path from user memory: EFAULT, ENAMETOOLONG (>= kPathMax), ENOENT
// when empty unless `allow_empty`.
Result<void> copy_path_from_user(u64 address, char* out, bool allow_empty = false);

}  // namespace tandem
