"""Training samples for the fusion head: real clips, and cross-corpus pairs of one label.

**Clips** (``clip_samples``): every row of a labelled clip manifest (``path,label``) goes through
the same :class:`~emollama.perception.pipeline.Perceiver` as ``analyze`` and becomes one
:class:`~emollama.recognize.fusion_inputs.FusionInputs`, cached per clip (``.npz``, written
atomically, keyed by the file's size and mtime), so a rerun or a killed run redoes only what is
missing. Takes labelled ``calm`` are skipped: the head's classes are dfew7.

**Pairs** (``pair_samples``): one sample = a face, a voice and a text that carry the *same* label
but come from different people and corpora — a FER2013 *val* face (the face head never trained on
it), an EmoDB utterance, a MELD *dev* utterance. They teach how far each head's output can be
trusted when the others disagree, over many more people than the dev clips hold; they cannot teach
real co-occurrence (that comes from the clips). The voice probabilities of EmoDB are
leave-one-speaker-out (a head refitted without that speaker, with the shipped head's layers, C and
temperature), because the shipped head has seen every EmoDB speaker and would look far surer on
them than on any new voice. Per label, :data:`PAIRS_PER_LABEL` pairs; each pair has its voice with
probability :data:`PAIR_VOICE_SHARE` and its text with probability :data:`PAIR_TEXT_SHARE`. EmoDB
has no *surprise*, and the voice head no surprise class: a surprise pair's voice is an EmoDB
utterance of a high-arousal label (:data:`SURPRISE_VOICES`: surprise is a high-arousal state in
the circumplex, and surprised speech is raised and loud), so surprise pairs have a voice as often
as the others, and a calm voice still speaks against surprise. Two earlier versions were worse
on the dev takes with a head trained on pairs only: no voice for surprise pairs (the head learned
"a voice is present, so not surprise": surprise recall 0/7, accuracy 0.57 on 51 takes) and a voice of any
label (the voice then never spoke against surprise, which became the answer to every
disagreement: 19 of 52 takes, accuracy 0.40). Face crops of image corpora have no landmark AUs:
pairs never have ``action_units``. The seed fixes every draw.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from emollama.files import atomic_write_npz
from emollama.labels import normalize_label
from emollama.recognize.fusion_inputs import (
    FACE_LABELS,
    TEXT_LABELS,
    VOICE_LABELS,
    FusionInputs,
    face_sequence,
    log_probs,
    voice_vector,
)

PAIRS_PER_LABEL = 400
PAIR_VOICE_SHARE = 0.5
PAIR_TEXT_SHARE = 0.5
#: EmoDB labels whose voices stand in for surprised speech (see the module docstring).
SURPRISE_VOICES = ("happy", "fear", "angry")
#: RAVDESS file names end in ...-emotion-intensity-statement-repetition-actor (the full names start
#: with modality and vocal channel; the dev copy keeps only the channel).
_RAVDESS = re.compile(r"(?:\d\d-){3,4}(\d\d)-(\d\d)-(\d\d)(?:\.\w+)?$")

Log = Callable[[str], None]


@dataclass
class Sample:
    inputs: FusionInputs
    label: str
    group: str  # cross-validation group (e.g. RAVDESS sentence + repetition); "pairs" for pairs
    source: str
    replay: ClipReplay | None = None  # clips only: what the hand-set fusion and the face pooling need


@dataclass
class ClipReplay:
    """What it takes to replay the hand-set fusion on a clip without perceiving it again.

    ``frame_probs`` (T x face classes, ``frame_labels`` order), ``confident`` and ``times`` per
    tracked frame and ``peak`` (index into them, -1 for none) let every face pooling method of
    :func:`emollama.perception.face_clues.pool_expression` be compared; ``evidence`` is the
    hand-set fusion's input (:func:`emollama.recognize.clues.clues_evidence`) as plain data.
    """

    frame_probs: np.ndarray
    frame_labels: list[str]
    confident: np.ndarray
    times: np.ndarray
    peak: int
    evidence: list[dict]

    @classmethod
    def of(cls, p: object) -> ClipReplay:
        from emollama.perception.face import MIN_CONFIDENCE
        from emollama.recognize.clues import clues_evidence

        main = p.scan.main  # type: ignore[attr-defined]
        obs = main.observations if main is not None else []
        peak = p.face.clues.peak  # type: ignore[attr-defined]
        index = {o.frame_index: i for i, o in enumerate(obs)}
        n_labels = len(p.scan.expression_labels)  # type: ignore[attr-defined]
        return cls(np.stack([o.expression for o in obs]) if obs else np.zeros((0, n_labels)),
                   [normalize_label(k) for k in p.scan.expression_labels],  # type: ignore[attr-defined]
                   np.array([o.confidence >= MIN_CONFIDENCE for o in obs], dtype=bool),
                   np.array([o.time_s for o in obs]), index.get(peak.index, -1) if peak is not None else -1,
                   [{"modality": e.modality, "probs": dict(e.probs), "reliability": e.reliability,
                     "source": e.source} for e in clues_evidence(p)])

    def arrays(self) -> dict[str, np.ndarray]:
        return {"r_probs": self.frame_probs, "r_labels": np.array(self.frame_labels), "r_confident": self.confident,
                "r_times": self.times, "r_peak": np.array(self.peak), "r_evidence": np.array(json.dumps(self.evidence))}

    @classmethod
    def from_arrays(cls, z: Mapping[str, np.ndarray]) -> ClipReplay:
        return cls(z["r_probs"], [str(v) for v in z["r_labels"]], z["r_confident"].astype(bool), z["r_times"],
                   int(z["r_peak"]), json.loads(str(z["r_evidence"])))


def ravdess_group(name: str) -> str | None:
    """``s<statement>r<repetition>`` of a RAVDESS file name, or None when the name is not one."""
    m = _RAVDESS.search(name)
    return f"s{m.group(1)}r{m.group(2)}" if m else None


def _save(path: Path, x: FusionInputs, replay: ClipReplay) -> None:
    atomic_write_npz(path, face=x.face, face_frames=x.face_frames, action_units=x.action_units, voice=x.voice,
               words=x.words, present=np.array([x.present[m] for m in x.present]), names=np.array(list(x.present)),
               **replay.arrays())


def _load(path: Path) -> tuple[FusionInputs, ClipReplay] | None:
    """A cached clip, or None for a cache file of an older layout (then the clip is perceived again)."""
    with np.load(path) as z:
        if "r_evidence" not in z.files:
            return None
        present = dict(zip([str(n) for n in z["names"]], [bool(v) for v in z["present"]], strict=True))
        return (FusionInputs(z["face"], int(z["face_frames"]), z["action_units"], z["voice"], z["words"], present),
                ClipReplay.from_arrays(z))


def clip_samples(manifest: Path, cache: Path, perceiver: object | None = None, *, words: bool = True,
                 log: Log | None = None) -> tuple[list[Sample], list[dict[str, str]]]:
    """One sample per labelled clip (calm skipped), and the clips that failed with their reason.

    ``words`` (default) keeps the transcript as ``analyze`` sees it (speech recognition): the head
    is trained and scored on what it will meet. The RAVDESS sentences are the same for every
    emotion, so they cannot help it find the label; they teach it that lexically neutral words
    are no evidence of a neutral feeling. ``words=False`` withholds them.
    """
    from emollama.recognize.fusion_inputs import from_perception

    with open(manifest, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    cache.mkdir(parents=True, exist_ok=True)
    out: list[Sample] = []
    failed: list[dict[str, str]] = []
    for i, row in enumerate(rows):
        label = normalize_label(row["label"])
        if label == "calm":
            continue
        path = manifest.parent / row["path"]
        st = path.stat()
        key = hashlib.sha1(f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()[:16]
        cached = cache / f"{path.stem}.{key}.npz"
        loaded = _load(cached) if cached.is_file() else None
        if loaded is None:
            if perceiver is None:
                from emollama.perception.pipeline import Perceiver

                perceiver = Perceiver()
            try:
                p = perceiver.perceive(path)  # type: ignore[attr-defined]
                loaded = from_perception(p), ClipReplay.of(p)
            except Exception as exc:  # noqa: BLE001 - a bad clip is listed and skipped, never fatal
                failed.append({"path": row["path"], "reason": str(exc) or type(exc).__name__})
                continue
            _save(cached, *loaded)
        x, replay = loaded
        if log:
            log(f"clip {i + 1}/{len(rows)} {row['path']}")
        if not words:
            x.present["words"] = False
            x.words = np.zeros_like(x.words)
        group = row.get("group") or ravdess_group(row["path"]) or row["path"]
        out.append(Sample(x, label, group, row["path"], replay))
    return out, failed


def restrict(samples: list[Sample], modalities: tuple[str, ...]) -> list[Sample]:
    """The samples as a head that reads only ``modalities`` sees them; samples left with none are dropped."""
    out = []
    for s in samples:
        present = {m: s.inputs.present[m] and m in modalities for m in s.inputs.present}
        if any(present.values()):
            x = FusionInputs(s.inputs.face, s.inputs.face_frames, s.inputs.action_units, s.inputs.voice,
                             s.inputs.words, present)
            out.append(Sample(x, s.label, s.group, s.source, s.replay))
    return out


def _fer_val_faces(root: Path) -> tuple[list[np.ndarray], list[str]]:
    """Face-head probabilities (FACE_LABELS order) for every FER2013 val image, with its label."""
    from emollama.heads.face import load_expression_model
    from emollama.train.heads.fer2013 import read_grey

    model = load_expression_model()
    order = [list(model.labels).index(k) for k in FACE_LABELS]
    with open(root / "labels.csv", newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["split"] == "val"]
    probs: list[np.ndarray] = []
    for start in range(0, len(rows), 256):
        crops = [read_grey(root / r["path"], 48) for r in rows[start:start + 256]]
        probs.extend(model.predict(crops)[:, order])
    return probs, [normalize_label(r["label"]) for r in rows]


def _emodb_voices(root: Path) -> tuple[list[np.ndarray], list[str]]:
    """Voice vectors for EmoDB with leave-one-speaker-out head probabilities (see the module docstring)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    from emollama.heads.calibration import softmax
    from emollama.perception.voice_emotion import VoiceEmotion, speech_only
    from emollama.train.heads.voice import load_audio

    voice = VoiceEmotion()
    head = voice.head.head
    with open(root / "labels.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    clues, feats, keep = [], [], []
    for r in rows:
        audio = load_audio(root / r["path"])
        c, _ = voice.prosody.analyze(audio)
        speech = speech_only(audio, c) if c.status == "ok" else None
        if speech is None:
            continue
        clues.append(c)
        feats.append(voice.head.features(speech).ravel())
        keep.append(r)
    x = np.stack(feats)
    y = np.array([list(head.labels).index(normalize_label(r["label"])) for r in keep])
    spk = np.array([r["speaker_id"] for r in keep])
    c_value = float(head.meta.get("dev", {}).get("C", 1.0))
    probs = np.zeros((len(y), len(head.labels)))
    for s in np.unique(spk):
        tr, te = spk != s, spk == s
        scaler = StandardScaler().fit(x[tr])
        clf = LogisticRegression(C=c_value, max_iter=5000, class_weight="balanced").fit(scaler.transform(x[tr]), y[tr])
        probs[te] = softmax(clf.decision_function(scaler.transform(x[te])) / head.temperature)
    vectors = [voice_vector(dict(zip(head.labels, p, strict=True)), c) for p, c in zip(probs, clues, strict=True)]
    return vectors, [normalize_label(r["label"]) for r in keep]


def _meld_dev_texts(path: Path) -> tuple[list[np.ndarray], list[str]]:
    from emollama.perception.text_emotion import TextEmotion
    from emollama.train.heads.text_data import LABELS, read_meld

    texts, ys = read_meld(path)
    text = TextEmotion()
    vectors = [log_probs(text.analyze(t)[0], TEXT_LABELS) for t in texts]
    return vectors, [normalize_label(LABELS[i]) for i in ys]


def _cached(path: Path, build: Callable[[], tuple[list[np.ndarray], list[str]]]) -> tuple[np.ndarray, list[str]]:
    if path.is_file():
        with np.load(path) as z:
            return z["x"], [str(v) for v in z["y"]]
    x, y = build()
    atomic_write_npz(path, x=np.stack(x), y=np.array(y))
    return np.stack(x), y


def pair_samples(data: Path, cache: Path, labels: tuple[str, ...], seed: int = 0,
                 per_label: int = PAIRS_PER_LABEL, log: Log | None = None) -> list[Sample]:
    """Cross-corpus pairs (FER2013 val face, EmoDB voice, MELD dev text) of one label each."""
    cache.mkdir(parents=True, exist_ok=True)
    say = log or (lambda _m: None)
    say("pairs: face head on FER2013 val")
    faces, face_y = _cached(cache / "fer_val_faces.npz", lambda: _fer_val_faces(data / "fer2013"))
    say("pairs: voice head (leave-one-speaker-out) on EmoDB")
    voices, voice_y = _cached(cache / "emodb_voices.npz", lambda: _emodb_voices(data / "emodb"))
    say("pairs: text head on MELD dev")
    texts, text_y = _cached(cache / "meld_dev_texts.npz", lambda: _meld_dev_texts(data / "text" / "meld_dev.csv"))
    rng = np.random.default_rng(seed)
    by = {name: {y: np.flatnonzero(np.array(ys) == y) for y in labels}
          for name, ys in (("face", face_y), ("voice", voice_y), ("words", text_y))}
    out: list[Sample] = []
    aroused = np.flatnonzero(np.isin(np.array(voice_y), SURPRISE_VOICES))
    for y in labels:
        voice_pool = by["voice"][y] if len(by["voice"][y]) else aroused  # surprise: a high-arousal voice
        for _ in range(per_label):
            x = FusionInputs.empty()
            x.face, x.face_frames = face_sequence(faces[rng.choice(by["face"][y])][None, :])
            x.present["face"] = True
            if rng.random() < PAIR_VOICE_SHARE:
                x.voice, x.present["voice"] = voices[rng.choice(voice_pool)], True
            if len(by["words"][y]) and rng.random() < PAIR_TEXT_SHARE:
                x.words, x.present["words"] = texts[rng.choice(by["words"][y])], True
            out.append(Sample(x, y, "pairs", "pair"))
    return out


__all__ = ["ClipReplay", "Sample", "clip_samples", "restrict", "pair_samples", "ravdess_group", "VOICE_LABELS"]
