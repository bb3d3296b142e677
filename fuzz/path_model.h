// The path_walk oracle: a model of Linux path resolution (path_resolution(7), fs/namei.c's
// order of checks) over a small tree of directories, files and symbolic links, and an
// interpreter that runs a program of path operations (stat, open, mkdir, symlink, unlink,
// rmdir, rename, readlink, chdir, getcwd) against a real kernel and checks every answer against
// the model: the errno, and on success the object reached (its type, its size, and one inode
// number per model object, both ways).
//
// The same interpreter runs two ways (template over an executor):
//   - in the path_walk fuzz target, against tandem on the simulator (fuzz/path_walk.cpp);
//   - in tests/unit/path_model_test.cpp, against the Linux the tests run on, in a scratch
//     directory, which is how the model itself is checked (only relative paths there; an
//     operation whose walk leaves the scratch directory is not compared).
//
// Everything lives in fixed-size static storage: the simulator may abandon a user thread's
// fiber at any scheduling point, so nothing may be owned by its stack.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstring>

namespace pathwalk {

constexpr uint32_t kPathMax = 4096;  // PATH_MAX, the terminating NUL included
constexpr uint32_t kNameMax = 255;
constexpr uint32_t kMaxLinks = 40;   // MAXSYMLINKS
constexpr uint32_t kMaxNodes = 96;
constexpr uint32_t kTargetMax = 1024;
constexpr uint32_t kMaxOps = 24;
constexpr uint32_t kSlots = 4;
constexpr uint32_t kPathBuffer = kPathMax + 64;

// Linux's numbers (the kernel under test answers with them too).
namespace err {
constexpr int kENOENT = 2, kEBADF = 9, kEEXIST = 17, kEXDEV = 18, kENOTDIR = 20, kEISDIR = 21, kEINVAL = 22,
              kERANGE = 34, kENAMETOOLONG = 36, kENOTEMPTY = 39, kELOOP = 40, kEBUSY = 16;
}
namespace sys {
constexpr uint64_t kClose = 3, kGetcwd = 79, kChdir = 80, kFchdir = 81, kOpenat = 257, kMkdirat = 258,
                   kNewfstatat = 262, kUnlinkat = 263, kRenameat = 264, kSymlinkat = 266, kReadlinkat = 267,
                   kExitGroup = 231;
}
constexpr int64_t kAtFdcwd = -100;
constexpr uint64_t kAtSymlinkNofollow = 0x100, kAtRemovedir = 0x200, kAtEmptyPath = 0x1000;
constexpr uint64_t kOWronly = 1, kORdwr = 2, kOCreat = 0100, kOExcl = 0200, kODirectory = 0200000,
                   kONofollow = 0400000, kOCloexec = 02000000;

enum class Kind : uint8_t { Free, Dir, File, Link, Opaque };

struct Node {
  Kind kind = Kind::Free;
  bool deleted = false;
  uint8_t fs = 0;        // which file system (a rename across two is EXDEV)
  int16_t parent = -1;   // for "..", getcwd and rename's ancestry checks; kept after deletion
  uint16_t name_length = 0;
  uint16_t target_length = 0;
  uint64_t dev = 0, ino = 0;  // the kernel's device and inode numbers, learned at the first stat
  char name[kNameMax + 1];
  char target[kTargetMax];
};

// Fixed nodes: the root, its tmp (a second file system), the work directory /tmp/w, and the
// other mount points, whose insides the model does not know.
constexpr int kRoot = 0, kTmp = 1, kWork = 2;

// ---- the program ------------------------------------------------------------------------------

enum class OpKind : uint8_t { Stat, Open, Mkdir, Symlink, Unlink, Rmdir, Rename, Readlink, Chdir, Fchdir, Getcwd, Close, Count };

struct PathArg {
  char text[kPathBuffer];
  uint32_t length = 0;  // without the NUL
};

struct Op {
  OpKind kind = OpKind::Stat;
  uint8_t dirfd = 0;   // 0: AT_FDCWD; 1..4: slot - 1 (an empty slot is AT_FDCWD)
  uint8_t dirfd2 = 0;  // rename's second
  uint8_t slot = 0;    // open: keep the descriptor in slot-1 (0: close it)
  uint64_t flags = 0;
  uint32_t size = 0;   // readlink's and getcwd's buffer size
  PathArg path, path2;
};

struct Program {
  Op ops[kMaxOps];
  uint32_t count = 0;
};

// Name pieces a path is built from: short names that collide, the dots, an empty component
// (a doubled slash), names at and past NAME_MAX, odd bytes, and the names of the tree's spine.
inline const char* piece(uint8_t index, uint32_t* length) {
  static char long255[kNameMax + 1], long256[kNameMax + 2];
  if (long255[0] == 0) {
    std::memset(long255, 'n', kNameMax);
    std::memset(long256, 'o', kNameMax + 1);
  }
  static const char* const kPieces[] = {"a", "b", "c", "d", "l", "m", ".", "..", "", "f",
                                        "\xff\x01 x", "w", "tmp", "dev", nullptr, nullptr};
  index %= 16;
  const char* p = index == 14 ? long255 : index == 15 ? long256 : kPieces[index];
  *length = static_cast<uint32_t>(std::strlen(p));
  return p;
}

// Decodes a path: a spec byte (bits 0-2: components - 1 (or none when bit 7 of the next...),
// bit 3 absolute, bit 4 "/tmp/w/" prefix, bit 5 trailing slash, bit 6 empty path, bit 7 padded
// to exactly PATH_MAX - 1 or PATH_MAX bytes with "./"), then a byte per component.
template <typename Input>
void take_path(Input& in, PathArg& out) {
  const uint8_t spec = in.take_u8();
  uint32_t n = 0;
  auto put = [&](const char* s, uint32_t length) {
    if (n + length >= kPathBuffer) return;
    std::memcpy(out.text + n, s, length);
    n += length;
  };
  if ((spec & 0x40) == 0) {
    if (spec & 0x08) put("/", 1);
    if (spec & 0x10) put("/tmp/w/", 7);
    if (spec & 0x80) {
      // Padding first: "./" repeated, so the walk is the same as without it.
      const uint32_t want = (in.take_u8() & 1) ? kPathMax : kPathMax - 1;
      const uint32_t components = 1 + (spec & 7);
      uint32_t rest = 0;
      uint8_t bytes[8];
      for (uint32_t i = 0; i < components; ++i) {
        bytes[i] = in.take_u8();
        uint32_t length;
        piece(bytes[i], &length);
        rest += length + 1;
      }
      while (n + rest + 2 <= want) put("./", 2);
      while (n + rest < want) put("/", 1);
      for (uint32_t i = 0; i < components; ++i) {
        uint32_t length;
        const char* p = piece(bytes[i], &length);
        put(p, length);
        if (i + 1 < components) put("/", 1);
      }
      if (spec & 0x20) put("/", 1);
    } else {
      const uint32_t components = 1 + (spec & 7);
      for (uint32_t i = 0; i < components; ++i) {
        uint32_t length;
        const char* p = piece(in.take_u8(), &length);
        put(p, length);
        if (i + 1 < components || (spec & 0x20)) put("/", 1);
      }
    }
  }
  out.text[n] = 0;
  out.length = n;
}

template <typename Input>
void decode(Input& in, Program& program) {
  program.count = 0;
  while (!in.empty() && program.count < kMaxOps) {
    Op& op = program.ops[program.count++];
    const uint8_t sel = in.take_u8();
    op.kind = static_cast<OpKind>(sel % static_cast<uint8_t>(OpKind::Count));
    const uint8_t b = in.take_u8();
    op.dirfd = (b & 7) <= 4 ? (b & 7) : 0;
    op.dirfd2 = ((b >> 3) & 7) <= 4 ? ((b >> 3) & 7) : 0;
    op.slot = (b >> 6) & 3;  // 0 closes; slots 1-3 (slot 4 is reached through dirfd only)
    const uint8_t f = in.take_u8();
    op.flags = 0;
    op.size = 0;
    switch (op.kind) {
      case OpKind::Stat:
        op.flags = ((f & 1) ? kAtSymlinkNofollow : 0) | ((f & 2) ? kAtEmptyPath : 0);
        break;
      case OpKind::Open: {
        static constexpr uint64_t kAccess[] = {0, kOWronly, kORdwr, 0};
        op.flags = kAccess[f & 3] | ((f & 4) ? kONofollow : 0);
        if (f & 8) {
          op.flags |= kOCreat | ((f & 16) ? kOExcl : 0);
        } else if (f & 16) {
          op.flags |= kODirectory;
        }
        break;
      }
      case OpKind::Unlink:
        op.flags = 0;
        break;
      case OpKind::Readlink:
      case OpKind::Getcwd: {
        static constexpr uint32_t kSizes[] = {4096, 1, 7, 0, 4096, 4096, 2, 4096};
        op.size = kSizes[f & 7];
        break;
      }
      default:
        break;
    }
    op.path.length = 0;
    op.path.text[0] = 0;
    op.path2.length = 0;
    op.path2.text[0] = 0;
    if (op.kind != OpKind::Getcwd && op.kind != OpKind::Close && op.kind != OpKind::Fchdir) take_path(in, op.path);
    if (op.kind == OpKind::Symlink || op.kind == OpKind::Rename) take_path(in, op.path2);
  }
}

// A path for a message: quoted, and a long one as its length, start and end (two buffers:
// `which` 0 or 1).
inline const char* describe(const PathArg& p, int which) {
  static char text[2][400];
  if (p.length <= 160) {
    std::snprintf(text[which], sizeof text[which], "\"%s\"", p.text);
  } else {
    std::snprintf(text[which], sizeof text[which], "%u bytes: \"%.60s...%s\"", p.length, p.text,
                  p.text + p.length - 80);
  }
  return text[which];
}

// ---- the model --------------------------------------------------------------------------------

class Model {
 public:
  // host: the model runs beside Linux in a scratch root (see the top of the file).
  void reset(bool host) {
    for (Node& n : m_nodes) {
      n.kind = Kind::Free;
      n.deleted = false;
      n.ino = 0;
    }
    // tandem's root and its /tmp are two file systems with more mounts beside; the host's
    // scratch root is one file system holding only /tmp/w.
    add(kRoot, Kind::Dir, kRoot, "", uint8_t{0});
    add(kTmp, Kind::Dir, kRoot, "tmp", static_cast<uint8_t>(host ? 0 : 1));
    add(kWork, Kind::Dir, kTmp, "w", static_cast<uint8_t>(host ? 0 : 1));
    if (!host) {
      add(3, Kind::Opaque, kRoot, "dev", uint8_t{2});
      add(4, Kind::Opaque, kRoot, "proc", uint8_t{3});
      add(5, Kind::Opaque, kRoot, "sys", uint8_t{4});
    }
    m_cwd = kWork;
    for (int& s : m_slot) s = -1;
  }

