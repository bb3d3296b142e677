// execve: replaces the calling process's program with an ELF file from the VFS, with its
// interpreter (PT_INTERP, e.g. glibc's /lib64/ld-linux-x86-64.so.2) when it has one. A `#!`
// script is run by the program its first line names (core/exec/script.h), up to
// kMaxScriptDepth scripts deep.
//
// Everything that can fail happens first, while the old program is intact: the path is walked,
// the headers are checked, the new address space is built and filled (the argument strings are
// copied straight from the old address space, which is still the active one, into the new).
// Then the point of no return: other threads go, the new space replaces the old one, handled
// signals return to SIG_DFL, close-on-exec descriptors close and a vfork parent wakes.
#include "core/exec/exec.h"

#include "core/exec/elf.h"
#include "core/exec/script.h"
#include "core/fs/file_table.h"
#include "core/kernel.h"
#include "core/lib/print.h"
#include "core/proc/process.h"
#include "core/syscalls/fs_util.h"

namespace tandem {

namespace {

// Where an interpreter goes: below the mmap area's top, so mmap's top-down search places the
// libraries it loads right under it, as on Linux.
constexpr u64 kInterpBase = 0x0000'7eff'f000'0000ull;
constexpr usize kHeaderBytes = 4096;

class VnodeReader final : public ElfReader {
 public:
  explicit VnodeReader(Vnode* vnode) : m_vnode(vnode) {}
  Result<void> read(u64 offset, void* out, usize length) override {
    auto* bytes = static_cast<u8*>(out);
    while (length > 0) {
      const usize got = TRY(m_vnode->read(offset, IoBuffer::from_kernel(bytes), length));
      if (got == 0) return Errno::kENOEXEC;  // the file shrank under us
      offset += got;
      bytes += got;
      length -= got;
    }
    return {};
  }

 private:
  Vnode* m_vnode;
};

// argv and envp in the old address space: pointers and lengths are read once, by prepare().
class UserArgs final : public ExecArgs {
 public:
  UserArgs(Kernel& kernel, u64 argv, u64 envp) : m_heap(kernel.heap()), m_arrays{argv, envp} {}
  ~UserArgs() {
    for (Entry*& chunk : m_chunks) {
      if (chunk != nullptr) m_heap.free(chunk, kChunkBytes);
    }
  }
  TANDEM_NONCOPYABLE(UserArgs);

  Result<void> prepare() override {
    TRY(load(false, m_arrays[0]));
    return load(true, m_arrays[1]);
  }

  Result<void> load(bool env, u64 array) {
    usize& n = m_count[env ? 1 : 0];
    if (array == 0) return {};  // Linux accepts a null argv or envp as empty
    for (;;) {
      u64 pointer = 0;
      if (!hal::copy_from_user(&pointer, array + 8 * n, sizeof(pointer))) return Errno::kEFAULT;
      if (pointer == 0) return {};
      if (m_count[0] + m_count[1] >= kMaxEntries) return Errno::kE2BIG;
      const usize length = TRY(user_string_length(pointer));
      Entry* e = TRY(slot(m_count[0] + m_count[1]));
      e->pointer = pointer;
      e->length = length;
      ++n;
    }
  }

  usize count(bool env) const override { return m_count[env ? 1 : 0]; }
  usize length(bool env, usize i) const override { return entry(env, i)->length; }
  Result<void> copy(bool env, usize i, usize offset, void* out, usize n) override {
    if (!hal::copy_from_user(out, entry(env, i)->pointer + offset, n)) return Errno::kEFAULT;
    return {};
  }

 private:
  struct Entry {
    u64 pointer;
    u64 length;
  };
  static constexpr usize kChunkBytes = 4096;
  static constexpr usize kPerChunk = kChunkBytes / sizeof(Entry);
  static constexpr usize kMaxEntries = 4096;
  static constexpr usize kMaxString = 32 * 4096;  // MAX_ARG_STRLEN

