// cpio: the initramfs parser (core/fs/cpio.h) over arbitrary bytes. The archive is walked and
// mounted, and a few paths from the input are looked up with and without following links.
// The parser is a pure function, so no simulator is involved: this runs at parser speed.
//
// Checks: no read outside the archive (the archive is copied into a buffer of exactly its
// size, so AddressSanitizer sees any overrun), every entry and every lookup result points
// inside the archive, walk and mount agree, and lookups fail only with the documented errors.
//
// Input: [L] [L bytes of paths, separated by NUL or newline, at most 8] [archive...]
#include <cstdint>
#include <cstring>
#include <memory>

#include "core/fs/cpio.h"

namespace {

using tandem::CpioFile;

struct Span {
  const uint8_t* data;
  size_t size;
};

bool inside(const Span& archive, const void* p, uint64_t length) {
  const auto* b = static_cast<const uint8_t*>(p);
  return b >= archive.data && b <= archive.data + archive.size &&
         length <= static_cast<uint64_t>(archive.data + archive.size - b);
}

void check_file(const Span& archive, const CpioFile& f, const char* what) {
  // The root directory may be synthesized (an archive without "."): a static name, no data.
  const bool synthesized_root = f.is_directory() && f.size == 0 && f.name_length == 1 && f.name[0] == '.';
  if ((!synthesized_root && !inside(archive, f.name, f.name_length)) || (f.size != 0 && !inside(archive, f.data, f.size))) {
    std::fprintf(stderr, "==fuzz== cpio: %s returned an entry outside the archive\n", what);
    __builtin_trap();
  }
}

struct WalkState {
  Span archive;
  size_t entries = 0;
};

bool visit(const CpioFile& f, void* context) {
  auto* state = static_cast<WalkState*>(context);
  check_file(state->archive, f, "cpio_walk");
  ++state->entries;
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const size_t path_bytes = data[0] < size - 1 ? data[0] : size - 1;
  const uint8_t* paths = data + 1;
  const size_t archive_size = size - 1 - path_bytes;
  std::unique_ptr<uint8_t[]> archive(new uint8_t[archive_size > 0 ? archive_size : 1]);
  std::memcpy(archive.get(), paths + path_bytes, archive_size);
  const Span span{archive.get(), archive_size};

  WalkState state{span};
  tandem::CpioError walk_error;
  const bool valid = tandem::cpio_walk(span.data, span.size, &visit, &state, &walk_error);
  if (valid != (walk_error.reason == nullptr)) {
    std::fprintf(stderr, "==fuzz== cpio: cpio_walk returned %d with reason %s\n", valid,
                 walk_error.reason != nullptr ? walk_error.reason : "(none)");
    __builtin_trap();
  }
  if (!valid && walk_error.offset > span.size) {
    std::fprintf(stderr, "==fuzz== cpio: error offset %llu beyond the archive's %zu bytes\n",
                 static_cast<unsigned long long>(walk_error.offset), span.size);
    __builtin_trap();
  }

  tandem::CpioFs fs;
  tandem::CpioError mount_error;
  const auto mounted = fs.mount(span.data, span.size, &mount_error);
  if (mounted.ok() != valid || (valid && fs.entry_count() != state.entries)) {
    std::fprintf(stderr, "==fuzz== cpio: walk (%d, %zu entries) and mount (%d, %zu entries) disagree\n", valid,
                 state.entries, mounted.ok(), fs.entry_count());
    __builtin_trap();
  }
  if (!mounted.ok()) return 0;

  // Each path, NUL-terminated in its own buffer of exactly its size.
  size_t start = 0;
  for (int n = 0; n < 8 && start <= path_bytes; ++n) {
    size_t end = start;
    while (end < path_bytes && paths[end] != 0 && paths[end] != '\n') ++end;
    std::unique_ptr<char[]> path(new char[end - start + 1]);
    std::memcpy(path.get(), paths + start, end - start);
    path[end - start] = 0;
    for (bool follow : {true, false}) {
      const auto r = fs.lookup(path.get(), follow);
      if (r.ok()) {
        check_file(span, r.value(), "lookup");
        continue;
      }
      switch (r.error()) {
        case tandem::Errno::kENOENT:
        case tandem::Errno::kELOOP:
        case tandem::Errno::kENAMETOOLONG:
        case tandem::Errno::kENOTDIR:
          break;
        default:
          std::fprintf(stderr, "==fuzz== cpio: lookup(\"%s\") failed with errno %d\n", path.get(),
                       static_cast<int>(r.error()));
          __builtin_trap();
      }
    }
    start = end + 1;
  }
  return 0;
}
