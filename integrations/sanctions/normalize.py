"""Name normalisation shared by the index and the query side.

Both sides must go through exactly the same steps, otherwise a transliteration
or particle rule applied to one side only turns into a missed match.
Steps: transliterate any script to ASCII (rigour/ICU, anyascii as the fallback),
casefold, drop apostrophes/periods, split on other punctuation, reorder ``LAST, First``,
merge Arabic ``Abd``-compounds, take legal forms off organisation names (rigour's
org-type database: "Ltd"/"Limited"/"LLC"/"OOO", in Latin or Cyrillic, all become a generic form kept
beside the tokens), drop honorifics / particles.
Each surviving token carries a *weight* saying how much its absence on the
other side should cost (missing middle names are cheap, a missing surname is not).
A name written in Arabic script also carries each token's consonant skeleton
(:func:`arabic_skeleton`): Arabic leaves short vowels unwritten, so "mhmd" or "jbrn" is
compared with a Latin-script list spelling on consonants alone.
"""

# Greek and Arabic letters in comments below are examples, not look-alike typos.
# ruff: noqa: RUF003

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from anyascii import anyascii
from rapidfuzz.distance import OSA
from rigour.names import extract_org_types
from rigour.text.normalize import Normalize
from rigour.text.translit import ascii_text, maybe_ascii

NORMALIZE_CACHE_SIZE = 65_536  # normalised names kept (list names and screened names)

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
        "bn",
        "ben",
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

# Scripts whose names need a little help beyond the library transliteration.
_HAN = re.compile("[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")
_HANGUL = re.compile("[\uac00-\ud7a3]+")
_GREEK = re.compile("[\u0370-\u03ff\u1f00-\u1fff]")
_CYRILLIC = re.compile("[\u0400-\u04ff]")
_ARABIC = re.compile("[\u0600-\u06ff]")
_ARABIC_INITIAL_AYN = re.compile("(?<![\u0621-\u064a])\u0639")
_ARABIC_ARTICLE = re.compile("(?<![\u0621-\u064a])\u0627\u0644(?=[\u0621-\u064a]{2})")
# How Greek writes foreign names, read back the way Latin-script lists spell them:
# χ → h, ου → u, μπ → b, ντ → d, γκ → g, τζ → j (ICU gives ch, ou, mp, nt, ng, tz).
_GREEK_READINGS = (
    ("ch", "h"),
    ("ou", "u"),
    ("mp", "b"),
    ("mb", "b"),
    ("nt", "d"),
    ("ng", "g"),
    ("tz", "j"),
)
# Inside an Arabic-script word و and ي are long vowels far more often than consonants.
_ARABIC_LONG_W = re.compile("(?<=[a-z])w")
_ARABIC_LONG_Y = re.compile("(?<=[a-z])y")
# Titles as they read transliterated from Arabic script (حجي, الحاج, شيخ, ملا), taken off the
# front of a name written in Arabic script like "Haji" or "Sheikh" in a Latin one.
_ARABIC_TITLES = frozenset({"hji", "haj", "hajj", "haji", "shikh", "shkh", "mla", "mulana"})
_HAN_COMPOUND_SURNAMES = frozenset(
    {"欧阳", "歐陽", "司马", "司馬", "诸葛", "諸葛", "上官", "东方", "東方", "皇甫", "令狐", "慕容"}
)

# Legal forms: rigour's org-type database (ISO 20275 and more, in many languages and
# scripts) recognises and canonicalises them; these generic words it leaves alone.
_ORG_FLAGS = Normalize.CASEFOLD | Normalize.NAME
# Only legal forms proper are taken off; descriptive types ("charity", "state unitary
# enterprise", "joint venture") stay name words.
_LEGAL_GENERICS = frozenset({"llc", "jsc", "lp", "llp", "gp", "plc"})
_GENERIC_ORG_WORDS = {"co": "co", "company": "co", "corp": "corp", "corporation": "corp"}
# Spelled-out legal-form words a misspelling of which ("Limted", "Compnay") is repaired.
_LEGAL_WORDS = (
    "limited",
    "company",
    "corporation",
    "incorporated",
    "liability",
    "private",
    "partnership",
    "sociedad",
    "anonima",
    "limitada",
    "responsabilidad",
    "gesellschaft",
    "aktiengesellschaft",
    "obshchestvo",
    "ogranichennoy",
    "ogranichennoi",
    "otvetstvennostyu",
    "aktsionernoe",
    "aktsionernoye",
    "zakrytoe",
    "otkrytoe",
    "publichnoe",
    "holding",
    "holdings",
    "trading",
    "establishment",
)


