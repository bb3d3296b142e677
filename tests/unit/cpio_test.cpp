// The initramfs parser: valid archives are walked and looked up; every malformed archive is
// an error with a reason, never a read outside the buffer (run under ASan in the sanitize build).
#include "core/fs/cpio.h"

#include <gtest/gtest.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "sim/harness/harness.h"
#include "sim/scenarios/ulib.h"

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

// The archive as the root file system of a kernel on the simulator, large enough that its name
// index spans several heap chunks. Simulator builds check every indexed lookup against a walk
// of the archive (core/fs/cpiofs.cpp), so a wrong index fails the run as well as the program.
namespace big_root {

constexpr int kFiles = 300;

std::string archive() {
  std::string out = entry("./etc/motd", 0100644, "first") + entry("bin", 0040755, "");
  char name[64], data[32];
  for (int i = kFiles - 1; i >= 0; --i) {  // not in name order: the index sorts
    std::snprintf(name, sizeof(name), "lib/m%03d/f%03d", i / 10, i);
    std::snprintf(data, sizeof(data), "file %d", i);
    out += entry(name, 0100644, data);
  }
  return out + entry("etc/motd", 0100644, "second") + trailer();
}

using sim::User;
constexpr uint64_t kPath = sim::kDataBase + 0x1000, kBuf = sim::kDataBase + 0x2000,
                   kStat = sim::kDataBase + 0x3000;
constexpr uint64_t kRead = 0, kOpen = 2, kClose = 3, kStatCall = 4, kODirectory = 0200000;

int64_t call_path(User& u, uint64_t nr, const char* path, uint64_t a1 = 0) {
  const size_t n = std::strlen(path) + 1;
  for (size_t i = 0; i < n; i += 8) {
    uint64_t word = 0;
    std::memcpy(&word, path + i, std::min<size_t>(8, n - i));
    u.store64(kPath + i, word);
  }
  return u.syscall(nr, kPath, a1);
}

std::string contents(User& u, const char* path) {
  const int64_t fd = call_path(u, kOpen, path);
  if (fd < 0) u.fail("open %s: %lld", path, static_cast<long long>(fd));
  const int64_t n = u.syscall(kRead, static_cast<uint64_t>(fd), kBuf, 64);
  u.syscall(kClose, static_cast<uint64_t>(fd));
  if (n < 0 || n > 64) u.fail("read %s: %lld", path, static_cast<long long>(n));
  std::string out;
  for (int64_t i = 0; i < n; i += 8) {
    const uint64_t word = u.load64(kBuf + i);
    out.append(reinterpret_cast<const char*>(&word), 8);
  }
  out.resize(static_cast<size_t>(n));
  return out;
}

uint32_t mode_of(User& u, const char* path) {
  const int64_t r = call_path(u, kStatCall, path, kStat);
  if (r != 0) u.fail("stat %s: %lld", path, static_cast<long long>(r));
  return u.load32(kStat + 24);  // st_mode
}

void program(User& u) {
  char path[64], want[32];
  for (int i = 0; i < kFiles; ++i) {
    std::snprintf(path, sizeof(path), "/lib/m%03d/f%03d", i / 10, i);
    std::snprintf(want, sizeof(want), "file %d", i);
    if (contents(u, path) != want) u.fail("%s does not hold \"%s\"", path, want);
  }
  if (contents(u, "/etc/motd") != "second") u.fail("the last of two equal names does not win");
  // Directories with no entry of their own are directories of every name below them.
  if ((mode_of(u, "/lib/m017") & 0170000) != 0040000) u.fail("/lib/m017 is not a directory");
  if ((mode_of(u, "/lib") & 0170000) != 0040000) u.fail("/lib is not a directory");
  if ((mode_of(u, "/bin") & 0170000) != 0040000) u.fail("/bin is not a directory");
  const int64_t dir = call_path(u, kOpen, "/lib/m029", kODirectory);
  if (dir < 0) u.fail("open /lib/m029 as a directory: %lld", static_cast<long long>(dir));
  u.syscall(kClose, static_cast<uint64_t>(dir));
  // A prefix of names that is not a whole component, names between and past the entries.
  for (const char* missing : {"/lib/m01", "/lib/m017/f17", "/lib/m030", "/a", "/zzz", "/etc/motd2", "/li"}) {
    const int64_t r = call_path(u, kStatCall, missing, kStat);
    if (r != -ENOENT) u.fail("stat %s: %lld, want ENOENT", missing, static_cast<long long>(r));
  }
  sim::ulib::exit_group(u, 0);
}

struct Registrar {
  Registrar() {
    sim::register_scenario({"test-cpio-root", "lookups in a 300-file cpio root",
                            sim::register_entry("test.cpio.root", program),
                            [](uint32_t, uint32_t) -> const char* { return nullptr; }});
  }
} const kRegistrar;

TEST(Cpio, LargeRootLooksUpEveryNameThroughItsIndex) {
  sim::RunSpec spec;
  spec.scenario = "test-cpio-root";
  spec.cpus = 2;
  spec.seed = 1;
  spec.max_steps = 50'000'000;
  spec.root_archive = archive();
  const sim::RunResult r = sim::run_one(spec);
  EXPECT_EQ(r.outcome, sim::Outcome::Finished) << r.message;
  // The index was built (more than one heap object's worth of names), not walked around.
  EXPECT_EQ(r.console.find("no index"), std::string::npos) << r.console;
}

TEST(Cpio, MalformedRootArchiveIsARunError) {
  sim::RunSpec spec;
  spec.scenario = "test-cpio-root";
  spec.root_archive = entry("a", 0100644, "x");
  const sim::RunResult r = sim::run_one(spec);
  EXPECT_EQ(r.outcome, sim::Outcome::Failed);
  EXPECT_NE(r.message.find("bad root archive at byte"), std::string::npos) << r.message;
}

}  // namespace big_root
