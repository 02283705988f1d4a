"""Label sets, the one synonym table, and how scores move between label sets.

Every dataset spells emotions its own way (``anger``/``angry``, ``joy``/``happiness``, ``生气``…).
All of them pass through :data:`SYNONYMS` to one *canonical* word. A canonical word that a label
set does not contain is never silently renamed: :func:`project_scores` spreads its probability
mass with the documented weights in :data:`CROSS_SET_MAP`, and callers that evaluate (rather than
fuse) report such labels as "not covered".
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from emollama.errors import UnknownLabelError, UnknownLabelSetError

#: Every canonical emotion word the project knows. Order is only for display.
CANONICAL: tuple[str, ...] = (
    "neutral",
    "happy",
    "angry",
    "worried",
    "sad",
    "surprise",
    "fear",
    "doubt",
    "contempt",
    "disgust",
    "calm",
    "bored",
)


@dataclass(frozen=True)
class LabelSet:
    """An ordered set of canonical labels a recogniser chooses from."""

    name: str
    labels: tuple[str, ...]
    description: str

    def __contains__(self, label: object) -> bool:
        return label in self.labels

    def __len__(self) -> int:
        return len(self.labels)

    def index(self, label: str) -> int:
        return self.labels.index(label)


LABEL_SETS: dict[str, LabelSet] = {
    "merr9": LabelSet(
        "merr9",
        ("neutral", "happy", "angry", "worried", "sad", "surprise", "fear", "doubt", "contempt"),
        "the nine MERR / Emotion-LLaMA categories",
    ),
    "mer6": LabelSet(
        "mer6",
        ("neutral", "angry", "happy", "sad", "worried", "surprise"),
        "MER2023/MER2024 six classes",
    ),
    "ekman7": LabelSet(
        "ekman7",
        ("neutral", "happy", "sad", "angry", "surprise", "fear", "disgust"),
        "Ekman's six basic emotions plus neutral (FER2013, GoEmotions-Ekman, MELD)",
    ),
    "dfew7": LabelSet(
        "dfew7",
        ("happy", "sad", "neutral", "angry", "surprise", "disgust", "fear"),
        "DFEW seven classes (its own order)",
    ),
}

DEFAULT_LABEL_SET = "merr9"

#: Spelling → canonical word. Lower-case keys; Chinese words as they appear in MER subtitles/labels.
SYNONYMS: dict[str, str] = {
    # neutral
    "neutral": "neutral", "neutrality": "neutral", "none": "neutral", "no emotion": "neutral",
    "中性": "neutral", "中立": "neutral", "无情绪": "neutral",
    # happy
    "happy": "happy", "happiness": "happy", "joy": "happy", "joyful": "happy", "glad": "happy",
    "delighted": "happy", "cheerful": "happy", "pleased": "happy", "excited": "happy",
    "amused": "happy", "content": "happy", "开心": "happy", "高兴": "happy", "快乐": "happy",
    "喜悦": "happy", "愉快": "happy",
    # angry
    "angry": "angry", "anger": "angry", "mad": "angry", "furious": "angry", "annoyed": "angry",
    "irritated": "angry", "rage": "angry", "enraged": "angry", "frustrated": "angry",
    "生气": "angry", "愤怒": "angry", "恼火": "angry",
    # worried
    "worried": "worried", "worry": "worried", "anxious": "worried", "anxiety": "worried",
    "nervous": "worried", "concerned": "worried", "uneasy": "worried", "担心": "worried",
    "焦虑": "worried", "忧虑": "worried", "着急": "worried",
    # sad
    "sad": "sad", "sadness": "sad", "unhappy": "sad", "sorrow": "sad", "sorrowful": "sad",
    "depressed": "sad", "upset": "sad", "grief": "sad", "down": "sad", "伤心": "sad",
    "难过": "sad", "悲伤": "sad", "沮丧": "sad",
    # surprise
    "surprise": "surprise", "surprised": "surprise", "astonished": "surprise",
    "amazed": "surprise", "shocked": "surprise", "startled": "surprise", "惊讶": "surprise",
    "吃惊": "surprise", "惊奇": "surprise", "震惊": "surprise",
    # fear
    "fear": "fear", "fearful": "fear", "afraid": "fear", "scared": "fear", "frightened": "fear",
    "terrified": "fear", "panic": "fear", "害怕": "fear", "恐惧": "fear", "惊恐": "fear",
    # doubt
    "doubt": "doubt", "doubtful": "doubt", "skeptical": "doubt", "sceptical": "doubt",
    "suspicious": "doubt", "confused": "doubt", "puzzled": "doubt", "uncertain": "doubt",
    "怀疑": "doubt", "疑惑": "doubt", "困惑": "doubt",
    # contempt
    "contempt": "contempt", "contemptuous": "contempt", "scorn": "contempt",
    "disdain": "contempt", "dismissive": "contempt", "轻蔑": "contempt", "鄙视": "contempt",
    "不屑": "contempt",
    # disgust
    "disgust": "disgust", "disgusted": "disgust", "revulsion": "disgust", "repulsed": "disgust",
    "厌恶": "disgust", "恶心": "disgust",
    # calm / bored are real dataset labels (RAVDESS, EmoDB) with no counterpart in the MER sets
    "calm": "calm", "relaxed": "calm", "平静": "calm",
    "bored": "bored", "boredom": "bored", "无聊": "bored",
}

#: Where a canonical label's probability goes when the target set lacks it. Weights sum to 1.
#: Rationale: MER's "worried" covers anxious fear; disgust and contempt share AU9/AU10/AU14 and
#: are the nearest rejection emotions; calm/bored are low-arousal states closest to neutral
#: (bored also leans sad); doubt carries no basic-emotion content, so it falls to neutral.
CROSS_SET_MAP: dict[str, dict[str, float]] = {
    "fear": {"worried": 1.0},
    "worried": {"fear": 1.0},
    "disgust": {"contempt": 0.6, "angry": 0.4},
    "contempt": {"disgust": 1.0},
    "doubt": {"neutral": 1.0},
    "calm": {"neutral": 1.0},
    "bored": {"neutral": 0.7, "sad": 0.3},
}


def get_label_set(name: str | LabelSet) -> LabelSet:
    """Return a label set by name, with the valid names in the error when it is unknown."""
    if isinstance(name, LabelSet):
        return name
    key = name.strip().lower()
    if key not in LABEL_SETS:
        raise UnknownLabelSetError(
            f"unknown label set {name!r}; choose one of: {', '.join(LABEL_SETS)}"
        )
    return LABEL_SETS[key]


def normalize_label(spelling: str) -> str:
    """Map a dataset's spelling of an emotion to the canonical word (case and spacing ignored)."""
    key = re.sub(r"\s+", " ", str(spelling).strip().lower())
    if key in SYNONYMS:
        return SYNONYMS[key]
    raise UnknownLabelError(
        f"unknown emotion label {spelling!r}; known spellings map to: {', '.join(CANONICAL)}"
    )


