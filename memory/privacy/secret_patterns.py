"""The secret gate's detectors: provider key formats, cued values, bank checks.

Provider formats are ported from Yelp's detect-secrets 1.5.0 plugins (Apache
License 2.0, https://github.com/Yelp/detect-secrets: aws, basic_auth, discord,
github_token, gitlab_token, jwt, mailchimp, npm, openai, pypi_token, sendgrid,
slack, square_oauth, stripe, telegram_token, twilio, azure_storage_key). The
package itself is not used: importing it costs ~110 ms (it pulls in requests
and yaml) on every `mem remember`, and its keyword and entropy plugins are
tuned for source code, where prose would trip them. Formats it lacks (Hugging
Face, Groq, GitHub fine-grained tokens, bearer headers, AWS secret keys without
code around them) follow the providers' documented prefixes.

Everything here is a string; :func:`pattern` compiles one on first use, so
commands that never store text (`mem --help`) pay nothing and a short note
compiles only the few patterns whose anchors it contains.
"""

from __future__ import annotations

import re

# (label, anchors, shortest, pattern): the named group ``v`` (or the whole match)
# is redacted. A pattern is compiled and run only when one of its anchors is in
# the lower-cased text (no anchors: always) and some word has ``shortest`` chars.
PROVIDER_KEYS: tuple[tuple[str, tuple[str, ...], int, str], ...] = (
    (
        "private key",
        ("-----begin",),
        0,
        r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)",
    ),
    # OpenAI, Anthropic, DeepSeek... (detect-secrets' openai is the legacy subset).
    (
        "API key",
        ("sk-", "rk-", "pk-"),
        19,
        r"\b(?:sk|rk|pk)-(?:proj-|live-|test-|ant-(?:api\d\d-)?|svcacct-)?[\w\-]{16,}",
    ),
    ("API key", ("_live_", "_test_"), 24, r"\b(?:sk|rk)_(?:live|test)_[0-9a-zA-Z]{16,}"),  # stripe
    (
        "API key",
        ("a3t", "abia", "acca", "akia", "asia"),
        20,
        r"\b(?:A3T[A-Z0-9]|ABIA|ACCA|AKIA|ASIA)[0-9A-Z]{16}\b",  # aws key id
    ),
    (
        "API key",
        ("ghp_", "gho_", "ghu_", "ghs_", "ghr_"),
        34,
        r"\b(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9_]{30,}",  # github_token
    ),
    ("API key", ("github_pat_",), 33, r"\bgithub_pat_[A-Za-z0-9_]{22,}"),
    (
        "API key",
        ("gl",),
        25,
        r"\b(?:glpat|gldt|glft|glsoat|glrt|glcbt|glimt|glptt|glagent|gloas)-[\w\-]{20,}",
    ),
    ("API key", ("xox",), 14, r"\bxox[abposr]-[A-Za-z0-9-]{10,}"),  # slack
    ("API key", ("hooks.slack",), 40, r"https://hooks\.slack\.com/services/T\w+/B\w+/\w+"),
    ("API key", ("aiza",), 34, r"\bAIza[0-9A-Za-z_\-]{30,}"),  # google
    ("API key", ("hf_",), 33, r"\bhf_[A-Za-z0-9]{30,}\b"),  # hugging face
    ("API key", ("gsk_",), 24, r"\bgsk_[A-Za-z0-9]{20,}\b"),  # groq
    ("API key", ("xai-",), 44, r"\bxai-[A-Za-z0-9]{40,}\b"),
    ("API key", ("r8_",), 33, r"\br8_[A-Za-z0-9]{30,}\b"),  # replicate
    ("API key", ("sg.",), 36, r"\bSG\.[\w\-]{16,}\.[\w\-]{16,}"),  # sendgrid
    ("API key", ("npm_",), 40, r"\bnpm_[A-Za-z0-9]{36}\b"),
    ("API key", ("pypi-",), 58, r"\bpypi-AgE[\w\-]{50,}"),
    ("API key", (":",), 44, r"\b\d{8,10}:(?P<v>[\w\-]{35})\b"),  # telegram bot
    ("API key", (), 59, r"\b[MNO][\w\-]{23,25}\.[\w\-]{6}\.[\w\-]{27}\b"),  # discord
    ("API key", ("ac", "sk"), 34, r"\b(?:AC|SK)[0-9a-f]{32}\b"),  # twilio
    ("API key", ("-us",), 36, r"\b[0-9a-f]{32}-us\d{1,2}\b"),  # mailchimp
    ("API key", ("sq0",), 29, r"\bsq0(?:csp|atp)-[\w\-]{22,}"),  # square
    ("API key", ("accountkey=",), 51, r"AccountKey=(?P<v>[A-Za-z0-9+/=]{40,})"),  # azure
    ("access token", ("eyj",), 38, r"\beyJ[\w\-]{10,}\.eyJ[\w\-]{10,}\.[\w\-]{10,}"),  # jwt
    (
        "access token",
        ("bearer", "basic"),
        12,
        r"(?i)\b(?:bearer|basic)\s+(?P<v>(?=[\w\-.~+/]*\d)[\w\-.~+/]{12,}=*)",
    ),
    # Credentials in a URL: scheme://user:password@host (detect-secrets' basic_auth).
    # Bounded repeats: an unbounded scheme made "a.a.a.…://" quadratic (195 s for 400 kB).
    (
        "password",
        ("://",),
        7,
        r"\b[a-zA-Z][a-zA-Z0-9+.\-]{0,30}://[^\s:/@]{1,256}:(?P<v>[^\s@/]{1,256})@",
    ),
    # An AWS secret access key: 40 base64 characters mixing cases and digits.
    (
        "API key",
        (),
        40,
        r"(?<![A-Za-z0-9/+=])(?=[A-Za-z0-9/+]*\d)(?=[A-Za-z0-9/+]*[a-z])"
        r"(?=[A-Za-z0-9/+]*[A-Z])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])",
    ),
)

