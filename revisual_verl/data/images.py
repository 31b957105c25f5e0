"""Images from untrusted rows: read a file only inside the allowed folders, and decode within a pixel bound.

Both the converter and :class:`~revisual_verl.data.mixed_dataset.MixedModalRLDataset` use these checks, so an
image either passes both or is refused by both, for the same reason.

* :func:`read_image_file` resolves a row's ``path`` (symlinks included) and reads it only when it lands inside one
  of the allowed roots, and only when it is a regular file of bounded size: a path such as ``../../etc/passwd``,
  an absolute path or a symlink pointing out of the data is never opened, and a FIFO or device is never read.
* :func:`check_image_bytes` reads the header first and refuses an image over :data:`MAX_IMAGE_PIXELS` before any
  pixel is decoded (a decompression bomb costs nothing), then decodes it fully and converts it to RGB, as the
  rollout's image loader does, and refuses an aspect ratio Qwen-VL's resizer refuses.
"""

from __future__ import annotations

import io
import os
import stat
import warnings
from pathlib import Path

from PIL import Image

# PIL's own default bound (its DecompressionBombWarning threshold): ~89.5 million pixels, at most ~360 MB decoded.
# Fixed here rather than read from PIL, so a process that lifted PIL's limit still gets a bounded check.
MAX_IMAGE_PIXELS = 89_478_485
# qwen_vl_utils refuses images whose sides differ by more than this factor, which would fail a rollout.
MAX_IMAGE_ASPECT_RATIO = 200
# An image file larger than this is not read (a row's bytes are bounded by its file format's own limits).
MAX_IMAGE_FILE_BYTES = 256 << 20


class ImageProblem(Exception):
    """An image that cannot be used; the message says why, without quoting the image."""


class ImageOutsideRoots(ImageProblem):
    """An image path that resolves outside every allowed folder; the file was not opened."""


def resolve_within(path_text: str, base_dir: Path, roots: tuple[Path, ...]) -> Path:
    """The real path ``path_text`` names (relative to ``base_dir``), if it lies inside one of ``roots``."""
    try:
        candidate = Path(path_text)
        if not candidate.is_absolute():
            candidate = base_dir / candidate
        resolved = candidate.resolve()
        real_roots = [Path(root).resolve() for root in roots]
    except (OSError, RuntimeError, ValueError) as error:  # a symlink loop, a NUL byte, a name too long
        raise ImageProblem(f"its path cannot be resolved ({type(error).__name__}: {error})") from None
    if not any(resolved == root or resolved.is_relative_to(root) for root in real_roots):
        raise ImageOutsideRoots("its path resolves outside the data folder (and any --allow-image-root)")
    return resolved


def read_regular_file(path: Path, max_bytes: int = MAX_IMAGE_FILE_BYTES) -> bytes:
    """The bytes of ``path`` if it is a regular file of at most ``max_bytes``; never blocks on a FIFO or device."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        descriptor = os.open(path, flags)
    except FileNotFoundError:
        raise ImageProblem("its path is not a local file") from None
    except OSError as error:
        raise ImageProblem(f"its path cannot be opened ({error.strerror or type(error).__name__})") from None
    with os.fdopen(descriptor, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise ImageProblem("its path is not a regular file")
        if info.st_size > max_bytes:
            raise ImageProblem(f"its file is {info.st_size} bytes, over the limit of {max_bytes}")
        data = handle.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise ImageProblem(f"its file grew past the limit of {max_bytes} bytes while read")
    return data


def read_image_file(path_text: str, base_dir: Path, roots: tuple[Path, ...]) -> bytes:
    """The bytes of the image file a row names, read only from inside ``roots``."""
    return read_regular_file(resolve_within(path_text, base_dir, roots))


def check_image_bytes(data: bytes) -> tuple[int, int]:
    """``(width, height)`` of an image the rollout can decode; raises :class:`ImageProblem` otherwise."""
    try:
        with warnings.catch_warnings():
            # The bound is checked below from the header; PIL's own warning would only repeat it.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                width, height = image.size
                if width < 1 or height < 1:
                    raise ImageProblem(f"it is {width}x{height}")
                if width * height > MAX_IMAGE_PIXELS:
                    raise ImageProblem(
                        f"it is {width}x{height} = {width * height} pixels, over the bound of {MAX_IMAGE_PIXELS} "
                        "(a decompression bomb, or far larger than a training image); not decoded"
                    )
                if max(width, height) / min(width, height) > MAX_IMAGE_ASPECT_RATIO:
                    raise ImageProblem(f"it is {width}x{height}, beyond the aspect ratio Qwen-VL accepts")
                # What the rollout's loader does: decode every pixel and convert to RGB.
                image.convert("RGB").close()
    except ImageProblem:
        raise
    except Image.DecompressionBombError as error:
        raise ImageProblem(f"{error}; not decoded") from None
    except Exception as error:  # noqa: BLE001  PIL raises many types for bad data; each means the same here
        raise ImageProblem(f"it does not decode ({type(error).__name__}: {error})") from None
    return width, height
