"""tools/bench/common.py: what the QEMU benchmarks share (boot, erlang, erlang-boots, net).

- the tandem kernel: built with the `kernel` preset into build/kernel, or a given tandem.elf;
- Debian's Linux cloud kernel (the image linux-image-cloud-amd64 depends on), downloaded once with
  `apt-get download` into build/linux-baseline and extracted with dpkg-deb -x at run time (never
  installed, never committed), with the modules a configuration needs in dependency order;
- initramfs archives (tools/mkinitramfs), and Linux's addition to a tandem archive: Linux unpacks
  concatenated newc archives in order, so it gets the very bytes tandem gets plus a second archive
  with busybox, its modules and a /init script;
- QEMU in one configuration for both kernels (-M q35 -cpu max, TCG, optionally a modern-only
  virtio-net-pci on user networking with one forwarded host port), its serial output timed on the
  host as it arrives;
- TCP clients for echo servers (request rate, bulk throughput), medians and the JSON result.
"""
import datetime
import glob
import json
import os
import platform
import re
import selectors
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
KERNEL_BUILD = os.path.join(ROOT, "build/kernel")
KERNEL = os.path.join(KERNEL_BUILD, "hal/real/tandem.elf")
BASELINE_DIR = os.path.join(ROOT, "build/linux-baseline")
LOGS = os.path.join(ROOT, "build/logs")
RESULTS = os.path.join(ROOT, "bench/results")
BUSYBOX = "/bin/busybox"
# The guest's address on QEMU's user network, its gateway, and the card's MAC (as qemu/run-kernel).
GUEST_ADDRESS = "10.0.2.15/24"
GATEWAY = "10.0.2.2"
MAC = "52:54:00:12:34:56"
# tandem's log line at PID 1's first entry to user mode.
TANDEM_FIRST_USER = b"first entry to user mode at"
# The line Linux's /init prints (see linux_init_script) once it runs.
LINUX_INIT_LINE = b"linux-init: /init at"


class BenchError(Exception):
    pass


def die(prog, message):
    sys.exit(f"tandem bench {prog}: {message}")


def progress(message):
    print(message, file=sys.stderr, flush=True)


# ---- the tandem kernel ---------------------------------------------------------------------------

def build_kernel(name, targets=()):
    """Configures and builds the kernel preset (build/kernel); returns its tandem.elf."""
    log = os.path.join(LOGS, f"bench-{name}-build.log")
    os.makedirs(LOGS, exist_ok=True)
    with open(log, "w") as f:
        for cmd in (["cmake", "--preset", "kernel"], ["cmake", "--build", "--preset", "kernel"]):
            if subprocess.call(cmd, cwd=ROOT, stdout=f, stderr=subprocess.STDOUT) != 0:
                raise BenchError(f"kernel build failed (log: {log})")
    for path in (KERNEL,) + tuple(os.path.join(KERNEL_BUILD, t) for t in targets):
        if not os.path.exists(path):
            raise BenchError(f"{path} was not built (musl-tools missing?)")
    return KERNEL


def kernel_build_dir(kernel):
    """The build tree a tandem.elf came from (KERNEL_BUILD/hal/real/tandem.elf)."""
    return os.path.normpath(os.path.join(os.path.dirname(kernel), "..", ".."))


# ---- Debian's Linux ------------------------------------------------------------------------------

def linux_package():
    """The versioned image package that the metapackage linux-image-cloud-amd64 depends on."""
    out = subprocess.run(["apt-cache", "depends", "linux-image-cloud-amd64"], capture_output=True, text=True)
    for line in out.stdout.splitlines():
        m = re.match(r"\s*Depends:\s*(linux-image-[0-9][^\s]*)", line)
        if m:
            return m.group(1)
    raise BenchError("apt-cache knows no linux-image-cloud-amd64 (run apt-get update)")


