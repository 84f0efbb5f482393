"""Test helpers around the simulated Argo Rollouts: demo manifests, the exact CLI patches, and waits."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from selfheal.testing.rest import ApiError, KubeREST

GROUP = "/apis/argoproj.io/v1alpha1"
DEMO_IMAGE = "argoproj/rollouts-demo"
PLUGIN = "selfheal-test/pods"


def demo_steps(pause: str | int | None = "1s") -> list[dict]:
    """``canary-demo``'s steps: setWeight 20/40/60/80, each followed by a pause (None: indefinite)."""
    steps: list[dict] = []
    for weight in (20, 40, 60, 80):
        steps.append({"setWeight": weight})
        steps.append({"pause": {} if pause is None else {"duration": pause}})
    return steps


def demo_rollout(
    name: str,
    image: str,
    *,
    steps: list[dict] | None = None,
    replicas: int = 5,
    background_analysis: str | None = None,
    starting_step: int | None = 1,
    canary_metadata: bool = True,
    analysis_args: list[dict] | None = None,
    env: dict[str, str] | None = None,
) -> dict:
    """A Rollout shaped like the demo's ``canary-demo``; ``image`` may be a bare tag (``blue``)."""
    if "/" not in image and ":" not in image:
        image = f"{DEMO_IMAGE}:{image}"
    container: dict[str, Any] = {"name": name, "image": image, "ports": [{"name": "http", "containerPort": 8080}]}
    if env:
        container["env"] = [{"name": k, "value": v} for k, v in env.items()]
    canary: dict[str, Any] = {"steps": copy.deepcopy(demo_steps() if steps is None else steps)}
    if canary_metadata:
        canary["canaryMetadata"] = {"labels": {"role": "canary"}}
        canary["stableMetadata"] = {"labels": {"role": "stable"}}
    if background_analysis:
        analysis: dict[str, Any] = {"templates": [{"templateName": background_analysis}]}
        if starting_step is not None:
            analysis["startingStep"] = starting_step
        analysis["args"] = analysis_args if analysis_args is not None else default_analysis_args()
        canary["analysis"] = analysis
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "replicas": replicas,
            "revisionHistoryLimit": 2,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [container]}},
            "strategy": {"canary": canary},
        },
    }


def blue_green_rollout(
    name: str,
    image: str,
    *,
    replicas: int = 3,
    active: str | None = None,
    preview: str | None = None,
    auto_promotion: bool | None = None,
    pre_promotion: str | None = None,
    post_promotion: str | None = None,
    analysis_args: list[dict] | None = None,
    scale_down_delay: int | None = None,
    abort_scale_down_delay: int | None = None,
    env: dict[str, str] | None = None,
) -> dict:
    """A blue-green Rollout of the demo app: Services ``<name>-active`` and ``<name>-preview`` (see
    :func:`blue_green_services`), optional pre- and post-promotion analysis templates."""
    rollout = demo_rollout(name, image, replicas=replicas, env=env, canary_metadata=False)
    blue_green: dict[str, Any] = {
        "activeService": active or f"{name}-active",
        "previewService": preview or f"{name}-preview",
    }
    if preview == "":
        del blue_green["previewService"]
    if auto_promotion is not None:
        blue_green["autoPromotionEnabled"] = auto_promotion
    for key, template in (("prePromotionAnalysis", pre_promotion), ("postPromotionAnalysis", post_promotion)):
        if template:
            blue_green[key] = {
                "templates": [{"templateName": template}],
                "args": default_analysis_args() if analysis_args is None else analysis_args,
            }
    if scale_down_delay is not None:
        blue_green["scaleDownDelaySeconds"] = scale_down_delay
    if abort_scale_down_delay is not None:
        blue_green["abortScaleDownDelaySeconds"] = abort_scale_down_delay
    rollout["spec"]["strategy"] = {"blueGreen": blue_green}
    return rollout


def blue_green_services(name: str, *names: str) -> list[dict]:
    """The Services a blue-green Rollout switches (``<name>-active`` and ``<name>-preview`` unless named):
    headless, so that a test control plane never runs out of cluster IPs."""
    return [
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": service, "labels": {"app": name}},
            "spec": {"clusterIP": "None", "selector": {"app": name}, "ports": [{"name": "http", "port": 8080}]},
        }
        for service in (names or (f"{name}-active", f"{name}-preview"))
    ]


