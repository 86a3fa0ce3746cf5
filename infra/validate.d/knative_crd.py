"""Adapts Knative Serving's Service CRD (../shared/knative/service-crd.yaml) to Kubernetes 1.20,
whose API server reads `default: ""` as null and refuses it ("must be of type string").

Each `default: ""` is dropped. A list-map key that thereby loses its default is made required
instead, as 1.20 demands of list-map keys. Prints the adapted CRD as YAML.
Also used by validate_knative.py for the schema it checks Knative objects against.
"""
import sys

import yaml


def adapt(node):
    if isinstance(node, dict):
        if node.get("default") == "" and node.get("type") == "string":
            del node["default"]
        for value in node.values():
            adapt(value)
        keys = node.get("x-kubernetes-list-map-keys")
        items = node.get("items")
        if keys and isinstance(items, dict):
            props = items.get("properties", {})
            required = items.setdefault("required", [])
            for key in keys:
                if "default" not in props.get(key, {}) and key not in required:
                    required.append(key)
    elif isinstance(node, list):
        for value in node:
            adapt(value)
    return node


def load(path):
    with open(path) as handle:
        return adapt(yaml.safe_load(handle))


if __name__ == "__main__":
    yaml.safe_dump(load(sys.argv[1]), sys.stdout, sort_keys=False)
