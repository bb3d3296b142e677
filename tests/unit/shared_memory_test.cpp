// Shared memory: memfd_create(2), MAP_SHARED mappings of in-memory files (memfd and tmpfs), the
// file's read/write/ftruncate against its mappings, MAP_SHARED anonymous memory across fork,
// madvise(2)'s MADV_DONTNEED, and the errors Linux gives, run by user programs on the simulated
// kernel. The harness fails a run that leaves a kernel heap object or a physical page behind, so
// every scenario here also checks that closing and unmapping frees what the file held.
#include <gtest/gtest.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "sim/harness/harness.h"
#include "sim/scenarios/ulib.h"

namespace sim {
namespace {

using namespace ulib;

namespace snr {
constexpr uint64_t kRead = 0, kWrite = 1, kOpen = 2, kClose = 3, kFstat = 5, kLseek = 8, kMmap = 9, kMprotect = 10,
                   kMunmap = 11, kPread = 17, kPwrite = 18, kMadvise = 28, kFork = 57, kWait4 = 61,
                   kFcntl = 72, kFtruncate = 77, kMemfdCreate = 319;
}
constexpr uint64_t kProtRead = 1, kProtWrite = 2, kProtExec = 4;
constexpr uint64_t kMapShared = 1, kMapPrivate = 2, kMapFixed = 0x10, kMapAnonymous = 0x20;
constexpr uint64_t kMfdCloexec = 1, kMfdAllowSealing = 2, kMfdHugetlb = 4;
constexpr uint64_t kMadvNormal = 0, kMadvDontneed = 4;
constexpr uint64_t kAddSeals = 1033, kGetSeals = 1034, kSealSeal = 1, kSealShrink = 2, kSealGrow = 4, kSealWrite = 8,
                   kSealFutureWrite = 0x10;
constexpr uint64_t kOCreat = 0100, kORdwr = 2;
constexpr uint64_t kPage = 4096;

constexpr uint64_t kName = kDataBase + 0x1000;  // strings
constexpr uint64_t kBuf = kDataBase + 0x2000;   // I/O buffer
constexpr uint64_t kStat = kDataBase + 0x3000;
constexpr uint64_t kShare = kDataBase + 0x3800;  // what a forked child is told (see child())
constexpr uint64_t kUnmapped = 0x50000000;
constexpr uint64_t kSigbus = 7, kSigsegv = 11, kCoreBit = 0x80;

void check(User& u, const char* what, int64_t got, int64_t want) {
  if (got != want) u.fail("%s: got %lld, want %lld", what, static_cast<long long>(got), static_cast<long long>(want));
}

// Stores a NUL-terminated string at an 8-byte-aligned address, a word at a time.
void put(User& u, uint64_t address, const std::string& text) {
  const size_t n = text.size() + 1;
  for (size_t i = 0; i < n; i += 8) {
    uint64_t word = 0;
    std::memcpy(&word, text.c_str() + i, std::min<size_t>(8, n - i));
    u.store64(address + i, word);
  }
}

// Loads n bytes from a 4-byte-aligned address.
std::string get(User& u, uint64_t address, size_t n) {
  std::string out(n + 4, '\0');
  for (size_t i = 0; i < n; i += 4) {
    const uint32_t word = u.load32(address + i);
    std::memcpy(&out[i], &word, 4);
  }
  out.resize(n);
  return out;
}

int64_t memfd(User& u, const std::string& name, uint64_t flags) {
  put(u, kName, name);
  return u.syscall(snr::kMemfdCreate, kName, flags);
}

uint64_t map(User& u, uint64_t length, uint64_t prot, uint64_t flags, int64_t fd, uint64_t offset = 0) {
  const int64_t at = u.syscall(snr::kMmap, 0, length, prot, flags, static_cast<uint64_t>(fd), offset);
  if (at < 0) u.fail("mmap: %lld", static_cast<long long>(at));
  return static_cast<uint64_t>(at);
}

// What the forked child does, and where (kShare: mode, address).
enum ChildMode : uint32_t { kWriteRx = 1, kReadPastEnd = 2, kWriteShared = 3 };

void child(User& u) {
  if (u.start().rax != 0) u.fail("the child's fork returned %llu", static_cast<unsigned long long>(u.start().rax));
  const uint32_t mode = u.load32(kShare);
  const uint64_t address = u.load64(kShare + 8);
  switch (mode) {
    case kWriteRx: u.store32(address, 1); break;  // a read-only view: SIGSEGV
    case kReadPastEnd: u.load32(address); break;  // past the file's end: SIGBUS
    case kWriteShared:
      u.store64(address, 0xc0ffee);  // seen by the parent through the same object
      exit_group(u, 0);
  }
  u.fail("the child survived its mode %u", mode);
}
const uint64_t kChild = register_entry("test.shm.child", child);

// Forks a child doing `mode` on `address`; returns its wait status.
uint32_t fork_child(User& u, ChildMode mode, uint64_t address) {
  u.store32(kShare, mode);
  u.store64(kShare + 8, address);
  const int64_t pid = u.syscall_at(kChild, snr::kFork);
  if (pid <= 0) u.fail("fork returned %lld", static_cast<long long>(pid));
  const int64_t waited = u.syscall(snr::kWait4, static_cast<uint64_t>(pid), kBuf, 0, 0);
  if (waited != pid) u.fail("wait4: %lld", static_cast<long long>(waited));
  return u.load32(kBuf);
}

// How many lines of /proc/self/maps show a view of the memfd "vmem" as Linux does:
// "/memfd:vmem (deleted)" at column 73 (seq_pad), shared, r-x or rw-. (Host strings live only
// in here: the fiber is abandoned at exit_group, and the harness counts what it leaked.)
uint32_t memfd_views_in_maps(User& u) {
  put(u, kName, "/proc/self/maps");
  check(u, "open maps", u.syscall(snr::kOpen, kName, 0, 0), 4);
  const int64_t got = u.syscall(snr::kRead, 4, kBuf, 4000);
  check(u, "close maps", u.syscall(snr::kClose, 4), 0);
  if (got <= 0) u.fail("read maps: %lld", static_cast<long long>(got));
  const std::string maps = get(u, kBuf, static_cast<size_t>(got));
  uint32_t views = 0;
  for (size_t at = 0; at < maps.size();) {
    size_t end = maps.find('\n', at);
    if (end == std::string::npos) end = maps.size();
    const std::string line = maps.substr(at, end - at);
    at = end + 1;
    const size_t name = line.find("/memfd:vmem (deleted)");
    if (name == std::string::npos) continue;
    const std::string perms = line.substr(line.find(' ') + 1, 4);
    if (name != 73 || name + 21 != line.size() || (perms != "r-xs" && perms != "rw-s"))
      u.fail("maps line for a memfd view: \"%s\"", line.c_str());
    ++views;
  }
  return views;
}

void shm_table(User& u) {
  // memfd_create's arguments (memfd_create(2)).
  check(u, "unknown flag", memfd(u, "x", 0x1000), -EINVAL);
  check(u, "MFD_HUGETLB (no hugetlbfs)", memfd(u, "x", kMfdHugetlb), -EINVAL);
  check(u, "bad name pointer", u.syscall(snr::kMemfdCreate, kUnmapped, 0), -EFAULT);
  check(u, "a 250-byte name", memfd(u, std::string(250, 'n'), 0), -EINVAL);
  const int64_t longest = memfd(u, std::string(249, 'n'), kMfdAllowSealing);
  check(u, "a 249-byte name", longest, 3);
  check(u, "close it", u.syscall(snr::kClose, 3), 0);

  // The JIT's pattern: size the file, map it twice, write through one view, read the other.
  const int64_t fd = memfd(u, "vmem", kMfdCloexec);
  check(u, "memfd_create", fd, 3);
  check(u, "fstat", u.syscall(snr::kFstat, 3, kStat), 0);
  check(u, "new memfd is empty", static_cast<int64_t>(u.load64(kStat + 48)), 0);
  check(u, "mode 0777 regular", u.load32(kStat + 24), 0100777);
  check(u, "ftruncate to 2 pages", u.syscall(snr::kFtruncate, 3, 2 * kPage), 0);
  check(u, "fstat", u.syscall(snr::kFstat, 3, kStat), 0);
  check(u, "size after ftruncate", static_cast<int64_t>(u.load64(kStat + 48)), 2 * kPage);
  const uint64_t rx = map(u, 2 * kPage, kProtRead | kProtExec, kMapShared, fd);
  const uint64_t rw = map(u, 2 * kPage, kProtRead | kProtWrite, kMapShared, fd);
  check(u, "two views", rx != rw, 1);
  check(u, "memfd views in /proc/self/maps", memfd_views_in_maps(u), 2);
  check(u, "fresh file reads zeros", static_cast<int64_t>(u.load64(rx + kPage)), 0);
  u.store64(rw + kPage + 8, 0x1122334455667788ull);
  check(u, "the rx view sees the rw view's store", u.load64(rx + kPage + 8) == 0x1122334455667788ull, 1);
  // The file's read path reaches the same page.
  check(u, "pread", u.syscall(snr::kPread, 3, kBuf, 8, kPage + 8), 8);
  check(u, "pread sees the store", u.load64(kBuf) == 0x1122334455667788ull, 1);
  // And its write path: a write() shows in both views.
  put(u, kBuf, "hello, mapping");
  check(u, "pwrite", u.syscall(snr::kPwrite, 3, kBuf, 14, 100), 14);
  check(u, "rw view sees write()", get(u, rw + 100, 14) == "hello, mapping", 1);
  check(u, "rx view sees write()", get(u, rx + 100, 14) == "hello, mapping", 1);
  // read() into a buffer that is a mapping of the very same file.
  check(u, "lseek", u.syscall(snr::kLseek, 3, 100, 0), 100);
  check(u, "read into its own mapping", u.syscall(snr::kRead, 3, rw + kPage + 64, 14), 14);
  check(u, "copied within the file", get(u, rx + kPage + 64, 14) == "hello, mapping", 1);
  // The rx view is read-only: a store there is SIGSEGV (core dumped), in a forked child that
  // shares the views.
  check(u, "store through the rx view", fork_child(u, kWriteRx, rx + 16), kSigsegv | kCoreBit);
  // A forked child writing through the shared view: the parent sees it.
  check(u, "child writes the rw view", fork_child(u, kWriteShared, rw + 24), 0);
  check(u, "parent sees the child's store", static_cast<int64_t>(u.load64(rx + 24)), 0xc0ffee);

  // Past the end of the file: a mapping may be longer, but touching beyond is SIGBUS.
  const uint64_t longer = map(u, 4 * kPage, kProtRead, kMapShared, fd);
  check(u, "inside the file", static_cast<int64_t>(u.load64(longer + 24)), 0xc0ffee);
  check(u, "read past the end", fork_child(u, kReadPastEnd, longer + 2 * kPage), kSigbus | kCoreBit);
  // Growing the file makes that page reachable (and zero).
  check(u, "ftruncate to 3 pages", u.syscall(snr::kFtruncate, 3, 3 * kPage), 0);
  check(u, "grown page reads zero", static_cast<int64_t>(u.load64(longer + 2 * kPage)), 0);
  // Shrinking below pages a mapping reaches is refused; within the kept pages it works.
  check(u, "shrink below mapped pages", u.syscall(snr::kFtruncate, 3, kPage), -EBUSY);
  check(u, "shrink inside the last page", u.syscall(snr::kFtruncate, 3, 2 * kPage + 100), 0);

  // MADV_DONTNEED on a shared view unmaps only: the data stays in the file.
  check(u, "madvise dontneed shared", u.syscall(snr::kMadvise, rw, 2 * kPage, kMadvDontneed), 0);
  check(u, "shared data survives", static_cast<int64_t>(u.load64(rw + 24)), 0xc0ffee);

  // MAP_PRIVATE of the memfd is a private copy: stores stay private.
  const uint64_t priv = map(u, kPage, kProtRead | kProtWrite, kMapPrivate, fd);
  check(u, "private copy has the data", static_cast<int64_t>(u.load64(priv + 24)), 0xc0ffee);
  u.store64(priv + 24, 7);
  check(u, "private store not in the file", static_cast<int64_t>(u.load64(rx + 24)), 0xc0ffee);

  // Unmapping everything lets the shrink through; the file then frees its pages.
  check(u, "munmap rx", u.syscall(snr::kMunmap, rx, 2 * kPage), 0);
  check(u, "munmap rw", u.syscall(snr::kMunmap, rw, 2 * kPage), 0);
  check(u, "munmap longer", u.syscall(snr::kMunmap, longer, 4 * kPage), 0);
  check(u, "munmap private", u.syscall(snr::kMunmap, priv, kPage), 0);
  check(u, "shrink unmapped file", u.syscall(snr::kFtruncate, 3, 0), 0);
  check(u, "size 0", u.syscall(snr::kLseek, 3, 0, 2), 0);

  // Permissions: a read-only descriptor cannot be mapped shared and writable, nor made so.
  put(u, kName, "/tmp/shared");
  check(u, "create /tmp/shared", u.syscall(snr::kOpen, kName, kOCreat | kORdwr, 0644), 4);
  check(u, "size it", u.syscall(snr::kFtruncate, 4, kPage), 0);
  check(u, "open read-only", u.syscall(snr::kOpen, kName, 0, 0), 5);
  check(u, "shared writable map of a read-only fd",
        u.syscall(snr::kMmap, 0, kPage, kProtRead | kProtWrite, kMapShared, 5, 0), -EACCES);
  const uint64_t ro = map(u, kPage, kProtRead, kMapShared, 5);
  check(u, "mprotect it writable", u.syscall(snr::kMprotect, ro, kPage, kProtRead | kProtWrite), -EACCES);
  check(u, "private writable map of a read-only fd is fine",
        u.syscall(snr::kMmap, ro, kPage, kProtRead | kProtWrite, kMapPrivate | kMapFixed, 5, 0), static_cast<int64_t>(ro));
  // A tmpfs file shares its pages too (the JIT's fallback when memfd_create is missing).
  const uint64_t tmp_view = map(u, kPage, kProtRead | kProtWrite, kMapShared, 4);
  u.store64(tmp_view, 0x5eed);
  check(u, "pread the tmpfs file", u.syscall(snr::kPread, 5, kBuf, 8, 0), 8);
  check(u, "tmpfs read sees the mapping's store", static_cast<int64_t>(u.load64(kBuf)), 0x5eed);
  check(u, "munmap", u.syscall(snr::kMunmap, ro, kPage), 0);
  check(u, "munmap", u.syscall(snr::kMunmap, tmp_view, kPage), 0);
  for (uint64_t f = 3; f <= 5; ++f) check(u, "close", u.syscall(snr::kClose, f), 0);

  // A sparse file: a page 1 GiB in (a four-level page index), a hole before it, a mapping of it.
  const int64_t sparse = memfd(u, "sparse", 0);
  check(u, "memfd", sparse, 3);
  constexpr uint64_t kFar = 1ull << 30;
  put(u, kBuf, "far away");
  check(u, "pwrite 1 GiB in", u.syscall(snr::kPwrite, 3, kBuf, 8, kFar + 16), 8);
  check(u, "size", u.syscall(snr::kLseek, 3, 0, 2), static_cast<int64_t>(kFar + 24));
  check(u, "pread the hole", u.syscall(snr::kPread, 3, kBuf, 8, kFar / 2), 8);
  check(u, "hole reads zeros", static_cast<int64_t>(u.load64(kBuf)), 0);
  const uint64_t far_view = map(u, kPage, kProtRead, kMapShared, sparse, kFar);
  check(u, "the mapping at 1 GiB sees it", get(u, far_view + 16, 8) == "far away", 1);
  check(u, "munmap", u.syscall(snr::kMunmap, far_view, kPage), 0);
  check(u, "shrink to the hole", u.syscall(snr::kFtruncate, 3, kFar / 2), 0);
  check(u, "regrow", u.syscall(snr::kFtruncate, 3, kFar + kPage), 0);
  check(u, "pread after regrow", u.syscall(snr::kPread, 3, kBuf, 8, kFar + 16), 8);
  check(u, "freed page reads zeros", static_cast<int64_t>(u.load64(kBuf)), 0);
  check(u, "close", u.syscall(snr::kClose, 3), 0);

  // Seals (fcntl(2), memfd_create(2)).
  check(u, "memfd without MFD_ALLOW_SEALING", memfd(u, "sealed", 0), 3);
  check(u, "starts with F_SEAL_SEAL", u.syscall(snr::kFcntl, 3, kGetSeals), kSealSeal);
  check(u, "so no seal can be added", u.syscall(snr::kFcntl, 3, kAddSeals, kSealShrink), -EPERM);
  check(u, "close", u.syscall(snr::kClose, 3), 0);
  check(u, "memfd with MFD_ALLOW_SEALING", memfd(u, "sealable", kMfdAllowSealing), 3);
  check(u, "no seals yet", u.syscall(snr::kFcntl, 3, kGetSeals), 0);
  check(u, "ftruncate", u.syscall(snr::kFtruncate, 3, 2 * kPage), 0);
  const uint64_t writable = map(u, 2 * kPage, kProtRead | kProtWrite, kMapShared, 3);
  check(u, "F_SEAL_WRITE with a writable shared mapping", u.syscall(snr::kFcntl, 3, kAddSeals, kSealWrite), -EBUSY);
  check(u, "an unknown seal", u.syscall(snr::kFcntl, 3, kAddSeals, 0x40), -EINVAL);
  check(u, "F_SEAL_SHRINK|F_SEAL_GROW", u.syscall(snr::kFcntl, 3, kAddSeals, kSealShrink | kSealGrow), 0);
  check(u, "shrink when sealed", u.syscall(snr::kFtruncate, 3, kPage), -EPERM);
  check(u, "grow when sealed", u.syscall(snr::kFtruncate, 3, 3 * kPage), -EPERM);
  check(u, "same size is fine", u.syscall(snr::kFtruncate, 3, 2 * kPage), 0);
  put(u, kBuf, "0123456789");
  check(u, "write past the end when sealed", u.syscall(snr::kPwrite, 3, kBuf, 8, 2 * kPage - 4), 4);
  check(u, "write at the end when sealed", u.syscall(snr::kPwrite, 3, kBuf, 8, 2 * kPage), -EPERM);
  check(u, "write inside", u.syscall(snr::kPwrite, 3, kBuf, 8, 0), 8);
  // Splitting the writable mapping and unmapping one half keeps it counted; a read-only view
  // of a descriptor open for writing still may become writable (Linux's VM_MAYWRITE), so it
  // counts too; both halves gone lets F_SEAL_WRITE through.
  check(u, "munmap half", u.syscall(snr::kMunmap, writable, kPage), 0);
  check(u, "still a writable mapping", u.syscall(snr::kFcntl, 3, kAddSeals, kSealWrite), -EBUSY);
  check(u, "mprotect the rest read-only", u.syscall(snr::kMprotect, writable + kPage, kPage, kProtRead), 0);
  check(u, "a read-only view that may write", u.syscall(snr::kFcntl, 3, kAddSeals, kSealWrite), -EBUSY);
  check(u, "fork shares it", fork_child(u, kWriteRx, writable + kPage), kSigsegv | kCoreBit);
  check(u, "still counted after the child's exit", u.syscall(snr::kFcntl, 3, kAddSeals, kSealWrite), -EBUSY);
  check(u, "munmap the rest", u.syscall(snr::kMunmap, writable + kPage, kPage), 0);
  check(u, "F_SEAL_WRITE", u.syscall(snr::kFcntl, 3, kAddSeals, kSealWrite), 0);
  const uint64_t read_only = map(u, kPage, kProtRead, kMapShared, 3);
  check(u, "a read-only view after the seal cannot become writable",
        u.syscall(snr::kMprotect, read_only, kPage, kProtRead | kProtWrite), -EACCES);
  check(u, "write when write-sealed", u.syscall(snr::kPwrite, 3, kBuf, 8, 0), -EPERM);
  check(u, "shared writable map when write-sealed",
        u.syscall(snr::kMmap, 0, kPage, kProtRead | kProtWrite, kMapShared, 3, 0), -EPERM);
  const uint64_t copy = map(u, kPage, kProtRead | kProtWrite, kMapPrivate, 3);
  check(u, "a private writable copy is fine", get(u, copy, 8) == "01234567", 1);
  check(u, "F_SEAL_SEAL", u.syscall(snr::kFcntl, 3, kAddSeals, kSealSeal), 0);
  check(u, "nothing more", u.syscall(snr::kFcntl, 3, kAddSeals, kSealFutureWrite), -EPERM);
  check(u, "the seals", u.syscall(snr::kFcntl, 3, kGetSeals), kSealSeal | kSealShrink | kSealGrow | kSealWrite);
  check(u, "munmap", u.syscall(snr::kMunmap, read_only, kPage), 0);
  check(u, "munmap", u.syscall(snr::kMunmap, copy, kPage), 0);
  check(u, "close", u.syscall(snr::kClose, 3), 0);
  check(u, "memfd for F_SEAL_FUTURE_WRITE", memfd(u, "future", kMfdAllowSealing), 3);
  const uint64_t before = map(u, kPage, kProtRead | kProtWrite, kMapShared, 3);
  check(u, "F_SEAL_FUTURE_WRITE with a writable mapping", u.syscall(snr::kFcntl, 3, kAddSeals, kSealFutureWrite), 0);
  check(u, "write() refused", u.syscall(snr::kPwrite, 3, kBuf, 8, 0), -EPERM);
  check(u, "new writable mapping refused",
        u.syscall(snr::kMmap, 0, kPage, kProtRead | kProtWrite, kMapShared, 3, 0), -EPERM);
  check(u, "close", u.syscall(snr::kClose, 3), 0);
  check(u, "munmap", u.syscall(snr::kMunmap, before, kPage), 0);
  // Other files: tmpfs files are born sealed against sealing; others have no seals at all.
  put(u, kName, "/tmp/seal");
  check(u, "create /tmp/seal", u.syscall(snr::kOpen, kName, kOCreat | kORdwr, 0644), 3);
  check(u, "tmpfs file seals", u.syscall(snr::kFcntl, 3, kGetSeals), kSealSeal);
  check(u, "close", u.syscall(snr::kClose, 3), 0);
  check(u, "open it read-only", u.syscall(snr::kOpen, kName, 0, 0), 3);
  check(u, "F_ADD_SEALS needs write access", u.syscall(snr::kFcntl, 3, kAddSeals, kSealGrow), -EPERM);
  check(u, "close", u.syscall(snr::kClose, 3), 0);
  put(u, kName, "/dev/null");
  check(u, "open /dev/null", u.syscall(snr::kOpen, kName, kORdwr, 0), 3);
  check(u, "F_GET_SEALS of a device", u.syscall(snr::kFcntl, 3, kGetSeals), -EINVAL);
  check(u, "close", u.syscall(snr::kClose, 3), 0);

  // A mapping outlives its descriptor (the object is held by the mapping).
  const int64_t fd2 = memfd(u, "kept", 0);
  check(u, "memfd", fd2, 3);
  check(u, "ftruncate", u.syscall(snr::kFtruncate, 3, kPage), 0);
  const uint64_t kept = map(u, kPage, kProtRead | kProtWrite, kMapShared, fd2);
  check(u, "close with a mapping", u.syscall(snr::kClose, 3), 0);
  u.store64(kept + 8, 99);
  check(u, "the mapping still works", static_cast<int64_t>(u.load64(kept + 8)), 99);
  check(u, "munmap the last holder", u.syscall(snr::kMunmap, kept, kPage), 0);

  // MAP_SHARED anonymous memory is shared with a forked child; MAP_PRIVATE is copied.
  const uint64_t shared_anon = map(u, kPage, kProtRead | kProtWrite, kMapShared | kMapAnonymous, -1);
  check(u, "child writes shared anonymous", fork_child(u, kWriteShared, shared_anon + 32), 0);
  check(u, "parent sees it", static_cast<int64_t>(u.load64(shared_anon + 32)), 0xc0ffee);
  const uint64_t private_anon = map(u, 2 * kPage, kProtRead | kProtWrite, kMapPrivate | kMapAnonymous, -1);
  u.store64(private_anon, 5);
  check(u, "child writes private anonymous", fork_child(u, kWriteShared, private_anon), 0);
  check(u, "parent keeps its copy", static_cast<int64_t>(u.load64(private_anon)), 5);

  // MADV_DONTNEED on private anonymous memory: the next touch reads zeros.
  u.store64(private_anon + kPage, 6);
  check(u, "madvise dontneed", u.syscall(snr::kMadvise, private_anon, 2 * kPage, kMadvDontneed), 0);
  check(u, "zero after dontneed", static_cast<int64_t>(u.load64(private_anon)), 0);
  check(u, "second page zero too", static_cast<int64_t>(u.load64(private_anon + kPage)), 0);
  check(u, "madvise unknown advice", u.syscall(snr::kMadvise, private_anon, kPage, 77), -EINVAL);
  check(u, "madvise MADV_WIPEONFORK (refused)", u.syscall(snr::kMadvise, private_anon, kPage, 18), -EINVAL);
  check(u, "madvise unaligned", u.syscall(snr::kMadvise, private_anon + 1, kPage, kMadvDontneed), -EINVAL);
  check(u, "madvise length 0", u.syscall(snr::kMadvise, private_anon, 0, kMadvDontneed), 0);
  check(u, "madvise unmapped", u.syscall(snr::kMadvise, kUnmapped, kPage, kMadvNormal), -ENOMEM);
  check(u, "madvise normal", u.syscall(snr::kMadvise, private_anon, 2 * kPage, kMadvNormal), 0);
  check(u, "munmap", u.syscall(snr::kMunmap, private_anon, 2 * kPage), 0);
  check(u, "munmap", u.syscall(snr::kMunmap, shared_anon, kPage), 0);
  // Over a hole: ENOMEM, but the mapped parts are still dropped (Linux's madvise_walk_vmas).
  const uint64_t holed = map(u, 3 * kPage, kProtRead | kProtWrite, kMapPrivate | kMapAnonymous, -1);
  u.store64(holed, 8);
  u.store64(holed + 2 * kPage, 9);
  check(u, "punch the hole", u.syscall(snr::kMunmap, holed + kPage, kPage), 0);
  check(u, "madvise dontneed over a hole", u.syscall(snr::kMadvise, holed, 3 * kPage, kMadvDontneed), -ENOMEM);
  check(u, "first part dropped", static_cast<int64_t>(u.load64(holed)), 0);
  check(u, "last part dropped", static_cast<int64_t>(u.load64(holed + 2 * kPage)), 0);
  check(u, "munmap", u.syscall(snr::kMunmap, holed, 3 * kPage), 0);
  exit_group(u, 0);
}

// Two processes fault the same fresh pages of one memfd in at the same time, each through its
// own address space, and each writes its mark into every page. Both marks must be in every
// page: were two page frames made for one index (no lock shared by the two address spaces),
// one process's marks would land in a frame the other never sees.
constexpr uint64_t kRacePages = 8;
constexpr uint64_t kRaceView = kDataBase + 0x3900;  // the mapping's address, for the child

void race_marks(User& u, uint64_t view, uint64_t slot) {
  for (uint64_t p = 0; p < kRacePages; ++p) u.store64(view + p * kPage + slot * 8, 0xa0 + slot);
}

void race_child(User& u) {
  race_marks(u, u.load64(kRaceView), 1);
  exit_group(u, 0);
}
const uint64_t kRaceChild = register_entry("test.shm.race_child", race_child);

void shm_race(User& u) {
  const int64_t fd = memfd(u, "race", 0);
  check(u, "memfd", fd, 3);
  check(u, "ftruncate", u.syscall(snr::kFtruncate, 3, kRacePages * kPage), 0);
  const uint64_t view = map(u, kRacePages * kPage, kProtRead | kProtWrite, kMapShared, fd);
  u.store64(kRaceView, view);
  const int64_t pid = u.syscall_at(kRaceChild, snr::kFork);
  if (pid <= 0) u.fail("fork: %lld", static_cast<long long>(pid));
  race_marks(u, view, 0);
  check(u, "wait4", u.syscall(snr::kWait4, static_cast<uint64_t>(pid), kBuf, 0, 0), pid);
  for (uint64_t p = 0; p < kRacePages; ++p) {
    check(u, "parent's mark", static_cast<int64_t>(u.load64(view + p * kPage)), 0xa0);
    check(u, "child's mark", static_cast<int64_t>(u.load64(view + p * kPage + 8)), 0xa1);
  }
  // And the file's own read path agrees.
  check(u, "pread the last page", u.syscall(snr::kPread, 3, kBuf, 16, (kRacePages - 1) * kPage), 16);
  check(u, "file has both marks", u.load64(kBuf) == 0xa0 && u.load64(kBuf + 8) == 0xa1, 1);
  exit_group(u, 0);
}

// A shared futex on a memfd is keyed by (object, offset): a child that maps the file at an
// address of its own and waits there is woken by the parent's wake through its own view. Were
// the keys addresses, the child would sleep forever (the run fails as a hang).
constexpr uint64_t kFutexFd = kDataBase + 0x3a00;

void futex_child(User& u) {
  const uint64_t fd = u.load64(kFutexFd);
  const uint64_t view = map(u, kPage, kProtRead | kProtWrite, kMapShared, static_cast<int64_t>(fd));
  while (u.load32(view + 64) == 0) futex_wait(u, view + 64, 0, false);
  exit_group(u, 0);
}
const uint64_t kFutexChild = register_entry("test.shm.futex_child", futex_child);

void shm_futex(User& u) {
  const int64_t fd = memfd(u, "futex", 0);
  check(u, "memfd", fd, 3);
  check(u, "ftruncate", u.syscall(snr::kFtruncate, 3, kPage), 0);
  const uint64_t first = map(u, kPage, kProtRead, kMapShared, fd);  // a view the child does not use
  const uint64_t view = map(u, kPage, kProtRead | kProtWrite, kMapShared, fd);
  u.store64(kFutexFd, static_cast<uint64_t>(fd));
  const int64_t pid = u.syscall_at(kFutexChild, snr::kFork);
  if (pid <= 0) u.fail("fork: %lld", static_cast<long long>(pid));
  yield(u);
  u.store32(view + 64, 1);
  futex_wake(u, first + 64, 1, false);  // through the read-only view: the same key
  check(u, "wait4", u.syscall(snr::kWait4, static_cast<uint64_t>(pid), kBuf, 0, 0), pid);
  check(u, "child exited 0", u.load32(kBuf), 0);
  exit_group(u, 0);
}

const char* any(uint32_t, uint32_t) { return nullptr; }

struct Registrar {
  Registrar() {
    register_scenario({"test-shm-table", "memfd, shared file mappings, MADV_DONTNEED: semantics",
                       register_entry("test.shm.table", shm_table), any});
    register_scenario({"test-shm-race", "two processes fault one memfd's pages in at once",
                       register_entry("test.shm.race", shm_race), any});
    register_scenario({"test-shm-futex", "a shared futex on a memfd across processes and addresses",
                       register_entry("test.shm.futex", shm_futex), any});
  }
} const kRegistrar;

void run_scenario(const char* name, std::initializer_list<uint32_t> cpu_counts, uint64_t seeds) {
  for (uint32_t cpus : cpu_counts) {
    for (uint64_t seed = 1; seed <= seeds; ++seed) {
      RunSpec spec;
      spec.scenario = name;
      spec.cpus = cpus;
      spec.seed = seed;
      spec.strategy.kind = StrategyKind::Random;
      const RunResult r = run_one(spec);
      EXPECT_EQ(r.outcome, Outcome::Finished) << name << ", " << cpus << " CPUs, seed " << seed << ": " << r.message;
    }
  }
}

TEST(SharedMemory, TableMatchesLinux) { run_scenario("test-shm-table", {1u, 2u, 4u}, 4); }

TEST(SharedMemory, TwoAddressSpacesFaultOneObject) { run_scenario("test-shm-race", {2u, 4u}, 200); }

TEST(SharedMemory, SharedFutexAcrossViews) { run_scenario("test-shm-futex", {1u, 2u, 4u}, 50); }

}  // namespace
}  // namespace sim
