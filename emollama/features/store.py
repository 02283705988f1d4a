"""The feature store: one safetensors file per clip, and a manifest naming the encoders that made them.

Why a store rather than ``.npy`` folders per modality (the original layout): training must be able
to prove that every feature it reads came from the encoder set the model will see at inference.
The manifest records, per modality, the encoder's identity (its path, a hash of its weights'
config, and the preprocessing settings that change what it outputs); a store is written by one
encoder set only, and :meth:`FeatureStore.check_compatible` refuses a model config whose encoders
differ, naming the modality and the field. Features of two encoder sets are therefore never mixed.

Layout::

    FEATURES/
      manifest.json            format, version, identity, dims, storage dtype, source
      clips/<name>.safetensors global_patches [N, Dg], global_cls [Dg], local [Dl], temporal [Dt], audio [Da]
      failed.jsonl             {"name", "reason"} per clip that could not be extracted (retried on a rerun)

Each clip file is written atomically, so a killed extraction loses at most the clip in progress
and a rerun skips every finished file.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from emollama.errors import EmollamaError
from emollama.files import atomic_path, atomic_write_text, file_fingerprint
from emollama.model.config import EmotionLlamaConfig
from emollama.model.emotion_llama import MediaFeatures

FORMAT = "emollama-features"
VERSION = 1
MANIFEST = "manifest.json"
FAILED = "failed.jsonl"
MODALITIES: tuple[str, ...] = ("global_encoder", "local_encoder", "temporal_encoder", "audio_encoder")
#: Tensor names in a clip file, in :class:`MediaFeatures` field order.
TENSORS: tuple[str, ...] = ("global_patches", "global_cls", "local", "temporal", "audio")
#: Prefix of the identity of an encoder whose features were read from the original project's folders.
OFFICIAL = "official:"
#: Config fields that do not change an encoder's output (where the weights live, the compute dtype).
_NOT_IDENTITY = frozenset({"path", "random_init", "dtype"})
#: The encoder kind of each slot before ``kind`` existed there (the global slot always had one).
_FIRST_KIND = {"local_encoder": "vit_mae", "temporal_encoder": "videomae", "audio_encoder": "hubert"}


class FeatureStoreError(EmollamaError):
    """A feature folder is missing, corrupt, or was made by a different encoder set."""


# ------------------------------------------------------------------------------------------- identity
def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()[:16]


_WEIGHT_SUFFIXES = frozenset({".safetensors", ".bin", ".pth", ".pt"})
def encoder_identity(cfg: EmotionLlamaConfig) -> dict[str, dict[str, Any] | None]:
    """Per modality: the encoder's path, a hash of its weights' config, and its output-changing settings.

    The hash is of ``config.json`` plus a fingerprint of each weights file for an HF folder, of the
    fingerprint for a single weights file (EVA ``.pth``), and of ``random_init`` for random weights
    (which are seeded, so the same config always builds the same encoder). The fingerprint (name,
    size, last 64 KiB) tells two checkpoints of one architecture apart — their ``config.json`` and
    safetensors headers are identical, their tensor bytes are not — without reading gigabytes.
    ``None`` = the modality has no encoder.
    """
    out: dict[str, dict[str, Any] | None] = {}
    for name in MODALITIES:
        sub = getattr(cfg, name)
        if sub is None:
            out[name] = None
            continue
        path = _shipped_weights(sub) or cfg.resolve(sub.path)
        if path is None:
            weights = _sha(json.dumps(sub.random_init, sort_keys=True).encode()) if sub.random_init else "none"
            where = "random_init"
        elif path.is_dir() and (path / "config.json").is_file():
            files = sorted(p for p in path.iterdir() if p.suffix in _WEIGHT_SUFFIXES and p.is_file())
            weights = _sha((path / "config.json").read_bytes() + b"".join(file_fingerprint(f) for f in files))
            where = str(path)
        elif path.is_file():
            weights, where = _sha(file_fingerprint(path)), str(path)
        else:
            weights, where = "missing", str(path)
        settings = {k: v for k, v in dataclasses.asdict(sub).items() if k not in _NOT_IDENTITY}
        # Fields added after stores existed count only when they differ from what older stores meant,
        # so a store extracted before them stays valid (a 7B extraction takes hours).
        if settings.get("kind") == _FIRST_KIND.get(name):
            settings.pop("kind")
        if settings.get("kind") != "whisper_base":
            settings.pop("whisper_layers", None)
        settings = json.loads(json.dumps(settings))  # tuples → lists, as the manifest stores them
        out[name] = {"path": where, "weights": weights, "settings": settings}
    return out


def _shipped_weights(sub: Any) -> Path | None:
    """The weights file of the project's own heads when a slot uses one (``face_cnn``, ``whisper_base`` …)."""
    kind = getattr(sub, "kind", None)
    if kind in ("face_cnn", "face_track"):
        from emollama.heads.face import FACE_CNN_WEIGHTS

        return FACE_CNN_WEIGHTS
    if kind == "whisper_base":
        from emollama.packaged import whisper_base_dir

        return whisper_base_dir() / "model.bin"
    return None


