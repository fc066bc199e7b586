"""Generated client documents for the document reader's tests and bench (deterministic).

Nothing here is a real document: every passport, ID card, utility bill and screenshot is
drawn from a seed, so the set can be rebuilt byte for byte instead of committing binaries.

- Passports (TD3) and ID cards (TD1) are images (PNG or JPEG) of a data page: printed fields,
  a photo box, and the machine-readable zone rendered in an OCR-B font when one is installed
  (Debian's ``fonts-ocr-b``), else the best monospace font found (``mrz_font``); passports
  are also PDFs with a text layer. The MRZ comes from the ``mrz`` package's generators.
- Proofs of address are utility bills as PDFs (reportlab, with a text layer) or as images.
- Unreadable files: a PDF with no pages, a damaged PDF, a blank page, an image too large to
  read, a screenshot of a sign-in page uploaded as a passport.

``dataset(n, seed, as_of)`` gives the labelled set of ``bench/document_bench.py``; the test
helpers call the single-document functions.
"""

from __future__ import annotations

import io
import random
import shutil
import subprocess
import zlib
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageFilter, ImageFont

# ------------------------------------------------------------------------------ fonts
OCR_B_CANDIDATES = (
    "/usr/share/fonts/opentype/ocr-b/OCRB.otf",
    "/usr/share/fonts/truetype/ocr-b/OCRB.ttf",
    "/usr/share/fonts/opentype/ocr-b/OCRBS.otf",
)
MONO_CANDIDATES = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationMono-Regular.ttf",
)
SANS_CANDIDATES = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
)


@dataclass(frozen=True)
class FontChoice:
    path: str | None  # None: Pillow's own default font
    name: str
    ocr_b: bool


