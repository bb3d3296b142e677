// A process's file descriptors: a table of references to open files with a close-on-exec flag
// each, plus the per-process file system state (current directory and umask).
//
// fork (without CLONE_FILES) gives the child clone(): the same open files, new descriptors;
// execve calls close_on_exec(). Threads created with CLONE_FILES share one table (retain).
#pragma once

#include "core/fs/vfs.h"

namespace tandem {

class FileTable {
 public:
  static constexpr u32 kMaxFds = 1024;  // RLIMIT_NOFILE's usual soft limit: EMFILE beyond it
  static constexpr u32 kChunk = 64;

  static Result<FileTable*> create(Kernel& kernel);
  // PID 1's table: /dev/console open read-write on 0, 1 and 2.
  static Result<FileTable*> create_with_console(Kernel& kernel);
  // A copy for fork: every descriptor refers to the same open file, flags kept.
  Result<FileTable*> clone();
  void retain() { m_refs.fetch_add(1); }
  // Drops a reference; the last one closes every descriptor.
  void release();
  // execve: closes every descriptor marked close-on-exec.
  void close_on_exec();

  // Installs `file` at the lowest free descriptor >= `lowest`; consumes the caller's reference
  // on success only. EMFILE when none is free below kMaxFds.
  Result<i32> install(File* file, bool cloexec, u32 lowest = 0);
  // dup2/dup3: installs `file` at `fd`, closing what was there (consumes a reference).
  Result<void> install_at(u32 fd, File* file, bool cloexec);
  // The open file at `fd`, retained; EBADF when none.
  Result<File*> get(i32 fd);
  Result<void> close(i32 fd);
  // close_range(first, last): closes (or marks close-on-exec) every descriptor in the range.
  // With mark_cloexec (CLOSE_RANGE_CLOEXEC) nothing is closed; with only_marked, only
  // descriptors already marked close-on-exec are closed (execve).
  void close_range(u32 first, u32 last, bool mark_cloexec, bool only_marked = false);
  Result<bool> cloexec(i32 fd);
  Result<void> set_cloexec(i32 fd, bool value);

  // The current directory (retained by the table) and its absolute path.
  static constexpr usize kCwdMax = 512;
  // Copies the current directory (retained into *dir; may be null before the first chdir
  // of a process without one) and its path (kCwdMax bytes).
  void cwd_snapshot(Vnode** dir, char* path);
  // Replaces the current directory (takes a reference to `dir`). ENAMETOOLONG for long paths.
  Result<void> set_cwd(Vnode* dir, const char* path);
  // getcwd: the current directory's absolute path as the tree places it now (kPathMax bytes at
  // `out`); ENOENT once it was removed. Returns the length without the NUL.
  Result<usize> cwd_path(char* out);
  // RLIMIT_NOFILE's soft limit (at most kMaxFds): install() gives EMFILE at or above it and
  // dup2/dup3 EBADF. Descriptors already open above it stay open, as on Linux.
  u32 limit() const { return m_limit.load(MemoryOrder::Relaxed); }
  void set_limit(u32 limit) { m_limit.store(limit < kMaxFds ? limit : kMaxFds, MemoryOrder::Relaxed); }
  u32 umask() const { return m_umask.load(MemoryOrder::Relaxed); }
  u32 exchange_umask(u32 mask) { return m_umask.exchange(mask & 0777); }

  explicit FileTable(Kernel& kernel) : m_kernel(kernel) {}

 private:
  struct Chunk {
    File* files[kChunk];
    u64 cloexec;
  };
  static constexpr u32 kChunks = kMaxFds / kChunk;

  File** slot(u32 fd, bool allocate);
  void destroy();

  Kernel& m_kernel;
  Vfs* m_vfs = nullptr;  // held (Vfs::add_user) for as long as the table lives
  Atomic<u32> m_refs{1};
  SpinLock m_lock{LockRank::Wait};
  Chunk* m_chunks[kChunks] = {};  // guarded by m_lock
  Vnode* m_cwd = nullptr;         // guarded by m_lock
  char m_cwd_path[kCwdMax] = "/";
  Atomic<u32> m_limit{kMaxFds};
  Atomic<u32> m_umask{022};
};

}  // namespace tandem
