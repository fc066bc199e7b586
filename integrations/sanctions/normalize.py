"""Name normalisation shared by the index and the query side.

Both sides must go through exactly the same steps, otherwise a transliteration
or particle rule applied to one side only turns into a missed match.
Steps: transliterate any script to ASCII (anyascii), casefold, drop
apostrophes/periods, split on other punctuation, reorder ``LAST, First``,
merge Arabic ``Abd``-compounds, drop honorifics / particles / legal forms.
Each surviving token carries a *weight* saying how much its absence on the
other side should cost (missing middle names are cheap, a missing surname is not).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from anyascii import anyascii

# Role weights: the cost of a token of this role being unmatched.
W_PRIMARY = 1.0  # first given name, main surname, any entity-name word
W_SECONDARY_SURNAME = 0.5  # second (maternal) surname: often dropped in practice
W_MIDDLE = 0.25  # middle names / patronymics: very often dropped

_HONORIFICS = frozenset(
    {
        "mr",
        "mrs",
        "ms",
        "miss",
        "mx",
        "dr",
        "prof",
        "sir",
        "dame",
        "lord",
        "lady",
        "hon",
        "rev",
        "sheikh",
        "shaykh",
        "sheik",
        "shaikh",
        "shaikha",
        "sheikha",
        "haji",
        "hajji",
        "alhaj",
        "alhajji",
        "mullah",
        "mulla",
        "maulana",
        "mawlana",
        "gen",
        "col",
        "colonel",
        "capt",
        "lt",
        "sgt",
        "mme",
        "mlle",
        "herr",
        "frau",
        "senor",
        "sra",
        "don",
        "dona",
    }
)
_SUFFIXES = frozenset({"jr", "sr", "ii", "iii", "iv", "esq", "phd"})
_HIS_EXCELLENCY = re.compile(r"\bH\.\s?E\.?(?=\s)")
_PARTICLES = frozenset(
    {
        "al",
        "el",
        "bin",
        "ibn",
        "bint",
        "binti",
        "binte",
        "de",
        "del",
        "della",
        "da",
        "di",
        "do",
        "dos",
        "das",
        "du",
        "van",
        "von",
        "der",
        "den",
        "ter",
        "la",
        "le",
        "los",
        "las",
        "y",
        "e",
        "und",
        "and",
        "of",
        "the",
    }
)
_LEGAL_FORMS = frozenset(
    {
        "ltd",
        "llc",
        "inc",
        "co",
        "corp",
        "corporation",
        "company",
        "limited",
        "sa",
        "sas",
        "srl",
        "sl",
        "gmbh",
        "ag",
        "bv",
        "nv",
        "plc",
        "jsc",
        "ojsc",
        "cjsc",
        "pjsc",
        "ooo",
        "oao",
        "zao",
        "pao",
        "ao",
        "tov",
        "fze",
        "fzco",
        "fzc",
        "fzllc",
        "llp",
        "lp",
        "spa",
        "sarl",
        "pte",
        "pty",
        "cia",
        "ltda",
        "cv",
        "sde",
        "sac",
        "eirl",
        "kg",
        "ab",
        "as",
        "oy",
        "sro",
        "doo",
        "dd",
        "ad",
        "kft",
        "zrt",
        "sp",
        "zoo",
        "bhd",
        "sdn",
        "tbk",
        "pt",
        "incorporated",
        "group",
        "holding",
        "holdings",
        "trading",
        "est",
        "establishment",
    }
)
# Arabic article forms that only count as particles when hyphen/space-attached
# to the next word ("ad-Din", "as-Sayyid"); standalone they may be real names.
_ATTACHED_ARTICLE = re.compile(r"\b(?:ad|ud|as|ash|az|ar|an|at|ul|ut|ath)-(?=\w)", re.IGNORECASE)
_ABD_PREFIXES = ("abdul", "abdel", "abdal", "abdol", "abdoul", "abdur", "abder", "abdu", "abd")
_CANONICAL = {
    "mohd": "mohammed",
    "muhd": "mohammed",
    "md": "mohammed",
    "mohamed": "mohammed",
}
_APOSTROPHES = re.compile("['`\u00b4\u02bc\u02bb\u02bf\u02be\u2018\u2019]")
_NON_ALNUM = re.compile(r"[^a-z0-9]+")


@dataclass(frozen=True, slots=True)
class NormalizedName:
    """Tokens in natural (given-names-first) order and their absence costs."""

    tokens: tuple[str, ...]
    weights: tuple[float, ...]

    @property
    def text(self) -> str:
        return " ".join(self.tokens)

    @property
    def compact(self) -> str:
        return "".join(self.tokens)


def to_ascii(text: str) -> str:
    """Transliterate any script to lower-case ASCII ("Ḥarīrī" → "hariri", "Путин" → "putin")."""
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return anyascii(stripped).casefold()


def _raw_tokens(text: str) -> list[str]:
    text = _ATTACHED_ARTICLE.sub(" ", text)
    text = to_ascii(text)
    text = _APOSTROPHES.sub("", text).replace("'", "").replace(".", "")
    tokens = [t for t in _NON_ALNUM.split(text) if t]
    return _merge_abd(tokens)


def _merge_abd(tokens: list[str]) -> list[str]:
    """Fold ``Abdul Rahman`` / ``Abd al-Rahman`` / ``Abdulrahman`` to one token ``abdrahman``."""
    out: list[str] = []
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if tok in _ABD_PREFIXES and i + 1 < len(tokens):
            nxt = i + 1
            if tokens[nxt] in ("al", "el", "ul") and nxt + 1 < len(tokens):
                nxt += 1
            out.append("abd" + tokens[nxt])
            i = nxt + 1
            continue
        for prefix in _ABD_PREFIXES:
            if tok.startswith(prefix) and len(tok) - len(prefix) >= 3:
                rest = tok[len(prefix) :]
                if rest.startswith(("al", "el", "ul")) and len(rest) > 4:
                    rest = rest[2:]
                tok = "abd" + rest
                break
        out.append(_CANONICAL.get(tok, tok))
        i += 1
    return out


def _strip_leading(tokens: list[str], vocabulary: frozenset[str], keep: int) -> list[str]:
    """Drop titles that precede a name ("Dr.", "Sheikh") but never a trailing surname."""
    while len(tokens) > keep and tokens[0] in vocabulary:
        tokens = tokens[1:]
    return tokens


def _drop_anywhere(tokens: list[str], vocabulary: frozenset[str], keep: int) -> list[str]:
    """Remove stop tokens wherever they are while at least ``keep`` tokens remain."""
    result = list(tokens)
    for idx in range(len(result) - 1, -1, -1):
        if result[idx] in vocabulary and len(result) > keep:
            del result[idx]
    return result


def _clean_part(tokens: list[str], keep: int) -> list[str]:
    tokens = _drop_anywhere(tokens, _LEGAL_FORMS, 1)
    tokens = _strip_leading(tokens, _HONORIFICS, 1)
    tokens = _drop_anywhere(tokens, _SUFFIXES, 1)
    return _drop_anywhere(tokens, _PARTICLES, keep)


def normalize_name(
    name: str, *, person_order: bool = True, is_entity: bool = False
) -> NormalizedName:
    """Normalise a name into weighted tokens.

    ``person_order``: a single comma means ``LAST, First Middle`` (OFAC style);
    entity names never reorder since their commas precede legal forms ("CIMEX, S.A.").
    """
    name = _HIS_EXCELLENCY.sub(" ", name)
    weighted: list[tuple[str, float]]
    comma_form = person_order and not is_entity and name.count(",") == 1
    if comma_form:
        surname_part, given_part = name.split(",")
        given_raw = _raw_tokens(given_part)
        # "CIMEX, S.A." is a company with a legal form after the comma, not "LAST, First".
        comma_form = bool(given_raw) and not all(t in _LEGAL_FORMS for t in given_raw)
    if comma_form:
        surnames = _clean_part(_raw_tokens(surname_part), 1)
        givens = _clean_part(_raw_tokens(given_part), 1)
        if len(surnames) + len(givens) > 2:
            surnames = _drop_anywhere(surnames, _PARTICLES, 1)
            givens = _drop_anywhere(givens, _PARTICLES, 1)
        weighted = [(t, W_PRIMARY if i == 0 else W_MIDDLE) for i, t in enumerate(givens)]
        weighted += [
            (t, W_PRIMARY if i == 0 else W_SECONDARY_SURNAME) for i, t in enumerate(surnames)
        ]
    else:
        tokens = _clean_part(_raw_tokens(name), 2)
        if is_entity or len(tokens) <= 2:
            weighted = [(t, W_PRIMARY) for t in tokens]
        else:
            weighted = [
                (t, W_PRIMARY if i in (0, len(tokens) - 1) else W_MIDDLE)
                for i, t in enumerate(tokens)
            ]
    if weighted and all(w < W_PRIMARY for _, w in weighted):
        weighted[0] = (weighted[0][0], W_PRIMARY)
    return NormalizedName(tuple(t for t, _ in weighted), tuple(w for _, w in weighted))


_PHONETIC_RULES: tuple[tuple[str, str], ...] = (
    ("tsch", "c"),
    ("sch", "s"),
    ("tch", "c"),
    ("ch", "c"),
    ("sh", "s"),
    ("zh", "j"),
    ("kh", "h"),
    ("gh", "g"),
    ("ph", "f"),
    ("th", "t"),
    ("dh", "d"),
    ("dj", "j"),
    ("ck", "k"),
    ("ks", "x"),
    ("q", "k"),
    ("c", "k"),
    ("z", "s"),
    ("w", "v"),
)
_VOWELS = frozenset("aeiouy")
_DOUBLED = re.compile(r"(.)\1+")


def phonetic_key(token: str) -> str:
    """A coarse consonant skeleton so transliteration variants collide.

    Mohammed/Muhammad/Mohamad → ``mhmd``; Hussein/Husayn → ``hsn``; Osama/Usama
    → ``asm``. Deliberately lossy: it only selects candidates, never decides.
    """
    if not token:
        return ""
    if token.isdigit():
        return token
    key = _DOUBLED.sub(r"\1", token)
    for src, dst in _PHONETIC_RULES:
        key = key.replace(src, dst)
    first = "a" if key[0] in _VOWELS and key[0] != "y" else key[0]
    out = [first]
    for ch in key[1:]:
        if ch in _VOWELS:
            continue
        if ch != out[-1]:
            out.append(ch)
    return "".join(out)