def default_analysis_args() -> list[dict]:
    """Identity args an analysis usually wants: canary and stable hashes and the rollout name."""
    return [
        {"name": "canary-hash", "valueFrom": {"podTemplateHashValue": "Latest"}},
        {"name": "stable-hash", "valueFrom": {"podTemplateHashValue": "Stable"}},
        {"name": "rollout", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
    ]


def analysis_step(template: str, args: list[dict] | None = None) -> dict:
    """A step running ``template``, passing :func:`default_analysis_args` unless ``args`` is given."""
    return {
        "analysis": {
            "templates": [{"templateName": template}],
            "args": default_analysis_args() if args is None else args,
        }
    }


def analysis_template(
    name: str,
    query: str,
    condition: str | None,
    interval: str | None = "1s",
    count: int | None = None,
    failure_limit: int | None = 0,
    *,
    failure_condition: str | None = None,
    inconclusive_limit: int | None = None,
    consecutive_error_limit: int | None = None,
    metric: str | None = None,
    pod_hash_arg: str | None = "canary-hash",
) -> dict:
    """An AnalysisTemplate measuring ``query`` on the canary pods through the simulator's plugin provider."""
    config: dict[str, Any] = {"query": query}
    args = []
    if pod_hash_arg:
        config["podTemplateHash"] = f"{{{{args.{pod_hash_arg}}}}}"
        args.append({"name": pod_hash_arg})
    body = {"name": metric or query, "provider": {"plugin": {PLUGIN: config}}}
    return _template(
        name,
        body,
        args,
        condition,
        failure_condition,
        interval,
        count,
        failure_limit,
        inconclusive_limit,
        consecutive_error_limit,
    )


def web_analysis_template(
    name: str,
    url: str,
    condition: str | None,
    *,
    json_path: str = "{$.ok}",
    interval: str | None = "1s",
    count: int | None = None,
    failure_limit: int | None = 0,
    failure_condition: str | None = None,
    timeout_seconds: int | None = None,
    consecutive_error_limit: int | None = None,
    args: list[dict] | None = None,
    metric: str = "web",
) -> dict:
    web: dict[str, Any] = {"url": url, "jsonPath": json_path}
    if timeout_seconds is not None:
        web["timeoutSeconds"] = timeout_seconds
    body = {"name": metric, "provider": {"web": web}}
    return _template(
        name,
        body,
        args or [],
        condition,
        failure_condition,
        interval,
        count,
        failure_limit,
        None,
        consecutive_error_limit,
    )


def verdict_args() -> list[dict]:
    """The args that tell selfheal's verdict endpoint which canary to judge, as ``examples/inline`` passes them."""
    return [
        {"name": "namespace", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
        {"name": "rollout", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "canary-hash", "valueFrom": {"podTemplateHashValue": "Latest"}},
        {"name": "stable-hash", "valueFrom": {"podTemplateHashValue": "Stable"}},
    ]


def verdict_template(
    name: str,
    url: str,
    *,
    secret: str,
    interval: str,
    count: int | None = None,
    success: str | None = "result.healthy",
    failure: str | None = 'result.verdict == "unhealthy"',
    inconclusive_limit: int | None = None,
    timeout_seconds: int = 20,
    initial_delay: str | None = None,
) -> dict:
    """An AnalysisTemplate whose web metric asks selfheal's verdict endpoint at ``url`` (``.../api/v1/verdict``)
    as ``examples/inline`` does: the canary named by :func:`verdict_args`, the bearer token from ``secret``."""
    query = (
        "namespace={{args.namespace}}&rollout={{args.rollout}}&canary={{args.canary-hash}}"
        f"&stable={{{{args.stable-hash}}}}&timeoutSeconds={timeout_seconds}"
    )
    web = {
        "url": f"{url}?{query}",
        "headers": [{"key": "Authorization", "value": "Bearer {{args.verdict-token}}"}],
        "timeoutSeconds": timeout_seconds,
        "jsonPath": "{$}",
    }
    token = {"name": "verdict-token", "valueFrom": {"secretKeyRef": {"name": secret, "key": "token"}}}
    args = [{"name": a["name"]} for a in verdict_args()] + [token]
    metric: dict[str, Any] = {"name": "selfheal", "provider": {"web": web}}
    if initial_delay:
        metric["initialDelay"] = initial_delay
    return _template(name, metric, args, success, failure, interval, count, 0, inconclusive_limit, None)


def _template(
    name: str,
    metric: dict,
    args: list[dict],
    success: str | None,
    failure: str | None,
    interval: str | None,
    count: int | None,
    failure_limit: int | None,
    inconclusive_limit: int | None,
    consecutive_error_limit: int | None,
) -> dict:
    for key, value in (
        ("successCondition", success),
        ("failureCondition", failure),
        ("interval", interval),
        ("count", count),
        ("failureLimit", failure_limit),
        ("inconclusiveLimit", inconclusive_limit),
        ("consecutiveErrorLimit", consecutive_error_limit),
    ):
        if value is not None:
            metric[key] = value
    spec: dict[str, Any] = {"metrics": [metric]}
    if args:
        spec["args"] = args
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "AnalysisTemplate", "metadata": {"name": name}, "spec": spec}


# -- API calls ---------------------------------------------------------------------------------------

_PLURALS = {"Rollout": "rollouts", "AnalysisTemplate": "analysistemplates", "AnalysisRun": "analysisruns"}
_CORE = {"Service": "services", "Secret": "secrets"}


def create(client: KubeREST, namespace: str, manifest: dict) -> dict:
    if manifest["kind"] in _CORE:
        return client.create(f"/api/v1/namespaces/{namespace}/{_CORE[manifest['kind']]}", manifest)
    return client.create(f"{GROUP}/namespaces/{namespace}/{_PLURALS[manifest['kind']]}", manifest)


def service(client: KubeREST, namespace: str, name: str) -> dict:
    return client.get(f"/api/v1/namespaces/{namespace}/services/{name}")


def rollout_path(namespace: str, name: str) -> str:
    return f"{GROUP}/namespaces/{namespace}/rollouts/{name}"


def get_rollout(client: KubeREST, namespace: str, name: str) -> dict:
    return client.get(rollout_path(namespace, name))


# How often `set image` tries again when the Rollout changed between its GET and its PUT (409).
SET_IMAGE_ATTEMPTS = 5


def set_image(client: KubeREST, namespace: str, rollout: str, image: str, container: str = "*") -> dict:
    """``kubectl argo rollouts set image``: GET, change the image(s), full PUT of the object; a conflict
    (the controller wrote in between) starts over, up to five attempts, as the CLI does."""
    if "/" not in image and ":" not in image:
        image = f"{DEMO_IMAGE}:{image}"
    for attempt in range(1, SET_IMAGE_ATTEMPTS + 1):
        obj = get_rollout(client, namespace, rollout)
        spec = obj["spec"]["template"]["spec"]
        for kind in ("initContainers", "containers", "ephemeralContainers"):
            for c in spec.get(kind) or []:
                if container in ("*", c["name"]):
                    c["image"] = image
        try:
            return client.put(rollout_path(namespace, rollout), obj)
        except ApiError as e:
            if e.status != 409 or attempt == SET_IMAGE_ATTEMPTS:
                raise
    raise AssertionError("unreachable")


def abort(client: KubeREST, namespace: str, rollout: str) -> dict:
    return client.patch(rollout_path(namespace, rollout) + "/status", {"status": {"abort": True}})


def retry(client: KubeREST, namespace: str, rollout: str) -> dict:
    return client.patch(rollout_path(namespace, rollout) + "/status", {"status": {"abort": False}})


def pause(client: KubeREST, namespace: str, rollout: str) -> dict:
    return client.patch(rollout_path(namespace, rollout), {"spec": {"paused": True}})


def promote(client: KubeREST, namespace: str, rollout: str, full: bool = False) -> list[tuple[str, dict]]:
    """``kubectl argo rollouts promote [--full]``: the status patch first, then the spec patch, each only
    when the CLI would send it. Returns what was sent as (subresource, body)."""
    obj = get_rollout(client, namespace, rollout)
    spec, status = obj["spec"], obj.get("status") or {}
    canary = "canary" in (spec.get("strategy") or {})
    steps = ((spec.get("strategy") or {}).get("canary") or {}).get("steps") or []
    index = status.get("currentStepIndex") or 0
    following = min(index + 1, len(steps))
    spec_patch = {"spec": {"paused": False}} if spec.get("paused") else None
    status_patch: dict[str, dict[str, Any]] | None = None
    if full:
        if status.get("currentPodHash") != status.get("stableRS"):
            status_patch = {"status": {"promoteFull": True}}
    else:
        step_run = (status.get("canary") or {}).get("currentStepAnalysisRunStatus") or {}
        if (
            canary
            and step_run.get("status") == "Inconclusive"
            and status.get("pauseConditions")
            and status.get("controllerPause")
        ):
            status_patch = {
                "status": {"pauseConditions": None, "controllerPause": False, "currentStepIndex": following}
            }
        elif status.get("pauseConditions"):
            status_patch = {"status": {"pauseConditions": None}}
        elif canary and steps:
            status_patch = {"status": {"pauseConditions": None, "currentStepIndex": following}}
    sent = []
    if status_patch is not None:
        client.patch(rollout_path(namespace, rollout) + "/status", status_patch)
        sent.append(("status", status_patch))
    if spec_patch is not None:
        client.patch(rollout_path(namespace, rollout), spec_patch)
        sent.append(("", spec_patch))
    return sent


def terminate(client: KubeREST, namespace: str, analysisrun: str) -> dict:
    """``kubectl argo rollouts terminate analysisrun``."""
    return client.patch(f"{GROUP}/namespaces/{namespace}/analysisruns/{analysisrun}", {"spec": {"terminate": True}})


# -- reading -----------------------------------------------------------------------------------------


def rollout_phase(obj: dict) -> tuple[str, str]:
    """GetRolloutPhase as the CLI shows it: stale generation and unpausing read as Progressing."""
    status = obj.get("status") or {}
    if status.get("observedGeneration") != str(obj["metadata"].get("generation")):
        return "Progressing", "waiting for rollout spec update to be observed"
    if status.get("controllerPause") and not status.get("pauseConditions"):
        return "Progressing", "waiting for rollout to unpause"
    return status.get("phase", ""), status.get("message", "")


def wait_rollout(
    client: KubeREST,
    namespace: str,
    rollout: str,
    predicate: Callable[[dict], Any],
    *,
    timeout: float = 20.0,
    message: str = "rollout condition",
) -> dict:
    holder: dict[str, dict] = {}

    def check() -> bool:
        holder["obj"] = get_rollout(client, namespace, rollout)
        return bool(predicate(holder["obj"]))

    try:
        client.wait_for(check, timeout=timeout, interval=0.05, message=message)
    except TimeoutError as e:
        raise TimeoutError(f"{e}; last status: {(holder.get('obj') or {}).get('status')}") from None
    return holder["obj"]


def wait_phase(client: KubeREST, namespace: str, rollout: str, phase: str, timeout: float = 20.0) -> dict:
    return wait_rollout(
        client,
        namespace,
        rollout,
        lambda o: rollout_phase(o)[0] == phase,
        timeout=timeout,
        message=f"rollout {rollout} phase {phase}",
    )


def events(client: KubeREST, namespace: str, *, name: str | None = None, reason: str | None = None) -> list[dict]:
    out = client.items(f"/api/v1/namespaces/{namespace}/events")
    return [
        e
        for e in out
        if (name is None or e["involvedObject"]["name"] == name) and (reason is None or e["reason"] == reason)
    ]


def analysis_runs(client: KubeREST, namespace: str, rollout: str | None = None) -> list[dict]:
    """AnalysisRuns in ``namespace``, those controlled by Rollout ``rollout`` when given, oldest first."""
    runs = client.items(f"{GROUP}/namespaces/{namespace}/analysisruns")
    if rollout is not None:
        runs = [
            r
            for r in runs
            if any(
                o.get("kind") == "Rollout" and o.get("name") == rollout and o.get("controller")
                for o in r["metadata"].get("ownerReferences") or []
            )
        ]
    return sorted(runs, key=lambda r: (r["metadata"].get("creationTimestamp", ""), r["metadata"]["name"]))


def wait_analysis_run(client: KubeREST, namespace: str, name: str, phase: str, timeout: float = 20.0) -> dict:
    """Wait until AnalysisRun ``name`` reports ``status.phase == phase``."""
    path = f"{GROUP}/namespaces/{namespace}/analysisruns/{name}"

    def check() -> dict | None:
        run = client.get_or_none(path)
        return run if run and (run.get("status") or {}).get("phase") == phase else None

    return client.wait_for(check, timeout=timeout, interval=0.05, message=f"analysisrun {name} {phase}")


def pods_of(client: KubeREST, namespace: str, pod_hash: str) -> list[dict]:
    return client.items(f"/api/v1/namespaces/{namespace}/pods", labelSelector=f"rollouts-pod-template-hash={pod_hash}")


def replicaset(client: KubeREST, namespace: str, rollout: str, pod_hash: str) -> dict:
    return client.get(f"/apis/apps/v1/namespaces/{namespace}/replicasets/{rollout}-{pod_hash}")
