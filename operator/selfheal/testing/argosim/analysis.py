"""The simulated Argo analysis controller: measures AnalysisRun metrics (web, test plugin) and assesses the run."""

from __future__ import annotations

import base64
import copy
import json
import logging
import re
from datetime import datetime
from typing import Any

import httpx

from selfheal.testing.argosim.expr import ExprError, JSONPathMissing, evaluate, jsonpath
from selfheal.testing.argosim.util import Recorder, go_duration, merge_diff, now_utc, parse_ts, ts
from selfheal.testing.rest import ApiError, KubeREST

log = logging.getLogger(__name__)

PLUGIN_NAME = "selfheal-test/pods"
COMPLETED = ("Successful", "Failed", "Error", "Inconclusive")
# Best to worst, as Argo orders them when picking the run phase.
_ORDER = ["Successful", "Running", "Pending", "Inconclusive", "Error", "Failed"]
ERROR_RETRY_SECONDS = 10.0
HISTORY_LIMIT = 10
_ARG = re.compile(r"\{\{\s*args\.([A-Za-z0-9_.\-]+)\s*\}\}")


class ArgsError(Exception):
    """A metric argument cannot be resolved."""


def go_json(value: Any) -> str:
    """``json.Marshal`` of a decoded JSON value: compact, map keys sorted, integral floats without ``.0``."""

    def norm(v: Any) -> Any:
        if isinstance(v, float) and v.is_integer() and abs(v) < 1e21:
            return int(v)
        if isinstance(v, dict):
            return {k: norm(x) for k, x in v.items()}
        if isinstance(v, list):
            return [norm(x) for x in v]
        return v

    return json.dumps(norm(value), separators=(",", ":"), sort_keys=True, ensure_ascii=False)


def worse(a: str | None, b: str) -> bool:
    return a is None or _ORDER.index(b) > _ORDER.index(a)


def substitute(text: str, args: dict[str, str], *, quote: bool = False) -> str:
    def repl(m: re.Match[str]) -> str:
        name = m.group(1)
        if name not in args:
            raise ArgsError(f"failed to resolve {{{{args.{name}}}}}")
        return json.dumps(args[name])[1:-1] if quote else args[name]

    return _ARG.sub(repl, text)


def evaluate_conditions(metric: dict, result: Any, args: dict[str, str]) -> tuple[str, str]:
    """Argo's EvaluateResult: (phase, error message)."""
    success = metric.get("successCondition") or ""
    failure = metric.get("failureCondition") or ""
    if not success and not failure:
        return "Successful", ""
    outcome: dict[str, bool] = {}
    for kind, expression in (("successCondition", success), ("failureCondition", failure)):
        if not expression:
            continue
        try:
            value = evaluate(substitute(expression, args), result)
        except (ExprError, ArgsError, TypeError, ValueError) as e:
            return "Error", f'could not evaluate {kind} "{expression}": {e}'
        if not isinstance(value, bool):
            return "Error", f"expected bool, but got {type(value).__name__}"
        outcome[kind] = value
    if not failure:
        return ("Successful" if outcome["successCondition"] else "Failed"), ""
    if not success:
        return ("Failed" if outcome["failureCondition"] else "Successful"), ""
    if outcome["failureCondition"]:
        return "Failed", ""
    if outcome["successCondition"]:
        return "Successful", ""
    return "Inconclusive", ""