def feature_dims(cfg: EmotionLlamaConfig) -> dict[str, list[int]]:
    """Per-clip tensor shapes the model's projector expects."""
    pj = cfg.projector
    return {"global_patches": [pj.global_patches, pj.global_dim], "global_cls": [pj.global_dim],
            "local": [pj.local_dim], "temporal": [pj.temporal_dim], "audio": [pj.audio_dim]}


# ------------------------------------------------------------------------------------------- store
@dataclass
class FeatureStore:
    """An open feature folder (see the module docstring)."""

    root: Path
    manifest: dict[str, Any]

    # -------------------------------------------------------------------------- open / create
    @classmethod
    def open(cls, root: str | Path) -> FeatureStore:
        root = Path(root)
        path = root / MANIFEST
        if not path.is_file():
            raise FeatureStoreError(
                f"{root} is not a feature folder: it has no {MANIFEST} (write one with `emollama features`)."
            )
        try:
            manifest = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise FeatureStoreError(f"{path} is not valid JSON: {exc}") from None
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            raise FeatureStoreError(f"{path} is not an emollama feature manifest (format {FORMAT!r}).")
        if manifest.get("version") != VERSION:
            raise FeatureStoreError(
                f"{path} has feature-store version {manifest.get('version')}; this emollama reads {VERSION}."
            )
        return cls(root, manifest)

    @classmethod
    def create(cls, root: str | Path, cfg: EmotionLlamaConfig, *, source: str = "extracted",
               settings: dict[str, Any] | None = None,
               identity: dict[str, dict[str, Any] | None] | None = None) -> FeatureStore:
        """Open ``root`` for writing features of ``cfg``'s encoders; an existing store must match them.

        ``identity`` overrides :func:`encoder_identity` (the official-folders reader marks the
        modalities it did not compute itself). ``settings`` are the extraction settings (frame
        policy, storage dtype …) recorded for the record and compared on reuse.
        """
        root = Path(root)
        manifest = {
            "format": FORMAT,
            "version": VERSION,
            "source": source,
            "model_name": cfg.name,
            "identity": identity if identity is not None else encoder_identity(cfg),
            "dims": feature_dims(cfg),
            "settings": json.loads(json.dumps(settings or {})),
        }
        if (root / MANIFEST).is_file():
            store = cls.open(root)
            # Where the weights live is not what they are: a moved folder with the same weights is the same set.
            diff = _first_difference(_without_paths(store.manifest), _without_paths(manifest),
                                     ("source", "identity", "dims", "settings"))
            if diff:
                raise FeatureStoreError(
                    f"{root} already holds features of another encoder set or extraction ({diff}); "
                    "use a new output folder, features of two sets are never mixed."
                )
            return store
        if root.exists() and any(root.iterdir()):
            raise FeatureStoreError(f"{root} exists and is not a feature folder; choose an empty or new folder.")
        atomic_write_text(root / MANIFEST, json.dumps(manifest, indent=1) + "\n")
        (root / "clips").mkdir(parents=True, exist_ok=True)
        return cls(root, manifest)

    # -------------------------------------------------------------------------- clips
    @property
    def storage_dtype(self) -> torch.dtype:
        """How the global patch tokens are stored (float16 halves a 7B-shaped store; vectors stay float32)."""
        name = self.manifest.get("settings", {}).get("patch_dtype", "float32")
        return {"float16": torch.float16, "bfloat16": torch.bfloat16}.get(name, torch.float32)

    def clip_file(self, name: str) -> Path:
        if not name or "/" in name or "\\" in name or name.startswith("."):
            raise FeatureStoreError(f"unusable clip name {name!r} (names are file stems)")
        return self.root / "clips" / f"{name}.safetensors"

    def has(self, name: str) -> bool:
        return self.clip_file(name).is_file()

    def names(self) -> list[str]:
        return sorted(p.name[: -len(".safetensors")] for p in (self.root / "clips").glob("*.safetensors"))

    def write(self, name: str, feats: MediaFeatures, row: int = 0) -> Path:
        """Row ``row`` of ``feats`` as ``clips/<name>.safetensors``, atomically."""
        tensors = {t: getattr(feats, t)[row].detach().to("cpu").contiguous() for t in TENSORS}
        tensors["global_patches"] = tensors["global_patches"].to(self.storage_dtype)
        tensors = {k: (v if k == "global_patches" else v.float()) for k, v in tensors.items()}
        self._check_shapes(name, {k: list(v.shape) for k, v in tensors.items()})
        path = self.clip_file(name)
        with atomic_path(path) as tmp:
            save_file(tensors, str(tmp), metadata={"format": FORMAT, "name": name})
        return path

    def read(self, name: str) -> dict[str, torch.Tensor]:
        """One clip's tensors (float32), shapes checked against the manifest."""
        path = self.clip_file(name)
        if not path.is_file():
            raise FeatureStoreError(f"no features for clip {name!r} in {self.root}")
        try:
            tensors = load_file(str(path))
        except (SafetensorError, OSError) as exc:
            raise FeatureStoreError(f"{path} is unreadable ({exc}); delete it and rerun `emollama features`.") from None
        missing = [t for t in TENSORS if t not in tensors]
        if missing:
            raise FeatureStoreError(f"{path} lacks {', '.join(missing)}; delete it and rerun `emollama features`.")
        self._check_shapes(name, {t: list(tensors[t].shape) for t in TENSORS})
        return {t: tensors[t].float() for t in TENSORS}

    def _check_shapes(self, name: str, shapes: dict[str, list[int]]) -> None:
        want = self.manifest["dims"]
        bad = [f"{t} {shapes[t]}≠{want[t]}" for t in TENSORS if shapes[t] != want[t]]
        if bad:
            raise FeatureStoreError(f"features of {name!r} in {self.root} have the wrong shape: {'; '.join(bad)}")

    # -------------------------------------------------------------------------- failures
    def record_failure(self, name: str, reason: str) -> None:
        with open(self.root / FAILED, "a", encoding="utf-8") as fh:
            fh.write(json.dumps({"name": name, "reason": reason}, ensure_ascii=False) + "\n")

    def failures(self) -> dict[str, str]:
        """Clips whose extraction failed and that have no features since (name → last reason)."""
        path = self.root / FAILED
        if not path.is_file():
            return {}
        out: dict[str, str] = {}
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                item = json.loads(line)
                out[str(item["name"])] = str(item["reason"])
            except (json.JSONDecodeError, KeyError, TypeError):
                continue  # a line torn by a kill: the clip is simply retried
        return {n: r for n, r in out.items() if not self.has(n)}

    def clear_failures(self) -> None:
        """Forget old failures before a rerun retries them (the file is rewritten as the rerun goes)."""
        (self.root / FAILED).unlink(missing_ok=True)

    # -------------------------------------------------------------------------- compatibility
    def check_compatible(self, cfg: EmotionLlamaConfig) -> None:
        """Refuse a model whose projector or encoders differ from the ones that made these features.

        Modalities read from the original project's folders (identity ``official:…``) are checked
        on their width only: their encoders are the original team's and cannot be rebuilt here.
        """
        dims = feature_dims(cfg)
        stored = self.manifest["dims"]
        bad = [f"{t}: features {stored[t]} vs projector {dims[t]}" for t in TENSORS if stored[t] != dims[t]]
        if bad:
            raise FeatureStoreError(
                f"the features in {self.root} do not fit the model's projector ({'; '.join(bad)}); "
                "extract them with this model config or change projector.* in it."
            )
        mine = encoder_identity(cfg)
        for modality in MODALITIES:
            theirs, ours = self.manifest["identity"].get(modality), mine[modality]
            if isinstance(theirs, dict) and str(theirs.get("weights", "")).startswith(OFFICIAL):
                continue
            if (theirs is None) != (ours is None):
                have = "no encoder" if theirs is None else "an encoder"
                raise FeatureStoreError(
                    f"{self.root} was extracted with {have} for {modality}, the model config "
                    f"{'has one' if theirs is None else 'has none'}; re-extract with this config."
                )
            if theirs is None or ours is None:
                continue
            for key in ("weights", "settings"):
                if theirs[key] != ours[key]:
                    raise FeatureStoreError(
                        f"{self.root} was extracted with a different {modality} ({key}: "
                        f"{_show(theirs[key])} from {theirs['path']} vs {_show(ours[key])} from {ours['path']}); "
                        "features of another encoder set are never mixed: re-extract with this model config."
                    )


