"""Labelled names for the screening benchmark, generated from the bundled list (seeded).

Usage (from the repo root)::

    python bench/screening_data.py [--sdn PATH --alt PATH] [--out PATH]

Deterministic: fixed seeds, list entries in list order, so the same list file gives the
same ``bench/data/screening_labelled.jsonl``. Rows:

* the base set (seed 20261122): variants of listed persons (one typo, diacritics,
  reordering, dropped middle names, Cyrillic, Arabic spelling variants, typo +
  reorder) and entities (typo, legal form, case), and clean person names from 32
  name pools, each with a DOB and country;
* the extension (seed 20261201): legal-form swaps (Ltd/Limited, LLC/OOO/Limited
  Liability Company, Co/Company, Inc/Incorporated, S.A./Sociedad Anonima, JSC/AO/Joint
  Stock Company, ...), some misspelled, alone and with a typo in the name; two typos in
  long person and entity names; renderings in other scripts (Cyrillic persons and
  Russian companies with Cyrillic legal forms, Greek, unvocalised Arabic script for
  names from Arabic-script countries, Han characters for Chinese names); more clean
  person names and clean company names (word pools x legal forms) for the
  false-positive rate.

A row: ``id``, ``name``, ``label`` (``match``/``clear``), ``kind`` (the variant class),
``expected_entry`` (for matches), and optional ``dob`` / ``country`` / ``type``
(``person``/``entity``, what an onboarding form knows about the client).
"""

# Cyrillic/Greek/Arabic/Turkish letters below are test data, not look-alike typos.
# ruff: noqa: RUF001, RUF003

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import random
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from integrations.sanctions import ListEntry, load_ofac_sdn, normalize_name  # noqa: E402

logger = logging.getLogger("screening_data")

LIST_DIR = ROOT / "integrations" / "sanctions" / "lists" / "ofac_sdn_2021_04"
LABELLED = ROOT / "bench" / "data" / "screening_labelled.jsonl"
SEED = 20261122
N_POSITIVE_PERSONS = 200
N_POSITIVE_ENTITIES = 40
N_NEGATIVE = 360


# ----------------------------------------------------------------------------- generation

_DIACRITICS = {
    "a": "áàâä",
    "e": "éèêë",
    "i": "íï",
    "o": "óöô",
    "u": "úüû",
    "n": "ñ",
    "c": "ç",
    "s": "ş",
    "g": "ğ",
    "z": "ž",
}
_CYRILLIC = [
    ("shch", "щ"),
    ("kh", "х"),
    ("zh", "ж"),
    ("ts", "ц"),
    ("ch", "ч"),
    ("sh", "ш"),
    ("yu", "ю"),
    ("ya", "я"),
    ("yo", "ё"),
    ("a", "а"),
    ("b", "б"),
    ("v", "в"),
    ("g", "г"),
    ("d", "д"),
    ("e", "е"),
    ("z", "з"),
    ("i", "и"),
    ("y", "ы"),
    ("k", "к"),
    ("l", "л"),
    ("m", "м"),
    ("n", "н"),
    ("o", "о"),
    ("p", "п"),
    ("r", "р"),
    ("s", "с"),
    ("t", "т"),
    ("u", "у"),
    ("f", "ф"),
    ("h", "х"),
    ("c", "к"),
    ("j", "дж"),
    ("q", "к"),
    ("w", "в"),
    ("x", "кс"),
]
_ARABIC_VARIANTS = [
    ("muhammad", "mohamed"),
    ("mohammad", "muhammed"),
    ("mohammed", "muhammad"),
    ("ahmad", "ahmed"),
    ("ahmed", "ahmad"),
    ("hussein", "husayn"),
    ("husayn", "hussain"),
    ("hasan", "hassan"),
    ("yusuf", "youssef"),
    ("umar", "omar"),
    ("abd al-", "abdul "),
    ("abdul ", "abd al-"),
    ("ou", "u"),
    ("ee", "i"),
    ("oo", "u"),
    ("al-", "al "),
    ("al ", "el-"),
]

