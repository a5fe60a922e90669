#!/usr/bin/env python3
"""Prints every file-level import cycle in the crates under harness/*/src; exits 1 if any.

For each crate root (src/lib.rs, src/main.rs) it follows `mod NAME;` declarations to map files to
module paths, then draws an arrow from a file to the file of every module it imports:
`use crate::a::b::{c, d}`, `crate::a::b::f()` written in code, `super::...` resolved from the
file's own module, `self::...`, and `use child::...` of a module the file declares. A path
names the file of its longest prefix that is a module (`crate::a::b::Type` -> a/b.rs).
Declaring a module (`mod a;`) is not an import. `super::` inside an inline module (such as
`mod tests { use super::*; }`) is the file itself, so it draws no arrow.

A cycle is a strongly connected component of more than one file (which includes a file that
imports a descendant importing it back, for example a mod.rs re-exporting from a child that
uses the re-export).

Usage: scripts/import-cycles.py [SRC_DIR ...]   (default: harness/*/src)
"""

import glob
import os
import re
import sys

IDENT = r"[A-Za-z_][A-Za-z0-9_]*"


def strip_comments_and_strings(text):
    """Blanks comments, string and char literals (keeping newlines) so paths and braces in
    them are not read as code."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            i = j
        elif text.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if text.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif text.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            out.append("\n" * text.count("\n", i, j))
            i = j
        elif c == "r" and re.match(r'r#*"', text[i:i + 260]) and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
            m = re.match(r'r(#*)"', text[i:])
            end = '"' + m.group(1)
            j = text.find(end, i + len(m.group(0)))
            j = n if j < 0 else j + len(end)
            out.append(' ""' + "\n" * text.count("\n", i, j))
            i = j
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append('""' + "\n" * text.count("\n", i, j))
            i = j + 1
        elif c == "'":
            # A char literal ('a', '\n', '\u{1F600}'), not a lifetime ('a).
            m = re.match(r"'(\\.[^']*|[^\\'])'", text[i:])
            if m:
                out.append("' '")
                i += len(m.group(0))
            else:
                out.append(c)
                i += 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def module_files(root):
    """Maps module path tuples (() for the crate root) to files, following `mod NAME;`."""
    mods = {(): root}
    todo = [((), root)]
    while todo:
        path, f = todo.pop()
        base = os.path.basename(f)
        d = os.path.dirname(f)
        child_dir = d if base in ("lib.rs", "main.rs", "mod.rs") else os.path.join(d, base[:-3])
        text = strip_comments_and_strings(open(f, encoding="utf-8").read())
        for m in re.finditer(r"(?m)^\s*(?:#\[[^\]]*\]\s*)*(?:pub(?:\([^)]*\))?\s+)?mod\s+(" + IDENT + r")\s*;", text):
            name = m.group(1)
            for cand in (os.path.join(child_dir, name + ".rs"), os.path.join(child_dir, name, "mod.rs")):
                if os.path.exists(cand):
                    mods[path + (name,)] = cand
                    todo.append((path + (name,), cand))
                    break
    return mods


def split_use_tree(tree):
    """Expands a use tree (`a::b::{c, d::{e, self}}`) into its paths (lists of segments)."""
    # `a::b as c` names a::b: drop the alias before the spaces go.
    tree = re.sub(r"\s+as\s+" + IDENT, "", tree)
    tree = re.sub(r"\s+", "", tree)

    def parse(s, prefix):
        out = []
        depth, start = 0, 0
        items = []
        for i, c in enumerate(s):
            if c == "{":
                depth += 1
            elif c == "}":
                depth -= 1
            elif c == "," and depth == 0:
                items.append(s[start:i])
                start = i + 1
        items.append(s[start:])
        for item in items:
            if not item:
                continue
            if "{" in item:
                head, rest = item.split("{", 1)
                rest = rest[: rest.rindex("}")]
                head_segs = [x for x in head.split("::") if x]
                out.extend(parse(rest, prefix + head_segs))
            else:
                segs = [x for x in item.split("::") if x]
                if segs and segs[-1] == "self":
                    segs = segs[:-1]
                elif segs and segs[-1] == "*":
                    segs = segs[:-1]
                out.append(prefix + segs)
        return out

    return parse(tree, [])


def inline_mod_spans(text):
    """Character ranges of inline modules (`mod name { ... }`)."""
    spans = []
    for m in re.finditer(r"\bmod\s+" + IDENT + r"\s*\{", text):
        depth, j = 1, m.end()
        while j < len(text) and depth:
            if text[j] == "{":
                depth += 1
            elif text[j] == "}":
                depth -= 1
            j += 1
        spans.append((m.start(), j))
    return spans


def imports_of(path, f, mods):
    """The module paths `f` (module `path`) refers to."""
    text = strip_comments_and_strings(open(f, encoding="utf-8").read())
    spans = inline_mod_spans(text)
    children = {p[-1] for p in mods if len(p) == len(path) + 1 and p[: len(path)] == path}

    def inline(pos):
        return any(a <= pos < b for a, b in spans)

    refs = []

    def add(segs, pos):
        if not segs:
            return
        head = segs[0]
        if head == "crate":
            refs.append(tuple(segs[1:]))
        elif head in ("super", "self"):
            base = list(path)
            # Inside an inline module, `super` is this file's module: no arrow.
            if inline(pos) and head == "super":
                return
            rest = list(segs)
            while rest and rest[0] == "super":
                if not base:
                    return
                base.pop()
                rest.pop(0)
            if rest and rest[0] == "self":
                rest.pop(0)
            refs.append(tuple(base + rest))
        elif head in children:
            refs.append(tuple(list(path) + segs))

    for m in re.finditer(r"\buse\s+([^;]+);", text):
        for segs in split_use_tree(m.group(1)):
            add(segs, m.start())
    for m in re.finditer(r"(?<![A-Za-z0-9_:])((?:crate|super|self)(?:::" + IDENT + r")+)", text):
        add(m.group(1).split("::"), m.start())
    for m in re.finditer(r"(?<![A-Za-z0-9_:])(" + IDENT + r")((?:::" + IDENT + r")+)", text):
        if m.group(1) in children:
            add((m.group(1) + m.group(2)).split("::"), m.start())
    targets = set()
    for r in refs:
        for k in range(len(r), -1, -1):
            if r[:k] in mods:
                targets.add(r[:k])
                break
    targets.discard(path)
    return targets


def sccs(graph):
    """Tarjan's strongly connected components."""
    index, low, on, stack, out = {}, {}, set(), [], []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
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
            out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def cycle_in(comp, graph):
    """One cycle through the first file of a component, as a list of files."""
    start = comp[0]
    members = set(comp)
    prev = {start: None}
    queue = [start]
    while queue:
        v = queue.pop(0)
        for w in sorted(graph[v]):
            if w not in members:
                continue
            if w == start:
                path = [v]
                while prev[path[-1]] is not None:
                    path.append(prev[path[-1]])
                return list(reversed(path)) + [start]
            if w not in prev:
                prev[w] = v
                queue.append(w)
    return comp


def check(src):
    found = 0
    for root_name in ("lib.rs", "main.rs"):
        root = os.path.join(src, root_name)
        if not os.path.exists(root):
            continue
        mods = module_files(root)
        graph = {}
        for path, f in mods.items():
            graph[f] = {mods[t] for t in imports_of(path, f, mods)} - {f}
        for comp in sccs(graph):
            if len(comp) > 1:
                found += 1
                rel = lambda p: os.path.relpath(p, src)
                print(f"{src} ({root_name}): cycle of {len(comp)} files: {', '.join(rel(c) for c in comp)}")
                print("  e.g. " + " -> ".join(rel(c) for c in cycle_in(comp, graph)))
    return found


def main():
    dirs = sys.argv[1:] or sorted(glob.glob("harness/*/src"))
    total = 0
    for d in dirs:
        n = check(d)
        if n == 0:
            print(f"{d}: no import cycle")
        total += n
    sys.exit(1 if total else 0)


if __name__ == "__main__":
    main()
