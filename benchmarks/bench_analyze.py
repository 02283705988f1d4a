"""Speed of ``emollama analyze`` (clues tier) on the example clip and the shared MER clips.

Prints one table: per clip the wall and CPU time of the analysis with models already loaded,
seconds of processing per second of media, the decode-only time of the same clip (same frame
sampling, plus the audio track), and the process's peak RSS so far; above it, the time for
imports + model loading.

    python benchmarks/bench_analyze.py [--clips DIR] [--repeat 2]
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux reports KiB


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=Path, default=ROOT.parent / "shared" / "data" / "clips")
    parser.add_argument("--repeat", type=int, default=2, help="runs per clip; the best is reported")
    parser.add_argument("--fps", type=float, default=10.0)
    args = parser.parse_args()

    t0 = time.perf_counter()
    c0 = time.process_time()
    from emollama.api import Analyzer

    imports_s = time.perf_counter() - t0
    analyzer = Analyzer(fps=args.fps)
    load_wall = time.perf_counter() - t0
    load_cpu = time.process_time() - c0
    from emollama.media.decode import MediaReader

    clips = [ROOT / "examples" / "astronaut_happy.mp4"]
    if args.clips.is_dir():
        clips += sorted(args.clips.glob("*.mp4"))
    else:
        print(f"(no {args.clips}: benchmarking the example clip only)", file=sys.stderr)

    print(f"imports {imports_s:.2f} s + model load {load_wall - imports_s:.2f} s = {load_wall:.2f} s wall "
          f"({load_cpu:.2f} s CPU); peak RSS after load {peak_rss_mb():.0f} MB")
    header = ("clip", "media s", "wall s", "CPU s", "s per media s", "decode-only s", "ASR s", "peak RSS MB")
    rows = []
    totals = [0.0, 0.0]
    for clip in clips:
        best_wall, best_cpu, asr = float("inf"), float("inf"), 0.0
        for _ in range(args.repeat):
            w, c = time.perf_counter(), time.process_time()
            result = analyzer.analyze(clip)
            wall, cpu = time.perf_counter() - w, time.process_time() - c
            if wall < best_wall:
                best_wall, best_cpu, asr = wall, cpu, result.timings_s.get("asr_s", 0.0)
        d = time.perf_counter()
        reader = MediaReader(clip)
        n = sum(1 for _ in reader.frames(args.fps))
        reader.audio()
        decode = time.perf_counter() - d
        dur = result.media.duration_s
        totals[0] += dur
        totals[1] += best_wall
        rows.append((clip.name, f"{dur:.1f}", f"{best_wall:.2f}", f"{best_cpu:.2f}", f"{best_wall / dur:.2f}",
                     f"{decode:.2f} ({n} fr)", f"{asr:.2f}", f"{peak_rss_mb():.0f}"))
    rows.append(("all clips", f"{totals[0]:.1f}", f"{totals[1]:.2f}", "", f"{totals[1] / totals[0]:.2f}", "", "",
                 f"{peak_rss_mb():.0f}"))
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    line = " | ".join("-" * w for w in widths)
    print("| " + " | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)) + " |")
    print("| " + line + " |")
    for r in rows:
        print("| " + " | ".join(str(v).ljust(w) for v, w in zip(r, widths, strict=True)) + " |")


if __name__ == "__main__":
    main()
