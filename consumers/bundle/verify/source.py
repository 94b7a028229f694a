"""The files of a bundle, read alike from a directory or a zip file."""

from __future__ import annotations

import zipfile
from pathlib import Path, PurePosixPath
from typing import IO, Any

from aigc_audit.consumers.bundle.format import records as fmt
from aigc_audit.consumers.bundle.verify.result import BundleError

BUNDLE_FILES = (
    fmt.MANIFEST,
    fmt.MANIFEST_SIG,
    fmt.BATCHES_FILE,
    fmt.CHECKPOINTS_FILE,
    fmt.KEYS_FILE,
)


class Unreadable(Exception):
    pass


MAX_DOCUMENT_BYTES = 256 << 20
"""The most one JSON document of a bundle (manifest, signature, keys, checkpoints, batches) may
hold. Each is read whole into memory, so a bigger one is refused before a byte of it is read:
a zip bomb (a member a few kilobytes long that inflates to gigabytes) declares its size in
the zip's directory, and zipfile never inflates a member past the size it declares. The
exporter writes these documents at a few hundred bytes per batch, key or checkpoint."""


class BundleSource:
    """The files of a bundle, by their posix path inside it."""

    label: str
    damage: str | None = None
    duplicates: tuple[str, ...] = ()
    ignored: list[str]
    """Files a file manager left (``.DS_Store``...): named in check 2, otherwise ignored."""

    def names(self) -> list[str]:
        raise NotImplementedError

    def open(self, name: str) -> IO[bytes]:
        raise NotImplementedError

    def schemas_root(self) -> Any:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def has(self, name: str) -> bool:
        return name in self._name_set

    @property
    def _name_set(self) -> set[str]:
        cached = getattr(self, "_names_cache", None)
        if cached is None:
            cached = set(self.names())
            self._names_cache = cached
        return cached

    def path(self, name: str) -> Path | None:
        """The file's own path, when it is a file of its own (a directory bundle's)."""
        return None

    def open_at(self, name: str, offset: int) -> IO[bytes]:
        """The file, opened and positioned at byte ``offset``."""
        fh = self.open(name)
        try:
            if offset:
                fh.seek(offset)
        except BaseException:
            fh.close()
            raise
        return fh

    def size(self, name: str) -> int:
        """The size of a file of the bundle, as its file system or zip directory says."""
        raise NotImplementedError

    def read(self, name: str) -> bytes:
        """A whole (JSON) document of the bundle, at most MAX_DOCUMENT_BYTES."""
        if not self.has(name):
            raise Unreadable(f"{name} is missing")
        try:
            size = self.size(name)
            if size > MAX_DOCUMENT_BYTES:
                raise Unreadable(
                    f"{name} is {size:,} bytes, more than the {MAX_DOCUMENT_BYTES:,} a bundle "
                    "document may hold"
                )
            with self.open(name) as fh:
                data = fh.read(MAX_DOCUMENT_BYTES + 1)  # a file growing as we read, too
        except Unreadable:
            raise
        except Exception as exc:  # zipfile raises assorted errors for damaged members
            raise Unreadable(f"{name} cannot be read ({reason_of(exc)})") from None
        if len(data) > MAX_DOCUMENT_BYTES:
            raise Unreadable(f"{name} is more than the {MAX_DOCUMENT_BYTES:,} bytes it may hold")
        return data


OS_METADATA = frozenset({".DS_Store", "Thumbs.db", "desktop.ini"})


def os_metadata(name: str) -> bool:
    """Files a file manager leaves in a folder it shows (never part of a bundle)."""
    path = PurePosixPath(name)
    return path.name in OS_METADATA or path.parts[0] == "__MACOSX" or path.name.startswith("._")


def reason_of(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


class DirectorySource(BundleSource):
    def __init__(self, root: Path) -> None:
        self.root = root
        self.label = str(root)
        names = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
        self._names = [n for n in names if not os_metadata(n)]
        self.ignored = [n for n in names if os_metadata(n)]

    def names(self) -> list[str]:
        return self._names

    def open(self, name: str) -> IO[bytes]:
        return (self.root / name).open("rb")

    def size(self, name: str) -> int:
        return (self.root / name).stat().st_size

    def path(self, name: str) -> Path | None:
        return self.root / name

    def schemas_root(self) -> Any:
        return self.root / fmt.SCHEMAS_DIR


class ZipSource(BundleSource):
    def __init__(self, path: Path) -> None:
        self.label = str(path)
        self._zip: zipfile.ZipFile | None = None
        self._names: list[str] = []
        self.ignored = []
        try:
            self._zip = zipfile.ZipFile(path)
            infos = [i for i in self._zip.infolist() if not i.is_dir()]
        except Exception as exc:  # BadZipFile, or a damaged directory's assorted errors
            self.damage = f"the zip file is damaged ({reason_of(exc)})"
            return
        names = [i.filename for i in infos]
        seen: set[str] = set()
        repeated: set[str] = set()
        for n in names:
            if n in seen:
                repeated.add(n)
            seen.add(n)
        self.duplicates = tuple(sorted(repeated))
        self._names = sorted(n for n in set(names) if not os_metadata(n))
        self.ignored = sorted(n for n in set(names) if os_metadata(n))

    def names(self) -> list[str]:
        return self._names

    def open(self, name: str) -> IO[bytes]:
        assert self._zip is not None
        return self._zip.open(name)

    def size(self, name: str) -> int:
        assert self._zip is not None
        return self._zip.getinfo(name).file_size

    def schemas_root(self) -> Any:
        assert self._zip is not None
        return zipfile.Path(self._zip, f"{fmt.SCHEMAS_DIR}/")

    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()


def open_source(path: Path) -> BundleSource:
    if not path.exists():
        raise BundleError(f"{path} does not exist")
    if path.is_dir():
        source: BundleSource = DirectorySource(path)
    elif zipfile.is_zipfile(path):
        source = ZipSource(path)
    else:
        raise BundleError(f"{path} is not an export bundle: neither a directory nor a zip file")
    if source.damage is None and not any(
        n in BUNDLE_FILES or n.startswith(f"{fmt.EVENTS_DIR}/") for n in source.names()
    ):
        source.close()
        raise BundleError(f"{path} is not an export bundle: it holds no {fmt.MANIFEST}")
    return source
