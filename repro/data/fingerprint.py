"""Data fingerprints: the identity of the dataset files a reader actually reads (no torch).

``data_fingerprint(name, split, root)`` is a 16-hex-digit digest of the files the reader of
dataset ``name`` (``repro/data/<reader>.py``) opens for ``split`` under the data root, or
``None`` when the data is not on disk, or not in a state the reader accepts: the caller then
treats data freshness as unchecked. Editing, adding or removing a file the reader reads changes
it; any other file under the root does not. Paths enter relative to the dataset's folder, so
moving the data root keeps the fingerprint. Synthetic fixtures (``repro.data.fixtures``) are
identified by what wrote them, not by their bytes: the content of their ``SYNTHETIC_FIXTURE.json``
marker (the writer's version and arguments; whether it exists decides how CIFAR-10 is read), the
sha256 of the writer's source (``repro/data/fixtures.py``) and the path and size of every file the
reader reads. NOTE: a fixture's bytes are not the same on every CPU: it is drawn with numpy's
transcendental functions (cos, arctan2, hypot), whose SIMD kernels (AVX-512 vs AVX2) differ in
the last bit, which moves some pixels by one grey level; hashing the bytes made every record
computed on a fixture look stale on a machine with another CPU. A fixture edited by hand (same
sizes) is therefore not detected; a change of the writer is.

Two ways a file enters the digest:

- content (relative path, size, sha256 of the bytes): the few big files of array datasets
  (CIFAR batches and meta, STL-10 binaries, imagenet64 npz batches) and every small index or
  metadata file (VOC ``ImageSets/Main/*.txt`` and ``Annotations/*.xml``, Places205 csv lists,
  Tiny ImageNet ``wnids.txt`` and ``val_annotations.txt``, scikit-learn's ``digits.csv.gz``;
  Fashion-MNIST's IDX files, entered by file name wherever the reader's search finds them, so
  the same bytes under the data root or in Debian's system folder give the same digest);
- index (relative path and size, the file is not opened): the images of datasets made of very
  many image files (ImageNet and its class subsets, Places205, Tiny ImageNet, VOC JPEGImages).
  The classes of an ImageFolder tree (its class folders, or the wnids of a class list) enter
  the digest too, since they fix the labels.

What each reader reads is mirrored by the ``_<dataset>`` functions below (the readers import
torch, so they are not imported here; tests check the copied constants against them).

Cost: content hashes are memoised per process, and on disk for files of at least
``CACHE_MIN_BYTES`` in ``$REPRO_CACHE/file_hashes.json`` (default
``~/.cache/repro/file_hashes.json``), keyed by absolute path, size, mtime_ns, ctime_ns and
inode; a warm launch only stats the files. The cache is written atomically (temporary file and
``os.replace``); an unreadable or corrupt cache is ignored (and rebuilt), an unwritable location
means no disk cache. Index-mode datasets are rescanned on every call (one ``stat`` per image).

NOTE: the hash cache trusts a file whose size, mtime_ns, ctime_ns and inode are unchanged. A
normal edit changes mtime_ns and ctime_ns; restoring the mtime with ``os.utime`` still changes
ctime_ns (which no user call can set), so that is detected too. It is fooled only where the
file system does not maintain these (some FUSE or network mounts) or by a same-size rewrite in
the same timestamp tick as the hashing; hashes of files touched less than ``RACY_SECONDS`` ago
are therefore never memoised ("racily clean", as git calls it). ``clear_memo()`` forgets the
per-process memo; deleting the cache file forgets the disk one.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import json
import os
import stat as stat_mode
import tempfile
import time
from pathlib import Path

from repro.data import SYNTHETIC_MARKER, check_split, data_root, dataset_info

FORMAT = 1  # bump when what enters a digest changes
DIGEST_CHARS = 16
CHUNK = 1 << 20  # bytes read at a time when hashing
CACHE_FILE = "file_hashes.json"
CACHE_FORMAT = 1
CACHE_MIN_BYTES = 64 << 10  # smaller files are re-read by each process (cheap)
CACHE_MAX_ENTRIES = 20000  # oldest entries are dropped beyond this
RACY_SECONDS = 1.0  # files changed this recently are hashed but not memoised

CLASS_LISTS = Path(__file__).parent / "class_lists"
# torchvision.datasets.folder.IMG_EXTENSIONS (what ImageFolder accepts, compared lower-case)
IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
# torchvision's CIFAR10 / CIFAR100 file lists
CIFAR10_FILES = {"train": [f"data_batch_{b}" for b in range(1, 6)], "test": ["test_batch"],
                 "meta": ["batches.meta"]}
CIFAR100_FILES = {"train": ["train"], "test": ["test"], "meta": ["meta"]}
# torchvision's STL10: the binaries each split reads; its integrity check needs all of them
STL10_FILES = {"train": ["train_X.bin", "train_y.bin"], "test": ["test_X.bin", "test_y.bin"],
               "unlabeled": ["unlabeled_X.bin"]}
STL10_CLASS_NAMES = "class_names.txt"  # read when present
# repro.data.places.IMAGE_DIRS
PLACES_IMAGE_DIRS = ("images256", "data/vision/torralba/deeplearning/images256")
# repro.data.voc.VOC_CLASSES
VOC_CLASSES = (
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa",
    "train", "tvmonitor",
)
# repro.data.fashion_mnist.FOLDERS (under the data root, in order; the first is the dataset's
# DatasetInfo.folder), SYSTEM_FOLDER (looked in last), FILES and SUFFIXES
FASHION_MNIST_FOLDERS = ("fashion-mnist", "FashionMNIST/raw")
FASHION_MNIST_SYSTEM_FOLDER = "/usr/share/datasets/fashion-mnist"
FASHION_MNIST_FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
                       "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
FASHION_MNIST_SUFFIXES = ("", ".gz")
IMAGENET_CLASS_LISTS = {"imagenet": None, "imagenet10": "imagenet10.txt",
                        "imagenet100": "imagenet100.txt", "imagenet_dogs": "imagenet_dogs.txt"}


class _Absent(Exception):
    """The reader would fail: the dataset (or a file it needs) is not on disk."""


# ----------------------------------------------------------------------------- the API


def data_fingerprint(name: str, split: str | None = None, root: Path | None = None) -> str | None:
    """Hex digest of the files the reader of ``name`` reads for ``split`` under ``root``
    (default ``repro.data.data_root()``); ``None`` when they are not on disk.

    ``split=None``: every split of the dataset (None only when no split is on disk).
    Unknown names and splits raise like ``build_dataset``.
    """
    info = dataset_info(name)
    if split is not None:
        check_split(name, split)
    root = Path(root) if root is not None else data_root()
    try:
        if split is not None:
            return _split_digest(name, info.folder, split, root)
        parts = [[s, _split_digest(name, info.folder, s, root)] for s in info.splits]
        if all(d is None for _, d in parts):
            return None
        return _digest(json.dumps(["splits", FORMAT, parts]).encode())
    finally:
        _flush_cache()


def data_present(name: str, root: Path | None = None) -> bool:
    """Whether the data of ``name`` is on disk where its reader looks (hashing nothing): it
    needs no files, or its ``DatasetInfo.folder`` exists under ``root`` (the reader then says
    what is wrong with it), or the reader would find the files of one of its splits elsewhere
    (Fashion-MNIST: torchvision's layout under the root, or Debian's system folder)."""
    info = dataset_info(name)
    root = Path(root) if root is not None else data_root()
    if not info.folder or (root / info.folder).exists():
        return True
    for split in info.splits:
        try:
            _READERS[name](_Probe(), root / info.folder, split, name)
        except _Absent:
            continue
        return True
    return False


def file_sha256(path: Path | str) -> str:
    """sha256 hex of a file's bytes, through the per-process and disk caches."""
    st = os.stat(path)
    try:
        return _file_sha256(str(path), st)
    finally:
        _flush_cache()


