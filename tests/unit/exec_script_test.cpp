// execve of `#!` scripts (execve(2) "Interpreter scripts"): the line parser and the argv rewrite
// on their own, then execve on the simulated kernel, where the interpreter is a small ELF file
// whose entry point is a registered user entry that reports what it was started with.
#include <gtest/gtest.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "core/exec/script.h"
#include "sim/harness/harness.h"
#include "sim/scenarios/ulib.h"

namespace {

using tandem::Errno;
using tandem::kScriptLineBytes;
using tandem::ScriptLine;

constexpr Errno kNoError = static_cast<Errno>(0);

struct Parsed {
  Errno error = kNoError;
  std::string interpreter;
  bool has_argument = false;
  std::string argument;
};

Parsed parse(const std::string& file) {
  char line[kScriptLineBytes];
  Parsed out;
  auto r = tandem::script_parse(reinterpret_cast<const tandem::u8*>(file.data()), file.size(), line);
  if (r.is_error()) {
    out.error = r.error();
    return out;
  }
  out.interpreter = r.value().interpreter;
  out.has_argument = r.value().argument != nullptr;
  if (out.has_argument) out.argument = r.value().argument;
  return out;
}

TEST(ScriptParse, InterpreterAlone) {
  const Parsed p = parse("#!/bin/sh\necho hi\n");
  EXPECT_EQ(p.error, kNoError);
  EXPECT_EQ(p.interpreter, "/bin/sh");
  EXPECT_FALSE(p.has_argument);
}

TEST(ScriptParse, BlanksAroundTheInterpreterAreSkipped) {
  const Parsed p = parse("#! \t/bin/sh \t \nbody");
  EXPECT_EQ(p.interpreter, "/bin/sh");
  EXPECT_FALSE(p.has_argument);
}

TEST(ScriptParse, TheRestOfTheLineIsOneArgument) {
  // Not split at blanks, trimmed of trailing blanks only (Linux runs `/bin/echo` with "a b  c").
  const Parsed p = parse("#! \t/bin/echo  a b  c \t \nbody");
  EXPECT_EQ(p.interpreter, "/bin/echo");
  ASSERT_TRUE(p.has_argument);
  EXPECT_EQ(p.argument, "a b  c");
}

TEST(ScriptParse, WithoutANewlineTheFileEndsTheLine) {
  Parsed p = parse("#!/bin/echo -n");
  EXPECT_EQ(p.interpreter, "/bin/echo");
  EXPECT_EQ(p.argument, "-n");
  // The NUL padding past the file's end is not a blank: trailing blanks stay (as on Linux).
  p = parse("#!/bin/echo x  ");
  EXPECT_EQ(p.argument, "x  ");
  p = parse("#!/bin/sh");
  EXPECT_EQ(p.interpreter, "/bin/sh");
  EXPECT_FALSE(p.has_argument);
}

TEST(ScriptParse, ANulEndsTheName) {
  const Parsed p = parse(std::string("#!/bin/sh\0 -x\n", 14));
  EXPECT_EQ(p.interpreter, "/bin/sh");
  EXPECT_FALSE(p.has_argument);
}

TEST(ScriptParse, NoInterpreterIsEnoexec) {
  EXPECT_EQ(parse("#!\n").error, Errno::kENOEXEC);
  EXPECT_EQ(parse("#!   \t\n/bin/sh\n").error, Errno::kENOEXEC);
  EXPECT_EQ(parse("#!" + std::string(300, ' ')).error, Errno::kENOEXEC);
}

TEST(ScriptParse, ABareHashBangNamesTheEmptyPath) {
  // Linux walks "" from the working directory (a directory: EACCES); execve does the same.
  const Parsed p = parse("#!");
  EXPECT_EQ(p.error, kNoError);
  EXPECT_EQ(p.interpreter, "");
}

TEST(ScriptParse, ANameCutByTheBufferIsEnoexec) {
  EXPECT_EQ(parse("#!/" + std::string(300, 'a') + " y\n").error, Errno::kENOEXEC);
  // Exactly at the limit: a name that ends at the buffer's last byte is still cut.
  EXPECT_EQ(parse("#!/" + std::string(kScriptLineBytes - 3, 'a')).error, Errno::kENOEXEC);
  EXPECT_EQ(parse("#!/" + std::string(kScriptLineBytes - 4, 'a') + " ").error, kNoError);
}

TEST(ScriptParse, ALongLineKeepsItsArgumentCut) {
  // The interpreter's name ends inside the buffer: the argument runs to byte 254, as on Linux
  // (`#!/bin/echo ` and 300 x's gives /bin/echo 243 x's).
  const Parsed p = parse("#!/bin/echo " + std::string(300, 'x') + "\n");
  EXPECT_EQ(p.error, kNoError);
  EXPECT_EQ(p.interpreter, "/bin/echo");
  EXPECT_EQ(p.argument, std::string(kScriptLineBytes - 1 - 12, 'x'));
}

TEST(ScriptParse, TheNewlineMayBeTheBuffersLastByte) {
  std::string file = "#!/bin/sh " + std::string(kScriptLineBytes - 11, 'y') + "\n";
  ASSERT_EQ(file.size(), kScriptLineBytes);
  const Parsed p = parse(file);
  EXPECT_EQ(p.argument, std::string(kScriptLineBytes - 11, 'y'));
}

// core/ is built without RTTI, so UBSan's vptr check cannot verify calls on its polymorphic
// ExecArgs objects from this file, which is built with RTTI.
#define NO_VPTR_CHECK __attribute__((no_sanitize("vptr")))

using Strings = std::vector<std::string>;

NO_VPTR_CHECK Strings argv_of(tandem::ExecArgs& args) {
  Strings out;
  for (size_t i = 0; i < args.count(false); ++i) {
    std::string s(args.length(false, i), '\0');
    EXPECT_FALSE(args.copy(false, i, 0, s.data(), s.size()).is_error());
    out.push_back(s);
  }
  return out;
}

NO_VPTR_CHECK void each_level_replaces_argv_zero() {
  const char* const argv[] = {"zero", "one", "two", nullptr};
  const char* const envp[] = {"A=1", nullptr};
  tandem::KernelArgs inner(argv, envp);
  tandem::ScriptArgs args(inner, "./outer");
  args.add_level(ScriptLine{"/tmp/inner", "a1"});
  EXPECT_EQ(argv_of(args), (Strings{"/tmp/inner", "a1", "./outer", "one", "two"}));
  args.add_level(ScriptLine{"/bin/echo", nullptr});
  EXPECT_EQ(argv_of(args), (Strings{"/bin/echo", "/tmp/inner", "a1", "./outer", "one", "two"}));
  ASSERT_EQ(args.count(true), 1u);
  EXPECT_EQ(args.length(true, 0), 3u);
}
TEST(ScriptArgs, EachLevelReplacesArgvZero) { each_level_replaces_argv_zero(); }

NO_VPTR_CHECK void empty_argv() {
  const char* const argv[] = {nullptr};
  tandem::KernelArgs inner(argv, argv);
  tandem::ScriptArgs args(inner, "/s");
  args.add_level(ScriptLine{"/bin/sh", nullptr});
  EXPECT_EQ(argv_of(args), (Strings{"/bin/sh", "/s"}));
}
TEST(ScriptArgs, AnEmptyArgvGetsTheScriptsName) { empty_argv(); }

}  // namespace