class AnalysisController:
    """Reconciles AnalysisRuns through their main resource (they have no status subresource)."""

    def __init__(self, client: KubeREST, recorder: Recorder, workloads: Any) -> None:
        self.client = client
        self.recorder = recorder
        self.workloads = workloads

    # -- reconcile -------------------------------------------------------------------------------

    def reconcile(self, run: dict) -> None:
        status = run.get("status") or {}
        if status.get("phase") in COMPLETED:
            return
        now = now_utc()
        new = copy.deepcopy(status)
        spec = run["spec"]
        if not new.get("phase"):
            new["phase"] = "Running"
            new["startedAt"] = ts(now)
        try:
            args = self._resolve_args(run)
        except ArgsError as e:
            self._complete(run, new, "Error", f"Unable to resolve metric arguments: {e}", now)
            return
        metrics = spec["metrics"]
        results = {r["name"]: r for r in new.get("metricResults") or []}
        dry = {d.get("metricName") for d in spec.get("dryRun") or []}
        terminating = bool(spec.get("terminate")) or any(
            r.get("phase") in ("Failed", "Error", "Inconclusive") and r["name"] not in dry for r in results.values()
        )
        started = parse_ts(new.get("startedAt")) or now
        if not terminating:
            for metric in metrics:
                result = results.setdefault(metric["name"], {"name": metric["name"], "phase": "Pending"})
                if result["phase"] in COMPLETED or not self._due(metric, result, started, now):
                    continue
                self._measure(run, metric, result, args, now)
        worst, worst_message, completed = None, "", True
        for metric in metrics:
            result = results.get(metric["name"])
            if result is None:
                if terminating:
                    result = results.setdefault(metric["name"], {"name": metric["name"], "phase": "Pending"})
                else:
                    completed = False
                    continue
            phase, reason = self._assess_metric(metric, result, terminating)
            if phase != result.get("phase"):
                result["phase"] = phase
                if phase in COMPLETED:
                    self._event(
                        run,
                        f"Metric{phase}",
                        f"Metric '{metric['name']}' Completed. Result: {phase}",
                        warning=phase in ("Failed", "Error"),
                    )
            if phase not in COMPLETED:
                completed = False
                continue
            if metric["name"] in dry:
                continue
            if worse(worst, phase):
                worst = phase
                worst_message = ""
                if reason:
                    worst_message = f'Metric "{metric["name"]}" assessed {phase} due to {reason}'
                    last = (result.get("measurements") or [{}])[-1]
                    if last.get("message"):
                        worst_message += f': "Error Message: {last["message"]}"'
        new["metricResults"] = [results[m["name"]] for m in metrics if m["name"] in results]
        new["runSummary"] = self._summary(new["metricResults"], dry)
        if completed:
            phase = worst or "Successful"
            message = worst_message
            if spec.get("terminate") and phase == "Successful":
                message = "Run Terminated"
            self._complete(run, new, phase, message, now)
            return
        self._persist(run, status, new)

    def _complete(self, run: dict, new: dict, phase: str, message: str, now: datetime) -> None:
        old = run.get("status") or {}
        new["phase"] = phase
        if message:
            new["message"] = message
        else:
            new.pop("message", None)
        new["completedAt"] = ts(now)
        new.setdefault("startedAt", ts(now))
        self._persist(run, old, new)
        self._event(
            run, f"AnalysisRun{phase}", f"Analysis Completed. Result: {phase}", warning=phase in ("Failed", "Error")
        )

    def _persist(self, run: dict, old: dict, new: dict) -> None:
        diff = merge_diff(old, new)
        if not diff:
            return
        if "phase" not in diff:
            diff["phase"] = new["phase"]  # the CRD requires status.phase on every status write
        meta = run["metadata"]
        self.client.patch(
            f"/apis/argoproj.io/v1alpha1/namespaces/{meta['namespace']}/analysisruns/{meta['name']}", {"status": diff}
        )

    def _event(self, run: dict, reason: str, message: str, *, warning: bool) -> None:
        try:
            self.recorder.event(run, reason, message, warning=warning)
        except ApiError as e:
            log.warning("event %s on %s not recorded: %s", reason, run["metadata"]["name"], e)

    # -- metric life cycle ----------------------------------------------------------------------

    @staticmethod
    def _limit(metric: dict, key: str, default: int) -> int:
        value = metric.get(key)
        return default if value is None else int(value)

    @staticmethod
    def _effective_count(metric: dict) -> int | None:
        if metric.get("count") not in (None, "", 0, "0"):
            return int(metric["count"])
        if not metric.get("interval"):
            return 1
        return None

    def _due(self, metric: dict, result: dict, started: datetime, now: datetime) -> bool:
        measurements = result.get("measurements") or []
        if not measurements:
            delay = go_duration(metric["initialDelay"]) if metric.get("initialDelay") else 0.0
            return (now - started).total_seconds() >= delay
        last = measurements[-1]
        finished = parse_ts(last.get("finishedAt"))
        if finished is None:
            return True
        if last.get("phase") == "Error":
            interval = ERROR_RETRY_SECONDS
            if metric.get("interval"):
                interval = min(interval, go_duration(metric["interval"]))
        elif metric.get("interval"):
            interval = go_duration(metric["interval"])
        else:
            return False
        return (now - finished).total_seconds() >= interval

    def _assess_metric(self, metric: dict, result: dict, terminating: bool) -> tuple[str, str]:
        if result.get("phase") in COMPLETED:
            return result["phase"], ""
        measurements = result.get("measurements") or []
        if not measurements:
            return ("Successful" if terminating else "Pending"), ""
        failure_limit = self._limit(metric, "failureLimit", 0)
        inconclusive_limit = self._limit(metric, "inconclusiveLimit", 0)
        error_limit = self._limit(metric, "consecutiveErrorLimit", 4)
        failed, inconclusive = result.get("failed", 0), result.get("inconclusive", 0)
        if failure_limit >= 0 and failed > failure_limit:
            return "Failed", f"failed ({failed}) > failureLimit ({failure_limit})"
        if inconclusive_limit >= 0 and inconclusive > inconclusive_limit:
            return "Inconclusive", f"inconclusive ({inconclusive}) > inconclusiveLimit ({inconclusive_limit})"
        errors = result.get("consecutiveError", 0)
        if error_limit >= 0 and errors > error_limit:
            return "Error", f"consecutiveErrors ({errors}) > consecutiveErrorLimit ({error_limit})"
        count = self._effective_count(metric)
        if count is not None and result.get("count", 0) >= count:
            return "Successful", ""
        if terminating:
            return "Successful", ""
        return "Running", ""

    @staticmethod
    def _summary(results: list[dict], dry: set[str]) -> dict:
        summary = {"count": 0, "successful": 0, "failed": 0, "inconclusive": 0, "error": 0}
        for r in results:
            if r["name"] in dry:
                continue
            summary["count"] += 1
            key = {
                "Successful": "successful",
                "Failed": "failed",
                "Inconclusive": "inconclusive",
                "Error": "error",
            }.get(r.get("phase", ""))
            if key:
                summary[key] += 1
        return {k: v for k, v in summary.items() if v}

    def _measure(self, run: dict, metric: dict, result: dict, args: dict[str, str], now: datetime) -> None:
        try:
            value = self._provider_value(run, metric, args)
        except _MeasurementError as e:
            phase, message, value_text = "Error", str(e), None
        except _RawBody as raw:
            # v1.9.1: a body that is not JSON is the value, Successful whatever the conditions say
            phase, message, value_text = "Successful", "", raw.body
        else:
            phase, message = evaluate_conditions(metric, value, args)
            value_text = go_json(value)
        measurement = {"phase": phase, "startedAt": ts(now), "finishedAt": ts(now_utc())}
        if value_text is not None:
            measurement["value"] = value_text
        if message:
            measurement["message"] = message
        key = {"Successful": "successful", "Failed": "failed", "Inconclusive": "inconclusive", "Error": "error"}[phase]
        result[key] = result.get(key, 0) + 1
        if phase == "Error":
            result["consecutiveError"] = result.get("consecutiveError", 0) + 1
            result.pop("consecutiveSuccess", None)
        else:
            result["count"] = result.get("count", 0) + 1
            result.pop("consecutiveError", None)
            if phase == "Successful":
                result["consecutiveSuccess"] = result.get("consecutiveSuccess", 0) + 1
            else:
                result.pop("consecutiveSuccess", None)
        limit = HISTORY_LIMIT
        for retention in run["spec"].get("measurementRetention") or []:
            if retention.get("metricName") == metric["name"]:
                limit = int(retention.get("limit", HISTORY_LIMIT))
        result["measurements"] = ((result.get("measurements") or []) + [measurement])[-limit:]
        if message:
            result["message"] = message
        else:
            result.pop("message", None)
        result["phase"] = "Running"

    # -- providers -----------------------------------------------------------------------------

    def _provider_value(self, run: dict, metric: dict, args: dict[str, str]) -> Any:
        provider = metric.get("provider") or {}
        if "web" in provider:
            return self._web(provider["web"], args)
        if "plugin" in provider:
            plugins = provider["plugin"] or {}
            if PLUGIN_NAME not in plugins:
                raise _MeasurementError(f"plugin {', '.join(plugins) or '<none>'} not configured")
            return self._pods_plugin(run, plugins[PLUGIN_NAME] or {}, args)
        raise _MeasurementError(f"provider {', '.join(provider) or '<none>'} is not supported by the simulator")

    def _web(self, web: dict, args: dict[str, str]) -> Any:
        try:
            url = substitute(web["url"], args)
            headers = {h["key"]: substitute(h.get("value", ""), args) for h in web.get("headers") or []}
            method = (web.get("method") or "GET").upper()
            body = None
            if web.get("body") is not None and web.get("jsonBody") is not None:
                raise _MeasurementError("use either body or jsonBody; both cannot exists for WebMetric payload")
            if web.get("body") is not None:
                body = substitute(web["body"], args, quote=True).encode()
            elif web.get("jsonBody") is not None:
                body = substitute(json.dumps(web["jsonBody"]), args, quote=True).encode()
                headers.setdefault("Content-Type", "application/json")
            if body is not None and method == "GET":
                raise _MeasurementError("GET method cannot have a body")
        except ArgsError as e:
            raise _MeasurementError(str(e)) from None
        timeout = float(web.get("timeoutSeconds") or 10)
        try:
            response = httpx.request(
                method, url, headers=headers, content=body, timeout=timeout, verify=not web.get("insecure")
            )
        except httpx.HTTPError as e:
            raise _MeasurementError(f'{method} "{url}": {e!r}') from None
        if not 200 <= response.status_code < 300:
            raise _MeasurementError(f"received non 2xx response code: {response.status_code}")
        try:
            data = response.json()
        except ValueError:
            raise _RawBody(response.text) from None
        try:
            return jsonpath(web.get("jsonPath") or "{$}", data)
        except JSONPathMissing as e:
            raise _MeasurementError(f"Could not find JSONPath in body: {e}") from None
        except ValueError as e:
            raise _MeasurementError(str(e)) from None

    def _pods_plugin(self, run: dict, config: dict, args: dict[str, str]) -> Any:
        namespace = run["metadata"]["namespace"]
        try:
            query = substitute(str(config.get("query", "")), args)
            pod_hash = substitute(str(config.get("podTemplateHash") or ""), args) or (
                run["metadata"].get("labels") or {}
            ).get("rollouts-pod-template-hash", "")
        except ArgsError as e:
            raise _MeasurementError(str(e)) from None
        selector = f"rollouts-pod-template-hash={pod_hash}"
        pods = {
            p["metadata"]["name"]
            for p in self.client.items(f"/api/v1/namespaces/{namespace}/pods", labelSelector=selector)
        }
        if not pods:
            raise _MeasurementError(f"no pods match {selector}")
        try:
            return self.workloads.metric(namespace, pods, query)
        except ValueError as e:
            raise _MeasurementError(str(e)) from None

    def _resolve_args(self, run: dict) -> dict[str, str]:
        out: dict[str, str] = {}
        namespace = run["metadata"]["namespace"]
        for arg in run["spec"].get("args") or []:
            if arg.get("value") is not None:
                out[arg["name"]] = str(arg["value"])
                continue
            ref = (arg.get("valueFrom") or {}).get("secretKeyRef")
            if ref:
                try:
                    secret = self.client.get(f"/api/v1/namespaces/{namespace}/secrets/{ref['name']}")
                    out[arg["name"]] = base64.b64decode(secret["data"][ref["key"]]).decode()
                except (ApiError, KeyError) as e:
                    raise ArgsError(f"failed to read secret {ref.get('name')}: {e}") from None
                continue
            raise ArgsError(f"args.{arg['name']} was not resolved")
        return out


class _RawBody(Exception):
    """The web provider got a body that is not JSON."""

    def __init__(self, body: str) -> None:
        super().__init__(body)
        self.body = body


class _MeasurementError(Exception):
    """The provider could not take the measurement: the measurement phase is Error."""