def _one_deletes(token: str) -> list[str]:
    return [token[:i] + token[i + 1 :] for i in range(len(token))]


_LEGAL_REPAIR: dict[str, str] = {}
for _word in _LEGAL_WORDS:
    for _key in (_word, *_one_deletes(_word)):
        _LEGAL_REPAIR.setdefault(_key, _word)


@dataclass(frozen=True, slots=True)
class NormalizedName:
    """Tokens in natural (given-names-first) order and their absence costs.

    ``legal_forms`` holds the generic legal forms taken off the name ("llc", "jsc", "co", ...);
    ``org_evidence`` says one of them is unambiguous (not a two-letter form such as "SA"
    that may also be a name), i.e. the name itself says it is an organisation.
    ``skeletons`` is set for a name written in Arabic script only: per token, the
    consonant skeletons (:func:`arabic_skeleton`) its Latin spelling may have; two when
    the word had the article ال attached, which may also be part of the name (الطاف Altaf).
    """

    tokens: tuple[str, ...]
    weights: tuple[float, ...]
    legal_forms: tuple[str, ...] = ()
    org_evidence: bool = False
    skeletons: tuple[tuple[str, ...], ...] = ()

    @property
    def text(self) -> str:
        return " ".join(self.tokens)

    @property
    def compact(self) -> str:
        return "".join(self.tokens)


_ASCII_SPACES = re.compile(r"([ \t\n\r\f\v]+)")  # other spaces stay inside a "word"
WORD_CACHE_MAX = 200_000  # transliterated words kept (names share most of their words)
_ascii_words: dict[str, tuple[str, bool]] = {}  # word -> (spelling, in a script rigour spells)


def _ascii_text(text: str) -> str:
    """``ascii_text`` word by word, each word transliterated once per process.

    A new non-Latin name costs ~100-170 µs in ICU (Cyrillic, Greek) while its words recur
    across a client base (first names, surnames): per word, a re-screen of thousands of
    clients pays for each distinct word once. The scripts rigour spells itself (Latin,
    Cyrillic, Greek, Armenian, Georgian, Hangul) transliterate letter by letter within a
    word, so word by word gives the same spelling, as do the others (``normality``). A name
    mixing the two kinds is spelled whole by ``normality`` in rigour, so it is here too.
    """
    parts = _ASCII_SPACES.split(text)
    own = other = False
    for i in range(0, len(parts), 2):
        word = parts[i]
        if word.isascii():
            continue
        done = _ascii_words.get(word)
        if done is None:
            spelled = maybe_ascii(word)
            done = (spelled, True) if spelled.isascii() else (ascii_text(word), False)
            if len(_ascii_words) >= WORD_CACHE_MAX:
                _ascii_words.clear()
            _ascii_words[word] = done
        parts[i] = done[0]
        own, other = own or done[1], other or not done[1]
    if own and other:
        return ascii_text(text)  # rare: "Шевченко محمد" is spelled as a whole, as before
    return "".join(parts)


def clear_transliteration_cache() -> None:
    """Forget transliterated words (a benchmark's first sight; memory is bounded anyway)."""
    _ascii_words.clear()


@lru_cache(maxsize=20_000)
def _syllable(char: str) -> str:
    return ascii_text(char).strip().casefold()


