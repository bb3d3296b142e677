#!/usr/bin/env python3
"""tools/bench/boot.py: `./tandem bench boot` - boot time of tandem against Debian's Linux.

usage: ./tandem bench boot [--runs N] [--cpus N] [--mem SIZE] [--timeout S] [--out FILE] [--no-linux]
                          [--kernel ELF]

Boots, side by side in one run, the tandem kernel and Debian's Linux cloud kernel (the image the
package linux-image-cloud-amd64 depends on, fetched with `apt-get download` into build/ and
extracted with dpkg-deb -x at run time; never installed, never committed) in QEMU with
-M q35 -cpu max -smp N (default 8) under TCG. Both get the same initramfs: /init is the static
musl program tests/userspace/hello, and /dev/console exists (Linux opens it for init's stdio).
Linux boots with `console=ttyS0 rdinit=/init panic=-1`, so init's exit panics and QEMU exits
(-no-reboot).

Measured on the host, from just before QEMU is started:
  first output  the arrival of the first byte of "hello from tandem" on the serial console
  exit          QEMU's exit
and each kernel's own clock when /init starts: tandem's monotonic time at PID 1's first entry to
user mode (its log line "user: first entry to user mode at X ms"; the clock starts at TSC
calibration, a few ms after the kernel's entry), Linux's printk time stamp on "Run /init as init
process" (its clock starts after the bzImage decompressed itself, so it leaves that out; the
host-side figures include everything). N runs each (default 5), alternating the two
kernels so that load on the machine hits both alike; medians are reported. The result goes to
bench/results/boot-DATE.json and a table is printed.
"""
import argparse
import os
import re
import shutil
import statistics
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
from common import BenchError  # noqa: E402

ROOT = common.ROOT
HELLO_TARGET = "hal/real/tests-qemu/userspace/hello"
# The program prints "hello from tandem"; Linux's panic at init's exit can cut into the line, so
# only its start is looked for (the figure is the arrival of its first byte anyway).
MARKER = b"hello from"
FIRST_USER = re.compile(rb"first entry to user mode at ([0-9]+)\.([0-9]+) ms")
# Linux's printk time stamp (seconds since its clock started) on the line that starts /init.
LINUX_INIT = re.compile(rb"\[\s*([0-9]+\.[0-9]+)\] Run /init as init process")


def die(message):
    common.die("boot", message)


def make_initramfs(workdir, hello):
    return common.mkinitramfs(os.path.join(workdir, "hello.cpio"), [f"{hello}:/init"],
                              ["--chardev", "/dev/console:5:1"])


def run_once(qemu_args, timeout):
    """Runs QEMU; returns (seconds to the marker's first byte or None, seconds to exit, output)."""
    machine = common.Machine(qemu_args)
    try:
        first = machine.wait_for(MARKER, timeout)
        exit_s = machine.wait_exit(max(0.0, machine.start + timeout - time.monotonic()))
        return first, exit_s, machine.output()
    finally:
        machine.stop()


