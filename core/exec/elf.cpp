#include "core/exec/elf.h"

#include "core/mm/address_space.h"

namespace tandem {

namespace {

// The ELF64 structures, as in <elf.h>.
struct Elf64Ehdr {
  u8 e_ident[16];
  u16 e_type;
  u16 e_machine;
  u32 e_version;
  u64 e_entry;
  u64 e_phoff;
  u64 e_shoff;
  u32 e_flags;
  u16 e_ehsize;
  u16 e_phentsize;
  u16 e_phnum;
  u16 e_shentsize;
  u16 e_shnum;
  u16 e_shstrndx;
};
static_assert(sizeof(Elf64Ehdr) == 64);

struct Elf64Phdr {
  u32 p_type;
  u32 p_flags;
  u64 p_offset;
  u64 p_vaddr;
  u64 p_paddr;
  u64 p_filesz;
  u64 p_memsz;
  u64 p_align;
};
static_assert(sizeof(Elf64Phdr) == 56);

constexpr u16 kEtExec = 2, kEtDyn = 3, kEmX8664 = 62;
constexpr u32 kPtLoad = 1, kPtInterp = 3, kPtPhdr = 6;
constexpr u32 kPfX = 1, kPfW = 2, kPfR = 4;
constexpr u64 kPage = hal::kPageSize;

// Auxiliary vector types.
constexpr u64 kAtNull = 0, kAtPhdr = 3, kAtPhent = 4, kAtPhnum = 5, kAtPagesz = 6, kAtBase = 7,
              kAtFlags = 8, kAtEntry = 9, kAtUid = 11, kAtEuid = 12, kAtGid = 13, kAtEgid = 14,
              kAtPlatform = 15, kAtHwcap = 16, kAtClktck = 17, kAtSecure = 23, kAtRandom = 25,
              kAtHwcap2 = 26, kAtExecfn = 31;

bool add_overflows(u64 a, u64 b) { return a + b < a; }

}  // namespace

Result<ElfInfo> elf_parse(const u8* data, usize size) {
  ElfParseOptions options;
  options.file_size = size;
  return elf_parse_with(data, size, options);
}

Result<ElfInfo> elf_parse_with(const u8* data, usize available, const ElfParseOptions& options) {
  const usize size = options.file_size;
  if (data == nullptr || available < sizeof(Elf64Ehdr) || available > size) return Errno::kENOEXEC;
  Elf64Ehdr eh;
  copy_bytes(&eh, data, sizeof(eh));
  if (compare_bytes(eh.e_ident, "\x7f" "ELF", 4) != 0) return Errno::kENOEXEC;
  if (eh.e_ident[4] != 2 /* ELFCLASS64 */ || eh.e_ident[5] != 1 /* little-endian */ ||
      eh.e_ident[6] != 1 /* EV_CURRENT */)
    return Errno::kENOEXEC;
  if (eh.e_type != kEtExec && eh.e_type != kEtDyn) return Errno::kENOEXEC;
  if (eh.e_machine != kEmX8664 || eh.e_version != 1) return Errno::kENOEXEC;
  if (eh.e_ehsize < sizeof(Elf64Ehdr) || eh.e_phentsize != sizeof(Elf64Phdr)) return Errno::kENOEXEC;
  if (eh.e_phnum == 0 || eh.e_phnum > 128) return Errno::kENOEXEC;
  const u64 ph_bytes = static_cast<u64>(eh.e_phnum) * sizeof(Elf64Phdr);
  if (add_overflows(eh.e_phoff, ph_bytes) || eh.e_phoff + ph_bytes > available) return Errno::kENOEXEC;
  if (eh.e_phoff % 8 != 0) return Errno::kENOEXEC;

  ElfInfo info;
  info.pie = eh.e_type == kEtDyn;
  info.bias = info.pie ? options.dyn_bias : 0;
  info.phnum = eh.e_phnum;
  info.phent = eh.e_phentsize;
  u64 previous_end = 0;
  u64 phdr_vaddr = 0;
  bool have_phdr = false;
  for (u16 i = 0; i < eh.e_phnum; ++i) {
    Elf64Phdr ph;
    copy_bytes(&ph, data + eh.e_phoff + static_cast<u64>(i) * sizeof(Elf64Phdr), sizeof(ph));
    if (ph.p_type == kPtInterp) {
      if (!options.allow_interp || info.interp_size != 0) return Errno::kENOEXEC;
      if (ph.p_filesz < 2 || ph.p_filesz > 4096) return Errno::kENOEXEC;
      if (add_overflows(ph.p_offset, ph.p_filesz) || ph.p_offset + ph.p_filesz > size) return Errno::kENOEXEC;
      info.interp_offset = ph.p_offset;
      info.interp_size = ph.p_filesz;
      continue;
    }
    if (ph.p_type == kPtPhdr) {
      phdr_vaddr = ph.p_vaddr;
      have_phdr = true;
    }
    if (ph.p_type != kPtLoad) continue;
    if (ph.p_memsz == 0) continue;
    if (info.segment_count == kMaxLoadSegments) return Errno::kENOEXEC;
    if (ph.p_filesz > ph.p_memsz) return Errno::kENOEXEC;
    if (add_overflows(ph.p_offset, ph.p_filesz) || ph.p_offset + ph.p_filesz > size) return Errno::kENOEXEC;
    if (ph.p_align > 1 && (ph.p_align & (ph.p_align - 1)) != 0) return Errno::kENOEXEC;
    if (ph.p_align > 1 && (ph.p_vaddr % ph.p_align) != (ph.p_offset % ph.p_align)) return Errno::kENOEXEC;
    if ((ph.p_vaddr % kPage) != (ph.p_offset % kPage)) return Errno::kENOEXEC;
    if (add_overflows(ph.p_vaddr, ph.p_memsz) || add_overflows(ph.p_vaddr + ph.p_memsz, info.bias))
      return Errno::kENOEXEC;
    const u64 start = ph.p_vaddr + info.bias;
    const u64 end = start + ph.p_memsz;
    if (start < 0x10000 || end > kMmapTop) return Errno::kENOEXEC;  // keep page 0 and the mmap area free
    // Segments must come in ascending order without overlapping bytes (they may share a page).
    if (start < previous_end) return Errno::kENOEXEC;
    previous_end = end;
    ElfSegment& s = info.segments[info.segment_count++];
    s.vaddr = start;
    s.memsz = ph.p_memsz;
    s.offset = ph.p_offset;
    s.filesz = ph.p_filesz;
    s.prot = ((ph.p_flags & kPfR) ? hal::kPageRead : 0) | ((ph.p_flags & kPfW) ? hal::kPageWrite : 0) |
             ((ph.p_flags & kPfX) ? hal::kPageExec : 0);
  }
  if (info.segment_count == 0) return Errno::kENOEXEC;
  info.image_end = align_up(previous_end, kPage);
  if (add_overflows(eh.e_entry, info.bias)) return Errno::kENOEXEC;
  info.entry = eh.e_entry + info.bias;
  // The entry point must lie in an executable segment.
  bool entry_ok = false;
  for (u32 i = 0; i < info.segment_count; ++i) {
    const ElfSegment& s = info.segments[i];
    if (info.entry >= s.vaddr && info.entry < s.vaddr + s.memsz && (s.prot & hal::kPageExec)) entry_ok = true;
  }
  if (!entry_ok) return Errno::kENOEXEC;
  if (have_phdr) {
    info.phdr = phdr_vaddr + info.bias;
  } else {
    // No PT_PHDR: the headers are wherever the segment that holds their file offset maps them.
    for (u32 i = 0; i < info.segment_count; ++i) {
      const ElfSegment& s = info.segments[i];
      const u64 page_offset = align_down(s.offset, kPage);
      if (eh.e_phoff >= page_offset && eh.e_phoff + ph_bytes <= s.offset + s.filesz)
        info.phdr = s.vaddr - (s.offset - eh.e_phoff);
    }
  }
  return info;
}

namespace {

// Writes the initial stack downwards from `top`; the words go in once their layout is known.
class StackBuilder {
 public:
  StackBuilder(AddressSpace& space, u64 top) : m_space(space), m_sp(top) {}

