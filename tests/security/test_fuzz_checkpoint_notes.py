"""Fuzzing the checkpoint-note decoder: ``consumers.checkpoints.note.parse_note`` and
``open_checkpoint`` (C2SP signed notes), as the exporter, ``verify --store`` and an inspector's
bundle verification read them.

The contract: a note is opened (a well-formed checkpoint signed by a trusted key) or refused
with CheckpointError, never another exception; a refused note takes no time to refuse; and a
note changed in any way is never opened unless its signed body is byte for byte the original's
(signature lines may be added, as the signed-note spec allows).
"""

from __future__ import annotations

import base64
import contextlib

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from aigc_audit.consumers.checkpoints.note import (
    Checkpoint,
    CheckpointError,
    key_hash,
    open_checkpoint,
    parse_note,
    sign_checkpoint,
)
from aigc_audit.producers.signing import SigningKey

KEY = SigningKey.generate()
OTHER = SigningKey.generate()
NAME = "aigc-audit.checkpoint"
CHECKPOINT = Checkpoint("example.org/log/aigc-audit.events/0", 12, bytes(range(32)), 40)
NOTE = sign_checkpoint(CHECKPOINT, KEY, NAME)
BODY = CHECKPOINT.body()


def contract(text: str) -> Checkpoint | None:
    """Parse and open ``text``; CheckpointError is the only refusal allowed."""
    with contextlib.suppress(CheckpointError):
        parse_note(text)
    try:
        checkpoint, public_key = open_checkpoint(text, [KEY.public_key, OTHER.public_key])
    except CheckpointError:
        return None
    assert public_key in (KEY.public_key, OTHER.public_key)
    return checkpoint


def opened_means_signed(text: str) -> None:
    checkpoint = contract(text)
    if checkpoint is not None:  # only the signed body, exactly, opens
        assert text.startswith(BODY + "\n"), text
        assert checkpoint == CHECKPOINT


def test_the_real_note_opens() -> None:
    assert contract(NOTE) == CHECKPOINT


@given(st.text(max_size=400))
@example("x\n" + "9" * 5000 + "\nAAAA\n\n\u2014 k AAAAAAAA\n")
@example(NOTE.replace("\n12\n", "\n" + "1" * 5000 + "\n"))
@example(NOTE.replace("next-offset 40", "next-offset " + "4" * 5000))
@example(NOTE.replace("\nAAEC", "\n\u00e9AEC"))  # non-ASCII base64: b64decode's ValueError
@example(BODY + "\n\u2014 \ud800 AAAAAAAA\n" + NOTE[len(BODY) + 1 :])
@example(NOTE + "\u2014 \ud800 " + NOTE.split(" ")[-1])  # a lone surrogate, as JSON can carry
def test_any_text(text: str) -> None:
    contract(text)


@given(st.binary(max_size=300))
def test_any_bytes_as_latin1_and_utf8(data: bytes) -> None:
    contract(data.decode("latin-1"))
    contract(data.decode("utf-8", "replace"))


@st.composite
def mutated_note(draw: st.DrawFn) -> str:
    text = NOTE
    for _ in range(draw(st.integers(1, 3))):
        op = draw(st.integers(0, 9))
        at = draw(st.integers(0, len(text)))
        if op == 0:  # a character changed
            text = text[:at] + draw(st.characters()) + text[at + 1 :]
        elif op == 1:  # something inserted
            text = (
                text[:at]
                + draw(st.sampled_from(["\n", "\r", "\r\n", " ", "\u2014 ", "+", "=", "é", "\x00"]))
                + text[at:]
            )
        elif op == 2:
            text = text[:at] + text[at + draw(st.integers(1, 5)) :]
        elif op == 3:  # CRLF line ends
            text = text.replace("\n", "\r\n")
        elif op == 4:  # the blank line gone
            text = text.replace("\n\n", "\n", 1)
        elif op == 5:  # a signature line repeated, or one by another key under our name
            lines = text.split("\n")
            sig = lines[-2]
            other = sign_checkpoint(CHECKPOINT, OTHER, NAME).split("\n")[-2]
            text = (
                text
                + draw(st.sampled_from([sig, other, sig + "=", "\u2014 " + NAME + " !!"]))
                + "\n"
            )
        elif op == 6:  # a huge tree size or offset
            huge = draw(st.sampled_from(["9" * 5000, str(2**64), "-1", "01", "1e3", "١٢"]))
            text = text.replace("\n12\n", f"\n{huge}\n").replace(
                "next-offset 40", f"next-offset {huge}"
            )
        elif op == 7:  # bad base64 in the signature
            text = (
                text[: text.rindex(" ") + 1]
                + draw(st.sampled_from(["", "====", "A", "AAAA!", "A" * 8000]))
                + "\n"
            )
        elif op == 8:  # key-name collisions: the same key hash under another name
            forged = base64.b64encode(key_hash(NAME, KEY.public_key) + bytes(64)).decode()
            text = text + f"\u2014 {draw(st.sampled_from([NAME, 'other', NAME + ' x']))} {forged}\n"
        else:  # the root hash changed, kept valid base64
            text = text.replace(
                base64.b64encode(bytes(range(32))).decode(), base64.b64encode(bytes(32)).decode()
            )
    return text


@given(mutated_note())
def test_mutated_note_is_refused_unless_its_signed_body_is_untouched(text: str) -> None:
    opened_means_signed(text)


@pytest.mark.parametrize("digits", [5000, 100_000])
def test_huge_numbers_are_refused_with_the_declared_error(bounded: object, digits: int) -> None:
    """Regression: a tree size or next-offset of more than 4300 digits made Python's int()
    raise ValueError (its limit on converting long decimal strings), not CheckpointError, and
    a bundle verification or ``verify --store`` stopped on it."""
    for text in (
        NOTE.replace("\n12\n", "\n" + "1" * digits + "\n"),
        NOTE.replace("next-offset 40", "next-offset " + "4" * digits),
    ):
        outcome = bounded(lambda text=text: open_checkpoint(text, [KEY.public_key]))  # type: ignore[operator]
        assert isinstance(outcome.error, CheckpointError), outcome
        assert outcome.seconds < 0.5


def test_huge_note_is_refused_quickly(bounded: object) -> None:
    text = NOTE[:-1] + "A" * (8 << 20) + "\n"
    outcome = bounded(lambda: open_checkpoint(text, [KEY.public_key]))  # type: ignore[operator]
    assert isinstance(outcome.error, CheckpointError), outcome
    assert outcome.seconds < 2
