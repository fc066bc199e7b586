"""Text from an image, with rapidocr-onnxruntime.

Why this engine: its detection and recognition models (PP-OCRv4, ONNX) ship inside the wheel,
so a worker reads text with no system package, no network and no GPU. Tesseract with
PassportEye is the alternative where tesseract is installed; ``OcrEngine`` is the seam.

The engine is loaded once per worker process, lazily (most activities never need it), and
calls are serialised: ONNX Runtime already uses the cores for one image, and two images at
once would only double the memory. Callers run ``read`` in a thread (``reader``), never on
the event loop.

Images are opened header-first, so a file claiming 50,000 x 50,000 pixels is refused before
anything is decoded; the EXIF orientation is applied, and large scans are scaled down first.
A page photographed sideways or upside down is tried again turned, until the caller's
``good_enough`` says the text is what it was looking for (an MRZ, say).
"""

from __future__ import annotations

import io
import threading
import time
import warnings
from collections.abc import Callable
from typing import Any, Protocol

from PIL import Image, ImageOps

from integrations.documents.common import ReadLimits, TextLine, Unreadable

ROTATIONS = (0, 180, 90, 270)  # upright first; upside down is the commoner mistake
TEXT_ROTATIONS = (0, 180)  # a letter photographed sideways is rare; each turn costs a read
MIN_BOX_SIDE = 10  # pixels (after scaling): smaller boxes are specks, not letters
MAX_BOXES = 150  # a utility bill has a few dozen lines
MIN_TEXT_SCORE = 0.5  # rapidocr's own default


class OcrEngine(Protocol):
    def read(self, image: Image.Image, *, long_lines_only: bool = False) -> list[TextLine]:
        """The text lines of ``image``, top to bottom; with ``long_lines_only``, only lines
        shaped like an MRZ line are recognised (when there are at least two of them)."""
        ...


LONG_LINE_RATIO = 12.0  # an MRZ line is 30-44 characters on one line: long and thin
LONG_LINE_SHARE = 0.3  # and it spans a good part of the page