  Result<u64> push_bytes(const void* bytes, usize length) {
    if (m_sp - length < kStackTop - kStackSize + kPage) return Errno::kE2BIG;
    m_sp -= length;
    if (bytes != nullptr) TRY(m_space.write(m_sp, bytes, length));  // null: reserve only
    return m_sp;
  }
  Result<u64> push_string(const char* s) { return push_bytes(s, string_length(s) + 1); }
  u64 sp() const { return m_sp; }
  void set_sp(u64 sp) { m_sp = sp; }
  AddressSpace& space() { return m_space; }

 private:
  AddressSpace& m_space;
  u64 m_sp;
};

usize count(const char* const* list) {
  usize n = 0;
  while (list != nullptr && list[n] != nullptr) ++n;
  return n;
}

class MemoryReader final : public ElfReader {
 public:
  MemoryReader(const u8* data, usize size) : m_data(data), m_size(size) {}
  Result<void> read(u64 offset, void* out, usize length) override {
    if (offset > m_size || length > m_size - offset) return Errno::kENOEXEC;
    copy_bytes(out, m_data + offset, length);
    return {};
  }

 private:
  const u8* m_data;
  usize m_size;
};

// Copies `length` file bytes at `file_offset` to `address` in the space, a page at a time.
Result<void> copy_file_bytes(AddressSpace& space, ElfReader& reader, u64 file_offset, u64 address, u64 length) {
  u8 buffer[512];
  while (length > 0) {
    const usize chunk = min<u64>(length, sizeof(buffer));
    TRY(reader.read(file_offset, buffer, chunk));
    TRY(space.write(address, buffer, chunk));
    file_offset += chunk;
    address += chunk;
    length -= chunk;
  }
  return {};
}

}  // namespace

Result<void> elf_map_segments(AddressSpace& space, const ElfInfo& info, ElfReader& reader) {
  // Segments: each gets its own pages, except a first page shared with the previous segment,
  // which takes the union of both protections.
  u64 mapped_end = 0;
  for (u32 i = 0; i < info.segment_count; ++i) {
    const ElfSegment& s = info.segments[i];
    u64 page_start = align_down(s.vaddr, kPage);
    const u64 page_end = align_up(s.vaddr + s.memsz, kPage);
    if (page_start < mapped_end) {
      TRY(space.protect(page_start, kPage, space.protection_at(page_start) | s.prot));
      page_start = mapped_end;
    }
    if (page_start < page_end) TRY(space.map_anonymous(page_start, page_end - page_start, s.prot, kMapPrivate));
    // As a file mapping would, the first page also holds the file bytes before p_vaddr (the
    // ELF and program headers for the first segment), unless another segment owns it.
    u64 copy_from = s.vaddr;
    u64 file_from = s.offset;
    if (align_down(s.vaddr, kPage) >= mapped_end) {
      const u64 lead = s.vaddr % kPage;
      copy_from -= lead;
      file_from -= lead;
    }
    const u64 copy_length = s.offset + s.filesz - file_from;
    if (copy_length > 0) TRY(copy_file_bytes(space, reader, file_from, copy_from, copy_length));
    mapped_end = page_end;
  }
  return {};
}

Result<ExecImage> elf_build_stack(AddressSpace& space, const ElfInfo& info, const ElfInfo* interp, ExecArgs& args,
                                  const char* execfn) {
  // The stack: reserved up to kStackSize, pages filled in on demand.
  TRY(space.map_anonymous(kStackTop - kStackSize, kStackSize, hal::kPageRead | hal::kPageWrite, kMapPrivate));
  StackBuilder stack(space, kStackTop);
  const usize argc = args.count(false);
  const usize envc = args.count(true);
  // Linux's limits (fs/exec.c): a string may be 32 pages, all of them a quarter of the 8 MiB
  // stack limit.
  constexpr usize kMaxStrings = 4096;
  constexpr usize kMaxString = 32 * kPage;
  constexpr usize kMaxTotal = kStackSize / 4;
  if (argc + envc > kMaxStrings) return Errno::kE2BIG;
  const u64 execfn_address = TRY(stack.push_string(execfn));
  // The strings go in as one block, argv first; string i starts at block + its prefix sum.
  usize total = 0;
  for (int list = 0; list < 2; ++list) {
    const usize n = list == 0 ? argc : envc;
    for (usize i = 0; i < n; ++i) {
      const usize length = args.length(list == 1, i);
      if (length + 1 > kMaxString) return Errno::kE2BIG;
      total += length + 1;
      if (total > kMaxTotal) return Errno::kE2BIG;
    }
  }
  const u64 block = TRY(stack.push_bytes(nullptr, total));
  {
    u64 cursor = block;
    u8 buffer[256];
    for (int list = 0; list < 2; ++list) {
      const usize n = list == 0 ? argc : envc;
      for (usize i = 0; i < n; ++i) {
        const usize length = args.length(list == 1, i);
        for (usize done = 0; done < length;) {
          const usize chunk = min<usize>(length - done, sizeof(buffer));
          TRY(args.copy(list == 1, i, done, buffer, chunk));
          TRY(space.write(cursor + done, buffer, chunk));
          done += chunk;
        }
        const u8 zero = 0;
        TRY(space.write(cursor + length, &zero, 1));
        cursor += length + 1;
      }
    }
  }
  static const char kPlatform[] = "x86_64";
  const u64 platform_address = TRY(stack.push_string(kPlatform));
  u8 random[16];
  hal::random_bytes(random, sizeof(random));
  stack.set_sp(align_down(stack.sp(), 16));
  const u64 random_address = TRY(stack.push_bytes(random, sizeof(random)));

  const u64 auxv[][2] = {
      {kAtPhdr, info.phdr},     {kAtPhent, info.phent},     {kAtPhnum, info.phnum},
      {kAtPagesz, kPage},       {kAtBase, interp != nullptr ? interp->bias : 0},  {kAtFlags, 0},
      {kAtEntry, info.entry},   {kAtUid, 0},                {kAtEuid, 0},
      {kAtGid, 0},              {kAtEgid, 0},               {kAtPlatform, platform_address},
      {kAtHwcap, 0x178bfbff},   {kAtClktck, 100},           {kAtSecure, 0},
      {kAtRandom, random_address}, {kAtHwcap2, 0},          {kAtExecfn, execfn_address},
      {kAtNull, 0},
  };
  constexpr usize kAuxWords = sizeof(auxv) / sizeof(u64);
  const usize words = 1 + (argc + 1) + (envc + 1) + kAuxWords;
  // rsp must be 16-byte aligned at the entry point, pointing at argc.
  u64 sp = align_down(stack.sp() - words * 8, 16);
  if (sp < kStackTop - kStackSize + kPage) return Errno::kE2BIG;
  u64 cursor = sp;
  auto put = [&](u64 value) -> Result<void> {
    TRY(space.write(cursor, &value, sizeof(value)));
    cursor += 8;
    return {};
  };
  TRY(put(argc));
  u64 string = block;
  for (int list = 0; list < 2; ++list) {
    const usize n = list == 0 ? argc : envc;
    for (usize i = 0; i < n; ++i) {
      TRY(put(string));
      string += args.length(list == 1, i) + 1;
    }
    TRY(put(0));
  }
  TRY(space.write(cursor, auxv, sizeof(auxv)));

  ExecImage image;
  image.frame.rip = interp != nullptr ? interp->entry : info.entry;
  image.frame.rsp = sp;
  image.frame.rflags = 0x202;
  image.brk_start = info.image_end;
  return image;
}

usize KernelArgs::count(bool env) const { return tandem::count(m_lists[env ? 1 : 0]); }
usize KernelArgs::length(bool env, usize i) const { return string_length(m_lists[env ? 1 : 0][i]); }
Result<void> KernelArgs::copy(bool env, usize i, usize offset, void* out, usize n) {
  copy_bytes(out, m_lists[env ? 1 : 0][i] + offset, n);
  return {};
}

Result<ExecImage> elf_load(AddressSpace& space, const ElfInfo& info, const u8* data, usize size,
                           const char* const* argv, const char* const* envp, const char* execfn) {
  MemoryReader reader(data, size);
  TRY(elf_map_segments(space, info, reader));
  KernelArgs args(argv, envp);
  return elf_build_stack(space, info, nullptr, args, execfn);
}

}  // namespace tandem
