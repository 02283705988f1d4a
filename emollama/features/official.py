"""The original project's feature folders → a feature store, so holders of the released MERR
features train here without re-extracting.

Layout read under ``--official DIR`` (MER2023/MERR names; the MER2024 names in brackets)::

    DIR/mae_340_UTT/{name}.npy    local (MAE)           [mae_340_23_UTT]
    DIR/maeV_399_UTT/{name}.npy   temporal (VideoMAE)   [maeVideo_399_23_UTT]
    DIR/HL-UTT/{name}.npy         audio (HuBERT)        [HL_23_UTT]
    DIR/first_frames/{name}.jpg   the frame for the global encoder

Each ``.npy`` holds 1024 floats, shape ``[1024]`` or ``[1, 1024]``. The original project stores
no global (EVA) features — its global encoder runs online — so each first frame goes through the
model config's global encoder with the processor's preprocessing
(:func:`~emollama.model.tier.encode_media`, the inference path).

The manifest marks the three read modalities with an ``official:<folder>`` identity: their
encoders are the original team's and cannot be rebuilt here, so training checks them on width
only. Clip names are the union of the ``.npy`` stems; a clip lacking a modality or its frame is
recorded as failed with the reason.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from emollama.errors import InputError, error_line
from emollama.features.extract import Event, encode_clips, new_stats, write_events
from emollama.features.store import OFFICIAL, FeatureStore, FeatureStoreError, encoder_identity

if TYPE_CHECKING:
    import torch

    from emollama.model.config import EmotionLlamaConfig
    from emollama.model.encoders import MediaEncoders
    from emollama.model.tier import EmotionLlamaInputs

#: Per modality: the folder names of the original code (MER2023/MERR/DFEW first, then MER2024).
OFFICIAL_FOLDERS: dict[str, tuple[str, ...]] = {
    "local_encoder": ("mae_340_UTT", "mae_340_23_UTT"),
    "temporal_encoder": ("maeV_399_UTT", "maeVideo_399_23_UTT"),
    "audio_encoder": ("HL-UTT", "HL_23_UTT"),
}
#: Per modality: the MediaFeatures field it fills and the projector width it must have.
_TARGET = {"local_encoder": ("local", "local_dim"), "temporal_encoder": ("temporal", "temporal_dim"),
           "audio_encoder": ("audio", "audio_dim")}
FIRST_FRAMES = "first_frames"
_FRAME_SUFFIXES = (".jpg", ".jpeg", ".png")


@dataclass
class OfficialSource:
    """One ``--official DIR``: its folders, its clip names, and how to convert them for ``cfg``."""

    root: Path
    cfg: EmotionLlamaConfig
    folders: dict[str, Path] = field(init=False)
    names: list[str] = field(init=False)

    def __post_init__(self) -> None:
        self.root = Path(self.root).expanduser()
        if not self.root.is_dir():
            raise InputError(f"--official {self.root}: no such folder")
        self.folders = {m: _folder(self.root, m) for m in OFFICIAL_FOLDERS}
        self.names = sorted({p.stem for d in self.folders.values() for p in d.glob("*.npy")
                             if not p.name.startswith(".")})
        if not self.names:
            raise InputError(f"--official {self.root}: its feature folders hold no .npy files")
        ge = self.cfg.global_encoder
        if ge is not None and ge.frame != "first":
            # The folder holds first frames only; the model would then meet another frame at inference.
            raise InputError(f"--official reads {FIRST_FRAMES}/, but the model config's global_encoder.frame is "
                             f"{ge.frame!r}; set it to 'first' (what the released weights saw) for this route")
        if self.cfg.global_encoder is not None and not (self.root / FIRST_FRAMES).is_dir():
            raise InputError(f"--official {self.root}: no {FIRST_FRAMES}/ folder; the global encoder needs each "
                             f"clip's frame as {FIRST_FRAMES}/<name>.jpg (the original stores no global features)")
        self._check_widths()

    def _check_widths(self) -> None:
        """One clear error before any work when the features do not fit the projector (checks one file each)."""
        for modality, folder in self.folders.items():
            first = next((p for p in sorted(folder.glob("*.npy")) if not p.name.startswith(".")), None)
            if first is not None:
                self.vector(modality, first)

    def identity(self) -> dict[str, dict[str, Any] | None]:
        """The config's identity for the global encoder; ``official:<folder>`` for the read modalities."""
        ident = encoder_identity(self.cfg)
        for modality, folder in self.folders.items():
            ident[modality] = {"path": str(folder), "weights": OFFICIAL + folder.name, "settings": {}}
        return ident

    def settings(self, patch_dtype: str) -> dict[str, Any]:
        from emollama.features.extract import check_patch_dtype

        check_patch_dtype(patch_dtype)
        return {"patch_dtype": patch_dtype, "global_frame": f"{FIRST_FRAMES}/<name>.jpg"}

    def create_store(self, out: str | Path, patch_dtype: str) -> FeatureStore:
        return FeatureStore.create(out, self.cfg, source="official", settings=self.settings(patch_dtype),
                                   identity=self.identity())

    # ---------------------------------------------------------------------------------------- reading
    def vector(self, modality: str, path: Path) -> torch.Tensor:
        """One ``.npy`` as a float32 vector of the projector's width; a wrong width names both shapes."""
        import torch

        target, key = _TARGET[modality]
        dim = getattr(self.cfg.projector, key)
        try:
            arr = np.load(path, allow_pickle=False)
        except (OSError, ValueError, EOFError) as exc:
            raise InputError(f"{path} is not a readable .npy file ({type(exc).__name__}: {exc})") from None
        if arr.shape not in ((dim,), (1, dim)):
            raise FeatureStoreError(
                f"{path.parent.name}/{path.name} has shape {list(arr.shape)}, but the projector's {target} input is "
                f"[{dim}] (projector.{key}); use a model config whose projector matches the official features")
        if not np.issubdtype(arr.dtype, np.number):
            raise InputError(f"{path} holds {arr.dtype} values, not numbers")
        return torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32).reshape(dim))

    def frame(self, name: str) -> np.ndarray:
        """``first_frames/<name>.jpg`` as RGB uint8 (EXIF orientation applied)."""
        from PIL import Image, ImageOps, UnidentifiedImageError

        folder = self.root / FIRST_FRAMES
        path = next((p for p in (folder / f"{name}{s}" for s in _FRAME_SUFFIXES) if p.is_file()), None)
        if path is None:
            raise InputError(f"no {FIRST_FRAMES}/{name}.jpg (the global encoder's frame)")
        try:
            with Image.open(path) as im:
                return np.array(ImageOps.exif_transpose(im).convert("RGB"))  # a writable copy
        except (OSError, UnidentifiedImageError) as exc:
            raise InputError(f"{FIRST_FRAMES}/{path.name} is not a readable image ({exc})") from None

    def clip(self, name: str, with_frame: bool) -> tuple[EmotionLlamaInputs, dict[str, torch.Tensor]]:
        """One clip's frame (as encoder inputs) and its three read vectors; every missing piece named at once."""
        from emollama.model.tier import EmotionLlamaInputs

        missing = [f"{d.name}/{name}.npy" for d in self.folders.values() if not (d / f"{name}.npy").is_file()]
        frames: list[np.ndarray] = []
        if with_frame:
            try:
                frames = [self.frame(name)]
            except InputError as exc:
                missing.append(str(exc))
        if missing:
            raise InputError(f"missing {', '.join(missing)}")
        vectors = {_TARGET[m][0]: self.vector(m, d / f"{name}.npy") for m, d in self.folders.items()}
        inputs = EmotionLlamaInputs(frames=frames, frame_times=[0.0] * len(frames), face_crops=[],
                                    peak_frame_index=None, audio_16k=None, subtitle=None)
        return inputs, vectors

    # ---------------------------------------------------------------------------------------- converting
    def convert_batch(self, encoders: MediaEncoders, names: Sequence[str]) -> list[Event]:
        """Read a batch, run the global encoder on its frames at once, fill in the read vectors."""
        ready, vectors, events = [], {}, []
        for name in names:
            try:
                inputs, vectors[name] = self.clip(name, encoders.global_encoder is not None)
                ready.append((name, inputs))
            except Exception as exc:  # noqa: BLE001 - one odd clip must not stop the whole run
                events.append(("error", name, error_line(exc)))
        for kind, name, payload in encode_clips(self.cfg, encoders, ready):
            if kind == "done":
                for target, vec in vectors[name].items():
                    getattr(payload, target)[0] = vec
            events.append((kind, name, payload))
        return events

    def convert(self, store: FeatureStore, *, device: str = "cpu", batch_size: int = 4,
                on_event: Callable[[Event], None] | None = None) -> dict[str, Any]:
        """Write every clip that ``store`` lacks; returns run statistics as ``extract_features`` does."""
        from emollama.model.encoders import GlobalEncoder, MediaEncoders

        if batch_size < 1:
            raise InputError(f"--batch-size must be at least 1, got {batch_size}")
        stats = new_stats(store, self.names)
        todo = [n for n in self.names if not store.has(n)]
        if not todo:
            return stats
        ge = self.cfg.global_encoder
        # Only the global encoder: a holder of the official features need not have MAE/VideoMAE/HuBERT weights.
        encoders = MediaEncoders(self.cfg, GlobalEncoder.from_config(ge, self.cfg) if ge is not None else None,
                                 None, None, None).to(device).eval()
        batches = (self.convert_batch(encoders, todo[i : i + batch_size]) for i in range(0, len(todo), batch_size))
        return write_events(store, batches, stats, on_event)


def _folder(root: Path, modality: str) -> Path:
    """The one folder of ``modality`` under ``root`` (the MERR or the MER2024 name, never both)."""
    found = [root / n for n in OFFICIAL_FOLDERS[modality] if (root / n).is_dir()]
    names = " or ".join(f"{n}/" for n in OFFICIAL_FOLDERS[modality])
    if not found:
        raise InputError(f"--official {root}: no {names} folder (the original project's {modality} features)")
    if len(found) > 1:
        raise InputError(f"--official {root}: holds both {names}; point it at a folder with one feature set, "
                         "features of two sets are never mixed")
    return found[0]