_CULTURES: dict[str, tuple[list[str], list[str], list[str]]] = {
    "english": (
        [
            "James",
            "Emily",
            "Oliver",
            "Charlotte",
            "Harry",
            "Sophie",
            "George",
            "Lucy",
            "Daniel",
            "Hannah",
            "Matthew",
            "Rebecca",
        ],
        [
            "Thompson",
            "Whitfield",
            "Carter",
            "Hughes",
            "Pemberton",
            "Fletcher",
            "Bennett",
            "Harrington",
            "Ashworth",
            "Caldwell",
        ],
        ["GB", "US", "AU", "CA", "NZ", "IE"],
    ),
    "spanish": (
        [
            "Lucía",
            "Javier",
            "Carmen",
            "Alejandro",
            "Sofía",
            "Pablo",
            "Valentina",
            "Andrés",
            "Camila",
            "Mateo",
        ],
        [
            "Etxeberria",
            "Villanueva",
            "Quintana",
            "Sandoval",
            "Iglesias",
            "Bustamante",
            "Arriaga",
            "Zubizarreta",
            "Montenegro",
            "Olmedo",
        ],
        ["ES", "AR", "CL", "PE", "UY"],
    ),
    "portuguese": (
        ["João", "Mariana", "Tiago", "Beatriz", "Rafael", "Inês", "Gustavo", "Larissa"],
        [
            "Figueiredo",
            "Albuquerque",
            "Magalhães",
            "Cavalcanti",
            "Sampaio",
            "Teixeira",
            "Baptista",
            "Queiroz",
        ],
        ["PT", "BR"],
    ),
    "french": (
        ["Camille", "Étienne", "Chloé", "Théo", "Manon", "Hugo", "Léa", "Baptiste"],
        [
            "Lefebvre",
            "Beaumont",
            "Garnier",
            "Rousseau",
            "Delacroix",
            "Marchand",
            "Fontaine",
            "Lemaire",
        ],
        ["FR", "BE", "CH"],
    ),
    "german": (
        ["Lukas", "Anna", "Felix", "Lena", "Maximilian", "Johanna", "Tobias", "Katharina"],
        ["Schneider", "Hoffmann", "Wagner", "Becker", "Krüger", "Vogel", "Zimmermann", "Hartmann"],
        ["DE", "AT", "CH"],
    ),
    "italian": (
        ["Giulia", "Lorenzo", "Francesca", "Matteo", "Chiara", "Alessandro", "Martina"],
        ["Bianchi", "Colombo", "Ricci", "Marino", "Greco", "Bruno", "Galli", "Conti"],
        ["IT"],
    ),
    "dutch": (
        ["Daan", "Sanne", "Bram", "Fleur", "Joris", "Lotte"],
        ["de Vries", "van Dijk", "Bakker", "Visser", "Smit", "Mulder"],
        ["NL", "BE"],
    ),
    "polish": (
        ["Katarzyna", "Piotr", "Agnieszka", "Tomasz", "Magdalena", "Krzysztof"],
        ["Wiśniewski", "Wójcik", "Kamińska", "Lewandowski", "Zieliński", "Szymańska"],
        ["PL"],
    ),
    "russian": (
        ["Svetlana", "Dmitry", "Ekaterina", "Nikolai", "Tatiana", "Konstantin", "Irina", "Pavel"],
        ["Sokolova", "Lebedev", "Kozlova", "Novikov", "Morozova", "Volkov", "Pavlova", "Semenov"],
        ["RU", "KZ", "BY"],
    ),
    "ukrainian": (
        ["Oksana", "Taras", "Iryna", "Bohdan", "Nataliia", "Yaroslav"],
        ["Shevchenko", "Bondarenko", "Tkachenko", "Kravchenko", "Oliinyk", "Melnyk"],
        ["UA"],
    ),
    "turkish": (
        ["Elif", "Mehmet", "Zeynep", "Emre", "Ayşe", "Burak", "Selin", "Oğuz"],
        ["Yılmaz", "Kaya", "Demir", "Şahin", "Çelik", "Aydın", "Öztürk", "Arslan"],
        ["TR", "DE"],
    ),
    "arabic": (
        ["Layla", "Omar", "Nour", "Karim", "Yasmin", "Tariq", "Rania", "Faisal"],
        ["Haddad", "Mansour", "Khoury", "Nasser", "Saleh", "Farouk", "Aziz", "Qasim"],
        ["JO", "LB", "AE", "EG", "MA", "SA"],
    ),
    "persian": (
        ["Shirin", "Dariush", "Parisa", "Kourosh", "Niloufar", "Babak"],
        ["Tehrani", "Farahani", "Shirazi", "Moradi", "Karimi", "Jafari"],
        ["IR", "SE", "DE"],
    ),
    "indian": (
        ["Priya", "Arjun", "Ananya", "Rohan", "Kavya", "Vikram", "Sneha", "Aditya"],
        ["Sharma", "Iyer", "Patel", "Reddy", "Banerjee", "Nair", "Kulkarni", "Chopra"],
        ["IN", "GB", "SG"],
    ),
    "pakistani": (
        ["Ayesha", "Bilal", "Sana", "Hamza", "Mahnoor", "Usman"],
        ["Qureshi", "Chaudhry", "Siddiqui", "Malik", "Butt", "Raja"],
        ["PK", "GB"],
    ),
    "bangladeshi": (
        ["Tahmina", "Rafiq", "Nusrat", "Shakib"],
        ["Chowdhury", "Rahman", "Hossain", "Islam"],
        ["BD"],
    ),
    "chinese": (
        ["Wei", "Xiaoling", "Jian", "Mei", "Hao", "Yun", "Zhiwei", "Lan"],
        ["Wang", "Li", "Chen", "Liu", "Huang", "Zhao", "Wu", "Zhou"],
        ["CN", "TW", "SG"],
    ),
    "japanese": (
        ["Haruto", "Yui", "Sota", "Aoi", "Ren", "Hina", "Kaito", "Sakura"],
        ["Sato", "Suzuki", "Takahashi", "Watanabe", "Ito", "Yamamoto", "Nakamura", "Kobayashi"],
        ["JP"],
    ),
    "korean": (
        ["Min-jun", "Seo-yeon", "Ji-ho", "Ha-eun", "Do-yun", "Soo-ah"],
        ["Kim", "Lee", "Park", "Choi", "Jung", "Kang"],
        ["KR"],
    ),
    "vietnamese": (
        ["Linh", "Minh", "Thao", "Duc", "Huong", "Quang"],
        ["Nguyen", "Tran", "Le", "Pham", "Hoang", "Vu"],
        ["VN"],
    ),
    "thai": (
        ["Somchai", "Kanya", "Niran", "Ploy"],
        ["Srisuk", "Wongsawat", "Chaiyaporn", "Rattanakorn"],
        ["TH"],
    ),
    "indonesian": (
        ["Putri", "Budi", "Dewi", "Agus", "Siti", "Rizky"],
        ["Santoso", "Wijaya", "Kusuma", "Hidayat", "Pratama", "Saputra"],
        ["ID"],
    ),
    "filipino": (
        ["Maricel", "Jomar", "Kristine", "Rodel"],
        ["Dela Cruz", "Bautista", "Villanueva", "Mendoza"],
        ["PH"],
    ),
    "nigerian": (
        ["Chiamaka", "Emeka", "Ngozi", "Tunde", "Funmilayo", "Obinna", "Aisha", "Babatunde"],
        ["Adeyemi", "Okafor", "Nwosu", "Balogun", "Eze", "Ogunleye", "Abiodun"],
        ["NG", "GB"],
    ),
    "kenyan": (
        ["Wanjiru", "Otieno", "Akinyi", "Kiprono"],
        ["Kamau", "Odhiambo", "Mwangi", "Chebet"],
        ["KE"],
    ),
    "ethiopian": (
        ["Selamawit", "Dawit", "Meron", "Yonas"],
        ["Tesfaye", "Bekele", "Haile", "Girma"],
        ["ET"],
    ),
    "greek": (
        ["Eleni", "Giorgos", "Katerina", "Nikos"],
        ["Papadopoulos", "Georgiou", "Konstantinidis", "Dimitriou"],
        ["GR", "CY"],
    ),
    "nordic": (
        ["Astrid", "Lars", "Ingrid", "Erik", "Sigrid", "Magnus"],
        ["Johansson", "Lindqvist", "Andersen", "Haugen", "Virtanen", "Nyström"],
        ["SE", "NO", "DK", "FI"],
    ),
    # Deliberately hard: the most common given names/surnames of the cultures most
    # represented on the SDN list, so shared tokens with listed names are frequent.
    "arabic_common": (
        [
            "Mohammed",
            "Ahmed",
            "Ali",
            "Hassan",
            "Ibrahim",
            "Youssef",
            "Khalid",
            "Fatima",
            "Mariam",
            "Abdullah",
        ],
        ["Hamdan", "Saleh", "Mahmoud", "Ibrahim", "Hassan", "Abdallah", "Darwish", "Othman"],
        ["EG", "JO", "AE", "GB", "FR", "DE", "SA"],
    ),
    "hispanic_common": (
        ["José", "Juan", "Luis", "Carlos", "María", "Ana", "Jorge", "Miguel"],
        [
            "García",
            "Martínez",
            "López",
            "Hernández",
            "González",
            "Rodríguez",
            "Pérez",
            "Sánchez",
            "Ramírez",
        ],
        ["MX", "CO", "ES", "US", "AR", "VE"],
    ),
    "russian_common": (
        ["Sergei", "Alexander", "Andrei", "Dmitry", "Olga", "Elena"],
        ["Ivanov", "Petrov", "Smirnov", "Kuznetsov", "Popov", "Sokolov"],
        ["RU", "DE", "IL", "LV"],
    ),
    "hungarian": (
        ["Zsófia", "Bence", "Réka", "Levente"],
        ["Nagy", "Horváth", "Szabó", "Tóth"],
        ["HU"],
    ),
}


