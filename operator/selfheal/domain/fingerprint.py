"""The failure fingerprint: what failed, named from the most decisive finding, never from how or when it was seen.

A failure is named by its *primary signature*, the single most decisive finding of the evidence, in words:

1. a crash the canary logs: the exception (or panic) and the shape of its message, at the application's
   own frame (``KeyError: <*> at /app/orders/views.py in create``);
2. how canary containers end: a termination or start-up reason (``container app: OOMKilled``);
3. a field that decides: ``HTTP 5xx responses``, ``latency regression``;
4. a new error the canary logs (its template, every variable part masked);
5. failed analysis metrics, when nothing else shows (never their names).

Never from the trigger, the failed metric's name, which templates made the sample's top, how many pods were
looked at, the namespace, the Rollout or the image tag: the same failing build caught by the log watch or
by an AnalysisRun, on its next revision, in another Rollout or with more pods has the same name. The
*fingerprint* names the failure (the workload and the primary signature; the other crashes a sample shows
are listed beside it, never part of it); the *signature* (the same two, hashed apart) is the marker the
GitHub issue search matches, so an issue whose fingerprint was computed differently (an earlier version,
another sample) is still found by its failure.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from selfheal.domain.evidence import Evidence, Side
from selfheal.domain.logdiff import LogDiff, TemplateStat

# Texts of a signature are cut here: enough to tell failures apart, short enough for an issue marker line.
MAX_TEXT = 240
# Every masked part of a template, however the miner spelled it.
_PLACEHOLDER = re.compile(r"<[A-Z*][A-Z0-9_*]*>")
_NUMBER = re.compile(r"\b0x[0-9a-fA-F]+\b|\b\d[\d.,:_-]*\b")
_MASKS = re.compile(r"(?:<\*>[\s:/.,=\[\]()#-]*)+")
# A pod's name: <workload>-<pod-template hash>-<5 random characters>.
_POD_NAME = re.compile(r"\b([a-z][a-z0-9-]*?)-[a-z0-9]{6,10}-[a-z0-9]{5}\b")
# A line that names what went wrong: an exception class, a panic, a fatal runtime error.
_EXCEPTION = re.compile(
    r"\b(?:[A-Za-z_$][\w$]*[.:]{1,2})*[A-Z][\w$]*(?:Error|Exception|Throwable|Fault)\b"
    r"|\bpanic\b|\bruntime error\b|\bfatal error\b|\bSegmentation fault\b|\bSIGSEGV\b|\bUncaught\b"
)
# Stack frames, one pattern per runtime; group "name" is what the frame calls, "path" where it lives.
_FRAMES = (
    re.compile(r"^at (?P<name>[\w$.<>]+)\((?P<path>[^)]*)\)"),  # Java, Kotlin, Scala
    re.compile(r"^at (?P<name>[\w$.<>`]+)\([^)]*\)(?: in (?P<path>\S+?)(?::line.*)?)?$"),  # .NET
    re.compile(r"^at (?:async )?(?P<name>[^\s(]+) \((?P<path>[^):]+)"),  # Node, named
    re.compile(r"^at (?P<path>/[^\s:]+)"),  # Node, anonymous
    re.compile(r'^File "(?P<path>[^"]+)", line [^,]*, in (?P<name>\S+)'),  # Python
    re.compile(r"^#[^ ]* (?P<path>[^\s(]+)\([^)]*\): (?P<name>[\w\\]+(?:->|::)\w+)"),  # PHP
    re.compile(r"^\([\w.-]+(?: [^)]*)?\) (?P<path>[^\s:]+):[^:]*: (?P<name>\S+)"),  # Elixir, Erlang
    re.compile(r"^(?P<path>[\w./-]+\.rb):[^:]*:in [`'](?P<name>[^'`]+)'"),  # Ruby
    re.compile(r"^(?P<name>(?:[\w.~-]+/)*[\w-]+(?:\.\(\*?\w+\)|\.\w+)+)\(.*\)$"),  # Go
)
# Frames of runtimes, standard libraries and frameworks, not of the failing application.
_LIBRARY = re.compile(
    r"^(?:runtime[./]|net/http\.|panic\(|reflect\.|sync\.|testing\.|created by|goroutine|"
    r"java\.|javax\.|jdk\.|sun\.|com\.sun\.|kotlin\.|scala\.|org\.springframework\.|org\.apache\.|io\.netty\.|"
    r"System\.|Microsoft\.|:gen_server|:proc_lib|gen_server|proc_lib|Elixir\.Kernel|Task\.Supervised|"
    r"Layer\.handle|next$|Module\._compile|processTicksAndRejections)"
    r"|/(?:site-packages|dist-packages|node_modules|vendor|gems|lib/python\d[.\d]*|usr/local/go|usr/lib)/"
    r"|^node:|^internal/|\{main\}"
)


def _clip(text: str) -> str:
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"


def mask(text: str) -> str:
    """A line with every part that varies between occurrences masked: placeholders, numbers and hexadecimal
    addresses, pod names; runs of masks become one, and leading ones (a timestamp) go."""
    text = _POD_NAME.sub(r"\1-<*>", text)
    text = _PLACEHOLDER.sub("<*>", text)
    text = _NUMBER.sub("<*>", text)
    text = _MASKS.sub("<*> ", text)
    text = " ".join(text.split())
    while text.startswith("<*>"):
        text = text[3:].lstrip(" :-]|")
    return text


def _frame(line: str) -> tuple[str, str] | None:
    """``(name, path)`` of a stack frame line, or None when the line is no frame."""
    for pattern in _FRAMES:
        m = pattern.match(line)
        if m is not None:
            groups = m.groupdict()
            return groups.get("name") or "", groups.get("path") or ""
    return None


def _own_frame(lines: list[str]) -> str:
    """The innermost frame of the application's own code (Python lists it last, the others first)."""
    frames = [f for f in (_frame(line) for line in lines) if f is not None]
    own = [f for f in frames if not _LIBRARY.search(f[0]) and not _LIBRARY.search(f[1])]
    if not own:
        return ""
    python = any(line.startswith("File ") for line in lines)
    name, path = own[-1] if python else own[0]
    path = _PLACEHOLDER.sub("", path).rstrip(":")
    if not name:
        return path
    if python or path.endswith(".rb"):
        return f"{path} in {mask(name)}"
    return mask(name)


