#!/usr/bin/env python3
"""Draws the `crate::` imports between modules of crates/server/src and prints the cycles (strongly connected components)."""
import re, pathlib, sys
root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else 'crates/server/src')
def modname(p):
    rel = p.relative_to(root).with_suffix('')
    parts = list(rel.parts)
    if parts[-1] in ('mod', 'lib'): parts = parts[:-1]
    return '::'.join(parts) or 'crate'
mods = {modname(p): p for p in root.rglob('*.rs')}
edges = {m: set() for m in mods}
for m, p in mods.items():
    text = p.read_text()
    text = text.split('#[cfg(test)]')[0]
    for hit in re.finditer(r'crate::((?:[a-z_0-9]+::)*[a-z_0-9]+)', text):
        path = hit.group(1).split('::')
        for k in range(len(path), 0, -1):
            cand = '::'.join(path[:k])
            if cand in mods and cand != m:
                edges[m].add(cand); break
    # `super::x` inside routes
    for hit in re.finditer(r'super::([a-z_0-9]+)', text):
        parent = '::'.join(m.split('::')[:-1])
        cand = (parent + '::' if parent else '') + hit.group(1)
        if cand in mods and cand != m: edges[m].add(cand)
# Tarjan
idx = {}; low = {}; st = []; on = set(); sccs = []; c = [0]
def sc(v):
    idx[v] = low[v] = c[0]; c[0] += 1; st.append(v); on.add(v)
    for w in edges[v]:
        if w not in idx: sc(w); low[v] = min(low[v], low[w])
        elif w in on: low[v] = min(low[v], idx[w])
    if low[v] == idx[v]:
        comp = []
        while True:
            w = st.pop(); on.discard(w); comp.append(w)
            if w == v: break
        if len(comp) > 1: sccs.append(sorted(comp))
sys.setrecursionlimit(10000)
for v in mods:
    if v not in idx: sc(v)
print(f"modules: {len(mods)}, import cycles: {len(sccs)}")
for s in sccs:
    print(f"  {len(s)} modules: {', '.join(s)}")
    for a in s:
        print(f"    {a} -> {', '.join(sorted(e for e in edges[a] if e in s))}")
