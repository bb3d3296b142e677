#!/usr/bin/env python3
"""tools/bench/erlang.py: `./tandem bench erlang` - Debian's beam.smp on tandem and on Debian's Linux.

usage: ./tandem bench erlang [--runs N] [--quick] [--no-linux] [--out FILE] [--kernel ELF]
                             [--cpus N] [--mem MIB] [--duration S] [--connections N]
                             [--no-mem-search] [--timeout S]

Boots, side by side in one run, the tandem kernel and Debian's Linux cloud kernel (see
tools/bench/common.py) in the same QEMU: -M q35 -cpu max -smp 8 -m 1024M under TCG, a modern-only
virtio-net-pci card on user networking with a free host port forwarded to the guest's 5555. Both
run the same beam.smp from the same initramfs (tools/erlang.sh --echo-server 0 --initrd-out: the
payload of tools/mkinitramfs --payload erlang and beam.smp's arguments and environment), serving
tools/erlang/echo-server.erl. tandem starts beam.smp as PID 1 itself; Linux gets the very same
archive followed by a second one (Linux unpacks both) holding busybox, the virtio_pci and
virtio_net modules of the same package with what they depend on, and a /init that mounts proc,
sys and devtmpfs, loads the modules, configures eth0 as 10.0.2.15/24 via 10.0.2.2 and execs
beam.smp with exactly tandem's arguments and environment. Linux boots with
`console=ttyS0 rdinit=/init panic=-1 quiet` (Debian's default `quiet`: fewer console lines).

Measured, alternating the kernels run by run so that load on the host hits both alike:
  listening   from just before QEMU starts to the arrival of the echo server's "listening" line
              on the serial console (median of N runs); also when init starts (tandem's log line
              at PID 1's first entry to user mode, Linux's /init printing its first line)
  rate        echo requests per second after listening: a 64-byte request, wait for all 64
              bytes back, repeat, on 1 connection and on 32 at once, for --duration seconds each
              (default 10); the connections are opened one by one, each proven by an echo
  memory      the smallest -m (MiB, a multiple of 16, by bisection between 32 and --mem) with which
              the kernel boots beam.smp and serves one echo request
Options: --runs N (default 3), --quick (1 run, 3 s rates, memory in steps of 32 MiB),
--no-linux (tandem only), --no-mem-search, --kernel ELF (a built tandem.elf instead of building
build/kernel), --out FILE (default bench/results/erlang-DATE.json). A table with ratios is printed
(Linux/tandem for times and memory, tandem/Linux for rates).
"""
import argparse
import glob
import os
import shutil
import subprocess
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
from common import BenchError, fmt, progress, ratio  # noqa: E402

LISTENING = b"echo server listening on port 5555"
GUEST_PORT = 5555


def tandem_initrd(workdir, cpus):
    """tools/erlang.sh's initramfs for the echo server and the kernel command line that boots it."""
    out = os.path.join(workdir, "erlang.cpio")
    append = subprocess.run([os.path.join(common.ROOT, "tools/erlang.sh"), "--cpus", str(cpus), "--echo-server", "0",
                             "--initrd-out", out], check=True, capture_output=True, text=True).stdout.strip()
    return out, append


def init_args(initrd):
    """beam.smp's argv and environment as tandem reads them (/etc/tandem/init.args: NUL-separated
    argv, an empty word, NUL-separated environment)."""
    blob = common.read_cpio(initrd).get("etc/tandem/init.args")
    if blob is None:
        raise BenchError(f"{initrd} has no /etc/tandem/init.args")
    words = blob.split(b"\0")
    split = words.index(b"")
    argv = [w.decode() for w in words[:split]]
    env = [w.decode() for w in words[split + 1:] if w]
    return argv, env


def boot(system, cpus, mem, timeout, log_name, measure=None):
    return common.serve(system, cpus, mem, LISTENING, GUEST_PORT, timeout, log_name, measure)


def smallest_memory(system, cpus, ceiling, floor, timeout, step=16):
    """Bisection over -m in MiB: the smallest multiple of step in (floor, ceiling] that boots and
    serves (the ceiling is known to). Each probe's result is recorded."""
    probes = {}
    lo, hi = floor, ceiling
    while hi - lo > step:
        mid = (lo + hi) // 2 // step * step
        if mid <= lo:
            mid = lo + step
        progress(f"  memory {system.name:6}: -m {mid}M ...")
        run = boot(system, cpus, mid, timeout, f"bench-erlang-{system.name}-mem{mid}")
        probes[mid] = run["served"]
        progress(f"  memory {system.name:6}: -m {mid}M " + ("boots and serves" if run["served"] else
                                                            f"fails ({run.get('error')}; log {run.get('log')})"))
        if run["served"]:
            hi = mid
        else:
            lo = mid
    return hi, probes