def _han_name(match: re.Match[str]) -> str:
    """A Han run as pinyin the way lists write it: surname, then the given name in one word."""
    run = match.group()
    sylls = [_syllable(ch) for ch in run]
    if not 2 <= len(run) <= 4:
        return " " + " ".join(sylls) + " "
    cut = 2 if run[:2] in _HAN_COMPOUND_SURNAMES and len(run) > 2 else 1
    return " " + "".join(sylls[:cut]) + " " + "".join(sylls[cut:]) + " "


def _hangul_name(match: re.Match[str]) -> str:
    """Hangul syllable by syllable: lists write Korean given names split ("Jong Un")."""
    return " " + " ".join(_syllable(ch) for ch in match.group()) + " "


def to_ascii(text: str) -> str:
    """Transliterate any script to lower-case ASCII ("Ḥarīrī" → "hariri", "Путин" → "putin").

    rigour (ICU underneath) transliterates every script it covers: Latin with diacritics,
    Cyrillic, Greek, Armenian, Georgian, Hangul, Arabic, Hebrew, Han, Kana, Indic scripts...
    Around it: Han names become ``surname givenname`` pinyin as lists write them, Hangul
    goes syllable by syllable; in Arabic script a word-initial ʿayn reads as a vowel, و/ي
    inside a word as u/i, ta marbuta ة as h, and the attached article ال splits off as "al"
    (a particle, like "al-" in Latin); Greek digraphs read as Latin-script lists spell foreign names
    (Χασάν → hasan, Πούτιν → putin, Ροντρίγκεζ → rodrigez).
    """
    if text.isascii():
        return text.casefold()
    text = _APOSTROPHES.sub("", text).replace("\u30fb", " ")
    greek = _GREEK.search(text) is not None
    cyrillic = _CYRILLIC.search(text) is not None
    arabic = _ARABIC.search(text) is not None
    if arabic:
        text = _ARABIC_ARTICLE.sub("\u0627\u0644 ", text)
        text = _ARABIC_INITIAL_AYN.sub("\u0627", text).replace("\u0639", "").replace("\u0621", "")
        # Ta marbuta ends a name as "-a"/"-ah" in Latin script (Fatima, Hamzah), never "-t".
        text = text.replace("\u0629", "\u0647")
    text = _HAN.sub(_han_name, text)
    text = _HANGUL.sub(_hangul_name, text)
    out = _ascii_text(text)
    if not out.isascii():
        out = anyascii(out)
    out = out.replace("?", "").casefold()
    if greek:
        for src, dst in _GREEK_READINGS:
            out = out.replace(src, dst)
    if cyrillic:
        out = out.replace("dzh", "j")  # Дж is how Cyrillic writes a foreign j (Donjuan)
    if arabic:
        out = _ARABIC_LONG_W.sub("u", out)
        out = _ARABIC_LONG_Y.sub("i", out)
    return out


def _raw_tokens(text: str) -> list[str]:
    """Tokens of an already transliterated (ASCII, casefolded) text."""
    text = _ATTACHED_ARTICLE.sub(" ", text)
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
        for prefix in _ABD_PREFIXES if tok.startswith("abd") else ():
            if tok.startswith(prefix) and len(tok) - len(prefix) >= 3:
                rest = tok[len(prefix) :]
                if rest.startswith(("al", "el", "ul")) and len(rest) > 4:
                    rest = rest[2:]
                tok = "abd" + rest
                break
        out.append(_CANONICAL.get(tok, tok))
        i += 1
    return out


@lru_cache(maxsize=100_000)
def _repair_legal_word(token: str) -> str:
    """ "limted" → "limited": one typo in a spelled-out legal-form word (6+ letters)."""
    if len(token) < 6 or _LEGAL_REPAIR.get(token) == token:
        return token
    for key in (token, *_one_deletes(token)):
        word = _LEGAL_REPAIR.get(key)
        if word is not None and len(word) >= 6 and OSA.distance(token, word) <= 1:
            return word
    return token


def _org_types(text: str) -> list[tuple[list[str], str]]:
    """(matched tokens, generic legal form) for each legal form rigour finds in ``text``."""
    found = extract_org_types(text, _ORG_FLAGS, generic=True)
    return [(matched.split(), form) for matched, form in found if form in _LEGAL_GENERICS]


