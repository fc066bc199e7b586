"""Sanctions screening benchmark: index build time, throughput, recall and false-positive rate.

Usage (from the repo root)::

    python bench/screening_bench.py [--sdn PATH --alt PATH --opensanctions PATH]
                                    [--regenerate] [--write-docs]

The labelled set ``bench/data/screening_labelled.jsonl`` is generated
deterministically (fixed seed) from the SDN list on first run or with
``--regenerate``: positives are perturbed variants of real listed names
(typos, diacritics, reordering, dropped middle names, Cyrillic transliteration,
Arabic spelling variants), negatives are realistic names from many cultures.
"""

# Cyrillic/Turkish letters below are test data, not look-alike typos.
# ruff: noqa: RUF001

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import platform
import random
import re
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from integrations.sanctions import (  # noqa: E402
    DEFAULT_THRESHOLD,
    ListEntry,
    SanctionsScreener,
    ScreeningResult,
    ScreeningSubject,
    load_ofac_sdn,
    normalize_name,
)

logger = logging.getLogger("screening_bench")

DATA_DIR = ROOT.parent / "shared" / "data" / "sanctions"
LABELLED = ROOT / "bench" / "data" / "screening_labelled.jsonl"
DOC = ROOT / "docs" / "BENCHMARKS.md"
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


def generate(sdn: Path, alt: Path | None, out: Path) -> None:
    """Write the labelled set deterministically (fixed seed, sorted inputs)."""
    rng = random.Random(SEED)
    entries = sorted(load_ofac_sdn(sdn, alt), key=lambda e: int(e.entry_id.split(":")[1]))
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
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8") as handle:
        for i, row in enumerate(rows):
            handle.write(json.dumps({"id": f"r{i:04d}", **row}, ensure_ascii=False) + "\n")
    logger.info(
        "wrote %d labelled rows to %s (%d clean names excluded as listed)", len(rows), out, excluded
    )


# ----------------------------------------------------------------------------- measuring


def _subject(row: dict[str, object], with_extras: bool) -> ScreeningSubject:
    dob = dt.date.fromisoformat(str(row["dob"])) if with_extras and row.get("dob") else None
    country = str(row["country"]) if with_extras and row.get("country") else None
    return ScreeningSubject(str(row["name"]), dob, country)


def _rates(
    rows: list[dict[str, object]], scores: list[float], threshold: float
) -> tuple[float, float]:
    pos = [s for r, s in zip(rows, scores, strict=True) if r["label"] == "match"]
    neg = [s for r, s in zip(rows, scores, strict=True) if r["label"] == "clear"]
    recall = sum(s >= threshold for s in pos) / len(pos)
    fpr = sum(s >= threshold for s in neg) / len(neg)
    return recall, fpr