  Node& node(int i) { return m_nodes[i]; }
  int cwd() const { return m_cwd; }
  void set_cwd(int n) { m_cwd = n; }
  int slot(uint32_t i) const { return m_slot[i]; }
  void set_slot(uint32_t i, int n) { m_slot[i] = n; }

  // An answer: a node, or an errno; `unknown` when the walk touched what the model does not
  // know (a mount point's inside; on the host, anything outside the scratch directory).
  struct Walk {
    int node = -1;
    int error = 0;
    bool unknown = false;
  };
  struct Parent {
    int dir = -1;
    int error = 0;
    bool unknown = false;
    enum Type : uint8_t { Normal, Dot, DotDot, Root } type = Normal;
    const char* name = nullptr;
    uint32_t length = 0;
    bool trailing_slash = false;
  };

  // Where a walk starts: the descriptor's node (-1: AT_FDCWD).
  int start_of(int slot_node) const { return slot_node >= 0 ? slot_node : m_cwd; }

  // Starts an operation: links followed count against one limit for all its walks.
  void begin() {
    m_links = 0;
    m_unknown = false;
  }
  // One more link followed (open's O_CREAT follows the last one itself); false past the limit.
  bool follow_link() { return ++m_links <= kMaxLinks; }

  // Full resolution (stat, open without O_CREAT, chdir).
  Walk resolve(int start, const char* path, uint32_t length, bool follow) {
    Walk w;
    if (length == 0) return error(w, err::kENOENT);
    if (length >= kPathMax) return error(w, err::kENAMETOOLONG);
    w = walk(start, path, length, follow);
    w.unknown |= m_unknown;
    return w;
  }