namespace sim {
namespace {

using namespace ulib;

namespace sys {
constexpr uint64_t kRead = 0, kWrite = 1, kOpen = 2, kClose = 3, kPipe = 22, kDup2 = 33, kFork = 57, kExecve = 59,
                   kWait4 = 61, kReadlink = 89, kChdir = 80, kMkdir = 83, kPrctl = 157, kExecveat = 322;
}
constexpr uint64_t kOCreat = 0100, kOTrunc = 01000, kOWronly = 1, kODirectory = 0200000, kOCloexec = 02000000;
constexpr uint64_t kAtExecfn = 31;
constexpr uint64_t kReportFd = 9;

// PID 1's memory.
constexpr uint64_t kStr = kDataBase + 0x1000;    // a path
constexpr uint64_t kArgv = kDataBase + 0x2000;   // the argv array for the exec
constexpr uint64_t kArgStr = kDataBase + 0x2400; // its strings
constexpr uint64_t kExecPath = kDataBase + 0x3000;
constexpr uint64_t kMode = kDataBase + 0x3800;   // the child's exec: 0 execve, 1 execveat
constexpr uint64_t kDirfd = kDataBase + 0x3808;
constexpr uint64_t kFds = kDataBase + 0x3810;
constexpr uint64_t kStatus = kDataBase + 0x3820;
constexpr uint64_t kBuf = kDataBase + 0x4000;    // the file and report buffer
constexpr uint64_t kBufSize = 0x8000;

void check(User& u, const char* what, int64_t got, int64_t want) {
  if (got != want) u.fail("%s: got %lld, want %lld", what, static_cast<long long>(got), static_cast<long long>(want));
}

void put_bytes(User& u, uint64_t address, const void* data, size_t n) {
  const auto* bytes = static_cast<const uint8_t*>(data);
  for (size_t i = 0; i < n; i += 8) {
    uint64_t word = 0;
    std::memcpy(&word, bytes + i, std::min<size_t>(8, n - i));
    u.store64(address + i, word);
  }
}
void put(User& u, uint64_t address, const std::string& text) { put_bytes(u, address, text.c_str(), text.size() + 1); }

std::string get(User& u, uint64_t address, size_t n) {
  std::string out(n + 8, '\0');
  for (size_t i = 0; i < n; i += 8) {
    const uint64_t word = u.load64(address + i);
    std::memcpy(&out[i], &word, 8);
  }
  out.resize(n);
  return out;
}

// NULs shown as '|' in failure messages.
std::string visible(std::string s) {
  for (char& c : s) {
    if (c == 0) c = '|';
  }
  return s;
}

// ---- The interpreter: reports argv, AT_EXECFN, its task name and /proc/self/exe on fd 9, each
// followed by a NUL (a "--" string after argv), then exits 0. It keeps nothing on the host heap.

uint8_t load_byte(User& u, uint64_t address) {
  return static_cast<uint8_t>(u.load32(address & ~3ull) >> (8 * (address & 3)));
}
uint64_t user_strlen(User& u, uint64_t address) {
  uint64_t n = 0;
  while (load_byte(u, address + n) != 0) ++n;
  return n;
}
void report_string(User& u, uint64_t address) {
  const uint64_t n = user_strlen(u, address) + 1;
  if (u.syscall(sys::kWrite, kReportFd, address, n) != static_cast<int64_t>(n)) u.fail("report: write failed");
}

void report(User& u) {
  // Only the children exec successfully: in PID 1 an exec that should have failed did not.
  if (u.syscall(nr::kGetpid) == 1) u.fail("report: an exec in PID 1 that should have failed succeeded");
  const uint64_t sp = u.start().rsp;
  const uint64_t scratch = (sp - 0x1000) & ~15ull;  // stack pages below the initial frame
  const uint64_t argc = u.load64(sp);
  for (uint64_t i = 0; i < argc; ++i) report_string(u, u.load64(sp + 8 + 8 * i));
  u.store32(scratch, '-' | ('-' << 8));
  report_string(u, scratch);
  // The auxiliary vector follows envp's NULL.
  uint64_t p = sp + 8 + 8 * (argc + 1);
  while (u.load64(p) != 0) p += 8;
  p += 8;
  uint64_t execfn = 0;
  for (; u.load64(p) != 0; p += 16) {
    if (u.load64(p) == kAtExecfn) execfn = u.load64(p + 8);
  }
  if (execfn == 0) u.fail("report: no AT_EXECFN");
  report_string(u, execfn);
  for (int i = 0; i < 4; ++i) u.store64(scratch + 8 * i, 0);
  if (u.syscall(sys::kPrctl, 16 /* PR_GET_NAME */, scratch) != 0) u.fail("report: prctl failed");
  report_string(u, scratch);
  static const char kExe[] = "/proc/self/exe";
  put_bytes(u, scratch, kExe, sizeof(kExe));
  for (int i = 0; i < 32; ++i) u.store64(scratch + 64 + 8 * i, 0);
  const int64_t n = u.syscall(sys::kReadlink, scratch, scratch + 64, 200);
  if (n <= 0) u.fail("report: readlink /proc/self/exe: %lld", static_cast<long long>(n));
  report_string(u, scratch + 64);
  exit_group(u, 0);
}
const uint64_t kReport = register_entry("test.exec.script.report", report);

// A static ELF executable whose entry point is `entry`: one read+execute PT_LOAD at the
// simulator's entry addresses, and nothing else in the file but the headers.
std::string elf_for(uint64_t entry) {
  uint8_t file[120] = {};
  const uint8_t ident[] = {0x7f, 'E', 'L', 'F', 2, 1, 1};
  std::memcpy(file, ident, sizeof(ident));
  auto put16 = [&](size_t at, uint16_t v) { std::memcpy(file + at, &v, 2); };
  auto put32 = [&](size_t at, uint32_t v) { std::memcpy(file + at, &v, 4); };
  auto put64 = [&](size_t at, uint64_t v) { std::memcpy(file + at, &v, 8); };
  put16(16, 2);        // ET_EXEC
  put16(18, 62);       // EM_X86_64
  put32(20, 1);        // EV_CURRENT
  put64(24, entry);    // e_entry
  put64(32, 64);       // e_phoff
  put16(52, 64);       // e_ehsize
  put16(54, 56);       // e_phentsize
  put16(56, 1);        // e_phnum
  put32(64, 1);        // PT_LOAD
  put32(68, 5);        // PF_R | PF_X
  put64(72, 0);        // p_offset
  put64(80, 0x400000); // p_vaddr
  put64(88, 0x400000); // p_paddr
  put64(96, sizeof(file));
  put64(104, 0x100000);  // p_memsz: the registered entry addresses
  put64(112, 0x1000);
  return std::string(reinterpret_cast<const char*>(file), sizeof(file));
}

void write_file(User& u, const char* path, const std::string& content, uint64_t mode) {
  put(u, kStr, path);
  const int64_t fd = u.syscall(sys::kOpen, kStr, kOCreat | kOTrunc | kOWronly, mode);
  if (fd < 0) u.fail("create %s: %lld", path, static_cast<long long>(fd));
  put_bytes(u, kBuf, content.data(), content.size());
  check(u, path, u.syscall(sys::kWrite, static_cast<uint64_t>(fd), kBuf, content.size()),
        static_cast<int64_t>(content.size()));
  u.syscall(sys::kClose, static_cast<uint64_t>(fd));
}

// Lays out argv (from kArgStr) and the path for the exec.
void prepare_exec(User& u, const std::string& path, const std::vector<std::string>& argv) {
  put(u, kExecPath, path);
  uint64_t at = kArgStr;
  for (size_t i = 0; i < argv.size(); ++i) {
    put(u, at, argv[i]);
    u.store64(kArgv + 8 * i, at);
    at += (argv[i].size() + 8) & ~7ull;
  }
  u.store64(kArgv + 8 * argv.size(), 0);
}

int64_t do_exec(User& u) {
  if (u.load64(kMode) == 1)
    return u.syscall(sys::kExecveat, u.load64(kDirfd), kExecPath, kArgv, 0, 0);
  return u.syscall(sys::kExecve, kExecPath, kArgv, 0);
}

void exec_child(User& u) {
  const int64_t r = do_exec(u);
  // The report says what went wrong: exit status 100 + errno.
  exit_group(u, static_cast<int>(100 - r));
}
const uint64_t kExecChild = register_entry("test.exec.script.child", exec_child);

// Runs the exec in a child with fd 9 the write end of a pipe; returns what the child reported.
std::string run_exec(User& u, const char* what, const std::string& path, const std::vector<std::string>& argv,
                     int64_t dirfd = -1) {
  prepare_exec(u, path, argv);
  u.store64(kMode, dirfd >= 0 ? 1 : 0);
  u.store64(kDirfd, static_cast<uint64_t>(dirfd));
  check(u, "pipe", u.syscall(sys::kPipe, kFds), 0);
  const uint64_t r = u.load32(kFds), w = u.load32(kFds + 4);
  check(u, "dup2 to the report descriptor", u.syscall(sys::kDup2, w, kReportFd), static_cast<int64_t>(kReportFd));
  u.syscall(sys::kClose, w);
  const int64_t pid = u.syscall_at(kExecChild, sys::kFork);
  if (pid <= 0) u.fail("%s: fork: %lld", what, static_cast<long long>(pid));
  u.syscall(sys::kClose, kReportFd);
  uint64_t got = 0;
  for (;;) {
    const int64_t n = u.syscall(sys::kRead, r, kBuf + got, kBufSize - got);
    if (n < 0) u.fail("%s: read: %lld", what, static_cast<long long>(n));
    if (n == 0) break;
    got += static_cast<uint64_t>(n);
  }
  u.syscall(sys::kClose, r);
  check(u, what, u.syscall(sys::kWait4, static_cast<uint64_t>(pid), kStatus, 0, 0), pid);
  const uint32_t status = u.load32(kStatus);
  if (status != 0) u.fail("%s: the child's wait status is %#x (exit %u: 100 + errno)", what, status, status >> 8);
  return get(u, kBuf, got);
}

std::string expected_report(const std::vector<std::string>& argv, const std::string& execfn, const std::string& comm,
                            const std::string& exe) {
  std::string out;
  for (const std::string& a : argv) out += a + '\0';
  out += std::string("--") + '\0' + execfn + '\0' + comm + '\0' + exe + '\0';
  return out;
}

void expect_report(User& u, const char* what, const std::string& got, const std::string& want) {
  if (got != want) u.fail("%s: reported\n  %s\nwant\n  %s", what, visible(got).c_str(), visible(want).c_str());
}

int64_t exec_error(User& u, const std::string& path) {
  prepare_exec(u, path, {"argv0", "one"});
  return u.syscall(sys::kExecve, kExecPath, kArgv, 0);
}

void scripts(User& u) {
  put(u, kStr, "/tmp/x");
  check(u, "mkdir /tmp/x", u.syscall(sys::kMkdir, kStr, 0755), 0);
  write_file(u, "/tmp/x/report", elf_for(kReport), 0755);

  // An ELF program: AT_EXECFN is the path as given, /proc/self/exe the file.
  put(u, kStr, "/tmp/x");
  check(u, "chdir /tmp/x", u.syscall(sys::kChdir, kStr), 0);
  expect_report(u, "exec of the ELF program", run_exec(u, "exec ./report", "./report", {"r0", "r1"}),
                expected_report({"r0", "r1"}, "./report", "report", "/tmp/x/report"));

  // The interpreter alone: argv[0] goes, the interpreter and the script's name come first.
  write_file(u, "/tmp/x/plain.sh", "#!/tmp/x/report\nbody\n", 0755);
  expect_report(u, "a script without an argument",
                run_exec(u, "exec plain.sh", "/tmp/x/plain.sh", {"zero", "one", "two"}),
                expected_report({"/tmp/x/report", "/tmp/x/plain.sh", "one", "two"}, "/tmp/x/plain.sh", "plain.sh",
                                "/tmp/x/report"));
  // One optional argument, blanks and all, and the name as given (relative).
  write_file(u, "/tmp/x/arg.sh", "#! \t/tmp/x/report  -x  y \t\nbody\n", 0755);
  expect_report(u, "a script with an argument", run_exec(u, "exec ./arg.sh", "./arg.sh", {"zero", "one"}),
                expected_report({"/tmp/x/report", "-x  y", "./arg.sh", "one"}, "./arg.sh", "arg.sh", "/tmp/x/report"));
  // An empty argv: the script's name still goes in.
  expect_report(u, "a script with an empty argv", run_exec(u, "exec with argc 0", "/tmp/x/plain.sh", {}),
                expected_report({"/tmp/x/report", "/tmp/x/plain.sh"}, "/tmp/x/plain.sh", "plain.sh", "/tmp/x/report"));
  // An interpreter found relative to the working directory.
  write_file(u, "/tmp/x/rel.sh", "#!report\n", 0755);
  expect_report(u, "a relative interpreter", run_exec(u, "exec rel.sh", "rel.sh", {"zero"}),
                expected_report({"report", "rel.sh"}, "rel.sh", "rel.sh", "/tmp/x/report"));

  // Nesting: a script whose interpreter is a script.
  write_file(u, "/tmp/x/nest.sh", "#!/tmp/x/arg.sh a1\n", 0755);
  expect_report(u, "a script run by a script", run_exec(u, "exec nest.sh", "/tmp/x/nest.sh", {"zero", "one"}),
                expected_report({"/tmp/x/report", "-x  y", "/tmp/x/arg.sh", "a1", "/tmp/x/nest.sh", "one"},
                                "/tmp/x/nest.sh", "nest.sh", "/tmp/x/report"));
  // Five scripts deep is the limit; a sixth is ELOOP.
  write_file(u, "/tmp/x/d1", "#!/tmp/x/report\n", 0755);
  for (int i = 2; i <= 6; ++i) {
    const std::string path = "/tmp/x/d" + std::to_string(i);
    write_file(u, path.c_str(), "#!/tmp/x/d" + std::to_string(i - 1) + "\n", 0755);
  }
  expect_report(u, "five scripts deep", run_exec(u, "exec d5", "/tmp/x/d5", {"zero", "z1"}),
                expected_report({"/tmp/x/report", "/tmp/x/d1", "/tmp/x/d2", "/tmp/x/d3", "/tmp/x/d4", "/tmp/x/d5", "z1"},
                                "/tmp/x/d5", "d5", "/tmp/x/report"));
  check(u, "six scripts deep", exec_error(u, "/tmp/x/d6"), -ELOOP);

  // execveat from a directory descriptor: the script is named /dev/fd/N/name, as on Linux...
  put(u, kStr, "/tmp/x");
  const int64_t dir = u.syscall(sys::kOpen, kStr, kODirectory, 0);
  if (dir < 0) u.fail("open /tmp/x: %lld", static_cast<long long>(dir));
  {
    // Scoped: exit_group below never returns, and a host string alive then would leak.
    const std::string via_fd = "/dev/fd/" + std::to_string(dir) + "/plain.sh";
    expect_report(u, "execveat of a script", run_exec(u, "execveat plain.sh", "plain.sh", {"zero", "one"}, dir),
                  expected_report({"/tmp/x/report", via_fd, "one"}, via_fd, "plain.sh", "/tmp/x/report"));
  }
  u.syscall(sys::kClose, static_cast<uint64_t>(dir));
  // ...and when the exec closes that descriptor, the interpreter could not open the name: ENOENT.
  const int64_t closing = u.syscall(sys::kOpen, kStr, kODirectory | kOCloexec, 0);
  prepare_exec(u, "plain.sh", {"zero"});
  check(u, "execveat of a script through a close-on-exec descriptor",
        u.syscall(sys::kExecveat, static_cast<uint64_t>(closing), kExecPath, kArgv, 0, 0), -ENOENT);
  u.syscall(sys::kClose, static_cast<uint64_t>(closing));

  // Errors.
  write_file(u, "/tmp/x/missing.sh", "#!/tmp/x/no-such-interpreter\n", 0755);
  check(u, "a missing interpreter", exec_error(u, "/tmp/x/missing.sh"), -ENOENT);
  write_file(u, "/tmp/x/long.sh", "#!/" + std::string(300, 'a') + " y\n", 0755);
  check(u, "a first line longer than the buffer", exec_error(u, "/tmp/x/long.sh"), -ENOEXEC);
  write_file(u, "/tmp/x/blank.sh", "#!  \t\n", 0755);
  check(u, "no interpreter named", exec_error(u, "/tmp/x/blank.sh"), -ENOEXEC);
  write_file(u, "/tmp/x/bare.sh", "#!", 0755);
  check(u, "a bare #!", exec_error(u, "/tmp/x/bare.sh"), -EACCES);
  write_file(u, "/tmp/x/text", "echo no hash-bang\n", 0755);
  check(u, "an executable text file without #!", exec_error(u, "/tmp/x/text"), -ENOEXEC);
  write_file(u, "/tmp/x/tiny", "#", 0755);
  check(u, "a one-byte file", exec_error(u, "/tmp/x/tiny"), -ENOEXEC);
  write_file(u, "/tmp/x/noexec.sh", "#!/tmp/x/report\n", 0644);
  check(u, "a script without execute permission", exec_error(u, "/tmp/x/noexec.sh"), -EACCES);
  write_file(u, "/tmp/x/interp-noexec", elf_for(kReport), 0644);
  write_file(u, "/tmp/x/interp-noexec.sh", "#!/tmp/x/interp-noexec\n", 0755);
  check(u, "an interpreter without execute permission", exec_error(u, "/tmp/x/interp-noexec.sh"), -EACCES);
  write_file(u, "/tmp/x/interp-dir.sh", "#!/tmp/x\n", 0755);
  check(u, "a directory as the interpreter", exec_error(u, "/tmp/x/interp-dir.sh"), -EACCES);
  write_file(u, "/tmp/x/interp-text.sh", "#!/tmp/x/text\n", 0755);
  check(u, "an interpreter that is neither ELF nor script", exec_error(u, "/tmp/x/interp-text.sh"), -ENOEXEC);
  // A bad argv is reported before anything wrong inside the file, as on Linux.
  put(u, kExecPath, "/tmp/x/missing.sh");
  check(u, "a bad argv with a missing interpreter", u.syscall(sys::kExecve, kExecPath, 0x50000000, 0), -EFAULT);
  exit_group(u, 0);
}

const char* any(uint32_t, uint32_t) { return nullptr; }

struct Registrar {
  Registrar() {
    register_scenario({"test-exec-scripts", "execve of #! scripts, one thread",
                       register_entry("test.exec.scripts", scripts), any});
  }
} const kRegistrar;

TEST(ExecScripts, ExecveRunsTheInterpreterAsLinuxDoes) {
  for (uint64_t seed : {1u, 2u}) {
    RunSpec spec;
    spec.scenario = "test-exec-scripts";
    spec.cpus = 2;
    spec.seed = seed;
    spec.strategy.kind = StrategyKind::Random;
    spec.max_steps = 50'000'000;
    const RunResult r = run_one(spec);
    EXPECT_EQ(r.outcome, Outcome::Finished) << "seed " << seed << ": " << r.message;
  }
}

}  // namespace
}  // namespace sim
