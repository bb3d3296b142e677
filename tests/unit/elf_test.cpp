// ELF validation: well-formed static executables parse; every malformed header is ENOEXEC.
#include "core/exec/elf.h"

#include <gtest/gtest.h>

#include <cstring>
#include <vector>

using namespace tandem;

namespace {

struct Ehdr {
  unsigned char ident[16];
  uint16_t type, machine;
  uint32_t version;
  uint64_t entry, phoff, shoff;
  uint32_t flags;
  uint16_t ehsize, phentsize, phnum, shentsize, shnum, shstrndx;
};
struct Phdr {
  uint32_t type, flags;
  uint64_t offset, vaddr, paddr, filesz, memsz, align;
};

// A static non-PIE image: text at 0x400000 (RX, holding the headers), data+bss at 0x402000 (RW).
std::vector<u8> make_elf(uint16_t type = 2) {
  std::vector<u8> file(0x3000, 0);
  Ehdr eh{};
  std::memcpy(eh.ident, "\x7f" "ELF\x02\x01\x01", 7);
  eh.type = type;
  eh.machine = 62;
  eh.version = 1;
  const uint64_t base = type == 2 ? 0x400000 : 0;
  eh.entry = base + 0x1000;
  eh.phoff = 64;
  eh.ehsize = 64;
  eh.phentsize = 56;
  eh.phnum = 2;
  std::memcpy(file.data(), &eh, sizeof(eh));
  Phdr text{1, 5, 0, base, base, 0x1100, 0x1100, 0x1000};
  Phdr data{1, 6, 0x2000, base + 0x2000, base + 0x2000, 0x100, 0x5000, 0x1000};
  std::memcpy(file.data() + 64, &text, sizeof(text));
  std::memcpy(file.data() + 64 + 56, &data, sizeof(data));
  return file;
}

Ehdr* header(std::vector<u8>& f) { return reinterpret_cast<Ehdr*>(f.data()); }
Phdr* phdr(std::vector<u8>& f, int i) { return reinterpret_cast<Phdr*>(f.data() + 64 + 56 * i); }

Errno parse_error(const std::vector<u8>& f) {
  auto r = elf_parse(f.data(), f.size());
  return r.is_error() ? r.error() : static_cast<Errno>(0);
}

}  // namespace

TEST(Elf, ParsesStaticExecutable) {
  auto f = make_elf();
  auto r = elf_parse(f.data(), f.size());
  ASSERT_TRUE(r.ok());
  const ElfInfo& info = r.value();
  EXPECT_FALSE(info.pie);
  EXPECT_EQ(info.entry, 0x401000u);
  EXPECT_EQ(info.phdr, 0x400040u);
  EXPECT_EQ(info.phnum, 2);
  EXPECT_EQ(info.segment_count, 2u);
  EXPECT_EQ(info.segments[0].prot, unsigned(hal::kPageRead | hal::kPageExec));
  EXPECT_EQ(info.segments[1].prot, unsigned(hal::kPageRead | hal::kPageWrite));
  EXPECT_EQ(info.image_end, 0x407000u);
}

TEST(Elf, ParsesStaticPieAtItsBase) {
  auto f = make_elf(3);
  auto r = elf_parse(f.data(), f.size());
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r.value().pie);
  EXPECT_EQ(r.value().entry, kPieBase + 0x1000);
  EXPECT_EQ(r.value().segments[0].vaddr, kPieBase);
}

TEST(Elf, RejectsMalformedHeaders) {
  EXPECT_EQ(parse_error({}), Errno::kENOEXEC);
  auto truncated = make_elf();
  truncated.resize(63);
  EXPECT_EQ(parse_error(truncated), Errno::kENOEXEC);
  struct Case {
    const char* what;
    void (*mutate)(std::vector<u8>&);
  };
  const Case cases[] = {
      {"magic", [](std::vector<u8>& f) { f[1] = 'X'; }},
      {"class 32", [](std::vector<u8>& f) { f[4] = 1; }},
      {"big endian", [](std::vector<u8>& f) { f[5] = 2; }},
      {"relocatable", [](std::vector<u8>& f) { header(f)->type = 1; }},
      {"machine", [](std::vector<u8>& f) { header(f)->machine = 3; }},
      {"phentsize", [](std::vector<u8>& f) { header(f)->phentsize = 32; }},
      {"no phdrs", [](std::vector<u8>& f) { header(f)->phnum = 0; }},
      {"phdrs past the end", [](std::vector<u8>& f) { header(f)->phoff = f.size() - 8; }},
      {"phoff overflow", [](std::vector<u8>& f) { header(f)->phoff = ~0ull - 16; }},
      {"filesz > memsz", [](std::vector<u8>& f) { phdr(f, 1)->filesz = 0x6000; }},
      {"data past the end", [](std::vector<u8>& f) { phdr(f, 1)->offset = 0x2f80; }},
      {"offset overflow", [](std::vector<u8>& f) { phdr(f, 1)->offset = ~0ull - 0x10; }},
      {"misaligned", [](std::vector<u8>& f) { phdr(f, 1)->vaddr += 8; }},
      {"align not a power of two", [](std::vector<u8>& f) { phdr(f, 1)->align = 0x3000; }},
      {"overlapping", [](std::vector<u8>& f) {
         phdr(f, 1)->vaddr = 0x401000;
         phdr(f, 1)->offset = 0x1000;
       }},
      {"descending", [](std::vector<u8>& f) { std::swap(*phdr(f, 0), *phdr(f, 1)); }},
      {"vaddr overflow", [](std::vector<u8>& f) {
         phdr(f, 1)->vaddr = ~0ull & ~0xfffull;
         phdr(f, 1)->offset = 0;
       }},
      {"kernel address", [](std::vector<u8>& f) {
         phdr(f, 1)->vaddr = 0xffff800000002000ull;
       }},
      {"page zero", [](std::vector<u8>& f) {
         phdr(f, 0)->vaddr = 0;
         header(f)->entry = 0x1000;
       }},
      {"entry outside text", [](std::vector<u8>& f) { header(f)->entry = 0x402000; }},
      {"interpreter", [](std::vector<u8>& f) { phdr(f, 1)->type = 3; }},
  };
  for (const Case& c : cases) {
    auto f = make_elf();
    c.mutate(f);
    EXPECT_EQ(parse_error(f), Errno::kENOEXEC) << c.what;
  }
}
