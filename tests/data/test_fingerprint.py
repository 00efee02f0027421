"""Data fingerprints: which files enter them, what changes them, and their hash cache."""

import filecmp
import gzip
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

import repro.data.fingerprint as F
from repro.data import DATASET_INFO, SYNTHETIC_MARKER
from repro.data.fixtures import write_cifar10_fixture, write_voc07_fixture

CIFAR = "cifar-10-batches-py"
VOC = Path("VOCdevkit") / "VOC2007"
RACY = 0.05  # seconds; tests wait this long so that hashes may be memoised


@pytest.fixture(autouse=True)
def fresh_cache(tmp_path, monkeypatch):
    """A private disk cache, an empty process memo and a short racy window per test."""
    monkeypatch.setenv("REPRO_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(F, "RACY_SECONDS", RACY)
    F.clear_memo()
    yield tmp_path / "cache" / F.CACHE_FILE
    F.clear_memo()


@pytest.fixture
def reads(monkeypatch):
    """Names of the files whose bytes are hashed, in order."""
    seen = []
    real = F._hash_contents

    def counting(path):
        seen.append(Path(path).name)
        return real(path)

    monkeypatch.setattr(F, "_hash_contents", counting)
    return seen


def _unmark(folder: Path) -> Path:
    """A fixture without its SYNTHETIC marker: read and fingerprinted as real data (by bytes)."""
    (folder / SYNTHETIC_MARKER).unlink()
    return folder


@pytest.fixture
def real_root(fixture_root, tmp_path):
    """fixture_root's CIFAR-10 as if it were the real download (no marker)."""
    root = tmp_path / "real"
    shutil.copytree(fixture_root / CIFAR, root / CIFAR)
    _unmark(root / CIFAR)
    return root


def _settle():
    """Let the files just written age past the racy window (so their hashes are memoised)."""
    time.sleep(RACY + 0.02)


def _flip_byte(path: Path, offset: int = 100, keep_mtime: bool = False):
    st = path.stat()
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))
    if keep_mtime:
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert path.stat().st_size == st.st_size


def _jpeg(path: Path, size: int = 10):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\xff\xd8" + bytes(size))


# ----------------------------------------------------------------------------- general


def test_importing_and_fingerprinting_loads_no_torch_pil_or_sklearn(fixture_root):
    code = ("import sys; import repro.data.fingerprint as F; "
            f"assert F.data_fingerprint('cifar10', 'train', {str(fixture_root)!r}); "
            "assert F.data_fingerprint('digits', 'train'); "
            "bad = {'torch', 'torchvision', 'PIL', 'sklearn'} & set(sys.modules); "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_copied_constants_match_the_readers():
    from torchvision.datasets import CIFAR10, CIFAR100, STL10
    from torchvision.datasets.folder import IMG_EXTENSIONS

    from repro.data.imagenet import read_class_list
    from repro.data.places import IMAGE_DIRS
    from repro.data.voc import VOC_CLASSES

    assert F.IMG_EXTENSIONS == IMG_EXTENSIONS and F.VOC_CLASSES == VOC_CLASSES
    assert F.PLACES_IMAGE_DIRS == IMAGE_DIRS
    for ours, tv in ((F.CIFAR10_FILES, CIFAR10), (F.CIFAR100_FILES, CIFAR100)):
        assert ours["train"] == [f for f, _ in tv.train_list]
        assert ours["test"] == [f for f, _ in tv.test_list]
        assert ours["meta"] == [tv.meta["filename"]] and tv.base_folder in DATASET_INFO[
            "cifar10" if tv is CIFAR10 else "cifar100"].folder
    assert sorted(sum(F.STL10_FILES.values(), [])) == sorted(
        f for f, _ in STL10.train_list + STL10.test_list)
    assert F.STL10_CLASS_NAMES == STL10.class_names_file
    assert set(F._READERS) == set(DATASET_INFO)
    for listing in F.IMAGENET_CLASS_LISTS.values():
        if listing:
            assert F._read_class_list(F.CLASS_LISTS / listing) == read_class_list(
                F.CLASS_LISTS / listing)


@pytest.mark.parametrize("name", sorted(DATASET_INFO))
def test_none_when_the_dataset_is_not_on_disk(name, tmp_path, monkeypatch):
    # Fashion-MNIST is also read from Debian's system folder: hide it
    monkeypatch.setattr(F, "FASHION_MNIST_SYSTEM_FOLDER", str(tmp_path / "no-system-folder"))
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "unrelated.txt").write_text("x")
    for split in (*DATASET_INFO[name].splits, None):
        fp = F.data_fingerprint(name, split, tmp_path / "data")
        assert (fp is None) == (name != "digits"), (name, split)


