"""Cleaning an uploaded wound photograph: detect its type from its bytes, check the limits, re-encode it.

Nothing uploaded is ever stored as it came. The bytes are decoded by Pillow with only the decoder that the
content's signature names, and a new file is written from the decoded pixels alone:
- EXIF (GPS location, camera serial, the time), XMP, IPTC, ICC profiles and comments are dropped;
- a polyglot (a JPEG that is also a ZIP, HTML or PDF) keeps only its pixels;
- the EXIF orientation is applied to the pixels first (ImageOps.exif_transpose), so the photo stays upright.
A thumbnail is made from the same pixels. Pure code: no database, no storage (docs/security.md, "Wound
photographs").
"""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass
from pathlib import PurePosixPath

from PIL import Image, ImageOps, UnidentifiedImageError

from pathways.errors import InvalidInput, TooLarge, UnsupportedMediaType

JPEG = "image/jpeg"
PNG = "image/png"
HEIF = "image/heif"

# What a file's name may end with for each detected type: a name that says another type is refused (a PNG
# named .jpg is a mistake or a disguise; either way the uploader should know).
EXTENSIONS: dict[str, frozenset[str]] = {
    JPEG: frozenset({".jpg", ".jpeg", ".jpe", ".jfif"}),
    PNG: frozenset({".png"}),
    HEIF: frozenset({".heic", ".heif", ".hif"}),
}
# The one Pillow decoder each detected type may use: never let Pillow guess from the content.
_PILLOW_FORMATS: dict[str, tuple[str, ...]] = {JPEG: ("JPEG",), PNG: ("PNG",), HEIF: ("HEIF", "HEIC")}
# ISO base media file brands of HEIF stills (ISO/IEC 23008-12).
_HEIF_BRANDS = frozenset({b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1"})
JPEG_QUALITY = 88
THUMBNAIL_QUALITY = 80


@dataclass(frozen=True)
class ImageLimits:
    """Upload limits: bytes of the file as sent, pixels (width x height) of the decoded image, the longest
    edge kept in storage (larger images are scaled down) and the thumbnail's longest edge, all in pixels."""

    max_bytes: int
    max_pixels: int
    max_edge: int
    thumbnail_edge: int


@dataclass(frozen=True)
class CleanImage:
    """A re-encoded photograph and its thumbnail: bytes, MIME types, pixel size, SHA-256 of the image."""

    detected_type: str
    content_type: str
    data: bytes
    width: int
    height: int
    sha256: str
    thumbnail: bytes
    thumbnail_type: str

    @property
    def extension(self) -> str:
        return ".png" if self.content_type == PNG else ".jpg"


def detect_type(head: bytes) -> str | None:
    """The image type that a file's first bytes announce (JPEG, PNG, HEIF), else None."""
    if head.startswith(b"\xff\xd8\xff"):
        return JPEG
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if len(head) >= 12 and head[4:8] == b"ftyp" and head[8:12] in _HEIF_BRANDS:
        return HEIF
    return None


def pillow_reads(content_type: str) -> bool:
    """Whether this Pillow has a decoder for `content_type` (HEIF needs a plugin Carepath does not ship)."""
    Image.init()
    return any(name in Image.OPEN for name in _PILLOW_FORMATS[content_type])


def _refuse_name_mismatch(filename: str, detected: str) -> None:
    suffix = PurePosixPath(filename.replace("\\", "/")).suffix.lower()
    if suffix and suffix not in EXTENSIONS[detected]:
        kind = detected.split("/")[1].upper()
        raise UnsupportedMediaType(
            f"the file is named {suffix} but its content is {kind}; rename it or export it again",
            fields={"image": [f"content is {kind}, name says {suffix}"]},
        )


def image_clean(data: bytes, *, filename: str, limits: ImageLimits) -> CleanImage:
    """Check and re-encode an uploaded photograph (the whole file in `data`, as sent).

    Raises InvalidInput (400: empty, undecodable), UnsupportedMediaType (415: not JPEG/PNG by content, HEIF
    without a decoder, a name that says another type) or TooLarge (413: over `limits.max_bytes` or
    `limits.max_pixels`). JPEG and HEIF come back as JPEG, PNG as PNG; the thumbnail is always JPEG.
    """
    if not data:
        raise InvalidInput("the file is empty", fields={"image": ["empty file"]})
    if len(data) > limits.max_bytes:
        raise TooLarge(
            f"the file is larger than the {limits.max_bytes / 2**20:g} MB limit; send a smaller photograph "
            "(a phone's 'large' or 'medium' size)",
            fields={"image": [f"at most {limits.max_bytes / 2**20:g} MB"]},
        )
    detected = detect_type(data[:32])
    if detected is None:
        raise UnsupportedMediaType(
            "only JPEG and PNG photographs are accepted (the type is read from the content, not the name)",
            fields={"image": ["not a JPEG or PNG image"]},
        )
    _refuse_name_mismatch(filename, detected)
    if not pillow_reads(detected):
        raise UnsupportedMediaType(
            "HEIC/HEIF cannot be read on this server; export the photo as JPEG",
            fields={"image": ["HEIC/HEIF is not readable here"]},
        )
    image = _decode(data, detected, limits)
    content_type = PNG if detected == PNG else JPEG
    try:
        image = ImageOps.exif_transpose(image) or image
        if max(image.size) > limits.max_edge:
            image.thumbnail((limits.max_edge, limits.max_edge), Image.Resampling.LANCZOS)
        out = io.BytesIO()
        if content_type == PNG:
            if image.mode not in ("RGB", "RGBA", "L", "LA"):
                image = image.convert("RGBA" if "A" in image.getbands() or "transparency" in image.info else "RGB")
            # A fresh PNG from pixels: no text chunks, no ICC, no EXIF (Pillow writes only what it is given).
            image.save(out, format="PNG", optimize=False)
        else:
            image = image.convert("RGB") if image.mode != "RGB" else image
            image.save(out, format="JPEG", quality=JPEG_QUALITY, optimize=False)
        thumbnail = _thumbnail(image, limits.thumbnail_edge)
    except (OSError, ValueError, SyntaxError) as exc:
        # A pixel format or an EXIF block Pillow cannot convert: the upload's fault, never a server error.
        raise InvalidInput(
            "the image could not be converted (unusual pixel format or damaged metadata)",
            fields={"image": ["cannot be converted"]},
        ) from exc
    encoded = out.getvalue()
    return CleanImage(
        detected_type=detected,
        content_type=content_type,
        data=encoded,
        width=image.width,
        height=image.height,
        sha256=hashlib.sha256(encoded).hexdigest(),
        thumbnail=thumbnail,
        thumbnail_type=JPEG,
    )


def _decode(data: bytes, detected: str, limits: ImageLimits) -> Image.Image:
    """Decode with the one decoder `detected` names, after checking the pixel count from the header alone."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=list(_PILLOW_FORMATS[detected]))
            width, height = image.size
            if width * height > limits.max_pixels:
                raise TooLarge(
                    f"the image is {width} x {height} pixels; the limit is {limits.max_pixels} pixels",
                    fields={"image": [f"at most {limits.max_pixels} pixels"]},
                )
            if detected == JPEG:
                # Decode at reduced scale straight away when the stored copy will be smaller anyway.
                image.draft("RGB", (limits.max_edge, limits.max_edge))
            image.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise TooLarge(
            f"the image has too many pixels (limit {limits.max_pixels})",
            fields={"image": [f"at most {limits.max_pixels} pixels"]},
        ) from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise InvalidInput(
            "the image could not be decoded (truncated or damaged)", fields={"image": ["cannot be decoded"]}
        ) from exc
    return image


def _thumbnail(image: Image.Image, edge: int) -> bytes:
    small = image.copy()
    small.thumbnail((edge, edge), Image.Resampling.LANCZOS)
    if small.mode in ("RGBA", "LA"):
        background = Image.new("RGB", small.size, (255, 255, 255))
        background.paste(small, mask=small.getchannel("A"))
        small = background
    elif small.mode != "RGB":
        small = small.convert("RGB")
    out = io.BytesIO()
    small.save(out, format="JPEG", quality=THUMBNAIL_QUALITY)
    return out.getvalue()
