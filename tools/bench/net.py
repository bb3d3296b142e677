#!/usr/bin/env python3
"""tools/bench/net.py: `./tandem bench net` - TCP echo through QEMU user networking, tandem against Linux.

usage: ./tandem bench net [--runs N] [--quick] [--no-linux] [--out FILE] [--kernel ELF]
                          [--cpus N] [--mem MIB] [--duration S] [--connections N] [--bulk MIB]
                          [--timeout S]

Boots, side by side in one run, the tandem kernel and Debian's Linux cloud kernel (see
tools/bench/common.py) in the same QEMU: -M q35 -cpu max -smp 8 -m 1024M under TCG, a modern-only
virtio-net-pci card on user networking with a free host port forwarded to the guest's 5555. Both
run the same static program, tests/userspace/echo-server (musl; TCP and UDP echo on one epoll
loop), from the same initramfs: tandem starts it as PID 1; Linux gets the very same archive
followed by a second one (Linux unpacks both) with busybox, the virtio_pci and virtio_net modules
of the same package and what they depend on, and a /init that mounts proc, sys and devtmpfs,
loads the modules, configures eth0 as 10.0.2.15/24 via 10.0.2.2 and execs the server (PID 1, an
empty environment). Linux boots with `console=ttyS0 rdinit=/init panic=-1 quiet`.

Measured from the host, alternating the kernels run by run (median of N runs, default 3):
  rate   echo requests per second: a 64-byte request, wait for all 64 bytes back, repeat, on 1
         connection and on 32 at once, for --duration seconds each (default 10); the connections
         are opened one by one, each proven by an echo (QEMU's forwarded listener has a backlog of 1)
  bulk   --bulk MiB (default 4) of random bytes sent on one connection while the echo is read
         back: seconds from the first byte sent to the last byte back, and MiB/s
  also   QEMU start to init and to the server's "listening on 5555"
Every byte is checked. Options: --quick (1 run, 3 s rates), --no-linux, --kernel ELF (a built
tandem.elf; the echo server is taken from its build tree), --out FILE (default
bench/results/net-DATE.json). A table with ratios (tandem/Linux for rates, Linux/tandem for
times) is printed.
"""
import argparse
import os
import shutil
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
from common import BenchError, fmt, progress, ratio  # noqa: E402

ECHO_TARGET = "hal/real/tests-qemu/userspace/echo-server"
LISTENING = b"listening on 5555"
GUEST_PORT = 5555


