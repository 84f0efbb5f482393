"""Zero leaks on the planted corpus: every known credential format in every log context is redacted."""

from __future__ import annotations

import collections

from selfheal.domain.redaction import Redactor
from tests.unit.security.corpus import corpus, formats_list, leaked


def test_the_corpus_covers_at_least_a_hundred_formats_in_every_context() -> None:
    assert len(formats_list()) >= 100
    contexts = collections.Counter(p.fmt.rsplit("@", 1)[1] for p in corpus())
    assert len(contexts) >= 30


def test_no_planted_secret_survives_redaction_and_every_count_is_a_replacement() -> None:
    leaks, miscounts = [], []
    for planted in corpus():
        out, counts = Redactor().redact_with_counts(planted.text)
        piece = leaked(planted.secret, out)
        if piece is not None:
            leaks.append(f"{planted.fmt}: {piece!r} in {out!r}")
        if out.count("[REDACTED:") != sum(counts.values()) or not counts:
            miscounts.append(f"{planted.fmt}: {counts} for {out!r}")
    assert not leaks, f"{len(leaks)} leaks:\n" + "\n".join(leaks[:80])
    assert not miscounts, "\n".join(miscounts[:40])