def clear_memo() -> None:
    """Forget the per-process hash memo and the loaded disk cache (both re-read lazily)."""
    global _DISK, _DISK_PATH
    _MEMO.clear()
    _PENDING.clear()
    _DISK, _DISK_PATH = None, None


def cache_path() -> Path | None:
    """Where content hashes are cached: ``$REPRO_CACHE/file_hashes.json``, default
    ``~/.cache/repro/file_hashes.json`` (None when there is no home folder)."""
    env = os.environ.get("REPRO_CACHE")
    try:
        base = Path(env) if env else Path.home() / ".cache" / "repro"
    except (RuntimeError, KeyError):  # no home folder
        return None
    return base / CACHE_FILE


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:DIGEST_CHARS]


class _Entries:
    """Streams the canonical entries of one split into a sha256."""

    def __init__(self):
        self._h = hashlib.sha256()
        self.add("format", FORMAT)

    def add(self, *fields) -> None:
        self._h.update(json.dumps(fields, separators=(",", ":")).encode() + b"\n")

    def content(self, path: Path, rel: str, required: bool = True) -> None:
        """Relative path, size and sha256 of a regular file. A missing one: ``_Absent`` when
        ``required``, else recorded as missing."""
        try:
            st = os.stat(path)
            ok = stat_mode.S_ISREG(st.st_mode)
        except OSError:
            ok = False
        if not ok:
            if required:
                raise _Absent(str(path))
            self.add("missing", rel)
            return
        self.add("file", rel, st.st_size, _file_sha256(str(path), st))

    def sizes(self, items) -> None:
        """Index entries: ``(relative path, size)`` pairs (size -1: missing), encoded in
        batches (one JSON call per batch is several times faster than one per file)."""
        batch: list = []
        for item in items:
            batch.append(item)
            if len(batch) == 4096:
                self.add("images", batch)
                batch = []
        if batch:
            self.add("images", batch)

    def hexdigest(self) -> str:
        return self._h.hexdigest()[:DIGEST_CHARS]


