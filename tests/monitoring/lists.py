"""Small generated sanctions lists for monitoring tests, in the OFAC SDN format the service
reads (integrations/sanctions/lists/: headerless CSV, ``-0-`` for empty, cp1252).

Names are made of invented syllables, so they match nobody else's clients in the shared test
database, and each entry's two names share no word with any other entry's.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from pathlib import Path

_ONSETS = ["b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "th", "kr", "dr"]
_VOWELS = ["a", "e", "i", "o", "u", "ai", "ou"]
_CODAS = ["", "n", "r", "l", "s", "th", "x", "m"]


@dataclass(frozen=True)
class Listed:
    """One person on the list (ent_num, names, what the designation says)."""

    ent_num: int
    first: str
    last: str
    dob: str = "1971"
    country: str = "Portugal"
    program: str = "SDGT"
    aka: str | None = None

    @property
    def client_name(self) -> str:
        """How the client spelled it when they were onboarded."""
        return f"{self.first} {self.last}"

    @property
    def entry_id(self) -> str:
        return f"ofac-sdn:{self.ent_num}"

    def changed(self, *, aka: str | None = None, program: str | None = None) -> Listed:
        """The same designation, amended (a new alias, another programme)."""
        return replace(self, aka=aka or self.aka, program=program or self.program)


def invented_people(count: int, *, seed: int, first_ent: int = 9000) -> list[Listed]:
    """``count`` people whose words are all distinct (no two entries share a name word)."""
    rng = random.Random(seed)
    words: set[str] = set()

    def word() -> str:
        while True:
            text = "".join(
                rng.choice(_ONSETS) + rng.choice(_VOWELS) + rng.choice(_CODAS) for _ in range(3)
            )
            if text not in words and all(text[:4] != w[:4] for w in words):
                words.add(text)
                return text.capitalize()

    return [Listed(first_ent + i, word(), word()) for i in range(count)]


def sdn_row(p: Listed) -> str:
    remarks = f"DOB {p.dob}; nationality {p.country}."
    if p.aka:
        remarks += f" a.k.a. '{p.aka}'."
    return (
        f'{p.ent_num},"{p.last.upper()}, {p.first}","individual","{p.program}",'
        f'-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,"{remarks}"\r\n'
    )


FILLER = [
    Listed(100, "Vladimir Vladimirovich", "Putin", dob="07 Oct 1952", country="Russia"),
    Listed(101, "Ayman", "Al-Zawahiri", dob="19 Jun 1951", country="Egypt"),
]


def write_sdn(path: Path, people: list[Listed]) -> Path:
    """An sdn.csv holding the filler entries plus ``people`` (with OFAC's trailing ^Z)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(sdn_row(p) for p in [*FILLER, *people])
    path.write_bytes(text.encode("cp1252") + b"\x1a")
    return path