def test_unknown_names_and_splits_raise(tmp_path):
    with pytest.raises(ValueError):
        F.data_fingerprint("cifar10", "val", tmp_path)
    with pytest.raises(KeyError):  # UnknownName
        F.data_fingerprint("mnist", None, tmp_path)


def test_default_root_is_repro_data(fixture_root, monkeypatch):
    monkeypatch.setenv("REPRO_DATA", str(fixture_root))
    assert F.data_fingerprint("cifar10", "test") == F.data_fingerprint(
        "cifar10", "test", fixture_root)


# ----------------------------------------------------------------------------- CIFAR-10


def test_cifar10_is_stable_per_split_and_independent_of_where_the_root_is(fixture_root,
                                                                         tmp_path):
    fps = {s: F.data_fingerprint("cifar10", s, fixture_root)
           for s in ("train", "test", "train+test", None)}
    assert len(set(fps.values())) == 4 and all(len(fp) == 16 for fp in fps.values())
    F.clear_memo()
    assert fps == {s: F.data_fingerprint("cifar10", s, fixture_root) for s in fps}
    shutil.copytree(fixture_root / CIFAR, tmp_path / "moved" / CIFAR)
    assert fps == {s: F.data_fingerprint("cifar10", s, tmp_path / "moved") for s in fps}


def test_fixtures_are_byte_deterministic(tmp_path):
    for root in (tmp_path / "a", tmp_path / "b"):
        write_cifar10_fixture(root, n_train=50, n_test=20, seed=3)
        write_voc07_fixture(root, n_trainval=6, n_test=4, image_size=32, seed=3)
    for folder in (CIFAR, VOC, VOC / "JPEGImages", VOC / "Annotations", VOC / "ImageSets/Main"):
        a, b = tmp_path / "a" / folder, tmp_path / "b" / folder
        files = sorted(p.name for p in a.iterdir() if p.is_file())
        match, mismatch, errors = filecmp.cmpfiles(a, b, files, shallow=False)
        assert not mismatch and not errors, (folder, mismatch, errors)
    for name in ("cifar10", "voc07"):
        assert F.data_fingerprint(name, None, tmp_path / "a") == F.data_fingerprint(
            name, None, tmp_path / "b")


def test_cifar10_second_call_reads_no_file_and_disk_cache_skips_big_ones(real_root, reads,
                                                                          fresh_cache):
    fixture_root = real_root
    _settle()
    big = {f"data_batch_{b}" for b in range(1, 6)} | {"test_batch"}
    assert all((fixture_root / CIFAR / f).stat().st_size >= F.CACHE_MIN_BYTES for f in big)
    first = F.data_fingerprint("cifar10", None, fixture_root)
    assert set(reads) == big | {"batches.meta"} and len(reads) == 7
    reads.clear()
    assert F.data_fingerprint("cifar10", None, fixture_root) == first and reads == []
    F.clear_memo()  # a new process: the disk cache answers for the big files
    assert F.data_fingerprint("cifar10", None, fixture_root) == first
    assert set(reads) == {"batches.meta"}
    cached = json.loads(fresh_cache.read_text())["files"]
    assert {Path(p).name for p in cached} == big


def test_cifar10_changes_with_the_files_its_split_reads_only(tmp_path):
    root = tmp_path / "data"
    folder = _unmark(write_cifar10_fixture(root, n_train=50, n_test=20))
    _settle()
    before = {s: F.data_fingerprint("cifar10", s, root) for s in ("train", "test", None)}

    _flip_byte(folder / "data_batch_3")  # an ordinary edit
    _settle()
    now = {s: F.data_fingerprint("cifar10", s, root) for s in before}
    assert now["test"] == before["test"]
    assert now["train"] != before["train"] and now[None] != before[None]

    # back to the original bytes, with the edited mtime restored: the ctime tells
    _flip_byte(folder / "data_batch_3", keep_mtime=True)
    assert F.data_fingerprint("cifar10", "train", root) == before["train"]

    _flip_byte(folder / "test_batch", offset=2000)
    assert F.data_fingerprint("cifar10", "test", root) != before["test"]
    assert F.data_fingerprint("cifar10", "train", root) == before["train"]

    (folder / "readme.html").write_text("not read")  # unrelated files
    (root / "other").mkdir()
    (root / "other" / "x.bin").write_bytes(b"1")
    assert F.data_fingerprint("cifar10", "train", root) == before["train"]

    (folder / "data_batch_5").unlink()  # torchvision refuses the folder: not on disk
    assert F.data_fingerprint("cifar10", "test", root) is None
    assert F.data_fingerprint("cifar10", None, root) is None