def main():
    p = argparse.ArgumentParser(prog="tandem bench erlang", description=__doc__.split("\n\n", 2)[2],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    common.add_rate_options(p, "erlang")
    p.add_argument("--no-mem-search", action="store_true", help="skip the smallest -m search")
    args = p.parse_args()
    common.check_rate_options(args, "erlang")
    if not glob.glob("/usr/lib/erlang/erts-*/bin/beam.smp"):
        common.die("erlang", "no beam.smp under /usr/lib/erlang (./tandem setup)")

    workdir = common.workdir("erlang")
    try:
        kernel = os.path.abspath(args.kernel) if args.kernel else common.build_kernel("erlang")
        initrd, append = tandem_initrd(workdir, args.cpus)
        systems = [common.System("tandem", kernel, initrd, append)]
        linux = None
        if not args.no_linux:
            argv, env = init_args(initrd)
            linux, system = common.networked_linux(workdir, initrd, "erlang", argv, env)
            systems.append(system)

        def measure(port):
            return common.echo_rates(port, args.connections, args.duration)

        runs = {s.name: [] for s in systems}
        for i in range(args.runs):
            for s in systems:
                progress(f"run {i + 1}/{args.runs} {s.name:6}: booting, then {args.duration:g} s of requests "
                         f"on 1 and on {args.connections} connections ...")
                run = boot(s, args.cpus, args.mem, args.timeout, f"bench-erlang-{s.name}-run{i + 1}", measure)
                runs[s.name].append(run)
                if "error" not in run:
                    progress(f"run {i + 1}/{args.runs} {s.name:6}: init {fmt(run['init_s'], ' s')}, listening "
                             f"{fmt(run['listening_s'], ' s')}, {fmt(run.get('rate_1'), ' req/s', 0)} (1 connection), "
                             f"{fmt(run.get(f'rate_{args.connections}'), ' req/s', 0)} ({args.connections})")
                else:
                    progress(f"run {i + 1}/{args.runs} {s.name:6}: FAILED: {run.get('error')} (log {run.get('log')})")

        memory = {}
        if not args.no_mem_search:
            for s in systems:
                listening = common.median([r["listening_s"] for r in runs[s.name]])
                timeout = min(args.timeout, max(60.0, 4 * (listening or args.timeout)))
                floor = 32
                smallest, probes = smallest_memory(s, args.cpus, args.mem, floor, timeout,
                                                   step=32 if args.quick else 16)
                memory[s.name] = {"smallest_mib": smallest, "probes": probes, "floor_mib": floor}
    except BenchError as e:
        common.die("erlang", str(e))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    keys = ["init_s", "listening_s", "rate_1", f"rate_{args.connections}"]
    summary = {name: {k: common.median([r.get(k) for r in rs]) for k in keys} for name, rs in runs.items()}
    for name in summary:
        summary[name]["smallest_mib"] = memory.get(name, {}).get("smallest_mib")
    t, l = summary["tandem"], summary.get("linux", {})
    ratios = {
        "listening_linux_over_tandem": ratio(l.get("listening_s"), t["listening_s"]),
        "smallest_memory_linux_over_tandem": ratio(l.get("smallest_mib"), t["smallest_mib"]),
        "rate_1_tandem_over_linux": ratio(t["rate_1"], l.get("rate_1")),
        f"rate_{args.connections}_tandem_over_linux": ratio(t[f"rate_{args.connections}"],
                                                            l.get(f"rate_{args.connections}")),
    }
    result = {
        "qemu": {"machine": "q35", "cpu": "max", "accel": "tcg", "smp": args.cpus, "memory": f"{args.mem}M",
                 "net": "virtio-net-pci (modern only), user networking, one forwarded port"},
        "program": "Debian's beam.smp (erlang-base) serving tools/erlang/echo-server.erl",
        "linux_package": linux.deb if linux else None,
        "linux_append": common.LINUX_APPEND,
        "runs_each": args.runs,
        "rate": {"request_bytes": 64, "duration_s": args.duration, "connections": [1, args.connections]},
        "runs": runs,
        "memory_search": memory,
        "median": summary,
        "ratios": ratios,
        "targets": "listening in at most half of Linux's time; boots in -m 256M; request rate at least Linux's",
    }
    out = common.write_result("erlang", result, args.out)

    print()
    print(f"Debian's beam.smp echo server, QEMU TCG -M q35 -cpu max -smp {args.cpus} -m {args.mem}M, "
          f"median of {args.runs} run(s) (host load {os.getloadavg()[0]:.2f})")
    names = [s.name for s in systems]
    headers = ["figure"] + names + (["ratio"] if linux else [])
    rows = []

    def row(label, key, unit, digits, ratio_key, how):
        values = [fmt(summary[n][key], unit, digits) for n in names]
        r = ratios.get(ratio_key)
        rows.append([label] + values + ([f"{r:.2f}x {how}" if r else "-"] if linux else []))

    row("QEMU start to init", "init_s", " s", 2, None, "")
    row('QEMU start to "listening"', "listening_s", " s", 2, "listening_linux_over_tandem", "(Linux/tandem)")
    row("smallest -m that boots and serves", "smallest_mib", " MiB", 0, "smallest_memory_linux_over_tandem",
        "(Linux/tandem)")
    row(f"echo requests/s, 1 connection ({args.duration:g} s)", "rate_1", "", 0, "rate_1_tandem_over_linux",
        "(tandem/Linux)")
    row(f"echo requests/s, {args.connections} connections", f"rate_{args.connections}", "", 0,
        f"rate_{args.connections}_tandem_over_linux", "(tandem/Linux)")
    common.print_table(headers, rows)
    print(f"results: {os.path.relpath(out, common.ROOT)}")
    failed = any("error" in r for rs in runs.values() for r in rs)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