class _Synthetic(_Entries):
    """Entries of a synthetic fixture's folder: files by path and size (see the module
    docstring), the writer's source by content."""

    def content(self, path: Path, rel: str, required: bool = True) -> None:
        size = _size(str(path))
        if size < 0 and required:
            raise _Absent(str(path))
        self.add("synthetic-file", rel, size)


WRITER = Path(__file__).resolve().parent / "fixtures.py"  # read, not imported (it imports torch)


def _writer_sha256() -> str:
    return hashlib.sha256(WRITER.read_bytes()).hexdigest()


class _Probe(_Entries):
    """Entries that read no file: running a reader with it only tells whether the files it
    needs are there."""

    def content(self, path: Path, rel: str, required: bool = True) -> None:
        if required and not os.path.isfile(path):
            raise _Absent(str(path))


def _split_digest(name: str, folder_name: str, split: str, root: Path) -> str | None:
    folder = root / folder_name if folder_name else root
    synthetic = bool(folder_name) and (folder / SYNTHETIC_MARKER).is_file()
    entries = _Synthetic() if synthetic else _Entries()
    try:
        _READERS[name](entries, folder, split, name)
    except _Absent:
        return None
    if synthetic:
        _Entries.content(entries, folder / SYNTHETIC_MARKER, SYNTHETIC_MARKER)
        entries.add("writer", _writer_sha256())
    return entries.hexdigest()


def _size(path: str) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return -1


def _require_dir(path: Path) -> Path:
    if not path.is_dir():
        raise _Absent(str(path))
    return path


# ----------------------------------------------------------------------------- readers


def _cifar(e: _Entries, folder: Path, split: str, files: dict) -> None:
    _require_dir(folder)
    # torchvision checks every batch (and we need the meta file) before reading any
    for part in ("train", "test", "meta"):
        for f in files[part]:
            if not (folder / f).is_file():
                raise _Absent(str(folder / f))
    for part in split.split("+"):
        for f in files[part]:
            e.content(folder / f, f)
    for f in files["meta"]:
        e.content(folder / f, f)


def _cifar10(e, folder, split, name):
    _cifar(e, folder, split, CIFAR10_FILES)


def _cifar100(e, folder, split, name):  # cifar100 and cifar20 read the same files
    _cifar(e, folder, split, CIFAR100_FILES)


