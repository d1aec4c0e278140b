"""Encoded images: decode to uint8 RGB tensors, and cheap checks that a file is whole."""

from __future__ import annotations

import re
import warnings

import torch
from torchvision.io import ImageReadMode, decode_image

from rsearch.errors import UserError

EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".gif")
_TAIL = 1024  # bytes at the end of a file searched for its format's end marker
# torchvision 0.29 deprecates its image codecs for TorchCodec (a video library built on FFmpeg);
# they are still the CPU JPEG/PNG decoders at hand, so use them without a warning per image.
_CODEC_DEPRECATION = "The image decoding and encoding capabilities of TorchVision are deprecated"


def decode_rgb(data: bytes | bytearray | memoryview, where: str) -> torch.Tensor:
    """Encoded bytes -> uint8 (3, H, W); grey and RGBA become RGB.  `where` names the image
    in the error a bad one raises."""
    if len(data) == 0:
        raise UserError(f"image {where}: empty file")
    try:
        buffer = torch.frombuffer(bytearray(data), dtype=torch.uint8)
        with warnings.catch_warnings():
            warnings.filterwarnings(
                "ignore", message=_CODEC_DEPRECATION, category=DeprecationWarning
            )
            return decode_image(buffer, mode=ImageReadMode.RGB)
    except RuntimeError as exc:
        reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else "decode failed"
        reason = re.sub(r"^.*?\.cpp:\d+,\s*", "", reason)  # drop torchvision's C++ source location
        raise UserError(
            f"image {where}: cannot decode it (unreadable or truncated): {reason}"
        ) from None


def read_file(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as exc:
        raise UserError(f"image {path}: cannot read it: {exc.strerror or exc}") from None


def looks_whole(head: bytes, tail: bytes, size: int) -> str | None:
    """None if the first/last bytes look like a complete JPEG/PNG/GIF/WebP file, else why not.

    JPEG ends with the EOI marker FF D9 (never inside entropy-coded data, where FF is
    byte-stuffed); PNG with its IEND chunk; GIF with 0x3B; WebP's RIFF header states its size.
    """
    if size == 0:
        return "empty file"
    if head.startswith(b"\xff\xd8\xff"):
        return None if b"\xff\xd9" in tail else "JPEG without its end marker (truncated?)"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return None if b"IEND" in tail else "PNG without its IEND chunk (truncated?)"
    if head.startswith(b"GIF8"):
        return (
            None if tail.rstrip(b"\x00").endswith(b";") else "GIF without its trailer (truncated?)"
        )
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        declared = int.from_bytes(head[4:8], "little") + 8
        return (
            None
            if size >= declared
            else f"WebP of {size} bytes, header says {declared} (truncated?)"
        )
    return "not a JPEG, PNG, GIF or WebP file"


def check_file(path: str) -> None:
    """Raise a UserError naming `path` unless its header and end marker look complete."""
    try:
        with open(path, "rb") as f:
            head = f.read(16)
            f.seek(0, 2)
            size = f.tell()
            f.seek(max(0, size - _TAIL))
            tail = f.read()
    except OSError as exc:
        raise UserError(f"image {path}: cannot read it: {exc.strerror or exc}") from None
    problem = looks_whole(head, tail, size)
    if problem:
        raise UserError(f"image {path}: {problem}")