def _typo(token: str, rng: random.Random) -> str:
    if len(token) < 5:
        return token
    i = rng.randrange(1, len(token) - 1)
    kind = rng.choice(["sub", "del", "swap", "ins"])
    letters = "abcdefghijklmnoprstuvy"
    if kind == "sub":
        return token[:i] + rng.choice(letters) + token[i + 1 :]
    if kind == "del":
        return token[:i] + token[i + 1 :]
    if kind == "swap":
        return token[:i] + token[i + 1] + token[i] + token[i + 2 :]
    return token[:i] + rng.choice(letters) + token[i:]


def _diacritics(text: str, rng: random.Random) -> str:
    out = []
    for ch in text:
        low = ch.lower()
        if low in _DIACRITICS and rng.random() < 0.45:
            rep = rng.choice(_DIACRITICS[low])
            out.append(rep.upper() if ch.isupper() else rep)
        else:
            out.append(ch)
    return "".join(out)


def _cyrillic(text: str) -> str:
    low = text.lower()
    out: list[str] = []
    i = 0
    while i < len(low):
        for src, dst in _CYRILLIC:
            if low.startswith(src, i):
                out.append(dst)
                i += len(src)
                break
        else:
            out.append(low[i])
            i += 1
    words = "".join(out).split(" ")
    return " ".join(w[:1].upper() + w[1:] for w in words)


def _arabic_variant(text: str, rng: random.Random) -> str | None:
    low = text.lower()
    options = [(a, b) for a, b in _ARABIC_VARIANTS if a in low]
    if not options:
        return None
    a, b = rng.choice(options)
    return low.replace(a, b, 1).title()


def _split_person(name: str) -> tuple[list[str], list[str]]:
    if name.count(",") == 1:
        surname, given = name.split(",")
        return given.split(), surname.split()
    parts = name.split()
    return parts[:-1], parts[-1:]


def _dob_for(entry: ListEntry, rng: random.Random) -> str | None:
    if not entry.dates_of_birth:
        return None
    dob = entry.dates_of_birth[0]
    if dob.exact:
        return dob.exact.isoformat()
    year = rng.randint(dob.year_from, dob.year_to)
    return dt.date(year, rng.randint(1, 12), rng.randint(1, 28)).isoformat()


def _person_variant(entry: ListEntry, rng: random.Random) -> tuple[str, str] | None:
    source = rng.choice([entry.name, *entry.aliases]) if entry.aliases else entry.name
    given, surname = _split_person(source)
    if not given or not surname:
        return None
    kinds = [
        "typo",
        "diacritics",
        "reorder",
        "drop_middle",
        "cyrillic",
        "arabic_spelling",
        "typo+reorder",
        "natural",
    ]
    kind = rng.choice(kinds)
    natural = " ".join([*given, *surname])
    if kind == "typo":
        tokens = natural.split()
        idx = max(range(len(tokens)), key=lambda i: (len(tokens[i]), rng.random()))
        tokens[idx] = _typo(tokens[idx], rng)
        text = " ".join(tokens)
    elif kind == "diacritics":
        text = _diacritics(natural.title(), rng)
    elif kind == "reorder":
        text = " ".join([*surname, *given]).title()
    elif kind == "drop_middle":
        if len(given) < 2:
            return None
        text = " ".join([given[0], *surname]).title()
    elif kind == "cyrillic":
        text = _cyrillic(re.sub(r"[^A-Za-z\s-]", "", natural))
    elif kind == "arabic_spelling":
        variant = _arabic_variant(natural, rng)
        if variant is None:
            return None
        text = variant
    elif kind == "typo+reorder":
        tokens = [*surname, *given]
        idx = rng.randrange(len(tokens))
        tokens[idx] = _typo(tokens[idx], rng)
        text = " ".join(tokens).title()
    else:
        text = natural.title()
    if normalize_name(text).tokens == normalize_name(source).tokens and kind not in (
        "natural",
        "reorder",
        "diacritics",
        "cyrillic",
    ):
        return None
    return text, kind


_LEGAL_SWAPS = [
    (", S.A.", " SA"),
    (" LLC", " L.L.C."),
    (" LTD", " Limited"),
    (" CO., LTD.", " Company Limited"),
    (" GMBH", " GmbH"),
    (", INC.", " Inc"),
]


def _entity_variant(entry: ListEntry, rng: random.Random) -> tuple[str, str] | None:
    name = entry.name
    if len(normalize_name(name, is_entity=True).tokens) < 2:
        return None
    kind = rng.choice(["typo", "legal_form", "case"])
    if kind == "typo":
        tokens = name.split()
        idx = max(range(len(tokens)), key=lambda i: (len(tokens[i]), rng.random()))
        tokens[idx] = _typo(tokens[idx], rng)
        return " ".join(tokens).title(), "entity_typo"
    if kind == "legal_form":
        for src, dst in _LEGAL_SWAPS:
            if src in name:
                return name.replace(src, dst).title(), "entity_legal_form"
        return None
    return name.title(), "entity_case"


