// Helpers shared by the file-descriptor system calls (fs.cpp, ipc.cpp): the calling process's
// descriptor table, references that drop themselves, and where an *at() path starts.
#pragma once

#include "core/fs/file_table.h"
#include "core/kernel.h"

namespace tandem {

inline constexpr i32 kAtFdCwd = -100;

// The calling process's descriptor table; EBADF for a process without one (kernel threads).
inline Result<FileTable*> current_files() {
  Thread* self = Kernel::current_thread();
  if (self->process == nullptr || self->process->files == nullptr) return Errno::kEBADF;
  return self->process->files;
}

class FileRef {
 public:
  FileRef(File* file) : m_file(file) {}
  FileRef(const FileRef&) = delete;
  FileRef(FileRef&& other) : m_file(other.m_file) { other.m_file = nullptr; }
  ~FileRef() {
    if (m_file != nullptr) m_file->release();
  }
  File* operator->() const { return m_file; }
  File* get() const { return m_file; }

 private:
  File* m_file;
};

class VnodeRef {
 public:
  explicit VnodeRef(Vnode* vnode) : m_vnode(vnode) {}
  VnodeRef(const VnodeRef&) = delete;
  ~VnodeRef() {
    if (m_vnode != nullptr) m_vnode->release();
  }
  Vnode* operator->() const { return m_vnode; }
  Vnode* get() const { return m_vnode; }

 private:
  Vnode* m_vnode;
};

inline Result<FileRef> get_file(i32 fd) {
  FileTable* files = TRY(current_files());
  return FileRef(TRY(files->get(fd)));
}

// Where a path given to an *at() call starts: the current directory for AT_FDCWD, else the
// directory open at dirfd (ignored for absolute paths, as on Linux).
class AtStart {
 public:
  AtStart() : m_kernel(*Kernel::current_thread()->kernel) {}
  AtStart(const AtStart&) = delete;
  AtStart(AtStart&& other) : m_kernel(other.m_kernel), m_dir(other.m_dir), m_path(other.m_path) {
    other.m_dir = nullptr;
    other.m_path = nullptr;
  }
  ~AtStart() {
    if (m_dir != nullptr) m_dir->release();
    if (m_path != nullptr) m_kernel.heap().free(m_path, kPathMax);
  }
  // The path buffer (kPathMax bytes, from the heap: a directory's path may be that long).
  Result<void> allocate() {
    m_path = static_cast<char*>(m_kernel.heap().allocate(kPathMax));
    if (m_path == nullptr) return Errno::kENOMEM;
    m_path[0] = '/';
    m_path[1] = 0;
    return {};
  }
  PathStart start() const { return PathStart{m_dir, m_path}; }

  Kernel& m_kernel;
  Vnode* m_dir = nullptr;  // retained
  char* m_path = nullptr;
};

inline Result<AtStart> at_start(i32 dirfd, const char* path) {
  Vfs* vfs = TRY(kernel_vfs(*Kernel::current_thread()->kernel));
  AtStart start;
  TRY(start.allocate());
  if (path[0] == '/') {
    start.m_dir = vfs->root();
    start.m_dir->retain();
    return start;
  }
  if (dirfd == kAtFdCwd) {
    FileTable* files = TRY(current_files());
    files->cwd_snapshot(&start.m_dir, start.m_path);
    if (start.m_dir == nullptr) {
      start.m_dir = vfs->root();
      start.m_dir->retain();
      start.m_path[0] = '/';
      start.m_path[1] = 0;
    }
    return start;
  }
  FileRef file = TRY(get_file(dirfd));
  Vnode* dir = file->vnode();
  if (dir == nullptr || !dir->is_directory() || file->path() == nullptr) return Errno::kENOTDIR;
  const usize length = string_length(file->path());
  if (length >= kPathMax) return Errno::kENAMETOOLONG;
  copy_bytes(start.m_path, file->path(), length + 1);
  dir->retain();
  start.m_dir = dir;
  return start;
}

// Installs two new files (consuming a reference to each) and stores their descriptors as two
// ints at user address `out`: pipe2 and socketpair. On any failure nothing stays installed and
// both files are released. Defined in core/syscalls/ipc.cpp.
Result<i64> install_pair(File* a, File* b, bool cloexec, u64 out);

}  // namespace tandem
