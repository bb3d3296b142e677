// hal/real/src/serial.cpp: the COM1 console, the kernel log and the HAL's spinlock.
#include "arch.h"

namespace hal::real {

namespace {

constexpr u16 kCom1 = 0x3f8;

SpinLock g_console_lock;
// Set when a CPU panics: from then on every CPU writes without the lock, so a CPU that died while
// holding it cannot silence the panic message.
volatile bool g_console_broken = false;

void serial_putc(char c) {
  // Waits for the transmit holding register to be empty (LSR bit 5). Under QEMU this is at once;
  // the bound keeps a missing UART from hanging the kernel.
  for (u32 i = 0; i < 100000 && !(inb(kCom1 + 5) & 0x20); ++i) {
    asm volatile("pause");
  }
  outb(kCom1, u8(c));
}

// A fixed buffer formatter: the log must work before any allocator exists and inside fault
// handlers, so it never allocates.
struct Buffer {
  char data[512];
  size_t length = 0;
  void put(char c) {
    if (length < sizeof(data)) data[length++] = c;
  }
  void puts(const char* s) {
    if (!s) s = "(null)";
    while (*s) put(*s++);
  }
};

void format_number(Buffer& out, u64 value, u32 base, u32 width, bool zero_pad) {
  char digits[24];
  u32 n = 0;
  do {
    u32 d = u32(value % base);
    digits[n++] = char(d < 10 ? '0' + d : 'a' + d - 10);
    value /= base;
  } while (value);
  while (n < width && n < sizeof(digits)) digits[n++] = zero_pad ? '0' : ' ';
  while (n) out.put(digits[--n]);
}

void format(Buffer& out, const char* fmt, __builtin_va_list args) {
  for (; *fmt; ++fmt) {
    if (*fmt != '%') {
      out.put(*fmt);
      continue;
    }
    ++fmt;
    bool zero_pad = false;
    u32 width = 0;
    if (*fmt == '0') zero_pad = true;
    while (*fmt >= '0' && *fmt <= '9') width = width * 10 + u32(*fmt++ - '0');
    u32 longs = 0;
    while (*fmt == 'l') {
      ++longs;
      ++fmt;
    }
    if (*fmt == 'z') ++fmt, longs = 1;
    switch (*fmt) {
      case 's':
        out.puts(__builtin_va_arg(args, const char*));
        break;
      case 'c':
        out.put(char(__builtin_va_arg(args, int)));
        break;
      case 'd': {
        i64 v = longs ? __builtin_va_arg(args, i64) : __builtin_va_arg(args, int);
        if (v < 0) out.put('-'), v = -v;
        format_number(out, u64(v), 10, width, zero_pad);
        break;
      }
      case 'u':
      case 'x': {
        u64 v = longs ? __builtin_va_arg(args, u64) : __builtin_va_arg(args, unsigned);
        format_number(out, v, *fmt == 'u' ? 10 : 16, width, zero_pad);
        break;
      }
      case 'p':
        out.puts("0x");
        format_number(out, u64(__builtin_va_arg(args, void*)), 16, 16, true);
        break;
      case '%':
        out.put('%');
        break;
      default:
        out.put('?');
        if (!*fmt) return;
        break;
    }
  }
}

void emit(const Buffer& b) {
  IrqFlags flags = 0;
  bool locked = false;
  if (!g_console_broken && !g_console_lock.held_by_me()) {
    // A CPU stuck with the lock (it faulted while printing) must not silence the others for
    // ever: after a long wait, print anyway.
    locked = g_console_lock.try_lock_for(50'000'000, &flags);
  }
  serial_write_raw(b.data, b.length);
  if (locked) g_console_lock.unlock(flags);
}

}  // namespace

IrqFlags SpinLock::lock() {
  IrqFlags flags = irq_save();
  u32 me = cpu_id();
  while (__atomic_exchange_n(&m_locked, 1u, __ATOMIC_ACQUIRE)) {
    while (m_locked) {
      asm volatile("pause");
      spin_hook();
    }
  }
  m_owner = me;
  return flags;
}

void SpinLock::unlock(IrqFlags flags) {
  m_owner = ~0u;
  __atomic_store_n(&m_locked, 0u, __ATOMIC_RELEASE);
  irq_restore(flags);
}

bool SpinLock::try_lock_for(u64 spins, IrqFlags* flags) {
  *flags = irq_save();
  u32 me = cpu_id();
  for (u64 i = 0; i < spins; ++i) {
    if (!__atomic_exchange_n(&m_locked, 1u, __ATOMIC_ACQUIRE)) {
      m_owner = me;
      return true;
    }
    asm volatile("pause");
  }
  irq_restore(*flags);
  return false;
}

bool SpinLock::held_by_me() const {
  return m_locked && m_owner == cpu_id();
}

void serial_init() {
  outb(kCom1 + 1, 0x00);  // no UART interrupts: the console is polled
  outb(kCom1 + 3, 0x80);  // DLAB on to set the divisor
  outb(kCom1 + 0, 0x01);  // divisor 1: 115200 baud
  outb(kCom1 + 1, 0x00);
  outb(kCom1 + 3, 0x03);  // 8 bits, no parity, one stop bit
  outb(kCom1 + 2, 0xc7);  // FIFOs on and cleared
  outb(kCom1 + 4, 0x03);  // DTR and RTS
}

void serial_write_raw(const char* s, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    if (s[i] == '\n') serial_putc('\r');
    serial_putc(s[i]);
  }
}

void console_break_lock() { g_console_broken = true; }

void klog(const char* fmt, ...) {
  Buffer b;
  b.puts("[tandem] ");
  __builtin_va_list args;
  __builtin_va_start(args, fmt);
  format(b, fmt, args);
  __builtin_va_end(args);
  if (b.length == sizeof(b.data)) b.length--;
  b.put('\n');
  emit(b);
}

void kprint(const char* fmt, ...) {
  Buffer b;
  __builtin_va_list args;
  __builtin_va_start(args, fmt);
  format(b, fmt, args);
  __builtin_va_end(args);
  emit(b);
}

}  // namespace hal::real

namespace hal {

void console_write(const char* bytes, size_t length) {
  using namespace hal::real;
  IrqFlags flags = 0;
  bool locked = false;
  if (!g_console_broken && !g_console_lock.held_by_me()) {
    locked = g_console_lock.try_lock_for(50'000'000, &flags);
  }
  serial_write_raw(bytes, length);
  if (locked) g_console_lock.unlock(flags);
}

size_t console_read(char* bytes, size_t capacity) {
  using namespace hal::real;
  size_t n = 0;
  // LSR bit 0: a received byte is waiting. The console is polled; nothing here blocks.
  while (n < capacity && (inb(kCom1 + 5) & 0x01)) bytes[n++] = char(inb(kCom1));
  return n;
}

}  // namespace hal
