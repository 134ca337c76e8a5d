#!/usr/bin/env python3
"""Compile-time benchmark of pipecast's headers (issue 13, "Light headers").

Compiles three small translation units, each several times, and prints the CPU seconds
(user + sys of the compiler) and the peak memory of each: the median and the range.

  book        #include <pipecast/data/book.hpp>, a book of one deal        target < 0.7 s
  forecast    #include <pipecast/forecast/forecast.hpp>, a weighted forecast   target < 2 s
  umbrella    #include <pipecast/pipecast.hpp>, an empty main         target < 3.5 s
and, to show where the time goes (no target):
  forecast_w  the forecast unit with the win probabilities given: weighted_forecast(g, b, w)
  headers     every standard and third-party header the library includes, an empty main

Usage: python3 bench/compile_times.py [--cxx g++] [--repeat 3] [--flags "-std=c++20 -O2"]
The targets are those of the issue on the machine of its figures; the script reports, it
does not fail on them (compile times depend on the machine and its load).
"""
import argparse
import os
import pathlib
import re
import resource
import statistics
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent

# A one-stage graph and a book of one deal; `{forecast}` is the weighted forecast's call.
FORECAST = """#include <pipecast/forecast/forecast.hpp>
#include <pipecast/model/stage_graph.hpp>
int main() {{
    using namespace pipecast;
    Eigen::MatrixXd t(1, 3);
    t << 0.0, 0.3, 0.7;
    const stage_graph g({{{{"Lead", dwell_distribution::exponential(10.0)}}}}, {{{{"Won", true}}, {{"Lost", false}}}}, t);
    book b(g);
    b.add("d1", 0, 1000.0, 0.0);
    return {forecast}.weighted_total > 0.0 ? 0 : 1;
}}
"""

UNITS = {
    "book": ("""#include <pipecast/data/book.hpp>
int main() {
    pipecast::deal d;
    d.id = "a";
    return static_cast<int>(d.id.size());
}
""", 0.7),
    "forecast": (FORECAST.format(forecast="weighted_forecast(g, b)"), 2.0),
    "umbrella": ("""#include <pipecast/pipecast.hpp>
int main() { return 0; }
""", 3.5),
    "forecast_w": (FORECAST.format(forecast="weighted_forecast(g, b, std::vector<double>{0.3})"), None),
    "headers": (None, None),  # third_party_headers()
}


def third_party_headers():
    """A unit of every `#include <...>` of the library's headers that is not pipecast's own."""
    found = set()
    for header in sorted((ROOT / "include" / "pipecast").rglob("*.hpp")):
        for line in header.read_text(encoding="utf-8").splitlines():
            m = re.match(r"\s*#\s*include\s*<([^>]+)>", line)
            if m and not m.group(1).startswith("pipecast/"):
                found.add(m.group(1))
    return "".join(f"#include <{h}>\n" for h in sorted(found)) + "int main() { return 0; }\n"


def compile_once(cxx, flags, source, workdir):
    src = workdir / "unit.cpp"
    src.write_text(source)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    cmd = [cxx, *flags, "-I", str(ROOT / "include"), "-I", "/usr/include/eigen3", "-c", str(src), "-o",
           str(workdir / "unit.o")]
    done = subprocess.run(cmd, capture_output=True, text=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        sys.exit(f"compile_times: {' '.join(cmd)} failed:\n{done.stderr[:4000]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return cpu, after.ru_maxrss / 1024.0  # peak RSS of the largest child so far, MiB


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cxx", default=os.environ.get("CXX", "g++"))
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--flags", default="-std=c++20 -O2")
    ap.add_argument("units", nargs="*", default=list(UNITS))
    args = ap.parse_args()
    flags = args.flags.split()
    print(f"{'unit':10} {'CPU s (median)':>15} {'range':>15} {'target':>8}  peak RSS (MiB, any run so far)")
    with tempfile.TemporaryDirectory() as tmp:
        work = pathlib.Path(tmp)
        for name in args.units:
            if name not in UNITS:
                sys.exit(f"compile_times: unknown unit '{name}' (known: {', '.join(UNITS)})")
            source, target = UNITS[name]
            if source is None:
                source = third_party_headers()
            runs = [compile_once(args.cxx, flags, source, work) for _ in range(args.repeat)]
            cpu = [r[0] for r in runs]
            shown = f"{target:8.1f}" if target is not None else f"{'-':>8}"
            print(f"{name:10} {statistics.median(cpu):15.2f} {min(cpu):7.2f}-{max(cpu):<7.2f} {shown}  "
                  f"{max(r[1] for r in runs):.0f}")


if __name__ == "__main__":
    main()
