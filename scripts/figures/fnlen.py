#!/usr/bin/env python3
"""Lengths of Rust functions (brace counting), outside #[cfg(test)] modules."""
import re, sys, pathlib
FN = re.compile(r'^\s*(pub(\([^)]*\))?\s+)?(async\s+)?(const\s+)?(unsafe\s+)?fn\s+(\w+)')
def strip(line):
    line = re.sub(r'"(\\.|[^"\\])*"', '""', line)
    line = re.sub(r"'(\\.|[^'\\])'", "''", line)
    return line.split('//')[0]
res = []
for root in sys.argv[1:] or ['crates']:
    for p in pathlib.Path(root).rglob('*.rs'):
        if '/tests/' in str(p) or '/benches/' in str(p): continue
        lines = p.read_text().splitlines()
        i = 0; skip_test = False
        while i < len(lines):
            l = lines[i]
            if l.strip().startswith('#[cfg(test)]'):
                break  # test modules sit at the end of files
            m = FN.match(l)
            if m:
                depth = 0; started = False; j = i
                while j < len(lines):
                    s = strip(lines[j])
                    if not started and ';' in s and '{' not in s: break
                    depth += s.count('{') - s.count('}')
                    if '{' in s: started = True
                    if started and depth <= 0: break
                    j += 1
                if started:
                    res.append((j - i + 1, f"{p}:{i+1}", m.group(6)))
                    i = j
            i += 1
res.sort(reverse=True)
over60 = [r for r in res if r[0] > 60]; over100 = [r for r in res if r[0] > 100]
for n, where, name in over60: print(n, where, name)
print(f"functions: {len(res)}, over 60: {len(over60)}, over 100: {len(over100)}")
