"""Hot spots from py-spy's collapsed stacks (`py-spy record --format raw`).

    python benchmarks/profile_summary.py FILE.txt [FILE.txt...] [--top 25] [--match TEXT]

For each file: the number of samples, then the functions by *inclusive* share
(the function or anything it calls is on the stack) and by *self* share (it is
the innermost frame). `--match` also prints the inclusive share of frames whose
text contains TEXT (e.g. `--match pydantic`).
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

# a py-spy frame: "function (path/to/file.py:LINE)"; the line number is dropped to group by function
_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^:()]+)(?::\d+)?\)$")


def frame_name(frame: str) -> str:
    m = _FRAME.match(frame.strip())
    if not m:
        return frame.strip()
    path = m["file"]
    for marker in ("site-packages/", "lib/python3.11/", "/work/main/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{m['func']} ({path})"


def load(path: Path) -> tuple[int, Counter[str], Counter[str], list[tuple[list[str], int]]]:
    total = 0
    inclusive: Counter[str] = Counter()
    self_: Counter[str] = Counter()
    stacks: list[tuple[list[str], int]] = []
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = [frame_name(f) for f in stack.split(";")]
        total += n
        for name in set(frames):
            inclusive[name] += n
        self_[frames[-1]] += n
        stacks.append((frames, n))
    return total, inclusive, self_, stacks


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("files", nargs="+", type=Path)
    p.add_argument("--top", type=int, default=25)
    p.add_argument("--match", action="append", default=[])
    args = p.parse_args()
    for path in args.files:
        total, inclusive, self_, stacks = load(path)
        print(f"== {path} ({total} samples)")
        if not total:
            continue
        print("  inclusive %")
        for name, n in inclusive.most_common(args.top):
            print(f"  {100 * n / total:5.1f}  {name}")
        print("  self %")
        for name, n in self_.most_common(args.top):
            print(f"  {100 * n / total:5.1f}  {name}")
        for text in args.match:
            n = sum(c for frames, c in stacks if any(text in f for f in frames))
            print(f"  {100 * n / total:5.1f}  any frame matching {text!r}")


if __name__ == "__main__":
    main()
