"""Checks custom resources against their CRD's schema, strictly.

usage: crd_objects.py CRD.yaml [CRD.yaml ...] -- MANIFEST.yaml [...]

Every object whose apiVersion/kind one of the CRDs defines is validated with jsonschema
(Draft 7) against that version's openAPIV3Schema. Like the API server's pruning, but strict: an
object schema with properties and no `x-kubernetes-preserve-unknown-fields` gets
`additionalProperties: false`, so a misspelt field fails here instead of vanishing silently
(Kubernetes 1.20 drops unknown fields without a word). The Knative CRD is adapted to 1.20 by
knative_crd.py first. Prints what it checked; exits 1 on the first file with errors.
"""
import os
import sys

import jsonschema
import yaml

sys.path.insert(0, os.path.dirname(__file__))
import knative_crd  # noqa: E402


def strict(node):
    if isinstance(node, dict):
        for key, value in list(node.items()):
            if key in ("properties", "patternProperties"):
                for child in value.values():
                    strict(child)
            elif key in ("items", "additionalProperties", "not") and isinstance(value, dict):
                strict(value)
            elif key in ("allOf", "anyOf", "oneOf") and isinstance(value, list):
                for child in value:
                    strict(child)
        if (
            node.get("type") == "object"
            and "properties" in node
            and not node.get("x-kubernetes-preserve-unknown-fields")
            and "additionalProperties" not in node
        ):
            node["additionalProperties"] = False
        # Kubernetes' int-or-string and embedded resources are not plain JSON Schema.
        if node.get("x-kubernetes-int-or-string"):
            node.pop("type", None)
            node["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    return node


def schemas(crd_paths):
    found = {}
    for path in crd_paths:
        crd = knative_crd.load(path)
        group = crd["spec"]["group"]
        kind = crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            schema = strict(version["schema"]["openAPIV3Schema"])
            # metadata is the API server's; only its shape matters here.
            schema.setdefault("properties", {})["metadata"] = {"type": "object"}
            schema["properties"]["apiVersion"] = {"type": "string"}
            schema["properties"]["kind"] = {"type": "string"}
            found[(f"{group}/{version['name']}", kind)] = schema
    return found


def main(argv):
    if "--" not in argv:
        sys.exit(__doc__)
    split = argv.index("--")
    known = schemas(argv[:split])
    failed = False
    checked = 0
    for path in argv[split + 1:]:
        with open(path) as handle:
            documents = [doc for doc in yaml.safe_load_all(handle) if doc]
        for doc in documents:
            key = (doc.get("apiVersion"), doc.get("kind"))
            if key not in known:
                continue
            name = f"{path}: {key[1]} {doc.get('metadata', {}).get('name')}"
            errors = sorted(
                jsonschema.Draft7Validator(known[key]).iter_errors(doc), key=lambda e: list(e.path)
            )
            for error in errors:
                where = "/".join(str(p) for p in error.path)
                print(f"ERROR {name}: {where}: {error.message}")
                failed = True
            if not errors:
                checked += 1
                print(f"ok {name}")
    if failed:
        sys.exit(1)
    print(f"{checked} custom resources match their CRD schemas")


if __name__ == "__main__":
    main(sys.argv[1:])
