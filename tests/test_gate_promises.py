"""The secret gate's precision promises, as behaviour: card numbers must pass
the Luhn check, IBANs the mod-97 check, cued keys must look like keys. Each
positive has a near miss (one digit or character off) that must be left alone,
so a weakened check fails here (written to kill mutation-test survivors)."""

from __future__ import annotations

import pytest

from memory.errors import SecretRefusedError, UsageError
from memory.privacy.secrets_gate import apply, scan

CARDS = [
    "4111 1111 1111 1111",
    "5500-0000-0000-0004",
    "378282246310005",  # 15 digits (Amex)
    "6011111111111117",
    "4012888888881881",
    "30569309025904",  # 14 digits (Diners)
    "5105105105105100",
]


def _off_by_one(number: str) -> str:
    """The same number with its last digit changed: fails the Luhn check."""
    return number[:-1] + str((int(number[-1]) + 1) % 10)


def _hidden(text: str, secret: str) -> bool:
    out = scan(text)
    return secret not in out.text and "[redacted" in out.text and bool(out.findings)


@pytest.mark.parametrize("card", CARDS)
def test_card_numbers_that_pass_luhn_are_redacted(card: str) -> None:
    assert _hidden(f"my card is {card} thanks", card)


@pytest.mark.parametrize("card", CARDS)
def test_numbers_that_fail_luhn_are_left_alone(card: str) -> None:
    text = f"order number {_off_by_one(card)} shipped"
    assert scan(text).text == text and scan(text).findings == []


IBANS = [
    "GB82 WEST 1234 5698 7654 32",
    "DE89 3704 0044 0532 0130 00",
    "FR14 2004 1010 0505 0001 3M02 606",
    "NO93 8601 1117 947",  # 15 characters, the shortest
    "NL91ABNA0417164300",
    "BE68539007547034",
]


@pytest.mark.parametrize("iban", IBANS)
def test_ibans_that_pass_mod_97_are_redacted(iban: str) -> None:
    assert _hidden(f"pay to {iban} please", iban)


@pytest.mark.parametrize("iban", IBANS)
def test_ibans_with_wrong_check_digits_are_left_alone(iban: str) -> None:
    wrong = iban[:2] + f"{(int(iban[2:4]) + 1) % 100:02d}" + iban[4:]
    text = f"reference {wrong} noted"
    assert scan(text).text == text


@pytest.mark.parametrize(
    "value",
    ["abc12345", "Abcdefg1", "abc-defgh", "ZX9-QW8-PO7", "s3cr3t-t0k3n-value"],
)
def test_cued_values_that_look_like_keys_are_redacted(value: str) -> None:
    assert _hidden(f"my api key is {value}", value)
    assert _hidden(f"token: {value}", value)


@pytest.mark.parametrize("value", ["abcdefgh", "ABCDEFGH", "abcdEFGH", "abc1234", "Ab-1"])
def test_cued_values_that_look_like_words_are_left_alone(value: str) -> None:
    # Too short, or letters only: prose, not a key.
    text = f"the api key is {value}"
    assert scan(text).text == text


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("my password is hunter22", "hunter22"),
        ("PIN: 4921", "4921"),
        ("passcode = 'tulip77'", "tulip77"),
        ("wifi pwd -> Sunflower", "Sunflower"),
    ],
)
def test_cued_passwords_are_redacted_whatever_they_look_like(text: str, secret: str) -> None:
    assert _hidden(text, secret)


@pytest.mark.parametrize(
    "text",
    ["the password is required", "the password is wrong", "my pin is the same", "pin is 12"],
)
def test_password_cues_in_prose_are_left_alone(text: str) -> None:
    assert scan(text).text == text and scan(text).findings == []


def test_every_secret_in_a_text_is_redacted_once_each() -> None:
    text = "cards 4111111111111111 and 5500000000000004, password: hunter22"
    out = scan(text)
    assert "4111111111111111" not in out.text and "5500000000000004" not in out.text
    assert "hunter22" not in out.text
    assert out.text.count("[redacted") == 3
    assert len(out.findings) == len(set(out.findings)) == 2  # each kind named once


def test_policies() -> None:
    text = "my password is hunter22"
    assert apply(text, "allow").text == text
    assert "hunter22" not in apply(text, "redact").text
    with pytest.raises(SecretRefusedError):
        apply(text, "refuse")
    assert apply("nothing secret here", "refuse").text == "nothing secret here"
    with pytest.raises(UsageError, match="redact, refuse or allow"):
        apply(text, "ignore")


@pytest.mark.parametrize("number", ["0000000000000", "0000 0000 0000 0000", "5555555555555555"])
def test_placeholder_digit_runs_are_not_cards(number: str) -> None:
    """A run of one digit passes Luhn (all zeros, sixteen fives) but is a
    placeholder; issuer numbers never start with 0. (Failed before: redacted.)"""
    text = f"tracking {number} ok"
    assert scan(text).text == text and scan(text).findings == []
