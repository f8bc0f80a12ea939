"""The two jobs behind the CLI: regenerate a fixture, and check one against a regeneration.

`check` regenerates into a scratch folder under the system's temporary folder. It is removed
on every exit the process lives through (an error, Ctrl-C, and SIGTERM or SIGHUP, which
`cache_builder.cli` turns into an exception); a folder a SIGKILL left behind carries the dead
process's id in its name and is removed by the next `check`.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

from model_bisect.errors import InputError, UsageError
from model_bisect.files import file_sha256

from .drift import DriftReport, compare_trees
from .fixture import Fixture, Origin, OriginKind
from .image_writers import image_artifacts, image_origin
from .images import IMAGE_SEEDS, ImageFixture, build_images
from .layout import MANIFEST_FILE
from .manifest import Manifest, read_manifest
from .source import build_from_source
from .synthetic import build_synthetic
from .writers import write_fixture, write_tree

__all__ = ["SCRATCH_PREFIX", "check", "regenerate", "regenerate_images"]

SCRATCH_PREFIX = "cache_builder-check-"


def regenerate(out: Path, source: Path | None = None, target_column: str | None = None) -> Manifest:
    """Write the fixture into ``out``: synthetic from seeds, or from a real source parquet."""
    fixture = build_synthetic() if source is None else build_from_source(source, target_column, out)
    return _write(fixture, out)


def regenerate_images(out: Path, seeds: Mapping[str, int] = IMAGE_SEEDS) -> Manifest:
    """Write the image fixture (tensor caches, CNN timelines) into ``out``."""
    return _write_images(build_images(seeds), out)


def check(out: Path, source: Path | None = None) -> DriftReport:
    """Regenerate the way ``out``'s MANIFEST.json says it was made, then compare the trees."""
    manifest = read_manifest(out)
    remade: Callable[[Path], Manifest]
    if manifest.origin.kind is OriginKind.IMAGES:
        if source is not None:
            raise UsageError(
                "--source-features does not apply to the image fixture",
                str(out / MANIFEST_FILE),
                "drop --source-features",
            )
        remade = functools.partial(_write_images, _remake_images(manifest.origin, out))
    else:
        remade = functools.partial(_write, _remake(manifest.origin, out, source))
    with _scratch() as scratch:
        fresh = scratch / "fixture"
        remade(fresh)
        return compare_trees(out, fresh)


@contextlib.contextmanager
def _scratch() -> Iterator[Path]:
    """A scratch folder named for this process, removed however the block is left.

    The clean-up removes every folder carrying this process's id rather than the one it was
    told about, so a signal that lands inside ``mkdtemp`` (after the folder exists, before
    its name is returned) leaves nothing behind either.
    """
    _sweep_abandoned()
    prefix = f"{SCRATCH_PREFIX}{os.getpid()}-"
    try:
        try:
            folder = Path(tempfile.mkdtemp(prefix=prefix))
        except OSError as exc:
            raise InputError(
                f"cannot create a scratch folder ({exc.strerror or exc.__class__.__name__})",
                tempfile.gettempdir(),
                "set TMPDIR to a writable folder with room for one fixture",
            ) from None
        yield folder
    finally:
        with contextlib.suppress(OSError):
            for mine in Path(tempfile.gettempdir()).glob(f"{prefix}*"):
                shutil.rmtree(mine, ignore_errors=True)


def _sweep_abandoned() -> None:
    """Remove scratch folders of ours whose process is gone (killed with SIGKILL, say)."""
    try:
        candidates = list(Path(tempfile.gettempdir()).glob(f"{SCRATCH_PREFIX}*-*"))
    except OSError:
        return
    for folder in candidates:
        pid_text = folder.name.removeprefix(SCRATCH_PREFIX).split("-", 1)[0]
        try:
            if not pid_text.isdigit() or folder.is_symlink() or not folder.is_dir():
                continue
            if folder.stat().st_uid != os.getuid() or _alive(int(pid_text)):
                continue
        except OSError:
            continue
        shutil.rmtree(folder, ignore_errors=True)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return True  # someone else's, or a number no process has: leave it alone
    return True


def _write(fixture: Fixture, out: Path) -> Manifest:
    return _writing(out, lambda: write_fixture(fixture, out))


def _write_images(fixture: ImageFixture, out: Path) -> Manifest:
    return _writing(out, lambda: write_tree(out, image_artifacts(fixture), image_origin(fixture)))


def _writing(out: Path, write: Callable[[], Manifest]) -> Manifest:
    try:
        return write()
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise InputError(
            f"cannot write the fixture ({reason})", str(out), "pass a writable --out DIR"
        ) from None


def _remake(origin: Origin, out: Path, source: Path | None) -> Fixture:
    if source is not None:
        return build_from_source(
            source, origin.target_column, out, _timeline_seed(origin, out), origin.models
        )
    if origin.kind is OriginKind.SYNTHETIC:
        try:
            return build_synthetic(origin.seeds, origin.rows, origin.models)
        except KeyError as exc:
            raise InputError(
                f"MANIFEST.json lacks the seed {exc}",
                str(out / MANIFEST_FILE),
                "regenerate with `invoke regenerate`",
            ) from None
    recorded = out / (origin.source_path or "")
    ask = "pass the source parquet with --source-features PARQUET"
    if not recorded.is_file():
        raise InputError(
            f"the fixture was made from {origin.source_path}, which is not at hand",
            str(out / MANIFEST_FILE),
            ask,
        )
    if file_sha256(recorded) != origin.source_sha256:
        raise InputError(
            f"the fixture was made from {origin.source_path}, which has changed since "
            f"(sha256 differs from the recorded {str(origin.source_sha256)[:12]}…)",
            str(out / MANIFEST_FILE),
            ask,
        )
    return build_from_source(
        recorded, origin.target_column, out, _timeline_seed(origin, out), origin.models
    )


def _remake_images(origin: Origin, out: Path) -> ImageFixture:
    try:
        return build_images({name: origin.seeds[name] for name in IMAGE_SEEDS})
    except KeyError as exc:
        raise InputError(
            f"MANIFEST.json lacks the seed {exc}",
            str(out / MANIFEST_FILE),
            "regenerate with `python -m cache_builder regenerate --kind images`",
        ) from None


def _timeline_seed(origin: Origin, out: Path) -> int:
    try:
        return origin.seeds["timeline"]
    except KeyError:
        raise InputError(
            "MANIFEST.json lacks the timeline seed",
            str(out / MANIFEST_FILE),
            "regenerate with `invoke regenerate`",
        ) from None
