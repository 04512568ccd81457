"""The secret gate: API keys, passwords, card and bank numbers never become memories.

A memory is retrieved into every future prompt that looks relevant and sent
to whichever provider is configured then, so a secret stored as a memory leaks
far beyond the message that contained it. Before a memory is written (not the
raw message log, which the user controls with retention) every string of it
is scanned (content, source, metadata, audit events: :func:`apply_record`);
by policy each finding is redacted (the default), the memory is refused, or it
is allowed through. A value found once is redacted wherever else it appears in
the same record, so "my PIN is 4921 … 4921" keeps neither.

Detectors (:mod:`memory.privacy.secret_patterns`) favour precision: card numbers must
pass the Luhn check, IBANs the country and mod-97 checks, and key patterns need
their provider's prefix or a cue such as "password" or "api key", so ordinary
numbers and words are left alone (bench/gate.py measures both sides).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from memory.errors import SecretRefusedError, UsageError
from memory.privacy.secret_patterns import (
    ACCOUNT_ANCHORS,
    BARE_ANCHORS,
    CUED_ANCHORS,
    IBAN_COUNTRIES,
    PROSE,
    PROVIDER_KEYS,
    pattern,
)
from memory.text import STOPWORDS

POLICIES = ("redact", "refuse", "allow")
_CUE_WORDS = frozenset("password passwords passphrase passcode passwd pwd pw pin pass".split())


@dataclass
class GateResult:
    text: str
    findings: list[str] = field(default_factory=list)
    # Each secret found (as written) and its label, to redact its repeats.
    values: dict[str, str] = field(default_factory=dict)


@dataclass
class RecordResult:
    record: dict[str, Any]
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


def _card_ok(digits: str) -> bool:
    """Luhn, and shaped like a card: no issuer number starts with 0, and a run
    of one digit (thirteen zeros pass Luhn) is a placeholder, not a card."""
    return digits[:1] != "0" and len(set(digits)) > 1 and _luhn(digits)


def _iban_ok(raw: str) -> bool:
    s = re.sub(r"\s+", "", raw).upper()
    if not 15 <= len(s) <= 34 or s[:2] not in IBAN_COUNTRIES:
        return False
    moved = s[4:] + s[:4]
    digits = "".join(str(int(c, 36)) for c in moved)
    return int(digits) % 97 == 1


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


def _unquote(value: str) -> tuple[str, str]:
    """(the secret itself, what follows it and is kept: a sentence's full stop)."""
    if len(value) > 2 and value[0] in "\"'\u201c\u2018" and value[-1] in "\"'\u201d\u2019":
        return value[1:-1], ""
    core = value.rstrip(".)")
    return core, value[len(core) :]


def _is_prose(value: str) -> bool:
    low = value.lower()
    return low in STOPWORDS or low in PROSE or low.startswith("[redacted")


def _cued_value(cue: str, sep: str, value: str) -> str | None:
    """The label for ``value`` after ``cue``, or None when it reads as prose."""
    core, _ = _unquote(value)
    quoted = core != value.rstrip(".)")
    cue = re.sub(r"\s+", " ", cue.lower())
    if len(core) < 3 or _is_prose(core):
        return None
    if cue.split()[0] in ("pin", "pins") or cue.endswith(" code"):
        label = "password"  # PINs and door codes are digits ("pin = GPIO_13" is code)
        if not quoted and not (core.isdigit() and 4 <= len(core) <= 12):
            return None
    elif cue.startswith(("pass", "pw")):
        label = "password"
        weak = cue == "pass" or sep.strip() in ("", "to")
        if weak and not quoted and not _secret_like(core) and not any(c.isdigit() for c in core):
            return None
    else:
        label = "API key"
        if not quoted and not _secret_like(core):
            return None
    return label if len(core) >= 4 else None


def scan(text: str, known: Mapping[str, str] | None = None) -> GateResult:
    """Redacted text and the kinds of secret found (empty when clean).

    ``known`` maps secrets already found elsewhere in the same record to their
    labels: they are redacted here too."""
    findings: list[str] = []
    values: dict[str, str] = {}
    low = text.lower()
    longest = max(map(len, text.split()), default=0)
    digits = sum(c.isdigit() for c in text)

    def sub(
        name: str,
        label: str,
        check: Callable[[str], bool] | None = None,
        group: str | int = 0,
    ) -> None:
        nonlocal text

        def repl(m: re.Match[str]) -> str:
            value = m.group(group)
            if value.startswith("[redacted") or (check is not None and not check(value)):
                return m.group(0)
            findings.append(label)
            values[value] = label
            start, end = m.start(group) - m.start(), m.end(group) - m.start()
            whole = m.group(0)
            return f"{whole[:start]}[redacted {label}]{whole[end:]}"

        text = pattern(name).sub(repl, text)

    for i, (label, anchors, shortest, source) in enumerate(PROVIDER_KEYS):
        if longest >= shortest and (not anchors or any(a in low for a in anchors)):
            sub(f"key{i}", label, group="v" if "(?P<v>" in source else 0)
    if digits >= 13:
        luhn: Callable[[str], bool] = lambda v: _card_ok(re.sub(r"\D", "", v))  # noqa: E731
        sub("card", "card number", luhn)
        sub("card_dots", "card number", luhn)
    if digits >= 8:

        def iban(m: re.Match[str]) -> str:
            # The pattern is case-blind, so it may swallow a following word
            # ("... 7034 please"): the longest prefix that ends before a space
            # and passes mod-97 is the account.
            whole = m.group(0)
            ends = [len(whole)] + [i for i in range(len(whole) - 1, 0, -1) if whole[i] == " "]
            for end in ends:
                value = whole[:end]
                if not value.startswith("[redacted") and _iban_ok(value):
                    findings.append("bank account")
                    values[value] = "bank account"
                    return f"[redacted bank account]{whole[end:]}"
            return whole

        text = pattern("iban").sub(iban, text)
    if digits >= 6 and any(a in low for a in ACCOUNT_ANCHORS):
        sub("account", "bank account", group="value")

    def cued(m: re.Match[str]) -> str:
        value = m.group("value")
        label = _cued_value(m.group("cue"), m.group("sep"), value)
        if label is None:
            return m.group(0)
        core, tail = _unquote(value)
        findings.append(label)
        values[core] = label
        return f"{m.group(0)[: m.start('value') - m.start()]}[redacted {label}]{tail}"

    if any(a in low for a in CUED_ANCHORS):
        text = pattern("cued").sub(cued, text)
    if any(a in low for a in BARE_ANCHORS):
        text = pattern("bare").sub(cued, text)
    repeats = {**(known or {}), **values}
    if repeats:
        text = _redact_repeats(text, repeats, findings)
    return GateResult(text, sorted(set(findings), key=findings.index), values)


def _redact_repeats(text: str, values: Mapping[str, str], findings: list[str]) -> str:
    """Every other occurrence of a found secret, outside the redaction labels."""
    wanted = [
        v
        for v in values
        if len(v) >= 4 and v in text and not _is_prose(v) and v.lower() not in _CUE_WORDS
    ]
    if not wanted:
        return text
    wanted.sort(key=len, reverse=True)
    found = re.compile(r"(?<![\w])(?:" + "|".join(re.escape(v) for v in wanted) + r")(?![\w])")
    label_re = pattern("label")
    parts = label_re.split(text)
    labels = label_re.findall(text)

    def repl(m: re.Match[str]) -> str:
        findings.append(values[m.group(0)])
        return f"[redacted {values[m.group(0)]}]"

    out = [found.sub(repl, part) for part in parts]
    return "".join(p + (labels[i] if i < len(labels) else "") for i, p in enumerate(out))


def _check_policy(policy: str) -> None:
    if policy not in POLICIES:
        raise UsageError(f"Unknown secrets policy {policy!r}: use redact, refuse or allow.")


def _refuse(findings: list[str]) -> SecretRefusedError:
    return SecretRefusedError(
        f"Not stored: the text looks like it holds a {', '.join(findings)}; remove "
        'it, or set secrets = "redact" (or "allow") in the config file.'
    )


def apply(text: str, policy: str) -> GateResult:
    """Apply ``policy`` (redact / refuse / allow) to a memory's text."""
    _check_policy(policy)
    if policy == "allow":
        return GateResult(text)
    result = scan(text)
    if result.findings and policy == "refuse":
        raise _refuse(result.findings)
    return result


def apply_record(record: Mapping[str, Any], policy: str) -> RecordResult:
    """Apply ``policy`` to every string of a record (content, source, titles,
    metadata values at any depth, audit before/after): the one entry point for
    whatever is about to be stored. Keys are kept; numbers and booleans pass.

    A secret found in one string is redacted in all of them, and a metadata
    ``value`` whose ``slot`` names a secret ("wifi password") is redacted
    whatever it looks like. Returns a new record; ``refuse`` raises
    :class:`SecretRefusedError` naming what was found."""
    _check_policy(policy)
    if policy == "allow":
        return RecordResult(dict(record))
    known: dict[str, str] = {}
    findings: list[str] = []

    def first(node: Any) -> Any:
        if isinstance(node, str):
            result = scan(node)
            known.update(result.values)
            findings.extend(result.findings)
            return result.text
        if isinstance(node, Mapping):
            out = {k: first(v) for k, v in node.items()}
            slot, value = node.get("slot"), out.get("value")
            # A PIN may come as a number: redact it too (not a boolean).
            scalar = isinstance(value, str | int | float) and not isinstance(value, bool)
            if isinstance(slot, str) and scalar and pattern("slot").search(slot):
                label = "password" if not re.search(r"(?i)key|token|secret", slot) else "API key"
                raw = str(node.get("value"))
                if not raw.startswith("[redacted") and len(raw.strip()) >= 3:
                    known[raw.strip()] = label
                    findings.append(label)
                    out["value"] = f"[redacted {label}]"
            return out
        if isinstance(node, list | tuple):
            return [first(v) for v in node]
        return node

    def again(node: Any) -> Any:
        if isinstance(node, str):
            return _redact_repeats(node, known, findings) if known else node
        if isinstance(node, Mapping):
            return {k: again(v) for k, v in node.items()}
        if isinstance(node, list):
            return [again(v) for v in node]
        return node

    gated = again(first(dict(record)))
    unique = sorted(set(findings), key=findings.index)
    if unique and policy == "refuse":
        raise _refuse(unique)
    return RecordResult(gated, unique)