def _machine() -> str:
    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        mem_kb = int(
            next(
                line.split()[1]
                for line in Path("/proc/meminfo").read_text().splitlines()
                if line.startswith("MemTotal")
            )
        )
        ram = f"{mem_kb / 1024 / 1024:.0f} GiB RAM"
    except (OSError, StopIteration, ValueError):
        ram = "unknown RAM"
    return f"{os.cpu_count()} cores (nproc), {cpu}, {ram}, Python {platform.python_version()}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sdn", type=Path, default=DATA_DIR / "ofac-sdn-2021-04" / "sdn.csv")
    parser.add_argument("--alt", type=Path, default=DATA_DIR / "ofac-sdn-2021-04" / "alt.csv")
    parser.add_argument(
        "--opensanctions",
        type=Path,
        default=DATA_DIR / "opensanctions-sample" / "targets.simple.csv",
    )
    parser.add_argument("--labelled", type=Path, default=LABELLED)
    parser.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD)
    parser.add_argument("--regenerate", action="store_true", help="rebuild the labelled set")
    parser.add_argument("--rounds", type=int, default=3, help="throughput passes over the set")
    parser.add_argument(
        "--write-docs",
        action="store_true",
        help=f"write the results section into {DOC.relative_to(ROOT)}",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    if args.regenerate or not args.labelled.exists():
        generate(args.sdn, args.alt, args.labelled)
    rows = [
        json.loads(line)
        for line in args.labelled.read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    n_pos = sum(r["label"] == "match" for r in rows)
    n_neg = len(rows) - n_pos

    t0 = time.perf_counter()
    screener = SanctionsScreener.from_files(
        sdn=args.sdn,
        alt=args.alt,
        opensanctions=args.opensanctions if args.opensanctions.exists() else None,
        threshold=args.threshold,
    )
    load_s = time.perf_counter() - t0
    index_s = screener.build_seconds

    subjects = [_subject(r, True) for r in rows]
    latencies: list[float] = []
    results: list[ScreeningResult] = []
    t0 = time.perf_counter()
    for _ in range(args.rounds):
        results = []
        for subject in subjects:
            s0 = time.perf_counter()
            results.append(screener.screen(subject))
            latencies.append(time.perf_counter() - s0)
    elapsed = time.perf_counter() - t0
    per_sec = len(subjects) * args.rounds / elapsed
    latencies.sort()
    p50 = statistics.median(latencies) * 1000
    p99 = latencies[int(len(latencies) * 0.99)] * 1000

    scores = [r.score for r in results]
    name_only = [screener.screen(_subject(r, False)).score for r in rows]
    recall, fpr = _rates(rows, scores, args.threshold)
    recall_n, fpr_n = _rates(rows, name_only, args.threshold)
    right_entry = (
        sum(
            1
            for row, res in zip(rows, results, strict=True)
            if row["label"] == "match"
            and res.decision == "potential_match"
            and any(h.entry_id == row["expected_entry"] for h in res.hits)
        )
        / n_pos
    )

    sweep = []
    for thr in [x / 2 for x in range(130, 196, 5)]:
        r, f = _rates(rows, scores, thr)
        rn, fn = _rates(rows, name_only, thr)
        sweep.append((thr, r, f, rn, fn))

    by_kind: dict[str, list[bool]] = {}
    for row, res in zip(rows, results, strict=True):
        if row["label"] == "match":
            by_kind.setdefault(str(row["kind"]), []).append(res.decision == "potential_match")
    misses = [
        (row["name"], row["expected_entry"], res.score)
        for row, res in zip(rows, results, strict=True)
        if row["label"] == "match" and res.decision == "clear"
    ]
    false_pos = [
        (row["name"], res.best.matched_name if res.best else None, res.score)
        for row, res in zip(rows, results, strict=True)
        if row["label"] == "clear" and res.decision == "potential_match"
    ]

    print(f"lists: {screener.list_version}")
    print(f"entries: {screener.entry_count}, name variants indexed: {screener.variant_count}")
    print(f"load+index: {load_s:.2f}s (index build {index_s:.2f}s)")
    print(f"labelled: {len(rows)} rows ({n_pos} listed-name variants, {n_neg} clean names)")
    print(
        f"throughput: {per_sec:.0f} names/s single thread; latency p50 {p50:.2f} ms, "
        f"p99 {p99:.2f} ms"
    )
    print(
        f"threshold {args.threshold:g}: recall {recall:.3f}, FPR {fpr:.3f} "
        f"(name only: recall {recall_n:.3f}, FPR {fpr_n:.3f}); "
        f"expected entry among hits {right_entry:.3f}"
    )
    print("threshold sweep (with DOB/country | name only):")
    for thr, r, f, rn, fn in sweep:
        print(f"  {thr:5.1f}  recall {r:.3f}  FPR {f:.3f}  |  recall {rn:.3f}  FPR {fn:.3f}")
    print("recall by variant kind:")
    for kind, oks in sorted(by_kind.items()):
        print(f"  {kind:18s} {sum(oks)}/{len(oks)}")
    for name, expected, score in misses[:15]:
        print(f"  miss: {name!r} (expected {expected}) score {score}")
    for name, matched, score in false_pos[:15]:
        print(f"  false positive: {name!r} ~ {matched!r} score {score}")

    if args.write_docs:
        _write_doc(
            machine=_machine(),
            list_version=screener.list_version,
            entries=screener.entry_count,
            variants=screener.variant_count,
            load_s=load_s,
            index_s=index_s,
            n_pos=n_pos,
            n_neg=n_neg,
            per_sec=per_sec,
            p50=p50,
            p99=p99,
            threshold=args.threshold,
            recall=recall,
            fpr=fpr,
            recall_n=recall_n,
            fpr_n=fpr_n,
            right_entry=right_entry,
            sweep=sweep,
            by_kind=by_kind,
        )
        print(f"wrote {DOC}")
    return 0


def _write_doc(
    *,
    machine: str,
    list_version: str,
    entries: int,
    variants: int,
    load_s: float,
    index_s: float,
    n_pos: int,
    n_neg: int,
    per_sec: float,
    p50: float,
    p99: float,
    threshold: float,
    recall: float,
    fpr: float,
    recall_n: float,
    fpr_n: float,
    right_entry: float,
    sweep: list[tuple[float, float, float, float, float]],
    by_kind: dict[str, list[bool]],
) -> None:
    lines = [
        "## Sanctions screening",
        "",
        f"Date: {dt.date.today().isoformat()}. Machine: {machine}.",
        "",
        "Command: `.venv/bin/python bench/screening_bench.py --write-docs` (lists from "
        "`../shared/data/sanctions`: OFAC SDN 2021-04 `sdn.csv` + `alt.csv` and the "
        "OpenSanctions sample).",
        "",
        f"- Lists: `{list_version}` — {entries} entries, {variants} distinct name variants "
        "indexed.",
        f"- Load + index build: {load_s:.2f} s (of which index build {index_s:.2f} s).",
        f"- Throughput: **{per_sec:.0f} names/s** on one thread; latency p50 {p50:.2f} ms, "
        f"p99 {p99:.2f} ms.",
        f"- Labelled set `bench/data/screening_labelled.jsonl`: {n_pos} variants of listed names "
        f"(typos, diacritics, reordering, dropped middle names, Cyrillic transliteration, "
        f"Arabic spelling variants, entity legal-form changes; ~half with the listed DOB/country) "
        f"and {n_neg} clean names from 32 name pools (each with a DOB and country, as at "
        "onboarding).",
        f"- Default threshold **{threshold:g}**: recall **{recall:.3f}**, false-positive rate "
        f"**{fpr:.3f}**; the expected list entry is among the hits for {right_entry:.3f} of "
        "positives.",
        f"- Same set screened by name only (no DOB/country): recall {recall_n:.3f}, "
        f"FPR {fpr_n:.3f} — DOB/country corroboration is what keeps common names clear.",
        "",
        "| threshold | recall | FPR | recall (name only) | FPR (name only) |",
        "|---:|---:|---:|---:|---:|",
    ]
    lines += [f"| {t:g} | {r:.3f} | {f:.3f} | {rn:.3f} | {fn:.3f} |" for t, r, f, rn, fn in sweep]
    lines += [
        "",
        "Recall by variant kind: "
        + ", ".join(f"{k} {sum(v)}/{len(v)}" for k, v in sorted(by_kind.items()))
        + ".",
        "",
    ]
    section = "\n".join(lines)
    text = DOC.read_text(encoding="utf-8") if DOC.exists() else "# Benchmarks\n\n"
    pattern = re.compile(r"## Sanctions screening\n.*?(?=\n## |\Z)", re.DOTALL)
    text = pattern.sub(section, text) if pattern.search(text) else text.rstrip() + "\n\n" + section
    DOC.write_text(text.rstrip() + "\n", encoding="utf-8")


if __name__ == "__main__":
    raise SystemExit(main())
