#!/usr/bin/env python3
"""Checks Muster's lock annotations with clang's -Wthread-safety.

GCC builds Muster and ignores ABSL_GUARDED_BY, ABSL_EXCLUSIVE_LOCKS_REQUIRED
and the rest; clang checks them, over the LOCKABLE types in src/core/mutex.h.
This runs clang in syntax-only mode over every translation unit of the build
(src/, tests/, bench/, examples/, from build/compile_commands.json) that sees
a lock annotation, with the include paths and macros GCC used and only the
thread-safety warnings on, and prints what it finds: a guarded member touched
without its lock, a function called without a lock it requires, an annotation
on a mutex clang cannot check.
Exits 1 on any finding or on a file clang cannot compile.

No file is exempt: every lock in the tree is a src/core/mutex.h type, and a
new std::mutex with an annotation is a finding (clang cannot check it).

Usage: scripts/check-thread-safety.py [--build-dir build] [--jobs N] [--clang clang++-14] [FILE...]
(FILE...: check only these translation units, paths or globs from the root.)
`make check-locks` runs it; `make test` runs that first.
"""

import argparse
import concurrent.futures
import fnmatch
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHECKED_DIRS = ("src/", "tests/", "bench/", "examples/")

# Flags that choose what is compiled; everything else GCC was given (warnings,
# optimisation, debug info, sanitizers, GCC-only options) is dropped.
KEEP_JOINED = ("-D", "-U", "-I", "-std=", "-iquote", "-isystem")
KEEP_WITH_ARG = ("-D", "-U", "-I", "-iquote", "-isystem", "-include")
KEEP_EXACT = ("-pthread",)

CLANG_FLAGS = [
    "-fsyntax-only",
    "-fno-color-diagnostics",
    "-Wno-everything",  # clang's other warnings are GCC's business here
    "-Wthread-safety",
]

# A translation unit none of whose own files (itself and the headers it
# includes from this repository) carries one of these cannot produce a
# finding: clang reports only against annotated declarations, and system
# headers are exempt. Such units are not compiled, which halves the run.
ANNOTATION = re.compile(
    r"\bABSL_(GUARDED_BY|PT_GUARDED_BY|ACQUIRED_AFTER|ACQUIRED_BEFORE|EXCLUSIVE_LOCKS_REQUIRED|"
    r"SHARED_LOCKS_REQUIRED|LOCKS_EXCLUDED|LOCK_RETURNED|LOCKABLE|SCOPED_LOCKABLE|"
    r"EXCLUSIVE_LOCK_FUNCTION|SHARED_LOCK_FUNCTION|UNLOCK_FUNCTION|EXCLUSIVE_TRYLOCK_FUNCTION|"
    r"SHARED_TRYLOCK_FUNCTION|ASSERT_EXCLUSIVE_LOCK|ASSERT_SHARED_LOCK)\b")
INCLUDE = re.compile(r'^\s*#\s*include\s*["<]([^">]+)[">]', re.M)

GENERATED = re.compile(r"^\d+ (warning|error)s?( and \d+ (warning|error)s?)? generated\.$")
DIAG = re.compile(r"^(?P<file>[^\s:][^:]*):(?P<line>\d+):(?P<col>\d+): (?P<level>warning|error|fatal error|note): ")


def matches(rel, patterns):
    return any(fnmatch.fnmatchcase(rel, p) for p in patterns)


def relative(path, directory):
    return os.path.relpath(os.path.realpath(os.path.join(directory, path)), ROOT)


def clang_args(entry, clang):
    args = entry["arguments"] if "arguments" in entry else shlex.split(entry["command"])
    out = [clang]
    i = 1
    # A compiler launcher (ccache) comes before the compiler.
    while i < len(args) and not args[i].startswith("-"):
        i += 1
    while i < len(args):
        a = args[i]
        if a in KEEP_WITH_ARG and i + 1 < len(args):
            out += [a, args[i + 1]]
            i += 2
            continue
        if a in KEEP_EXACT or (a.startswith(KEEP_JOINED) and a not in KEEP_WITH_ARG):
            out.append(a)
        i += 1
    return out + CLANG_FLAGS + [entry["file"]]