  // All but the last component (create, unlink, rmdir, rename, symlink's new name).
  Parent resolve_parent(int start, const char* path, uint32_t length) {
    Parent p;
    if (length == 0) return perror(p, err::kENOENT);
    if (length >= kPathMax) return perror(p, err::kENAMETOOLONG);
    uint32_t end = length;
    while (end > 0 && path[end - 1] == '/') --end;
    p.trailing_slash = end < length;
    if (end == 0) {  // "/" or "///"
      p.dir = kRoot;
      p.type = Parent::Root;
      note(kRoot);
      p.unknown = m_unknown;
      return p;
    }
    uint32_t begin = end;
    while (begin > 0 && path[begin - 1] != '/') --begin;
    p.name = path + begin;
    p.length = end - begin;
    p.type = (p.length == 1 && p.name[0] == '.') ? Parent::Dot
             : (p.length == 2 && p.name[0] == '.' && p.name[1] == '.') ? Parent::DotDot
                                                                         : Parent::Normal;
    Walk dir;
    if (begin == 0) {
      dir.node = start;
      if (kind(start) != Kind::Dir) return perror(p, kind(start) == Kind::Opaque ? 0 : err::kENOTDIR, kind(start) == Kind::Opaque);
    } else {
      // The prefix, with its slash: "a/b/" walks a and b and needs b to be a directory.
      dir = walk(start, path, begin, true);
      if (dir.error == 0 && !dir.unknown && kind(dir.node) != Kind::Dir && kind(dir.node) != Kind::Opaque)
        dir.error = err::kENOTDIR;
    }
    p.unknown = m_unknown || dir.unknown || (dir.error == 0 && kind(dir.node) == Kind::Opaque);
    if (dir.error != 0 || p.unknown) return perror(p, dir.error, p.unknown);
    p.dir = dir.node;
    note(p.dir);
    p.unknown |= m_unknown;
    return p;
  }

  // The entry `name` in `dir`, or -1.
  int lookup(int dir, const char* name, uint32_t length) const {
    for (uint32_t i = 0; i < kMaxNodes; ++i) {
      const Node& n = m_nodes[i];
      if (n.kind != Kind::Free && !n.deleted && n.parent == dir && static_cast<int>(i) != dir &&
          n.name_length == length && std::memcmp(n.name, name, length) == 0)
        return static_cast<int>(i);
    }
    return -1;
  }
  bool empty(int dir) const {
    for (uint32_t i = 0; i < kMaxNodes; ++i) {
      const Node& n = m_nodes[i];
      if (n.kind != Kind::Free && !n.deleted && n.parent == dir && static_cast<int>(i) != dir) return false;
    }
    return true;
  }
  // A new node, or -1 when the table is full.
  int create(int dir, Kind kind, const char* name, uint32_t length) {
    for (uint32_t i = 0; i < kMaxNodes; ++i) {
      if (m_nodes[i].kind == Kind::Free) {
        add(static_cast<int>(i), kind, dir, name, length, m_nodes[dir].fs);
        return static_cast<int>(i);
      }
    }
    return -1;
  }
  // `a` is `b` or above it.
  bool ancestor(int a, int b) const {
    for (int n = b, guard = 0; guard < static_cast<int>(kMaxNodes) + 2; ++guard) {
      if (n == a) return true;
      if (n == kRoot) return false;
      n = m_nodes[n].parent;
    }
    return false;
  }
  // The child of `top` on the way down to `below` (top must be a strict ancestor).
  int child_towards(int top, int below) const {
    int n = below;
    while (m_nodes[n].parent != top && n != kRoot) n = m_nodes[n].parent;
    return n;
  }
  Kind kind(int n) const { return m_nodes[n].kind; }
  // The node's absolute path (getcwd), or false if it or one above it is deleted.
  bool path_of(int n, char* out, uint32_t* length) const {
    int chain[kMaxNodes + 1];
    uint32_t depth = 0;
    for (int c = n; c != kRoot; c = m_nodes[c].parent) {
      if (m_nodes[c].deleted || depth > kMaxNodes) return false;
      chain[depth++] = c;
    }
    uint32_t at = 0;
    if (depth == 0) out[at++] = '/';
    while (depth > 0) {
      const Node& c = m_nodes[chain[--depth]];
      out[at++] = '/';
      std::memcpy(out + at, c.name, c.name_length);
      at += c.name_length;
    }
    out[at] = 0;
    *length = at;
    return true;
  }