def reachable_labels(source_labels: Iterable[str], target: LabelSet | str) -> set[str]:
    """Target labels that a model with ``source_labels`` can put probability on.

    A label is reachable when the source has it or routes mass to it through
    :data:`CROSS_SET_MAP`. Fusion treats unreachable labels as "no opinion", so a face model that
    has no *doubt* class does not vote against doubt.
    """
    target = get_label_set(target)
    out = set()
    for label in source_labels:
        if label in target:
            out.add(label)
        else:
            out.update(d for d in CROSS_SET_MAP.get(label, {}) if d in target)
    return out


def project_scores(scores: Mapping[str, float], target: LabelSet | str) -> dict[str, float]:
    """Move scores over canonical labels onto ``target``'s labels and renormalise to sum 1.

    Labels already in the target keep their mass; others are spread by :data:`CROSS_SET_MAP`.
    A label with no route into the target is dropped (its mass is lost before renormalising),
    which is the honest outcome: the target set cannot express it.
    """
    target = get_label_set(target)
    out = dict.fromkeys(target.labels, 0.0)
    for label, value in scores.items():
        if label in out:
            out[label] += float(value)
            continue
        for dest, weight in CROSS_SET_MAP.get(label, {}).items():
            if dest in out:
                out[dest] += weight * float(value)
    total = sum(out.values())
    if total <= 0:
        return {k: 1.0 / len(out) for k in out}
    return {k: v / total for k, v in out.items()}
