// File and file-descriptor system calls: decode the arguments, then call the VFS or the file.
// Errors follow Linux's (see open(2), stat(2), getdents64(2), fcntl(2), rename(2) and the rest).
#include "core/fs/file_table.h"
#include "core/fs/vfs.h"
#include "core/kernel.h"
#include "core/mm/user.h"
#include "core/net/socket.h"
#include "core/syscalls/dispatch.h"
#include "core/syscalls/fs_util.h"

namespace tandem {

namespace {

constexpr u64 kMaxIo = 0x7ffff000;  // Linux's MAX_RW_COUNT
constexpr u32 kAtSymlinkFollowFlag = 0x400;
constexpr u32 kAtSymlinkNofollow = 0x100, kAtRemoveDir = 0x200, kAtEaccess = 0x200,
              kAtNoAutomount = 0x800, kAtEmptyPath = 0x1000, kAtStatxSyncMask = 0x6000;

// read and write (and their positioned and vector forms) differ only in the direction.
Result<i64> do_transfer(i32 fd, const IoBuffer& buffer, u64 length, const u64* position, bool write) {
  FileRef file = TRY(get_file(fd));
  if (!(write ? file->writable() : file->readable())) return Errno::kEBADF;
  length = min(length, kMaxIo);
  auto transfer = [&](u64* at) { return write ? file->write(buffer, length, at) : file->read(buffer, length, at); };
  if (position != nullptr) {
    if (!file->seekable()) return Errno::kESPIPE;
    u64 at = *position;
    return static_cast<i64>(TRY(transfer(&at)));
  }
  if (file->seekable()) {
    // Regular files never block, so their position lock may be a spin lock: threads and forked
    // processes sharing the open file then never read or write at the same offset.
    const bool regular = file->vnode()->is_regular();
    hal::IrqFlags flags = 0;
    if (regular) {
      flags = hal::irq_save();
      file->position_lock().acquire();
    }
    u64 at = file->offset();
    auto done = transfer(&at);
    if (done.ok()) file->set_offset(at);
    if (regular) {
      file->position_lock().release();
      hal::irq_restore(flags);
    }
    return static_cast<i64>(TRY(done));
  }
  return static_cast<i64>(TRY(transfer(nullptr)));
}

Result<i64> do_read(SyscallArgs&, i32 fd, const IoBuffer& buffer, u64 length, const u64* position) {
  return do_transfer(fd, buffer, length, position, false);
}

Result<i64> do_write(SyscallArgs&, i32 fd, const IoBuffer& buffer, u64 length, const u64* position) {
  return do_transfer(fd, buffer, length, position, true);
}

struct Iovec {
  u64 base;
  u64 length;
};

Result<i64> do_vector(SyscallArgs& args, bool write) {
  const i32 fd = static_cast<i32>(args.arg[0]);
  const UserPtr<Iovec> iov(args.arg[1]);
  const u64 count = args.arg[2];
  if (count > 1024) return Errno::kEINVAL;
  {
    FileRef file = TRY(get_file(fd));
    if (write ? !file->writable() : !file->readable()) return Errno::kEBADF;
    // A socket takes the whole array as one message (core/net).
    if (Socket* socket = Socket::from(*file.get())) return socket_vector_io(*socket, args.arg[1], count, write);
  }
  // Decode every vector first: a bad one fails the call before anything moves.
  u64 total = 0;
  for (u64 i = 0; i < count; ++i) {
    const Iovec v = TRY(copy_from_user(iov.offset(i)));
    if (static_cast<i64>(v.length) < 0 || total + v.length < total) return Errno::kEINVAL;
    total += v.length;
  }
  u64 done = 0;
  for (u64 i = 0; i < count; ++i) {
    const Iovec v = TRY(copy_from_user(iov.offset(i)));
    if (v.length == 0) continue;
    auto moved = write ? do_write(args, fd, IoBuffer::from_user(v.base), v.length, nullptr)
                       : do_read(args, fd, IoBuffer::from_user(v.base), v.length, nullptr);
    if (moved.is_error()) {
      if (done == 0) return moved.error();
      break;
    }
    done += static_cast<u64>(moved.value());
    if (static_cast<u64>(moved.value()) < v.length) break;
  }
  return static_cast<i64>(done);
}

// ---- open ----

// open(O_CREAT)'s last component, as Linux's open_last_lookups: a trailing slash or a
// directory name (".", "..", "/") is EISDIR (EEXIST with O_EXCL); an existing name is EEXIST
// with O_EXCL, else opened, and a symbolic link there is followed (O_NOFOLLOW: ELOOP), its
// body's last component again created if missing; a missing name is created. The result is
// retained; it is never a directory the caller may open (O_CREAT on one is EISDIR).
Result<Vnode*> open_create(Vfs& vfs, const PathStart& first, const char* path, u32 flags, u32 mode) {
  const bool exclusive = (flags & oflag::kExcl) != 0;
  PathBuffer body(vfs.kernel());
  if (!body.ok()) return Errno::kENOMEM;
  PathStart start = first;
  Vnode* held_start = nullptr;  // the directory a link's body starts from, retained
  auto done = [&](Result<Vnode*> r) {
    if (held_start != nullptr) held_start->release();
    return r;
  };
  u32 links = 0;
  for (;;) {
    ParentLookup parent;
    parent.links = links;
    if (auto r = vfs.resolve_parent(start, path, &parent); r.is_error()) return done(r.error());
    VnodeRef dir{parent.dir};
    links = parent.links;
    if (parent.is_dot) return done(exclusive ? Errno::kEEXIST : Errno::kEISDIR);
    if (parent.trailing_slash) return done(Errno::kEISDIR);
    if (dir->removed()) return done(Errno::kENOENT);
    if (parent.name_too_long) return done(Errno::kENAMETOOLONG);
    Vnode* existing = vfs.mounted_at(dir.get(), parent.name, parent.length);
    if (existing == nullptr) {
      auto found = dir->lookup(parent.name, parent.length);
      if (found.ok()) existing = found.value();
      else if (found.error() != Errno::kENOENT) return done(found.error());
    }
    if (existing == nullptr) {
      auto created = dir->create(parent.name, parent.length, kIfReg | mode);
      // Another process made the name between the lookup and the create: look again.
      if (created.is_error() && created.error() == Errno::kEEXIST && !exclusive) continue;
      return done(created);
    }
    if (exclusive) {
      existing->release();
      return done(Errno::kEEXIST);
    }
    if (!existing->is_symlink()) return done(existing);
    if ((flags & oflag::kNoFollow) != 0) {
      existing->release();
      return done(Errno::kELOOP);
    }
    auto length = existing->readlink(body.data(), kPathMax - 1);
    existing->release();
    if (length.is_error()) return done(length.error());
    if (++links > kMaxSymlinks) return done(Errno::kELOOP);
    if (length.value() == 0) return done(Errno::kENOENT);
    body.data()[length.value()] = 0;
    // The body starts where the link is (its path string only matters for directories, and
    // what this opens is never one).
    if (held_start != nullptr) held_start->release();
    held_start = dir.get();
    held_start->retain();
    start = PathStart{held_start, ""};
    path = body.data();
  }
}

Result<i64> do_open(SyscallArgs& args, i32 dirfd, u64 path_address, u32 flags, u32 mode) {
  Kernel& kernel = args.kernel;
  PathBuffer path(kernel);
  if (!path.ok()) return Errno::kENOMEM;
  TRY(copy_path_from_user(path_address, path.data()));
  if ((flags & oflag::kTmpFile) == oflag::kTmpFile) return Errno::kEOPNOTSUPP;
  FileTable* files = TRY(current_files());
  Vfs* vfs = TRY(kernel_vfs(kernel));
  AtStart start = TRY(at_start(dirfd, path.data()));
  PathBuffer canonical(kernel);
  if (!canonical.ok()) return Errno::kENOMEM;
  const u32 access = flags & oflag::kAccMode;
  if (access == 3 && (flags & oflag::kPath) == 0) return Errno::kEINVAL;
  const bool wants_write = (flags & oflag::kPath) == 0 && (access == oflag::kWrOnly || access == oflag::kRdWr);

  Vnode* vnode = nullptr;
  // O_CREAT | O_DIRECTORY never creates here (newer Linux refuses the pair; 6.1 made a file and
  // then failed): the name is only opened if it exists.
  if ((flags & oflag::kCreat) == 0 || (flags & oflag::kDirectory) != 0) {
    vnode = TRY(vfs->resolve(start.start(), path.data(), (flags & oflag::kNoFollow) == 0, canonical.data()));
  } else {
    vnode = TRY(open_create(*vfs, start.start(), path.data(), flags, mode & ~files->umask() & 07777));
  }
  VnodeRef held{vnode};
  // As Linux's do_open: O_DIRECTORY's check comes first, then a link O_NOFOLLOW stopped at.
  if ((flags & oflag::kDirectory) && !vnode->is_directory()) return Errno::kENOTDIR;
  if (vnode->is_symlink() && (flags & oflag::kPath) == 0) return Errno::kELOOP;
  if (vnode->is_directory() && (wants_write || (flags & oflag::kCreat) != 0) && (flags & oflag::kPath) == 0)
    return Errno::kEISDIR;
  if (wants_write && vnode->fs()->read_only && (vnode->is_regular() || vnode->is_directory())) return Errno::kEROFS;
  if ((flags & oflag::kTrunc) && wants_write && !vnode->is_directory()) TRY(vnode->truncate(0));

  File* file = TRY(vfs->open_vnode(vnode, flags & ~(oflag::kCreat | oflag::kExcl | oflag::kNoCtty | oflag::kTrunc |
                                                    oflag::kCloExec)));
  if (vnode->is_directory()) {
    auto r = file->set_path(canonical.data(), string_length(canonical.data()));
    if (r.is_error()) {
      file->release();
      return r.error();
    }
  }
  auto fd = files->install(file, (flags & oflag::kCloExec) != 0);
  if (fd.is_error()) {
    file->release();
    return fd.error();
  }
  return fd.value();
}

Result<void> fill_stat_of(Kernel& kernel, i32 dirfd, u64 path_address, u32 flags, KernelStat* st) {
  PathBuffer path(kernel);
  if (!path.ok()) return Errno::kENOMEM;
  TRY(copy_path_from_user(path_address, path.data(), (flags & kAtEmptyPath) != 0));
  if (path.data()[0] == 0 && dirfd != kAtFdCwd) {
    FileRef file = TRY(get_file(dirfd));
    file->stat(st);
    return {};
  }
  if (path.data()[0] == 0) {  // AT_EMPTY_PATH with AT_FDCWD: the current directory
    AtStart start = TRY(at_start(dirfd, path.data()));
    start.m_dir->fill_stat(st);
    return {};
  }
  Vfs* vfs = TRY(kernel_vfs(kernel));
  AtStart start = TRY(at_start(dirfd, path.data()));
  Vnode* vnode = TRY(vfs->resolve(start.start(), path.data(), (flags & kAtSymlinkNofollow) == 0));
  vnode->fill_stat(st);
  vnode->release();
  return {};
}

// The vnode a *at() call names, retained: for an empty path (AT_EMPTY_PATH) dirfd's own open
// file, otherwise the path resolved from dirfd. Null, without an error, when the empty path
// names an open file that has no vnode: each caller answers that case as Linux does.
Result<Vnode*> resolve_at(Kernel& kernel, i32 dirfd, const char* path, bool follow) {
  if (path[0] == 0 && dirfd == kAtFdCwd) {  // AT_EMPTY_PATH with AT_FDCWD: the current directory
    AtStart start = TRY(at_start(dirfd, path));
    start.m_dir->retain();
    return start.m_dir;
  }
  if (path[0] == 0) {
    FileRef file = TRY(get_file(dirfd));
    Vnode* vnode = file->vnode();
    if (vnode != nullptr) vnode->retain();
    return vnode;
  }
  Vfs* vfs = TRY(kernel_vfs(kernel));
  AtStart start = TRY(at_start(dirfd, path));
  return vfs->resolve(start.start(), path, follow);
}

Result<i64> do_access(SyscallArgs& args, i32 dirfd, u64 path_address, u32 mode, u32 flags) {
  if ((mode & ~7u) != 0) return Errno::kEINVAL;
  if ((flags & ~(kAtEaccess | kAtSymlinkNofollow | kAtEmptyPath)) != 0) return Errno::kEINVAL;
  PathBuffer path(args.kernel);
  if (!path.ok()) return Errno::kENOMEM;
  TRY(copy_path_from_user(path_address, path.data(), (flags & kAtEmptyPath) != 0));
  Vnode* vnode = TRY(resolve_at(args.kernel, dirfd, path.data(), (flags & kAtSymlinkNofollow) == 0));
  if (vnode == nullptr) return 0;
  VnodeRef held{vnode};
  // tandem runs everything as root: only a read-only file system and missing execute bits
  // refuse (root may execute a file when any execute bit is set).
  if ((mode & 2) && vnode->fs()->read_only && (vnode->is_regular() || vnode->is_directory())) return Errno::kEROFS;
  if ((mode & 1) && !vnode->is_directory() && (vnode->mode() & 0111) == 0) return Errno::kEACCES;
  return 0;
}

// ---- directories and names ----

Result<i64> do_mkdir(SyscallArgs& args, i32 dirfd, u64 path_address, u32 mode) {
  PathBuffer path(args.kernel);
  if (!path.ok()) return Errno::kENOMEM;
  TRY(copy_path_from_user(path_address, path.data()));
  FileTable* files = TRY(current_files());
  Vfs* vfs = TRY(kernel_vfs(args.kernel));
  AtStart start = TRY(at_start(dirfd, path.data()));
  ParentLookup parent;
  TRY(vfs->resolve_parent(start.start(), path.data(), &parent));
  VnodeRef dir{parent.dir};
  TRY(vfs->check_create(parent, true));
  Vnode* made = TRY(dir->create(parent.name, parent.length, kIfDir | (mode & ~files->umask() & 01777)));
  made->release();
  return 0;
}

Result<i64> do_unlink(SyscallArgs& args, i32 dirfd, u64 path_address, bool directory) {
  PathBuffer path(args.kernel);
  if (!path.ok()) return Errno::kENOMEM;
  TRY(copy_path_from_user(path_address, path.data()));
  Vfs* vfs = TRY(kernel_vfs(args.kernel));
  AtStart start = TRY(at_start(dirfd, path.data()));
  ParentLookup parent;
  TRY(vfs->resolve_parent(start.start(), path.data(), &parent));
  VnodeRef dir{parent.dir};
  if (parent.is_dot) {
    if (!directory) return Errno::kEISDIR;
    if (parent.length == 1) return Errno::kEINVAL;   // rmdir(".")
    return parent.length == 2 ? Errno::kENOTEMPTY : Errno::kEBUSY;  // ".." or "/"
  }
  if (dir->removed()) return Errno::kENOENT;
  if (parent.name_too_long) return Errno::kENAMETOOLONG;
  if (!directory && parent.trailing_slash) {
    // unlink("dir/"): a directory is EISDIR, anything else ENOTDIR.
    auto target = dir->lookup(parent.name, parent.length);
    if (target.is_error()) return target.error();
    const bool is_dir = target.value()->is_directory();
    target.value()->release();
    return is_dir ? Errno::kEISDIR : Errno::kENOTDIR;
  }
  if (Vnode* mounted = vfs->mounted_at(dir.get(), parent.name, parent.length)) {
    mounted->release();
    return directory ? Errno::kEBUSY : Errno::kEISDIR;
  }
  TRY(dir->unlink(parent.name, parent.length, directory));
  return 0;
}

Result<i64> do_rename(SyscallArgs& args, i32 old_dirfd, u64 old_address, i32 new_dirfd, u64 new_address, u32 flags) {
  constexpr u32 kNoReplace = 1, kExchange = 2, kWhiteout = 4;
  if ((flags & ~(kNoReplace | kExchange | kWhiteout)) != 0) return Errno::kEINVAL;
  if ((flags & kExchange) && (flags & (kNoReplace | kWhiteout))) return Errno::kEINVAL;
  // RENAME_EXCHANGE and RENAME_WHITEOUT are not implemented by tandem's file systems.
  if (flags & (kExchange | kWhiteout)) return Errno::kEINVAL;
  PathBuffer old_path(args.kernel), new_path(args.kernel);
  if (!old_path.ok() || !new_path.ok()) return Errno::kENOMEM;
  TRY(copy_path_from_user(old_address, old_path.data()));
  // As Linux: the new name's own fault (empty, too long, EFAULT) comes after the old name's walk.
  const auto new_copied = copy_path_from_user(new_address, new_path.data());
  Vfs* vfs = TRY(kernel_vfs(args.kernel));
  AtStart old_start = TRY(at_start(old_dirfd, old_path.data()));
  ParentLookup from, to;
  TRY(vfs->resolve_parent(old_start.start(), old_path.data(), &from));
  VnodeRef from_dir{from.dir};
  TRY(new_copied);
  AtStart new_start = TRY(at_start(new_dirfd, new_path.data()));
  TRY(vfs->resolve_parent(new_start.start(), new_path.data(), &to));
  VnodeRef to_dir{to.dir};
  // Linux's do_renameat2 order: the mounts, the dots, the source, the target's name, trailing
  // slashes, then a directory moved below itself (EINVAL) or onto one of its ancestors
  // (ENOTEMPTY) when the parents differ; the file system checks the rest.
  if (from_dir->fs() != to_dir->fs()) return Errno::kEXDEV;
  if (from.is_dot || to.is_dot) return Errno::kEBUSY;
  if (from_dir->removed()) return Errno::kENOENT;
  if (from.name_too_long) return Errno::kENAMETOOLONG;
  Vnode* source = TRY(from_dir->lookup(from.name, from.length));
  VnodeRef source_ref{source};
  if (to_dir->removed()) return Errno::kENOENT;
  if (to.name_too_long) return Errno::kENAMETOOLONG;
  if (!source->is_directory() && (from.trailing_slash || to.trailing_slash)) return Errno::kENOTDIR;
  if (from_dir.get() != to_dir.get()) {
    if (vfs->is_ancestor(source, to_dir.get())) return Errno::kEINVAL;
    auto target = to_dir->lookup(to.name, to.length);
    if (target.ok()) {
      VnodeRef target_ref{target.value()};
      if (vfs->is_ancestor(target.value(), from_dir.get())) return Errno::kENOTEMPTY;
    }
  }
  TRY(from_dir->rename(from.name, from.length, to_dir.get(), to.name, to.length, flags));
  return 0;
}

Result<i64> do_symlink(SyscallArgs& args, u64 target_address, i32 dirfd, u64 path_address) {
  PathBuffer target(args.kernel), path(args.kernel);
  if (!target.ok() || !path.ok()) return Errno::kENOMEM;
  TRY(copy_path_from_user(target_address, target.data()));
  TRY(copy_path_from_user(path_address, path.data()));
  Vfs* vfs = TRY(kernel_vfs(args.kernel));
  AtStart start = TRY(at_start(dirfd, path.data()));
  ParentLookup parent;
  TRY(vfs->resolve_parent(start.start(), path.data(), &parent));
  VnodeRef dir{parent.dir};
  TRY(vfs->check_create(parent, false));
  Vnode* made = TRY(dir->symlink(parent.name, parent.length, target.data(), string_length(target.data())));
  made->release();
  return 0;
}

Result<i64> do_readlink(SyscallArgs& args, i32 dirfd, u64 path_address, u64 buffer, i64 size) {
  if (size <= 0) return Errno::kEINVAL;
  PathBuffer path(args.kernel), target(args.kernel);
  if (!path.ok() || !target.ok()) return Errno::kENOMEM;
  TRY(copy_path_from_user(path_address, path.data()));
  Vfs* vfs = TRY(kernel_vfs(args.kernel));
  AtStart start = TRY(at_start(dirfd, path.data()));
  Vnode* vnode = TRY(vfs->resolve(start.start(), path.data(), false));
  VnodeRef held{vnode};
  if (!vnode->is_symlink()) return Errno::kEINVAL;
  const usize n = min<u64>(TRY(vnode->readlink(target.data(), kPathMax)), static_cast<u64>(size));
  if (!hal::copy_to_user(buffer, target.data(), n)) return Errno::kEFAULT;
  return static_cast<i64>(n);
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Reads and writes
// ---------------------------------------------------------------------------------------------

Result<i64> sys_read(SyscallArgs& args) {
  return do_read(args, static_cast<i32>(args.arg[0]), IoBuffer::from_user(args.arg[1]), args.arg[2], nullptr);
}
Result<i64> sys_write(SyscallArgs& args) {
  return do_write(args, static_cast<i32>(args.arg[0]), IoBuffer::from_user(args.arg[1]), args.arg[2], nullptr);
}
Result<i64> sys_pread64(SyscallArgs& args) {
  if (static_cast<i64>(args.arg[3]) < 0) return Errno::kEINVAL;
  return do_read(args, static_cast<i32>(args.arg[0]), IoBuffer::from_user(args.arg[1]), args.arg[2], &args.arg[3]);
}
Result<i64> sys_pwrite64(SyscallArgs& args) {
  if (static_cast<i64>(args.arg[3]) < 0) return Errno::kEINVAL;
  return do_write(args, static_cast<i32>(args.arg[0]), IoBuffer::from_user(args.arg[1]), args.arg[2], &args.arg[3]);
}
Result<i64> sys_readv(SyscallArgs& args) { return do_vector(args, false); }
Result<i64> sys_writev(SyscallArgs& args) { return do_vector(args, true); }

Result<i64> sys_lseek(SyscallArgs& args) {
  constexpr u64 kSeekSet = 0, kSeekCur = 1, kSeekEnd = 2, kSeekData = 3, kSeekHole = 4;
  FileRef file = TRY(get_file(static_cast<i32>(args.arg[0])));
  if (!file->seekable()) return Errno::kESPIPE;
  const i64 offset = static_cast<i64>(args.arg[1]);
  if (args.arg[2] == kSeekData || args.arg[2] == kSeekHole) {
    // The next data or hole at or after an absolute offset; ENXIO past the end (and for a
    // negative offset, as tmpfs answers).
    if (offset < 0 || file->vnode() == nullptr) return Errno::kENXIO;
    const u64 found = TRY(file->vnode()->seek_data_or_hole(static_cast<u64>(offset), args.arg[2] == kSeekHole));
    SpinLockGuard guard(file->position_lock());
    file->set_offset(found);
    return static_cast<i64>(found);
  }
  if (args.arg[2] != kSeekSet && args.arg[2] != kSeekCur && args.arg[2] != kSeekEnd) return Errno::kEINVAL;
  // The end is read before the position lock: size() takes the file system's lock.
  const i64 end = args.arg[2] == kSeekEnd ? static_cast<i64>(file->vnode()->size()) : 0;
  SpinLockGuard guard(file->position_lock());
  const i64 base = args.arg[2] == kSeekSet ? 0 : args.arg[2] == kSeekCur ? static_cast<i64>(file->offset()) : end;
  i64 position = 0;
  // Past the largest offset (an overflow) or before the start: EINVAL, as Linux.
  if (__builtin_add_overflow(base, offset, &position) || position < 0) return Errno::kEINVAL;
  file->set_offset(static_cast<u64>(position));
  return position;
}

Result<i64> sys_sendfile(SyscallArgs& args) {
  const i32 out_fd = static_cast<i32>(args.arg[0]);
  const i32 in_fd = static_cast<i32>(args.arg[1]);
  const UserPtr<i64> offset_ptr(args.arg[2]);
  const u64 count = min(args.arg[3], kMaxIo);
  FileRef in = TRY(get_file(in_fd));
  FileRef out = TRY(get_file(out_fd));
  if (!in->readable() || !out->writable()) return Errno::kEBADF;
  if (!in->seekable()) return Errno::kEINVAL;  // Linux needs an mmap-able input
  if ((out->flags() & oflag::kAppend) != 0) return Errno::kEINVAL;
  u64 position = in->offset();
  if (!offset_ptr.is_null()) {
    const i64 start = TRY(copy_from_user(offset_ptr));
    if (start < 0) return Errno::kEINVAL;
    position = static_cast<u64>(start);
  }
  PathBuffer bounce(args.kernel);  // a page of kernel memory
  if (!bounce.ok()) return Errno::kENOMEM;
  u64 done = 0;
  while (done < count) {
    u64 at = position + done;
    auto got = in->read(IoBuffer::from_kernel(bounce.data()), min<u64>(kPathMax, count - done), &at);
    if (got.is_error()) {
      if (done == 0) return got.error();
      break;
    }
    if (got.value() == 0) break;
    u64 out_at = out->offset();
    auto put = out->write(IoBuffer::from_kernel(bounce.data()), got.value(), out->seekable() ? &out_at : nullptr);
    if (put.is_error()) {
      if (done == 0) return put.error();
      break;
    }
    if (out->seekable()) out->set_offset(out_at);
    done += put.value();
    if (put.value() < got.value()) break;
  }
  if (offset_ptr.is_null()) in->set_offset(position + done);
  else TRY(copy_to_user(offset_ptr, static_cast<i64>(position + done)));
  return static_cast<i64>(done);
}

// ---------------------------------------------------------------------------------------------
// Opening, closing, duplicating
// ---------------------------------------------------------------------------------------------

Result<i64> sys_open(SyscallArgs& args) {
  return do_open(args, kAtFdCwd, args.arg[0], static_cast<u32>(args.arg[1]), static_cast<u32>(args.arg[2]));
}
Result<i64> sys_openat(SyscallArgs& args) {
  return do_open(args, static_cast<i32>(args.arg[0]), args.arg[1], static_cast<u32>(args.arg[2]),
                 static_cast<u32>(args.arg[3]));
}

Result<i64> sys_close(SyscallArgs& args) {
  FileTable* files = TRY(current_files());
  TRY(files->close(static_cast<i32>(args.arg[0])));
  return 0;
}

Result<i64> sys_close_range(SyscallArgs& args) {
  constexpr u64 kUnshare = 2, kCloexec = 4;
  const u64 first = static_cast<u32>(args.arg[0]), last = static_cast<u32>(args.arg[1]);
  if ((args.arg[2] & ~(kUnshare | kCloexec)) != 0 || first > last) return Errno::kEINVAL;
  FileTable* files = TRY(current_files());
  // CLOSE_RANGE_UNSHARE: tandem's processes never share a table across processes yet.
  files->close_range(static_cast<u32>(first), static_cast<u32>(min<u64>(last, FileTable::kMaxFds - 1)),
                     (args.arg[2] & kCloexec) != 0);
  return 0;
}

Result<i64> sys_dup(SyscallArgs& args) {
  FileTable* files = TRY(current_files());
  File* file = TRY(files->get(static_cast<i32>(args.arg[0])));
  auto fd = files->install(file, false);
  if (fd.is_error()) {
    file->release();
    return fd.error();
  }
  return fd.value();
}

namespace {
Result<i64> do_dup3(i32 old_fd, u64 new_fd, bool cloexec) {
  FileTable* files = TRY(current_files());
  File* file = TRY(files->get(old_fd));
  if (new_fd >= files->limit()) {
    file->release();
    return Errno::kEBADF;
  }
  auto r = files->install_at(static_cast<u32>(new_fd), file, cloexec);
  if (r.is_error()) {
    file->release();
    return r.error();
  }
  return static_cast<i64>(new_fd);
}
}  // namespace

Result<i64> sys_dup2(SyscallArgs& args) {
  const i32 old_fd = static_cast<i32>(args.arg[0]);
  if (static_cast<i64>(static_cast<i32>(args.arg[1])) == old_fd) {
    // dup2(fd, fd) checks fd and changes nothing.
    FileRef file = TRY(get_file(old_fd));
    return old_fd;
  }
  return do_dup3(old_fd, static_cast<u32>(args.arg[1]), false);
}

Result<i64> sys_dup3(SyscallArgs& args) {
  if ((args.arg[2] & ~static_cast<u64>(oflag::kCloExec)) != 0) return Errno::kEINVAL;
  if (static_cast<u32>(args.arg[0]) == static_cast<u32>(args.arg[1])) return Errno::kEINVAL;
  return do_dup3(static_cast<i32>(args.arg[0]), static_cast<u32>(args.arg[1]), args.arg[2] != 0);
}

Result<i64> sys_fcntl(SyscallArgs& args) {
  constexpr u64 kDupFd = 0, kGetFd = 1, kSetFd = 2, kGetFl = 3, kSetFl = 4, kSetLk = 6, kSetLkW = 7, kGetLk = 5,
                kDupFdCloexec = 1030, kFdCloexec = 1, kAddSeals = 1033, kGetSeals = 1034;
  const i32 fd = static_cast<i32>(args.arg[0]);
  FileTable* files = TRY(current_files());
  switch (args.arg[1]) {
    case kDupFd:
    case kDupFdCloexec: {
      if (static_cast<u32>(args.arg[2]) >= files->limit()) return Errno::kEINVAL;
      File* file = TRY(files->get(fd));
      auto r = files->install(file, args.arg[1] == kDupFdCloexec, static_cast<u32>(args.arg[2]));
      if (r.is_error()) {
        file->release();
        return r.error();
      }
      return r.value();
    }
    case kGetFd: return TRY(files->cloexec(fd)) ? kFdCloexec : 0;
    case kSetFd: TRY(files->set_cloexec(fd, (args.arg[2] & kFdCloexec) != 0)); return 0;
    case kGetFl: {
      FileRef file = TRY(get_file(fd));
      return file->flags() | oflag::kLargeFile;
    }
    case kSetFl: {
      FileRef file = TRY(get_file(fd));
      file->set_status_flags(static_cast<u32>(args.arg[2]));
      return 0;
    }
    case kGetLk:
    case kSetLk:
    case kSetLkW: {
      // Record locks: one process holds every lock it asks for, there being no other to
      // conflict with across a shared file yet; F_GETLK reports the range unlocked.
      FileRef file = TRY(get_file(fd));
      if (args.arg[1] == kGetLk) {
        const u16 unlocked = 2;  // F_UNLCK in struct flock's l_type
        TRY(copy_to_user(UserPtr<u16>(args.arg[2]), unlocked));
      }
      return 0;
    }
    case kAddSeals:
    case kGetSeals: {
      FileRef file = TRY(get_file(fd));
      return file_seals(*file.get(), static_cast<u32>(args.arg[1]), args.arg[2]);
    }
    default: return Errno::kEINVAL;
  }
}

Result<i64> sys_ioctl(SyscallArgs& args) {
  constexpr u64 kFionbio = 0x5421, kFioclex = 0x5451, kFionclex = 0x5450, kFionread = 0x541b;
  const i32 fd = static_cast<i32>(args.arg[0]);
  FileRef file = TRY(get_file(fd));
  switch (args.arg[1]) {
    case kFionbio: {
      const i32 on = TRY(copy_from_user(UserPtr<i32>(args.arg[2])));
      file->set_status_flags(on ? (file->flags() | oflag::kNonBlock) : (file->flags() & ~oflag::kNonBlock));
      return 0;
    }
    case kFioclex:
    case kFionclex: {
      FileTable* files = TRY(current_files());
      TRY(files->set_cloexec(fd, args.arg[1] == kFioclex));
      return 0;
    }
    case kFionread:
      if (file->vnode() != nullptr && file->vnode()->is_regular()) {
        const u64 size = file->vnode()->size();
        const i32 left = static_cast<i32>(size > file->offset() ? min<u64>(size - file->offset(), 0x7fffffff) : 0);
        TRY(copy_to_user(UserPtr<i32>(args.arg[2]), left));
        return 0;
      }
      return file->ioctl(args.arg[1], args.arg[2]);
    default: return file->ioctl(args.arg[1], args.arg[2]);
  }
}

// ---------------------------------------------------------------------------------------------
// Metadata
// ---------------------------------------------------------------------------------------------

Result<i64> sys_fstat(SyscallArgs& args) {
  FileRef file = TRY(get_file(static_cast<i32>(args.arg[0])));
  KernelStat st;
  file->stat(&st);
  TRY(copy_to_user(UserPtr<KernelStat>(args.arg[1]), st));
  return 0;
}

Result<i64> sys_stat(SyscallArgs& args) {
  KernelStat st;
  TRY(fill_stat_of(args.kernel, kAtFdCwd, args.arg[0], 0, &st));
  TRY(copy_to_user(UserPtr<KernelStat>(args.arg[1]), st));
  return 0;
}

Result<i64> sys_lstat(SyscallArgs& args) {
  KernelStat st;
  TRY(fill_stat_of(args.kernel, kAtFdCwd, args.arg[0], kAtSymlinkNofollow, &st));
  TRY(copy_to_user(UserPtr<KernelStat>(args.arg[1]), st));
  return 0;
}

Result<i64> sys_newfstatat(SyscallArgs& args) {
  const u32 flags = static_cast<u32>(args.arg[3]);
  if ((flags & ~(kAtSymlinkNofollow | kAtNoAutomount | kAtEmptyPath)) != 0) return Errno::kEINVAL;
  KernelStat st;
  TRY(fill_stat_of(args.kernel, static_cast<i32>(args.arg[0]), args.arg[1], flags, &st));
  TRY(copy_to_user(UserPtr<KernelStat>(args.arg[2]), st));
  return 0;
}

Result<i64> sys_statx(SyscallArgs& args) {
  const u32 flags = static_cast<u32>(args.arg[2]);
  if ((flags & ~(kAtSymlinkNofollow | kAtNoAutomount | kAtEmptyPath | kAtStatxSyncMask)) != 0) return Errno::kEINVAL;
  if ((flags & kAtStatxSyncMask) == kAtStatxSyncMask) return Errno::kEINVAL;
  if ((args.arg[3] & 0x80000000u) != 0) return Errno::kEINVAL;  // STATX__RESERVED
  KernelStat st;
  TRY(fill_stat_of(args.kernel, static_cast<i32>(args.arg[0]), args.arg[1], flags, &st));
  struct StatxTimestamp {
    i64 sec;
    u32 nsec;
    i32 reserved;
  };
  struct Statx {
    u32 mask, blksize;
    u64 attributes;
    u32 nlink, uid, gid;
    u16 mode, spare0;
    u64 ino, size, blocks, attributes_mask;
    StatxTimestamp atime, btime, ctime, mtime;
    u32 rdev_major, rdev_minor, dev_major, dev_minor;
    u64 spare[14];
  } x{};
  static_assert(sizeof(Statx) == 256);
  x.mask = 0x7ff;  // STATX_BASIC_STATS
  x.blksize = static_cast<u32>(st.st_blksize);
  x.nlink = static_cast<u32>(st.st_nlink);
  x.mode = static_cast<u16>(st.st_mode);
  x.ino = st.st_ino;
  x.size = static_cast<u64>(st.st_size);
  x.blocks = static_cast<u64>(st.st_blocks);
  x.atime = {st.st_atime_sec, static_cast<u32>(st.st_atime_nsec), 0};
  x.mtime = {st.st_mtime_sec, static_cast<u32>(st.st_mtime_nsec), 0};
  x.ctime = {st.st_ctime_sec, static_cast<u32>(st.st_ctime_nsec), 0};
  x.rdev_major = static_cast<u32>(st.st_rdev >> 8);
  x.rdev_minor = static_cast<u32>(st.st_rdev & 0xff);
  x.dev_major = static_cast<u32>(st.st_dev >> 8);
  x.dev_minor = static_cast<u32>(st.st_dev & 0xff);
  TRY(copy_to_user(UserPtr<Statx>(args.arg[4]), x));
  return 0;
}

Result<i64> sys_access(SyscallArgs& args) {
  return do_access(args, kAtFdCwd, args.arg[0], static_cast<u32>(args.arg[1]), 0);
}
Result<i64> sys_faccessat(SyscallArgs& args) {
  return do_access(args, static_cast<i32>(args.arg[0]), args.arg[1], static_cast<u32>(args.arg[2]), 0);
}
Result<i64> sys_faccessat2(SyscallArgs& args) {
  return do_access(args, static_cast<i32>(args.arg[0]), args.arg[1], static_cast<u32>(args.arg[2]),
                   static_cast<u32>(args.arg[3]));
}

Result<i64> sys_getdents64(SyscallArgs& args) {
  FileRef file = TRY(get_file(static_cast<i32>(args.arg[0])));
  const u64 buffer = args.arg[1];
  const u64 capacity = min<u64>(args.arg[2], kMaxIo);
  Vnode* dir = file->vnode();
  if (dir == nullptr || !dir->is_directory()) return Errno::kENOTDIR;
  DirEntry* entry = static_cast<DirEntry*>(args.kernel.heap().allocate(sizeof(DirEntry)));
  if (entry == nullptr) return Errno::kENOMEM;
  u64 cookie = file->offset();
  u64 written = 0;
  Errno error = static_cast<Errno>(0);
  for (;;) {
    const u64 before = cookie;
    auto more = dir->readdir(&cookie, entry);
    if (more.is_error()) {
      error = more.error();
      break;
    }
    if (!more.value()) break;
    const usize name_length = string_length(entry->name);
    const u64 record = align_up(19 + name_length + 1, 8);  // linux_dirent64 header is 19 bytes
    if (written + record > capacity) {
      cookie = before;
      if (written == 0) error = Errno::kEINVAL;
      break;
    }
    u8 header[19];
    const u64 next = cookie;
    const u16 reclen = static_cast<u16>(record);
    copy_bytes(header, &entry->ino, 8);
    copy_bytes(header + 8, &next, 8);
    copy_bytes(header + 16, &reclen, 2);
    header[18] = entry->type;
    u8 name[kNameMax + 1 + 8] = {};
    copy_bytes(name, entry->name, name_length);
    if (!hal::copy_to_user(buffer + written, header, sizeof(header)) ||
        !hal::copy_to_user(buffer + written + 19, name, record - 19)) {
      cookie = before;
      error = Errno::kEFAULT;
      break;
    }
    written += record;
  }
  args.kernel.heap().free(entry, sizeof(DirEntry));
  file->set_offset(cookie);
  if (written == 0 && error != static_cast<Errno>(0)) return error;
  return static_cast<i64>(written);
}

Result<i64> sys_readlink(SyscallArgs& args) {
  return do_readlink(args, kAtFdCwd, args.arg[0], args.arg[1], static_cast<i64>(static_cast<i32>(args.arg[2])));
}
Result<i64> sys_readlinkat(SyscallArgs& args) {
  return do_readlink(args, static_cast<i32>(args.arg[0]), args.arg[1], args.arg[2],
                     static_cast<i64>(static_cast<i32>(args.arg[3])));
}

Result<i64> sys_getcwd(SyscallArgs& args) {
  PathBuffer path(args.kernel);
  if (!path.ok()) return Errno::kENOMEM;
  const usize length = TRY(TRY(current_files())->cwd_path(path.data())) + 1;
  if (args.arg[1] < length) return Errno::kERANGE;
  if (!hal::copy_to_user(args.arg[0], path.data(), length)) return Errno::kEFAULT;
  return static_cast<i64>(length);
}

Result<i64> sys_chdir(SyscallArgs& args) {
  PathBuffer path(args.kernel), canonical(args.kernel);
  if (!path.ok() || !canonical.ok()) return Errno::kENOMEM;
  TRY(copy_path_from_user(args.arg[0], path.data()));
  FileTable* files = TRY(current_files());
  Vfs* vfs = TRY(kernel_vfs(args.kernel));
  AtStart start = TRY(at_start(kAtFdCwd, path.data()));
  Vnode* dir = TRY(vfs->resolve(start.start(), path.data(), true, canonical.data()));
  VnodeRef held{dir};
  if (!dir->is_directory()) return Errno::kENOTDIR;
  TRY(files->set_cwd(dir, canonical.data()));
  return 0;
}

Result<i64> sys_fchdir(SyscallArgs& args) {
  FileRef file = TRY(get_file(static_cast<i32>(args.arg[0])));
  FileTable* files = TRY(current_files());
  if (file->vnode() == nullptr || !file->vnode()->is_directory() || file->path() == nullptr) return Errno::kENOTDIR;
  TRY(files->set_cwd(file->vnode(), file->path()));
  return 0;
}

Result<i64> sys_mkdir(SyscallArgs& args) { return do_mkdir(args, kAtFdCwd, args.arg[0], static_cast<u32>(args.arg[1])); }
Result<i64> sys_mkdirat(SyscallArgs& args) {
  return do_mkdir(args, static_cast<i32>(args.arg[0]), args.arg[1], static_cast<u32>(args.arg[2]));
}
Result<i64> sys_rmdir(SyscallArgs& args) { return do_unlink(args, kAtFdCwd, args.arg[0], true); }
Result<i64> sys_unlink(SyscallArgs& args) { return do_unlink(args, kAtFdCwd, args.arg[0], false); }
Result<i64> sys_unlinkat(SyscallArgs& args) {
  if ((args.arg[2] & ~static_cast<u64>(kAtRemoveDir)) != 0) return Errno::kEINVAL;
  return do_unlink(args, static_cast<i32>(args.arg[0]), args.arg[1], (args.arg[2] & kAtRemoveDir) != 0);
}
Result<i64> sys_rename(SyscallArgs& args) { return do_rename(args, kAtFdCwd, args.arg[0], kAtFdCwd, args.arg[1], 0); }
Result<i64> sys_renameat(SyscallArgs& args) {
  return do_rename(args, static_cast<i32>(args.arg[0]), args.arg[1], static_cast<i32>(args.arg[2]), args.arg[3], 0);
}
Result<i64> sys_renameat2(SyscallArgs& args) {
  return do_rename(args, static_cast<i32>(args.arg[0]), args.arg[1], static_cast<i32>(args.arg[2]), args.arg[3],
                   static_cast<u32>(args.arg[4]));
}
Result<i64> sys_symlink(SyscallArgs& args) { return do_symlink(args, args.arg[0], kAtFdCwd, args.arg[1]); }
Result<i64> sys_symlinkat(SyscallArgs& args) {
  return do_symlink(args, args.arg[0], static_cast<i32>(args.arg[1]), args.arg[2]);
}

namespace {
// truncate and ftruncate past RLIMIT_FSIZE: SIGXFSZ and EFBIG (setrlimit(2)).
Result<void> check_file_size_limit(u64 length) {
  if (length <= file_size_limit()) return {};
  deliver_sigxfsz();
  return Errno::kEFBIG;
}
}  // namespace

Result<i64> sys_truncate(SyscallArgs& args) {
  if (static_cast<i64>(args.arg[1]) < 0) return Errno::kEINVAL;
  PathBuffer path(args.kernel);
  if (!path.ok()) return Errno::kENOMEM;
  TRY(copy_path_from_user(args.arg[0], path.data()));
  Vfs* vfs = TRY(kernel_vfs(args.kernel));
  AtStart start = TRY(at_start(kAtFdCwd, path.data()));
  Vnode* vnode = TRY(vfs->resolve(start.start(), path.data(), true));
  VnodeRef held{vnode};
  if (vnode->is_directory()) return Errno::kEISDIR;
  if (!vnode->is_regular()) return Errno::kEINVAL;
  if (vnode->fs()->read_only) return Errno::kEROFS;
  TRY(check_file_size_limit(args.arg[1]));
  TRY(vnode->truncate(args.arg[1]));
  return 0;
}

Result<i64> sys_ftruncate(SyscallArgs& args) {
  if (static_cast<i64>(args.arg[1]) < 0) return Errno::kEINVAL;
  FileRef file = TRY(get_file(static_cast<i32>(args.arg[0])));
  if (file->vnode() == nullptr || !file->vnode()->is_regular() || !file->writable()) return Errno::kEINVAL;
  TRY(check_file_size_limit(args.arg[1]));
  TRY(file->vnode()->truncate(args.arg[1]));
  return 0;
}

Result<i64> sys_utimensat(SyscallArgs& args) {
  constexpr i64 kUtimeNow = (1 << 30) - 1, kUtimeOmit = (1 << 30) - 2;
  const i32 dirfd = static_cast<i32>(args.arg[0]);
  const u32 flags = static_cast<u32>(args.arg[3]);
  if ((flags & ~(kAtSymlinkNofollow | kAtEmptyPath)) != 0) return Errno::kEINVAL;
  const UserPtr<KernelTimespec> times(args.arg[2]);
  KernelTimespec t[2] = {{0, kUtimeNow}, {0, kUtimeNow}};
  if (!times.is_null()) {
    t[0] = TRY(copy_from_user(times));
    t[1] = TRY(copy_from_user(times.offset(1)));
    for (const KernelTimespec& ts : t) {
      if (ts.tv_nsec != kUtimeNow && ts.tv_nsec != kUtimeOmit && (ts.tv_nsec < 0 || ts.tv_nsec >= 1'000'000'000))
        return Errno::kEINVAL;
    }
  }
  Vnode* vnode;
  if (args.arg[1] == 0) {
    // A null path names dirfd itself (futimens).
    FileRef file = TRY(get_file(dirfd));
    if (file->vnode() == nullptr) return Errno::kEINVAL;
    vnode = file->vnode();
    vnode->retain();
  } else {
    PathBuffer path(args.kernel);
    if (!path.ok()) return Errno::kENOMEM;
    TRY(copy_path_from_user(args.arg[1], path.data(), (flags & kAtEmptyPath) != 0));
    vnode = TRY(resolve_at(args.kernel, dirfd, path.data(), (flags & kAtSymlinkNofollow) == 0));
    if (vnode == nullptr) return Errno::kEINVAL;
  }
  VnodeRef held{vnode};
  if (t[1].tv_nsec == kUtimeOmit) {
    if (vnode->fs()->read_only) return Errno::kEROFS;
    return 0;
  }
  const u64 mtime = t[1].tv_nsec == kUtimeNow ? hal::realtime_ns()
                                              : static_cast<u64>(t[1].tv_sec) * 1'000'000'000 + static_cast<u64>(t[1].tv_nsec);
  TRY(vnode->set_mtime(mtime));
  return 0;
}

// ---- data integrity, advice and locks: tmpfs and the initramfs live in memory ----

namespace {
Result<i64> check_fd(u64 fd) {
  FileRef file = TRY(get_file(static_cast<i32>(fd)));
  return 0;
}
}  // namespace

Result<i64> sys_fsync(SyscallArgs& args) { return check_fd(args.arg[0]); }
Result<i64> sys_fdatasync(SyscallArgs& args) { return check_fd(args.arg[0]); }
Result<i64> sys_syncfs(SyscallArgs& args) { return check_fd(args.arg[0]); }
Result<i64> sys_sync(SyscallArgs&) { return 0; }

Result<i64> sys_fadvise64(SyscallArgs& args) {
  FileRef file = TRY(get_file(static_cast<i32>(args.arg[0])));
  if (!file->seekable()) return Errno::kESPIPE;
  if (args.arg[3] > 5) return Errno::kEINVAL;  // POSIX_FADV_NORMAL .. NOREUSE
  if (static_cast<i64>(args.arg[2]) < 0) return Errno::kEINVAL;
  return 0;
}

Result<i64> sys_flock(SyscallArgs& args) {
  // Advisory whole-file locks. LOCK_SH 1, LOCK_EX 2, LOCK_UN 8, LOCK_NB 4. tandem grants every
  // request: nothing yet runs two programs that contend for one lock (a known gap).
  constexpr u64 kSh = 1, kEx = 2, kNb = 4, kUn = 8;
  FileRef file = TRY(get_file(static_cast<i32>(args.arg[0])));
  const u64 op = args.arg[1] & ~kNb;
  if (op != kSh && op != kEx && op != kUn) return Errno::kEINVAL;
  return 0;
}

namespace {
Result<i64> do_chmod(SyscallArgs& args, i32 dirfd, u64 path_address, u32 mode, u32 flags) {
  if ((flags & ~(kAtSymlinkNofollow | kAtEmptyPath)) != 0) return Errno::kEINVAL;
  // fchmodat refuses AT_SYMLINK_NOFOLLOW on Linux before 6.6 (symlinks have no mode).
  if (flags & kAtSymlinkNofollow) return Errno::kEOPNOTSUPP;
  PathBuffer path(args.kernel);
  if (!path.ok()) return Errno::kENOMEM;
  TRY(copy_path_from_user(path_address, path.data(), (flags & kAtEmptyPath) != 0));
  Vnode* vnode = TRY(resolve_at(args.kernel, dirfd, path.data(), true));
  if (vnode == nullptr) return Errno::kEINVAL;
  VnodeRef held{vnode};
  TRY(vnode->set_permissions(mode & 07777));
  return 0;
}
}  // namespace

Result<i64> sys_chmod(SyscallArgs& args) { return do_chmod(args, kAtFdCwd, args.arg[0], static_cast<u32>(args.arg[1]), 0); }
Result<i64> sys_fchmodat(SyscallArgs& args) {
  return do_chmod(args, static_cast<i32>(args.arg[0]), args.arg[1], static_cast<u32>(args.arg[2]), 0);
}
Result<i64> sys_fchmod(SyscallArgs& args) {
  FileRef file = TRY(get_file(static_cast<i32>(args.arg[0])));
  if (file->vnode() == nullptr) return Errno::kEINVAL;  // pipes and event files have no inode mode to set here
  TRY(file->vnode()->set_permissions(static_cast<u32>(args.arg[1]) & 07777));
  return 0;
}

namespace {
// Linux's struct statfs on x86-64 and the magic numbers of the file systems tandem mounts.
struct KernelStatfs {
  i64 f_type, f_bsize;
  u64 f_blocks, f_bfree, f_bavail, f_files, f_ffree;
  i32 f_fsid[2];
  i64 f_namelen, f_frsize, f_flags;
  i64 f_spare[4];
};
static_assert(sizeof(KernelStatfs) == 120);

KernelStatfs statfs_of(const FileSystem* fs) {
  KernelStatfs st{};
  const char* type = fs->type_name;
  auto is = [&](const char* name) {
    const usize n = string_length(name);
    return string_length(type) == n && compare_bytes(type, name, n) == 0;
  };
  st.f_type = is("proc") ? 0x9fa0 : is("sysfs") ? 0x62656572 : is("rootfs") ? 0x858458f6 : 0x01021994;
  st.f_bsize = 4096;
  st.f_frsize = 4096;
  st.f_namelen = kNameMax;
  st.f_fsid[0] = static_cast<i32>(fs->device);
  st.f_flags = fs->read_only ? 1 : 0;  // ST_RDONLY
  return st;
}
}  // namespace

Result<i64> sys_statfs(SyscallArgs& args) {
  PathBuffer path(args.kernel);
  if (!path.ok()) return Errno::kENOMEM;
  TRY(copy_path_from_user(args.arg[0], path.data()));
  Vfs* vfs = TRY(kernel_vfs(args.kernel));
  AtStart start = TRY(at_start(kAtFdCwd, path.data()));
  Vnode* vnode = TRY(vfs->resolve(start.start(), path.data(), true));
  VnodeRef held{vnode};
  TRY(copy_to_user(UserPtr<KernelStatfs>(args.arg[1]), statfs_of(vnode->fs())));
  return 0;
}

Result<i64> sys_fstatfs(SyscallArgs& args) {
  FileRef file = TRY(get_file(static_cast<i32>(args.arg[0])));
  if (file->vnode() == nullptr) {
    // Pipes and event files live in kernel-internal file systems (pipefs, anon_inodefs).
    KernelStatfs st{};
    st.f_type = 0x50495045;  // PIPEFS_MAGIC
    st.f_bsize = st.f_frsize = 4096;
    st.f_namelen = kNameMax;
    TRY(copy_to_user(UserPtr<KernelStatfs>(args.arg[1]), st));
    return 0;
  }
  TRY(copy_to_user(UserPtr<KernelStatfs>(args.arg[1]), statfs_of(file->vnode()->fs())));
  return 0;
}

namespace {
Result<i64> do_link(SyscallArgs& args, i32 old_dirfd, u64 old_address, i32 new_dirfd, u64 new_address, u32 flags) {
  if ((flags & ~(kAtSymlinkFollowFlag | kAtEmptyPath)) != 0) return Errno::kEINVAL;
  PathBuffer old_path(args.kernel), new_path(args.kernel);
  if (!old_path.ok() || !new_path.ok()) return Errno::kENOMEM;
  TRY(copy_path_from_user(old_address, old_path.data(), (flags & kAtEmptyPath) != 0));
  TRY(copy_path_from_user(new_address, new_path.data()));
  // link(2) does not follow a symbolic link in oldpath unless AT_SYMLINK_FOLLOW.
  Vnode* target = TRY(resolve_at(args.kernel, old_dirfd, old_path.data(), (flags & kAtSymlinkFollowFlag) != 0));
  if (target == nullptr) return Errno::kENOENT;
  VnodeRef held{target};
  Vfs* vfs = TRY(kernel_vfs(args.kernel));
  if (target->is_directory()) return Errno::kEPERM;
  AtStart new_start = TRY(at_start(new_dirfd, new_path.data()));
  ParentLookup parent;
  TRY(vfs->resolve_parent(new_start.start(), new_path.data(), &parent));
  VnodeRef dir{parent.dir};
  if (parent.is_dot) return Errno::kEEXIST;
  if (parent.trailing_slash) return Errno::kENOENT;
  if (dir->fs() != target->fs()) return Errno::kEXDEV;
  if (Vnode* mounted = vfs->mounted_at(dir.get(), parent.name, parent.length)) {
    mounted->release();
    return Errno::kEEXIST;
  }
  TRY(dir->link(parent.name, parent.length, target));
  return 0;
}
}  // namespace

Result<i64> sys_link(SyscallArgs& args) { return do_link(args, kAtFdCwd, args.arg[0], kAtFdCwd, args.arg[1], 0); }
Result<i64> sys_linkat(SyscallArgs& args) {
  return do_link(args, static_cast<i32>(args.arg[0]), args.arg[1], static_cast<i32>(args.arg[2]), args.arg[3],
                 static_cast<u32>(args.arg[4]));
}

Result<i64> sys_umask(SyscallArgs& args) {
  FileTable* files = TRY(current_files());
  return files->exchange_umask(static_cast<u32>(args.arg[0]));
}

}  // namespace tandem
