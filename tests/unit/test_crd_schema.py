"""The CRD schemas in crds/ and the pydantic models in selfheal.domain agree, and examples/ passes both."""

from __future__ import annotations

import copy
import re
import sys
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel, ValidationError

from selfheal.domain.policy import PolicySpec, PolicyStatus, SelfHealingPolicy
from selfheal.domain.ticket import (
    ConditionType,
    IssueStatus,
    ObjectMeta,
    PodRecord,
    PullRequestStatus,
    Reason,
    RemediationTicket,
    TemplateRecord,
    TicketEvidence,
    TicketPhase,
    TicketSpec,
    TicketStatus,
    TicketVerdict,
    set_condition,
    to_wire,
)

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))

from policy_cases import (  # noqa: E402
    BAD_POLICIES,
    BASE_SPEC,
    PRUNED_POLICIES,
    PYDANTIC_ONLY_BAD_POLICIES,
    PolicyCase,
)

__all__ = ["BAD_POLICIES", "PRUNED_POLICIES", "PYDANTIC_ONLY_BAD_POLICIES", "PolicyCase"]

CRD_DIR = ROOT / "crds"
EXAMPLES_DIR = ROOT / "examples"


def load_crd(plural: str) -> dict[str, Any]:
    docs = [d for d in yaml.safe_load_all((CRD_DIR / f"{plural}.yaml").read_text()) if d]
    assert len(docs) == 1
    return docs[0]


POLICY_CRD = load_crd("selfhealingpolicies")
TICKET_CRD = load_crd("remediationtickets")


def root_schema(crd: dict[str, Any]) -> dict[str, Any]:
    return crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


POLICY_SCHEMA = root_schema(POLICY_CRD)
TICKET_SCHEMA = root_schema(TICKET_CRD)


# --- A small structural-schema engine: pruning, defaulting and validation as the apiserver does ---


def prune_and_default(value: Any, schema: dict[str, Any]) -> Any:
    """``value`` with unknown fields dropped and missing defaulted fields filled in, recursively."""
    if isinstance(value, dict) and schema.get("type") == "object":
        props = schema.get("properties")
        out = {}
        if props is not None and not schema.get("x-kubernetes-preserve-unknown-fields"):
            out = {k: v for k, v in value.items() if k in props}
        else:
            out = dict(value)
        if props:
            for name, sub in props.items():
                if name not in out and "default" in sub:
                    out[name] = copy.deepcopy(sub["default"])
            for name in list(out):
                if name in props:
                    out[name] = prune_and_default(out[name], props[name])
        elif isinstance(schema.get("additionalProperties"), dict):
            out = {k: prune_and_default(v, schema["additionalProperties"]) for k, v in out.items()}
        return out
    if isinstance(value, list) and schema.get("type") == "array":
        return [prune_and_default(v, schema["items"]) for v in value]
    return value


def _type_ok(value: Any, type_: str) -> bool:
    if type_ == "object":
        return isinstance(value, dict)
    if type_ == "array":
        return isinstance(value, list)
    if type_ == "string":
        return isinstance(value, str)
    if type_ == "boolean":
        return isinstance(value, bool)
    if type_ == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if type_ == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    raise AssertionError(f"unknown type {type_}")


def _format_ok(value: str, fmt: str) -> bool:
    try:
        if fmt == "date-time":
            datetime.fromisoformat(value.replace("Z", "+00:00"))
        elif fmt == "date":
            date.fromisoformat(value)
    except ValueError:
        return False
    return True


