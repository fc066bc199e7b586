"""``onboarding screen`` screens in batches (the matcher's ``screen_many``): the output is the
same line for line whatever the batch size, errors stay in their places, and each batch is
written as soon as it is screened."""

from __future__ import annotations

import io
import json

from cli.screen import screen_stream
from integrations.sanctions import SanctionsScreener
from tests.sanctions.test_cli import FIXTURES, _run

NAMES = [
    "Vladimir Putin",
    "John Smith",
    "Саад Харири",
    "Ayman al-Zawahiri",
    "Kenji Tanaka",
    "Banco Ejemplo Internacional SA",
]


def _lines() -> str:
    rows = [{"id": i, "name": n} for i, n in enumerate(NAMES)]
    rows.insert(3, {"id": "bad", "name": ""})  # an error between screened lines
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)


def test_output_is_the_same_whatever_the_batch_size():
    outputs = []
    for extra in ([], ["--batch-size", "1"], ["--batch-size", "2"]):
        proc = _run(_lines(), *extra)
        assert proc.returncode == 1, proc.stderr  # the bad line
        outputs.append([json.loads(line) for line in proc.stdout.splitlines()])
    assert outputs[0] == outputs[1] == outputs[2]
    out = outputs[0]
    assert [o["id"] for o in out] == [0, 1, 2, "bad", 3, 4, 5]
    assert "error" in out[3]
    assert out[0]["list_entry_id"] == "ofac-sdn:100"


def test_each_batch_is_written_when_screened():
    screener = SanctionsScreener.from_files(sdn=FIXTURES / "sdn.csv", alt=FIXTURES / "alt.csv")
    written: list[int] = []

    class Out(io.StringIO):
        def flush(self) -> None:
            written.append(self.getvalue().count("\n"))

    stdout = Out()
    assert screen_stream(screener, io.StringIO(_lines()), stdout, batch_size=3) == 1
    assert written == [3, 6, 7]  # three full batches of lines, then the rest


def test_a_batch_size_below_one_is_refused():
    proc = _run("", "--batch-size", "0")
    assert proc.returncode == 2 and "--batch-size" in proc.stderr
