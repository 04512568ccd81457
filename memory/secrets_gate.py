"""The secret gate: API keys, passwords, card and bank numbers never become memories.

A memory is retrieved into every future prompt that looks relevant and sent
to whichever provider is configured then, so a secret stored as a memory leaks
far beyond the message that contained it. Before a memory is written (not the
raw message log, which the user controls with retention) its text is scanned;
by policy each finding is redacted (the default), the memory is refused, or it
is allowed through.

Detectors favour precision: card numbers must pass the Luhn check, IBANs the
mod-97 check, and key patterns need their provider's prefix or an explicit
"password"/"api key" cue, so ordinary numbers and words are left alone.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from .errors import SecretRefusedError, UsageError
from .text import STOPWORDS

POLICIES = ("redact", "refuse", "allow")


@dataclass
class GateResult:
    text: str
    findings: list[str] = field(default_factory=list)


def _luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def _iban_ok(raw: str) -> bool:
    s = re.sub(r"\s+", "", raw).upper()
    if not 15 <= len(s) <= 34:
        return False
    moved = s[4:] + s[:4]
    digits = "".join(str(int(c, 36)) for c in moved)
    return int(digits) % 97 == 1


_KEY_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    ("API key", re.compile(r"\b(?:sk|rk|pk)-(?:proj-|live-|test-|ant-)?[A-Za-z0-9_\-]{16,}")),
    ("API key", re.compile(r"\bAKIA[0-9A-Z]{16}\b")),
    ("API key", re.compile(r"\bgh[pousr]_[A-Za-z0-9]{30,}\b")),
    ("API key", re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}\b")),
    ("API key", re.compile(r"\bAIza[0-9A-Za-z_\-]{30,}\b")),
    ("API key", re.compile(r"\bglpat-[A-Za-z0-9_\-]{20,}\b")),
    (
        "private key",
        re.compile(
            r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE "
            r"KEY-----|$)"
        ),
    ),
]
_CUED = re.compile(
    r"(?i)\b(?P<cue>password|passphrase|passcode|passwd|pwd|pin(?: code)?|api[ _-]?key|"
    r"secret(?: key)?|access[ _-]?token|auth[ _-]?token|token)"
    r"(?P<sep>\s+(?:is|was)\s+|\s*(?:=|:|->)\s*)(?P<value>[\"']?[^\s\"',;]{4,}[\"']?)"
)
# Words that follow "the password is …" in ordinary prose, not secrets.
_PROSE = frozenset(
    """required changed wrong correct incorrect expired reset stored saved set empty missing
    invalid valid weak strong long short same different sensitive case-sensitive needed
    optional mandatory hashed encrypted protected secure insecure generated shown hidden
    visible used usually always never still also only then there here""".split()
)


def _secret_like(value: str) -> bool:
    """Keys and tokens mix digits, cases or symbols; prose words do not."""
    core = value.strip("\"'")
    if len(core) < 8:
        return False
    kinds = sum(
        (
            any(c.isdigit() for c in core),
            any(c.islower() for c in core),
            any(c.isupper() for c in core),
            any(not c.isalnum() for c in core),
        )
    )
    return kinds >= 2 and any(c.isdigit() or not c.isalnum() for c in core)


_CARD = re.compile(r"(?<![\d-])(?:\d[ -]?){12,18}\d(?![\d-])")
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?:[ ]?[A-Z0-9]{4}){2,7}(?:[ ]?[A-Z0-9]{1,3})?\b")
_ACCOUNT = re.compile(
    r"(?i)\b(?:account|acct|routing|sort code)(?: number| no\.?| #)?\s*(?:is|:)?\s*"
    r"(?P<value>\d[\d -]{5,20}\d)"
)


def scan(text: str) -> GateResult:
    """Redacted text and the kinds of secret found (empty when clean)."""
    findings: list[str] = []

    def sub(
        pattern: re.Pattern[str],
        label: str,
        check: Callable[[str], bool] | None = None,
        group: str | int = 0,
    ) -> None:
        nonlocal text

        def repl(m: re.Match[str]) -> str:
            value = m.group(group)
            if check is not None and not check(value):
                return m.group(0)
            findings.append(label)
            whole = m.group(0)
            return whole.replace(value, f"[redacted {label}]")

        text = pattern.sub(repl, text)

    for label, pattern in _KEY_PATTERNS:
        sub(pattern, label)
    sub(_CARD, "card number", lambda v: _luhn(re.sub(r"\D", "", v)))
    sub(_IBAN, "bank account", _iban_ok)
    sub(_ACCOUNT, "bank account", group="value")

    def cued(m: re.Match[str]) -> str:
        value = m.group("value")
        if value.startswith("[redacted") or value.strip("\"'").lower() in STOPWORDS | _PROSE:
            return m.group(0)
        cue = m.group("cue").lower()
        label = "password" if cue.startswith(("pass", "pwd", "pin")) else "API key"
        if label == "API key" and not _secret_like(value):
            return m.group(0)
        findings.append(label)
        return f"{m.group('cue')}{m.group('sep')}[redacted {label}]"

    text = _CUED.sub(cued, text)
    return GateResult(text, sorted(set(findings), key=findings.index))


def apply(text: str, policy: str) -> GateResult:
    """Apply ``policy`` (redact / refuse / allow) to a memory's text."""
    if policy not in POLICIES:
        raise UsageError(f"Unknown secrets policy {policy!r}: use redact, refuse or allow.")
    if policy == "allow":
        return GateResult(text)
    result = scan(text)
    if result.findings and policy == "refuse":
        raise SecretRefusedError(
            f"Not stored: the text looks like it holds a {', '.join(result.findings)}; remove "
            'it, or set secrets = "redact" (or "allow") in the config file.'
        )
    return result