def _base_rows(entries: list[ListEntry]) -> list[dict[str, object]]:
    """The original labelled set (seed 20261122), unchanged."""
    rng = random.Random(SEED)
    persons = [
        e for e in entries if e.entity_type == "person" and len(normalize_name(e.name).tokens) >= 2
    ]
    companies = [e for e in entries if e.entity_type == "entity"]
    rows: list[dict[str, object]] = []
    for entry in rng.sample(persons, len(persons)):
        if sum(1 for r in rows if r["label"] == "match") >= N_POSITIVE_PERSONS:
            break
        made = _person_variant(entry, rng)
        if made is None:
            continue
        text, kind = made
        row: dict[str, object] = {
            "name": text,
            "label": "match",
            "kind": kind,
            "expected_entry": entry.entry_id,
        }
        if rng.random() < 0.5 and (dob := _dob_for(entry, rng)):
            row["dob"] = dob
        if rng.random() < 0.4 and entry.countries:
            row["country"] = entry.countries[0]
        rows.append(row)
    n_entities = 0
    for entry in rng.sample(companies, len(companies)):
        if n_entities >= N_POSITIVE_ENTITIES:
            break
        made = _entity_variant(entry, rng)
        if made is None:
            continue
        rows.append(
            {"name": made[0], "label": "match", "kind": made[1], "expected_entry": entry.entry_id}
        )
        n_entities += 1
    listed = set()
    for entry in entries:
        for name in (entry.name, *entry.aliases):
            listed.add(tuple(sorted(normalize_name(name).tokens)))
    cultures = sorted(_CULTURES)
    seen: set[str] = set()
    excluded = 0
    while sum(1 for r in rows if r["label"] == "clear") < N_NEGATIVE:
        culture = (
            cultures[len(seen) % len(cultures)] if rng.random() < 0.7 else rng.choice(cultures)
        )
        firsts, lasts, countries = _CULTURES[culture]
        parts = [rng.choice(firsts)]
        if rng.random() < 0.25:
            parts.append(rng.choice([f for f in firsts if f != parts[0]]))
        parts.append(rng.choice(lasts))
        if culture in ("spanish", "portuguese") and rng.random() < 0.5:
            parts.append(rng.choice([s for s in lasts if s != parts[-1]]))
        text = " ".join(parts)
        if text in seen:
            continue
        seen.add(text)
        if tuple(sorted(normalize_name(text).tokens)) in listed:
            excluded += 1  # an exact listed name is not a "clean" name
            continue
        birth = dt.date(rng.randint(1950, 2004), rng.randint(1, 12), rng.randint(1, 28))
        rows.append(
            {
                "name": text,
                "label": "clear",
                "kind": f"clean_{culture}",
                "dob": birth.isoformat(),
                "country": rng.choice(countries),
            }
        )
    return rows


# ----------------------------------------------------------------------------- extension

SEED_EXTRA = 20261201
N_EXTRA = {
    "two_typos": 120,
    "entity_two_typos": 50,
    "entity_legal_form_swap": 60,
    "entity_legal_form_typo": 100,
    "cyrillic": 40,
    "cyrillic_entity": 30,
    "greek": 50,
    "arabic_script": 60,
    "han": 40,
}
N_EXTRA_CLEAN_PERSONS = 640
N_CLEAN_COMPANIES = 400
N_CLEAN_SCRIPT = 60  # per script: Arabic, Cyrillic, Greek, Han

# Equivalent spellings of a legal form: the listed one is swapped for another of its group
# ("changed"), or for itself misspelled. Patterns match a whole legal form at the name's end
# (or start, for the Russian forms that lead).
_FORM_GROUPS: list[tuple[str, list[str]]] = [
    (r",? CO\.?,? LTD\.?$", [" Company Limited", " Co Limited", " Company Ltd", " Co., Ltd"]),
    (r",? COMPANY LIMITED$", [" Co., Ltd.", " Co Ltd", " Company Ltd"]),
    (r",? LIMITED$", [" Ltd", " Ltd.", " LLC"]),
    (r",? LTD\.?$", [" Limited", " LLC", " Ltd"]),
    (r",? L\.?L\.?C\.?$", [" Limited Liability Company", " Ltd", " OOO", " L.L.C."]),
    (r",? INC\.?$", [" Incorporated", " Inc"]),
    (r",? INCORPORATED$", [" Inc", " Inc."]),
    (r",? CORP\.?$", [" Corporation", " Corp"]),
    (r",? CORPORATION$", [" Corp", " Corp."]),
    (r",? COMPANY$", [" Co", " Co."]),
    (r",? CO\.?$", [" Company"]),
    (r",? S\.A\. DE C\.V\.$", [" SA de CV", " Sociedad Anonima de Capital Variable"]),
    (r",? S\.?A\.?$", [" Sociedad Anonima", " SA", " S.A."]),
    (r",? LTDA\.?$", [" Limitada", " Ltda"]),
    (r",? S\.?A\.?S\.?$", [" Sociedad por Acciones Simplificada", " SAS"]),
    (r",? GMBH$", [" Gesellschaft mit beschraenkter Haftung", " GmbH"]),
    (r",? JSC$", [" Joint Stock Company", " AO", " OAO"]),
    (r",? OJSC$", [" Open Joint Stock Company", " OAO", " JSC"]),
    (r",? PJSC$", [" Public Joint Stock Company", " PAO", " JSC"]),
    (r",? CJSC$", [" Closed Joint Stock Company", " ZAO", " JSC"]),
    (r",? OAO$", [" OJSC", " Open Joint Stock Company"]),
    (r",? ZAO$", [" CJSC", " Closed Joint Stock Company"]),
    (r",? OOO$", [" LLC", " Limited Liability Company"]),
    (
        r"^OOO ",
        ["LLC ", "Limited Liability Company ", "Obshchestvo s Ogranichennoy Otvetstvennostyu "],
    ),
    (r"^LIMITED LIABILITY COMPANY ", ["OOO ", "LLC "]),
    (r"^OBSHCHESTVO S OGRANICHENNOI OTVETSTVENNOSTYU ", ["OOO ", "LLC "]),
    (r"^(?:OPEN )?JOINT STOCK COMPANY ", ["JSC ", "AO ", "OAO "]),
    (r"^(?:OAO|AO|JSC|OJSC) ", ["Joint Stock Company ", "AO ", "JSC "]),
    (r"^(?:OTKRYTOE |ZAKRYTOE |PUBLICHNOE )?AKTSIONERNOE OBSHCHESTVO ", ["JSC ", "AO "]),
]
_SPELLED_FORM_WORDS = (
    "Limited",
    "Company",
    "Corporation",
    "Incorporated",
    "Liability",
    "Anonima",
    "Limitada",
    "Obshchestvo",
)
# Russian legal forms in Cyrillic for Russian companies rendered in Cyrillic.
_CYRILLIC_FORMS: list[tuple[str, str]] = [
    (
        r"\b(?:LIMITED LIABILITY COMPANY|OBSHCHESTVO S OGRANICHENNOI OTVETSTVENNOSTYU|OOO|LLC)\b",
        "ООО",
    ),
    (r"\b(?:PUBLIC JOINT STOCK COMPANY|PJSC|PAO)\b", "ПАО"),
    (r"\b(?:CLOSED JOINT STOCK COMPANY|CJSC|ZAO)\b", "ЗАО"),
    (r"\b(?:OPEN JOINT STOCK COMPANY|OJSC|OAO)\b", "ОАО"),
    (r"\b(?:JOINT STOCK COMPANY|JSC|AO)\b", "АО"),
]
_RU_FORM = re.compile(
    r"\b(OOO|OAO|ZAO|PAO|AO|OBSHCHESTVO|LIMITED LIABILITY COMPANY|JOINT STOCK COMPANY|LLC|JSC|"
    r"PJSC|CJSC|OJSC)\b"
)

