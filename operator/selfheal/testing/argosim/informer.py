"""The simulated controller's informer cache of Rollouts: what it sees of each, optionally some seconds late."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field


def _version(obj: dict) -> int:
    value = str((obj.get("metadata") or {}).get("resourceVersion") or "0")
    return int(value) if value.isdigit() else 0


@dataclass
class _History:
    """The versions of one object the watch has delivered, each with when it was first listed."""

    versions: list[tuple[float, int, dict]] = field(default_factory=list)
    own: dict | None = None


class RolloutInformer:
    """The controller's view of the Rollouts, lagging ``lag`` seconds behind the apiserver.

    A change someone else makes (a human's promote, pause or new image; the operator's patches) becomes
    visible ``lag`` seconds after it was first listed, so everything the controller does in reaction
    (its status writes included) lands that much later. What the controller writes itself it sees at
    once, as Argo Rollouts writes its own updates back into its informer; the object it gets back
    carries whatever others changed before, as it does there. With ``lag`` 0 the view is the list.
    """

    def __init__(self, lag: float = 0.0, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.lag = max(0.0, lag)
        self.clock = clock
        self._objects: dict[str, _History] = {}
        self._lock = threading.Lock()

    def view(self, listed: list[dict]) -> list[dict]:
        """The Rollouts as the controller sees them, given what the apiserver lists now; a Rollout
        whose creation has not reached the controller yet is left out."""
        if not self.lag:
            return listed
        now = self.clock()
        seen: list[dict] = []
        with self._lock:
            live = {obj["metadata"]["uid"] for obj in listed}
            for uid in [uid for uid in self._objects if uid not in live]:
                del self._objects[uid]
            for obj in listed:
                history = self._objects.setdefault(obj["metadata"]["uid"], _History())
                version = _version(obj)
                if all(v != version for _, v, _ in history.versions):
                    history.versions.append((now, version, obj))
                visible = [entry for entry in history.versions if entry[0] <= now - self.lag]
                if visible:
                    # Older versions are of no use once a newer one is visible.
                    history.versions = history.versions[history.versions.index(visible[-1]) :]
                candidates = [entry[2] for entry in visible[-1:]]
                if history.own is not None:
                    candidates.append(history.own)
                if candidates:
                    seen.append(max(candidates, key=_version))
        return seen

    def wrote(self, obj: dict) -> None:
        """The controller wrote ``obj`` (the apiserver's answer): it sees that version at once."""
        if not self.lag:
            return
        with self._lock:
            history = self._objects.setdefault(obj["metadata"]["uid"], _History())
            if history.own is None or _version(obj) > _version(history.own):
                history.own = obj