def crash_name(template: str) -> str:
    """A crash template named as the exception (or panic) with the shape of its message, at the
    application's own frame: what stays the same however often, wherever and by which pod it is logged."""
    lines = [line.strip() for line in template.strip().splitlines() if line.strip()]
    if not lines:
        return ""
    exception = next((line for line in lines if _EXCEPTION.search(line) and _frame(line) is None), lines[0])
    name = mask(exception)
    frame = _own_frame(lines)
    return _clip(f"{name} at {frame}" if frame else name)


def _rank(stats: list[TemplateStat]) -> list[TemplateStat]:
    """Most logged first; equal counts in the order of their names, so the choice never depends on the miner."""
    return sorted(stats, key=lambda t: (-t.canary_count, crash_name(t.template)))


def _crashes(diff: LogDiff) -> list[str]:
    crashes = [t for t in diff.significant() if t.crash_signature]
    return list(dict.fromkeys(crash_name(t.template) for t in _rank(crashes)))


def _pod_reasons(evidence: Evidence) -> list[str]:
    """How canary containers ended or could not start. CrashLoopBackOff is a passing state (present or
    not depending on the moment), so it is left out; the reason it restarts is kept."""
    reasons: set[str] = set()
    for pod in evidence.side(Side.CANARY):
        for c in pod.containers:
            if c.last_terminated_reason:
                reasons.add(f"container {c.name}: {c.last_terminated_reason}")
            if c.waiting_reason and c.waiting_reason != "CrashLoopBackOff" and c.waiting_reason != "ContainerCreating":
                reasons.add(f"container {c.name}: {c.waiting_reason}")
    return sorted(reasons)


def _field(diff: LogDiff) -> str:
    """The field finding that decides: a 5xx share that rose by whole points, else a latency that grew."""
    if any(f.decisive_share for f in diff.fields):
        return "HTTP 5xx responses"
    if any(f.kind == "number" and f.status == "slower" and f.error for f in diff.fields):
        return "latency regression"
    return ""


def _new_error(diff: LogDiff) -> str:
    errors = [t for t in diff.significant() if t.severity == "error" and not t.crash_signature and not t.explained]
    if not errors:
        return ""
    first = _rank(errors)[0]
    return _clip(mask(first.template.strip().splitlines()[0]))


def workload(images: list[str]) -> tuple[str, ...]:
    """The image repositories the Rollout runs, without tag or digest: the build's name, not its version."""
    names = set()
    for image in images:
        name = image.split("@", 1)[0]
        head, _, last = name.rpartition("/")
        last = last.split(":", 1)[0]
        names.add(f"{head}/{last}" if head else last)
    return tuple(sorted(n for n in names if n))


@dataclass(frozen=True)
class FailureSignature:
    """What failed: the workload, the most decisive finding, and every crash the canary shows."""

    workload: tuple[str, ...]
    primary: str
    crashes: tuple[str, ...] = ()

    @property
    def signature(self) -> str:
        """sha256 of the workload and the primary signature (32 hex): keys the failure's GitHub issue."""
        return _digest(["workload", *self.workload, "primary", self.primary])

    @property
    def fingerprint(self) -> str:
        """sha256 of the workload and the primary signature, under a name of its own (32 hex): the failure.
        The other crashes are listed beside it but leave it alone: which of them a sample shows depends on
        the moment and on the pods looked at."""
        return _digest(["failure", *self.workload, "primary", self.primary])

    def lines(self) -> list[str]:
        """The primary signature first, then the other crashes: the ticket and the issue show these."""
        return [self.primary, *(c for c in self.crashes if c != self.primary)]


def _digest(parts: list[str]) -> str:
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:32]


def failure_signature(evidence: Evidence, diff: LogDiff) -> FailureSignature:
    """The failure's name from the evidence and its log diff (see the module's docstring for the order)."""
    crashes = _crashes(diff)
    reasons = _pod_reasons(evidence)
    primary = (
        (crashes[0] if crashes else "")
        or (reasons[0] if reasons else "")
        or _field(diff)
        or _new_error(diff)
        or ("failed analysis metrics" if evidence.failed_metrics else "")
        or "no decisive finding"
    )
    return FailureSignature(workload(evidence.images) or (evidence.rollout,), primary, tuple(crashes))
