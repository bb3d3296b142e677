// The initramfs parser: valid archives are walked and looked up; every malformed archive is
// an error with a reason, never a read outside the buffer (run under ASan in the sanitize build).
#include "core/fs/cpio.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <string>
#include <vector>

using namespace tandem;

namespace {

void pad4(std::string& s) {
  while (s.size() % 4 != 0) s.push_back('\0');
}

std::string entry(const std::string& name, unsigned mode, const std::string& data, const char* magic = "070701") {
  char header[111];
  std::snprintf(header, sizeof(header), "%s%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x", magic, 1u, mode,
                0u, 0u, 1u, 0u, static_cast<unsigned>(data.size()), 0u, 0u, 0u, 0u,
                static_cast<unsigned>(name.size() + 1), 0u);
  std::string out(header, 110);
  out += name;
  out.push_back('\0');
  pad4(out);
  out += data;
  pad4(out);
  return out;
}

std::string trailer() { return entry("TRAILER!!!", 0, ""); }

std::string sample() {
  return entry(".", 0040755, "") + entry("bin", 0040755, "") + entry("bin/hello", 0100755, "HELLO") +
         entry("bin/sh", 0120777, "busybox") + entry("bin/busybox", 0100755, "BB") +
         entry("sbin", 0120777, "/bin") + entry("loop", 0120777, "loop") + trailer();
}

const u8* bytes(const std::string& s) { return reinterpret_cast<const u8*>(s.data()); }

std::string mount_error(const std::string& archive) {
  CpioFs fs;
  CpioError error;
  auto r = fs.mount(bytes(archive), archive.size(), &error);
  if (r.ok()) return "";
  return error.reason;
}

}  // namespace

TEST(Cpio, WalksAndLooksUp) {
  const std::string archive = sample();
  CpioFs fs;
  CpioError error;
  ASSERT_TRUE(fs.mount(bytes(archive), archive.size(), &error).ok()) << error.reason;
  EXPECT_EQ(fs.entry_count(), 7u);
  auto hello = fs.lookup("/bin/hello");
  ASSERT_TRUE(hello.ok());
  EXPECT_TRUE(hello.value().is_regular());
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(hello.value().data), hello.value().size), "HELLO");
  EXPECT_TRUE(fs.lookup("bin//hello").ok());
  EXPECT_TRUE(fs.lookup("/./bin/../bin/hello").ok());
  // Relative and absolute symbolic links, in the last component and along the way.
  auto sh = fs.lookup("/bin/sh");
  ASSERT_TRUE(sh.ok());
  EXPECT_EQ(sh.value().size, 2u);
  EXPECT_TRUE(fs.lookup("/bin/sh", false).value().is_symlink());
  EXPECT_TRUE(fs.lookup("/sbin/hello").ok());
  EXPECT_EQ(fs.lookup("/loop").error(), Errno::kELOOP);
  EXPECT_EQ(fs.lookup("/bin/nope").error(), Errno::kENOENT);
  EXPECT_EQ(fs.lookup("/bin/hello/x").error(), Errno::kENOTDIR);
  EXPECT_TRUE(fs.lookup("/").value().is_directory());
  EXPECT_EQ(fs.lookup(std::string(300, 'a').c_str()).error(), Errno::kENAMETOOLONG);
}

TEST(Cpio, AcceptsCrcMagicAndImplicitDirectories) {
  const std::string archive = entry("a/b/c", 0100644, "x", "070702") + trailer();
  CpioFs fs;
  ASSERT_TRUE(fs.mount(bytes(archive), archive.size(), nullptr).ok());
  EXPECT_TRUE(fs.lookup("/a/b/c").ok());
}

TEST(Cpio, RejectsMalformedArchives) {
  EXPECT_EQ(mount_error(""), "truncated header (no TRAILER!!! entry)");
  EXPECT_EQ(mount_error("070707" + std::string(200, '0')), "bad magic (not a cpio newc archive)");
  EXPECT_EQ(mount_error(std::string("\x7f" "ELF") + std::string(200, 0)), "bad magic (not a cpio newc archive)");
  std::string bad_hex = sample();
  bad_hex[20] = 'g';
  EXPECT_EQ(mount_error(bad_hex), "bad hex digit in header");
  // No trailer, and a trailer cut off.
  EXPECT_EQ(mount_error(entry("a", 0100644, "x")), "no TRAILER!!! entry");
  const std::string full = sample();
  for (size_t cut = 0; cut < full.size(); cut += 7) {
    EXPECT_NE(mount_error(full.substr(0, cut)), "") << "cut at " << cut;
  }
  // Sizes that point past the end.
  std::string big = entry("a", 0100644, "x") + trailer();
  big.replace(6 + 8 * 6, 8, "7fffffff");
  EXPECT_EQ(mount_error(big), "file data runs past the end");
  std::string long_name = entry("a", 0100644, "x") + trailer();
  long_name.replace(6 + 8 * 11, 8, "ffffffff");
  EXPECT_EQ(mount_error(long_name), "name longer than 255 bytes");
  std::string zero_name = entry("a", 0100644, "x") + trailer();
  zero_name.replace(6 + 8 * 11, 8, "00000000");
  EXPECT_EQ(mount_error(zero_name), "name size is 0");
  std::string no_nul = entry("ab", 0100644, "x") + trailer();
  no_nul.replace(6 + 8 * 11, 8, "00000002");
  EXPECT_EQ(mount_error(no_nul), "name not NUL-terminated");
  EXPECT_EQ(mount_error(entry("d", 0040755, "data") + trailer()), "directory with data");
  EXPECT_EQ(mount_error(entry("l", 0120777, "") + trailer()), "symbolic link target empty or longer than 255 bytes");
  EXPECT_EQ(mount_error(entry("w", 0170000, "") + trailer()), "unknown file type in mode");
}

TEST(Cpio, ErrorsCarryTheOffset) {
  std::string archive = entry("a", 0100644, "x") + entry("b", 0040755, "zz") + trailer();
  CpioFs fs;
  CpioError error;
  ASSERT_TRUE(fs.mount(bytes(archive), archive.size(), &error).is_error());
  EXPECT_EQ(error.offset, entry("a", 0100644, "x").size());
  EXPECT_FALSE(fs.mounted());
}
