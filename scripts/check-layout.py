#!/usr/bin/env python3
"""The layout's rules, checked (CI runs this; ARCHITECTURE.md states them):

1. No circle between the modules of a crate: among the modules that share a parent, the
   references one makes to another (`crate::a::…`, `super::a::…`, `self::a::…` paths in
   its code, `use` or not) never lead back to it. A module may use its own ancestors and
   descendants freely.
2. The crate graph (`cargo metadata`) has no circle, and:
   - the caller's library (`pss`) depends on neither `pss-trace` nor `pss-engine`: it
     cannot name ptrace, nor link the injection code;
   - the engine (`pss-engine`) depends on neither `pss` nor `pss-export`/`pss-stack`, and
     framehop, addr2line and gimli are not in its dependency tree;
   - stacks (`pss-stack`) take `pss` only as an optional dependency (its `snapshot`
     feature): a walk is over records and a `pss_types::Memory` (CI also builds it
     without the feature);
   - only the Linux layers (`pss-sys`, `pss-trace`) and the FFI edges (`pss-capi`,
     `pss-py`) may hold `unsafe` code: every other crate root says
     `#![deny(unsafe_code)]`.

Prints what breaks a rule and exits 1; prints one line and exits 0 otherwise.
"""

import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SAFE_CRATES = ["pss-types", "pss-wire", "pss-engine", "pss", "pss-export", "pss-stack",
               "pss-json", "pss-cli"]
PATH_RE = re.compile(r"\b(crate|super|self)((?:::[a-z_][a-z0-9_]*)+)")


def module_of(src: Path, f: Path) -> tuple:
    """The module path of source file `f` under `src` (`lib.rs`/`main.rs`: the root)."""
    parts = list(f.relative_to(src).with_suffix("").parts)
    if parts[-1] in ("mod", "lib", "main"):
        parts = parts[:-1]
    if parts and parts[0] == "bin":
        return None
    return tuple(parts)


def crate_modules(src: Path) -> dict:
    mods = {}
    for f in sorted(src.rglob("*.rs")):
        m = module_of(src, f)
        if m is not None:
            mods[m] = f
    return mods


def resolve(mods: dict, start: tuple, segments: list) -> tuple:
    """The longest module path that `start` + `segments` names."""
    path = list(start)
    best = tuple(start)
    for s in segments:
        path.append(s)
        if tuple(path) in mods:
            best = tuple(path)
        else:
            break
    return best


def strip_comments(text: str) -> str:
    text = re.sub(r"//[^\n]*", "", text)
    return re.sub(r"/\*.*?\*/", "", text, flags=re.S)


def module_cycles(crate: str, src: Path) -> list:
    mods = crate_modules(src)
    edges = {}
    for m, f in mods.items():
        code = strip_comments(f.read_text())
        # A `#[cfg(test)] mod tests` may reach anywhere: not part of the layout.
        code = code.split("#[cfg(test)]\nmod tests")[0]
        for kind, rest in PATH_RE.findall(code):
            segs = rest.strip(":").split("::")
            if kind == "crate":
                start = ()
            elif kind == "self":
                start = m
            else:
                up = 1
                while segs and segs[0] == "super":
                    segs = segs[1:]
                    up += 1
                start = m[: max(len(m) - up, 0)]
            target = resolve(mods, start, segs)
            common = 0
            while common < min(len(m), len(target)) and m[common] == target[common]:
                common += 1
            if common == len(m) or common == len(target):
                continue  # an ancestor or a descendant
            a, b = m[: common + 1], target[: common + 1]
            edges.setdefault(a, set()).add(b)
    return [(crate, c) for c in cycles(edges)]


def cycles(edges: dict) -> list:
    """The strongly connected components with more than one node (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in list(edges):
        if v not in index:
            visit(v)
    return out


def main() -> int:
    problems = []
    meta = json.loads(subprocess.run(
        ["cargo", "metadata", "--format-version", "1"],
        cwd=ROOT, check=True, stdout=subprocess.PIPE).stdout)
    members = {p["id"]: p for p in meta["packages"] if p["id"] in meta["workspace_members"]}
    for p in members.values():
        src = Path(p["manifest_path"]).parent / "src"
        for c in module_cycles(p["name"], src):
            problems.append(f"{c[0]}: modules in a circle: " +
                            ", ".join("::".join(m) or "(root)" for m in c[1]))

    nodes = {n["id"]: n for n in meta["resolve"]["nodes"]}
    name_of = {p["id"]: p["name"] for p in meta["packages"]}

    def deps(pkg_id):
        """Every package `pkg_id` depends on, normal dependencies only (what it links)."""
        seen, todo = set(), [pkg_id]
        while todo:
            for d in nodes[todo.pop()]["deps"]:
                normal = any(k["kind"] is None for k in d["dep_kinds"])
                if normal and d["pkg"] not in seen:
                    seen.add(d["pkg"])
                    todo.append(d["pkg"])
        return {name_of[i] for i in seen}

    by_name = {p["name"]: i for i, p in members.items()}
    for name, pid in by_name.items():
        if name in deps(pid):
            problems.append(f"crate {name} depends on itself (a circle of crates)")
    caller = deps(by_name["pss"])
    for bad in ("pss-trace", "pss-engine"):
        if bad in caller:
            problems.append(f"the caller's library pss depends on {bad}")
    engine = deps(by_name["pss-engine"])
    for bad in ("pss", "pss-export", "pss-stack", "framehop", "addr2line", "gimli"):
        if bad in engine:
            problems.append(f"the engine pss-engine has {bad} in its dependency tree")
    stack_deps = members[by_name["pss-stack"]]["dependencies"]
    if any(d["name"] == "pss" and not d.get("optional") for d in stack_deps):
        problems.append("pss-stack depends on pss unconditionally (it should be its "
                        "optional `snapshot` feature)")
    for name in SAFE_CRATES:
        pkg = members[by_name[name]]
        roots = [t["src_path"] for t in pkg["targets"] if "lib" in t["kind"]] or \
                [t["src_path"] for t in pkg["targets"] if "bin" in t["kind"]]
        for r in roots:
            if "#![deny(unsafe_code)]" not in Path(r).read_text():
                problems.append(f"{name}: {Path(r).relative_to(ROOT)} lacks #![deny(unsafe_code)]")

    for p in problems:
        print(p)
    if problems:
        return 1
    print(f"layout: {len(members)} crates, no circle, dependency and unsafe rules hold")
    return 0


if __name__ == "__main__":
    sys.exit(main())