# Latin → Greek as Greek media write foreign names (b → μπ, d → ντ, h → χ, u → ου).
_GREEK: list[tuple[str, str]] = [
    ("th", "θ"),
    ("kh", "χ"),
    ("ch", "τσ"),
    ("sh", "σ"),
    ("zh", "ζ"),
    ("ph", "φ"),
    ("ps", "ψ"),
    ("ks", "ξ"),
    ("ts", "τσ"),
    ("ou", "ου"),
    ("oo", "ου"),
    ("ee", "ι"),
    ("a", "α"),
    ("b", "μπ"),
    ("c", "κ"),
    ("d", "ντ"),
    ("e", "ε"),
    ("f", "φ"),
    ("g", "γκ"),
    ("h", "χ"),
    ("i", "ι"),
    ("j", "τζ"),
    ("k", "κ"),
    ("l", "λ"),
    ("m", "μ"),
    ("n", "ν"),
    ("o", "ο"),
    ("p", "π"),
    ("q", "κ"),
    ("r", "ρ"),
    ("s", "σ"),
    ("t", "τ"),
    ("u", "ου"),
    ("v", "β"),
    ("w", "ου"),
    ("x", "ξ"),
    ("y", "ι"),
    ("z", "ζ"),
]
# Latin → Arabic script, unvocalised as Arabic is written (short vowels dropped).
_ARABIC_LETTERS: list[tuple[str, str]] = [
    ("sh", "ش"),
    ("kh", "خ"),
    ("th", "ث"),
    ("dh", "ذ"),
    ("gh", "غ"),
    ("ch", "تش"),
    ("ph", "ف"),
    ("ou", "و"),
    ("oo", "و"),
    ("ee", "ي"),
    ("ei", "ي"),
    ("ai", "ي"),
    ("ay", "ي"),
    ("aw", "و"),
    ("b", "ب"),
    ("t", "ت"),
    ("j", "ج"),
    ("h", "ح"),
    ("d", "د"),
    ("r", "ر"),
    ("z", "ز"),
    ("s", "س"),
    ("f", "ف"),
    ("q", "ق"),
    ("k", "ك"),
    ("l", "ل"),
    ("m", "م"),
    ("n", "ن"),
    ("w", "و"),
    ("y", "ي"),
    ("p", "ب"),
    ("v", "ف"),
    ("g", "ج"),
    ("x", "كس"),
    ("c", "ك"),
]
_ARABIC_COUNTRIES = frozenset(
    [
        "SY",
        "IQ",
        "LB",
        "SA",
        "LY",
        "TN",
        "EG",
        "DZ",
        "YE",
        "JO",
        "KW",
        "QA",
        "AE",
        "BH",
        "OM",
        "PS",
        "SD",
        "SO",
        "MA",
        "MR",
        "IR",
        "AF",
        "PK",
    ]
)
_CHINESE_COUNTRIES = frozenset({"CN", "HK", "TW", "MO"})
_HAN_SURNAMES = [
    "Wang",
    "Li",
    "Zhang",
    "Liu",
    "Chen",
    "Yang",
    "Huang",
    "Zhao",
    "Wu",
    "Zhou",
    "Xu",
    "Sun",
    "Ma",
    "Zhu",
    "Hu",
    "Guo",
    "He",
    "Gao",
    "Lin",
    "Luo",
]
_HAN_GIVEN = [
    "wei",
    "fang",
    "ming",
    "hua",
    "jun",
    "xiu",
    "ying",
    "hong",
    "jie",
    "lei",
    "tao",
    "yan",
    "hui",
    "qiang",
    "ping",
    "yu",
    "xin",
    "jing",
    "lan",
    "mei",
    "hao",
    "yun",
    "bo",
    "chao",
]

