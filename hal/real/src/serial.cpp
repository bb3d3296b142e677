// hal/real/src/serial.cpp: the COM1 console, the kernel log and the HAL's spinlock.
//
// Output is polled (each byte waits for the transmitter). Input is interrupt-driven: the UART's
// received-data interrupt (ISA IRQ 4) arrives on CPU 0, whose handler moves every byte waiting
// in the UART's 16-byte FIFO into a ring here and tells core with kentry::console_input();
// hal::console_read takes bytes from the ring.
#include "arch.h"

namespace hal::real {

namespace {

constexpr u16 kCom1 = 0x3f8;
// UART registers (offsets from the base port) and the bits used here.
constexpr u16 kRegData = 0, kRegIer = 1, kRegIir = 2, kRegFcr = 2, kRegLcr = 3, kRegMcr = 4, kRegLsr = 5;
constexpr u8 kIerReceived = 0x01;  // interrupt while received data is waiting
constexpr u8 kLsrDataReady = 0x01, kLsrTransmitEmpty = 0x20;
constexpr u32 kIsaIrqCom1 = 4;

SpinLock g_console_lock;
// Set when a CPU panics: from then on every CPU writes without the lock, so a CPU that died while
// holding it cannot silence the panic message.
volatile bool g_console_broken = false;

void serial_putc(char c) {
  // Waits for the transmit holding register to be empty (LSR bit 5). Under QEMU this is at once;
  // the bound keeps a missing UART from hanging the kernel.
  for (u32 i = 0; i < 100000 && !(inb(kCom1 + kRegLsr) & kLsrTransmitEmpty); ++i) {
    asm volatile("pause");
  }
  outb(kCom1 + kRegData, u8(c));
}

// Console input. The ring holds what the interrupt handler (or a read) took from the UART and
// core has not read yet; it is guarded by g_input_lock, which every CPU may take (core reads on
// any CPU, the interrupt arrives on CPU 0). Interrupts are off while it is held, so the handler
// never spins on a lock its own CPU holds.
//
// Why no interrupt is ever lost, although ISA IRQ 4 is edge-triggered: the UART holds its line
// high while data waits and the receive interrupt is enabled, and the IOAPIC sees an edge only
// when the line rises. So every drain leaves the line low: it reads until the FIFO is empty, or,
// when the ring is full, turns the receive interrupt off (the FIFO then keeps what it has, and
// QEMU holds back the rest: flow control, nothing dropped). A read that makes room drains the
// FIFO again and turns the interrupt back on only once the FIFO is empty; a byte that comes
// later raises the line anew.
constexpr u32 kInputRingSize = 8192;
SpinLock g_input_lock;
u8 g_input_ring[kInputRingSize];
u32 g_input_head = 0;         // next byte to read; guarded by g_input_lock
u32 g_input_count = 0;        // guarded by g_input_lock
bool g_input_paused = false;  // receive interrupt off because the ring is full; same lock
bool g_uart_present = false;  // set once by serial_init
u8 g_input_vector = 0;        // the IOAPIC vector of IRQ 4 once routed, 0 before

// Moves waiting bytes from the UART into the ring, until the FIFO is empty or the ring full.
// Caller holds g_input_lock. Returns the number of bytes moved.
u32 drain_uart_locked() {
  if (!g_uart_present) return 0;
  u32 moved = 0;
  while (g_input_count < kInputRingSize && (inb(kCom1 + kRegLsr) & kLsrDataReady)) {
    g_input_ring[(g_input_head + g_input_count) % kInputRingSize] = inb(kCom1 + kRegData);
    ++g_input_count;
    ++moved;
  }
  if (g_input_count == kInputRingSize && (inb(kCom1 + kRegLsr) & kLsrDataReady) && !g_input_paused) {
    outb(kCom1 + kRegIer, 0);
    g_input_paused = true;
  }
  return moved;
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
  outb(kCom1 + kRegIer, 0x00);  // no UART interrupts until serial_input_init routes IRQ 4
  outb(kCom1 + kRegLcr, 0x03);  // DLAB off: the data register reads received bytes
  // No UART at all reads as all ones; it then never interrupts, and reads find nothing.
  g_uart_present = inb(kCom1 + kRegLsr) != 0xff;
  // Input that came before the kernel (typed, or piped into QEMU, while the firmware ran) waits
  // in the UART: keep it, ahead of everything later. Reprogramming the FIFOs below would
  // otherwise throw it away.
  const bool fifos_on = (inb(kCom1 + kRegIir) & 0xc0) == 0xc0;
  IrqFlags flags = g_input_lock.lock();
  drain_uart_locked();
  g_input_lock.unlock(flags);
  outb(kCom1 + kRegLcr, 0x80);  // DLAB on to set the divisor
  outb(kCom1 + 0, 0x01);        // divisor 1: 115200 baud
  outb(kCom1 + 1, 0x00);
  outb(kCom1 + kRegLcr, 0x03);  // 8 bits, no parity, one stop bit
  // FIFOs on, with the receive interrupt at the first byte (trigger level 1), so a key typed
  // at the console is seen at once rather than after the UART's character timeout. When the
  // firmware left them on, they are not cleared: a byte that came since the drain stays.
  outb(kCom1 + kRegFcr, fifos_on ? 0x01 : 0x07);
  // DTR, RTS, and OUT2, which on a PC connects the UART's interrupt line to the IRQ line.
  outb(kCom1 + kRegMcr, 0x0b);
}

void serial_input_init() {
  if (!g_uart_present) return;
  const u32 gsi = g_madt.isa_gsi[kIsaIrqCom1];
  if (gsi >= kMaxGsi) {
    klog("serial: IRQ 4 is GSI %u, beyond the vectors for IOAPIC inputs; no console input", gsi);
    return;
  }
  g_input_vector = u8(kVecDeviceBase + gsi);
  // The IOAPIC input first, then the UART's interrupt: input that waits already (typed, or
  // piped into QEMU, before the boot got here) raises the line when the UART's interrupt goes
  // on, and that edge must find the IOAPIC input open. The CPU takes it once core enables
  // interrupts; kentry::console_input ignores a call that comes before core is ready.
  ioapic_route(gsi, true);
  IrqFlags flags = g_input_lock.lock();
  if (!g_input_paused) outb(kCom1 + kRegIer, kIerReceived);
  g_input_lock.unlock(flags);
}

bool serial_input_vector(u8 vector) { return g_input_vector != 0 && vector == g_input_vector; }

void serial_input_interrupt() {
  IrqFlags flags = g_input_lock.lock();
  drain_uart_locked();
  g_input_lock.unlock(flags);
  lapic_eoi();
  // Core hears of it even when this drain found nothing: a read that made room (console_read)
  // may have moved the bytes behind this interrupt into the ring already, and this call is the
  // only news of them that waiters get.
  kentry::console_input();
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
  IrqFlags flags = g_input_lock.lock();
  // With the interrupt routed, the ring is all there is: a byte still in the UART has its
  // interrupt on the way, which brings it and tells core. Without one, look at the UART here
  // (behind what the ring holds, so the order stays).
  if (g_input_vector == 0) drain_uart_locked();
  size_t n = 0;
  while (n < capacity && g_input_count > 0) {
    bytes[n++] = char(g_input_ring[g_input_head]);
    g_input_head = (g_input_head + 1) % kInputRingSize;
    --g_input_count;
  }
  if (g_input_paused && n > 0) {
    // Room again: take what the FIFO kept, and let the UART interrupt again once it is empty.
    drain_uart_locked();
    if (!(inb(kCom1 + kRegLsr) & kLsrDataReady)) {
      g_input_paused = false;
      outb(kCom1 + kRegIer, kIerReceived);
    }
  }
  g_input_lock.unlock(flags);
  return n;
}

}  // namespace hal