  // argv entries come first; envp entries follow, so entry(env, i) offsets by argc.
  const Entry* entry(bool env, usize i) const {
    const usize index = (env ? m_count[0] : 0) + i;
    return &m_chunks[index / kPerChunk][index % kPerChunk];
  }
  Result<Entry*> slot(usize index) {
    Entry*& chunk = m_chunks[index / kPerChunk];
    if (chunk == nullptr) {
      chunk = static_cast<Entry*>(m_heap.allocate(kChunkBytes));
      if (chunk == nullptr) return Errno::kENOMEM;
    }
    return &chunk[index % kPerChunk];
  }
  static Result<usize> user_string_length(u64 address) {
    usize length = 0;
    char buffer[64];
    for (;;) {
      // Never read across a page boundary in one copy: the string may end before an unmapped page.
      const u64 here = address + length;
      const usize chunk = min<u64>(sizeof(buffer), hal::kPageSize - (here % hal::kPageSize));
      if (!hal::copy_from_user(buffer, here, chunk)) return Errno::kEFAULT;
      for (usize i = 0; i < chunk; ++i) {
        if (buffer[i] == 0) return length + i;
      }
      length += chunk;
      if (length > kMaxString) return Errno::kE2BIG;
    }
  }

  Heap& m_heap;
  u64 m_arrays[2];
  Entry* m_chunks[kMaxEntries / kPerChunk] = {};
  usize m_count[2] = {0, 0};
};

// A heap page for headers, freed on every path.
class HeaderBuffer {
 public:
  explicit HeaderBuffer(Heap& heap) : m_heap(heap), m_data(static_cast<u8*>(heap.allocate(kHeaderBytes))) {}
  ~HeaderBuffer() {
    if (m_data != nullptr) m_heap.free(m_data, kHeaderBytes);
  }
  TANDEM_NONCOPYABLE(HeaderBuffer);
  u8* data() { return m_data; }

 private:
  Heap& m_heap;
  u8* m_data;
};

// Checks that `vnode` may be executed, as execve's open does: a regular file with an execute
// bit. EACCES otherwise.
Result<void> check_executable(Vnode* vnode) {
  if (vnode->is_directory() || !vnode->is_regular()) return Errno::kEACCES;
  if ((vnode->mode() & 0111) == 0) return Errno::kEACCES;
  return {};
}

// Reads the file's first bytes (up to kHeaderBytes) into `headers`; returns how many.
Result<usize> read_head(Vnode* vnode, HeaderBuffer& headers) {
  const usize available = static_cast<usize>(min<u64>(vnode->size(), kHeaderBytes));
  VnodeReader reader(vnode);
  TRY(reader.read(0, headers.data(), available));
  return available;
}

// Parses the ELF headers among the file's first `available` bytes.
Result<ElfInfo> parse_elf(Vnode* vnode, HeaderBuffer& headers, usize available, const ElfParseOptions& base_options) {
  if (available < 4) return Errno::kENOEXEC;
  ElfParseOptions options = base_options;
  options.file_size = vnode->size();
  return elf_parse_with(headers.data(), available, options);
}

// Checks that `vnode` may be executed and parses its headers.
Result<ElfInfo> read_elf(Vnode* vnode, HeaderBuffer& headers, const ElfParseOptions& base_options) {
  TRY(check_executable(vnode));
  const usize available = TRY(read_head(vnode, headers));
  return parse_elf(vnode, headers, available, base_options);
}

// Finds the file execve runs, or the interpreter a script names, as execve's open does: the
// path walked (its canonical form to `canonical`), then the execute check. The result is
// retained.
Result<Vnode*> open_exec(Vfs* vfs, i32 dirfd, const char* path, bool follow, char* canonical) {
  // An empty interpreter name (a file holding only "#!") walks to the working directory on
  // Linux, and a directory cannot be executed.
  if (path[0] == 0) return Errno::kEACCES;
  AtStart start = TRY(at_start(dirfd, path));
  Vnode* vnode = TRY(vfs->resolve(start.start(), path, follow, canonical));
  if (auto checked = check_executable(vnode); checked.is_error()) {
    vnode->release();
    return checked.error();
  }
  return vnode;
}

// The file execve is working on, which a script replaces by its interpreter.
class HeldVnode {
 public:
  HeldVnode() = default;
  ~HeldVnode() { reset(nullptr); }
  TANDEM_NONCOPYABLE(HeldVnode);
  // Takes over a retained vnode, releasing the one held before.
  void reset(Vnode* vnode) {
    if (m_vnode != nullptr) m_vnode->release();
    m_vnode = vnode;
  }
  Vnode* get() const { return m_vnode; }

