#include "core/fs/file_table.h"

#include "core/kernel.h"

namespace tandem {

Result<FileTable*> FileTable::create(Kernel& kernel) {
  Vfs* vfs = TRY(kernel_vfs(kernel));
  FileTable* table = kernel.heap().make<FileTable>(kernel);
  if (table == nullptr) return Errno::kENOMEM;
  vfs->add_user();
  table->m_vfs = vfs;
  return table;
}

Result<FileTable*> FileTable::create_with_console(Kernel& kernel) {
  FileTable* table = TRY(create(kernel));
  auto console = table->m_vfs->open_console();
  if (console.is_error()) {
    table->release();
    return console.error();
  }
  File* file = console.value();
  for (u32 fd = 0; fd < 3; ++fd) {
    if (fd > 0) file->retain();
    auto r = table->install(file, false);
    if (r.is_error()) {
      file->release();
      table->release();
      return r.error();
    }
  }
  return table;
}

File** FileTable::slot(u32 fd, bool allocate) {
  DEBUG_ASSERT(m_lock.held_by_current_cpu());
  if (fd >= kMaxFds) return nullptr;
  Chunk*& chunk = m_chunks[fd / kChunk];
  if (chunk == nullptr) {
    if (!allocate) return nullptr;
    chunk = static_cast<Chunk*>(m_kernel.heap().allocate(sizeof(Chunk)));
    if (chunk == nullptr) return nullptr;
    fill_bytes(chunk, 0, sizeof(Chunk));
  }
  return &chunk->files[fd % kChunk];
}

Result<FileTable*> FileTable::clone() {
  FileTable* copy = TRY(create(m_kernel));
  copy->set_limit(limit());
  // Chunks are allocated before the lock is taken, for every chunk in use now; a chunk that
  // appears meanwhile is copied only if one was prepared for it.
  Chunk* prepared[kChunks] = {};
  for (u32 i = 0; i < kChunks; ++i) {
    if (m_chunks[i] == nullptr) continue;
    prepared[i] = static_cast<Chunk*>(m_kernel.heap().allocate(sizeof(Chunk)));
    if (prepared[i] == nullptr) {
      for (u32 j = 0; j < i; ++j) {
        if (prepared[j] != nullptr) m_kernel.heap().free(prepared[j], sizeof(Chunk));
      }
      copy->release();
      return Errno::kENOMEM;
    }
  }
  {
    SpinLockGuard guard(m_lock);
    for (u32 i = 0; i < kChunks; ++i) {
      if (prepared[i] == nullptr) continue;
      if (m_chunks[i] == nullptr) {
        fill_bytes(prepared[i], 0, sizeof(Chunk));
      } else {
        copy_bytes(prepared[i], m_chunks[i], sizeof(Chunk));
        for (File* f : prepared[i]->files) {
          if (f != nullptr) f->retain();
        }
      }
      copy->m_chunks[i] = prepared[i];
    }
    if (m_cwd != nullptr) m_cwd->retain();
    copy->m_cwd = m_cwd;
    copy_bytes(copy->m_cwd_path, m_cwd_path, kCwdMax);
  }
  copy->m_umask.store(umask());
  return copy;
}

void FileTable::release() {
  if (m_refs.fetch_sub(1) == 1) destroy();
}

void FileTable::destroy() {
  // The last reference: nobody else can reach the table, so no lock is needed, and closing
  // files here (which may wake pipe peers) happens outside any lock of ours.
  for (u32 i = 0; i < kChunks; ++i) {
    Chunk* chunk = m_chunks[i];
    if (chunk == nullptr) continue;
    for (File* f : chunk->files) {
      if (f != nullptr) f->release();
    }
    m_kernel.heap().free(chunk, sizeof(Chunk));
  }
  if (m_cwd != nullptr) m_cwd->release();
  Vfs* vfs = m_vfs;
  m_kernel.heap().destroy(this);
  if (vfs != nullptr) vfs->drop_user();
}

void FileTable::close_on_exec() { close_range(0, kMaxFds - 1, false, true); }

Result<i32> FileTable::install(File* file, bool cloexec, u32 lowest) {
  const u32 limit = this->limit();
  if (lowest >= limit) return Errno::kEMFILE;
  // Allocate a chunk outside the lock if the search may need one.
  for (;;) {
    u32 needs_chunk = kChunks;
    {
      SpinLockGuard guard(m_lock);
      for (u32 fd = lowest; fd < limit; ++fd) {
        Chunk* chunk = m_chunks[fd / kChunk];
        if (chunk == nullptr) {
          needs_chunk = fd / kChunk;
          break;
        }
        if (chunk->files[fd % kChunk] == nullptr) {
          chunk->files[fd % kChunk] = file;
          const u64 bit = 1ull << (fd % kChunk);
          chunk->cloexec = cloexec ? (chunk->cloexec | bit) : (chunk->cloexec & ~bit);
          return static_cast<i32>(fd);
        }
      }
      if (needs_chunk == kChunks) return Errno::kEMFILE;
    }
    auto* fresh = static_cast<Chunk*>(m_kernel.heap().allocate(sizeof(Chunk)));
    if (fresh == nullptr) return Errno::kENOMEM;
    fill_bytes(fresh, 0, sizeof(Chunk));
    SpinLockGuard guard(m_lock);
    if (m_chunks[needs_chunk] == nullptr) {
      m_chunks[needs_chunk] = fresh;
    } else {
      guard.unlock();
      m_kernel.heap().free(fresh, sizeof(Chunk));
    }
  }
}

Result<void> FileTable::install_at(u32 fd, File* file, bool cloexec) {
  if (fd >= limit()) return Errno::kEBADF;
  Chunk* fresh = nullptr;
  if (m_chunks[fd / kChunk] == nullptr) {
    fresh = static_cast<Chunk*>(m_kernel.heap().allocate(sizeof(Chunk)));
    if (fresh == nullptr) return Errno::kENOMEM;
    fill_bytes(fresh, 0, sizeof(Chunk));
  }
  File* previous = nullptr;
  {
    SpinLockGuard guard(m_lock);
    if (m_chunks[fd / kChunk] == nullptr) {
      m_chunks[fd / kChunk] = fresh;
      fresh = nullptr;
    }
    Chunk* chunk = m_chunks[fd / kChunk];
    previous = chunk->files[fd % kChunk];
    chunk->files[fd % kChunk] = file;
    const u64 bit = 1ull << (fd % kChunk);
    chunk->cloexec = cloexec ? (chunk->cloexec | bit) : (chunk->cloexec & ~bit);
  }
  if (fresh != nullptr) m_kernel.heap().free(fresh, sizeof(Chunk));
  // Closed after the lock is dropped: the last close of a pipe end wakes its peers.
  if (previous != nullptr) previous->release();
  return {};
}

Result<File*> FileTable::get(i32 fd) {
  if (fd < 0) return Errno::kEBADF;
  SpinLockGuard guard(m_lock);
  File** s = slot(static_cast<u32>(fd), false);
  if (s == nullptr || *s == nullptr) return Errno::kEBADF;
  (*s)->retain();
  return *s;
}

Result<void> FileTable::close(i32 fd) {
  if (fd < 0) return Errno::kEBADF;
  File* file = nullptr;
  {
    SpinLockGuard guard(m_lock);
    File** s = slot(static_cast<u32>(fd), false);
    if (s == nullptr || *s == nullptr) return Errno::kEBADF;
    file = *s;
    *s = nullptr;
  }
  file->release();
  return {};
}

void FileTable::close_range(u32 first, u32 last, bool only_cloexec, bool only_marked) {
  if (last >= kMaxFds) last = kMaxFds - 1;
  for (u32 fd = first; fd <= last && first < kMaxFds; ++fd) {
    File* file = nullptr;
    {
      SpinLockGuard guard(m_lock);
      Chunk* chunk = m_chunks[fd / kChunk];
      if (chunk == nullptr) {
        fd = (fd / kChunk + 1) * kChunk - 1;  // skip the whole missing chunk
        continue;
      }
      const u64 bit = 1ull << (fd % kChunk);
      if (chunk->files[fd % kChunk] == nullptr) continue;
      if (only_marked && (chunk->cloexec & bit) == 0) continue;
      if (only_cloexec) {
        chunk->cloexec |= bit;
        continue;
      }
      file = chunk->files[fd % kChunk];
      chunk->files[fd % kChunk] = nullptr;
      chunk->cloexec &= ~bit;
    }
    file->release();
  }
}

Result<bool> FileTable::cloexec(i32 fd) {
  if (fd < 0) return Errno::kEBADF;
  SpinLockGuard guard(m_lock);
  File** s = slot(static_cast<u32>(fd), false);
  if (s == nullptr || *s == nullptr) return Errno::kEBADF;
  return (m_chunks[fd / kChunk]->cloexec >> (fd % kChunk)) & 1;
}

Result<void> FileTable::set_cloexec(i32 fd, bool value) {
  if (fd < 0) return Errno::kEBADF;
  SpinLockGuard guard(m_lock);
  File** s = slot(static_cast<u32>(fd), false);
  if (s == nullptr || *s == nullptr) return Errno::kEBADF;
  const u64 bit = 1ull << (fd % kChunk);
  Chunk* chunk = m_chunks[fd / kChunk];
  chunk->cloexec = value ? (chunk->cloexec | bit) : (chunk->cloexec & ~bit);
  return {};
}

Result<void> FileTable::set_cwd(Vnode* dir, const char* path) {
  // A path too long to keep is kept as "": getcwd computes the path from the tree anyway.
  usize length = string_length(path);
  if (length >= kCwdMax) {
    path = "";
    length = 0;
  }
  dir->retain();
  Vnode* previous;
  {
    SpinLockGuard guard(m_lock);
    previous = m_cwd;
    m_cwd = dir;
    copy_bytes(m_cwd_path, path, length + 1);
  }
  if (previous != nullptr) previous->release();
  return {};
}

void FileTable::cwd_snapshot(Vnode** dir, char* path) {
  SpinLockGuard guard(m_lock);
  *dir = m_cwd;
  if (m_cwd != nullptr) m_cwd->retain();
  copy_bytes(path, m_cwd_path, kCwdMax);
}

Result<usize> FileTable::cwd_path(char* out) {
  char stored[kCwdMax];
  Vnode* dir = nullptr;
  cwd_snapshot(&dir, stored);
  if (dir == nullptr) {
    out[0] = '/';
    out[1] = 0;
    return usize{1};
  }
  auto computed = m_vfs->path_of(dir, out);
  // A directory the tree cannot place (a synthetic file system whose parent does not list it by
  // its inode number) falls back to the path it was entered by; a removed one is ENOENT.
  const bool fall_back = computed.is_error() && computed.error() == Errno::kENOENT && !dir->removed() && stored[0] != 0;
  dir->release();
  if (!fall_back) return computed;
  const usize length = string_length(stored);
  copy_bytes(out, stored, length + 1);
  return length;
}

}  // namespace tandem