def split_diagnostics(stderr, directory):
    """Groups clang's output into diagnostics: (file, first line, full text)."""
    groups = []
    for line in stderr.splitlines():
        if line.startswith("In file included from") or line.startswith("                 from "):
            continue
        if GENERATED.match(line):
            continue
        m = DIAG.match(line)
        if m and m.group("level") != "note":
            groups.append([relative(m.group("file"), directory), line, [line]])
        elif groups:
            groups[-1][2].append(line)
        elif line.strip():
            groups.append(["?", line, [line]])
    return [(g[0], g[1], "\n".join(g[2])) for g in groups]


class IncludeScanner:
    """Whether a file or a header it includes from this repository is annotated."""

    def __init__(self):
        self.files = {}  # path -> (annotated, included names)

    def scan(self, path):
        if path not in self.files:
            try:
                with open(path, errors="replace") as f:
                    text = f.read()
            except OSError:
                text = ""
            self.files[path] = (bool(ANNOTATION.search(text)), INCLUDE.findall(text))
        return self.files[path]

    def annotated(self, entry):
        args = entry["arguments"] if "arguments" in entry else shlex.split(entry["command"])
        dirs = []
        for i, a in enumerate(args):
            d = args[i + 1] if a in ("-I", "-iquote", "-isystem") and i + 1 < len(args) else \
                a[2:] if a.startswith("-I") and len(a) > 2 else None
            if d is not None:
                d = os.path.realpath(os.path.join(entry["directory"], d))
                if d.startswith(ROOT + os.sep):  # this repository's and generated headers
                    dirs.append(d)
        todo = [os.path.realpath(os.path.join(entry["directory"], entry["file"]))]
        seen = set()
        while todo:
            path = todo.pop()
            if path in seen:
                continue
            seen.add(path)
            annotated, names = self.scan(path)
            if annotated:
                return True
            for name in names:
                for d in [os.path.dirname(path)] + dirs:
                    candidate = os.path.realpath(os.path.join(d, name))
                    if os.path.isfile(candidate):
                        todo.append(candidate)
                        break
        return False


def check(entry, clang):
    proc = subprocess.run(clang_args(entry, clang), cwd=entry["directory"],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return proc.returncode, split_diagnostics(proc.stderr, entry["directory"])


def find_clang(wanted):
    for name in ([wanted] if wanted else ["clang++-14", "clang++"]):
        if shutil.which(name):
            return name
    sys.exit("check-thread-safety: clang++ not found (scripts/install-deps.sh installs it)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build-dir", default=os.path.join(ROOT, "build"))
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--clang", default=None)
    parser.add_argument("only", nargs="*", metavar="FILE", help="check only these (paths or globs)")
    opts = parser.parse_args()

    clang = find_clang(opts.clang)
    db = os.path.join(opts.build_dir, "compile_commands.json")
    if not os.path.exists(db):
        sys.exit(f"check-thread-safety: {db} missing; configure the build first (make build)")
    with open(db) as f:
        entries = json.load(f)

    scanner = IncludeScanner()
    checked, unannotated, seen = [], [], set()
    for e in entries:
        rel = relative(e["file"], e["directory"])
        if not rel.startswith(CHECKED_DIRS) or rel in seen:
            continue  # generated code (build/), or a file built twice
        seen.add(rel)
        if opts.only and not matches(rel, opts.only):
            continue
        if scanner.annotated(e):
            checked.append((rel, e))
        else:
            unannotated.append(rel)

    start = time.monotonic()
    findings = {}  # first line -> (translation unit, text); a header's finding once
    failed = []
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, opts.jobs)) as pool:
        results = pool.map(lambda item: (item[0], check(item[1], clang)), checked)
        for rel, (code, diags) in results:
            for file, first, text in diags:
                if first not in findings:
                    findings[first] = (rel, text)
            if code != 0 and not diags:
                failed.append(rel)

    for first, (rel, text) in findings.items():
        text = text.replace(ROOT + os.sep, "")
        print(f"{text}\n  (translation unit: {rel})\n")
    for rel in failed:
        print(f"check-thread-safety: clang failed on {rel} without a diagnostic")
    elapsed = time.monotonic() - start
    print(f"check-thread-safety: {len(checked)} translation units checked, {len(findings)} findings, "
          f"{elapsed:.0f} s with {opts.jobs} jobs ({clang}); {len(unannotated)} more include "
          f"no lock annotation and were not compiled")
    return 1 if findings or failed else 0


if __name__ == "__main__":
    sys.exit(main())
