#!/usr/bin/env python3
"""tools/bench/erlang_boots.py: `./tandem bench erlang-boots` - the Erlang echo server, N boots in a row.

usage: ./tandem bench erlang-boots [--boots N] [--cpus N] [--connections N] [--bytes N]
                                   [--kernel ELF] [--out FILE]

Boots tandem with Debian's beam.smp serving tools/erlang/echo-server.erl N times in a row
(default 200, 8 CPUs, -m 1024M), one machine at a time, each boot by tests/qemu/erlang-echo (the
test behind qemu.erlang.echo.smp8 and qemu.erlang.boots20): it waits for "listening", makes one
round trip and then --connections (default 5) simultaneous connections of --bytes (default 1024)
random bytes each, and every byte must come back. A boot that fails (no listening line within
240 s, a wrong or missing byte, a panic) keeps its serial log and the capture of its card's frames
under build/logs/bench-erlang-boots/; the test waits for the machine's own timeout first, so the
log ends with every CPU's backtrace and the kernel's state dump.

Reported: passes and failures, the time per boot (all of it as the test runs it: its initramfs,
QEMU, the requests, stopping the machine; median and maximum) and the time from QEMU's start to
listening (median and maximum). The result goes to
bench/results/erlang-boots-DATE.json (also when interrupted: the boots done so far).
"""
import argparse
import glob
import os
import re
import shutil
import subprocess
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
from common import BenchError, fmt, progress  # noqa: E402

ECHO_TEST = os.path.join(common.ROOT, "tests/qemu/erlang-echo")
KEPT = os.path.join(common.LOGS, "bench-erlang-boots")


def one_boot(kernel, cpus, connections, size, number):
    """One boot through tests/qemu/erlang-echo; a dict with passed, seconds, listening_s."""
    start = time.monotonic()
    proc = subprocess.run([ECHO_TEST, kernel, str(cpus), str(connections), str(size), "1"],
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, errors="replace")
    out = proc.stdout + proc.stderr
    run = {"boot": number, "passed": proc.returncode == 0 and "PASS" in proc.stdout,
           "seconds": time.monotonic() - start, "listening_s": None}
    m = re.search(r"listening after ([0-9.]+) s", out)
    if m:
        run["listening_s"] = float(m.group(1))
    if not run["passed"]:
        failure = [line for line in out.splitlines() if line.startswith("FAIL")]
        run["error"] = failure[0] if failure else f"erlang-echo exited with status {proc.returncode}"
        os.makedirs(KEPT, exist_ok=True)
        with open(os.path.join(KEPT, f"boot-{number}.out"), "w") as f:
            f.write(out)
        run["output"] = os.path.relpath(os.path.join(KEPT, f"boot-{number}.out"), common.ROOT)
        for pattern, suffix in ((r"the whole serial log: (\S+)", "log"),
                                (r"the frames on the guest's card: (\S+)", "pcap")):
            m = re.search(pattern, out)
            if m and os.path.exists(m.group(1)):
                kept = os.path.join(KEPT, f"boot-{number}.{suffix}")
                shutil.move(m.group(1), kept)
                run[suffix] = os.path.relpath(kept, common.ROOT)
    return run


def main():
    p = argparse.ArgumentParser(prog="tandem bench erlang-boots", description=__doc__.split("\n\n", 2)[2],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--boots", type=int, default=200)
    p.add_argument("--cpus", type=int, default=8)
    p.add_argument("--connections", type=int, default=5)
    p.add_argument("--bytes", type=int, default=1024)
    p.add_argument("--kernel", help="a built tandem.elf (default: build build/kernel)")
    p.add_argument("--out", help="JSON output (default bench/results/erlang-boots-DATE.json)")
    args = p.parse_args()
    if args.boots < 1 or not 1 <= args.cpus <= 64 or args.connections < 1 or args.bytes < 1:
        common.die("erlang-boots", "--boots, --connections and --bytes must be positive, --cpus 1..64")
    if not shutil.which("qemu-system-x86_64"):
        common.die("erlang-boots", "qemu-system-x86_64 not found (./tandem setup)")
    if not glob.glob("/usr/lib/erlang/erts-*/bin/beam.smp"):
        common.die("erlang-boots", "no beam.smp under /usr/lib/erlang (./tandem setup)")
    try:
        kernel = os.path.abspath(args.kernel) if args.kernel else common.build_kernel("erlang-boots")
    except BenchError as e:
        common.die("erlang-boots", str(e))

    runs = []
    interrupted = False
    started = time.monotonic()
    try:
        for i in range(1, args.boots + 1):
            run = one_boot(kernel, args.cpus, args.connections, args.bytes, i)
            runs.append(run)
            failures = sum(not r["passed"] for r in runs)
            progress(f"boot {i}/{args.boots}: " + ("pass" if run["passed"] else f"FAIL ({run['error']})")
                     + f", listening {fmt(run['listening_s'], ' s', 1)}, boot {run['seconds']:.1f} s; "
                     + f"{i - failures} passed, {failures} failed, {time.monotonic() - started:.0f} s so far")
            if not run["passed"]:
                progress(f"  kept: {run.get('log', run['output'])}")
    except KeyboardInterrupt:
        interrupted = True
        progress(f"interrupted after {len(runs)} boots")

    passed = sum(r["passed"] for r in runs)
    seconds = [r["seconds"] for r in runs]
    listening = [r["listening_s"] for r in runs if r["listening_s"] is not None]
    summary = {
        "boots": len(runs), "passed": passed, "failed": len(runs) - passed,
        "boot_s_median": common.median(seconds), "boot_s_max": max(seconds, default=None),
        "listening_s_median": common.median(listening), "listening_s_max": max(listening, default=None),
        "total_s": time.monotonic() - started,
    }
    result = {
        "qemu": {"machine": "q35", "cpu": "max", "accel": "tcg", "smp": args.cpus, "memory": "1024M"},
        "program": "Debian's beam.smp (erlang-base) serving tools/erlang/echo-server.erl, by tests/qemu/erlang-echo",
        "requested_boots": args.boots, "interrupted": interrupted,
        "per_boot": f"one round trip, then {args.connections} simultaneous connections x {args.bytes} bytes",
        "summary": summary,
        "failures": [r for r in runs if not r["passed"]],
        "runs": runs,
    }
    out = common.write_result("erlang-boots", result, args.out)
    print()
    print(f"tandem, Debian's beam.smp echo server, {len(runs)} boots in a row on {args.cpus} CPUs "
          f"(host load {os.getloadavg()[0]:.2f})")
    common.print_table(["figure", "value"], [
        ["boots passed", f"{passed} of {len(runs)}"],
        ["time per boot, median", fmt(summary["boot_s_median"], " s", 1)],
        ["time per boot, max", fmt(summary["boot_s_max"], " s", 1)],
        ["QEMU start to listening, median", fmt(summary["listening_s_median"], " s", 1)],
        ["QEMU start to listening, max", fmt(summary["listening_s_max"], " s", 1)],
    ])
    for r in result["failures"]:
        print(f"boot {r['boot']} failed: {r['error']} (kept: {r.get('log', r['output'])})")
    print(f"results: {os.path.relpath(out, common.ROOT)}")
    sys.exit(0 if passed == len(runs) and not interrupted else 1)


if __name__ == "__main__":
    main()