class RapidOcr:
    """rapidocr-onnxruntime, created on first use and shared by every thread of the process."""

    def __init__(self) -> None:
        self._engine: Any = None
        self._lock = threading.Lock()

    def _loaded(self) -> Any:
        if self._engine is None:
            from rapidocr_onnxruntime import RapidOCR

            # no angle classifier: whole-page rotations are tried by ``read_image`` instead.
            # One ONNX thread: calls are serialised anyway, and ONNX Runtime's extra threads
            # spin while they wait, which doubles the CPU a read costs on a busy worker.
            self._engine = RapidOCR(
                use_cls=False,
                print_verbose=False,
                intra_op_num_threads=1,
                inter_op_num_threads=1,
            )
        return self._engine

    def read(self, image: Image.Image, *, long_lines_only: bool = False) -> list[TextLine]:
        import numpy as np

        pixels = np.asarray(image.convert("RGB"))[:, :, ::-1]  # the models were trained on BGR
        with self._lock:
            engine = self._loaded()
            if not hasattr(engine, "text_rec"):  # another rapidocr version: its own pipeline
                result, _elapsed = engine(pixels)
                return [TextLine(str(t), float(s)) for _box, t, s in result or []]
            if long_lines_only:
                return self._long_lines(engine, pixels)
            return self._all_lines(engine, pixels)

    @staticmethod
    def _all_lines(engine: Any, pixels: Any) -> list[TextLine]:
        """Every text box big enough to hold a letter (specks of a noisy scan are skipped:
        each costs the recogniser as much as a line), at most ``MAX_BOXES`` of them."""
        img, _rh, _rw = engine.preprocess(pixels)
        img, _record = engine.maybe_add_letterbox(img, {})
        boxes, _elapsed = engine.auto_text_det(img)
        if boxes is None:
            return []
        kept = [b for b in boxes if min(_sides(b)) >= MIN_BOX_SIDE][:MAX_BOXES]
        if not kept:
            return []
        recognised, _elapsed = engine.text_rec(engine.get_crop_img_list(img, kept), False)
        return [
            TextLine(str(text), float(score))
            for text, score in recognised
            if str(text).strip() and float(score) >= MIN_TEXT_SCORE
        ]

    @staticmethod
    def _long_lines(engine: Any, pixels: Any) -> list[TextLine]:
        """Detect every text box, recognise only the long thin ones (an MRZ's lines): the
        recogniser is most of the cost, and a data page has a dozen other boxes. The steps
        are rapidocr's own (``RapidOCR.__call__`` without the boxes we do not need)."""
        img, _rh, _rw = engine.preprocess(pixels)
        img, _record = engine.maybe_add_letterbox(img, {})
        boxes, _elapsed = engine.auto_text_det(img)
        if boxes is None:
            return []
        chosen = [b for b in boxes if _is_long(b, max(img.shape[:2]))]
        tilt = _tilt(chosen)
        if MIN_DESKEW <= abs(tilt) <= MAX_DESKEW:
            # a skewed photo: the recogniser drops letters of a slanted line even from a
            # rotated crop, so the page is turned level and its boxes found again
            img = _turned(img, tilt)
            boxes, _elapsed = engine.auto_text_det(img)
            if boxes is None:
                return []
            chosen = [b for b in boxes if _is_long(b, max(img.shape[:2]))]
        if len(chosen) < 2:
            return []  # no two MRZ-shaped lines: turning the page will not make any
        crops = engine.get_crop_img_list(img, chosen)
        readings: list[list[tuple[float, str]]] = [[] for _ in crops]
        for scale in MRZ_SQUEEZE:
            squeezed = [_squeezed(c, scale) for c in crops]
            recognised, _elapsed = engine.text_rec(squeezed, False)
            for i, (text, score) in enumerate(recognised):
                readings[i].append((float(score), str(text)))
        lines = []
        for found in readings:
            found.sort(reverse=True)
            texts = list(dict.fromkeys(text for _score, text in found))
            lines.append(TextLine(texts[0], found[0][0], tuple(texts[1:])))
        return lines


MRZ_SQUEEZE = (0.8, 1.0)
"""Widths at which each MRZ line is recognised (the surer reading first, the other kept as
an alternative). OCR-B's wide, even spacing makes the recogniser drop letters after ``<<``
(``NOOR`` read as ``R``); squeezed to 80% the line reads like ordinary text."""
MIN_DESKEW = 1.0  # degrees of tilt below which a page is read as it is
MAX_DESKEW = 30.0  # beyond this it is a page on its side, which the turns handle


def _sides(box: Any) -> tuple[float, float]:
    import numpy as np

    a = float(max(np.linalg.norm(box[0] - box[1]), np.linalg.norm(box[2] - box[3])))
    b = float(max(np.linalg.norm(box[0] - box[3]), np.linalg.norm(box[1] - box[2])))
    return a, b


def _is_long(box: Any, longest: int) -> bool:
    a, b = _sides(box)
    long_side, short_side = max(a, b), max(min(a, b), 1.0)
    return long_side / short_side >= LONG_LINE_RATIO and long_side >= LONG_LINE_SHARE * longest


def _squeezed(crop: Any, scale: float) -> Any:
    if scale == 1.0:
        return crop
    import cv2

    height, width = crop.shape[:2]
    return cv2.resize(crop, (max(1, int(width * scale)), height), interpolation=cv2.INTER_AREA)


def _tilt(boxes: list[Any]) -> float:
    """The median slope of the long lines, in degrees (positive: falling to the right)."""
    import math
    import statistics

    angles = []
    for box in boxes:
        a, b = _sides(box)
        if a >= b:  # a line across the page (sideways pages are left to the turns)
            dx, dy = float(box[1][0] - box[0][0]), float(box[1][1] - box[0][1])
            angles.append(math.degrees(math.atan2(dy, dx)))
    return statistics.median(angles) if angles else 0.0