def main():
    p = argparse.ArgumentParser(prog="tandem bench boot", description=__doc__.split("\n\n", 2)[2],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--cpus", type=int, default=8)
    p.add_argument("--mem", default="512M")
    p.add_argument("--timeout", type=float, default=60)
    p.add_argument("--out", help="JSON output (default bench/results/boot-DATE.json)")
    p.add_argument("--no-linux", action="store_true", help="tandem only (no Debian kernel)")
    p.add_argument("--kernel", help="a built tandem.elf (default: build build/kernel); its build tree's hello is used")
    args = p.parse_args()
    if args.runs < 1 or not 1 <= args.cpus <= 64:
        die("--runs must be at least 1 and --cpus 1..64")
    if not shutil.which("qemu-system-x86_64"):
        die("qemu-system-x86_64 not found (./tandem setup)")

    workdir = common.workdir("boot")
    try:
        kernel = os.path.abspath(args.kernel) if args.kernel else common.build_kernel("boot", [HELLO_TARGET])
        hello = os.path.join(common.kernel_build_dir(kernel), HELLO_TARGET)
        if not os.path.exists(hello):
            raise BenchError(f"no {hello} beside {kernel}")
        initrd = make_initramfs(workdir, hello)
        systems = {"tandem": common.qemu_args(args.cpus, args.mem, initrd, kernel, "init=/init")}
        linux_deb = None
        if not args.no_linux:
            linux = common.Linux(workdir)
            linux_deb = linux.deb
            systems["linux"] = common.qemu_args(args.cpus, args.mem, initrd, linux.vmlinuz,
                                                "console=ttyS0 rdinit=/init panic=-1", debug_exit=False)

        runs = {name: [] for name in systems}
        for i in range(args.runs):
            for name, qemu_args in systems.items():
                first, exit_s, out = run_once(qemu_args, args.timeout)
                kernel_ms = None
                m = FIRST_USER.search(out)
                if m:
                    kernel_ms = int(m.group(1)) + int(m.group(2)) / 10 ** len(m.group(2))
                m = LINUX_INIT.search(out)
                if m:
                    kernel_ms = float(m.group(1)) * 1000
                run = {"first_output_s": first, "exit_s": exit_s, "kernel_first_user_ms": kernel_ms}
                runs[name].append(run)
                shown = lambda v: "timeout" if v is None else f"{v:.3f} s"
                print(f"run {i + 1}/{args.runs} {name:6}: first output {shown(first)}, exit {shown(exit_s)}"
                      + (f", kernel clock at /init {kernel_ms:.1f} ms" if kernel_ms is not None else ""),
                      file=sys.stderr)
                if first is None:
                    log = os.path.join(common.LOGS, f"bench-boot-{name}-run{i + 1}.log")
                    os.makedirs(common.LOGS, exist_ok=True)
                    with open(log, "wb") as f:
                        f.write(out)
                    print(f"  no '{MARKER.decode()}' on the console: output in {log}", file=sys.stderr)
    except BenchError as e:
        die(str(e))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    def median(name, key):
        values = [r[key] for r in runs[name] if r[key] is not None]
        return statistics.median(values) if len(values) == len(runs[name]) else None

    summary = {}
    for name in systems:
        summary[name] = {"first_output_s": median(name, "first_output_s"), "exit_s": median(name, "exit_s")}
    for name in systems:
        summary[name]["kernel_first_user_ms"] = median(name, "kernel_first_user_ms")
    ratio = None
    if "linux" in summary and summary["linux"]["first_output_s"] and summary["tandem"]["first_output_s"]:
        ratio = summary["linux"]["first_output_s"] / summary["tandem"]["first_output_s"]

    result = {
        "qemu": {"machine": "q35", "cpu": "max", "accel": "tcg", "smp": args.cpus, "memory": args.mem},
        "program": "tests/userspace/hello (musl, static) as /init",
        "linux_package": linux_deb,
        "runs_each": args.runs,
        "runs": runs,
        "median": summary,
        "linux_to_tandem_first_output_ratio": ratio,
        "target": "tandem's time to the first user instruction at most 1/10 of Linux's time to init",
    }
    out = common.write_result("boot", result, args.out)

    fmt = lambda v, unit="s": "-" if v is None else (f"{v:.3f} s" if unit == "s" else f"{v:.1f} ms")
    print()
    print(f"boot to /init, QEMU TCG -M q35 -cpu max -smp {args.cpus}, median of {args.runs} runs "
          f"(host load {os.getloadavg()[0]:.2f})")
    print(f"| {'kernel':8} | {'first output':>12} | {'QEMU exit':>10} | {'kernel clock at /init':>29} |")
    print(f"|{'-' * 10}|{'-' * 14}|{'-' * 12}|{'-' * 31}|")
    for name in systems:
        s = summary[name]
        kernel = fmt(s.get("kernel_first_user_ms"), "ms")
        print(f"| {name:8} | {fmt(s['first_output_s']):>12} | {fmt(s['exit_s']):>10} | {kernel:>29} |")
    if ratio is not None:
        verdict = "met" if ratio >= 10 else "NOT met"
        print(f"Linux / tandem, time to the program's first output: {ratio:.1f}x (target 10x: {verdict})")
    print(f"results: {os.path.relpath(out, ROOT)}")
    failed = any(r["first_output_s"] is None for rs in runs.values() for r in rs)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
