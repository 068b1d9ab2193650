"""SHA-256 manifests of a model's files: what was registered is what gets loaded.

A manifest maps every file below a model folder (POSIX relative path) to its SHA-256. Its own
digest (over the canonical JSON) identifies the whole version in one string.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from aiw.errors import InvalidInputError

__all__ = ["ManifestCheck", "check_manifest", "manifest_digest", "manifest_of", "sha256_file"]

_CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    """The SHA-256 of one file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def manifest_of(folder: Path) -> dict[str, str]:
    """{relative POSIX path: SHA-256} of every regular file below ``folder``, sorted by path.

    Raises:
        InvalidInputError: ``folder`` is not a folder, holds no file, or holds a symbolic link
            (a link could point the loader at a file outside the checked set).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise InvalidInputError(f"The model folder {folder} does not exist")
    out: dict[str, str] = {}
    for path in sorted(folder.rglob("*")):
        if path.is_symlink():
            raise InvalidInputError(
                f"The model folder holds a symbolic link: {path.relative_to(folder)}",
                hint="copy the file in instead of linking it",
            )
        if path.is_file():
            out[path.relative_to(folder).as_posix()] = sha256_file(path)
    if not out:
        raise InvalidInputError(f"The model folder {folder} holds no files")
    return out


def manifest_digest(manifest: dict[str, str]) -> str:
    """The SHA-256 of a manifest's canonical JSON."""
    canonical = json.dumps(manifest, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class ManifestCheck:
    """How a folder compares with its registered manifest."""

    changed: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether every registered file is there, unchanged, and nothing was added."""
        return not (self.changed or self.missing or self.added)

    def describe(self) -> str:
        """One line naming what differs."""
        parts = []
        for label, names in (("changed", self.changed), ("missing", self.missing), ("added", self.added)):
            if names:
                parts.append(f"{label}: {', '.join(names[:5])}{' ...' if len(names) > 5 else ''}")
        return "; ".join(parts) or "all files match"


def check_manifest(folder: Path, manifest: dict[str, str]) -> ManifestCheck:
    """Compare the files below ``folder`` with ``manifest`` (every file is re-hashed)."""
    folder = Path(folder)
    try:
        current = manifest_of(folder)
    except InvalidInputError:
        return ManifestCheck(missing=sorted(manifest))
    changed = sorted(p for p, digest in manifest.items() if p in current and current[p] != digest)
    missing = sorted(p for p in manifest if p not in current)
    added = sorted(p for p in current if p not in manifest)
    return ManifestCheck(changed, missing, added)
