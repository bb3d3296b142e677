// A read-only root file system over a cpio "newc" archive (the initramfs).
//
// The parser is a pure function over a byte span: it never reads outside [data, data + size)
// and reports a malformed archive as an error with the offset and the reason, so a bad initrd
// is a clear boot message instead of a crash. File contents are not copied: a CpioFile points
// into the archive's memory (the initrd in the direct map on hardware).
#pragma once

#include "core/lib/result.h"
#include "core/lib/types.h"

namespace tandem {

// File types in CpioFile::mode (the S_IFMT bits of st_mode).
inline constexpr u32 kModeTypeMask = 0170000;
inline constexpr u32 kModeRegular = 0100000;
inline constexpr u32 kModeDirectory = 0040000;
inline constexpr u32 kModeSymlink = 0120000;

struct CpioFile {
  const char* name = nullptr;  // not NUL-terminated in general; name_length bytes
  usize name_length = 0;
  u32 mode = 0;
  u32 uid = 0;
  u32 gid = 0;
  u64 mtime = 0;
  const u8* data = nullptr;
  u64 size = 0;

  bool is_regular() const { return (mode & kModeTypeMask) == kModeRegular; }
  bool is_directory() const { return (mode & kModeTypeMask) == kModeDirectory; }
  bool is_symlink() const { return (mode & kModeTypeMask) == kModeSymlink; }
};

struct CpioError {
  u64 offset = 0;               // where in the archive the problem is
  const char* reason = nullptr;  // static string; null when the archive is valid
};

// Walks every entry of the archive up to the TRAILER!!! entry, calling visit(file, context)
// for each one (except the trailer). Stops and returns false at the first malformed header,
// filling *error; returns true when the whole archive is valid. visit may be null (validation
// only). Archive names are returned as stored ("./bin/sh", "bin/sh").
using CpioVisitor = bool (*)(const CpioFile& file, void* context);  // return false to stop
bool cpio_walk(const u8* data, usize size, CpioVisitor visit, void* context, CpioError* error);

// The mounted root: an archive validated once, then looked up by path.
class CpioFs {
 public:
  // Validates the archive; on error, fills *error and returns EINVAL.
  Result<void> mount(const u8* data, usize size, CpioError* error);
  bool mounted() const { return m_data != nullptr; }
  usize entry_count() const { return m_entries; }
  // The archive's bytes, for the VFS's own walks (directory listings).
  const u8* data() const { return m_data; }
  usize size() const { return m_size; }

  // Looks up an absolute or relative path ("/bin/sh", "bin/sh"); "." and empty components are
  // skipped. Symbolic links are followed (up to 8) when follow is true, in the last component
  // and in directories along the way. ENOENT when missing, ELOOP for link cycles,
  // ENAMETOOLONG for paths over 255 bytes.
  Result<CpioFile> lookup(const char* path, bool follow = true) const;

 private:
  Result<CpioFile> find_exact(const char* normalized, usize length) const;

  const u8* m_data = nullptr;
  usize m_size = 0;
  usize m_entries = 0;
};

}  // namespace tandem