class Linux:
    """Debian's cloud kernel extracted into a work directory: vmlinuz, modules, the .deb's name."""

    def __init__(self, workdir):
        os.makedirs(BASELINE_DIR, exist_ok=True)
        package = linux_package()
        debs = sorted(glob.glob(os.path.join(BASELINE_DIR, package + "_*.deb")))
        if not debs:
            progress(f"downloading {package} (apt-get download, not installed)...")
            if subprocess.call(["apt-get", "download", package], cwd=BASELINE_DIR) != 0:
                raise BenchError(f"apt-get download {package} failed")
            debs = sorted(glob.glob(os.path.join(BASELINE_DIR, package + "_*.deb")))
            if not debs:
                raise BenchError(f"apt-get download {package} left no .deb in {BASELINE_DIR}")
        deb = debs[-1]
        self.deb = os.path.basename(deb)
        target = os.path.join(workdir, "linux")
        subprocess.check_call(["dpkg-deb", "-x", deb, target])
        images = glob.glob(os.path.join(target, "boot", "vmlinuz-*"))
        if len(images) != 1:
            raise BenchError(f"{deb} holds {len(images)} boot/vmlinuz-* files, expected 1")
        self.vmlinuz = images[0]
        self.release = os.path.basename(self.vmlinuz)[len("vmlinuz-"):]
        self.moddir = os.path.join(target, "lib", "modules", self.release)

    def modules(self, wanted):
        """The .ko files that `wanted` (module names) need, dependencies first; a module built
        into the kernel (modules.builtin) needs no file. The package carries no modules.dep
        (depmod writes it at installation), so the dependencies come from each module's own
        modinfo `depends=` field, which is what depmod reads."""
        builtin = set()
        with open(os.path.join(self.moddir, "modules.builtin")) as f:
            for line in f:
                builtin.add(module_name(line.strip()))
        files = {}
        for path in glob.glob(os.path.join(self.moddir, "kernel", "**", "*.ko"), recursive=True):
            files[module_name(path)] = path
        order = []

        def visit(name, chain):
            if name in builtin or name in order:
                return
            if name in chain:
                raise BenchError(f"module dependency cycle: {' -> '.join(chain + [name])}")
            if name not in files:
                raise BenchError(f"{self.deb} has no module {name}")
            with open(files[name], "rb") as f:
                m = re.search(rb"(?:^|\0)depends=([^\0]*)\0", f.read())
            for dep in (m.group(1).decode().split(",") if m and m.group(1) else []):
                visit(module_name(dep), chain + [name])
            order.append(name)

        for name in wanted:
            visit(module_name(name), [])
        return [files[name] for name in order]


def module_name(path):
    name = os.path.basename(path)
    for suffix in (".ko.xz", ".ko.zst", ".ko.gz", ".ko"):
        if name.endswith(suffix):
            name = name[:-len(suffix)]
    return name.replace("-", "_")


def linux_init_script(modules, argv, env):
    """A busybox /init for Linux: mounts proc, sys and dev (devtmpfs), loads the modules (in
    order), configures eth0 as QEMU's user network expects (10.0.2.15/24, gateway 10.0.2.2) and
    execs argv with exactly the environment env (nothing inherited), as PID 1. It prints the
    kernel's uptime when it starts, so the host can tell the kernel's part from the program's."""
    bb = BUSYBOX
    lines = [
        f"#!{bb} sh",
        f"{bb} mkdir -p /proc /sys /dev /tmp",
        f"{bb} mount -t proc proc /proc",
        f"{bb} mount -t sysfs sysfs /sys",
        f"{bb} mount -t devtmpfs devtmpfs /dev",
        "read up idle </proc/uptime",
        f'echo "{LINUX_INIT_LINE.decode()} $up s (kernel uptime)"',
    ]
    for path in modules:
        name = os.path.basename(path)
        lines.append(f"{bb} insmod /modules/{name} || echo 'linux-init: insmod {name} failed'")
    lines += [
        f"{bb} ip link set lo up",
        # The card's probe runs when virtio_pci's driver registers; wait for eth0 all the same.
        "n=0; while [ ! -e /sys/class/net/eth0 ] && [ $n -lt 100 ]; do "
        f"{bb} usleep 20000; n=$((n + 1)); done",
        f"{bb} ip addr add {GUEST_ADDRESS} dev eth0",
        f"{bb} ip link set eth0 up",
        f"{bb} ip route add default via {GATEWAY}",
    ]
    lines.append("exec " + " ".join(shlex.quote(w) for w in [bb, "env", "-i"] + list(env) + list(argv)))
    return "\n".join(lines) + "\n"


def linux_addition(workdir, linux, modules, argv, env):
    """The archive appended to a tandem initramfs for Linux: busybox, the modules, /init and
    /dev/console (Linux opens it for init's stdio before devtmpfs is mounted)."""
    init = os.path.join(workdir, "linux-init")
    with open(init, "w") as f:
        f.write(linux_init_script(modules, argv, env))
    os.chmod(init, 0o755)
    out = os.path.join(workdir, "linux-addition.cpio")
    files = [f"{BUSYBOX}:/bin/busybox", f"{init}:/init"] + [f"{m}:/modules/{os.path.basename(m)}" for m in modules]
    mkinitramfs(out, files, ["--chardev", "/dev/console:5:1"])
    return out


def concatenate(out, *parts):
    with open(out, "wb") as f:
        for part in parts:
            with open(part, "rb") as p:
                f.write(p.read())
    return out