 private:
  Vnode* m_vnode = nullptr;
};

// The `#!` lines of the scripts on the way to the program, one kScriptLineBytes slot per level
// (the strings ScriptArgs puts in argv point into them), in one heap page.
class ScriptLines {
 public:
  explicit ScriptLines(Heap& heap) : m_heap(heap) {}
  ~ScriptLines() {
    if (m_data != nullptr) m_heap.free(m_data, kBytes);
  }
  TANDEM_NONCOPYABLE(ScriptLines);
  Result<char*> slot(u32 depth) {
    VERIFY(depth <= kMaxScriptDepth);
    if (m_data == nullptr) {
      m_data = static_cast<char*>(m_heap.allocate(kBytes));
      if (m_data == nullptr) return Errno::kENOMEM;
    }
    return m_data + depth * kScriptLineBytes;
  }

 private:
  static constexpr usize kBytes = (kMaxScriptDepth + 1) * kScriptLineBytes;
  static_assert(kBytes <= Heap::kMaxObject);
  Heap& m_heap;
  char* m_data = nullptr;
};

// The name execve records for the program (AT_EXECFN, and argv for a script): the path as given,
// or for a relative path from a directory descriptor, "/dev/fd/N/path" as Linux writes it.
// Returns `path` itself when that is the name, else writes it to `buffer` (kPathMax bytes).
Result<const char*> exec_filename(i32 dirfd, const char* path, char* buffer) {
  if (path[0] == '/' || dirfd == kAtFdCwd) return path;
  if (format(buffer, kPathMax, "/dev/fd/%u/%s", static_cast<u32>(dirfd), path) + 1 > kPathMax)
    return Errno::kENAMETOOLONG;
  return buffer;
}

// Ends every other thread of the process and waits until they are gone, as Linux's de_thread.
void end_other_threads(Kernel& kernel, Process* process) {
  Thread* self = Kernel::current_thread();
  for (;;) {
    {
      SpinLockGuard guard(process->lock);
      if (process->live_threads == 1) return;
      process->threads.for_each([&](Thread* t) {
        if (t == self) return;
        t->kill_pending.store(true);
        if (!kernel.wake(t, kWakeKill) && t->on_cpu.load() && t->cpu != Kernel::this_cpu().id)
          send_reschedule_ipi(t->cpu);
      });
    }
    kernel.yield();
  }
}

}  // namespace

void set_comm_from_path(Thread* thread, const char* path) {
  const char* base = path;
  for (const char* c = path; *c != 0; ++c) {
    if (*c == '/') base = c + 1;
  }
  const usize n = min<usize>(string_length(base), sizeof(thread->comm) - 1);
  copy_bytes(thread->comm, base, n);
  fill_bytes(thread->comm + n, 0, sizeof(thread->comm) - n);
}

Result<AddressSpace*> exec_build(Kernel& kernel, i32 dirfd, const char* path, bool follow, ExecArgs& args,
                                 ExecImage* image, char* canonical) {
  Vfs* vfs = TRY(kernel_vfs(kernel));

  // Decode: the file, then the arguments (a bad path is reported before a bad argv, and a bad
  // argv before anything wrong inside the file, as on Linux).
  HeldVnode program;
  program.reset(TRY(open_exec(vfs, dirfd, path, follow, canonical)));
  PathBuffer filename_buffer(kernel);
  if (!filename_buffer.ok()) return Errno::kENOMEM;
  const char* filename = TRY(exec_filename(dirfd, path, filename_buffer.data()));
  TRY(args.prepare());

  // Scripts: each names the next file, until one is the ELF program. A script reached through a
  // directory descriptor that this exec closes could not be read by its interpreter, so Linux
  // refuses it up front (ENOENT).
  HeaderBuffer headers(kernel.heap());
  if (headers.data() == nullptr) return Errno::kENOMEM;
  ScriptLines lines(kernel.heap());
  ScriptArgs script_args(args, filename);
  bool path_inaccessible = false;
  if (filename != path) {
    FileTable* files = TRY(current_files());
    path_inaccessible = TRY(files->cloexec(dirfd));
  }
  usize available = 0;
  for (u32 depth = 0;; ++depth) {
    if (depth > kMaxScriptDepth) return Errno::kELOOP;
    available = TRY(read_head(program.get(), headers));
    if (!script_is_script(headers.data(), available)) break;
    char* slot = TRY(lines.slot(depth));
    const ScriptLine line = TRY(script_parse(headers.data(), available, slot));
    if (path_inaccessible) return Errno::kENOENT;
    script_args.add_level(line);
    program.reset(TRY(open_exec(vfs, kAtFdCwd, line.interpreter, true, canonical)));
  }

  // The program, its interpreter.
  ElfParseOptions options;
  options.allow_interp = true;
  const ElfInfo info = TRY(parse_elf(program.get(), headers, available, options));

  Vnode* interp_vnode = nullptr;
  ElfInfo interp_info;
  if (info.interp_size != 0) {
    PathBuffer interp_path(kernel);
    if (!interp_path.ok()) return Errno::kENOMEM;
    VnodeReader reader(program.get());
    TRY(reader.read(info.interp_offset, interp_path.data(), info.interp_size));
    interp_path.data()[info.interp_size - 1] = 0;
    AtStart start = TRY(at_start(kAtFdCwd, interp_path.data()));
    interp_vnode = TRY(vfs->resolve(start.start(), interp_path.data(), true));
  }
  VnodeRef interp(interp_vnode);
  if (interp_vnode != nullptr) {
    ElfParseOptions interp_options;
    interp_options.dyn_bias = kInterpBase;
    interp_info = TRY(read_elf(interp_vnode, headers, interp_options));
  }

  // Build the new address space.
  AddressSpace* space = TRY(AddressSpace::create(kernel));
  auto built = [&]() -> Result<ExecImage> {
    VnodeReader reader(program.get());
    TRY(elf_map_segments(*space, info, reader));
    if (interp_vnode != nullptr) {
      VnodeReader interp_reader(interp_vnode);
      TRY(elf_map_segments(*space, interp_info, interp_reader));
    }
    return elf_build_stack(*space, info, interp_vnode != nullptr ? &interp_info : nullptr, script_args, filename);
  }();
  if (built.is_error()) {
    space->destroy();
    return built.error();
  }
  *image = built.value();
  return space;
}

Result<void> exec_program(Kernel& kernel, hal::UserFrame& frame, i32 dirfd, const char* path, u64 argv, u64 envp,
                          bool follow) {
  Thread* self = Kernel::current_thread();
  Process* process = self->process;
  PathBuffer canonical(kernel);
  if (!canonical.ok()) return Errno::kENOMEM;
  UserArgs args(kernel, argv, envp);
  // Everything that can fail, while the old address space is intact (and still the active one,
  // which the argument strings are copied from).
  ExecImage image;
  AddressSpace* space = TRY(exec_build(kernel, dirfd, path, follow, args, &image, canonical.data()));

  // Invoke: from here on nothing fails.
  end_other_threads(kernel, process);
  AddressSpace* old = process->address_space;
  {
    hal::IrqFlags flags = hal::irq_save();
    SpinLockGuard guard(process->lock);
    process->address_space = space;
    process->brk_start = process->brk_current = process->brk_mapped_end = image.brk_start;
    const usize length = min<usize>(string_length(canonical.data()), sizeof(process->exe_path) - 1);
    copy_bytes(process->exe_path, canonical.data(), length);
    process->exe_path[length] = 0;
    Kernel::this_cpu().active_table.store(space->page_table(), MemoryOrder::Release);
    hal::pt_activate(space->page_table());
    guard.unlock();
    hal::irq_restore(flags);
  }
  if (old != nullptr) old->destroy();
  reset_signals_for_exec(process, self);
  if (process->files != nullptr) process->files->close_on_exec();
  set_comm_from_path(self, path);
  self->clear_child_tid = 0;
  self->robust_list_head = 0;
  self->signals.syscall_nr = -1;
  release_vfork_parent(kernel, process);

  hal::UserFrame fresh{};
  fresh.rip = image.frame.rip;
  fresh.rsp = image.frame.rsp;
  fresh.rflags = image.frame.rflags;
  fresh.fs_base = 0;
  frame = fresh;
  hal::set_fs_base(0);
  return {};
}

}  // namespace tandem
