"""openapi/openapi.yaml as the tests check the service's answers against it: the response a
path, method and status declare (check), its examples (example, request_example), and the
schemas behind them with their local $refs resolved (validator, resolve). Needs PyYAML and
jsonschema (scripts/deps.sh test), so `import cs` leaves it out: `from cs.openapi import ...`."""
import os
import time

import jsonschema
import yaml

from .procs import ROOT

SPEC_PATH = os.path.join(ROOT, "openapi", "openapi.yaml")
with open(SPEC_PATH, encoding="utf-8") as _f:
    SPEC = yaml.safe_load(_f)


def validator(schema):
    """A Draft 2020-12 validator for one schema of the description; `$ref`s to
    #/components/... resolve because the document's components travel with it."""
    root = {"$schema": "https://json-schema.org/draft/2020-12/schema",
            "components": SPEC["components"], "allOf": [schema]}
    jsonschema.Draft202012Validator.check_schema(root)
    return jsonschema.Draft202012Validator(root)


def resolve(node):
    """Follows a local `$ref` (#/components/...) to the object it names."""
    while isinstance(node, dict) and "$ref" in node:
        target = SPEC
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part.replace("~1", "/").replace("~0", "~")]  # JSON Pointer
        node = target
    return node


def operation(path, method):
    return SPEC["paths"][path][method.lower()]


def declared(path, method, status):
    responses = operation(path, method)["responses"]
    assert str(status) in responses, f"{method} {path} answered {status}, not described"
    return resolve(responses[str(status)])


def examples(media):
    """The examples of a media type object, by name ('' for a lone `example`)."""
    if "example" in media:
        return {"": media["example"]}
    return {name: ex["value"] for name, ex in media.get("examples", {}).items()}


def check(resp, path, method):
    """Asserts that the answer is one the description declares for path/method: the status
    is listed, the Content-Type is exactly one of its media types, declared headers are
    there and match, and the body validates against the media type's schema. Returns the
    media type object, for comparisons with its examples (None for a bodiless answer)."""
    spec = declared(path, method, resp.status)
    ctype = resp.header("Content-Type")
    content = spec.get("content", {})
    if not content:
        assert resp.body == b"" and ctype is None, f"{method} {path} {resp.status}: the " \
            f"description has no body, the service sent {ctype!r} {resp.body[:200]!r}"
        return None
    assert ctype in content, f"{method} {path} {resp.status}: Content-Type {ctype!r} is not " \
                             f"one of {sorted(content)}"
    for name, h in spec.get("headers", {}).items():
        value = resp.header(name)
        assert value is not None, f"{method} {path} {resp.status}: header {name} missing"
        validator(resolve(h)["schema"]).validate(value)
    media = content[ctype]
    body = resp.json() if ctype.split(";")[0] == "application/json" else resp.body.decode()
    validator(media["schema"]).validate(body)
    return media


def example(path, method, status, name=""):
    spec = declared(path, method, status)
    (media,) = spec["content"].values()
    return examples(media)[name]


def request_example(path, name, method="post"):
    (media,) = resolve(operation(path, method)["requestBody"])["content"].values()
    return examples(media)[name]


def iso(ms):
    """Milliseconds since the epoch as the admin API writes a time: 2026-11-29T10:00:00.000Z."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + f".{ms % 1000:03d}Z"