def mkinitramfs(out, files, options=()):
    subprocess.check_call([sys.executable, os.path.join(ROOT, "tools/mkinitramfs"), "-o", out] + list(options)
                          + list(files))
    return out


def read_cpio(path):
    """The regular files of a newc archive, as {path: bytes}."""
    with open(path, "rb") as f:
        blob = f.read()
    files, at = {}, 0
    while at + 110 <= len(blob):
        if blob[at:at + 6] != b"070701":
            raise BenchError(f"{path}: not a newc archive at offset {at}")
        fields = [int(blob[at + 6 + 8 * i: at + 14 + 8 * i], 16) for i in range(13)]
        mode, size, namesize = fields[1], fields[6], fields[11]
        name = blob[at + 110: at + 110 + namesize - 1].decode()
        at += 110 + namesize
        at += -at % 4
        if name == "TRAILER!!!":
            break
        if mode & 0o170000 == 0o100000:
            files[name] = blob[at:at + size]
        at += size
        at += -at % 4
    return files


# ---- QEMU ----------------------------------------------------------------------------------------

def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def qemu_args(cpus, mem, initrd, kernel, append, forward=None, debug_exit=True):
    """One QEMU configuration for both kernels. forward=(host port, guest port) adds the network
    card exactly as qemu/run-kernel does (modern-only virtio-net-pci on user networking); the
    isa-debug-exit port (tandem's way to give QEMU an exit status) is there for both kernels unless
    debug_exit is False, so that their machines are the same (Linux never touches it)."""
    args = ["qemu-system-x86_64", "-M", "q35", "-cpu", "max", "-accel", "tcg", "-smp", str(cpus),
            "-m", str(mem), "-nographic", "-no-reboot", "-initrd", initrd]
    if debug_exit:
        args += ["-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"]
    if forward:
        args += ["-netdev", f"user,id=net0,hostfwd=tcp:127.0.0.1:{forward[0]}-:{forward[1]}",
                 "-device", f"virtio-net-pci,netdev=net0,disable-legacy=on,mac={MAC},romfile="]
    return args + ["-kernel", kernel, "-append", append]


def qemu_version():
    return subprocess.run(["qemu-system-x86_64", "--version"], capture_output=True, text=True).stdout.splitlines()[0]


class Machine:
    """A running QEMU whose serial output is read as it arrives, each chunk stamped with the host's
    monotonic clock; times are seconds since just before QEMU was started."""

    def __init__(self, args):
        self.start = time.monotonic()
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        self.data = bytearray()
        self.arrivals = []  # (offset of a chunk's first byte, seconds since start)
        self.ended = None  # seconds since start when QEMU's output ended (it exited)
        self.cond = threading.Condition()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        fd = self.proc.stdout.fileno()
        while True:
            chunk = os.read(fd, 65536)
            now = time.monotonic() - self.start
            with self.cond:
                if not chunk:
                    self.ended = now
                    self.cond.notify_all()
                    return
                self.arrivals.append((len(self.data), now))
                self.data += chunk
                self.cond.notify_all()

    def _arrival(self, offset):
        return max(t for off, t in self.arrivals if off <= offset)

    def find(self, marker):
        """When the first byte of marker arrived, or None if it has not (yet)."""
        with self.cond:
            at = self.data.find(marker)
            return None if at < 0 else self._arrival(at)

    def wait_for(self, marker, timeout):
        """Waits for marker on the console; its arrival time, or None (timeout or QEMU's exit)."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                at = self.data.find(marker)
                if at >= 0:
                    return self._arrival(at)
                remaining = deadline - time.monotonic()
                if self.ended is not None or remaining <= 0:
                    return None
                self.cond.wait(remaining)

    def wait_exit(self, timeout):
        """Waits for QEMU to exit; the time its output ended, or None on timeout."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while self.ended is None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self.cond.wait(remaining)
        self.proc.wait()
        return self.ended

    def output(self):
        with self.cond:
            return bytes(self.data)

    def stop(self):
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait()
        self.reader.join(5)

    def keep_log(self, name):
        """Writes the serial output to build/logs/NAME.log; returns the path."""
        os.makedirs(LOGS, exist_ok=True)
        path = os.path.join(LOGS, name + ".log")
        with open(path, "wb") as f:
            f.write(self.output())
        return path


class System:
    """A kernel to benchmark: its image, initramfs and command line; name is tandem or linux."""

    def __init__(self, name, kernel, initrd, append):
        self.name, self.kernel, self.initrd, self.append = name, kernel, initrd, append
        self.init_marker = TANDEM_FIRST_USER if name == "tandem" else LINUX_INIT_LINE


