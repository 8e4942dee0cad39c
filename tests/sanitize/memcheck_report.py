"""Summarise a valgrind memcheck log: fail on any error or definite leak that involves popglm.

valgrind also reports known false positives in the dynamic loader (glibc's vectorised strncmp)
and CPython (objects read before memcheck knows they are initialised); those are counted and
printed but do not fail the check. An error "involves popglm" when any frame of its stack lies
in popglm's extension modules (`_core*.so`) or its C++ sources.

    python tests/sanitize/memcheck_report.py memcheck.log
"""

from __future__ import annotations

import re
import sys
from collections import Counter


def error_blocks(text: str) -> list[str]:
    """The log's error and leak records: blocks of lines from a headline to a blank record."""
    blocks: list[list[str]] = []
    current: list[str] | None = None
    for line in text.splitlines():
        body = re.sub(r"^==\d+== ?", "", line)
        headline = re.match(
            r"(Invalid |Conditional jump|Use of uninitialised|Mismatched|Syscall param|"
            r"Source and destination overlap|Argument .* of function|\d[\d,]* bytes in .* "
            r"definitely lost)",
            body,
        )
        if headline:
            current = [body]
            blocks.append(current)
        elif current is not None and body.strip():
            current.append(body)
        else:
            current = None
    return ["\n".join(block) for block in blocks]


def main(path: str) -> int:
    text = open(path, encoding="utf-8", errors="replace").read()
    summary = re.findall(r"ERROR SUMMARY: (\d+) errors", text)
    if not summary:
        print(f"{path}: no ERROR SUMMARY: did valgrind run to the end?")
        return 2
    ours, others = [], Counter()
    for block in error_blocks(text):
        if re.search(r"popglm/_core[^ ]*\.so|cpp/(src|include|bindings)/", block):
            ours.append(block)
        else:
            others[block.splitlines()[0].split(" at ")[0][:60]] += 1
    print(f"valgrind ERROR SUMMARY: {summary[-1]} errors (all sources)")
    for kind, count in others.most_common():
        print(f"  outside popglm (loader/CPython): {count} x {kind}")
    print(f"errors or definite leaks involving popglm: {len(ours)}")
    for block in ours:
        print(block, end="\n\n")
    return 1 if ours else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