def _show(value: Any) -> str:
    text = json.dumps(value, sort_keys=True) if not isinstance(value, str) else value
    return text if len(text) <= 120 else text[:117] + "…"


def _without_paths(manifest: dict[str, Any]) -> dict[str, Any]:
    identity = {k: ({kk: vv for kk, vv in v.items() if kk != "path"} if isinstance(v, dict) else v)
                for k, v in manifest.get("identity", {}).items()}
    return {**manifest, "identity": identity}


def _first_difference(a: dict[str, Any], b: dict[str, Any], keys: tuple[str, ...]) -> str | None:
    """Where ``a`` and ``b`` first differ, to the deepest key (``identity.local_encoder.settings.pool``)."""
    for key in keys:
        if a.get(key) != b.get(key):
            return _where(a.get(key), b.get(key), key)
    return None


def _where(x: Any, y: Any, path: str) -> str:
    if isinstance(x, dict) and isinstance(y, dict):
        sub = next(k for k in sorted(set(x) | set(y)) if x.get(k) != y.get(k))
        return _where(x.get(sub), y.get(sub), f"{path}.{sub}")
    return f"{path}: stored {_show(x)}, now {_show(y)}"


def collate_features(rows: list[dict[str, torch.Tensor]]) -> MediaFeatures:
    """Clip tensors from :meth:`FeatureStore.read` → one batched :class:`MediaFeatures`."""
    return MediaFeatures(*(torch.stack([r[t] for r in rows]) for t in TENSORS))