def serve(system, cpus, mem, listening, guest_port, timeout, log_name, measure=None):
    """Boots system (mem in MiB) with a free host port forwarded to guest_port until the console
    says `listening` and one echo request is answered, then calls measure(host port) if given and
    adds what it returns. Returns a dict: listening_s and init_s (seconds from just before QEMU
    started; None when not seen), served, and on failure error and log (the serial output, kept
    under build/logs/LOG_NAME.log)."""
    port = free_port()
    machine = Machine(qemu_args(cpus, f"{mem}M", system.initrd, system.kernel, system.append,
                                forward=(port, guest_port)))
    run = {"listening_s": None, "init_s": None, "served": False}
    try:
        run["listening_s"] = machine.wait_for(listening, timeout)
        run["init_s"] = machine.find(system.init_marker)
        if run["listening_s"] is None:
            run["error"] = "QEMU exited before listening" if machine.ended is not None else "no listening line in time"
        elif not echo_once(port, timeout=30):
            run["error"] = "the echo request was not answered"
        else:
            run["served"] = True
            if measure:
                run.update(measure(port))
    except (BenchError, OSError) as e:
        run["error"] = str(e)
    finally:
        machine.stop()
    if "error" in run:
        run["log"] = os.path.relpath(machine.keep_log(log_name), ROOT)
    return run


# ---- echo clients --------------------------------------------------------------------------------

def connect_proven(port, count, timeout=60):
    """Opens count connections one after another, each proven accepted by the server (one byte
    echoed). QEMU's user networking listens on the forwarded port with a backlog of 1 and takes one
    connection per turn of its main loop, so a burst of connects overflows the host's accept queue
    and stalls in SYN backoff; one at a time, each connection is known to reach the guest."""
    conns = []
    try:
        for _ in range(count):
            c = socket.create_connection(("127.0.0.1", port), timeout=timeout)
            c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            c.sendall(b"!")
            if c.recv(1) != b"!":
                c.close()
                raise BenchError("a new connection's first byte did not come back")
            conns.append(c)
    except BaseException:
        for c in conns:
            c.close()
        raise
    return conns


def echo_once(port, timeout=60):
    """One request of 64 bytes on a new connection; True when exactly those bytes come back."""
    request = bytes(range(64))
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as c:
            c.sendall(request)
            got = b""
            while len(got) < len(request):
                chunk = c.recv(len(request) - len(got))
                if not chunk:
                    break
                got += chunk
            return got == request
    except OSError:
        return False


def echo_rate(port, connections, duration, size=64):
    """Request rate: on each of `connections` connections, send a request of `size` bytes, wait for
    the whole echo, repeat; one thread drives them all (selectors). Returns (requests per second,
    requests). Every byte is checked."""
    conns = connect_proven(port, connections)
    sel = selectors.DefaultSelector()
    request = os.urandom(size)
    state = {}
    try:
        for c in conns:
            c.setblocking(False)
            sel.register(c, selectors.EVENT_READ)
        start = time.monotonic()
        end = start + duration
        for c in conns:
            c.sendall(request)
            state[c] = bytearray()
        done = 0
        while True:
            now = time.monotonic()
            if now >= end:
                break
            for key, _ in sel.select(end - now):
                c = key.fileobj
                chunk = c.recv(65536)
                if not chunk:
                    raise BenchError("the server closed a connection")
                got = state[c]
                got += chunk
                if len(got) >= size:
                    if bytes(got[:size]) != request or len(got) > size:
                        raise BenchError("an echo came back different")
                    done += 1
                    got.clear()
                    c.setblocking(True)
                    c.sendall(request)
                    c.setblocking(False)
        elapsed = time.monotonic() - start
        return done / elapsed, done
    finally:
        sel.close()
        for c in conns:
            c.close()


def bulk(port, nbytes, timeout=300):
    """Sends nbytes on one connection while reading the echo back; returns (seconds from the first
    byte sent to the last byte back, MiB/s). Every byte is checked."""
    payload = os.urandom(nbytes)
    c = connect_proven(port, 1)[0]
    c.settimeout(timeout)
    error = []

    def send():
        try:
            c.sendall(payload)
        except OSError as e:
            error.append(e)

    try:
        start = time.monotonic()
        sender = threading.Thread(target=send, daemon=True)
        sender.start()
        got = bytearray()
        while len(got) < nbytes:
            chunk = c.recv(1 << 20)
            if not chunk:
                break
            got += chunk
        elapsed = time.monotonic() - start
        sender.join(timeout)
        if error:
            raise BenchError(f"sending: {error[0]}")
        if bytes(got) != payload:
            raise BenchError(f"bulk echo: {len(got)} of {nbytes} bytes back"
                             + (", different" if bytes(got) != payload[:len(got)] else ""))
        return elapsed, nbytes / elapsed / (1 << 20)
    except socket.timeout:
        raise BenchError(f"bulk echo: no progress for {timeout} s")
    finally:
        c.close()


