// execve: replaces the calling process's program with an ELF file from the VFS, with its
// interpreter (PT_INTERP, e.g. glibc's /lib64/ld-linux-x86-64.so.2) when it has one.
//
// Everything that can fail happens first, while the old program is intact: the path is walked,
// the headers are checked, the new address space is built and filled (the argument strings are
// copied straight from the old address space, which is still the active one, into the new).
// Then the point of no return: other threads go, the new space replaces the old one, handled
// signals return to SIG_DFL, close-on-exec descriptors close and a vfork parent wakes.
#include "core/exec/exec.h"

#include "core/exec/elf.h"
#include "core/fs/file_table.h"
#include "core/kernel.h"
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

// Checks that `vnode` may be executed and parses its headers.
Result<ElfInfo> read_elf(Vnode* vnode, HeaderBuffer& headers, const ElfParseOptions& base_options) {
  if (vnode->is_directory() || !vnode->is_regular()) return Errno::kEACCES;
  if ((vnode->mode() & 0111) == 0) return Errno::kEACCES;
  const u64 size = vnode->size();
  const usize available = static_cast<usize>(min<u64>(size, kHeaderBytes));
  if (available < 4) return Errno::kENOEXEC;
  VnodeReader reader(vnode);
  TRY(reader.read(0, headers.data(), available));
  ElfParseOptions options = base_options;
  options.file_size = size;
  return elf_parse_with(headers.data(), available, options);
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
          hal::send_ipi(t->cpu, hal::Ipi::Reschedule);
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

  // Decode: the program, its interpreter.
  Vnode* program_vnode = nullptr;
  {
    AtStart start = TRY(at_start(dirfd, path));
    program_vnode = TRY(vfs->resolve(start.start(), path, follow, canonical));
  }
  VnodeRef program(program_vnode);
  HeaderBuffer headers(kernel.heap());
  if (headers.data() == nullptr) return Errno::kENOMEM;
  ElfParseOptions options;
  options.allow_interp = true;
  const ElfInfo info = TRY(read_elf(program.get(), headers, options));

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
  TRY(args.prepare());

  // Build the new address space.
  AddressSpace* space = TRY(AddressSpace::create(kernel));
  auto built = [&]() -> Result<ExecImage> {
    VnodeReader reader(program.get());
    TRY(elf_map_segments(*space, info, reader));
    if (interp_vnode != nullptr) {
      VnodeReader interp_reader(interp_vnode);
      TRY(elf_map_segments(*space, interp_info, interp_reader));
    }
    return elf_build_stack(*space, info, interp_vnode != nullptr ? &interp_info : nullptr, args, canonical);
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