def _turned(img: Any, degrees: float) -> Any:
    """``img`` (a numpy image) turned counter-clockwise by ``degrees``, nothing cut off."""
    import cv2

    h, w = img.shape[:2]
    matrix = cv2.getRotationMatrix2D((w / 2, h / 2), degrees, 1.0)
    cos, sin = abs(matrix[0, 0]), abs(matrix[0, 1])
    new_w, new_h = int(h * sin + w * cos), int(h * cos + w * sin)
    matrix[0, 2] += new_w / 2 - w / 2
    matrix[1, 2] += new_h / 2 - h / 2
    return cv2.warpAffine(
        img, matrix, (new_w, new_h), flags=cv2.INTER_CUBIC, borderValue=(255, 255, 255)
    )


_shared: RapidOcr | None = None
_shared_lock = threading.Lock()


def shared_engine() -> OcrEngine:
    """The process's one OCR engine (its models load on the first ``read``)."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = RapidOcr()
        return _shared


def _too_many(width: int, height: int, limits: ReadLimits) -> str:
    return f"the image is {width} x {height} pixels; at most {limits.max_pixels:,} are read"


def open_image(data: bytes, limits: ReadLimits) -> Image.Image:
    """Decode an image within the pixel cap: upright (EXIF), RGB, at most ``ocr_max_side``."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            width, height = image.size
            if width * height > limits.max_pixels:
                raise Unreadable("too_many_pixels", _too_many(width, height, limits))
            image.load()
    except Unreadable:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise Unreadable(
            "too_many_pixels", "the image is larger than Pillow will decode safely"
        ) from None
    except (OSError, ValueError, SyntaxError, Warning) as exc:
        raise Unreadable(
            "broken_file", f"the image cannot be decoded ({type(exc).__name__})"
        ) from None
    return prepare(image, limits)


def prepare(image: Image.Image, limits: ReadLimits) -> Image.Image:
    """Upright, RGB and no larger than the OCR needs."""
    width, height = image.size
    if width * height > limits.max_pixels:
        raise Unreadable("too_many_pixels", _too_many(width, height, limits))
    if width < 16 or height < 16:
        raise Unreadable("too_small", f"the image is only {width} x {height} pixels")
    image = ImageOps.exif_transpose(image) or image
    image = image.convert("RGB")
    longest = max(image.size)
    if longest > limits.ocr_max_side:
        scale = limits.ocr_max_side / longest
        image = image.resize(
            (max(1, round(image.width * scale)), max(1, round(image.height * scale))),
            Image.Resampling.LANCZOS,
        )
    return image


def read_image(
    image: Image.Image,
    engine: OcrEngine,
    *,
    judge: Callable[[list[TextLine]], int],
    deadline: float,
    long_lines_only: bool = False,
    rotations: tuple[int, ...] = ROTATIONS,
) -> list[TextLine]:
    """OCR ``image`` upright, then turned, until ``judge`` gives ``DONE``; else the turn it
    rated best (then the one with most text). Stops turning once ``deadline``
    (``time.monotonic``) has passed."""
    best: list[TextLine] = []
    best_rank = (-1, 0)
    for angle in rotations:
        if angle and time.monotonic() > deadline:
            break
        turned = image if angle == 0 else image.rotate(angle, expand=True)
        lines = engine.read(turned, long_lines_only=long_lines_only)
        if long_lines_only and not lines:
            break  # no long lines at all: a box's shape does not change when the page turns
        grade = judge(lines)
        if grade >= DONE:
            return lines
        rank = (grade, sum(len(x.text) for x in lines))
        if rank > best_rank:
            best, best_rank = lines, rank
    return best


NOTHING, USABLE, DONE = 0, 1, 2
"""What ``judge`` says of one turn's text: nothing found, something (keep turning), done."""
