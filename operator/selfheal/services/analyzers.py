"""The analyzer a policy names (OpenAI-compatible LLM or A2A agent), built from its Secret and reused."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from selfheal.domain.policy import LLMProvider, LLMSpec
from selfheal.errors import ConfigError
from selfheal.services.judge import secret_digest
from selfheal.services.ports import KubePort

# Keyless endpoints (a local model server) still need a non-empty key for the client.
NO_KEY = "not-needed"


async def analyzer_for(
    kube: KubePort,
    clients: dict[tuple[str, ...], Any],
    namespace: str,
    llm: LLMSpec,
    *,
    observe_llm: Callable[..., None] | None = None,
) -> tuple[Any | None, str | None]:
    """``(client, None)``, or ``(None, why)`` when the policy names no analyzer or its Secret is unusable.
    ``observe_llm`` is told how long each LLM completion took (the latency metric)."""
    if llm.provider == LLMProvider.NONE:
        return None, None
    key = NO_KEY
    if llm.api_key_secret_ref is not None:
        try:
            key = await kube.read_secret_key(namespace, llm.api_key_secret_ref.name, llm.api_key_secret_ref.key)
        except ConfigError as e:
            return None, str(e)
    cache_key = (
        llm.provider.value,
        llm.base_url,
        llm.model,
        secret_digest(key),
        str(llm.timeout_seconds),
        str(llm.max_retries),
        str(llm.temperature),
    )
    client = clients.get(cache_key)
    if client is None:
        if llm.provider == LLMProvider.OPENAI:
            # Imported when a policy first names an LLM: the SDK is a good part of the operator's memory.
            from selfheal.adapters.llm import LLMClient

            client = LLMClient(
                llm.base_url or None,
                key,
                llm.model,
                timeout=llm.timeout_seconds,
                max_retries=llm.max_retries,
                temperature=llm.temperature,
                observe=observe_llm,
            )
        else:
            from selfheal.adapters.a2a import A2AClient

            client = A2AClient(
                llm.base_url,
                api_key="" if key == NO_KEY else key,
                timeout=llm.timeout_seconds,
                max_retries=llm.max_retries,
            )
        clients[cache_key] = client
    return client, None
