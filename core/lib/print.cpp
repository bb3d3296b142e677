#include "core/lib/print.h"

#include <hal.h>

namespace tandem {

namespace {

struct Sink {
  char* buffer;
  usize capacity;
  usize length = 0;
  void put(char c) {
    if (length + 1 < capacity) buffer[length] = c;
    ++length;
  }
};

void put_number(Sink& sink, u64 value, unsigned base, bool negative, int width, bool zero_pad) {
  char digits[24];
  int count = 0;
  do {
    const unsigned d = static_cast<unsigned>(value % base);
    digits[count++] = static_cast<char>(d < 10 ? '0' + d : 'a' + d - 10);
    value /= base;
  } while (value != 0);
  int total = count + (negative ? 1 : 0);
  if (negative && zero_pad) sink.put('-');
  for (; total < width; ++total) sink.put(zero_pad ? '0' : ' ');
  if (negative && !zero_pad) sink.put('-');
  while (count > 0) sink.put(digits[--count]);
}

}  // namespace

usize vformat(char* buffer, usize capacity, const char* fmt, va_list args) {
  Sink sink{buffer, capacity};
  for (const char* p = fmt; *p != 0; ++p) {
    if (*p != '%') {
      sink.put(*p);
      continue;
    }
    ++p;
    bool zero_pad = false;
    int width = 0;
    if (*p == '0') {
      zero_pad = true;
      ++p;
    }
    while (*p >= '0' && *p <= '9') width = width * 10 + (*p++ - '0');
    int longs = 0;
    while (*p == 'l' || *p == 'z') {
      longs += (*p == 'z') ? 2 : 1;
      ++p;
    }
    switch (*p) {
      case 's': {
        const char* s = va_arg(args, const char*);
        if (s == nullptr) s = "(null)";
        usize n = string_length(s);
        for (usize i = n; i < static_cast<usize>(width); ++i) sink.put(' ');
        while (*s != 0) sink.put(*s++);
        break;
      }
      case 'c':
        sink.put(static_cast<char>(va_arg(args, int)));
        break;
      case 'd':
      case 'i': {
        i64 v = longs >= 1 ? va_arg(args, i64) : va_arg(args, int);
        put_number(sink, v < 0 ? 0 - static_cast<u64>(v) : static_cast<u64>(v), 10, v < 0, width, zero_pad);
        break;
      }
      case 'u':
      case 'x': {
        u64 v = longs >= 1 ? va_arg(args, u64) : va_arg(args, unsigned);
        put_number(sink, v, *p == 'x' ? 16 : 10, false, width, zero_pad);
        break;
      }
      case 'p':
        sink.put('0');
        sink.put('x');
        put_number(sink, reinterpret_cast<uptr>(va_arg(args, void*)), 16, false, 0, false);
        break;
      case '%':
        sink.put('%');
        break;
      case 0:
        --p;
        break;
      default:
        sink.put('%');
        sink.put(*p);
        break;
    }
  }
  if (capacity > 0) buffer[min(sink.length, capacity - 1)] = 0;
  return sink.length;
}

usize format(char* buffer, usize capacity, const char* fmt, ...) {
  va_list args;
  va_start(args, fmt);
  usize n = vformat(buffer, capacity, fmt, args);
  va_end(args);
  return n;
}

void klog(const char* fmt, ...) {
  char line[256] = "[tandem] ";
  const usize prefix = 9;
  va_list args;
  va_start(args, fmt);
  usize n = vformat(line + prefix, sizeof(line) - prefix - 1, fmt, args);
  va_end(args);
  usize length = min(prefix + n, sizeof(line) - 2);
  line[length++] = '\n';
  hal::console_write(line, length);
}

}  // namespace tandem
