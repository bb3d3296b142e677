// ELF executables: validation (a pure function over the file's bytes) and loading into a fresh
// address space with Linux's initial stack, for PID 1 and later execve.
//
// Supported: static x86-64 executables, non-PIE (ET_EXEC, e.g. busybox-static at 0x400000)
// and static PIE (ET_DYN without PT_INTERP, loaded at kPieBase). Anything else, and any
// inconsistency in the headers, is ENOEXEC.
#pragma once

#include <hal.h>

#include "core/lib/result.h"
#include "core/lib/types.h"

namespace tandem {

class Kernel;
class AddressSpace;

inline constexpr u64 kPieBase = 0x0000'5555'5555'4000ull;  // where Linux puts a PIE without ASLR
inline constexpr u64 kStackTop = 0x0000'7fff'ffff'f000ull;
inline constexpr u64 kStackSize = 8ull << 20;                 // reserved, filled on demand
inline constexpr u64 kMmapTop = 0x0000'7f00'0000'0000ull;    // mmap picks addresses below this
inline constexpr u32 kMaxLoadSegments = 16;

struct ElfSegment {
  u64 vaddr;   // with the load bias
  u64 memsz;
  u64 offset;  // in the file
  u64 filesz;
  u32 prot;    // hal::PageFlags
};

struct ElfInfo {
  bool pie = false;
  u64 bias = 0;        // added to every p_vaddr
  u64 entry = 0;       // with the bias
  u64 phdr = 0;        // user address of the program headers (AT_PHDR), with the bias
  u16 phnum = 0;
  u16 phent = 0;
  u64 image_end = 0;   // end of the highest PT_LOAD, page-aligned: where brk starts
  ElfSegment segments[kMaxLoadSegments];
  u32 segment_count = 0;
  // PT_INTERP (only when the parse allowed it): where the interpreter's path is in the file.
  u64 interp_offset = 0;
  u64 interp_size = 0;
};

// How elf_parse_with reads a file of which only the first bytes (the headers) are in memory.
struct ElfParseOptions {
  u64 file_size = 0;       // the whole file's size, for the segment checks
  bool allow_interp = false;
  u64 dyn_bias = kPieBase;  // where an ET_DYN file goes
};

// Validates the ELF file header and program headers. ENOEXEC for anything malformed or
// unsupported (dynamic executables with PT_INTERP included, for now).
Result<ElfInfo> elf_parse(const u8* data, usize size);
// The same over the file's first `available` bytes, which must hold the file and program
// headers (ENOEXEC otherwise); PT_INTERP is accepted when the options say so.
Result<ElfInfo> elf_parse_with(const u8* headers, usize available, const ElfParseOptions& options);

// What the loader hands to spawn_user: the first user frame and the program break.
struct ExecImage {
  hal::UserFrame frame{};
  u64 brk_start = 0;
};

// Where the loader gets file bytes from: memory (the initramfs) or a file (execve).
class ElfReader {
 public:
  virtual Result<void> read(u64 offset, void* out, usize length) = 0;

 protected:
  ~ElfReader() = default;
};

// The strings for the new stack: argv then envp, each read in pieces (from kernel memory, or
// from the old address space's user memory while it is still active).
class ExecArgs {
 public:
  virtual usize count(bool env) const = 0;
  // The length of string i, without its NUL.
  virtual usize length(bool env, usize i) const = 0;
  virtual Result<void> copy(bool env, usize i, usize offset, void* out, usize n) = 0;
  // Reads what count() and length() answer from. execve calls it once the program has been
  // found, so a bad path is reported before a bad argv, as on Linux.
  virtual Result<void> prepare() { return {}; }

 protected:
  ~ExecArgs() = default;
};

// Arguments held by the kernel (PID 1's): NUL-terminated arrays of C strings.
class KernelArgs final : public ExecArgs {
 public:
  KernelArgs(const char* const* argv, const char* const* envp) : m_lists{argv, envp} {}
  usize count(bool env) const override;
  usize length(bool env, usize i) const override;
  Result<void> copy(bool env, usize i, usize offset, void* out, usize n) override;

 private:
  const char* const* m_lists[2];
};

// Maps the PT_LOAD segments of `info` into `space`, reading the file through `reader`.
Result<void> elf_map_segments(AddressSpace& space, const ElfInfo& info, ElfReader& reader);
// Maps the stack and builds Linux's initial stack for the program `info` (and its interpreter
// `interp`, null for a static program); the frame enters the interpreter when there is one.
Result<ExecImage> elf_build_stack(AddressSpace& space, const ElfInfo& info, const ElfInfo* interp,
                                         ExecArgs& args, const char* execfn);

// Maps the segments of `info` (from `data`) into `space`, builds the initial stack with
// argv, envp and the auxiliary vector, and returns the first frame. `space` must be fresh.
Result<ExecImage> elf_load(AddressSpace& space, const ElfInfo& info, const u8* data, usize size,
                           const char* const* argv, const char* const* envp, const char* execfn);

}  // namespace tandem