_COMPANY_WORDS = [
    "Northwind",
    "Bluewater",
    "Silverline",
    "Evergreen",
    "Brightpath",
    "Ironbridge",
    "Clearview",
    "Redwood",
    "Summit",
    "Harbor",
    "Maple",
    "Crescent",
    "Pioneer",
    "Horizon",
    "Keystone",
    "Lakeside",
    "Oakridge",
    "Riverstone",
    "Sunflower",
    "Westbrook",
    "Alder",
    "Beacon",
    "Cobalt",
    "Falcon",
    "Granite",
    "Juniper",
    "Meridian",
    "Nimbus",
    "Orchid",
    "Sapphire",
    "Tidewater",
    "Vantage",
    "Willow",
    "Zenith",
    "Amber",
    "Birch",
    "Cedar",
    "Everest",
    "Golden Gate",
    "Blue Ocean",
    "Green Valley",
    "Red Star",
    "Silver Moon",
    "New Horizon",
    "First Choice",
    "Global",
    "United",
    "Eastern",
    "Atlas",
    "Orion",
    "Polaris",
    "Aurora",
    "Phoenix",
    "Sterling",
    "Kestrel",
    "Hawthorn",
    "Larkspur",
    "Marigold",
    "Saffron",
    "Tamarind",
    "Schneider",
    "Kowalski",
    "Tanaka",
    "Okafor",
    "Haddad",
    "Novak",
    "Petrov",
    "Yilmaz",
    "Nguyen",
    "Fernandes",
    "Lindqvist",
    "Moreau",
    "Rossi",
    "Banerjee",
    "Kim",
    "Chen",
    "Mendoza",
    "Adeyemi",
    "Kuznetsov",
    "Hoffmann",
]
_INDUSTRY_WORDS = [
    "Logistics",
    "Consulting",
    "Software",
    "Foods",
    "Textiles",
    "Engineering",
    "Pharma",
    "Shipping",
    "Energy",
    "Trading",
    "Capital",
    "Partners",
    "Solutions",
    "Systems",
    "Industries",
    "Construction",
    "Agro",
    "Media",
    "Motors",
    "Electronics",
    "Metals",
    "Chemicals",
    "Medical",
    "Hospitality",
    "Properties",
    "Investments",
    "Finance",
    "Technologies",
    "Imports",
    "Exports",
    "Retail",
    "Design",
    "Analytics",
    "Security",
    "Aviation",
    "Marine",
    "Mining",
    "Petroleum",
    "Telecom",
    "Furniture",
    "Plastics",
    "Packaging",
    "Seafood",
    "Dairy",
    "Printing",
    "Travel",
    "Education",
    "Health",
    "Robotics",
    "Ventures",
]
_COMPANY_FORMS = [
    ("Ltd", ["GB", "IE", "HK", "CY", "MT", "NG", "KE"]),
    ("Limited", ["GB", "IN", "HK", "NZ"]),
    ("LLC", ["US", "AE", "UA", "GE", "AM"]),
    ("Inc.", ["US", "CA", "PH"]),
    ("Corp.", ["US", "CA", "TW"]),
    ("GmbH", ["DE", "AT", "CH"]),
    ("AG", ["DE", "CH"]),
    ("S.A.", ["ES", "FR", "PA", "LU", "AR"]),
    ("SRL", ["IT", "RO", "AR"]),
    ("S.A. de C.V.", ["MX"]),
    ("Ltda.", ["BR", "CO", "CL"]),
    ("B.V.", ["NL"]),
    ("N.V.", ["NL", "BE"]),
    ("SARL", ["FR", "LB", "MA"]),
    ("Co., Ltd.", ["CN", "JP", "KR", "TH", "VN"]),
    ("Pte. Ltd.", ["SG"]),
    ("Pty Ltd", ["AU", "ZA"]),
    ("Sdn Bhd", ["MY"]),
    ("OOO", ["RU", "BY"]),
    ("JSC", ["RU", "KZ", "AZ"]),
    ("PLC", ["GB", "NG"]),
    ("LLP", ["GB", "IN", "KZ"]),
    ("A/S", ["DK", "NO"]),
    ("AB", ["SE"]),
    ("Oy", ["FI"]),
    ("sp. z o.o.", ["PL"]),
    ("s.r.o.", ["CZ", "SK"]),
    ("Kft.", ["HU"]),
    ("FZE", ["AE"]),
    ("Company", ["SA", "KW", "US"]),
]


def _pinyin_table() -> dict[str, str]:
    """Pinyin syllable → a Han character ICU reads that way (first in code-point order)."""
    from rigour.text.translit import ascii_text

    table: dict[str, str] = {}
    for code in range(0x4E00, 0x9FA6):
        char = chr(code)
        reading = ascii_text(char).strip().casefold()
        if reading.isalpha() and reading not in table:
            table[reading] = char
    return table


def _segment(word: str, syllables: dict[str, str]) -> list[str] | None:
    """Split a pinyin word into syllables (longest first, backtracking)."""
    if not word:
        return []
    for size in range(min(6, len(word)), 0, -1):
        head = word[:size]
        if head in syllables:
            rest = _segment(word[size:], syllables)
            if rest is not None:
                return [head, *rest]
    return None


def _han(entry: ListEntry, syllables: dict[str, str]) -> str | None:
    given, surname = _split_person(entry.name)
    if len(surname) != 1 or not 1 <= len(given) <= 2:
        return None
    parts = [surname[0].lower(), *(g.lower() for g in given)]
    chars: list[str] = []
    for part in parts:
        segs = _segment(re.sub(r"[^a-z]", "", part), syllables)
        if not segs or len(segs) > 2:
            return None
        chars.extend(syllables[s] for s in segs)
    return "".join(chars) if 2 <= len(chars) <= 4 else None


def _script(text: str, table: list[tuple[str, str]]) -> str:
    low = text.lower()
    out: list[str] = []
    i = 0
    while i < len(low):
        for src, dst in table:
            if low.startswith(src, i):
                out.append(dst)
                i += len(src)
                break
        else:
            out.append(low[i])
            i += 1
    return "".join(out)


def _greek(text: str) -> str:
    text = re.sub(r"['`]", "", text)
    words = [_script(w, _GREEK) for w in re.sub(r"[^A-Za-z\s]", " ", text).split()]
    return " ".join(w[:-1] + "ς" if w.endswith("σ") else w for w in words if w)


def _arabic_word(word: str) -> str:
    word = re.sub(r"(.)\1", r"\1", word.lower())  # shadda: a doubled letter is written once
    if word.startswith("abd"):
        return "عبد" + _arabic_word(word[3:]) if len(word) > 3 else "عبد"
    out = ""
    if word[:1] in "aeiou":
        out, word = "ا", word[1:]
    tail = ""
    if word.endswith(("i", "y")):
        tail, word = "ي", word[:-1]
    elif word.endswith(("u", "o")):
        tail, word = "و", word[:-1]
    elif word.endswith("a"):
        tail, word = "ا", word[:-1]
    # Long-vowel digraphs map to letters; what stays Latin are short vowels, not written.
    body = re.sub("[aeiou]", "", _script(word, _ARABIC_LETTERS))
    return out + body + tail


