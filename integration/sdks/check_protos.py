"""Checks fwasm's copies of the sidecar protos against the official packages' own: every
message fwasm declares, and every method it serves, with the same field names and numbers.

    python check_protos.py FWASM_PROTO_DIR LAYOTTO_PACKAGE_DIR

Dapr's side is read from the generated descriptors of the `dapr` PyPI package (so run it with
the Python that has it); Layotto's from the runtime.proto inside the `layotto` npm package.
"""

import re
import sys
from pathlib import Path

from dapr.proto.runtime.v1 import dapr_pb2


def declared(path):
    """{message: {field: number}} and [methods] of a proto file, comments and options aside."""
    text = re.sub(r"//.*", "", Path(path).read_text())
    messages = {}
    for match in re.finditer(r"\bmessage\s+(\w+)\s*\{", text):
        start, depth, end = match.end(), 1, match.end()
        while depth:
            depth += {"{": 1, "}": -1}.get(text[end], 0)
            end += 1
        flat = re.sub(r"\{[^{}]*\}", "", text[start : end - 1])
        fields = re.finditer(r"[\w.<>, ]+?\s+(\w+)\s*=\s*(\d+)\s*(?:\[[^\]]*\])?\s*;", flat)
        messages.setdefault(match.group(1), {f.group(1): int(f.group(2)) for f in fields})
    methods = re.findall(r"\brpc\s+(\w+)\s*\(", text)
    return messages, methods


def compare(what, ours, theirs_messages, theirs_methods):
    problems = []
    messages, methods = ours
    for name, fields in messages.items():
        theirs = theirs_messages.get(name)
        if theirs is None:
            problems.append(f"{what}: no message {name} upstream")
            continue
        for field, number in fields.items():
            if theirs.get(field) != number:
                problems.append(f"{what}: {name}.{field} is {number}, upstream {theirs.get(field)}")
    for method in methods:
        if method not in theirs_methods:
            problems.append(f"{what}: no method {method} upstream")
    return problems, len(messages) + len(methods)


def dapr_upstream():
    """Dapr's messages reachable from its service, and its methods, from the descriptors."""
    service = dapr_pb2.DESCRIPTOR.services_by_name["Dapr"]
    found = {}

    def walk(message):
        if message.full_name in found:
            return
        found[message.full_name] = message
        for field in message.fields:
            if field.message_type is not None:
                walk(field.message_type)
        for nested in message.nested_types:
            walk(nested)

    for method in service.methods:
        walk(method.input_type)
        walk(method.output_type)
    messages = {
        m.name: {f.name: f.number for f in m.fields}
        for m in found.values()
        if m.full_name.startswith("dapr.proto.")
    }
    return messages, [m.name for m in service.methods]


def main():
    protos, layotto_package = Path(sys.argv[1]), Path(sys.argv[2])
    dapr_messages, dapr_methods = dapr_upstream()
    layotto_messages, layotto_methods = declared(
        layotto_package / "proto/runtime/v1/runtime.proto"
    )
    problems, checked = [], 0
    for what, path, messages, methods in [
        ("dapr", "dapr/proto/runtime/v1/dapr.proto", dapr_messages, dapr_methods),
        ("dapr", "dapr/proto/common/v1/common.proto", dapr_messages, dapr_methods),
        ("layotto", "spec/proto/runtime/v1/runtime.proto", layotto_messages, layotto_methods),
    ]:
        found, count = compare(what, declared(protos / path), messages, methods)
        problems += found
        checked += count
    for problem in problems:
        print(problem)
    print(f"protos: {checked - len(problems)} passed, {len(problems)} failed")
    sys.exit(1 if problems else 0)


main()