 private:
  void add(int i, Kind kind, int parent, const char* name, uint32_t length, uint8_t fs) {
    Node& n = m_nodes[i];
    n.kind = kind;
    n.deleted = false;
    n.parent = static_cast<int16_t>(parent);
    n.fs = fs;
    n.dev = 0;
    n.ino = 0;
    n.name_length = static_cast<uint16_t>(length);
    std::memcpy(n.name, name, length);
    n.name[length] = 0;
    n.target_length = 0;
  }
  void add(int i, Kind kind, int parent, const char* name, uint8_t fs) {
    add(i, kind, parent, name, static_cast<uint32_t>(std::strlen(name)), fs);
  }
  static Walk error(Walk w, int e) {
    w.error = e;
    return w;
  }
  static Parent perror(Parent p, int e, bool unknown = false) {
    p.error = e;
    p.unknown |= unknown;
    return p;
  }
  // What is mounted inside tandem's root is not modelled.
  void note(int n) {
    if (m_nodes[n].kind == Kind::Opaque) m_unknown = true;
  }

  // Walks `path` (length > 0) from `start`, as link_path_walk does: every component but the
  // last must lead to a directory; symbolic links are followed except a last one when !follow
  // (a trailing slash makes the last one followed too). A link's body is walked the same way,
  // from the link's directory or the root, with the rest of the path after it.
  Walk walk(int start, const char* path, uint32_t length, bool follow) {
    Walk w;
    int current = path[0] == '/' ? kRoot : start;
    note(current);
    if (m_unknown) return unknown(w);
    if (kind(current) != Kind::Dir) return error(w, err::kENOTDIR);
    uint32_t position = 0;
    const bool trailing = path[length - 1] == '/';
    for (;;) {
      while (position < length && path[position] == '/') ++position;
      if (position >= length) break;
      uint32_t end = position;
      while (end < length && path[end] != '/') ++end;
      const char* name = path + position;
      const uint32_t name_length = end - position;
      uint32_t after = end;
      while (after < length && path[after] == '/') ++after;
      const bool last = after >= length;
      position = end;
      // Here `current` is a directory the model knows.
      if (name_length == 1 && name[0] == '.') {
        // stays
      } else if (name_length == 2 && name[0] == '.' && name[1] == '.') {
        current = m_nodes[current].parent;
      } else {
        if (m_nodes[current].deleted) return error(w, err::kENOENT);
        if (name_length > kNameMax) return error(w, err::kENAMETOOLONG);
        const int child = lookup(current, name, name_length);
        if (child < 0) return error(w, err::kENOENT);
        if (kind(child) == Kind::Link && (!last || follow || trailing)) {
          if (++m_links > kMaxLinks) return error(w, err::kELOOP);
          const Node& link = m_nodes[child];
          if (link.target_length == 0) return error(w, err::kENOENT);
          Walk inner = walk(current, link.target, link.target_length, true);
          if (inner.error != 0 || inner.unknown) return inner;
          current = inner.node;
        } else {
          current = child;
        }
      }
      note(current);
      if (m_unknown) return unknown(w);
      if (!last && kind(current) != Kind::Dir) return error(w, err::kENOTDIR);
    }
    if (trailing && kind(current) != Kind::Dir) return error(w, err::kENOTDIR);
    w.node = current;
    return w;
  }
  static Walk unknown(Walk w) {
    w.unknown = true;
    return w;
  }

  Node m_nodes[kMaxNodes];
  int m_cwd = kWork;
  int m_slot[kSlots] = {-1, -1, -1, -1};
  uint32_t m_links = 0;
  bool m_unknown = false;
};

// ---- the interpreter --------------------------------------------------------------------------

// Exec: int64_t call(nr, a0..a5); uint64_t put(which, const char*, uint32_t length) (the path
// NUL-terminated in user memory; which 0 or 1); uint64_t buffer() (kPathBuffer bytes the kernel
// may write); void get(addr, void*, length); [[noreturn]] fail(fmt, ...). Both kernels run the
// program in a real /tmp/w (tandem's, or the host's inside a chroot), so paths compare as they are.
template <typename Exec>
class Interpreter {
 public:
  Interpreter(Exec& exec, Model& model) : x(exec), m(model) {}

  void run(const Program& program) {
    for (uint32_t i = 0; i < program.count; ++i) {
      m_index = i;
      step(program.ops[i]);
    }
  }

 private:
  // Descriptor choice d: 1-3 name a kept descriptor's slot; 0, 4 and an empty slot AT_FDCWD.
  int64_t dirfd(uint8_t d, int* node) {
    if (d == 0 || d >= kSlots || m.slot(d) < 0) {
      *node = -1;
      return kAtFdcwd;
    }
    *node = m.slot(d);
    return m_fd[d];
  }