def _fc_match(family: str) -> str | None:
    fc = shutil.which("fc-match")
    if fc is None:
        return None
    try:
        out = subprocess.run(
            [fc, "-f", "%{file}\n%{family}", family], capture_output=True, text=True, timeout=5
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    path, _, fam = out.partition("\n")
    return path if path and family.lower() in fam.lower() else None


@lru_cache(maxsize=1)
def mrz_font() -> FontChoice:
    """OCR-B if installed (the MRZ's own font, ISO 1073-2), else the best monospace one."""
    for path in OCR_B_CANDIDATES:
        if Path(path).exists():
            return FontChoice(path, "OCR-B (fonts-ocr-b)", True)
    found = _fc_match("OCR B")
    if found:
        return FontChoice(found, "OCR-B", True)
    for path in MONO_CANDIDATES:
        if Path(path).exists():
            return FontChoice(path, Path(path).stem, False)
    try:  # reportlab ships Courier as Type 1; FreeType reads it
        import reportlab

        courier = Path(reportlab.__file__).parent / "fonts" / "com_____.pfb"
        if courier.exists():
            return FontChoice(str(courier), "Courier (reportlab)", False)
    except ImportError:
        pass
    return FontChoice(None, "Pillow default", False)


def _font(choice_path: str | None, size: int) -> Any:
    if choice_path is None:
        return ImageFont.load_default(size=size)
    return ImageFont.truetype(choice_path, size)


@lru_cache(maxsize=32)
def _sans(size: int) -> Any:
    for path in SANS_CANDIDATES:
        if Path(path).exists():
            return ImageFont.truetype(path, size)
    return ImageFont.load_default(size=size)


@lru_cache(maxsize=32)
def _mrz(size: int) -> Any:
    return _font(mrz_font().path, size)


# ------------------------------------------------------------------------------ people
GIVEN = [
    ("Ada", "F"), ("Grace", "F"), ("Marie", "F"), ("Zoë", "F"), ("Ingrid", "F"),
    ("Amélie", "F"), ("Sofía", "F"), ("Chiara", "F"), ("Aisha", "F"), ("Hannah", "F"),
    ("Noor", "F"), ("Elena", "F"), ("Jürgen", "M"), ("José", "M"), ("Alan", "M"),
    ("Tomás", "M"), ("Luca", "M"), ("Pieter", "M"), ("Kwame", "M"), ("Olusegun", "M"),
    ("Mateusz", "M"), ("Björn", "M"), ("Rahul", "M"), ("Hiroshi", "M"),
]  # fmt: skip
SURNAMES = [
    "Lovelace", "Hopper", "Curie", "Müller", "García López", "Rossi", "van der Berg",
    "Okafor", "Nowak", "Lindqvist", "Dubois", "Mensah", "Kowalczyk", "Fernández", "Schmidt",
    "O'Brien", "Yamamoto", "Sharma", "Haddad", "Papadopoulos", "Kimura", "Jensen", "Brontë",
    "Lefèvre-Dubois",
]  # fmt: skip
MIDDLE = ["Marie", "Anne", "James", "Maria", "Louise", "Karl", "Elisabeth"]
NATIONS = [  # MRZ code, ISO alpha-2, country name on the page
    ("GBR", "GB", "UNITED KINGDOM"), ("D", "DE", "DEUTSCHLAND"), ("FRA", "FR", "FRANCE"),
    ("ESP", "ES", "ESPAÑA"), ("ITA", "IT", "ITALIA"), ("NLD", "NL", "NEDERLAND"),
    ("POL", "PL", "POLSKA"), ("SWE", "SE", "SVERIGE"), ("IRL", "IE", "IRELAND"),
    ("GHA", "GH", "GHANA"), ("IND", "IN", "INDIA"), ("JPN", "JP", "JAPAN"),
]  # fmt: skip
STREETS = ["High Street", "Station Road", "Baker Street", "Mill Lane", "Church Road", "Park Avenue"]
TOWNS = ["London", "Leeds", "Bristol", "Manchester", "Cardiff", "Glasgow", "York"]
SUPPLIERS = ["Northern Power & Gas", "City Water", "Brightline Broadband", "Meridian Energy"]


@dataclass(frozen=True)
class Person:
    given: str
    surname: str
    sex: str
    birth: date
    mrz_nationality: str
    nationality: str  # alpha-2
    country_name: str
    number: str
    middle: str = ""

    @property
    def name(self) -> str:
        """As the client wrote it on the application (no middle name)."""
        return f"{self.given} {self.surname}"

    @property
    def document_given(self) -> str:
        return f"{self.given} {self.middle}".strip()

    def profile(self, **extra: Any) -> dict[str, Any]:
        """The application's client profile for this person."""
        return {
            "name": self.name,
            "date_of_birth": self.birth.isoformat(),
            "nationality": self.nationality,
            "country": "GB",
            **extra,
        }


def person(rng: random.Random) -> Person:
    given, sex = rng.choice(GIVEN)
    code, iso2, country = rng.choice(NATIONS)
    birth = date(1950, 1, 1) + timedelta(days=rng.randrange(0, 365 * 52))
    letters = "ABCDEFGHJKLMNPRSTUVWXYZ"
    number = rng.choice(letters) + "".join(rng.choice("0123456789" + letters) for _ in range(8))
    return Person(
        given=given,
        surname=rng.choice(SURNAMES),
        sex=sex,
        birth=birth,
        mrz_nationality=code,
        nationality=iso2,
        country_name=country,
        number=number,
        middle=rng.choice(MIDDLE) if rng.random() < 0.3 else "",
    )


ADA = Person(
    given="Ada",
    surname="Lovelace",
    sex="F",
    birth=date(1985, 12, 10),
    mrz_nationality="GBR",
    nationality="GB",
    country_name="UNITED KINGDOM",
    number="L8988901C",
)
"""The tests' client (``tests.factories.profile``'s name, Ada Lovelace)."""


# ------------------------------------------------------------------------------ MRZ
def _yymmdd(day: date) -> str:
    return day.strftime("%y%m%d")


def td3(p: Person, expires: date) -> list[str]:
    from mrz.generator.td3 import TD3CodeGenerator

    code = TD3CodeGenerator(
        "P", p.mrz_nationality, p.surname, p.document_given, p.number,
        p.mrz_nationality, _yymmdd(p.birth), p.sex, _yymmdd(expires), "",
    )  # fmt: skip
    return str(code).split("\n")


def td1(p: Person, expires: date) -> list[str]:
    from mrz.generator.td1 import TD1CodeGenerator

    code = TD1CodeGenerator(
        "I", p.mrz_nationality, p.number, _yymmdd(p.birth), p.sex, _yymmdd(expires),
        p.mrz_nationality, p.surname, p.document_given,
    )  # fmt: skip
    return str(code).split("\n")


def tamper_check_digit(lines: list[str], rng: random.Random) -> list[str]:
    """Change one check digit (document number, birth or expiry date) to another digit: what a
    forger who retyped a field without recomputing its check digit leaves behind."""
    data = 1 if len(lines) == 2 else 0
    positions = {44: [9, 19, 27], 36: [9, 19, 27], 30: [14]}[len(lines[data])]
    if len(lines) == 3:
        data, positions = rng.choice([(0, [14]), (1, [6, 14])])
    pos = rng.choice(positions)
    line = lines[data]
    old = line[pos]
    new = rng.choice([d for d in "0123456789" if d != old])
    out = list(lines)
    out[data] = line[:pos] + new + line[pos + 1 :]
    return out


# ------------------------------------------------------------------------------ images
@dataclass(frozen=True)
class Scan:
    """How the page was photographed: turned (degrees), blurred (radius), saved as."""

    rotate: float = 0.0
    blur: float = 0.0
    fmt: str = "png"  # png | jpeg
    quality: int = 85
    noise: int = 6


def _background(
    rng: random.Random, size: tuple[int, int], tint: tuple[int, int, int]
) -> Image.Image:
    img = Image.new("RGB", size, tint)
    draw = ImageDraw.Draw(img)
    for _ in range(40):  # guilloche-ish light curves
        x0, y0 = rng.randrange(size[0]), rng.randrange(size[1])
        r = rng.randrange(40, 260)
        shade = tuple(max(0, c - rng.randrange(6, 18)) for c in tint)
        draw.ellipse((x0 - r, y0 - r, x0 + r, y0 + r), outline=shade, width=1)
    return img


def _photo(draw: ImageDraw.ImageDraw, box: tuple[int, int, int, int], rng: random.Random) -> None:
    x0, y0, x1, y1 = box
    draw.rectangle(box, fill=(rng.randrange(170, 210),) * 3, outline=(90, 90, 90), width=2)
    cx, cy, w = (x0 + x1) // 2, y0 + (y1 - y0) * 2 // 5, (x1 - x0) // 4
    draw.ellipse((cx - w, cy - w, cx + w, cy + int(w * 1.25)), fill=(120, 110, 100))
    draw.pieslice(
        (x0 + 15, y1 - (y1 - y0) // 3, x1 - 15, y1 + (y1 - y0) // 3), 180, 360, fill=(90, 90, 110)
    )


def _draw_mrz(img: Image.Image, lines: list[str], top: int, margin: int) -> None:
    draw = ImageDraw.Draw(img)
    width = img.width - 2 * margin
    size = 40
    font = _mrz(size)
    while size > 10 and font.getlength(lines[0]) > width:
        size -= 1
        font = _mrz(size)
    step = int(size * 1.45)
    for i, line in enumerate(lines):
        draw.text((margin, top + i * step), line, fill=(15, 15, 20), font=font)


def _finish(img: Image.Image, scan: Scan, rng: random.Random) -> bytes:
    if scan.noise:
        px = img.load()
        assert px is not None
        for _ in range(img.width * img.height // 60):
            x, y = rng.randrange(img.width), rng.randrange(img.height)
            c = px[x, y]
            assert isinstance(c, tuple)
            d = rng.randrange(-scan.noise * 4, scan.noise * 4)
            px[x, y] = tuple(max(0, min(255, v + d)) for v in c[:3])
    if scan.blur:
        img = img.filter(ImageFilter.GaussianBlur(scan.blur))
    if scan.rotate:
        img = img.rotate(
            scan.rotate, expand=True, fillcolor=(250, 250, 248), resample=Image.Resampling.BICUBIC
        )
    buf = io.BytesIO()
    if scan.fmt == "jpeg":
        img.save(buf, "JPEG", quality=scan.quality)
    else:
        img.save(buf, "PNG", optimize=False, compress_level=6)
    return buf.getvalue()


def _field(draw: ImageDraw.ImageDraw, xy: tuple[int, int], label: str, value: str) -> None:
    draw.text(xy, label, fill=(70, 70, 90), font=_sans(16))
    draw.text((xy[0], xy[1] + 20), value, fill=(20, 20, 30), font=_sans(26))


def _printed_date(day: date) -> str:
    return day.strftime("%d %b %Y").upper()


def passport_image(
    p: Person,
    expires: date,
    *,
    seed: int = 0,
    scan: Scan | None = None,
    mrz_lines: list[str] | None = None,
) -> bytes:
    """A passport data page (TD3) as an image."""
    rng = random.Random(seed)
    scan = scan or Scan()
    img = _background(rng, (1250, 880), (236, 232, 244))
    draw = ImageDraw.Draw(img)
    draw.text((50, 30), f"PASSPORT  ·  {p.country_name}", fill=(60, 40, 110), font=_sans(34))
    _photo(draw, (60, 120, 370, 520), rng)
    x = 420
    _field(draw, (x, 120), "Type / Code / Passport No.", f"P   {p.mrz_nationality}   {p.number}")
    _field(draw, (x, 190), "Surname", p.surname.upper())
    _field(draw, (x, 260), "Given names", p.document_given.upper())
    _field(draw, (x, 330), "Nationality", p.country_name)
    _field(draw, (x, 400), "Date of birth", _printed_date(p.birth))
    _field(draw, (x + 380, 400), "Sex", p.sex)
    _field(draw, (x, 470), "Date of expiry", _printed_date(expires))
    _draw_mrz(img, mrz_lines or td3(p, expires), top=700, margin=45)
    return _finish(img, scan, rng)


def id_card_image(
    p: Person,
    expires: date,
    *,
    seed: int = 0,
    scan: Scan | None = None,
    mrz_lines: list[str] | None = None,
) -> bytes:
    """The back of a national ID card (TD1): three MRZ lines under a printed address block."""
    rng = random.Random(seed)
    scan = scan or Scan()
    img = _background(rng, (1100, 700), (228, 238, 236))
    draw = ImageDraw.Draw(img)
    draw.text((50, 30), f"IDENTITY CARD  ·  {p.country_name}", fill=(30, 80, 80), font=_sans(30))
    _field(
        draw, (50, 110), "Surname / Given names", f"{p.surname.upper()}, {p.document_given.upper()}"
    )
    _field(draw, (50, 180), "Date of birth", _printed_date(p.birth))
    _field(draw, (50, 250), "Date of expiry", _printed_date(expires))
    _draw_mrz(img, mrz_lines or td1(p, expires), top=440, margin=60)
    return _finish(img, scan, rng)


def passport_pdf(p: Person, expires: date, *, mrz_lines: list[str] | None = None) -> bytes:
    """A passport page exported as a PDF with a text layer (the MRZ in Courier)."""
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    buf = io.BytesIO()
    c = canvas.Canvas(buf, pagesize=A4, invariant=True)
    _, height = A4
    c.setFont("Helvetica-Bold", 18)
    c.drawString(50, height - 70, f"PASSPORT - {p.country_name}")
    c.setFont("Helvetica", 12)
    for i, (label, value) in enumerate(
        [
            ("Surname", p.surname.upper()),
            ("Given names", p.document_given.upper()),
            ("Date of birth", _printed_date(p.birth)),
            ("Date of expiry", _printed_date(expires)),
        ]
    ):
        c.drawString(50, height - 120 - i * 22, f"{label}: {value}")
    c.setFont("Courier", 11)
    for i, line in enumerate(mrz_lines or td3(p, expires)):
        c.drawString(40, 200 - i * 16, line)
    c.showPage()
    c.save()
    return buf.getvalue()


def _bill_lines(name: str, issued: date, rng: random.Random) -> tuple[str, list[str], list[str]]:
    supplier = rng.choice(SUPPLIERS)
    street = f"{rng.randrange(1, 250)} {rng.choice(STREETS)}"
    town = rng.choice(TOWNS)
    letters = "ABDEFGHJLNPQRSTUWXYZ"
    postcode = (
        f"{rng.choice('ABCDEFGHLMNPRS')}{rng.choice('ABCDEFGHLMNPRS')}{rng.randrange(1, 20)} "
        f"{rng.randrange(1, 9)}{rng.choice(letters)}{rng.choice(letters)}"
    )
    since = issued - timedelta(days=rng.randrange(400, 4000))
    due = issued + timedelta(days=rng.randrange(10, 28))
    account = f"{rng.randrange(10_000_000, 99_999_999)}"
    date_style = rng.choice(["long", "slash", "iso"])
    stated = {
        "long": f"{issued.day} {issued.strftime('%B %Y')}",
        "slash": issued.strftime("%d/%m/%Y"),
        "iso": issued.isoformat(),
    }[date_style]
    head = [f"{rng.choice(['Mr', 'Ms', 'Dr', ''])} {name}".strip(), street, town, postcode]
    body = [
        f"Statement date: {stated}",
        f"Account number: {account}",
        f"Customer since {since.strftime('%d %b %Y')}",
        f"Amount due: £{rng.randrange(20, 300)}.{rng.randrange(0, 99):02d}",
        f"Please pay by {due.day} {due.strftime('%B %Y')}",
    ]
    return supplier, head, body


def proof_of_address_pdf(name: str, issued: date, *, seed: int = 0) -> bytes:
    """A utility bill as a PDF with a text layer."""
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    rng = random.Random(seed)
    supplier, head, body = _bill_lines(name, issued, rng)
    buf = io.BytesIO()
    c = canvas.Canvas(buf, pagesize=A4, invariant=True)
    _, height = A4
    c.setFont("Helvetica-Bold", 20)
    c.drawString(50, height - 60, supplier)
    c.setFont("Helvetica", 12)
    for i, line in enumerate(head):
        c.drawString(50, height - 130 - i * 16, line)
    for i, line in enumerate(body):
        c.drawString(320, height - 130 - i * 18, line)
    c.drawString(50, 80, "Thank you for being a customer. Lines are open 8am to 8pm.")
    c.showPage()
    c.save()
    return buf.getvalue()


def proof_of_address_image(
    name: str, issued: date, *, seed: int = 0, scan: Scan | None = None
) -> bytes:
    """The same bill, photographed."""
    rng = random.Random(seed)
    supplier, head, body = _bill_lines(name, issued, rng)
    img = Image.new("RGB", (1240, 1000), (252, 252, 250))
    draw = ImageDraw.Draw(img)
    draw.text((60, 50), supplier, fill=(20, 60, 120), font=_sans(44))
    for i, line in enumerate(head):
        draw.text((60, 180 + i * 40), line, fill=(20, 20, 20), font=_sans(28))
    for i, line in enumerate(body):
        draw.text((620, 180 + i * 44), line, fill=(20, 20, 20), font=_sans(26))
    draw.text((60, 900), "Thank you for being a customer.", fill=(90, 90, 90), font=_sans(22))
    return _finish(img, scan or Scan(fmt="jpeg", quality=88), rng)


# ------------------------------------------------------------------------------ unreadable
def sign_in_screenshot(*, seed: int = 0) -> bytes:
    """A screenshot of a console's sign-in page: a PNG with text, but no MRZ."""
    rng = random.Random(seed)
    img = Image.new("RGB", (1280, 800), (245, 246, 250))
    draw = ImageDraw.Draw(img)
    draw.rectangle((0, 0, 1280, 70), fill=(30, 40, 70))
    draw.text((40, 18), "Onboarding console", fill=(255, 255, 255), font=_sans(30))
    draw.rectangle((440, 200, 840, 560), fill=(255, 255, 255), outline=(200, 200, 210))
    draw.text((480, 230), "Sign in", fill=(20, 20, 30), font=_sans(34))
    for i, label in enumerate(["Username", "Password"]):
        draw.text((480, 300 + i * 90), label, fill=(60, 60, 70), font=_sans(20))
        draw.rectangle((480, 328 + i * 90, 800, 368 + i * 90), outline=(160, 160, 170))
    draw.rectangle((480, 490, 800, 530), fill=(40, 90, 200))
    draw.text((600, 498), "Sign in", fill=(255, 255, 255), font=_sans(22))
    return _finish(img, Scan(noise=0), rng)


def _hand_pdf(objects: list[bytes]) -> bytes:
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


def empty_pdf() -> bytes:
    """A well-formed PDF with no pages (passes the upload's type check)."""
    return _hand_pdf(
        [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [] /Count 0 >>"]
    )


def blank_pdf() -> bytes:
    """One empty page: no text, no image."""
    return _hand_pdf(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] >>",
        ]
    )


def damaged_pdf(*, seed: int = 0) -> bytes:
    """Starts and ends like a PDF; the middle is noise."""
    rng = random.Random(seed)
    return b"%PDF-1.7\n" + bytes(rng.randrange(256) for _ in range(3000)) + b"\n%%EOF\n"


def huge_png(width: int = 12_000, height: int = 12_000) -> bytes:
    """A valid greyscale PNG of ``width`` x ``height`` white pixels: tiny on disk, vast to
    decode (what a decompression bomb looks like)."""
    import struct

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    row = b"\x00" + b"\xff" * width
    comp = zlib.compressobj(9)
    raw = b"".join(comp.compress(row) for _ in range(height)) + comp.flush()
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
        + chunk(b"IDAT", raw)
        + chunk(b"IEND", b"")
    )


def noise_image(*, seed: int = 0) -> bytes:
    rng = random.Random(seed)
    img = Image.frombytes("L", (600, 400), bytes(rng.randrange(256) for _ in range(600 * 400)))
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


# ------------------------------------------------------------------------------ dataset
VALID = "valid"
EXPIRED = "expired"
TAMPERED = "tampered check digit"
NAME_MISMATCH = "name mismatch"
ROTATED_BLURRED = "rotated or blurred scan"
STALE = "stale proof of address"
UNREADABLE = "unreadable file"
CLASSES = (VALID, EXPIRED, TAMPERED, NAME_MISMATCH, ROTATED_BLURRED, STALE, UNREADABLE)
EXPECTED = {
    VALID: "machine_verified",
    EXPIRED: "rejected",
    TAMPERED: "rejected",
    NAME_MISMATCH: "needs_review",
    ROTATED_BLURRED: "machine_verified",
    STALE: "rejected",
    UNREADABLE: "needs_review",
}
FRESH_DAYS = 90


@dataclass(frozen=True)
class Sample:
    id: str
    cls: str
    kind: str  # government_id | proof_of_address
    content_type: str
    data: bytes
    profile: dict[str, Any]
    variant: str  # what exactly was generated, for the report
    expected: str = field(default="")

    def with_expected(self) -> Sample:
        return replace(self, expected=EXPECTED[self.cls])


def _ct(fmt: str) -> str:
    return {"png": "image/png", "jpeg": "image/jpeg", "pdf": "application/pdf"}[fmt]


def _id_doc(
    rng: random.Random, seed: int, p: Person, expires: date, *, scan: Scan, tamper: bool
) -> tuple[str, bytes, str]:
    """A passport image, an ID card image or a passport PDF (7 : 2 : 1)."""
    roll = rng.random()
    if roll < 0.7:
        lines = td3(p, expires)
        lines = tamper_check_digit(lines, rng) if tamper else lines
        return (
            "passport " + scan.fmt,
            passport_image(p, expires, seed=seed, scan=scan, mrz_lines=lines),
            _ct(scan.fmt),
        )
    if roll < 0.9:
        lines = td1(p, expires)
        lines = tamper_check_digit(lines, rng) if tamper else lines
        return (
            "id card " + scan.fmt,
            id_card_image(p, expires, seed=seed, scan=scan, mrz_lines=lines),
            _ct(scan.fmt),
        )
    lines = td3(p, expires)
    lines = tamper_check_digit(lines, rng) if tamper else lines
    return "passport pdf", passport_pdf(p, expires, mrz_lines=lines), _ct("pdf")


def _address_doc(rng: random.Random, seed: int, name: str, issued: date) -> tuple[str, bytes, str]:
    if rng.random() < 0.6:
        return "bill pdf", proof_of_address_pdf(name, issued, seed=seed), _ct("pdf")
    return "bill jpeg", proof_of_address_image(name, issued, seed=seed), _ct("jpeg")


def _plain_scan(rng: random.Random) -> Scan:
    return Scan(fmt=rng.choice(["png", "jpeg"]), rotate=rng.uniform(-1.0, 1.0))


def one(cls: str, index: int, seed: int, as_of: date) -> Sample:
    """Sample ``index`` of class ``cls`` (the same arguments give the same bytes)."""
    s = seed * 1_000_003 + CLASSES.index(cls) * 10_007 + index
    rng = random.Random(s)
    p = person(rng)
    profile = p.profile()
    valid_until = as_of + timedelta(days=rng.randrange(30, 3600))
    fresh = as_of - timedelta(days=rng.randrange(0, FRESH_DAYS - 5))
    address_share = 0.35
    if cls == VALID:
        if rng.random() < address_share:
            variant, data, ct = _address_doc(rng, s, p.name, fresh)
            return Sample(f"{cls}-{index}", cls, "proof_of_address", ct, data, profile, variant)
        variant, data, ct = _id_doc(rng, s, p, valid_until, scan=_plain_scan(rng), tamper=False)
    elif cls == EXPIRED:
        expired = as_of - timedelta(days=rng.randrange(1, 2000))
        variant, data, ct = _id_doc(rng, s, p, expired, scan=_plain_scan(rng), tamper=False)
    elif cls == TAMPERED:
        variant, data, ct = _id_doc(rng, s, p, valid_until, scan=_plain_scan(rng), tamper=True)
    elif cls == NAME_MISMATCH:
        other = person(random.Random(s + 1))
        # another person: neither name shared (nor one surname inside the other, as
        # Dubois in Lefèvre-Dubois), so no reading of the names can call them the same
        while other.given == p.given:
            other = replace(other, given=rng.choice(GIVEN)[0])
        while other.surname in p.surname or p.surname in other.surname:
            other = replace(other, surname=rng.choice(SURNAMES))
        if rng.random() < address_share:
            variant, data, ct = _address_doc(rng, s, other.name, fresh)
            return Sample(f"{cls}-{index}", cls, "proof_of_address", ct, data, profile, variant)
        variant, data, ct = _id_doc(rng, s, other, valid_until, scan=_plain_scan(rng), tamper=False)
    elif cls == ROTATED_BLURRED:
        how = rng.choice(["skewed", "upside down", "sideways", "blurred", "skewed + blurred"])
        scan = Scan(
            fmt=rng.choice(["png", "jpeg"]),
            rotate={
                "skewed": rng.choice([-1, 1]) * rng.uniform(2, 6),
                "upside down": 180 + rng.uniform(-1, 1),
                "sideways": rng.choice([90, 270]),
                "blurred": 0.0,
                "skewed + blurred": rng.choice([-1, 1]) * rng.uniform(2, 4),
            }[how],
            blur=rng.uniform(1.2, 2.2) if "blurred" in how else 0.0,
        )
        data = (passport_image if rng.random() < 0.75 else id_card_image)(
            p, valid_until, seed=s, scan=scan
        )
        variant, ct = f"{how} {scan.fmt}", _ct(scan.fmt)
    elif cls == STALE:
        old = as_of - timedelta(days=rng.randrange(FRESH_DAYS + 5, 900))
        variant, data, ct = _address_doc(rng, s, p.name, old)
        return Sample(f"{cls}-{index}", cls, "proof_of_address", ct, data, profile, variant)
    elif cls == UNREADABLE:
        what = rng.choice(
            ["empty pdf", "damaged pdf", "blank pdf", "huge png", "screenshot", "noise png"]
        )
        data, ct = {
            "empty pdf": lambda: (empty_pdf(), "application/pdf"),
            "damaged pdf": lambda: (damaged_pdf(seed=s), "application/pdf"),
            "blank pdf": lambda: (blank_pdf(), "application/pdf"),
            "huge png": lambda: (huge_png(), "image/png"),
            "screenshot": lambda: (sign_in_screenshot(seed=s), "image/png"),
            "noise png": lambda: (noise_image(seed=s), "image/png"),
        }[what]()
        kind = (
            "proof_of_address"
            if what in ("blank pdf", "noise png") and rng.random() < 0.5
            else "government_id"
        )
        return Sample(f"{cls}-{index}", cls, kind, ct, data, profile, what)
    else:
        raise ValueError(cls)
    return Sample(f"{cls}-{index}", cls, "government_id", ct, data, profile, variant)


def dataset(n: int = 560, *, seed: int = 7, as_of: date | None = None) -> list[Sample]:
    """``n`` documents, the same number of each class (rounded up), labelled."""
    as_of = as_of or date(2026, 12, 1)
    per = -(-n // len(CLASSES))
    return [one(cls, i, seed, as_of).with_expected() for cls in CLASSES for i in range(per)]


def main(argv: list[str] | None = None) -> int:
    """``passport NAME [EXPIRY]`` (PNG) or ``bill NAME [DATE]`` (PDF) on standard output."""
    import argparse
    import sys

    parser = argparse.ArgumentParser(description="Write a generated document to stdout.")
    parser.add_argument("what", choices=["passport", "bill"])
    parser.add_argument("name", help='the holder, e.g. "Ada Lovelace"')
    parser.add_argument("day", nargs="?", help="expiry (passport) or statement date (bill)")
    args = parser.parse_args(argv)
    given, _, surname = args.name.partition(" ")
    if args.what == "passport":
        holder = replace(ADA, given=given, surname=surname or given)
        expires = date.fromisoformat(args.day) if args.day else date.today() + timedelta(days=3000)
        data = passport_image(holder, expires)
    else:
        issued = date.fromisoformat(args.day) if args.day else date.today() - timedelta(days=10)
        data = proof_of_address_pdf(args.name, issued)
    sys.stdout.buffer.write(data)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