def _arabic(text: str) -> str:
    text = re.sub(r"['`]", "", text)
    words = re.sub(r"[^A-Za-z\s-]", " ", text).replace("-", " ").split()
    out: list[str] = []
    attach = ""
    for word in words:
        low = word.lower()
        if low in ("al", "el"):
            attach = "ال"
            continue
        if low in ("bin", "ibn", "ben"):
            out.append("بن")
            continue
        out.append(attach + _arabic_word(low))
        attach = ""
    return " ".join(out)


def _typos(tokens: list[str], rng: random.Random, count: int) -> list[str] | None:
    """Put ``count`` typos into different long tokens, or two into one token of 8+ letters."""
    tokens = list(tokens)
    long_ = [i for i, t in enumerate(tokens) if len(t) >= 5]
    if len(long_) >= count:
        picks = rng.sample(long_, count)
    else:
        eight = [i for i, t in enumerate(tokens) if len(t) >= 8]
        if not eight:
            return None
        picks = [rng.choice(eight)] * count
    for idx in picks:
        before = tokens[idx]
        for _ in range(5):
            tokens[idx] = _typo(before, rng)
            if tokens[idx] != before:
                break
    return tokens


def _legal_swap(name: str, rng: random.Random, misspell: bool) -> str | None:
    for pattern, options in _FORM_GROUPS:
        found = re.search(pattern, name)
        if found is None:
            continue
        replacement = rng.choice(options)
        if misspell:
            words = [w for w in _SPELLED_FORM_WORDS if w in replacement]
            if words:
                word = rng.choice(words)
                replacement = replacement.replace(word, _typo(word, rng), 1)
        swapped = name[: found.start()] + replacement + name[found.end() :]
        return swapped if swapped.lower() != name.lower() else None
    return None


def _name_part_typo(name: str, rng: random.Random) -> str | None:
    """One typo in the longest word that is part of the name proper (not its legal form)."""
    proper = set(normalize_name(name, is_entity=True).tokens)
    words = name.split()
    options = [i for i, w in enumerate(words) if w.lower().strip(".,") in proper and len(w) >= 5]
    if not options:
        return None
    idx = max(options, key=lambda i: (len(words[i]), rng.random()))
    words[idx] = _typo(words[idx], rng)
    return " ".join(words)


def _extra_rows(entries: list[ListEntry]) -> list[dict[str, object]]:
    rng = random.Random(SEED_EXTRA)
    rows: list[dict[str, object]] = []
    persons = [
        e for e in entries if e.entity_type == "person" and len(normalize_name(e.name).tokens) >= 2
    ]
    companies = [e for e in entries if e.entity_type == "entity"]
    counts = dict.fromkeys(N_EXTRA, 0)

    def add(kind: str, entry: ListEntry, text: str, *, person: bool) -> None:
        row: dict[str, object] = {
            "name": text,
            "label": "match",
            "kind": kind,
            "expected_entry": entry.entry_id,
            "type": "person" if person else "entity",
        }
        if person and rng.random() < 0.5 and (dob := _dob_for(entry, rng)):
            row["dob"] = dob
        if person and rng.random() < 0.4 and entry.countries:
            row["country"] = entry.countries[0]
        rows.append(row)
        counts[kind] += 1

    # Persons: two typos, other scripts.
    syllables = _pinyin_table()
    for entry in rng.sample(persons, len(persons)):
        given, surname = _split_person(entry.name)
        natural = " ".join([*given, *surname]).title()
        letters = sum(len(t) for t in natural.split())
        if counts["two_typos"] < N_EXTRA["two_typos"] and letters >= 14:
            typoed = _typos(natural.split(), rng, 2)
            if typoed is not None:
                add("two_typos", entry, " ".join(typoed), person=True)
                continue
        countries = set(entry.countries)
        if counts["han"] < N_EXTRA["han"] and countries & _CHINESE_COUNTRIES:
            han = _han(entry, syllables)
            if han is not None:
                add("han", entry, han, person=True)
                continue
        if counts["arabic_script"] < N_EXTRA["arabic_script"] and countries & _ARABIC_COUNTRIES:
            add("arabic_script", entry, _arabic(natural), person=True)
            continue
        if counts["cyrillic"] < N_EXTRA["cyrillic"] and countries & {"RU", "UA", "BY", "KZ"}:
            add("cyrillic", entry, _cyrillic(re.sub(r"[^A-Za-z\s-]", "", natural)), person=True)
            continue
        if counts["greek"] < N_EXTRA["greek"] and rng.random() < 0.3:
            add("greek", entry, _greek(natural), person=True)
    # Entities: legal-form swaps (alone, with a typo), two typos, Russian companies in Cyrillic.
    for entry in rng.sample(companies, len(companies)):
        name = entry.name
        proper = normalize_name(name, is_entity=True).tokens
        if (
            counts["cyrillic_entity"] < N_EXTRA["cyrillic_entity"]
            and _RU_FORM.search(name)
            and any("RUSSIA" in p or "UKRAINE" in p or "CYBER" in p for p in entry.programs)
        ):
            text = name
            for pattern, form in _CYRILLIC_FORMS:
                text = re.sub(pattern, "\x00" + form + "\x00", text, count=1)
            pieces = text.split("\x00")
            rendered = " ".join(
                p.strip() if i % 2 else _cyrillic(re.sub(r"[^A-Za-z\s-]", " ", p).strip())
                for i, p in enumerate(pieces)
                if p.strip()
            )
            if rendered != name:
                add("cyrillic_entity", entry, re.sub(r"\s+", " ", rendered), person=False)
                continue
        kind = rng.choice(["entity_legal_form_swap", "entity_legal_form_typo", "entity_two_typos"])
        if counts[kind] >= N_EXTRA[kind]:
            continue
        if kind == "entity_two_typos":
            if len(proper) < 2 or sum(len(t) for t in proper) < 12:
                continue
            words = name.split()
            idx = [i for i, w in enumerate(words) if w.lower().strip(".,") in set(proper)]
            typoed = _typos([words[i] for i in idx], rng, 2)
            if typoed is None:
                continue
            for i, word in zip(idx, typoed, strict=True):
                words[i] = word
            add(kind, entry, " ".join(words).title(), person=False)
            continue
        swapped = _legal_swap(name, rng, misspell=rng.random() < 0.35)
        if swapped is None:
            continue
        if kind == "entity_legal_form_typo":
            with_typo = _name_part_typo(swapped, rng)
            if with_typo is None:
                continue
            swapped = with_typo
        add(kind, entry, swapped.title() if rng.random() < 0.6 else swapped, person=False)
    short = {k: N_EXTRA[k] - v for k, v in counts.items() if v < N_EXTRA[k]}
    if short:
        logger.warning("the list had too few candidates for: %s", short)
    return rows