  void expect(const Op& op, int64_t got, int want, bool unknown, const char* what) {
    if (unknown || m_lost) return;
    const int64_t expected = want == 0 ? 0 : -want;
    if ((want == 0 && got < 0) || (want != 0 && got != expected))
      x.fail("op %u %s(%s%s%s): the kernel answers %lld, Linux's rules (the model) %s%d", m_index, what,
             describe(op.path, 0), op.path2.length ? ", " : "", op.path2.length ? describe(op.path2, 1) : "",
             static_cast<long long>(got), want == 0 ? "success" : "-", want);
  }

  // A successful stat of model node n: the same type, size and inode number as before.
  void check_stat(const Op& op, int n, uint64_t buffer) {
    if (m_lost) return;
    uint8_t st[144];
    x.get(buffer, st, sizeof st);
    uint64_t dev, ino, size;
    uint32_t mode;
    std::memcpy(&dev, st + 0, 8);
    std::memcpy(&ino, st + 8, 8);
    std::memcpy(&mode, st + 24, 4);
    std::memcpy(&size, st + 48, 8);
    Node& node = m.node(n);
    const uint32_t type = mode & 0170000;
    const uint32_t want = node.kind == Kind::Dir ? 0040000 : node.kind == Kind::File ? 0100000 : 0120000;
    if (type != want) x.fail("op %u stat(\"%.200s\"): mode %o, the model has %o", m_index, op.path.text, type, want);
    if (node.kind == Kind::Link && size != node.target_length)
      x.fail("op %u lstat(\"%.200s\"): size %llu, the link's target has %u bytes", m_index, op.path.text,
             static_cast<unsigned long long>(size), node.target_length);
    if (node.kind == Kind::File && size != 0)
      x.fail("op %u stat(\"%.200s\"): size %llu, files here are empty", m_index, op.path.text,
             static_cast<unsigned long long>(size));
    if (node.ino == 0) {
      for (uint32_t i = 0; i < kMaxNodes; ++i) {
        const Node& other = m.node(static_cast<int>(i));
        if (other.kind != Kind::Free && !other.deleted && other.dev == dev && other.ino == ino)
          x.fail("op %u stat(%s): inode %llu:%llu is already another object's", m_index, describe(op.path, 0),
                 static_cast<unsigned long long>(dev), static_cast<unsigned long long>(ino));
      }
      node.dev = dev;
      node.ino = ino;
    } else if (node.ino != ino || node.dev != dev) {
      x.fail("op %u stat(%s): inode %llu:%llu, earlier %llu:%llu for the same object", m_index, describe(op.path, 0),
             static_cast<unsigned long long>(dev), static_cast<unsigned long long>(ino),
             static_cast<unsigned long long>(node.dev), static_cast<unsigned long long>(node.ino));
    }
  }

  void step(const Op& op) {
    int start_node;
    const int64_t fd = dirfd(op.dirfd, &start_node);
    const int start = m.start_of(start_node);
    m.begin();
    switch (op.kind) {
      case OpKind::Stat: return stat(op, fd, start, start_node);
      case OpKind::Open: return open(op, fd, start, start_node);
      case OpKind::Mkdir: return mkdir(op, fd, start, start_node);
      case OpKind::Symlink: return symlink(op, fd, start, start_node);
      case OpKind::Unlink:
      case OpKind::Rmdir: return remove(op, fd, start, start_node, op.kind == OpKind::Rmdir);
      case OpKind::Rename: return rename(op, fd, start, start_node);
      case OpKind::Readlink: return readlink(op, fd, start, start_node);
      case OpKind::Chdir: {
        const uint64_t p = x.put(0, op.path.text, op.path.length);
        const int64_t r = x.call(sys::kChdir, p);
        Model::Walk w = m.resolve(m.cwd(), op.path.text, op.path.length, true);
        w.unknown |= relative_unknown(op.path, -1);
        if (w.error == 0 && !w.unknown && m.kind(w.node) != Kind::Dir) w.error = err::kENOTDIR;
        expect(op, r, w.error, w.unknown, "chdir");
        if (r == 0) adopt_cwd(w);
        return;
      }
      case OpKind::Fchdir: {
        if (start_node < 0) return;
        const int64_t r = x.call(sys::kFchdir, static_cast<uint64_t>(fd));
        Model::Walk w;
        w.node = start_node;
        w.unknown = m.kind(start_node) == Kind::Opaque;
        if (!w.unknown && m.kind(start_node) != Kind::Dir) w.error = err::kENOTDIR;
        expect(op, r, w.error, w.unknown, "fchdir");
        if (r == 0) adopt_cwd(w);
        return;
      }
      case OpKind::Getcwd: return getcwd(op);
      case OpKind::Close: {
        const uint32_t s = op.slot;
        if (m.slot(s) >= 0) {
          const int64_t r = x.call(sys::kClose, static_cast<uint64_t>(m_fd[s]));
          if (r != 0) x.fail("op %u close(%lld) of a kept descriptor: %lld", m_index, static_cast<long long>(m_fd[s]), static_cast<long long>(r));
          m.set_slot(s, -1);
        }
        return;
      }
      case OpKind::Count: return;
    }
  }

  void adopt_cwd(const Model::Walk& w) {
    // A change into what the model does not know ends the comparisons that depend on the cwd.
    if (w.unknown || w.error != 0) {
      m_cwd_unknown = true;
      return;
    }
    m.set_cwd(w.node);
    m_cwd_unknown = false;
  }

