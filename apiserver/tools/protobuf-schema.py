#!/usr/bin/env python3
"""Writes apiserver/src/protobuf/schema.txt: the protobuf field numbers of
the Kubernetes types the API server decodes (what typed clients such as
`kubectl create namespace|deployment|service` send), with their JSON names.

Field numbers and types come from the k8s-pb crate (prost code generated
from Kubernetes' generated.proto files), JSON names from k8s-openapi's serde
code; both are read from the cargo registry. Run it after bumping either
crate:  python3 apiserver/tools/protobuf-schema.py
"""
import glob
import os
import re
import sys

REG = glob.glob(os.path.expanduser("~/.cargo/registry/src/*/"))
PB = sorted(glob.glob(REG[0] + "k8s-pb-0.9.*/src"))[-1]
OA = sorted(glob.glob(REG[0] + "k8s-openapi-0.29.*/src/v1_33"))[-1]
ROOTS = [
    "api.core.v1.Namespace", "api.core.v1.Service", "api.core.v1.Pod", "api.core.v1.Node",
    "api.core.v1.Endpoints", "api.apps.v1.Deployment", "api.apps.v1.ReplicaSet",
    "api.discovery.v1.EndpointSlice",
]
# Messages with a JSON form of their own.
SPECIAL = {
    "apimachinery.pkg.apis.meta.v1.Time": "time",
    "apimachinery.pkg.apis.meta.v1.MicroTime": "time",
    "apimachinery.pkg.apis.meta.v1.Duration": "skip",
    "apimachinery.pkg.apis.meta.v1.FieldsV1": "skip",
    "apimachinery.pkg.util.intstr.IntOrString": "intorstr",
    "apimachinery.pkg.api.resource.Quantity": "quantity",
    "apimachinery.pkg.runtime.RawExtension": "raw",
}


def norm(name):
    return name.replace("r#", "").rstrip("_").replace("_", "").lower()


def parse_pb():
    messages = {}
    for path in glob.glob(PB + "/**/mod.rs", recursive=True):
        module = os.path.relpath(os.path.dirname(path), PB).split(os.sep)
        text = open(path).read()
        for m in re.finditer(r"pub struct (\w+) \{(.*?)\n\}", text, re.S):
            fields = []
            body = m.group(2) + "\n"
            for f in re.finditer(r"#\[prost\(([^\]]*)\)\]\s*pub ([\w#]+):\s*(.*?),?\s*\n\s*(?=///|#\[|$)", body, re.S):
                attrs, rust, ty = f.groups()
                ty = " ".join(ty.split()).replace("< ", "<").replace(", >", ">").rstrip(",")
                tag = re.search(r'tag = "(\d+)"', attrs).group(1)
                fields.append((int(tag), rust, attrs, ty))
            messages[".".join(module + [m.group(1)])] = (module, fields)
    return messages


def resolve(module, ty):
    inner = re.findall(r"((?:super::)*(?:\w+::)*[A-Z]\w*),?\s*>+\s*$", ty)
    if not inner:
        return None
    path = inner[0].split("::")
    ups = path.count("super")
    rest = [p for p in path if p != "super"]
    base = module[: len(module) - ups] if ups else module
    return ".".join(base + rest)


def parse_openapi():
    names = {}
    for path in glob.glob(OA + "/**/*.rs", recursive=True):
        module = os.path.relpath(os.path.dirname(path), OA).split(os.sep)
        text = open(path).read()
        s = re.search(r"pub struct (\w+)", text)
        if not s:
            continue
        keys = {norm(k2): k1 for k1, k2 in re.findall(r'"(\w+)" => Field::Key_(\w+)', text)}
        names[".".join(module + [s.group(1)])] = keys
    return names


def main():
    pb = parse_pb()
    oa = parse_openapi()
    out, todo, seen = [], list(ROOTS), set()
    while todo:
        name = todo.pop()
        if name in seen or name in SPECIAL:
            continue
        seen.add(name)
        if name not in pb:
            sys.exit(f"no protobuf message {name}")
        module, fields = pb[name]
        json_names = oa.get(name, {})
        for tag, rust, attrs, ty in fields:
            json = json_names.get(norm(rust))
            if json is None:
                # A field newer than k8s-openapi's API level: camelCase.
                parts = rust.replace("r#", "").split("_")
                json = parts[0] + "".join(p[:1].upper() + p[1:] for p in parts[1:])
            kind, target = None, None
            if attrs.startswith("btree_map"):
                value = re.search(r'btree_map = "string, (\w+)"', attrs).group(1)
                kind = {"string": "map_ss", "bytes": "map_sb", "message": "map_sm"}[value]
                if value == "message":
                    target = resolve(module, ty)
            else:
                scalar = attrs.split(",")[0].strip().split(" ")[0]
                repeated = "repeated" in attrs
                if scalar == "message":
                    target = resolve(module, ty)
                    kind = SPECIAL.get(target, "msg")
                    if kind == "skip":
                        continue
                    kind = kind + "s" if repeated else kind
                else:
                    base = {"string": "str", "bool": "bool", "int32": "int", "int64": "int", "bytes": "bytes",
                            "double": "float"}[scalar]
                    kind = base + "s" if repeated else base
            if target and target not in SPECIAL:
                todo.append(target)
            line = f"{name} {tag} {json} {kind}"
            if target and kind in ("msg", "msgs", "map_sm"):
                line += f" {target}"
            out.append(line)
    dest = os.path.join(os.path.dirname(__file__), "../src/protobuf/schema.txt")
    header = "# Generated by apiserver/tools/protobuf-schema.py from k8s-pb and k8s-openapi.\n" \
             "# message tag json-name kind [message-type]\n"
    open(dest, "w").write(header + "\n".join(sorted(out, key=lambda l: (l.split()[0], int(l.split()[1])))) + "\n")
    print(f"{len(seen)} messages, {len(out)} fields -> {os.path.normpath(dest)}")


main()