def _strip_legal_forms(tokens: list[str]) -> tuple[list[str], list[str], bool]:
    """Take legal forms off the start and end of a name; return (tokens, forms, evidence).

    Only the edges: in the middle of a name "SA" or "AS" is more likely a name part.
    A two-letter form is only taken while two other tokens remain.
    """
    tokens = [_repair_legal_word(t) for t in tokens]
    if len(tokens) > 2 and tokens[0] == "the":
        tokens = tokens[1:]
    forms: list[str] = []
    evidence = False
    changed = True
    while changed and len(tokens) > 1:
        changed = False
        for matched, form in _org_types(" ".join(tokens)):
            size = len(matched)
            short = len("".join(matched)) <= 2
            if len(tokens) - size < (2 if short else 1):
                continue
            if tokens[-size:] == matched:
                tokens = tokens[:-size]
            elif tokens[:size] == matched and (not short or matched == ["ao"]):
                # Leading forms are spelled out or Russian (OOO, AO, OAO); a leading
                # two-letter "form" is more likely a name ("Sd" = سعد).
                tokens = tokens[size:]
            else:
                continue
            forms.append(form)
            evidence = evidence or not short
            changed = True
            break
    while len(tokens) > 1 and tokens[-1] in _GENERIC_ORG_WORDS:
        forms.append(_GENERIC_ORG_WORDS[tokens[-1]])
        evidence = evidence or len(tokens[-1]) > 2
        tokens = tokens[:-1]
    return tokens, forms, evidence


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


def _all_legal(tokens: list[str]) -> bool:
    if all(t in _LEGAL_FORMS for t in tokens):
        return True
    rest, forms, _ = _strip_legal_forms(["x", *tokens])
    return bool(forms) and rest == ["x"]


@lru_cache(maxsize=NORMALIZE_CACHE_SIZE)
def normalize_name(
    name: str, *, person_order: bool = True, is_entity: bool = False
) -> NormalizedName:
    """Normalise a name into weighted tokens.

    ``person_order``: a single comma means ``LAST, First Middle`` (OFAC style);
    entity names never reorder since their commas precede legal forms ("CIMEX, S.A.").
    Results are immutable and cached: a client re-screened against a new list version,
    or a list name in the next index build, is normalised once per process.
    """
    text = to_ascii(_HIS_EXCELLENCY.sub(" ", name))
    arabic = _ARABIC.search(name) is not None
    weighted: list[tuple[str, float]]
    forms: list[str] = []
    evidence = False
    comma_form = person_order and not is_entity and text.count(",") == 1
    if comma_form:
        surname_part, given_part = text.split(",")
        given_raw = _raw_tokens(given_part)
        # "CIMEX, S.A." is a company with a legal form after the comma, not "LAST, First".
        comma_form = bool(given_raw) and not _all_legal(given_raw)
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
        raw_tokens = _raw_tokens(text)
        if arabic:
            raw_tokens = _strip_arabic_title(raw_tokens)
        raw, forms, evidence = _strip_legal_forms(raw_tokens)
        tokens = _clean_part(raw, 2)
        if is_entity or forms or len(tokens) <= 2:
            weighted = [(t, W_PRIMARY) for t in tokens]
        else:
            weighted = [
                (t, W_PRIMARY if i in (0, len(tokens) - 1) else W_MIDDLE)
                for i, t in enumerate(tokens)
            ]
    if weighted and all(w < W_PRIMARY for _, w in weighted):
        weighted[0] = (weighted[0][0], W_PRIMARY)
    skeletons: tuple[tuple[str, ...], ...] = ()
    if arabic:
        words = _raw_tokens(text)
        articled = {words[i + 1] for i in range(len(words) - 1) if words[i] == "al"}
        skeletons = tuple(
            (arabic_skeleton(t), arabic_skeleton("al" + t))
            if t in articled
            else (arabic_skeleton(t),)
            for t, _ in weighted
        )
    return NormalizedName(
        tuple(t for t, _ in weighted),
        tuple(w for _, w in weighted),
        tuple(sorted(set(forms))),
        evidence,
        skeletons,
    )


