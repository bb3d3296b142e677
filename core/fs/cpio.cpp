#include "core/fs/cpio.h"

namespace tandem {

namespace {

constexpr usize kHeaderSize = 110;
constexpr usize kMaxPath = 255;

// Parses 8 hex digits; false on any other character.
bool parse_hex8(const u8* p, u32* out) {
  u32 value = 0;
  for (usize i = 0; i < 8; ++i) {
    const u8 c = p[i];
    u32 digit;
    if (c >= '0' && c <= '9') digit = c - '0';
    else if (c >= 'a' && c <= 'f') digit = c - 'a' + 10;
    else if (c >= 'A' && c <= 'F') digit = c - 'A' + 10;
    else return false;
    value = (value << 4) | digit;
  }
  *out = value;
  return true;
}

bool fail(CpioError* error, u64 offset, const char* reason) {
  if (error != nullptr) {
    error->offset = offset;
    error->reason = reason;
  }
  return false;
}

// Strips "./" and "/" prefixes so archive names and lookup paths compare the same way.
void strip_prefix(const char*& name, usize& length) {
  for (;;) {
    if (length >= 2 && name[0] == '.' && name[1] == '/') { name += 2; length -= 2; continue; }
    if (length >= 1 && name[0] == '/') { name += 1; length -= 1; continue; }
    if (length == 1 && name[0] == '.') { name += 1; length -= 1; continue; }
    break;
  }
}

}  // namespace

bool cpio_walk(const u8* data, usize size, CpioVisitor visit, void* context, CpioError* error) {
  if (data == nullptr) return fail(error, 0, "no archive");
  usize offset = 0;
  for (;;) {
    if (size - offset < kHeaderSize) return fail(error, offset, "truncated header (no TRAILER!!! entry)");
    const u8* h = data + offset;
    if (compare_bytes(h, "07070", 5) != 0 || (h[5] != '1' && h[5] != '2'))
      return fail(error, offset, "bad magic (not a cpio newc archive)");
    u32 fields[13];
    for (usize i = 0; i < 13; ++i) {
      if (!parse_hex8(h + 6 + 8 * i, &fields[i])) return fail(error, offset, "bad hex digit in header");
    }
    const u32 mode = fields[1], uid = fields[2], gid = fields[3], mtime = fields[5];
    const u32 file_size = fields[6], name_size = fields[11];
    if (name_size == 0) return fail(error, offset, "name size is 0");
    if (name_size > kMaxPath + 1) return fail(error, offset, "name longer than 255 bytes");
    const usize name_offset = offset + kHeaderSize;
    if (size - name_offset < name_size) return fail(error, offset, "name runs past the end");
    const char* name = reinterpret_cast<const char*>(data + name_offset);
    if (name[name_size - 1] != 0) return fail(error, offset, "name not NUL-terminated");
    for (usize i = 0; i + 1 < name_size; ++i) {
      if (name[i] == 0) return fail(error, offset, "NUL inside name");
    }
    // Header plus name are padded to 4 bytes, and so is the data.
    const u64 data_offset = align_up(static_cast<u64>(name_offset) + name_size, 4);
    if (data_offset > size) return fail(error, offset, "name padding runs past the end");
    if (name_size == 11 && compare_bytes(name, "TRAILER!!!", 11) == 0) return true;
    if (file_size > size - data_offset) return fail(error, offset, "file data runs past the end");
    const u32 type = mode & kModeTypeMask;
    if (type != kModeRegular && type != kModeDirectory && type != kModeSymlink && type != 0020000 &&
        type != 0060000 && type != 0010000 && type != 0140000)
      return fail(error, offset, "unknown file type in mode");
    if (type == kModeDirectory && file_size != 0) return fail(error, offset, "directory with data");
    if (type == kModeSymlink && (file_size == 0 || file_size > kMaxPath))
      return fail(error, offset, "symbolic link target empty or longer than 255 bytes");
    const u64 next = align_up(data_offset + file_size, 4);
    if (visit != nullptr) {
      CpioFile file;
      file.name = name;
      file.name_length = name_size - 1;
      file.mode = mode;
      file.uid = uid;
      file.gid = gid;
      file.mtime = mtime;
      file.data = data + data_offset;
      file.size = file_size;
      if (!visit(file, context)) return true;
    }
    // The last entry's data padding may be cut off; the next header check catches the rest.
    if (next >= size) return fail(error, offset, "no TRAILER!!! entry");
    offset = static_cast<usize>(next);
  }
}

Result<void> CpioFs::mount(const u8* data, usize size, CpioError* error) {
  usize count = 0;
  auto counter = [](const CpioFile&, void* c) {
    ++*static_cast<usize*>(c);
    return true;
  };
  if (!cpio_walk(data, size, counter, &count, error)) return Errno::kEINVAL;
  m_data = data;
  m_size = size;
  m_entries = count;
  return {};
}

Result<CpioFile> CpioFs::find_exact(const char* path, usize length) const {
  struct Search {
    const char* path;
    usize length;
    CpioFile found;
    bool hit;
  } search{path, length, {}, false};
  auto visit = [](const CpioFile& file, void* c) {
    auto* s = static_cast<Search*>(c);
    const char* name = file.name;
    usize n = file.name_length;
    strip_prefix(name, n);
    if (n == s->length && compare_bytes(name, s->path, n) == 0) {
      s->found = file;  // the last entry of a name wins, as the kernel's unpacker overwrites
      s->hit = true;
    }
    return true;
  };
  if (m_data == nullptr) return Errno::kENOENT;
  (void)cpio_walk(m_data, m_size, visit, &search, nullptr);
  if (!search.hit) return Errno::kENOENT;
  return search.found;
}

Result<CpioFile> CpioFs::lookup(const char* path, bool follow) const {
  // Resolves component by component into `resolved` (no leading slash), restarting from the
  // link target's text whenever a symbolic link is met.
  char pending[2 * (kMaxPath + 1)];
  usize pending_length = string_length(path);
  if (pending_length > kMaxPath) return Errno::kENAMETOOLONG;
  copy_bytes(pending, path, pending_length);
  char resolved[kMaxPath + 1];
  usize resolved_length = 0;
  usize position = 0;
  u32 links = 0;
  if (pending_length == 0) return Errno::kENOENT;
  for (;;) {
    while (position < pending_length && pending[position] == '/') ++position;
    if (position >= pending_length) break;
    usize end = position;
    while (end < pending_length && pending[end] != '/') ++end;
    const char* component = pending + position;
    const usize component_length = end - position;
    const bool last = end >= pending_length || [&] {
      usize k = end;
      while (k < pending_length && pending[k] == '/') ++k;
      return k >= pending_length;
    }();
    position = end;
    if (component_length == 1 && component[0] == '.') continue;
    if (component_length == 2 && component[0] == '.' && component[1] == '.') {
      while (resolved_length > 0 && resolved[resolved_length - 1] != '/') --resolved_length;
      if (resolved_length > 0) --resolved_length;
      continue;
    }
    const usize saved = resolved_length;
    const usize needed = resolved_length + (resolved_length ? 1 : 0) + component_length;
    if (needed > kMaxPath) return Errno::kENAMETOOLONG;
    if (resolved_length) resolved[resolved_length++] = '/';
    copy_bytes(resolved + resolved_length, component, component_length);
    resolved_length += component_length;
    Result<CpioFile> found = find_exact(resolved, resolved_length);
    if (found.is_error()) {
      // Archives often leave out directory entries: a missing directory along the way is
      // implicit, a missing last component is not there.
      if (last) return found.error();
      continue;
    }
    CpioFile file = found.value();
    if (file.is_symlink() && (follow || !last)) {
      if (++links > 8) return Errno::kELOOP;
      // New pending text: target + rest of the path. Absolute targets restart at the root.
      char rest[kMaxPath + 1];
      const usize rest_length = pending_length - position;
      if (file.size + rest_length > kMaxPath) return Errno::kENAMETOOLONG;
      copy_bytes(rest, pending + position, rest_length);
      copy_bytes(pending, file.data, file.size);
      copy_bytes(pending + file.size, rest, rest_length);
      pending_length = file.size + rest_length;
      position = 0;
      resolved_length = file.data[0] == '/' ? 0 : saved;
      continue;
    }
    if (!last && !file.is_directory()) return Errno::kENOTDIR;
  }
  if (resolved_length == 0) {
    CpioFile root;
    root.name = ".";
    root.name_length = 1;
    root.mode = kModeDirectory | 0755;
    return root;
  }
  Result<CpioFile> final_file = find_exact(resolved, resolved_length);
  if (final_file.is_error()) return final_file.error();
  return final_file.value();
}

}  // namespace tandem