  // Whether a relative walk from the cwd is known.
  bool relative_unknown(const PathArg& p, int start_node) const {
    return m_cwd_unknown && start_node < 0 && !(p.length > 0 && p.text[0] == '/');
  }

  void stat(const Op& op, int64_t fd, int start, int start_node) {
    const uint64_t p = x.put(0, op.path.text, op.path.length);
    const uint64_t buffer = x.buffer();
    const int64_t r = x.call(sys::kNewfstatat, static_cast<uint64_t>(fd), p, buffer, op.flags);
    Model::Walk w;
    if (op.path.length == 0 && (op.flags & kAtEmptyPath)) {
      w.node = start;
      w.unknown = m.kind(start) == Kind::Opaque || (start_node < 0 && m_cwd_unknown);
    } else {
      w = m.resolve(start, op.path.text, op.path.length, (op.flags & kAtSymlinkNofollow) == 0);
      w.unknown |= relative_unknown(op.path, start_node);
    }
    expect(op, r, w.error, w.unknown, (op.flags & kAtSymlinkNofollow) ? "lstat" : "stat");
    if (r == 0 && !w.unknown) check_stat(op, w.node, buffer);
  }

  void open(const Op& op, int64_t fd, int start, int start_node) {
    const uint64_t p = x.put(0, op.path.text, op.path.length);
    const int64_t r = x.call(sys::kOpenat, static_cast<uint64_t>(fd), p, op.flags | kOCloexec, 0644);
    Model::Walk w = open_model(op, start, start_node);
    expect(op, r, w.error, w.unknown, "open");
    if (r < 0) return;
    if (w.unknown && (op.flags & kOCreat)) m_lost = true;
    const uint32_t s = op.slot;
    if (s == 0 || w.unknown) {
      x.call(sys::kClose, static_cast<uint64_t>(r));
      return;
    }
    if (m.slot(s) >= 0) x.call(sys::kClose, static_cast<uint64_t>(m_fd[s]));
    m.set_slot(s, w.node);
    m_fd[s] = r;
  }

  // open(2) as fs/namei.c's path_openat and do_open order their checks.
  Model::Walk open_model(const Op& op, int start, int start_node) {
    Model::Walk w;
    const bool creat = op.flags & kOCreat, excl = op.flags & kOExcl, nofollow = op.flags & kONofollow;
    const bool writes = (op.flags & 3) != 0;
    if (!creat) {
      w = m.resolve(start, op.path.text, op.path.length, !nofollow);
      w.unknown |= relative_unknown(op.path, start_node);
      if (w.error != 0 || w.unknown) return w;
      const Kind k = m.kind(w.node);
      if ((op.flags & kODirectory) && k != Kind::Dir) w.error = err::kENOTDIR;
      else if (k == Kind::Link) w.error = err::kELOOP;
      else if (k == Kind::Dir && writes) w.error = err::kEISDIR;
      return w;
    }
    // O_CREAT: the last component, following links to it (their bodies' last components too).
    int dir_start = start;
    const char* path = op.path.text;
    uint32_t length = op.path.length;
    bool unknown = relative_unknown(op.path, start_node);
    for (;;) {
      Model::Parent parent = m.resolve_parent(dir_start, path, length);
      w.unknown = unknown || parent.unknown;
      if (parent.error != 0 || w.unknown) {
        w.error = parent.error;
        return w;
      }
      if (parent.type != Model::Parent::Normal) {
        // ".", ".." or "/": a directory.
        w.error = excl ? err::kEEXIST : err::kEISDIR;
        return w;
      }
      if (parent.trailing_slash) {
        w.error = err::kEISDIR;
        return w;
      }
      if (parent.dir == kRoot && mount_point(parent)) {
        w.unknown = true;
        return w;
      }
      if (m.node(parent.dir).deleted) {
        w.error = err::kENOENT;
        return w;
      }
      if (parent.length > kNameMax) {
        w.error = err::kENAMETOOLONG;
        return w;
      }
      const int existing = m.lookup(parent.dir, parent.name, parent.length);
      if (existing < 0) {
        const int made = m.create(parent.dir, Kind::File, parent.name, parent.length);
        if (made < 0) {
          w.unknown = true;  // the model's table is full: the kernel made it, the model cannot follow
          m_lost = true;
          return w;
        }
        w.node = made;
        return w;
      }
      if (excl) {
        w.error = err::kEEXIST;
        return w;
      }
      if (m.kind(existing) == Kind::Link) {
        if (nofollow) {
          w.error = err::kELOOP;
          return w;
        }
        if (!m.follow_link()) {
          w.error = err::kELOOP;
          return w;
        }
        const Node& link = m.node(existing);
        if (link.target_length == 0) {
          w.error = err::kENOENT;
          return w;
        }
        dir_start = parent.dir;
        path = link.target;
        length = link.target_length;
        continue;
      }
      w.node = existing;
      if (m.kind(existing) == Kind::Dir) w.error = err::kEISDIR;
      return w;
    }
  }

  bool mount_point(const Model::Parent& p) const {
    // In the root, "tmp", "dev", "proc" and "sys" are mounts; what Linux answers for them
    // (EBUSY and friends) is not modelled.
    if (p.dir != kRoot) return false;
    static const char* const kMounts[] = {"tmp", "dev", "proc", "sys"};
    for (const char* name : kMounts)
      if (p.length == std::strlen(name) && std::memcmp(p.name, name, p.length) == 0) return true;
    return false;
  }