def _strip_arabic_title(tokens: list[str]) -> list[str]:
    """Take a leading title off a name written in Arabic script ("الحاج محمد" → mhmd)."""
    while len(tokens) > 2 and tokens[0] == "al" and tokens[1] in _ARABIC_TITLES:
        tokens = tokens[2:]
    while len(tokens) > 1 and tokens[0] in _ARABIC_TITLES:
        tokens = tokens[1:]
    return tokens


# Latin spellings of one Arabic letter, read as one (ش: sh/ch/sch, ج: j/dj/g, ق: q/k, ...).
_SKELETON_RULES: tuple[tuple[str, str], ...] = (
    ("tsh", "sh"),
    ("sch", "sh"),
    ("ch", "sh"),
    ("dj", "j"),
    ("ph", "f"),
    ("x", "ks"),
    ("q", "k"),
    ("c", "k"),
    ("g", "j"),
    ("p", "b"),
    ("v", "f"),
)
_SKELETON_DROP = frozenset("aeiouyw")


@lru_cache(maxsize=200_000)
def arabic_skeleton(token: str) -> str:
    """The consonants of a token as Arabic script writes them, for unvocalised names.

    Arabic writes consonants and long vowels, not short vowels, so a name written in it
    transliterates to "mhmd", "jbrn", "abdshhi" where a list spells Muhammad, Jabarin,
    Abedshahi. Both sides reduce to the same skeleton: an initial vowel reads "a" (alef
    or ʿayn), other vowels and the glides w/y inside a word are dropped (long vowels
    are spelled with them), doubled letters (shadda) count once, a final h (ta marbuta,
    "Abdullah") is dropped, and the Latin spellings of one Arabic letter merge (q/k/c,
    j/g/dj, sh/ch, f/v/ph, b/p). Letters stay letters: "zh" in "zhr" (زحر) is z + h, as in
    "Zaher". Mohammed and mhmd give ``mhmd``, Omid and amd ``amd``, Jabarin and jbrn ``jbrn``.
    """
    if not token or token.isdigit():
        return token
    key = token
    for src, dst in _SKELETON_RULES:
        key = key.replace(src, dst)
    out = ["a" if key[0] in "aeiou" else key[0]]
    for ch in key[1:]:
        if ch not in _SKELETON_DROP and ch != out[-1]:
            out.append(ch)
    if len(out) > 2 and out[-1] == "h":
        out.pop()
    return "".join(out)


_PHONETIC_RULES: tuple[tuple[str, str], ...] = (
    ("x", "ks"),
    ("tsch", "c"),
    ("sch", "s"),
    ("tch", "c"),
    ("ch", "c"),
    ("tsh", "c"),
    ("ts", "c"),  # Greek and Cyrillic renderings write ch as ts (Τσάβες, Chavez)
    ("sh", "s"),
    ("zh", "j"),
    ("kh", "h"),
    ("gh", "g"),
    ("ph", "f"),
    ("th", "t"),
    ("dh", "d"),
    ("dj", "j"),
    ("ck", "k"),
    ("q", "k"),
    ("c", "k"),
    ("z", "s"),
    ("w", "v"),
    ("v", "f"),
)
_VOWELS = frozenset("aeiouy")
_DOUBLED = re.compile(r"(.)\1+")


def phonetic_key(token: str) -> str:
    """A coarse consonant skeleton so transliteration variants collide.

    Mohammed/Muhammad/Mohamad → ``mhmd``; Hussein/Husayn → ``hsn``; Osama/Usama
    → ``asm``; Darvish/Darwish/drfsh → ``drfs``. Deliberately lossy: it selects
    candidates and lifts a fair spelling match, it never decides alone.
    """
    if not token:
        return ""
    if token.isdigit():
        return token
    key = _DOUBLED.sub(r"\1", token)
    # Inside a word w is mostly a vowel glide (Ridwan / رضوان → rdun, Hawari / Huari).
    key = key[:1] + key[1:].replace("w", "")
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