def test_a_synthetic_fixture_is_identified_by_its_writer_not_its_bytes(tmp_path, reads,
                                                                      monkeypatch):
    """Its bytes differ in the last bit between CPUs (numpy's SIMD cos/arctan2): a same-size
    change keeps the digest; a size change, a missing file or another writer change it."""
    folder = write_cifar10_fixture(tmp_path, n_train=10, n_test=10)
    before = {s: F.data_fingerprint("cifar10", s, tmp_path) for s in ("train", "test")}
    assert not {"data_batch_1", "test_batch"} & set(reads)  # sizes only: no batch is read
    _flip_byte(folder / "data_batch_1", offset=5000)  # another CPU's pixel rounding
    assert F.data_fingerprint("cifar10", "train", tmp_path) == before["train"]
    (folder / "data_batch_1").write_bytes((folder / "data_batch_1").read_bytes() + b"x")
    assert F.data_fingerprint("cifar10", "train", tmp_path) != before["train"]
    assert F.data_fingerprint("cifar10", "test", tmp_path) == before["test"]
    other = tmp_path / "fixtures_v2.py"
    other.write_text(F.WRITER.read_text() + "# changed\n")
    monkeypatch.setattr(F, "WRITER", other)
    assert F.data_fingerprint("cifar10", "test", tmp_path) != before["test"]
    monkeypatch.undo()
    (folder / "test_batch").unlink()
    assert F.data_fingerprint("cifar10", "test", tmp_path) is None


def test_the_synthetic_marker_is_hashed(tmp_path):
    folder = write_cifar10_fixture(tmp_path, n_train=10, n_test=10)
    before = F.data_fingerprint("cifar10", "train", tmp_path)
    (folder / SYNTHETIC_MARKER).write_text((folder / SYNTHETIC_MARKER).read_text() + " ")
    assert F.data_fingerprint("cifar10", "train", tmp_path) != before


def test_racily_fresh_files_are_hashed_again(tmp_path, reads, monkeypatch):
    _unmark(write_cifar10_fixture(tmp_path, n_train=10, n_test=10))
    monkeypatch.setattr(F, "RACY_SECONDS", 60.0)
    first = F.data_fingerprint("cifar10", "test", tmp_path)
    assert F.data_fingerprint("cifar10", "test", tmp_path) == first
    assert reads.count("test_batch") == 2


# ----------------------------------------------------------------------------- cache file


def test_a_corrupt_cache_file_is_ignored_and_rebuilt(real_root, fresh_cache, reads):
    fixture_root = real_root
    _settle()
    expected = F.data_fingerprint("cifar10", "test", fixture_root)
    for junk in (b"\x00garbage{", b'{"format": 1, "files": {"/x": [1]}}', b"[]",
                 b'{"format": 1, "files": []}'):
        F.clear_memo()
        fresh_cache.write_bytes(junk)
        reads.clear()
        assert F.data_fingerprint("cifar10", "test", fixture_root) == expected
        assert "test_batch" in reads  # nothing usable in the cache: read again
        assert json.loads(fresh_cache.read_text())["format"] == F.CACHE_FORMAT


def test_an_unwritable_cache_location_only_disables_the_disk_cache(real_root, tmp_path,
                                                                    monkeypatch, reads):
    fixture_root = real_root
    (tmp_path / "a_file").write_text("")
    monkeypatch.setenv("REPRO_CACHE", str(tmp_path / "a_file" / "sub"))  # cannot be created
    _settle()
    expected = F.data_fingerprint("cifar10", "test", fixture_root)
    assert F.data_fingerprint("cifar10", "test", fixture_root) == expected
    assert reads.count("test_batch") == 1  # the process memo still works
    assert not (tmp_path / "a_file").is_dir()


# ----------------------------------------------------------------------------- VOC2007


