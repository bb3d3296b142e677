// The path_walk fuzz target's oracle (fuzz/path_model.h) checked against the Linux these tests
// run on: random programs of path operations run as real system calls in a scratch tree, each
// answer compared with the model's. The fuzz target then holds tandem to the same model, so a
// wrong model shows up here and not as a false crash there.
//
// Each program runs in a child process chrooted into a fresh directory holding only /tmp/w
// (inside a user namespace when the tests do not run as root), so nothing it does reaches the
// host's files, and absolute paths, "..", and links out of /tmp/w are all compared (on tandem the
// root and /tmp are two file systems and the mount points' insides are not modelled).
#include "fuzz/path_model.h"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <ftw.h>
#include <sched.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdarg>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

namespace {

using namespace pathwalk;

struct Bytes {
  const std::vector<uint8_t>& data;
  size_t at = 0;
  bool empty() const { return at >= data.size(); }
  uint8_t take_u8() { return at < data.size() ? data[at++] : 0; }
};

// The executor over real system calls.
struct HostExec {
  char paths[2][kPathBuffer];
  char out[kPathBuffer];
  int64_t call(uint64_t nr, uint64_t a0 = 0, uint64_t a1 = 0, uint64_t a2 = 0, uint64_t a3 = 0, uint64_t a4 = 0,
               uint64_t a5 = 0) {
    const long r = ::syscall(static_cast<long>(nr), a0, a1, a2, a3, a4, a5);
    return r < 0 ? -errno : r;
  }
  uint64_t put(int which, const char* text, uint32_t length) {
    std::memcpy(paths[which], text, length);
    paths[which][length] = 0;
    return reinterpret_cast<uint64_t>(paths[which]);
  }
  uint64_t buffer() { return reinterpret_cast<uint64_t>(out); }
  void get(uint64_t address, void* to, uint32_t length) {
    std::memcpy(to, reinterpret_cast<const void*>(address), length);
  }
  [[noreturn]] void fail(const char* format, ...) __attribute__((format(printf, 2, 3))) {
    va_list args;
    va_start(args, format);
    std::vfprintf(stderr, format, args);
    va_end(args);
    std::fputc('\n', stderr);
    std::_Exit(3);
  }
};

Model g_model;
Program g_program;
HostExec g_exec;

// In the child: confine, then run. Exit 0 agrees, 3 disagrees (message on stderr), 4 cannot
// confine (not root and no user namespaces).
[[noreturn]] void child(const std::string& root, const std::vector<uint8_t>& input) {
  if (::chroot(root.c_str()) != 0) {
    const uid_t uid = ::getuid();
    const gid_t gid = ::getgid();
    if (::unshare(CLONE_NEWUSER) != 0) std::_Exit(4);
    auto write_file = [](const char* path, const std::string& text) {
      const int fd = ::open(path, O_WRONLY);
      if (fd < 0) return;
      (void)!::write(fd, text.data(), text.size());
      ::close(fd);
    };
    write_file("/proc/self/setgroups", "deny");
    write_file("/proc/self/uid_map", "0 " + std::to_string(uid) + " 1");
    write_file("/proc/self/gid_map", "0 " + std::to_string(gid) + " 1");
    if (::chroot(root.c_str()) != 0) std::_Exit(4);
  }
  if (::chdir("/tmp/w") != 0) std::_Exit(4);
  ::umask(022);
  Bytes in{input};
  decode(in, g_program);
  g_model.reset(true);
  Interpreter<HostExec> interpreter(g_exec, g_model);
  interpreter.run(g_program);
  std::_Exit(0);
}

// A program in path_model.h's encoding, drawn so that operations meet each other's objects:
// short paths over a few names, now and then a dot, a trailing slash, an odd or long name.
std::vector<uint8_t> random_program(std::mt19937_64& rng) {
  std::vector<uint8_t> out;
  auto below = [&](uint32_t n) { return static_cast<uint32_t>(rng() % n); };
  auto path = [&] {
    uint8_t spec = static_cast<uint8_t>(below(3));  // 1-3 components
    if (below(5) == 0) spec |= 0x20;                 // trailing slash
    if (below(6) == 0) spec |= below(2) ? 0x08 : 0x10;  // absolute: "/..." or "/tmp/w/..."
    if (below(40) == 0) spec |= 0x40;                // empty
    if (below(40) == 0) spec |= 0x80;                // padded to PATH_MAX - 1 or PATH_MAX
    out.push_back(spec);
    if (spec & 0x80) out.push_back(static_cast<uint8_t>(rng()));
    for (uint32_t i = 0; i <= (spec & 7u); ++i) {
      const uint32_t r = below(20);
      // 0-5 names, 6 ".", 7 "..", 8 "" , 9 "f", 10 odd bytes, 14/15 NAME_MAX and one more
      out.push_back(static_cast<uint8_t>(r < 6 ? (r & 1 ? 4 : 0) : r < 12 ? r % 6 : r < 14 ? 6 + (r & 1) : r < 16 ? 9 : r == 16 ? 8 : r == 17 ? 10 : 14 + (r & 1)));
    }
  };
  const uint32_t ops = 8 + below(17);
  for (uint32_t i = 0; i < ops; ++i) {
    // Creation first and more often, so later operations find objects (and link loops).
    static constexpr OpKind kEarly[] = {OpKind::Mkdir, OpKind::Symlink, OpKind::Open, OpKind::Symlink};
    const uint8_t kind = static_cast<uint8_t>(i < 4 && below(2) ? kEarly[below(4)]
                                              : static_cast<OpKind>(below(static_cast<uint32_t>(OpKind::Count))));
    out.push_back(kind);
    out.push_back(static_cast<uint8_t>(rng()));
    out.push_back(static_cast<uint8_t>(rng()));
    const auto k = static_cast<OpKind>(kind);
    if (k != OpKind::Getcwd && k != OpKind::Close && k != OpKind::Fchdir) path();
    if (k == OpKind::Symlink || k == OpKind::Rename) path();
  }
  return out;
}

int remove_entry(const char* path, const struct stat*, int, struct FTW*) { return ::remove(path); }

TEST(PathModel, AgreesWithLinux) {
  constexpr int kPrograms = 2000;
  std::mt19937_64 rng(20261127);
  for (int n = 0; n < kPrograms; ++n) {
    const std::vector<uint8_t> input = random_program(rng);
    char base[] = "/tmp/tandem-path-model-XXXXXX";
    ASSERT_NE(::mkdtemp(base), nullptr);
    const std::string root = base;
    ASSERT_EQ(::mkdir((root + "/tmp").c_str(), 0755), 0);
    ASSERT_EQ(::mkdir((root + "/tmp/w").c_str(), 0755), 0);
    std::fflush(nullptr);
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) child(root, input);
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    ::nftw(root.c_str(), remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    ASSERT_TRUE(WIFEXITED(status)) << "program " << n << ": the child died with status " << status;
    if (WEXITSTATUS(status) == 4) GTEST_SKIP() << "cannot chroot (not root, no user namespaces): the model is not checked";
    EXPECT_EQ(WEXITSTATUS(status), 0) << "program " << n << " disagrees with Linux (message above)";
  }
}

}  // namespace