  // mkdir and symlink: filename_create.
  int create_model(const Model::Parent& parent, bool want_dir, bool* unknown) {
    *unknown = parent.unknown;
    if (parent.error != 0 || parent.unknown) return parent.error;
    if (parent.type != Model::Parent::Normal) return err::kEEXIST;
    if (mount_point(parent)) {
      *unknown = true;
      return 0;
    }
    if (m.node(parent.dir).deleted) return err::kENOENT;
    if (parent.length > kNameMax) return err::kENAMETOOLONG;
    if (m.lookup(parent.dir, parent.name, parent.length) >= 0) return err::kEEXIST;
    if (parent.trailing_slash && !want_dir) return err::kENOENT;
    return 0;
  }

  void mkdir(const Op& op, int64_t fd, int start, int start_node) {
    const uint64_t p = x.put(0, op.path.text, op.path.length);
    const int64_t r = x.call(sys::kMkdirat, static_cast<uint64_t>(fd), p, 0755);
    const Model::Parent parent = m.resolve_parent(start, op.path.text, op.path.length);
    bool unknown;
    const int e = create_model(parent, true, &unknown);
    unknown |= relative_unknown(op.path, start_node);
    expect(op, r, e, unknown, "mkdir");
    if (r == 0 && unknown) m_lost = true;
    if (r == 0 && !unknown && e == 0) made(m.create(parent.dir, Kind::Dir, parent.name, parent.length));
  }

  void symlink(const Op& op, int64_t fd, int start, int start_node) {
    // symlink(target = path2, name = path)
    const uint64_t target = x.put(1, op.path2.text, op.path2.length);
    const uint64_t p = x.put(0, op.path.text, op.path.length);
    const int64_t r = x.call(sys::kSymlinkat, target, static_cast<uint64_t>(fd), p);
    bool unknown = false;
    int e;
    Model::Parent parent;
    if (op.path2.length == 0) {
      e = err::kENOENT;
    } else if (op.path2.length >= kPathMax) {
      e = err::kENAMETOOLONG;
    } else {
      parent = m.resolve_parent(start, op.path.text, op.path.length);
      e = create_model(parent, false, &unknown);
      unknown |= relative_unknown(op.path, start_node);
      // A target the model cannot store.
      if (e == 0 && op.path2.length > kTargetMax) unknown = true;
    }
    expect(op, r, e, unknown, "symlink");
    if (r == 0 && unknown) m_lost = true;
    if (r == 0 && !unknown && e == 0) {
      const int n = m.create(parent.dir, Kind::Link, parent.name, parent.length);
      made(n);
      if (n >= 0) {
        Node& link = m.node(n);
        link.target_length = static_cast<uint16_t>(op.path2.length);
        std::memcpy(link.target, op.path2.text, op.path2.length);
      }
    }
  }

  void made(int n) {
    if (n < 0) m_lost = true;
  }

  void remove(const Op& op, int64_t fd, int start, int start_node, bool dir) {
    const uint64_t p = x.put(0, op.path.text, op.path.length);
    const int64_t r = x.call(sys::kUnlinkat, static_cast<uint64_t>(fd), p, dir ? kAtRemovedir : 0);
    const Model::Parent parent = m.resolve_parent(start, op.path.text, op.path.length);
    bool unknown = parent.unknown || relative_unknown(op.path, start_node);
    int e = parent.error;
    int victim = -1;
    if (e == 0 && !unknown) {
      if (parent.type != Model::Parent::Normal) {
        e = !dir ? err::kEISDIR : parent.type == Model::Parent::Dot ? err::kEINVAL
            : parent.type == Model::Parent::DotDot               ? err::kENOTEMPTY
                                                                  : err::kEBUSY;
      } else if (mount_point(parent)) {
        unknown = true;
      } else if (m.node(parent.dir).deleted) {
        e = err::kENOENT;
      } else if (parent.length > kNameMax) {
        e = err::kENAMETOOLONG;
      } else {
        victim = m.lookup(parent.dir, parent.name, parent.length);
        if (victim < 0) {
          e = err::kENOENT;
        } else if (!dir) {
          if (parent.trailing_slash) e = m.kind(victim) == Kind::Dir ? err::kEISDIR : err::kENOTDIR;
          else if (m.kind(victim) == Kind::Dir) e = err::kEISDIR;
        } else {
          if (m.kind(victim) != Kind::Dir) e = err::kENOTDIR;
          else if (victim == kRoot) e = err::kEBUSY;
          else if (!m.empty(victim)) e = err::kENOTEMPTY;
        }
      }
    }
    expect(op, r, e, unknown, dir ? "rmdir" : "unlink");
    if (r == 0 && unknown) m_lost = true;
    if (r == 0 && !unknown && e == 0) m.node(victim).deleted = true;
  }

  void rename(const Op& op, int64_t fd, int start, int start_node) {
    int start2_node;
    const int64_t fd2 = dirfd(op.dirfd2, &start2_node);
    const int start2 = m.start_of(start2_node);
    const uint64_t p = x.put(0, op.path.text, op.path.length);
    const uint64_t p2 = x.put(1, op.path2.text, op.path2.length);
    const int64_t r = x.call(sys::kRenameat, static_cast<uint64_t>(fd), p, static_cast<uint64_t>(fd2), p2);
    bool unknown = relative_unknown(op.path, start_node) ||
                   relative_unknown(op.path2, start2_node);
    int e = 0;
    int source = -1, target = -1;
    const Model::Parent from = m.resolve_parent(start, op.path.text, op.path.length);
    Model::Parent to;
    unknown |= from.unknown;
    if (!unknown) e = from.error;
    if (!unknown && e == 0) {
      to = m.resolve_parent(start2, op.path2.text, op.path2.length);
      unknown |= to.unknown;
      e = to.error;
    }
    if (!unknown && e == 0) e = rename_model(from, to, &source, &target, &unknown);
    expect(op, r, e, unknown, "rename");
    if (r == 0 && unknown) m_lost = true;
    if (r == 0 && !unknown && e == 0 && source != target) {
      if (target >= 0) m.node(target).deleted = true;
      Node& n = m.node(source);
      n.parent = static_cast<int16_t>(to.dir);
      n.name_length = static_cast<uint16_t>(to.length);
      std::memcpy(n.name, to.name, to.length);
      n.name[to.length] = 0;
    }
  }