_PASSWORD_CUES = r"passwords?|passphrases?|passcodes?|passwd|pwd|pw|pins?(?:\s+(?:code|number))?"
_CODE_CUES = (
    r"(?:door|gate|alarm|safe|lock|locker|entry|access|security|garage|building|keypad)"
    r"\s+code"
)
_KEY_CUES = (
    r"api[\s_\-]?key|(?:client|app|aws)[\s_\-]?secret(?:[\s_\-]?(?:access[\s_\-]?)?key)?|"
    r"secret(?:[\s_\-]?(?:access[\s_\-]?)?key)?|access[\s_\-]?(?:key|token)|"
    r"auth[\s_\-]?token|token"
)
# A quoted value may hold spaces (a passphrase); a bare one ends at a space.
_VALUE = (
    r"(?P<value>\"[^\"\n]{3,100}\"|'[^'\n]{3,100}'|\u201c[^\u201d\n]{3,100}\u201d"
    r"|\u2018[^\u2019\n]{3,100}\u2019|[^\s\"',;]{4,})"
)
# "<cue> [for my email] is|:|= <value>", "changed my password to <value>"
CUED = (
    rf"(?i)\b(?P<cue>{_PASSWORD_CUES}|{_CODE_CUES}|{_KEY_CUES}|pass)\b"
    r"(?P<qual>\s+(?:for|of|to|on|at)(?:\s+(?!(?:is|was|are)\b)[^\s:=()]*[^\s:=().!?,;]){1,4}?)?"
    r"(?P<sep>\s*(?::|=|->)\s*|\s+(?:is|was|are)\s*:?\s+(?:(?:now|still|just|simply)\s+)?"
    r"|\s+to\s+)" + _VALUE
)
# "PIN 4921", 'password "blue moon"': a cue directly followed by its value.
BARE = rf"(?i)\b(?P<cue>{_PASSWORD_CUES}|{_CODE_CUES})(?P<sep>\s+)" + _VALUE
# A fact slot that names a secret ("wifi password", "door code").
SECRET_SLOT = rf"(?i)\b(?:{_PASSWORD_CUES}|{_CODE_CUES}|{_KEY_CUES}|credentials?)\b"

CARD = r"(?<![\d-])(?:\d[ -]?){12,18}\d(?![\d-])"
CARD_DOTS = r"(?<![\d.])(?:\d{4}\.\d{4}\.\d{4}\.\d{1,7}|\d{4}\.\d{6}\.\d{4,5})(?!\d|\.\d)"
IBAN = r"(?i)\b[A-Z]{2}\d{2}(?:[ ]?[A-Z0-9]{4}){2,7}(?:[ ]?[A-Z0-9]{1,3})?\b"
ACCOUNT = (
    r"(?i)\b(?:account|acct|routing|sort code)(?: number| no\.?| #)?\s*(?:is|:)?\s*"
    r"(?P<value>\d[\d -]{5,20}\d)"
)
# Where "[redacted …]" already stands: never scanned again.
LABEL = r"\[redacted [a-z ]+\]"

IBAN_COUNTRIES = frozenset(
    """AD AE AL AT AZ BA BE BG BH BI BR BY CH CR CY CZ DE DJ DK DO EE EG ES FI FK FO FR GB
    GE GI GL GR GT HR HU IE IL IQ IS IT JO KW KZ LB LC LI LT LU LV LY MC MD ME MK MN MR MT
    MU NI NL NO OM PK PL PS PT QA RO RS RU SA SC SD SE SI SK SM SO ST SV TL TN TR UA VA VG
    XK YE""".split()
)

# Words that follow "the password is …" in ordinary prose, not secrets.
PROSE = frozenset(
    """required changed wrong correct incorrect expired reset stored saved set empty missing
    invalid valid weak strong long short same different sensitive case-sensitive needed
    optional mandatory hashed encrypted protected secure insecure generated shown hidden
    visible used usually always never still also only then there here available
    unavailable unknown forgotten lost none null blank temporary""".split()
)


CUED_ANCHORS = ("pass", "pw", "pin", "code", "key", "secret", "token")
BARE_ANCHORS = ("pass", "pw", "pin", "code")
ACCOUNT_ANCHORS = ("account", "acct", "routing", "sort code")

_SOURCES: dict[str, str] = {
    "cued": CUED,
    "bare": BARE,
    "slot": SECRET_SLOT,
    "card": CARD,
    "card_dots": CARD_DOTS,
    "iban": IBAN,
    "account": ACCOUNT,
    "label": LABEL,
    **{f"key{i}": entry[3] for i, entry in enumerate(PROVIDER_KEYS)},
}
_COMPILED: dict[str, re.Pattern[str]] = {}


def pattern(name: str) -> re.Pattern[str]:
    """The named pattern, compiled on first use (most texts need few of them)."""
    found = _COMPILED.get(name)
    if found is None:
        found = _COMPILED[name] = re.compile(_SOURCES[name])
    return found