def _clean_rows(entries: list[ListEntry], rows: list[dict[str, object]]) -> list[dict[str, object]]:
    """More clean person names (base name pools) and clean company names."""
    rng = random.Random(SEED_EXTRA + 1)
    listed: set[tuple[str, ...]] = set()
    for entry in entries:
        is_entity = entry.entity_type != "person"
        for name in (entry.name, *entry.aliases):
            listed.add(tuple(sorted(normalize_name(name, is_entity=is_entity).tokens)))
    seen = {str(r["name"]) for r in rows}
    out: list[dict[str, object]] = []
    cultures = sorted(_CULTURES)
    while len(out) < N_EXTRA_CLEAN_PERSONS:
        culture = rng.choice(cultures)
        firsts, lasts, countries = _CULTURES[culture]
        parts = [rng.choice(firsts)]
        if rng.random() < 0.3:
            parts.append(rng.choice([f for f in firsts if f != parts[0]]))
        parts.append(rng.choice(lasts))
        if culture in ("spanish", "portuguese", "hispanic_common") and rng.random() < 0.5:
            parts.append(rng.choice([s for s in lasts if s != parts[-1]]))
        text = " ".join(parts)
        if text in seen or tuple(sorted(normalize_name(text).tokens)) in listed:
            continue
        seen.add(text)
        birth = dt.date(rng.randint(1950, 2004), rng.randint(1, 12), rng.randint(1, 28))
        out.append(
            {
                "name": text,
                "label": "clear",
                "kind": f"clean_{culture}",
                "dob": birth.isoformat(),
                "country": rng.choice(countries),
                "type": "person",
            }
        )
    n_companies = 0
    while n_companies < N_CLEAN_COMPANIES:
        words = [rng.choice(_COMPANY_WORDS)]
        if rng.random() < 0.25:
            words.append(rng.choice([w for w in _COMPANY_WORDS if w != words[0]]))
        words.append(rng.choice(_INDUSTRY_WORDS))
        if rng.random() < 0.2:
            words.append(rng.choice([w for w in _INDUSTRY_WORDS if w != words[-1]]))
        form, countries = rng.choice(_COMPANY_FORMS)
        text = " ".join(words) + " " + form
        if text in seen:
            continue
        tokens = tuple(sorted(normalize_name(text, is_entity=True).tokens))
        if tokens in listed:
            continue
        seen.add(text)
        out.append(
            {
                "name": text,
                "label": "clear",
                "kind": "clean_company",
                "country": rng.choice(countries),
                "type": "entity",
            }
        )
        n_companies += 1
    out += _clean_script_rows(listed, seen)
    return out


def _clean_script_rows(listed: set[tuple[str, ...]], seen: set[str]) -> list[dict[str, object]]:
    """Clean names written in other scripts, for the false-positive rate of those classes."""
    rng = random.Random(SEED_EXTRA + 2)
    syllables = _pinyin_table()
    scripts: dict[str, tuple[str, list[str]]] = {
        "arabic": ("arabic", ["arabic", "arabic_common", "persian", "pakistani"]),
        "cyrillic": ("cyrillic", ["russian", "russian_common", "ukrainian"]),
        "greek": ("greek", ["greek", "english", "french", "spanish", "german"]),
        "han": ("han", ["chinese"]),
    }
    out: list[dict[str, object]] = []
    for script, (_, cultures) in scripts.items():
        made = 0
        while made < N_CLEAN_SCRIPT:
            culture = rng.choice(cultures)
            firsts, lasts, countries = _CULTURES[culture]
            first, last = rng.choice(firsts), rng.choice(lasts)
            if script == "han":
                last = rng.choice(_HAN_SURNAMES)
                first = "".join(rng.sample(_HAN_GIVEN, rng.choice((1, 2)))).title()
            latin = f"{first} {last}"
            if latin in seen or tuple(sorted(normalize_name(latin).tokens)) in listed:
                continue
            if script == "arabic":
                text = _arabic(latin)
            elif script == "cyrillic":
                text = _cyrillic(latin)
            elif script == "greek":
                text = _greek(latin)
            else:
                segs = [_segment(w.lower(), syllables) for w in (last, first)]
                if any(not s for s in segs):
                    continue
                text = "".join(syllables[x] for seg in segs if seg for x in seg)
            if text in seen:
                continue
            seen.update((latin, text))
            birth = dt.date(rng.randint(1950, 2004), rng.randint(1, 12), rng.randint(1, 28))
            out.append(
                {
                    "name": text,
                    "label": "clear",
                    "kind": f"clean_{script}_script",
                    "dob": birth.isoformat(),
                    "country": rng.choice(countries),
                    "type": "person",
                }
            )
            made += 1
    return out


def generate(sdn: Path, alt: Path | None, out: Path) -> None:
    """Write the labelled set deterministically (fixed seeds, entries in list order)."""
    entries = sorted(load_ofac_sdn(sdn, alt), key=lambda e: int(e.entry_id.split(":")[1]))
    rows = _base_rows(entries)
    rows += _extra_rows(entries)
    rows += _clean_rows(entries, rows)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8") as handle:
        for i, row in enumerate(rows):
            handle.write(json.dumps({"id": f"r{i:04d}", **row}, ensure_ascii=False) + "\n")
    logger.info("wrote %d labelled rows to %s", len(rows), out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sdn", type=Path, default=LIST_DIR / "sdn.csv")
    parser.add_argument("--alt", type=Path, default=LIST_DIR / "alt.csv")
    parser.add_argument("--out", type=Path, default=LABELLED)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    generate(args.sdn, args.alt, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
