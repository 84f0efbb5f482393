"""Verdicts for Argo's web metric provider: each measurement answered in time from fresh statistics, the analyzer
asked at most once per evidence window, and a failing verdict explained and ticketed once."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from selfheal.domain.argo import AR_COMPLETED_PHASES, Rollout, canary_hash, current_step_description, stable_hash
from selfheal.domain.evidence import Evidence
from selfheal.domain.inline import VerdictAnswer, VerdictRequest, answer_of, inline_kind, window_expired
from selfheal.domain.policy import AnalysisSpec, LLMProvider, UnavailableAction
from selfheal.domain.verdict import VerdictKind
from selfheal.domain.words import EventText
from selfheal.errors import Refused, SelfHealError
from selfheal.services.analysis import Trigger, cycle_key, explain, open_ticket, post_event
from selfheal.services.analyzers import analyzer_for
from selfheal.services.gather import gather_evidence
from selfheal.services.judge import Consultation, Judgement, Prepared, conclude, consult, prepare
from selfheal.services.policies import PolicyRef
from selfheal.services.runtime import Runtime
from selfheal.services.triggers import governing_policy

log = logging.getLogger(__name__)

# Evidence windows remembered (one per canary step being analyzed); the oldest go first.
MAX_WINDOWS = 256
PENDING = "the analyzer's verdict on this evidence window is not in yet"
REFUSED = "InlineVerdictRefused"
BUDGET_EXHAUSTED = "AnalysisBudgetExhausted"
# The ticket's last action when the failing verdict is selfheal's answer to Argo's web metric.
WEB_METRIC_FAILED = "failed Argo's web metric"

# One evidence window: (namespace, rollout, canary hash, where the rollout stands).
WindowKey = tuple[str, str, str, str]


@dataclass
class Window:
    """One evidence window of one canary step: the analyzer asked once, and what was said about the window."""

    started: datetime
    consultation: asyncio.Future[Consultation] | None = None
    # The statistics being computed for a measurement, shared by the questions that arrive meanwhile.
    statistics: asyncio.Future[tuple[Evidence, Prepared]] | None = None
    explained: VerdictKind | None = None
    ticket: str = ""
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def asking(self) -> bool:
        return self.consultation is not None and not self.consultation.done()


class InlineVerdicts:
    """The verdict endpoint's service: built once at start-up with the runtime and the live policy index."""

    def __init__(
        self,
        rt: Runtime,
        policies: Callable[[str], Iterable[PolicyRef]],
        *,
        analyzers: Callable[..., Awaitable[tuple[Any | None, str | None]]] = analyzer_for,
    ) -> None:
        self.rt = rt
        self.policies = policies
        # Builds (or reuses) the analyzer a policy names: `analyzers.analyzer_for`.
        self.analyzers = analyzers
        self.windows: OrderedDict[WindowKey, Window] = OrderedDict()
        # Rollouts told (an Event) that no policy governs them: once per (namespace, rollout).
        self.refusals_told: set[tuple[str, str]] = set()

    async def answer(self, request: VerdictRequest) -> VerdictAnswer:
        """Judge the canary the request names, within ``request.answer_within`` seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + request.answer_within
        ro, policy = await self._identify(request)
        now = self.rt.clock()
        key = (ro.namespace, ro.name, request.canary, current_step_description(ro))
        window = await self._window(key, policy, ro, now)
        spec = policy.spec
        if window.statistics is None or window.statistics.done():
            window.statistics = asyncio.ensure_future(self._statistics(ro, spec.analysis, now))
            window.statistics.add_done_callback(_retrieved)
        try:
            async with asyncio.timeout(max(0.0, deadline - loop.time())):
                # questions that arrive while the statistics are computed share them; a timeout leaves them be
                evidence, prepared = await asyncio.shield(window.statistics)
        except TimeoutError:
            raise Refused(503, f"the evidence could not be gathered within {request.answer_within:.1f}s") from None
        if window.consultation is None and spec.analysis.llm.provider != LLMProvider.NONE:
            window.consultation = asyncio.create_task(self._consult(policy, prepared), name=f"inline analyzer {key}")
        consultation, pending = await _consultation(window, deadline - loop.time(), key)
        judgement = conclude(evidence, prepared, spec.analysis, spec.decision, consultation)
        statistics_alone = spec.decision.on_analyzer_unavailable == UnavailableAction.STATISTICAL
        kind = inline_kind(judgement.decision, statistics_alone=statistics_alone)
        async with window.lock:
            if kind == VerdictKind.UNHEALTHY:
                if not window.ticket:
                    window.ticket = await self._ticket(policy, ro, judgement, request.canary)
                if not judgement.decision.dry_run:
                    await self._claim_runs(ro, request.canary)
            answer = answer_of(
                judgement.decision,
                statistics_alone=statistics_alone,
                analyzer_pending=pending,
                ticket=window.ticket,
                rollout=ro.name,
                canary=request.canary,
                step=key[3],
            )
            if window.explained != kind:
                window.explained = kind
                await self._explain(policy, ro, judgement, answer)
        return answer

    async def _identify(self, request: VerdictRequest) -> tuple[Rollout, PolicyRef]:
        """The Rollout and its policy; refused when either is missing or the canary is not the one asked about."""
        ro = await self.rt.kube.get_rollout(request.namespace, request.rollout)
        if ro is None:
            raise Refused(404, f"Rollout {request.namespace}/{request.rollout} not found")
        policy = governing_policy(ro.labels, self.policies(ro.namespace))
        if policy is None:
            labels = ", ".join(f"{k}={v}" for k, v in sorted(ro.labels.items())) or "none"
            message = (
                f"no SelfHealingPolicy in namespace {ro.namespace} selects Rollout {ro.name} (its labels: {labels}); "
                "selfheal judges only the Rollouts a policy governs"
            )
            if (ro.namespace, ro.name) not in self.refusals_told:
                if len(self.refusals_told) >= MAX_WINDOWS:
                    self.refusals_told.clear()
                self.refusals_told.add((ro.namespace, ro.name))
                await post_event(
                    self.rt, ro, EventText(REFUSED, "Warning", f"The verdict endpoint refused: {message}.")
                )
            raise Refused(403, message)
        current, stable = canary_hash(ro), stable_hash(ro) or ""
        if current != request.canary:
            now = f"its canary is {current}" if current else "it has no canary in progress"
            raise Refused(409, f"Rollout {ro.namespace}/{ro.name} is not rolling out {request.canary}: {now}")
        if request.stable and request.stable != stable:
            raise Refused(
                409, f"Rollout {ro.namespace}/{ro.name}: the stable pods are {stable or 'none'}, not {request.stable}"
            )
        return ro, policy

    async def _statistics(self, ro: Rollout, analysis: AnalysisSpec, now: datetime) -> tuple[Evidence, Prepared]:
        """Fresh evidence and its statistics (the CPU work in a worker thread)."""
        evidence = await gather_evidence(self.rt.kube, ro, analysis.logs, trigger=Trigger.INLINE, now=now)
        prepared = await asyncio.to_thread(prepare, evidence, analysis)
        if evidence.has_canary_logs():
            self.rt.keep_snapshot(evidence)
        return evidence, prepared

    async def _window(self, key: WindowKey, policy: PolicyRef, ro: Rollout, now: datetime) -> Window:
        """The current evidence window of this canary step; a new one once it is over and the budget allows."""
        window = self.windows.get(key)
        seconds = policy.spec.triggers.log_watch.interval_seconds * self.rt.config.log_watch_scale
        if window is not None and (window.asking or not window_expired(window.started, now, seconds)):
            return window
        usage = self.rt.usage_of(policy.namespace, policy.name)
        usage.roll(now)
        budget = policy.spec.budget.analyses_per_hour
        if usage.this_hour >= budget:
            if window is not None:
                return window  # the last window's verdict stands until the budget allows a new one
            spent: asyncio.Future[Consultation] = asyncio.get_running_loop().create_future()
            spent.set_result(Consultation(error=f"analysis budget spent ({budget} this hour)"))
            fresh = Window(started=now, consultation=spent)
            message = (
                f"Canary verdicts for Argo's analysis use the statistics alone: policy {policy.name} already "
                f"spent its {budget} analyses this hour."
            )
            await post_event(self.rt, ro, EventText(BUDGET_EXHAUSTED, "Warning", message))
        else:
            usage.count_analysis(now)
            fresh = Window(started=now)
        self._keep(key, fresh)
        return fresh

    def _keep(self, key: WindowKey, window: Window) -> None:
        """Remember the window; those of the Rollout's other revisions, and the oldest beyond the bound, go."""
        for old in [k for k in self.windows if k[:2] == key[:2] and k[2] != key[2]]:
            self._forget(old)
        self.windows[key] = window
        self.windows.move_to_end(key)
        while len(self.windows) > MAX_WINDOWS:
            self._forget(next(iter(self.windows)))

    def _forget(self, key: WindowKey) -> None:
        window = self.windows.pop(key)
        for task in (window.consultation, window.statistics):
            if task is not None and not task.done():
                task.cancel()

    async def _consult(self, policy: PolicyRef, prepared: Prepared) -> Consultation:
        """Ask the policy's analyzer once for this window; its tokens count against the policy's budget."""
        spec, rt = policy.spec, self.rt
        redactor, _, _, bundle = prepared
        usage = rt.usage_of(policy.namespace, policy.name)
        analyzer, error = await self.analyzers(
            rt.kube, rt.clients, policy.namespace, spec.analysis.llm, observe_llm=rt.metrics.llm_request_seconds.observe
        )
        left = max(0, spec.budget.tokens_per_day - usage.tokens_today)
        consultation = await consult(
            spec.analysis, analyzer, bundle, redactor, analyzer_error=error, token_budget_left=left
        )
        tokens = consultation.prompt_tokens + consultation.completion_tokens
        usage.count_tokens(tokens, rt.clock())
        if tokens:
            rt.metrics.llm_tokens.inc(tokens, namespace=policy.namespace, policy=policy.name)
        if consultation.error:
            rt.metrics.analyzer_unavailable.inc(namespace=policy.namespace, policy=policy.name)
        return consultation

    async def _ticket(self, policy: PolicyRef, ro: Rollout, j: Judgement, canary: str) -> str:
        """The ticket of a failing verdict, counted once per attempt."""
        try:
            record = await self.rt.ledger.get(ro.namespace, policy.name, ro.name)
            return await open_ticket(
                self.rt, policy, ro, j, Trigger.INLINE, cycle_key(record, ro, canary), WEB_METRIC_FAILED
            )
        except SelfHealError as e:  # the failed-run trigger records it when this could not
            log.warning("ticket for %s/%s not recorded by the verdict endpoint: %s", ro.namespace, ro.name, e)
            return ""

    async def _claim_runs(self, ro: Rollout, canary: str) -> None:
        """The AnalysisRuns measuring this canary fail on this answer: the failed-run trigger leaves them be,
        since the verdict and the ticket are already given (every answer claims the runs asking by then)."""
        with contextlib.suppress(SelfHealError):
            for run in await self.rt.kube.list_analysis_runs(ro.namespace, ro.uid):
                if run.pod_hash == canary and run.phase not in AR_COMPLETED_PHASES:
                    self.rt.handled_runs.add((ro.namespace, run.name, run.uid))

    async def _explain(self, policy: PolicyRef, ro: Rollout, j: Judgement, answer: VerdictAnswer) -> None:
        """The Event on the Rollout, once per verdict a window reports; counted like every analysis."""
        healthy = "true" if answer.healthy else "false"
        said = f"answered Argo's web metric {answer.verdict} (healthy={healthy}, score {answer.score:.2f})"
        if answer.dry_run and answer.judged != answer.verdict:
            said += f"; dry run: judged {answer.judged}, the measurement would have failed"
        elif answer.judged != j.verdict.verdict:
            said += "; the policy does not pass a canary on the statistics alone"
        await explain(self.rt, ro, j, Trigger.INLINE, said)
        self.rt.metrics.analyses.inc(
            namespace=ro.namespace,
            policy=policy.name,
            trigger=Trigger.INLINE.value,
            verdict=str(answer.judged),
            analyzer=str(j.verdict.analyzer),
        )

    async def aclose(self) -> None:
        """Cancel the analyzer asks still running (at shutdown)."""
        for key in list(self.windows):
            self._forget(key)


def _retrieved(task: asyncio.Future[Any]) -> None:
    """Mark a shared computation's failure as seen: the questions that waited for it have answered already."""
    if not task.cancelled():
        task.exception()


async def _consultation(window: Window, wait: float, key: WindowKey) -> tuple[Consultation, bool]:
    """The window's analyzer verdict if it arrives within ``wait`` seconds; (its absence, True) if not."""
    task = window.consultation
    if task is None:
        return Consultation(), False
    if not task.done():
        await asyncio.wait({task}, timeout=max(0.0, wait))  # waiting never cancels the ask
    if not task.done():
        return Consultation(error=PENDING), True
    try:
        return task.result(), False
    except asyncio.CancelledError:
        return Consultation(error="the analyzer's verdict was cancelled"), False
    except Exception as e:  # a fault of ours is logged whole, and the statistics answer
        log.exception("the analyzer's verdict for %s failed unexpectedly", key)
        return Consultation(error=f"internal error: {type(e).__name__}"), False
