"""Vendor credential formats: detect-secrets' plugin patterns, plus the formats it does not know, on RE2."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache

import re2
from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class
from detect_secrets.plugins.base import RegexBasedDetector

from selfheal.domain.redaction.relax import relaxed
from selfheal.domain.redaction.spans import TOKEN_CHARS, Span, widen

# detect-secrets plugins left out: public IP addresses are not secrets, and private keys are
# redacted as whole blocks (see pem.py).
_SKIPPED = frozenset({"Public IP (ipv4)", "Private Key"})
# Kind names for detect-secrets secret types (by type, or by type and pattern index).
_KIND_NAMES = {
    ("AWS Access Key", 0): "aws_access_key",
    ("AWS Access Key", 1): "aws_secret_key",
    ("Slack Token", 0): "slack_token",
    ("Slack Token", 1): "slack_webhook",
    ("Basic Auth Credentials", 0): "url_password",
    ("JSON Web Token", 0): "jwt",
}

# Credential formats detect-secrets 1.5 has no plugin for, each a documented vendor prefix.
EXTRA_FORMATS: tuple[tuple[str, str], ...] = (
    ("openai_key", r"sk-(?:proj|svcacct|admin|None)-[A-Za-z0-9_\-]{20,}"),
    ("openai_key", r"sk-[A-Za-z0-9]{48}"),
    ("anthropic_key", r"sk-ant-(?:api|admin|oat|ort)[0-9]{2}-[A-Za-z0-9_\-]{20,}"),
    ("stripe_key", r"(?:sk|rk)_(?:live|test)_[0-9A-Za-z]{10,}"),
    ("stripe_key", r"whsec_[0-9A-Za-z]{20,}"),
    ("github_token", r"github_pat_[A-Za-z0-9_]{22,}"),
    ("github_token", r"gh[pousr]_[A-Za-z0-9]{30,}"),
    ("gitlab_token", r"gl(?:pat|dt|ft|soat|rt|cbt|imt|ptt|agent|oas|ffct)-[A-Za-z0-9_\-]{20,}"),
    ("slack_token", r"xox[abposrec]-[A-Za-z0-9\-]{10,}"),
    ("slack_token", r"xapp-[0-9]-[A-Z0-9]+-[0-9]+-[a-z0-9]+"),
    ("slack_webhook", r"https://hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9/_\-]{8,}"),
    ("discord_webhook", r"https://(?:ptb\.|canary\.)?discord(?:app)?\.com/api/webhooks/[0-9]+/[A-Za-z0-9_\-]{20,}"),
    ("teams_webhook", r"https://[a-z0-9\-]+\.webhook\.office\.com/webhookb2/[A-Za-z0-9@/\-]{20,}"),
    ("npm_token", r"npm_[A-Za-z0-9]{36}"),
    ("pypi_token", r"pypi-[A-Za-z0-9_\-]{50,}"),
    ("vault_token", r"hv[sbr]\.[A-Za-z0-9_\-]{20,}"),
    ("gcp_api_key", r"AIza[0-9A-Za-z_\-]{35}"),
    ("google_oauth", r"ya29\.[0-9A-Za-z_\-]{20,}"),
    ("google_oauth", r"GOCSPX-[0-9A-Za-z_\-]{20,}"),
    ("sendgrid_key", r"SG\.[A-Za-z0-9_\-]{16,}\.[A-Za-z0-9_\-]{16,}"),
    ("twilio_key", r"(?:AC|SK)[0-9a-fA-F]{32}"),
    ("mailgun_key", r"key-[0-9a-f]{32}"),
    ("shopify_token", r"shp(?:at|ca|pa|ss)_[a-fA-F0-9]{32}"),
    ("digitalocean_token", r"do[opr]_v1_[a-f0-9]{64}"),
    ("huggingface_token", r"hf_[A-Za-z0-9]{30,}"),
    ("databricks_token", r"dapi[a-f0-9]{32}(?:-[0-9])?"),
    ("doppler_token", r"dp\.(?:st|pt|ct|sa|scim|audit)\.[A-Za-z0-9_\-]{20,}"),
    ("linear_key", r"lin_(?:api|oauth)_[A-Za-z0-9]{32,}"),
    ("postman_key", r"PMAK-[a-f0-9]{24}-[a-f0-9]{34}"),
    ("atlassian_token", r"ATATT3[A-Za-z0-9_\-=]{40,}"),
    ("grafana_token", r"gl(?:sa|c)_[A-Za-z0-9_\-+/=]{32,}"),
    ("pulumi_token", r"pul-[a-f0-9]{40}"),
    ("newrelic_key", r"NR(?:AK|II|JS)-[A-Za-z0-9]{20,}"),
    ("sentry_token", r"sntr[ysu]_[A-Za-z0-9_\-=+/]{30,}"),
    ("dockerhub_token", r"dckr_(?:pat|oat)_[A-Za-z0-9_\-]{20,}"),
    ("terraform_token", r"[A-Za-z0-9]{14}\.atlasv1\.[A-Za-z0-9_\-=]{60,}"),
    ("age_secret_key", r"AGE-SECRET-KEY-1[0-9A-Z]{58}"),
    ("alibaba_key", r"LTAI[A-Za-z0-9]{12,20}"),
    ("square_token", r"(?:EAAA|sq0atp-)[0-9A-Za-z_\-]{22,}"),
    ("facebook_token", r"EAA[A-Za-z0-9]{3,4}ZD[A-Za-z0-9]{20,}|EAACEdEose0cBA[0-9A-Za-z]+"),
    ("mapbox_token", r"sk\.eyJ[A-Za-z0-9_\-]{20,}\.[A-Za-z0-9_\-]{20,}"),
    ("firebase_key", r"AAAA[A-Za-z0-9_\-]{7}:APA91b[A-Za-z0-9_\-]{100,}"),
    ("supabase_token", r"sb(?:p|_secret)_[A-Za-z0-9_\-]{30,}"),
    ("planetscale_token", r"pscale_(?:tkn|pw|oauth)_[A-Za-z0-9_\-=.]{30,}"),
    ("flyio_token", r"fo1_[A-Za-z0-9_\-]{30,}"),
    ("netlify_token", r"nfp_[A-Za-z0-9]{30,}"),
    ("airtable_token", r"pat[A-Za-z0-9]{14}\.[a-f0-9]{64}"),
    ("notion_token", r"(?:secret_[A-Za-z0-9]{43}|ntn_[A-Za-z0-9]{40,})"),
    ("tailscale_key", r"tskey-[a-z]+-[A-Za-z0-9_\-]{10,}"),
    ("onepassword_token", r"ops_eyJ[A-Za-z0-9_\-+/=]{20,}"),
    ("dynatrace_token", r"dt0c01\.[A-Z0-9]{24}\.[A-Z0-9]{64}"),
    ("contentful_token", r"CFPAT-[A-Za-z0-9_\-]{43}"),
    ("typeform_token", r"tfp_[A-Za-z0-9_\-.=]{40,}"),
    ("flutterwave_key", r"FLW(?:SECK|PUBK)(?:_TEST)?-[a-f0-9]{32}-X"),
    ("easypost_key", r"EZ[AT]K[A-Za-z0-9]{40,}"),
    ("clojars_token", r"CLOJARS_[a-z0-9]{60}"),
    ("adafruit_key", r"aio_[A-Za-z0-9]{28}"),
    ("heroku_key", r"HRKU-[A-Za-z0-9_\-]{40,}"),
    ("azure_sas", r"(?:SharedAccessSignature|SharedAccessKey)=[A-Za-z0-9+/=%]{20,}"),
    ("azure_storage_key", r"AccountKey=[A-Za-z0-9+/=]{20,}"),
    ("azure_client_secret", r"[A-Za-z0-9_~.\-]{3}\dQ~[A-Za-z0-9_~.\-]{31,34}"),
)

# Formats made of character classes alone, whose relaxed form would fire on ordinary words: a
# hand-written pattern that every match of theirs also matches.
_RELAXATIONS = {
    "discord_bot_token": r"[a-zA-Z0-9_\-]{8}\.[a-zA-Z0-9_\-]{6}\.[a-zA-Z0-9_\-]{16}",
    "telegram_bot_token": r"[0-9]{8}:[0-9A-Za-z_\-]{16}",
}

_LOOKAROUND = re.compile(r"\(\?<?[=!]")
# RE2 counts repetitions up to 1000; a larger bound becomes unbounded (the scan stays linear).
_BIG_REPEAT = re.compile(r"\{([0-9]+),[0-9]{4,}\}")
# A closing delimiter group would be consumed by one match and missing from the next one's start
# ("AKC... AKC..."); matches are widened to whole tokens anyway, so it is dropped.
_TRAILING_DELIMITER = re.compile(r"\(\?:\\s\|\"\|\$\)$")


def _strip_lookarounds(pattern: str) -> str:
    """RE2 has no lookaround; dropping one only widens a match, and matches are trimmed afterwards."""
    out = pattern
    while (m := _LOOKAROUND.search(out)) is not None:
        depth, i = 0, m.start()
        while i < len(out):
            if out[i] == "\\":
                i += 2
                continue
            if out[i] == "(":
                depth += 1
            elif out[i] == ")":
                depth -= 1
                if depth == 0:
                    break
            i += 1
        out = out[: m.start()] + out[i + 1 :]
    return out


@dataclass(frozen=True)
class VendorFormat:
    """One pattern and the kind it names; ``source`` says where the pattern comes from."""

    kind: str
    pattern: str
    source: str


def _slug(secret_type: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", secret_type.lower()).strip("_")


@cache
def formats() -> tuple[VendorFormat, ...]:
    """Every vendor format: detect-secrets' regex plugins first, then `EXTRA_FORMATS`."""
    out: list[VendorFormat] = []
    plugins: dict[str, type] = get_mapping_from_secret_type_to_class()
    for secret_type, plugin in sorted(plugins.items()):
        if secret_type in _SKIPPED or not issubclass(plugin, RegexBasedDetector):
            continue
        for index, regex in enumerate(plugin().denylist):
            kind = _KIND_NAMES.get((secret_type, index), _slug(secret_type))
            pattern = regex.pattern
            if regex.flags & re.VERBOSE:
                pattern = re.sub(r"\s+|#[^\n]*", "", pattern)
            if regex.flags & re.IGNORECASE:
                pattern = "(?i)" + pattern
            out.append(VendorFormat(kind, pattern, f"detect-secrets {plugin.__name__}"))
    out.extend(VendorFormat(kind, pattern, "selfheal") for kind, pattern in EXTRA_FORMATS)
    return tuple(out)