def _stl10(e, folder, split, name):
    _require_dir(folder)
    for files in STL10_FILES.values():  # torchvision's integrity check
        for f in files:
            if not (folder / f).is_file():
                raise _Absent(str(folder / f))
    parts = ["train", "test"] if split == "train+test" else split.split("+")
    for part in parts:
        for f in STL10_FILES[part]:
            e.content(folder / f, f)
    if (folder / STL10_CLASS_NAMES).is_file():
        e.content(folder / STL10_CLASS_NAMES, STL10_CLASS_NAMES)


def _digits(e, folder, split, name):
    """scikit-learn's digits.csv.gz (both splits read all of it) and scikit-learn's version
    (its ``train_test_split`` picks the split)."""
    try:
        spec = importlib.util.find_spec("sklearn")  # finds, does not import
        version = importlib.metadata.version("scikit-learn")
    except (ImportError, ValueError, importlib.metadata.PackageNotFoundError):
        raise _Absent("scikit-learn") from None
    if spec is None or not spec.origin:
        raise _Absent("scikit-learn")
    e.add("scikit-learn", version)
    path = Path(spec.origin).parent / "datasets" / "data" / "digits.csv.gz"
    e.content(path, "sklearn/datasets/data/digits.csv.gz")


def _fashion_mnist(e, folder, split, name):
    """Per part of the split, its images and labels files (content) from the first folder of
    the reader's search holding both, each unzipped or ``.gz``. Entered by file name only: the
    same bytes in another folder of the search give the same digest."""
    root = folder.parent  # folder = <root>/FASHION_MNIST_FOLDERS[0]
    folders = [root / f for f in FASHION_MNIST_FOLDERS] + [Path(FASHION_MNIST_SYSTEM_FOLDER)]

    def first_file(where: Path, name: str) -> Path | None:
        paths = (where / f"{name}{suffix}" for suffix in FASHION_MNIST_SUFFIXES)
        return next((p for p in paths if p.is_file()), None)

    for part in split.split("+"):
        for where in folders:
            found = [first_file(where, name) for name in FASHION_MNIST_FILES[part]]
            if all(found):
                break
        else:
            raise _Absent(f"fashion_mnist {part}: {', '.join(map(str, folders))}")
        for path in found:
            e.content(path, path.name)


def _read_class_list(path: Path) -> list[str]:
    """Like ``repro.data.imagenet.read_class_list``: first word per line, '#' comments."""
    words = [line.split("#")[0].split() for line in path.read_text().splitlines()]
    return [w[0] for w in words if w]


def _image_files(top: str, rel: str, out: list, ancestors: frozenset = frozenset()) -> None:
    """(relative path, size) of every file with an image extension under ``top``, recursively
    and following symbolic links, as ImageFolder's ``os.walk(followlinks=True)`` finds them
    (unreadable folders are skipped, as os.walk does; symlink loops are cut)."""
    try:
        st = os.stat(top)
        it = os.scandir(top)
    except OSError:
        return
    key = (st.st_dev, st.st_ino)
    if key in ancestors:
        it.close()
        return
    ancestors = ancestors | {key}
    with it:
        for entry in it:
            path = f"{rel}/{entry.name}"
            try:
                is_dir = entry.is_dir()
            except OSError:
                is_dir = False
            if is_dir:
                _image_files(entry.path, path, out, ancestors)
            elif entry.name.lower().endswith(IMG_EXTENSIONS):
                try:
                    out.append((path, entry.stat().st_size))
                except OSError:  # e.g. a broken symbolic link: listed, fails when read
                    out.append((path, -1))


def _image_folder(e: _Entries, split_dir: Path, rel: str, classes: list[str] | None) -> None:
    """An ImageFolder tree: its classes (all sub-folders, or the given wnids) and the images
    of each class. ``_Absent`` where ImageFolder raises (no class, a missing or empty one)."""
    _require_dir(split_dir)
    if classes is None:
        with os.scandir(split_dir) as it:
            classes = sorted(entry.name for entry in it if entry.is_dir())
        if not classes:
            raise _Absent(str(split_dir))
    else:
        classes = sorted(classes)
    e.add("classes", classes)
    for wnid in classes:
        if not (split_dir / wnid).is_dir():
            raise _Absent(str(split_dir / wnid))
        files: list = []
        _image_files(str(split_dir / wnid), f"{rel}/{wnid}", files)
        if not files:
            raise _Absent(str(split_dir / wnid))
        files.sort()
        e.sizes(files)


