"""Gallery thumbnails: the model's crop in one resampling step; a cache that hits, notices a
changed file, stays within its bounds and survives a restart on disk."""

from __future__ import annotations

import io
import os

import numpy as np
import pytest
from PIL import Image

from explainer.data.items import ImageItem
from explainer.thumbnails import Framing, ThumbnailCache, make_thumbnail

FRAMING = Framing(view=224, resize=256, size=64)


def _decoded(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB")).astype(int)


def _framed_photo(width: int = 320, height: int = 256) -> Image.Image:
    """Red inside the model's centre crop (224/256 of the short side, centred), green outside."""
    pixels = np.zeros((height, width, 3), np.uint8)
    pixels[...] = (0, 200, 0)
    side = round(min(width, height) * 224 / 256)
    left, top = (width - side) // 2, (height - side) // 2
    pixels[top : top + side, left : left + side] = (220, 0, 0)
    return Image.fromarray(pixels)


def _save(path, image: Image.Image, **kw) -> ImageItem:
    image.save(path, **kw)
    return ImageItem(key=path.name, label=0, name=path.name, path=path)


def test_the_thumbnail_is_the_models_centre_crop(tmp_path):
    for width, height in ((320, 256), (256, 400)):  # landscape and portrait
        thumb = _decoded(make_thumbnail(_framed_photo(width, height), FRAMING))
        assert thumb.shape == (64, 64, 3)
        inner = thumb[2:-2, 2:-2]  # edge pixels blend the border when resampled
        assert inner[..., 0].min() > 180 and inner[..., 1].max() < 60, (width, height)
    # A file, bytes and an item give the same picture.
    item = _save(tmp_path / "a.png", _framed_photo())
    from_file = make_thumbnail(item, FRAMING)
    assert from_file == make_thumbnail((tmp_path / "a.png").read_bytes(), FRAMING)
    assert np.abs(_decoded(from_file) - thumb_of(_framed_photo())).mean() < 1.0


def thumb_of(image: Image.Image) -> np.ndarray:
    return _decoded(make_thumbnail(image, FRAMING))


def test_a_large_jpeg_is_decoded_at_a_reduced_scale_with_the_same_picture(tmp_path):
    rng = np.random.default_rng(0)
    smooth = rng.integers(0, 255, (30, 40, 3), dtype=np.uint8)
    big = Image.fromarray(smooth).resize((1600, 1200), Image.Resampling.BICUBIC)
    item = _save(tmp_path / "big.jpg", big, quality=95)
    drafted = _decoded(make_thumbnail(item, FRAMING))  # decoded at 1/8 scale: 200×150 ≥ 64 px crop
    full = _decoded(make_thumbnail(Image.open(item.path).convert("RGB"), FRAMING))  # no draft
    assert np.abs(drafted - full).mean() < 4.0


def test_unreadable_input_raises_an_image_error(tmp_path):
    from explainer.errors import ImageError

    (tmp_path / "x.jpg").write_bytes(b"not an image")
    with pytest.raises(ImageError):
        make_thumbnail(tmp_path / "x.jpg", FRAMING)


def test_the_cache_hits_notices_a_changed_file_and_remembers_a_broken_one(tmp_path):
    cache = ThumbnailCache(max_items=10)
    item = _save(tmp_path / "a.png", _framed_photo())
    first = cache.get(item, FRAMING)
    assert first is not None and (cache.hits, cache.misses) == (0, 1)
    assert cache.get(item, FRAMING) == first and (cache.hits, cache.misses) == (1, 1)
    # Another framing is another thumbnail.
    assert cache.get(item, Framing(view=224, resize=256, size=32)) != first and cache.misses == 2

    # The file is replaced by another picture (its mtime moves on): made again.
    Image.fromarray(np.full((256, 320, 3), 30, np.uint8)).save(item.path)
    stat = item.path.stat()
    os.utime(item.path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    changed = cache.get(item, FRAMING)
    assert cache.misses == 3 and changed != first
    assert _decoded(changed).mean() == pytest.approx(30, abs=3)

    broken = ImageItem(key="broken.jpg", label=0, name="broken.jpg", path=tmp_path / "broken.jpg")
    broken.path.write_bytes(b"damaged")
    assert cache.get(broken, FRAMING) is None and cache.misses == 4
    assert cache.get(broken, FRAMING) is None and cache.misses == 4  # not decoded again


def test_two_items_linking_to_one_file_are_two_entries(tmp_path):
    cache = ThumbnailCache()
    one = _save(tmp_path / "a.png", _framed_photo())
    other = ImageItem(key="link/a.png", label=0, name="a.png", path=one.path)
    assert cache.get(one, FRAMING) == cache.get(other, FRAMING)
    assert cache.misses == 2 and len(cache) == 2


def test_the_memory_is_bounded_least_recently_used_first(tmp_path):
    cache = ThumbnailCache(max_items=3)
    items = [_save(tmp_path / f"{i}.png", _framed_photo(300 + i, 256)) for i in range(5)]
    for item in items[:3]:
        cache.get(item, FRAMING)
    cache.get(items[0], FRAMING)  # used again: now the most recent
    for item in items[3:]:
        cache.get(item, FRAMING)
    assert len(cache) == 3 and cache.misses == 5
    cache.get(items[0], FRAMING)
    assert cache.misses == 5 and cache.hits == 2  # kept
    cache.get(items[1], FRAMING)
    assert cache.misses == 6  # evicted, made again
    with pytest.raises(ValueError):
        ThumbnailCache(max_items=0)


def test_thumbnails_on_disk_survive_a_restart_and_stay_within_their_bound(tmp_path):
    folder = tmp_path / "thumbs"
    items = [_save(tmp_path / f"{i}.png", _framed_photo(300 + i, 256)) for i in range(4)]
    cache = ThumbnailCache(folder=folder, max_files=100)
    made = [cache.get(item, FRAMING) for item in items]
    restarted = ThumbnailCache(folder=folder, max_files=100)
    assert [restarted.get(item, FRAMING) for item in items] == made
    assert (restarted.disk_hits, restarted.misses) == (4, 0)
    assert restarted.peek(items[0], FRAMING) == (True, made[0]) and restarted.hits == 1

    keys = [ThumbnailCache.key(item, FRAMING) for item in items]
    for age, key in enumerate(keys):  # written in this order, a second apart
        os.utime(folder / key[:2] / f"{key}.jpg", ns=(10**18 + age * 10**9,) * 2)
    small = ThumbnailCache(folder=folder, max_files=2)
    assert small.prune() == 2
    assert sorted(p.stem for p in folder.glob("*/*.jpg")) == sorted(keys[2:])  # the oldest went


def test_a_thumbnail_from_the_view_is_the_same_crop_and_put_keeps_it(tmp_path):
    from explainer.thumbnails import thumbnail_from_view

    photo = _framed_photo(320, 256)
    side = 224
    crop = FRAMING.crop_box(*photo.size)
    view = np.asarray(photo.resize((side, side), Image.Resampling.BILINEAR, box=crop))
    from_view, from_photo = _decoded(thumbnail_from_view(view, FRAMING)), _decoded(make_thumbnail(photo, FRAMING))
    assert from_view.shape == from_photo.shape == (64, 64, 3)
    assert np.abs(from_view - from_photo).mean() < 3  # the same picture (red crop), resampled otherwise
    with pytest.raises(ValueError):
        thumbnail_from_view(view[:, :200], FRAMING)
    item = _save(tmp_path / "p.png", photo)
    cache = ThumbnailCache(folder=tmp_path / "thumbs")
    cache.put(item, FRAMING, b"first")
    cache.put(item, FRAMING, b"second")  # one is kept already: not replaced
    assert cache.peek(item, FRAMING) == (True, b"first")
    assert ThumbnailCache(folder=tmp_path / "thumbs").peek(item, FRAMING) == (True, b"first")  # on disk too


def test_a_failed_or_cut_write_leaves_no_stray_file_and_prune_skips_what_it_cannot_remove(tmp_path, monkeypatch):
    from pathlib import Path

    import explainer.thumbnails as thumbs

    folder = tmp_path / "thumbs"
    items = [_save(tmp_path / f"{i}.png", _framed_photo(300 + i, 256)) for i in range(3)]
    cache = ThumbnailCache(folder=folder, max_files=100)
    real_replace = os.replace

    def full_disk(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(thumbs.os, "replace", full_disk)
    cache.put(items[0], FRAMING, b"jpeg")  # a full disk only costs the disk copy
    assert list(folder.rglob("*.tmp")) == [] and list(folder.rglob("*.jpg")) == []

    def interrupted(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(thumbs.os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):  # Ctrl-C in a command-line scan goes on up ...
        cache.put(items[1], FRAMING, b"jpeg")
    assert list(folder.rglob("*.tmp")) == []  # ... and leaves nothing half-written
    monkeypatch.setattr(thumbs.os, "replace", real_replace)

    for item in items:
        cache.put(item, FRAMING, b"jpeg")
    keys = [ThumbnailCache.key(item, FRAMING) for item in items]
    for age, key in enumerate(keys):
        os.utime(folder / key[:2] / f"{key}.jpg", ns=(10**18 + age * 10**9,) * 2)
    locked = folder / keys[0][:2] / f"{keys[0]}.jpg"  # the oldest: another user's file
    real_unlink = Path.unlink

    def unlink(self, missing_ok=False):
        if self == locked:
            raise PermissionError(13, "Permission denied")
        return real_unlink(self, missing_ok=missing_ok)

    monkeypatch.setattr(Path, "unlink", unlink)
    assert ThumbnailCache(folder=folder, max_files=1).prune() == 1  # the second oldest went
    assert sorted(p.stem for p in folder.glob("*/*.jpg")) == sorted([keys[0], keys[2]])