def re2_options() -> re2.Options:
    options = re2.Options()
    options.log_errors = False
    options.max_mem = 64 << 20
    return options


@cache
def _compiled() -> tuple[tuple[re2._Regexp, str, bool], ...]:
    """Each format on its own RE2 program: ``(regex, kind, has a value group)``. One union of them all
    would be a single scan, but its automaton outgrows RE2's memory on base64-heavy text and falls
    back to a slow simulation; a hundred small automata stay fast."""
    options = re2_options()
    out = []
    for fmt in formats():
        pattern = _TRAILING_DELIMITER.sub("", _BIG_REPEAT.sub(r"{\1,}", _strip_lookarounds(fmt.pattern)))
        regex = re2.compile(pattern, options)
        out.append((regex, fmt.kind, regex.groups > 0))
    return tuple(out)


@cache
def trigger() -> str:
    """One pattern every vendor credential matches (each format relaxed, see `relaxed`): text it does
    not match holds none of them."""
    parts = []
    for regex, kind, _ in _compiled():
        parts.append(_RELAXATIONS.get(kind) or relaxed(regex.pattern))
    return "|".join(f"(?:{part})" for part in dict.fromkeys(parts))


def vendor_spans(text: str, rank: int) -> Iterator[Span]:
    """Spans of vendor credentials in ``text``: one linear RE2 scan per format."""
    for regex, kind, grouped in _compiled():
        last = 0
        for m in regex.finditer(text):
            if m.start() < last:
                continue  # inside a token already widened over
            start, end = m.start(), m.end()
            if grouped and m.start(1) > start and m.end(1) > m.start(1):
                start, end = m.start(1), m.end(1)
            start, end = widen(text, start, end)
            if end > start:
                last = _pair_end(text, end)
                yield Span(start, last, kind, rank)


def _pair_end(text: str, end: int) -> int:
    """An ``id:secret`` pair (a Twilio account and its token): the secret after the colon goes too."""
    if end < len(text) and text[end] == ":":
        stop = end + 1
        limit = min(len(text), stop + 256)
        while stop < limit and text[stop] in TOKEN_CHARS:
            stop += 1
        if stop - end - 1 >= 16:
            return stop
    return end