def _imagenet(e, folder, split, name):
    _require_dir(folder)
    listing = IMAGENET_CLASS_LISTS[name]
    wnids = None if listing is None else _read_class_list(CLASS_LISTS / listing)
    _image_folder(e, folder / split, split, wnids)


def _imagenet64(e, folder, split, name):
    _require_dir(folder)
    pattern = "train_data_batch_*.npz" if split == "train" else "val_data.npz"
    files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob(pattern))
    if not files:
        raise _Absent(f"{folder}/**/{pattern}")
    for rel in files:
        e.content(folder / rel, rel)


def _places205(e, folder, split, name):
    _require_dir(folder)
    if (folder / split).is_dir():
        e.add("layout", "imagefolder")
        _image_folder(e, folder / split, split, None)
        return
    csv_rel = f"trainvalsplit_places205/{split}_places205.csv"
    images = next((d for d in PLACES_IMAGE_DIRS if (folder / d).is_dir()), None)
    if not (folder / csv_rel).is_file() or images is None:
        raise _Absent(str(folder / csv_rel))
    e.add("layout", "csv", images)
    e.content(folder / csv_rel, csv_rel)
    base = str(folder / images)
    rows = [line.split() for line in (folder / csv_rel).read_text().splitlines() if line.strip()]
    e.sizes((f"{images}/{r[0]}", _size(f"{base}/{r[0]}")) for r in rows)


def _tiny_imagenet(e, folder, split, name):
    _require_dir(folder)
    e.content(folder / "wnids.txt", "wnids.txt")
    wnids = sorted(_read_class_list(folder / "wnids.txt"))
    if split == "train":
        for wnid in wnids:  # the reader globs train/<wnid>/images/*.JPEG
            rel = f"train/{wnid}/images"
            try:
                with os.scandir(folder / rel) as it:
                    names = sorted(entry.name for entry in it if entry.name.endswith(".JPEG"))
            except OSError:
                names = []
            e.sizes((f"{rel}/{n}", _size(str(folder / rel / n))) for n in names)
        return
    e.content(folder / "val" / "val_annotations.txt", "val/val_annotations.txt")
    text = (folder / "val" / "val_annotations.txt").read_text()
    rows = [line.split("\t") for line in text.splitlines() if line]
    base = str(folder / "val" / "images")
    e.sizes((f"val/images/{r[0]}", _size(f"{base}/{r[0]}")) for r in rows)


def _voc07(e, folder, split, name):
    """ImageSets/Main/<split>.txt and <class>_<split>.txt (content), then per listed image its
    JPEG (index) and its Annotations xml (content; read by ``voc07_annotations``)."""
    _require_dir(folder)
    listing = f"ImageSets/Main/{split}.txt"
    e.content(folder / listing, listing)
    for cls in VOC_CLASSES:
        rel = f"ImageSets/Main/{cls}_{split}.txt"
        e.content(folder / rel, rel)
    ids = [line.split()[0] for line in (folder / listing).read_text().splitlines()
           if line.strip()]
    jpegs = str(folder / "JPEGImages")
    e.sizes((f"JPEGImages/{i}.jpg", _size(f"{jpegs}/{i}.jpg")) for i in ids)
    for i in ids:
        rel = f"Annotations/{i}.xml"
        e.content(folder / rel, rel, required=False)


_READERS = {
    "cifar10": _cifar10, "cifar100": _cifar100, "cifar20": _cifar100, "digits": _digits,
    "fashion_mnist": _fashion_mnist,
    "imagenet": _imagenet, "imagenet10": _imagenet, "imagenet100": _imagenet,
    "imagenet64": _imagenet64, "imagenet_dogs": _imagenet, "places205": _places205,
    "stl10": _stl10, "tiny_imagenet": _tiny_imagenet, "voc07": _voc07,
}