def main():
    p = argparse.ArgumentParser(prog="tandem bench net", description=__doc__.split("\n\n", 2)[2],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    common.add_rate_options(p, "net")
    p.add_argument("--bulk", type=float, default=4, help="MiB echoed on one connection (default 4)")
    args = p.parse_args()
    common.check_rate_options(args, "net", args.bulk > 0, " and --bulk")
    bulk_bytes = int(args.bulk * (1 << 20))

    workdir = common.workdir("net")
    try:
        kernel = os.path.abspath(args.kernel) if args.kernel else common.build_kernel("net", [ECHO_TARGET])
        server = os.path.join(common.kernel_build_dir(kernel), ECHO_TARGET)
        if not os.path.exists(server):
            raise BenchError(f"no {server} beside {kernel} (build the kernel tree: it builds tests/userspace)")
        initrd = common.mkinitramfs(os.path.join(workdir, "net.cpio"), [f"{server}:/bin/echo-server"],
                                    ["--chardev", "/dev/console:5:1"])
        systems = [common.System("tandem", kernel, initrd, "init=/bin/echo-server")]
        linux = None
        if not args.no_linux:
            linux, system = common.networked_linux(workdir, initrd, "net", ["/bin/echo-server", str(GUEST_PORT)], [])
            systems.append(system)

        def measure(port):
            out = common.echo_rates(port, args.connections, args.duration)
            out["bulk_s"], out["bulk_mib_s"] = common.bulk(port, bulk_bytes)
            return out

        runs = {s.name: [] for s in systems}
        for i in range(args.runs):
            for s in systems:
                progress(f"run {i + 1}/{args.runs} {s.name:6}: booting, then {args.duration:g} s of requests on 1 and "
                         f"on {args.connections} connections, then {args.bulk:g} MiB echoed ...")
                run = common.serve(s, args.cpus, args.mem, LISTENING, GUEST_PORT, args.timeout,
                                   f"bench-net-{s.name}-run{i + 1}", measure)
                runs[s.name].append(run)
                if "error" not in run:
                    progress(f"run {i + 1}/{args.runs} {s.name:6}: listening {fmt(run['listening_s'], ' s')}, "
                             f"{fmt(run.get('rate_1'), ' req/s', 0)} (1 connection), "
                             f"{fmt(run.get(f'rate_{args.connections}'), ' req/s', 0)} ({args.connections}), "
                             f"bulk {fmt(run.get('bulk_s'), ' s', 2)} ({fmt(run.get('bulk_mib_s'), ' MiB/s', 2)})")
                else:
                    progress(f"run {i + 1}/{args.runs} {s.name:6}: FAILED: {run.get('error')} (log {run.get('log')})")
    except BenchError as e:
        common.die("net", str(e))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    c = args.connections
    keys = ["init_s", "listening_s", "rate_1", f"rate_{c}", "bulk_s", "bulk_mib_s"]
    summary = {name: {k: common.median([r.get(k) for r in rs]) for k in keys} for name, rs in runs.items()}
    t, l = summary["tandem"], summary.get("linux", {})
    ratios = {
        "listening_linux_over_tandem": ratio(l.get("listening_s"), t["listening_s"]),
        "rate_1_tandem_over_linux": ratio(t["rate_1"], l.get("rate_1")),
        f"rate_{c}_tandem_over_linux": ratio(t[f"rate_{c}"], l.get(f"rate_{c}")),
        "bulk_tandem_over_linux": ratio(t["bulk_mib_s"], l.get("bulk_mib_s")),
    }
    result = {
        "qemu": {"machine": "q35", "cpu": "max", "accel": "tcg", "smp": args.cpus, "memory": f"{args.mem}M",
                 "net": "virtio-net-pci (modern only), user networking, one forwarded port"},
        "program": "tests/userspace/echo-server (musl, static) as PID 1",
        "linux_package": linux.deb if linux else None,
        "linux_append": common.LINUX_APPEND,
        "runs_each": args.runs,
        "rate": {"request_bytes": 64, "duration_s": args.duration, "connections": [1, c]},
        "bulk_bytes": bulk_bytes,
        "runs": runs,
        "median": summary,
        "ratios": ratios,
        "target": "request rate at least Linux's",
    }
    out = common.write_result("net", result, args.out)

    print()
    print(f"tests/userspace/echo-server, QEMU TCG -M q35 -cpu max -smp {args.cpus} -m {args.mem}M, user networking, "
          f"median of {args.runs} run(s) (host load {os.getloadavg()[0]:.2f})")
    names = [s.name for s in systems]
    rows = []

    def row(label, key, unit, digits, ratio_key=None, how=""):
        r = ratios.get(ratio_key)
        rows.append([label] + [fmt(summary[n][key], unit, digits) for n in names]
                    + ([f"{r:.2f}x {how}" if r else "-"] if linux else []))

    row("QEMU start to init", "init_s", " s", 2)
    row('QEMU start to "listening"', "listening_s", " s", 2, "listening_linux_over_tandem", "(Linux/tandem)")
    row(f"echo requests/s, 1 connection ({args.duration:g} s)", "rate_1", "", 0, "rate_1_tandem_over_linux",
        "(tandem/Linux)")
    row(f"echo requests/s, {c} connections", f"rate_{c}", "", 0, f"rate_{c}_tandem_over_linux", "(tandem/Linux)")
    row(f"bulk echo of {args.bulk:g} MiB, 1 connection", "bulk_mib_s", " MiB/s", 2, "bulk_tandem_over_linux",
        "(tandem/Linux)")
    common.print_table(["figure"] + names + (["ratio"] if linux else []), rows)
    print(f"results: {os.path.relpath(out, common.ROOT)}")
    sys.exit(1 if any("error" in r for rs in runs.values() for r in rs) else 0)


if __name__ == "__main__":
    main()
