// fork, vfork and clone without CLONE_THREAD: a new process whose memory is a copy-on-write
// copy of the caller's, whose open files are a copy of the caller's table, and whose first
// thread returns 0 from the system call with the caller's registers.
//
// In the simulator a C++ fiber cannot be duplicated: the child starts at the entry point the
// calling sim program named as the system call's instruction pointer (User::syscall_at), with
// rax 0 and the copied memory, as a child on hardware continues after the SYSCALL instruction.
#include "core/fs/file_table.h"
#include "core/kernel.h"
#include "core/proc/process.h"

namespace tandem {

namespace {

constexpr u64 kCloneVm = 0x100, kCloneFs = 0x200, kCloneFiles = 0x400,
              kCloneVfork = 0x4000, kCloneParent = 0x8000, kCloneSettls = 0x80000,
              kCloneParentSettid = 0x100000, kCloneChildCleartid = 0x200000, kCloneDetached = 0x400000,
              kCloneUntraced = 0x800000, kCloneChildSettid = 0x1000000;
constexpr u64 kForkSupported = kCloneVm | kCloneFs | kCloneFiles | kCloneVfork | kCloneParent | kCloneSettls |
                               kCloneParentSettid | kCloneChildCleartid | kCloneDetached | kCloneUntraced |
                               kCloneChildSettid | 0xff;

// The child's first moments in the kernel, on its own kernel stack with its own address space
// active: CLONE_CHILD_SETTID writes into the child's memory, as Linux does in schedule_tail.
void fork_child_entry(void* arg) {
  auto* thread = static_cast<Thread*>(arg);
  if (thread->signals.set_child_tid != 0) {
    const u32 tid = thread->tid;
    (void)hal::copy_to_user(thread->signals.set_child_tid, &tid, sizeof(tid));
    thread->signals.set_child_tid = 0;
  }
  hal::enter_user(thread->start_frame);
}

}  // namespace

Result<i64> fork_process(Kernel& kernel, const hal::UserFrame& frame, const ForkRequest& request) {
  const u64 flags = request.flags;
  // Decode. CLONE_VM without CLONE_VFORK would need two processes in one address space, and
  // CLONE_FILES a shared table; neither is supported. vfork's CLONE_VM is served by a
  // copy-on-write copy: the parent sleeps until the child execs or exits, so a program cannot
  // tell the difference unless the child writes memory the parent reads afterwards.
  if ((flags & ~kForkSupported) != 0) return Errno::kENOSYS;
  if ((flags & kCloneVm) && !(flags & kCloneVfork)) return Errno::kENOSYS;
  if (flags & (kCloneFiles | kCloneParent)) return Errno::kENOSYS;
  Thread* self = Kernel::current_thread();
  Process* parent = self->process;
  if (self->kill_pending.load()) return Errno::kEINTR;
  const u32 exit_signal = static_cast<u32>(flags & 0xff);
  if (exit_signal > kSignalCount) return Errno::kEINVAL;

  AddressSpace* space = TRY(parent->address_space->clone());
  FileTable* files = nullptr;
  if (parent->files != nullptr) {
    auto cloned = parent->files->clone();
    if (cloned.is_error()) {
      space->destroy();
      return cloned.error();
    }
    files = cloned.value();
  }
  auto process_or_error = kernel.create_process();
  if (process_or_error.is_error()) {
    space->destroy();
    if (files != nullptr) files->release();
    return process_or_error.error();
  }
  Process* child = process_or_error.value();
  child->address_space = space;
  child->files = files;
  auto thread_or_error = kernel.create_thread(child, &fork_child_entry, nullptr);
  if (thread_or_error.is_error()) {
    child->address_space = nullptr;
    child->files = nullptr;
    space->destroy();
    if (files != nullptr) files->release();
    kernel.free_process(child);
    return thread_or_error.error();
  }
  Thread* thread = thread_or_error.value();
  thread->entry_arg = thread;

  // Invoke: nothing below fails.
  hal::UserFrame start = frame;
  start.rax = 0;
  if (request.child_stack != 0) start.rsp = request.child_stack;
  start.fs_base = (flags & kCloneSettls) ? request.tls : hal::get_fs_base();
  thread->start_frame = start;
  thread->signal_mask = self->signal_mask;
  thread->signals.altstack_sp = self->signals.altstack_sp;
  thread->signals.altstack_size = self->signals.altstack_size;
  thread->signals.altstack_flags = self->signals.altstack_flags;
  if (flags & kCloneChildSettid) thread->signals.set_child_tid = request.child_tid.address();
  if (flags & kCloneChildCleartid) thread->clear_child_tid = request.child_tid.address();
  {
    SpinLockGuard guard(parent->lock);
    child->brk_start = parent->brk_start;
    child->brk_current = parent->brk_current;
    child->brk_mapped_end = parent->brk_mapped_end;
    copy_bytes(child->rlimits, parent->rlimits, sizeof(child->rlimits));
    for (u32 i = 0; i < kSignalCount; ++i) child->signal_actions.actions[i] = parent->signal_actions.actions[i];
    copy_bytes(child->exe_path, parent->exe_path, sizeof(child->exe_path));
  }
  child->exit_signal = exit_signal;
  const u32 pid = thread->tid;
  {
    SpinLockGuard guard(kernel.process_tree_lock());
    child->pid = pid;
    child->pgid = process_group(parent);
    child->sid = process_session(parent);
    child->parent = parent;
    parent->children.push_back(child);
    if (flags & kCloneVfork) {
      child->vfork_parent = self;
      self->signals.vfork_done = false;
    }
  }
  if (flags & kCloneParentSettid) (void)copy_to_user(request.parent_tid, pid);
  kernel.make_runnable(thread);

  if (flags & kCloneVfork) {
    // Sleep until the child execs or exits. Not interruptible: the child refers to this thread
    // until it lets go (release_vfork_parent), so the thread must not go away before that.
    for (;;) {
      {
        SpinLockGuard guard(kernel.process_tree_lock());
        if (self->signals.vfork_done) break;
        kernel.prepare_to_sleep();
      }
      kernel.block();
    }
  }
  return static_cast<i64>(pid);
}

}  // namespace tandem
