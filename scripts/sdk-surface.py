#!/usr/bin/env python3
"""The size of dlocker-sdk's public surface: the names the crate root re-exports (leaves of its
`pub use` items, cfg'd ones included), its public modules, and the names `protocol` re-exports.
Run from the workspace root: `scripts/sdk-surface.py`. The whole surface as rustdoc sees it:
`cargo doc -p dlocker-sdk --no-deps` then count the links in target/doc/dlocker_sdk/all.html."""
import re, sys
src = open(sys.argv[1] if len(sys.argv) > 1 else "client-sdk/src/lib.rs").read()
names = []
for m in re.finditer(r"^pub use ([^;]*);", src, re.M | re.S):
    body = m.group(1)
    if "{" in body:
        inner = body[body.index("{") + 1 : body.rindex("}")]
        names += [p.strip() for p in inner.split(",") if p.strip()]
    else:
        names.append(body.split(" as ")[-1].split("::")[-1].strip())
mods = re.findall(r"^pub mod (\w+)", src, re.M)
print(f"root re-exports: {len(names)}, public modules: {len(mods)} ({' '.join(mods)})")
try:
    proto = open("client-sdk/src/protocol.rs").read()
except FileNotFoundError:
    proto = ""
inner = []
for m in re.finditer(r"^pub use ([^;]*);", proto, re.M | re.S):
    body = m.group(1)
    body = body[body.index("{") + 1 : body.rindex("}")] if "{" in body else body.split("::")[-1]
    inner += [p.strip() for p in body.split(",") if p.strip()]
print(f"protocol re-exports: {len(inner)}")