  // do_renameat2 after both parent walks, then vfs_rename and tmpfs's own checks.
  int rename_model(const Model::Parent& from, const Model::Parent& to, int* source, int* target, bool* unknown) {
    if (m.node(from.dir).fs != m.node(to.dir).fs) return err::kEXDEV;
    if (from.type != Model::Parent::Normal || to.type != Model::Parent::Normal) return err::kEBUSY;
    if (mount_point(from) || mount_point(to)) {
      *unknown = true;
      return 0;
    }
    if (m.node(from.dir).deleted) return err::kENOENT;
    if (from.length > kNameMax) return err::kENAMETOOLONG;
    *source = m.lookup(from.dir, from.name, from.length);
    if (*source < 0) return err::kENOENT;
    if (m.node(to.dir).deleted) return err::kENOENT;
    if (to.length > kNameMax) return err::kENAMETOOLONG;
    *target = m.lookup(to.dir, to.name, to.length);
    const bool source_dir = m.kind(*source) == Kind::Dir;
    if (!source_dir && (from.trailing_slash || to.trailing_slash)) return err::kENOTDIR;
    // lock_rename's trap: the child of the upper parent on the way to the lower one.
    if (from.dir != to.dir) {
      if (m.ancestor(from.dir, to.dir) && m.child_towards(from.dir, to.dir) == *source) return err::kEINVAL;
      if (m.ancestor(to.dir, from.dir) && *target >= 0 && m.child_towards(to.dir, from.dir) == *target)
        return err::kENOTEMPTY;
    }
    if (*source == *target) return 0;
    if (*target >= 0) {
      const bool target_dir = m.kind(*target) == Kind::Dir;
      if (source_dir && !target_dir) return err::kENOTDIR;
      if (!source_dir && target_dir) return err::kEISDIR;
      if (target_dir && !m.empty(*target)) return err::kENOTEMPTY;
    }
    // A directory moved below itself is the trap above; at equal parents it cannot happen.
    return 0;
  }

  void readlink(const Op& op, int64_t fd, int start, int start_node) {
    const uint64_t p = x.put(0, op.path.text, op.path.length);
    const uint64_t buffer = x.buffer();
    const int64_t r = x.call(sys::kReadlinkat, static_cast<uint64_t>(fd), p, buffer, op.size);
    Model::Walk w;
    int e;
    if (op.size == 0) {
      e = err::kEINVAL;
    } else {
      w = m.resolve(start, op.path.text, op.path.length, false);
      w.unknown |= relative_unknown(op.path, start_node);
      e = w.error;
      if (e == 0 && !w.unknown && m.kind(w.node) != Kind::Link) e = err::kEINVAL;
    }
    if (op.path.length == 0 && op.size != 0) w.unknown = true;  // readlinkat's empty path: not modelled
    expect(op, r, e, w.unknown, "readlink");
    if (r >= 0 && !w.unknown && e == 0) {
      const Node& link = m.node(w.node);
      const uint32_t want = link.target_length < op.size ? link.target_length : op.size;
      if (static_cast<uint64_t>(r) != want)
        x.fail("op %u readlink(\"%.200s\", %u): %lld bytes, want %u", m_index, op.path.text, op.size,
               static_cast<long long>(r), want);
      char got[kTargetMax];
      x.get(buffer, got, want);
      if (std::memcmp(got, link.target, want) != 0)
        x.fail("op %u readlink(\"%.200s\"): the bytes differ from the link's target", m_index, op.path.text);
    }
  }

  void getcwd(const Op& op) {
    const uint64_t buffer = x.buffer();
    const int64_t r = x.call(sys::kGetcwd, buffer, op.size);
    if (m_cwd_unknown) return;
    char path[kPathBuffer];
    uint32_t length = 0;
    int e = 0;
    if (!m.path_of(m.cwd(), path, &length)) {
      e = err::kENOENT;
    } else if (length + 1 > op.size) {
      e = err::kERANGE;
    }
    expect(op, r, e, false, "getcwd");
    if (r > 0 && e == 0) {
      char got[kPathBuffer];
      x.get(buffer, got, length + 1);
      if (static_cast<uint64_t>(r) != length + 1 || std::memcmp(got, path, length + 1) != 0)
        x.fail("op %u getcwd: \"%.300s\" (%lld), want \"%.300s\"", m_index, got, static_cast<long long>(r), path);
    }
  }

  Exec& x;
  Model& m;
  uint32_t m_index = 0;
  int64_t m_fd[kSlots] = {};
  bool m_cwd_unknown = false;
  // The model lost track of the tree: its table is full, or an operation it could not judge
  // changed something. Nothing more is compared.
  bool m_lost = false;
};

}  // namespace pathwalk
