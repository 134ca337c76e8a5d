#!/usr/bin/env python3
"""The CI benchmark gate: tuned kernels against their naive baselines, as ratios.

Runs the benchmarks named in bench/floors.json briefly (one run of each benchmark
executable, filtered to the benchmarks it needs, Google Benchmark JSON output), computes for
every pair the speed-up of the tuned kernel over its naive baseline measured in the same run,
prints the comparison table and exits 1 when a speed-up falls below its committed floor.

Ratios, not times: a slower or busier machine slows both sides alike. Both sides are timed in
process or thread CPU seconds (Google Benchmark's cpu_time), so that other processes on a
loaded machine change the ratio less than they change the wall time.

    speed-up = (tuned units / tuned CPU seconds) / (baseline units / baseline CPU seconds)

where the units are the work of one iteration (deal-paths, deals, one distribution) given in
floors.json. A benchmark that reports an error (the AVX2 kernel on a CPU without AVX2) is
shown as skipped; a benchmark missing from the output (renamed or removed) fails the gate.

    python3 bench/check_floors.py --bin build/ci/bench            # run and check
    python3 bench/check_floors.py --results build/ci/bench-gate   # check saved JSON only
"""
import argparse
import json
import os
import subprocess
import sys


def load_floors(path):
    with open(path, encoding="utf-8") as f:
        spec = json.load(f)
    for p in spec["pairs"]:
        for key in ("name", "bench", "tuned", "baseline", "floor"):
            if key not in p:
                sys.exit(f"{path}: pair {p.get('name', '?')} has no '{key}'")
    return spec


def run_benchmarks(spec, bin_dir, out_dir, min_time):
    """One run per benchmark executable, filtered to the benchmarks the pairs name."""
    os.makedirs(out_dir, exist_ok=True)
    by_bench = {}
    for p in spec["pairs"]:
        names = by_bench.setdefault(p["bench"], [])
        for side in ("tuned", "baseline"):
            if p[side]["benchmark"] not in names:
                names.append(p[side]["benchmark"])
    for bench, names in by_bench.items():
        exe = os.path.join(bin_dir, bench)
        if not os.access(exe, os.X_OK):
            sys.exit(f"check_floors: {exe} not found (build the benchmarks: -DPIPECAST_BUILD_BENCHMARKS=ON)")
        out = os.path.join(out_dir, bench + ".json")
        cmd = [exe, "--benchmark_filter=^(" + "|".join(names) + ")(/|$)", f"--benchmark_min_time={min_time}",
               "--benchmark_format=json", "--benchmark_out_format=json", f"--benchmark_out={out}"]
        print("check_floors: " + " ".join(cmd), flush=True)
        r = subprocess.run(cmd, stdout=subprocess.DEVNULL)
        if r.returncode != 0:
            sys.exit(f"check_floors: {bench} exited with status {r.returncode}")


def read_results(out_dir, benches):
    """{bench: {name without the /process_time, /real_time, /iterations:N suffixes: entry}}"""
    results = {}
    for bench in benches:
        path = os.path.join(out_dir, bench + ".json")
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        entries = {}
        for b in data.get("benchmarks", []):
            if b.get("run_type", "iteration") != "iteration":
                continue
            parts = [x for x in b["name"].split("/")
                     if x not in ("process_time", "real_time", "manual_time") and not x.startswith(("iterations:", "min_time:"))]
            entries["/".join(parts)] = b
        results[bench] = entries
    return results


UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}


def rate(entry, side):
    """Units of work per CPU second, or None with the reason."""
    if entry is None:
        return None, "missing"
    if entry.get("error_occurred"):
        return None, "skipped: " + entry.get("error_message", "error")
    cpu = entry["cpu_time"] * UNIT_SECONDS[entry.get("time_unit", "ns")]
    if cpu <= 0:
        return None, "no CPU time"
    return side["units"] / cpu, None


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--floors", default=os.path.join(here, "floors.json"))
    ap.add_argument("--bin", help="folder of the bench_* executables: run them")
    ap.add_argument("--results", help="folder of <bench>.json results (written with --bin; read alone without)")
    ap.add_argument("--min-time", type=float, default=None, help="--benchmark_min_time (default: floors.json's)")
    args = ap.parse_args()
    spec = load_floors(args.floors)
    out_dir = args.results or os.path.join(args.bin or ".", "..", "bench-gate")
    if args.bin:
        run_benchmarks(spec, args.bin, out_dir, args.min_time if args.min_time is not None else spec.get("min_time", 0.1))
    elif not args.results:
        ap.error("give --bin (run the benchmarks) or --results (check saved JSON)")
    results = read_results(out_dir, sorted({p["bench"] for p in spec["pairs"]}))

    rows, breaches, skipped = [], 0, 0
    for p in spec["pairs"]:
        entries = results[p["bench"]]
        t, why_t = rate(entries.get(p["tuned"]["benchmark"]), p["tuned"])
        b, why_b = rate(entries.get(p["baseline"]["benchmark"]), p["baseline"])
        why = why_t or why_b
        if why and why.startswith("skipped"):
            rows.append((p["name"], "-", "-", p["floor"], why))
            skipped += 1
        elif why:
            rows.append((p["name"], "-", "-", p["floor"], "FAIL (" + why + ": " +
                         (p["tuned"]["benchmark"] if why_t else p["baseline"]["benchmark"]) + ")"))
            breaches += 1
        else:
            ratio = t / b
            ok = ratio >= p["floor"]
            breaches += 0 if ok else 1
            rows.append((p["name"], f"{ratio:.3g}", f"{t:.4g} / {b:.4g}", p["floor"], "ok" if ok else "BELOW FLOOR"))

    w = max(len(r[0]) for r in rows)
    print(f"\n{'pair':<{w}}  {'speed-up':>8}  {'floor':>6}  {'units per CPU s (tuned / baseline)':<34}  status")
    for name, ratio, rates, floor, status in rows:
        print(f"{name:<{w}}  {ratio:>8}  {floor:>6}  {rates:<34}  {status}")
    print(f"\n{len(rows) - breaches - skipped} ok, {skipped} skipped, {breaches} below floor or missing "
          f"(floors: {os.path.relpath(args.floors)})")
    return 1 if breaches else 0


if __name__ == "__main__":
    sys.exit(main())