def validate(value: Any, schema: dict[str, Any], path: str = "") -> list[str]:
    """Errors of ``value`` against a structural schema (an empty list when it is valid)."""
    errors: list[str] = []
    type_ = schema.get("type")
    if type_ is not None and not _type_ok(value, type_):
        return [f"{path}: must be of type {type_}"]
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{path}: unsupported value {value!r}")
    if isinstance(value, int | float) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            errors.append(f"{path}: should be >= {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            errors.append(f"{path}: should be <= {schema['maximum']}")
    if isinstance(value, str):
        if "minLength" in schema and len(value) < schema["minLength"]:
            errors.append(f"{path}: shorter than {schema['minLength']}")
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            errors.append(f"{path}: longer than {schema['maxLength']}")
        if "pattern" in schema and not re.search(schema["pattern"], value):
            errors.append(f"{path}: should match {schema['pattern']}")
        if "format" in schema and not _format_ok(value, schema["format"]):
            errors.append(f"{path}: not a {schema['format']}")
    if isinstance(value, list):
        if "minItems" in schema and len(value) < schema["minItems"]:
            errors.append(f"{path}: fewer than {schema['minItems']} items")
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            errors.append(f"{path}: more than {schema['maxItems']} items")
        if "items" in schema:
            for i, item in enumerate(value):
                errors += validate(item, schema["items"], f"{path}[{i}]")
    if isinstance(value, dict):
        for name in schema.get("required", []):
            if name not in value:
                errors.append(f"{path}.{name}: required")
        props = schema.get("properties", {})
        for name, item in value.items():
            if name in props:
                errors += validate(item, props[name], f"{path}.{name}")
            elif isinstance(schema.get("additionalProperties"), dict):
                errors += validate(item, schema["additionalProperties"], f"{path}.{name}")
    if "anyOf" in schema and not any(not validate(value, branch, path) for branch in schema["anyOf"]):
        errors.append(f"{path}: must validate at least one schema (anyOf)")
    return errors


def admit(obj: dict[str, Any], schema: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """What the apiserver would store for ``obj``, and its validation errors."""
    stored = prune_and_default(copy.deepcopy(obj), schema)
    return stored, validate(stored, schema)


def policy_object(spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "selfheal.dev/v1alpha1",
        "kind": "SelfHealingPolicy",
        "metadata": {"name": "p", "namespace": "default"},
        "spec": copy.deepcopy(spec),
    }


# --- The engine itself ------------------------------------------------------------------------------


def test_engine_defaults_nested_objects_and_prunes_unknown_fields() -> None:
    stored, errors = admit(policy_object({"decision": {"bogus": 1}}), POLICY_SCHEMA)
    assert errors == []
    assert stored["spec"]["decision"] == {
        "confidenceThreshold": 70,
        "onUnhealthy": "abort",
        "onHealthy": "none",
        "onInconclusive": "none",
        "onAnalyzerUnavailable": "statistical",
        "dryRun": False,
    }
    assert stored["spec"]["triggers"]["logWatch"] == {"enabled": True, "intervalSeconds": 60}


def test_engine_reports_type_and_bound_errors() -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer", "maximum": 3}}, "required": ["n"]}
    assert validate({"n": 4}, schema)
    assert validate({"n": True}, schema)
    assert validate({}, schema)
    assert validate({"n": 3}, schema) == []


# --- Shape of the CRDs ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("crd", "kind", "plural", "short"),
    [
        (POLICY_CRD, "SelfHealingPolicy", "selfhealingpolicies", "shp"),
        (TICKET_CRD, "RemediationTicket", "remediationtickets", "rtk"),
    ],
)
def test_crd_identity(crd: dict[str, Any], kind: str, plural: str, short: str) -> None:
    assert crd["apiVersion"] == "apiextensions.k8s.io/v1"
    assert crd["kind"] == "CustomResourceDefinition"
    assert crd["metadata"]["name"] == f"{plural}.selfheal.dev"
    spec = crd["spec"]
    assert spec["group"] == "selfheal.dev"
    assert spec["scope"] == "Namespaced"
    assert spec["names"]["kind"] == kind
    assert spec["names"]["plural"] == plural
    assert spec["names"]["singular"] == kind.lower()
    assert spec["names"]["shortNames"] == [short]
    assert spec["names"]["categories"] == ["selfheal"]
    (version,) = spec["versions"]
    assert version["name"] == "v1alpha1"
    assert version["served"] is True and version["storage"] is True
    assert version["subresources"] == {"status": {}}


def _walk(schema: dict[str, Any], path: str):
    """Every (path, node) of the structural part of a schema (not inside anyOf)."""
    yield path, schema
    for name, sub in schema.get("properties", {}).items():
        yield from _walk(sub, f"{path}.{name}")
    if isinstance(schema.get("additionalProperties"), dict):
        yield from _walk(schema["additionalProperties"], f"{path}.*")
    if "items" in schema:
        yield from _walk(schema["items"], f"{path}[]")


@pytest.mark.parametrize("schema", [POLICY_SCHEMA, TICKET_SCHEMA], ids=["policy", "ticket"])
def test_every_property_has_type_and_description(schema: dict[str, Any]) -> None:
    missing = []
    for path, node in _walk(schema, ""):
        if path == ".metadata":
            # the apiserver allows nothing but type here
            assert node == {"type": "object"}
            continue
        if "type" not in node:
            missing.append(f"{path}: type")
        if not node.get("description"):
            missing.append(f"{path}: description")
    assert missing == []


@pytest.mark.parametrize("schema", [POLICY_SCHEMA, TICKET_SCHEMA], ids=["policy", "ticket"])
def test_schema_is_structural_for_v1_20(schema: dict[str, Any]) -> None:
    for path, node in _walk(schema, ""):
        assert "x-kubernetes-preserve-unknown-fields" not in node, path
        assert "x-kubernetes-validations" not in node, path  # CEL needs v1.25
        assert not ("properties" in node and "additionalProperties" in node), path
        if "default" in node:
            # the v1.20 apiserver refuses an empty-string default
            assert node["default"] != "", path
            assert validate(node["default"], node, path) == [], path
        for branch in node.get("anyOf", []):
            # junctors may only restrict what the structural part already declares
            for forbidden in ("type", "description", "default", "additionalProperties", "nullable"):
                assert forbidden not in branch, (path, forbidden)
            for prop in branch.get("properties", {}):
                assert prop in node["properties"], (path, prop)
            for sub in branch.get("properties", {}).values():
                assert "type" not in sub and "description" not in sub and "default" not in sub


def test_policy_printer_columns() -> None:
    columns = POLICY_CRD["spec"]["versions"][0]["additionalPrinterColumns"]
    assert [(c["name"], c["type"], c["jsonPath"], c.get("priority", 0)) for c in columns] == [
        ("Ready", "string", '.status.conditions[?(@.type=="Ready")].status', 0),
        ("Reason", "string", '.status.conditions[?(@.type=="Ready")].reason', 0),
        ("Rollouts", "integer", ".status.matchedCount", 0),
        ("Message", "string", '.status.conditions[?(@.type=="Ready")].message', 1),
        ("Age", "date", ".metadata.creationTimestamp", 0),
    ]


def test_ticket_printer_columns() -> None:
    columns = TICKET_CRD["spec"]["versions"][0]["additionalPrinterColumns"]
    assert [(c["name"], c["type"], c["jsonPath"]) for c in columns] == [
        ("Rollout", "string", ".spec.rollout"),
        ("Revision", "string", ".spec.revision"),
        ("Phase", "string", ".status.phase"),
        ("Issue", "integer", ".status.issue.number"),
        ("PR", "integer", ".status.pullRequest"),
        ("Age", "date", ".metadata.creationTimestamp"),
        ("Verdict", "string", ".spec.verdict.verdict"),
        ("Reason", "string", ".spec.headline"),
        ("Last Action", "string", ".status.lastAction.type"),
        ("Fingerprint", "string", ".spec.shortFingerprint"),
        ("Seen", "integer", ".status.occurrences"),
    ]
    assert [c.get("priority", 0) for c in columns] == [0] * 6 + [1] * 5


# --- The pydantic models and the schemas declare the same fields with the same rules -------------

_COMPARED = ("type", "minimum", "maximum", "minLength", "maxLength", "pattern", "minItems", "maxItems")


def _resolve(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    """A pydantic JSON-schema node with $ref followed and the ``| None`` branch removed."""
    node = dict(node)
    if "anyOf" in node:
        branches = [b for b in node["anyOf"] if b != {"type": "null"}]
        if len(branches) == 1:
            del node["anyOf"]
            node = {**branches[0], **node}
    if "$ref" in node:
        target = defs[node.pop("$ref").rsplit("/", 1)[1]]
        node = {**_resolve(target, defs), **{k: v for k, v in node.items() if k in ("default",)}}
    return node


def _compare(crd: dict[str, Any], js: dict[str, Any], defs: dict[str, Any], path: str, problems: list[str]) -> None:
    js = _resolve(js, defs)
    for key in _COMPARED:
        if crd.get(key) != js.get(key):
            problems.append(f"{path}: {key} crd={crd.get(key)!r} model={js.get(key)!r}")
    if crd.get("type") == "string" and crd.get("format") != js.get("format"):
        problems.append(f"{path}: format crd={crd.get('format')!r} model={js.get('format')!r}")
    if set(crd.get("enum", [])) != set(js.get("enum", [])):
        problems.append(f"{path}: enum crd={crd.get('enum')} model={js.get('enum')}")
    model_default = js.get("default")
    if "default" in crd and crd["default"] != {} and model_default is not None and crd["default"] != model_default:
        problems.append(f"{path}: default crd={crd['default']!r} model={model_default!r}")
    if "default" not in crd and model_default not in (None, "", [], {}, False, 0):
        problems.append(f"{path}: model default {model_default!r} missing from the CRD")
    if crd.get("type") == "object":
        crd_props = crd.get("properties", {})
        js_props = js.get("properties", {})
        if set(crd_props) != set(js_props):
            problems.append(
                f"{path}: properties crd-only={set(crd_props) - set(js_props)} model-only={set(js_props) - set(crd_props)}"
            )
        if set(crd.get("required", [])) != set(js.get("required", [])):
            problems.append(f"{path}: required crd={crd.get('required')} model={js.get('required')}")
        for name in set(crd_props) & set(js_props):
            _compare(crd_props[name], js_props[name], defs, f"{path}.{name}", problems)
        if isinstance(crd.get("additionalProperties"), dict):
            _compare(crd["additionalProperties"], js.get("additionalProperties", {}), defs, f"{path}.*", problems)
    if crd.get("type") == "array":
        _compare(crd["items"], js.get("items", {}), defs, f"{path}[]", problems)


@pytest.mark.parametrize(
    ("model", "schema"),
    [
        (PolicySpec, POLICY_SCHEMA["properties"]["spec"]),
        (PolicyStatus, POLICY_SCHEMA["properties"]["status"]),
        (TicketSpec, TICKET_SCHEMA["properties"]["spec"]),
        (TicketStatus, TICKET_SCHEMA["properties"]["status"]),
    ],
    ids=["policy-spec", "policy-status", "ticket-spec", "ticket-status"],
)
def test_models_mirror_schema(model: type[BaseModel], schema: dict[str, Any]) -> None:
    js = model.model_json_schema(by_alias=True, mode="validation")
    problems: list[str] = []
    _compare(schema, js, js.get("$defs", {}), model.__name__, problems)
    assert problems == []


def test_spec_models_refuse_unknown_fields_everywhere() -> None:
    for model in (PolicySpec, TicketSpec):
        js = model.model_json_schema(by_alias=True)
        for name, sub in [(model.__name__, js), *js.get("$defs", {}).items()]:
            if sub.get("type") == "object" and "properties" in sub:
                assert sub.get("additionalProperties") is False, name


# --- Examples ---------------------------------------------------------------------------------------

EXAMPLE_FILES = sorted(EXAMPLES_DIR.glob("*.yaml"))
EXAMPLE_DOCS = [
    pytest.param(doc, id=f"{path.name}#{i}")
    for path in EXAMPLE_FILES
    for i, doc in enumerate(d for d in yaml.safe_load_all(path.read_text()) if d)
]
POLICY_EXAMPLES = [p for p in EXAMPLE_DOCS if p.values[0]["kind"] == "SelfHealingPolicy"]


def test_examples_exist() -> None:
    names = {p.name for p in EXAMPLE_FILES}
    assert {"policy-minimal.yaml", "policy-full.yaml", "policy-jules.yaml", "policy-shadow-mode.yaml"} <= names
    assert len(POLICY_EXAMPLES) >= 4


@pytest.mark.parametrize("doc", EXAMPLE_DOCS)
def test_example_kinds_are_known(doc: dict[str, Any]) -> None:
    assert (doc["apiVersion"], doc["kind"]) in {("selfheal.dev/v1alpha1", "SelfHealingPolicy"), ("v1", "Secret")}
    assert doc["metadata"]["name"]


@pytest.mark.parametrize("doc", POLICY_EXAMPLES)
def test_example_policy_passes_crd_and_model(doc: dict[str, Any]) -> None:
    stored, errors = admit(doc, POLICY_SCHEMA)
    assert errors == []
    # nothing the user wrote is pruned
    assert prune_and_default(copy.deepcopy(doc["spec"]), {"type": "object"}) == doc["spec"]
    assert _without_defaults_added(stored["spec"], doc["spec"]) == doc["spec"]

    model = SelfHealingPolicy.model_validate(doc)
    # the apiserver's defaults and the model's defaults are the same
    assert PolicySpec.model_validate(stored["spec"]) == model.spec
    # what the model would write is valid, and the apiserver adds nothing to it
    wire = to_wire(model.spec)
    stored_again, errors = admit(policy_object(wire), POLICY_SCHEMA)
    assert errors == []
    assert stored_again["spec"] == wire


def _without_defaults_added(stored: Any, original: Any) -> Any:
    """``stored`` restricted to the keys present in ``original``."""
    if isinstance(stored, dict) and isinstance(original, dict):
        return {k: _without_defaults_added(stored[k], v) for k, v in original.items()}
    if isinstance(stored, list) and isinstance(original, list):
        return [_without_defaults_added(s, o) for s, o in zip(stored, original, strict=True)]
    return stored


def test_full_example_sets_every_section() -> None:
    doc = yaml.safe_load((EXAMPLES_DIR / "policy-full.yaml").read_text())
    spec = doc["spec"]
    assert set(spec) == set(POLICY_SCHEMA["properties"]["spec"]["properties"])
    assert spec["analysis"]["llm"]["provider"] == "openai"
    assert spec["analysis"]["llm"]["apiKeySecretRef"]["name"]
    assert spec["analysis"]["extraPrompt"]
    assert spec["analysis"]["redaction"]["patterns"]
    assert spec["remediation"]["github"]["agent"]["type"] == "copilot"


def test_shadow_mode_example_is_dry_run() -> None:
    doc = yaml.safe_load((EXAMPLES_DIR / "policy-shadow-mode.yaml").read_text())
    assert SelfHealingPolicy.model_validate(doc).spec.decision.dry_run is True


def test_empty_policy_spec_is_valid_for_both() -> None:
    stored, errors = admit(policy_object({}), POLICY_SCHEMA)
    assert errors == []
    assert PolicySpec.model_validate(stored["spec"]) == PolicySpec()


def test_minimal_github_defaults_agree() -> None:
    spec = {"remediation": {"github": {"repository": "o/r", "tokenSecretRef": {"name": "gh"}}}}
    stored, errors = admit(policy_object(spec), POLICY_SCHEMA)
    assert errors == []
    assert PolicySpec.model_validate(stored["spec"]) == PolicySpec.model_validate(spec)


# --- Bad policies -----------------------------------------------------------------------------------


def test_bad_policy_list_is_large_enough() -> None:
    assert len(BAD_POLICIES) >= 8
    assert len({c.id for c in BAD_POLICIES + PRUNED_POLICIES + PYDANTIC_ONLY_BAD_POLICIES}) == len(
        BAD_POLICIES + PRUNED_POLICIES + PYDANTIC_ONLY_BAD_POLICIES
    )


def test_base_spec_is_valid_for_both() -> None:
    _, errors = admit(policy_object(BASE_SPEC), POLICY_SCHEMA)
    assert errors == []
    PolicySpec.model_validate(BASE_SPEC)


@pytest.mark.parametrize("case", BAD_POLICIES, ids=lambda c: c.id)
def test_bad_policy_refused_by_both(case: PolicyCase) -> None:
    _, errors = admit(case.manifest(), POLICY_SCHEMA)
    assert errors, "the CRD schema accepted it"
    # the error names the field the way the apiserver does (no list indexes)
    assert any(re.sub(r"\[\d+\]", "", e).startswith(f".spec.{case.field}") for e in errors), errors
    with pytest.raises(ValidationError):
        PolicySpec.model_validate(case.spec)


@pytest.mark.parametrize("case", PRUNED_POLICIES, ids=lambda c: c.id)
def test_unknown_field_pruned_by_apiserver_refused_by_model(case: PolicyCase) -> None:
    stored, errors = admit(case.manifest(), POLICY_SCHEMA)
    assert errors == []
    node = stored["spec"]
    *parents, leaf = case.field.split(".")
    for key in parents:
        node = node[key]
    assert leaf not in node
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        PolicySpec.model_validate(case.spec)


@pytest.mark.parametrize("case", PYDANTIC_ONLY_BAD_POLICIES, ids=lambda c: c.id)
def test_model_only_rules(case: PolicyCase) -> None:
    _, errors = admit(case.manifest(), POLICY_SCHEMA)
    assert errors == []
    with pytest.raises(ValidationError):
        PolicySpec.model_validate(case.spec)


# --- Tickets ----------------------------------------------------------------------------------------

NOW = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)


def sample_ticket() -> RemediationTicket:
    return RemediationTicket(
        metadata=ObjectMeta(name="checkout-5d4f8b7c9", namespace="shop"),
        spec=TicketSpec(
            rollout="checkout",
            policy="checkout",
            pod_template_hash="5d4f8b7c9",
            revision="4",
            fingerprint="0badc0ffee",
            images=["registry.example.com/checkout:1.2.3"],
            step="2",
            trigger="analysisFailed",
            verdict=TicketVerdict(verdict="unhealthy", confidence=92, analyzer="combined", summary="new panic"),
            evidence=TicketEvidence(
                templates=[
                    TemplateRecord(id="T1", template="panic: <*>", severity="error", status="new", canary_count=4)
                ],
                pods=[PodRecord(name="checkout-5d4f8b7c9-x", side="canary", restarts=3, reasons=["CrashLoopBackOff"])],
                redactions={"bearer-token": 2},
            ),
        ),
    )


def test_ticket_body_is_valid_and_stored_unchanged() -> None:
    body = sample_ticket().to_body()
    assert "status" not in body
    stored, errors = admit(body, TICKET_SCHEMA)
    assert errors == []
    assert RemediationTicket.model_validate(stored).spec == sample_ticket().spec


def test_ticket_status_is_valid() -> None:
    status = TicketStatus(
        phase=TicketPhase.FIX_PROPOSED,
        conditions=set_condition([], ConditionType.ISSUE_OPENED, True, Reason.ISSUE_CREATED, "opened #12", NOW, 1),
        first_seen=NOW,
        last_seen=NOW,
        issue=IssueStatus(number=12, url="https://github.com/o/r/issues/12", state="open"),
        pull_request=13,
        pull_requests=[PullRequestStatus(number=13, state="draft", head_sha="abc123")],
    )
    obj = {**sample_ticket().to_body(), "status": to_wire(status)}
    stored, errors = admit(obj, TICKET_SCHEMA)
    assert errors == []
    assert stored["status"] == to_wire(status)
    assert TicketStatus.model_validate(stored["status"]) == status


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("spec.verdict.confidence", 101),
        ("spec.verdict.verdict", "fine"),
        ("spec.verdict.analyzer", "human"),
        ("spec.fingerprint", "XYZ"),
        ("spec.evidence.pods", [{"name": "p", "side": "middle"}]),
        ("spec.evidence.redactions", {"token": -1}),
        ("status.phase", "Done"),
        ("status.occurrences", 0),
        ("status.pullRequests", [{"number": 1, "state": "abandoned"}]),
    ],
)
def test_bad_ticket_refused_by_both(path: str, value: Any) -> None:
    obj = sample_ticket().to_body()
    obj["status"] = {}
    node = obj
    *parents, leaf = path.split(".")
    for key in parents:
        node = node.setdefault(key, {})
    node[leaf] = value
    _, errors = admit(obj, TICKET_SCHEMA)
    assert errors
    with pytest.raises(ValidationError):
        RemediationTicket.model_validate(obj)