# ---- results -------------------------------------------------------------------------------------

def median(values):
    """The median of the values, or None when any is missing (a failed run)."""
    if not values or any(v is None for v in values):
        return None
    return statistics.median(values)


def host_info():
    return {"machine": platform.machine(), "cpus": os.cpu_count(), "load_average_at_end": os.getloadavg(),
            "qemu": qemu_version()}


def write_result(name, result, out=None):
    """Writes result (a dict) as JSON to out or bench/results/NAME-DATE.json; returns the path."""
    now = datetime.datetime.now()
    result = {"benchmark": name, "date": now.isoformat(timespec="seconds"), "host": host_info(), **result}
    out = out or os.path.join(RESULTS, f"{name}-{now.strftime('%Y-%m-%d')}.json")
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out, "w") as f:
        json.dump(result, f, indent=2)
        f.write("\n")
    return out


def workdir(name):
    return tempfile.mkdtemp(prefix=f"tandem-bench-{name}.")


def fmt(value, unit="", digits=3):
    if value is None:
        return "-"
    return f"{value:,.{digits}f}{unit}"


def ratio(a, b):
    return a / b if a is not None and b else None


def print_table(headers, rows):
    """A Markdown table: the first column left-aligned, the others right-aligned."""
    widths = [max(len(str(r[i])) for r in [headers] + rows) for i in range(len(headers))]
    line = lambda r: "| " + " | ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w)
                                        for i, (c, w) in enumerate(zip(r, widths))) + " |"
    print(line(headers))
    print("|" + "|".join(("-" * (w + 1) + ":") if i else ("-" * (w + 2)) for i, w in enumerate(widths)) + "|")
    for r in rows:
        print(line(r))

def add_rate_options(p, name):
    """The options bench erlang and bench net share (one QEMU configuration, rates, runs)."""
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--quick", action="store_true", help="1 run, 3 s per rate")
    p.add_argument("--no-linux", action="store_true", help="tandem only (no Debian kernel)")
    p.add_argument("--out", help=f"JSON output (default bench/results/{name}-DATE.json)")
    p.add_argument("--kernel", help="a built tandem.elf (default: build build/kernel)")
    p.add_argument("--cpus", type=int, default=8)
    p.add_argument("--mem", type=int, default=1024, help="MiB (default 1024)")
    p.add_argument("--duration", type=float, default=10, help="seconds per rate measurement")
    p.add_argument("--connections", type=int, default=32)
    p.add_argument("--timeout", type=float, default=120, help="seconds to listening")


def check_rate_options(args, name, more_ok=True, more_text=""):
    """Applies --quick and refuses what add_rate_options' options cannot be."""
    if args.quick:
        args.runs, args.duration = 1, 3
    if (args.runs < 1 or not 1 <= args.cpus <= 64 or args.mem < 64 or args.connections < 1 or args.duration <= 0
            or not more_ok):
        die(name, f"--runs, --connections, --duration{more_text} must be positive, --cpus 1..64, --mem at least 64")
    if not shutil.which("qemu-system-x86_64"):
        die(name, "qemu-system-x86_64 not found (./tandem setup)")

# How both network benches boot Debian's Linux: its console on the serial port, /init from the
# initramfs, and Debian's default quiet.
LINUX_APPEND = "console=ttyS0 rdinit=/init panic=-1 quiet"


def networked_linux(workdir, initrd, name, argv, env):
    """Debian's Linux running `argv` from tandem's archive `initrd`, with virtio-net loaded and
    10.0.2.15 configured: (the Linux package, its System)."""
    linux = Linux(workdir)
    modules = linux.modules(["virtio_pci", "virtio_net"])
    addition = linux_addition(workdir, linux, modules, argv, env)
    linux_initrd = concatenate(os.path.join(workdir, f"{name}-linux.cpio"), initrd, addition)
    return linux, System("linux", linux.vmlinuz, linux_initrd, LINUX_APPEND)


def echo_rates(port, connections, duration):
    """Echo requests per second on 1 connection and on `connections`, with their counts."""
    out = {}
    for n in (1, connections):
        rate, count = echo_rate(port, n, duration)
        out[f"rate_{n}"] = rate
        out[f"requests_{n}"] = count
    return out