def test_voc07_follows_listed_images_annotations_and_labels(tmp_path, reads):
    folder = _unmark(write_voc07_fixture(tmp_path, n_trainval=6, n_test=4, image_size=32))
    _settle()
    before = {s: F.data_fingerprint("voc07", s, tmp_path) for s in ("trainval", "test")}
    assert before["trainval"] != before["test"]
    assert not any(r.endswith(".jpg") for r in reads)  # images are indexed, not read
    assert F.data_fingerprint("voc07", "trainval", tmp_path) == before["trainval"]

    def changed():
        return {s for s in before if F.data_fingerprint("voc07", s, tmp_path) != before[s]}

    xml = folder / "Annotations" / "000002.xml"  # a trainval image
    xml.write_bytes(xml.read_bytes().replace(b"<pose>Unspecified", b"<pose>Unspecifiee"))
    assert changed() == {"trainval"}
    before["trainval"] = F.data_fingerprint("voc07", "trainval", tmp_path)

    (folder / "JPEGImages" / "000009.jpg").unlink()  # a test image
    assert changed() == {"test"}
    before["test"] = F.data_fingerprint("voc07", "test", tmp_path)

    labels = folder / "ImageSets" / "Main" / "dog_test.txt"
    labels.write_text(labels.read_text().replace("-1", " 0", 1))
    assert changed() == {"test"}
    before["test"] = F.data_fingerprint("voc07", "test", tmp_path)

    _jpeg(folder / "JPEGImages" / "999999.jpg")  # in no listing: not read
    (folder / "Annotations" / "999999.xml").write_text("<annotation/>")
    assert changed() == set()
    listing = folder / "ImageSets" / "Main" / "test.txt"
    listing.write_text(listing.read_text() + "999999\n")
    assert changed() == {"test"}


# ----------------------------------------------------------------------------- ImageNet


def _imagefolder(root: Path, wnids, per_class=2):
    for wnid in wnids:
        for k in range(per_class):
            _jpeg(root / "imagenet" / "train" / wnid / f"{wnid}_{k}.JPEG", 10 + k)


def test_imagenet_indexes_image_paths_and_sizes(tmp_path, reads):
    wnids = ["n00000001", "n00000002", "n00000003"]
    _imagefolder(tmp_path, wnids)
    train = tmp_path / "imagenet" / "train"
    first = F.data_fingerprint("imagenet", "train", tmp_path)
    assert first is not None and reads == []  # no image is opened
    assert F.data_fingerprint("imagenet", "val", tmp_path) is None
    assert F.data_fingerprint("imagenet", None, tmp_path) == F.data_fingerprint(
        "imagenet", None, tmp_path) != first
    seen = {first}

    def fresh():
        fp = F.data_fingerprint("imagenet", "train", tmp_path)
        assert fp not in seen
        seen.add(fp)

    _jpeg(train / "n00000002" / "deeper" / "extra.jpeg")  # ImageFolder walks sub-folders
    fresh()
    (train / "n00000001" / "n00000001_0.JPEG").unlink()
    fresh()
    (train / "n00000003" / "n00000003_1.JPEG").write_bytes(b"bigger" * 10)  # content edit
    fresh()
    (train / "n00000003" / "n00000003_1.JPEG").rename(train / "n00000003" / "renamed.JPEG")
    fresh()
    last = F.data_fingerprint("imagenet", "train", tmp_path)
    (train / "n00000003" / "notes.txt").write_text("not an image")
    (tmp_path / "imagenet" / "README").write_text("x")
    assert F.data_fingerprint("imagenet", "train", tmp_path) == last
    (train / "n00000009").mkdir()  # an empty class: ImageFolder refuses the tree
    assert F.data_fingerprint("imagenet", "train", tmp_path) is None


def test_imagenet_subsets_read_only_their_classes(tmp_path):
    wnids = F._read_class_list(F.CLASS_LISTS / "imagenet10.txt")
    _imagefolder(tmp_path, wnids, per_class=1)
    sub = F.data_fingerprint("imagenet10", "train", tmp_path)
    assert sub == F.data_fingerprint("imagenet", "train", tmp_path)  # the very same files
    assert F.data_fingerprint("imagenet_dogs", "train", tmp_path) is None  # classes missing
    _imagefolder(tmp_path, ["n99999999"], per_class=1)  # a class outside the list
    assert F.data_fingerprint("imagenet10", "train", tmp_path) == sub
    assert F.data_fingerprint("imagenet", "train", tmp_path) != sub
    _jpeg(tmp_path / "imagenet" / "train" / wnids[4] / "new.JPEG")
    assert F.data_fingerprint("imagenet10", "train", tmp_path) != sub
    shutil.rmtree(tmp_path / "imagenet" / "train" / wnids[0])
    assert F.data_fingerprint("imagenet10", "train", tmp_path) is None