# ----------------------------------------------------------------------------- hash cache

# (absolute path, size, mtime_ns, ctime_ns, inode) -> sha256 hex, for this process
_MEMO: dict[tuple, str] = {}
# the disk cache as loaded: absolute path -> [size, mtime_ns, ctime_ns, inode, sha256, added]
_DISK: dict[str, list] | None = None
_DISK_PATH: Path | None = None
_PENDING: dict[str, list] = {}  # new disk entries, written by _flush_cache


def _stat_key(st: os.stat_result) -> tuple[int, int, int, int]:
    return st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino


def _racy(st: os.stat_result) -> bool:
    """Changed so recently that a same-size rewrite could still keep these timestamps.
    (abs: a file dated in the future, by a skewed clock, is not re-hashed forever.)"""
    now = time.time_ns()
    return abs(now - max(st.st_mtime_ns, st.st_ctime_ns)) < RACY_SECONDS * 1e9


def _hash_contents(path: str) -> str:
    """sha256 hex of the file's bytes, read in CHUNK-sized pieces."""
    h = hashlib.sha256()
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    with open(path, "rb", buffering=0) as f:
        while n := f.readinto(buf):
            h.update(view[:n])
    return h.hexdigest()


def _file_sha256(path: str, st: os.stat_result) -> str:
    path = os.path.abspath(path)
    key = (path, *_stat_key(st))
    hit = _MEMO.get(key)
    if hit is not None:
        return hit
    cached = st.st_size >= CACHE_MIN_BYTES
    if cached:
        record = _disk_cache().get(path)
        if record is not None and tuple(record[:4]) == key[1:]:
            _MEMO[key] = record[4]
            return record[4]
    digest = _hash_contents(path)
    try:
        after = os.stat(path)
    except OSError:
        return digest
    if _stat_key(after) != key[1:] or _racy(after):  # changed while read, or too recently
        return digest
    _MEMO[key] = digest
    if cached:
        _PENDING[path] = [*key[1:], digest, int(time.time())]
    return digest


def _valid_record(record) -> bool:
    return (isinstance(record, list) and len(record) == 6
            and all(type(v) is int for v in record[:4]) and isinstance(record[4], str)
            and len(record[4]) == 64 and isinstance(record[5], (int, float)))


def _read_cache(path: Path) -> dict[str, list]:
    """The cache file's entries; {} when it is missing, unreadable or corrupt."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        if data.get("format") != CACHE_FORMAT:
            return {}
        return {k: v for k, v in data["files"].items()
                if isinstance(k, str) and _valid_record(v)}
    except Exception:  # missing, unreadable, not JSON, wrong shape: start afresh
        return {}


def _disk_cache() -> dict[str, list]:
    global _DISK, _DISK_PATH
    path = cache_path()
    if _DISK is None or path != _DISK_PATH:
        _DISK, _DISK_PATH = (_read_cache(path) if path is not None else {}), path
    return _DISK


def _flush_cache() -> None:
    """Merge new entries into the cache file (re-read first: other processes write it too),
    atomically; on any OS error leave it as it is."""
    global _DISK, _DISK_PATH
    if not _PENDING:
        return
    pending = dict(_PENDING)
    _PENDING.clear()
    path = cache_path()
    if path is None:
        return
    merged = _read_cache(path)
    merged.update(pending)
    if len(merged) > CACHE_MAX_ENTRIES:
        keep = sorted(merged, key=lambda k: merged[k][5])[-CACHE_MAX_ENTRIES:]
        merged = {k: merged[k] for k in keep}
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{CACHE_FILE}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump({"format": CACHE_FORMAT, "files": merged}, f, separators=(",", ":"))
        os.replace(tmp, path)
        tmp = None
    except OSError:
        pass  # unwritable: no disk cache, the per-process memo still works
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass
    _DISK, _DISK_PATH = merged, path


__all__ = ["cache_path", "clear_memo", "data_fingerprint", "file_sha256"]
