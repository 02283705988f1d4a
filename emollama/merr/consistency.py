"""The MERR selection rule: keep a clip only when its peak-frame AUs support its label.

The emotion → AU table is :data:`emollama.recognize.au_rules.EMOTION_AU_RULES` (the same table the
``clues`` tier uses to score faces), so the filter and the recogniser cannot disagree about what
an emotion looks like. Each emotion has *required* AUs and *supporting* AUs:

===========  =======================  ======================
emotion      required                 supporting
===========  =======================  ======================
happy        AU06, AU12               AU25
sad          AU01, AU15               AU04, AU17
surprise     AU01, AU02, AU26         AU05, AU25
fear         AU01, AU04, AU05, AU20   AU02, AU07, AU25, AU26
angry        AU04, AU07, AU23         AU05, AU17, AU10
disgust      AU09, AU10               AU15, AU17
worried      AU01, AU04               AU20, AU23, AU15
doubt        AU04, AU14               AU17, AU23
contempt     AU14 (or a one-sided     —
             lip-corner raise)
===========  =======================  ======================

Decision (intensities on the 0-5 scale at the peak frame):

* **kept** when at least half of the label's required AUs reach ``au_threshold`` (1.0 by default,
  "slight" in FACS terms) *and* the weighted prototype strength
  (:func:`~emollama.recognize.au_rules.rule_strength`) reaches ``min_strength``. This is MER-Factory's
  "≥ 50 % of the rule's AUs present" rule plus a mean-intensity floor, on our AU scale.
* **contempt** is also kept when the lip-corner asymmetry is at least 0.03 inter-ocular
  distances (one intensity point in :func:`~emollama.recognize.au_rules.au_emotion_scores`),
  because contempt is one-sided and a symmetric AU cannot show it.
* **neutral** is kept when the face stays at rest: no AU (blinks aside) reaches ``au_threshold``
  even at the most expressive frame. The original MERR coarse set has no neutral clips at all
  because its rule only looks for AU evidence *for* an emotion; checking for its absence is the
  natural extension.
* **kept by the face model** when the AUs alone do not support the label but the facial-expression
  model ranks the label among its top ``face_rank`` (2 by default) on the same face. Why: AUs here
  come from landmark geometry, and on talking faces (a mouth that moves for speech, a per-clip
  resting baseline that is itself expressive when the actor emotes throughout) they miss most real
  expressions. On the RAVDESS dev takes the AU rule alone kept 12 % of correctly labelled clips
  (happy 1/8, angry 0/8); with the face model's top 2 as a second reading it keeps 83 % and
  still drops 76 % of wrong labels (each take given each of the other six labels), against 86 %
  for the AU rule alone (``benchmarks/merr_filter_keep_rate.py``). ``face_rank=0`` restores the
  AU-only rule.
* **dropped** otherwise, and always when there is no face, no peak frame, or the label has no AU
  prototype (calm, bored), each with its own reason string.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field

from emollama.recognize.au_rules import EMOTION_AU_RULES, rule_strength, supporting_aus

#: Lip-corner asymmetry (inter-ocular units) that counts as a one-sided raise (contempt).
CONTEMPT_ASYMMETRY = 0.03
#: A label the face model ranks this high keeps a clip the AUs alone would drop.
DEFAULT_FACE_RANK = 2


@dataclass(frozen=True)
class FilterDecision:
    """Why a clip was kept or dropped; ``code`` is a stable key for counting in reports."""

    kept: bool
    code: str
    reason: str
    matched_aus: list[str] = field(default_factory=list)
    strength: float | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def check_consistency(label: str, peak_au: Mapping[str, float] | None, *, face_status: str = "ok",
                      corner_asymmetry: float = 0.0, au_threshold: float = 1.0, min_strength: float = 0.6,
                      face_scores: Mapping[str, float] | None = None,
                      face_rank: int = DEFAULT_FACE_RANK) -> FilterDecision:
    """Apply the MERR rule to one clip (see the module docstring): the AUs, then the face model.

    ``face_scores`` are the facial-expression model's clip scores on the label set the label comes
    from (``None`` or ``face_rank=0``: the AU rule alone).
    """
    decision = _au_rule(label, peak_au, face_status=face_status, corner_asymmetry=corner_asymmetry,
                        au_threshold=au_threshold, min_strength=min_strength)
    if decision.kept or decision.code in ("no_face", "no_rule") or not face_scores or face_rank <= 0:
        return decision
    ranked = sorted(face_scores, key=lambda k: -face_scores[k])
    if label in ranked[:face_rank]:
        place = ranked.index(label) + 1
        return FilterDecision(True, "face_model_support",
                              f"{decision.reason}; but the facial-expression model ranks {label} "
                              f"#{place} ({face_scores[label]:.2f})", decision.matched_aus, decision.strength)
    top = ", ".join(f"{k} {face_scores[k]:.2f}" for k in ranked[:face_rank])
    return FilterDecision(False, decision.code, f"{decision.reason}; the facial-expression model reads {top}",
                          decision.matched_aus, decision.strength)


def _au_rule(label: str, peak_au: Mapping[str, float] | None, *, face_status: str, corner_asymmetry: float,
             au_threshold: float, min_strength: float) -> FilterDecision:
    """The AU part of the rule alone (MER-Factory's rule plus the neutral and contempt cases)."""
    if face_status != "ok" or peak_au is None:
        why = "no face was tracked" if face_status in ("no_face", "ok") else f"face channel is {face_status}"
        return FilterDecision(False, "no_face", f"{why}, so no AU evidence can support '{label}'")
    present = {k: v for k, v in peak_au.items() if k != "AU45" and v >= au_threshold}
    if label == "neutral":
        if not present:
            return FilterDecision(True, "neutral_at_rest",
                                  f"no action unit reaches {au_threshold:g} at the peak frame: the face stays at rest")
        top = ", ".join(f"{k} {v:.1f}" for k, v in sorted(present.items(), key=lambda kv: -kv[1])[:3])
        return FilterDecision(False, "neutral_but_active", f"labelled neutral but the face moves ({top})",
                              sorted(present))
    if label not in EMOTION_AU_RULES:
        return FilterDecision(False, "no_rule", f"'{label}' has no AU prototype to check against")
    required, _supporting = EMOTION_AU_RULES[label]
    matched_required = [a for a in required if peak_au.get(a, 0.0) >= au_threshold]
    matched = supporting_aus(peak_au, label, threshold=au_threshold)
    strength = round(rule_strength(peak_au, label), 3)
    if label == "contempt" and abs(corner_asymmetry) >= CONTEMPT_ASYMMETRY:
        return FilterDecision(True, "au_support",
                              f"one-sided lip-corner raise ({abs(corner_asymmetry):.3f} IOD) supports contempt",
                              matched, strength)
    shown = ", ".join(f"{a} {peak_au.get(a, 0.0):.1f}" for a in required)
    if 2 * len(matched_required) >= len(required) and strength >= min_strength:
        return FilterDecision(True, "au_support",
                              f"{len(matched_required)}/{len(required)} required AUs of {label} present ({shown}), "
                              f"prototype strength {strength:.2f}", matched, strength)
    if 2 * len(matched_required) < len(required):
        return FilterDecision(False, "missing_required_aus",
                              f"only {len(matched_required)}/{len(required)} required AUs of {label} reach "
                              f"{au_threshold:g} ({shown})", matched, strength)
    return FilterDecision(False, "weak_prototype",
                          f"required AUs of {label} are present but weak: strength {strength:.2f} < {min_strength:g}",
                          matched, strength)