# ----------------------------------------------------------------------------- digits


def test_digits_hashes_sklearns_data_file_and_version(tmp_path, monkeypatch, reads):
    real = F.data_fingerprint("digits", "train")
    assert real and reads == ["digits.csv.gz"]
    assert F.data_fingerprint("digits", "test") == real  # both splits read the same file
    assert F.data_fingerprint("digits", "train", tmp_path / "anywhere") == real

    import importlib.util

    spec = importlib.util.find_spec("sklearn")
    fake = tmp_path / "sklearn"
    (fake / "datasets" / "data").mkdir(parents=True)
    shutil.copy(Path(spec.origin).parent / "datasets" / "data" / "digits.csv.gz",
                fake / "datasets" / "data")
    monkeypatch.setattr(F.importlib.util, "find_spec",
                        lambda name: type("Spec", (), {"origin": str(fake / "__init__.py")}))
    assert F.data_fingerprint("digits", "train") == real
    data = fake / "datasets" / "data" / "digits.csv.gz"
    data.write_bytes(gzip.compress(gzip.decompress(data.read_bytes()).replace(b"0", b"1", 1)))
    assert F.data_fingerprint("digits", "train") != real
    monkeypatch.setattr(F.importlib.metadata, "version", lambda dist: "0.0.0")
    assert F.data_fingerprint("digits", "train") not in (real, None)
    monkeypatch.setattr(F.importlib.util, "find_spec", lambda name: None)
    assert F.data_fingerprint("digits", "train") is None


# ----------------------------------------------------------------------------- other layouts


def _tiny(root):
    folder = root / "tiny-imagenet-200"
    folder.mkdir()
    (folder / "wnids.txt").write_text("n00000002\nn00000001\n")
    for wnid in ("n00000001", "n00000002"):
        _jpeg(folder / "train" / wnid / "images" / f"{wnid}_0.JPEG")
    _jpeg(folder / "val" / "images" / "val_0.JPEG")
    (folder / "val" / "val_annotations.txt").write_text("val_0.JPEG\tn00000002\t0\t0\t5\t5\n")
    return {"train": folder / "train" / "n00000001" / "images" / "n00000001_0.JPEG",
            "val": folder / "val" / "val_annotations.txt"}


def _places(root):
    folder = root / "places205"
    _jpeg(folder / "images256" / "a" / "abbey" / "x.jpg")
    (folder / "trainvalsplit_places205").mkdir()
    (folder / "trainvalsplit_places205" / "val_places205.csv").write_text("a/abbey/x.jpg 0\n")
    return {"val": folder / "images256" / "a" / "abbey" / "x.jpg"}


def _imagenet64(root):
    folder = root / "imagenet64" / "Imagenet64_val_npz"
    folder.mkdir(parents=True)
    (folder / "val_data.npz").write_bytes(bytes(300))
    return {"val": folder / "val_data.npz"}


def _stl10(root):
    folder = root / "stl10_binary"
    folder.mkdir()
    for f in sum(F.STL10_FILES.values(), []):
        (folder / f).write_bytes(f.encode() * 20)
    return {"unlabeled": folder / "unlabeled_X.bin", "test": folder / "test_y.bin"}


def _cifar100(root):
    folder = root / "cifar-100-python"
    folder.mkdir()
    for f in ("train", "test", "meta"):
        (folder / f).write_bytes(f.encode() * 50)
    return {"test": folder / "test"}


@pytest.mark.parametrize("name, make", [("tiny_imagenet", _tiny), ("places205", _places),
                                        ("imagenet64", _imagenet64), ("stl10", _stl10),
                                        ("cifar100", _cifar100), ("cifar20", _cifar100)])
def test_other_layouts_change_with_the_files_each_split_reads(name, make, tmp_path):
    targets = make(tmp_path)
    splits = DATASET_INFO[name].splits
    before = {s: F.data_fingerprint(name, s, tmp_path) for s in splits}
    for split, path in targets.items():
        assert before[split] is not None
        path.write_bytes(path.read_bytes() + b"\n")  # grows: detected even without settling
        now = {s: F.data_fingerprint(name, s, tmp_path) for s in splits}
        assert now[split] != before[split]
        untouched = [s for s in splits if split not in s.split("+") and now[s] is not None]
        assert all(now[s] == before[s] for s in untouched), (split, untouched)
        before = now
