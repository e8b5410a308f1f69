"""Vendor the subset of Zoom's published Meeting API spec that telemeet uses.

Usage (from the repo root):
    python infra/zoom-sandbox/vendor_spec.py [SOURCE] [--out PATH]

SOURCE defaults to ../shared/fixtures/zoom/ZoomMeetingAPISpec.json (relative to
the repo root). The output (default infra/zoom-sandbox/spec/zoom-meetings-subset.json)
is committed; re-run this script rather than editing it by hand.
"""

import argparse
import copy
import hashlib
import json
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_SOURCE = REPO_ROOT / ".." / "shared" / "fixtures" / "zoom" / "ZoomMeetingAPISpec.json"
DEFAULT_OUT = Path(__file__).resolve().parent / "spec" / "zoom-meetings-subset.json"

# (method, path) as written in Zoom's spec, i.e. relative to the https://api.zoom.us/v2 server.
OPERATIONS = [
    ("post", "/users/{userId}/meetings"),
    ("get", "/users/{userId}/meetings"),
    ("get", "/meetings/{meetingId}"),
    ("patch", "/meetings/{meetingId}"),
    ("delete", "/meetings/{meetingId}"),
    ("put", "/meetings/{meetingId}/status"),
]
HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


def iter_refs(node):
    """Yield every "$ref" string found anywhere inside node."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from iter_refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from iter_refs(item)


def pointer_tokens(ref):
    """'#/components/schemas/Foo' -> ['components', 'schemas', 'Foo'] (local refs only)."""
    if not ref.startswith("#/"):
        raise SystemExit(f"only local $refs are supported, found {ref!r}")
    return [t.replace("~1", "/").replace("~0", "~") for t in ref[2:].split("/")]


def resolve_pointer(doc, ref):
    node = doc
    for token in pointer_tokens(ref):
        node = node[token]
    return node


def set_pointer(doc, ref, value):
    *parents, last = pointer_tokens(ref)
    node = doc
    for token in parents:
        node = node.setdefault(token, {})
    node[last] = value


def patch_user_id_one_of(paths):
    """Zoom's userId parameter is `oneOf: [string, email string, enum ["me"]]`. The branches
    overlap, so strict oneOf rejects "me" and every email address, the very values Zoom
    documents and accepts. anyOf keeps every constraint and accepts them."""
    for item in paths.values():
        for method in HTTP_METHODS & item.keys():
            for param in item[method].get("parameters", []):
                if param.get("name") == "userId" and "oneOf" in param.get("schema", {}):
                    param["schema"]["anyOf"] = param["schema"].pop("oneOf")


# Deliberate deviations from the source, each recorded in info.x-vendored-from.patches.
PATCHES = [
    (patch_user_id_one_of, "userId path parameter: oneOf -> anyOf (overlapping branches reject 'me' and emails)"),
]


def extract(source, source_name, source_sha256):
    paths = {}
    for method, path in OPERATIONS:
        item = source["paths"][path]
        out_item = paths.setdefault(
            path, {k: v for k, v in item.items() if k not in HTTP_METHODS}
        )
        out_item[method] = copy.deepcopy(item[method])
    for patch, _ in PATCHES:
        patch(paths)

    subset = {
        "openapi": source["openapi"],
        "info": dict(source["info"]),
        "servers": source.get("servers", []),
        "paths": paths,
    }
    if "security" in source:
        subset["security"] = source["security"]

    # Copy referenced components, following $refs inside them until closed.
    pending = list(iter_refs(paths))
    seen = set()
    while pending:
        ref = pending.pop()
        if ref in seen:
            continue
        seen.add(ref)
        target = resolve_pointer(source, ref)
        set_pointer(subset, ref, target)
        pending.extend(iter_refs(target))

    # Security requirements name schemes (not $refs); copy those schemes too.
    requirements = list(subset.get("security", []))
    for item in paths.values():
        for method in HTTP_METHODS & item.keys():
            requirements.extend(item[method].get("security", []))
    schemes = source.get("components", {}).get("securitySchemes", {})
    for name in sorted({name for req in requirements for name in req}):
        subset.setdefault("components", {}).setdefault("securitySchemes", {})[name] = schemes[name]

    used_tags = {t for item in paths.values() for m in HTTP_METHODS & item.keys() for t in item[m].get("tags", [])}
    tags = [t for t in source.get("tags", []) if t["name"] in used_tags]
    if tags:
        subset["tags"] = tags

    subset["info"]["x-vendored-from"] = {
        "file": source_name,
        "sha256": source_sha256,
        "title": source["info"].get("title"),
        "version": source["info"].get("version"),
        "operations": [f"{m.upper()} {p}" for m, p in OPERATIONS],
        "extractedBy": "infra/zoom-sandbox/vendor_spec.py",
        "patches": [description for _, description in PATCHES],
    }
    return subset


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", nargs="?", default=str(DEFAULT_SOURCE))
    parser.add_argument("--out", default=str(DEFAULT_OUT))
    parser.add_argument("--check", action="store_true",
                        help="exit 1 if --out differs from what the source gives (writes nothing)")
    args = parser.parse_args(argv)

    raw = Path(args.source).read_bytes()
    subset = extract(json.loads(raw), Path(args.source).name, hashlib.sha256(raw).hexdigest())
    out = Path(args.out)
    if args.check:
        current = json.loads(out.read_text(encoding="utf-8")) == subset
        print(f"{out}: {'current' if current else 'STALE: re-run vendor_spec.py'}", file=sys.stderr)
        sys.exit(0 if current else 1)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(subset, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {out} ({len(OPERATIONS)} operations)", file=sys.stderr)


if __name__ == "__main__":
    main()
