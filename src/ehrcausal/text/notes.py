"""Clinical notes rendered from simulated records (respiratory encounters and cardiac ICU stays).

A note is written from what a clinician would see: symptoms, signs and background history. It
never names the latent diagnoses of the simulator (pneumonia, COPD, upper-airway infection),
the treatment, the outcome or the effect. The text is informative but imperfect, in the spirit
of the notes of SimSUM (Rabaey et al. 2024) used by Arno & Demeester (2025, AACE):

- several paraphrases per finding, with onset durations;
- negations ("denies cough", "no shortness of breath", "afebrile");
- hedges ("possibly", "mild", "?") used both for findings that are present and, rarely, for
  findings that are absent, so a hedged mention is ambiguous;
- absent findings are sometimes negated explicitly and sometimes simply not mentioned, and
  present findings are occasionally left out;
- distractor history unrelated to the outcome ("appendectomy in 2004", "GERD");
- misspellings (a swap of two adjacent inner letters, or a dropped inner letter) injected into
  each word of four or more letters with probability ``misspelling_rate``; section headers are
  never misspelled.

Two styles: ``"normal"`` (full sentences, redundant cues such as "febrile" next to the
temperature) and ``"compact"`` (telegraphic: "Hx:", "c/o", "SOB", "neg", "T 38.9"), which drops
more findings and negations and is therefore harder for a classifier to read.

All random choices of a batch are drawn up front as one ``(n, k)`` block of uniforms from
``numpy.random.default_rng`` (the content stream) and misspellings from a second, independent
stream; both derive from ``seed`` through :class:`numpy.random.SeedSequence`, so the same
records, seed and style give identical notes, and ``misspelling_rate`` changes nothing but the
misspelt words.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from ..runtime import seed_streams
from ..validation import check_int, check_number

__all__ = [
    "RESPIRATORY_DIAGNOSIS_TERMS",
    "CARDIAC_FORBIDDEN_TERMS",
    "STYLES",
    "RESPIRATORY_NOTE_COLUMNS",
    "CARDIAC_NOTE_COLUMNS",
    "render_respiratory_notes",
    "render_cardiac_notes",
    "note_lexicon",
    "contains_forbidden_term",
]

STYLES = ("normal", "compact")

#: Words and phrases that name a latent diagnosis of the respiratory simulator (or a close
#: synonym). No respiratory note may contain any of them (case-insensitive, whole words).
RESPIRATORY_DIAGNOSIS_TERMS: tuple[str, ...] = (
    "pneumonia",
    "pneumonitis",
    "copd",
    "coad",
    "chronic obstructive",
    "emphysema",
    "bronchitis",
    "bronchiolitis",
    "upper airway infection",
    "airway infection",
    "respiratory infection",
    "respiratory tract infection",
    "chest infection",
    "infection",
    "infective",
    "uri",
    "urti",
    "lrti",
    "common cold",
    "head cold",
    "coryza",
    "flu",
    "influenza",
    "sinusitis",
    "pharyngitis",
    "laryngitis",
    "tonsillitis",
    "consolidation",
)

#: The simulators' treatment, outcome and effect must never be written into a note.
CARDIAC_FORBIDDEN_TERMS: tuple[str, ...] = (
    "treatment",
    "treated",
    "untreated",
    "outcome",
    "propensity",
    "randomised",
    "randomized",
    "intervention",
    "effect",
)

#: Columns a record table needs for :func:`render_respiratory_notes`.
RESPIRATORY_NOTE_COLUMNS = (
    "dyspnoea",
    "cough",
    "pain",
    "nasal",
    "fever",
    "asthma",
    "hay_fever",
    "smoking",
    "self_employed",
    "policy",
    "winter",
    "age",
    "sex",
)

#: Columns a record table needs for :func:`render_cardiac_notes`.
CARDIAC_NOTE_COLUMNS = ("age", "male", "htn", "cad", "af", "chf")

# ---------------------------------------------------------------------------------------------
# Phrase tables. Placeholders: {dur} onset duration, {k} small count, {age}, {sexw}, {poss},
# {job}, {py} pack-years, {cig} cigarettes per day, {ef} ejection fraction, {yr} a year.
# ---------------------------------------------------------------------------------------------

_RESP_SYMPTOMS = ("dyspnoea", "cough", "pain", "nasal", "fever")

_RESP_PHRASES: dict[str, dict[str, dict[str, list[str]]]] = {
    "normal": {
        "dyspnoea": {
            "present": [
                "Reports shortness of breath {dur}.",
                "Complains of breathlessness on exertion {dur}.",
                "Has been short of breath {dur}, worse when climbing stairs.",
                "Describes difficulty breathing {dur}.",
                "Notes dyspnoea on exertion {dur}.",
                "Feels out of breath after walking short distances {dur}.",
            ],
            "absent": [
                "Denies shortness of breath.",
                "No shortness of breath.",
                "Breathing comfortable, no dyspnoea.",
                "No breathlessness at rest or on exertion.",
            ],
            "hedge": [
                "Possibly slightly more breathless than usual, hard to say.",
                "Mild breathlessness at times, unclear if new.",
                "Unsure whether breathing is worse than before.",
            ],
            "cc": ["shortness of breath", "breathlessness", "difficulty breathing"],
        },
        "cough": {
            "present": [
                "Reports a productive cough {dur}.",
                "Has had a dry cough {dur}.",
                "Complains of coughing {dur}, worse at night.",
                "Persistent cough {dur}, bringing up yellow sputum.",
                "Troubled by a cough {dur}.",
            ],
            "absent": [
                "Denies cough.",
                "No cough.",
                "No cough or sputum production.",
            ],
            "hedge": [
                "Occasional mild cough, possibly from a postnasal drip.",
                "Possibly an intermittent cough, not bothersome.",
                "Clears throat often, maybe a slight cough.",
            ],
            "cc": ["a cough", "a persistent cough", "coughing"],
        },
        "pain": {
            "present": [
                "Reports chest pain on deep breathing {dur}.",
                "Complains of a sharp pain in the chest {dur}.",
                "Describes pleuritic chest pain {dur}.",
                "Notes chest discomfort on deep inspiration {dur}.",
                "Has a tight, aching feeling in the chest {dur}.",
            ],
            "absent": [
                "Denies chest pain.",
                "No chest pain.",
                "No pain in the chest.",
            ],
            "hedge": [
                "Vague chest discomfort, possibly muscular.",
                "Mild ache over the ribs at times, unclear significance.",
            ],
            "cc": ["chest pain", "pain in the chest"],
        },
        "nasal": {
            "present": [
                "Reports a runny nose {dur}.",
                "Complains of nasal congestion {dur}.",
                "Has had a blocked nose and sneezing {dur}.",
                "Notes rhinorrhoea {dur}.",
                "Stuffy nose with frequent sneezing {dur}.",
            ],
            "absent": [
                "No nasal congestion.",
                "Denies runny nose.",
                "No rhinorrhoea or sneezing.",
            ],
            "hedge": [
                "Possibly a slightly blocked nose in the mornings.",
                "Mild sniffles at times, nothing much.",
            ],
            "cc": ["a runny nose", "nasal congestion", "a blocked nose"],
        },
        "fever": {
            "present": [
                "Reports feeling feverish {dur}.",
                "Has had fevers and chills {dur}.",
                "Felt hot and sweaty at night {dur}.",
                "Measured a raised temperature at home {dur}.",
            ],
            "absent": [
                "No fevers at home.",
                "Denies fever or chills.",
                "Has not felt feverish.",
            ],
            "hedge": [
                "Possibly felt a bit warm, did not measure the temperature.",
                "Mild chills once, unsure about fever.",
            ],
            "cc": ["fever", "fevers and chills"],
        },
    },
    "compact": {
        "dyspnoea": {
            "present": ["SOB {dur}", "DOE {dur}", "c/o SOB", "+ dyspnoea", "SOB on exertion"],
            "absent": ["no SOB", "neg SOB", "no DOE"],
            "hedge": ["? SOB", "?DOE", "mild SOB ?"],
            "cc": ["SOB", "DOE"],
        },
        "cough": {
            "present": ["cough {dur}", "+ cough", "c/o cough", "prod cough {dur}", "dry cough"],
            "absent": ["no cough", "neg cough", "- cough"],
            "hedge": ["? cough", "occ cough ?", "mild cough"],
            "cc": ["cough"],
        },
        "pain": {
            "present": ["CP {dur}", "+ CP", "pleuritic CP", "c/o chest pain", "CP on insp"],
            "absent": ["no CP", "neg CP", "- CP"],
            "hedge": ["? CP", "vague CP ?"],
            "cc": ["CP"],
        },
        "nasal": {
            "present": ["rhinorrhoea", "+ congestion", "runny nose {dur}", "blocked nose",
                        "sneezing"],
            "absent": ["no congestion", "neg rhinorrhoea", "- nasal sx"],
            "hedge": ["? congestion", "mild sniffles"],
            "cc": ["congestion", "runny nose"],
        },
        "fever": {
            "present": ["fevers {dur}", "+ fever", "chills", "subj fever"],
            "absent": ["no fevers", "neg fever", "- fever"],
            "hedge": ["? fever", "?chills"],
            "cc": ["fever"],
        },
    },
}

_DURATIONS = {
    "normal": [
        "for {k} days",
        "since yesterday",
        "for about a week",
        "for the past two weeks",
        "for {k} days now",
        "over the last few days",
    ],
    "compact": ["x{k}d", "x1wk", "x2wk", "since yday", "x{k}/7"],
}

_RESP_TEXT = {
    "normal": {
        "opening": [
            "A {age}-year-old {sexw} presenting with {cc}.",
            "{age}-year-old {sexw} seen in the outpatient clinic because of {cc}.",
            "Patient is a {age}-year-old {sexw} who reports {cc}.",
        ],
        "cc_none": ["feeling generally unwell", "tiredness", "a routine follow-up visit"],
        "sexw": ["woman", "man"],
        "poss": ["her", "his"],
        "winter": [
            "Symptoms started during the winter months.",
            "Seen in mid-January.",
            "Presents in the middle of winter.",
            "Visit in early December.",
        ],
        "not_winter": [
            "Seen in early summer.",
            "Presents in late spring.",
            "Visit in September.",
            "Seen during the summer months.",
        ],
        "pmh_intro": ["Past medical history: "],
        "pmh_empty": ["Past medical history unremarkable."],
        "asthma": ["asthma since childhood", "known asthma, uses a salbutamol inhaler as needed",
                   "mild persistent asthma"],
        "no_asthma": ["no history of asthma"],
        "hay_fever": ["hay fever", "seasonal allergic rhinitis (hay fever)",
                      "hay fever every spring"],
        "no_hay_fever": ["no hay fever"],
        "distractors": [
            "appendectomy in {yr}",
            "hypercholesterolaemia",
            "allergic to cats",
            "hypothyroidism on levothyroxine",
            "fracture of the left wrist in {yr}",
            "migraine",
            "knee replacement in {yr}",
            "gastro-oesophageal reflux",
            "tonsillectomy as a child",
            "mild eczema",
        ],
        "social_intro": ["Social history: "],
        "smoker": ["current smoker, about {py} pack-years", "smokes {cig} cigarettes a day",
                   "active smoker"],
        "non_smoker": ["never smoked", "non-smoker", "does not smoke"],
        "self_employed": ["self-employed {job}", "runs {poss} own business as a {job}",
                          "works freelance as a {job}"],
        "employed": ["works as a {job}", "employed as a {job}", "salaried {job}",
                     "currently unemployed"],
        "jobs": ["carpenter", "teacher", "plumber", "accountant", "nurse", "electrician",
                 "graphic designer", "shop assistant"],
        "insured": ["has private health insurance", "holds a health-insurance policy",
                    "covered by a private insurance policy"],
        "uninsured": ["no health insurance", "uninsured", "has no insurance policy"],
        "temp": ["Temperature {t} C"],
        "febrile": [", febrile."],
        "afebrile": [", afebrile."],
        "rr": ["Respiratory rate {rr}/min, oxygen saturation {sat}% on room air."],
        "wheeze": ["Scattered expiratory wheeze on auscultation."],
        "crackles": ["Coarse crackles at the {side} base."],
        "clear": ["Chest clear to auscultation bilaterally.",
                  "Vesicular breath sounds, no added sounds."],
        "sides": ["right", "left"],
        "nasal_exam": ["Nasal mucosa swollen and red."],
        "ent_ok": ["Ears, nose and throat unremarkable."],
        "general": ["Alert and oriented.", "Looks well.", "Appears tired but comfortable."],
        "headers": ["History:", "Physical Examination:"],
    },
    "compact": {
        "opening": ["{age}yo {sexw} c/o {cc}.", "pt {age}yo {sexw}, c/o {cc}.",
                    "{age}yo {sexw} w/ {cc}."],
        "cc_none": ["malaise", "fatigue", "f/u"],
        "sexw": ["F", "M"],
        "poss": ["her", "his"],
        "winter": ["winter visit.", "seen Jan.", "seen Dec."],
        "not_winter": ["summer visit.", "seen Jun.", "seen Sep."],
        "pmh_intro": ["PMH: "],
        "pmh_empty": ["PMH: nil."],
        "asthma": ["asthma", "hx asthma", "asthma on inhaler"],
        "no_asthma": ["no asthma"],
        "hay_fever": ["hay fever", "allergic rhinitis"],
        "no_hay_fever": ["no hay fever"],
        "distractors": ["appendectomy {yr}", "hypercholesterolaemia", "cat allergy",
                        "hypothyroid", "wrist fx {yr}", "migraine", "TKR {yr}", "GORD",
                        "eczema"],
        "social_intro": ["SH: "],
        "smoker": ["smoker {py}py", "smoker", "{cig} cig/d"],
        "non_smoker": ["non-smoker", "never smoker"],
        "self_employed": ["self-empl {job}", "self-employed", "freelance {job}"],
        "employed": ["employed {job}", "{job}", "unemployed"],
        "jobs": ["carpenter", "teacher", "plumber", "accountant", "nurse", "electrician",
                 "designer", "shop asst"],
        "insured": ["insured", "private ins", "has policy"],
        "uninsured": ["uninsured", "no ins"],
        "temp": ["T {t}"],
        "febrile": [""],
        "afebrile": [""],
        "rr": ["RR {rr}"],
        "wheeze": ["chest: wheeze"],
        "crackles": ["crackles {side} base"],
        "clear": ["chest clear", "clear"],
        "sides": ["R", "L"],
        "nasal_exam": ["nasal mucosa swollen"],
        "ent_ok": [""],
        "general": [""],
        "headers": ["Hx:", "PE:"],
    },
}

#: (omit a present finding, hedge a present finding, negate an absent one, spurious hedged
#: mention of an absent one), per style; the fever history line is kept rarer.
_RESP_PROBS = {
    "normal": {"omit": 0.08, "hedge": 0.07, "negate": 0.5, "spurious": 0.03,
               "fever_mention": 0.55, "fever_negate": 0.35, "febrile_word": 0.6,
               "temp_shown": 1.0, "season": 0.7, "neg_asthma": 0.3, "neg_hay": 0.15,
               "smoker_shown": 0.9, "non_smoker_shown": 0.7, "self_emp_shown": 0.85,
               "employed_shown": 0.6, "insured_shown": 0.75, "uninsured_shown": 0.5,
               "cc_from_symptom": 0.85},
    "compact": {"omit": 0.2, "hedge": 0.12, "negate": 0.2, "spurious": 0.06,
                "fever_mention": 0.3, "fever_negate": 0.12, "febrile_word": 0.0,
                "temp_shown": 0.75, "season": 0.4, "neg_asthma": 0.1, "neg_hay": 0.05,
                "smoker_shown": 0.8, "non_smoker_shown": 0.4, "self_emp_shown": 0.75,
                "employed_shown": 0.4, "insured_shown": 0.6, "uninsured_shown": 0.3,
                "cc_from_symptom": 0.7},
}

_CARD_PHRASES: dict[str, dict[str, dict[str, list[str]]]] = {
    "normal": {
        "htn": {
            "present": ["hypertension", "HTN", "essential hypertension on amlodipine",
                        "long-standing hypertension", "hypertension on lisinopril"],
            "absent": ["no history of hypertension", "normotensive at baseline",
                       "denies high blood pressure"],
            "hedge": ["borderline blood pressure, not on medication", "possible hypertension"],
        },
        "cad": {
            "present": ["coronary artery disease", "CAD s/p PCI to the LAD",
                        "CAD with a stent placed in {yr}", "ischemic heart disease",
                        "prior NSTEMI"],
            "absent": ["no known coronary disease", "clean coronaries on prior catheterization",
                       "denies history of heart attack"],
            "hedge": ["possible coronary disease, stress test pending",
                      "atypical chest pain, ?CAD"],
        },
        "af": {
            "present": ["paroxysmal atrial fibrillation", "atrial fibrillation on apixaban",
                        "AFib", "persistent AF, rate controlled on metoprolol",
                        "AF s/p ablation"],
            "absent": ["no history of arrhythmia", "sinus rhythm on prior ECGs",
                       "no atrial fibrillation"],
            "hedge": ["occasional palpitations, possible paroxysmal arrhythmia", "? pAF"],
        },
        "chf": {
            "present": ["HFrEF, EF {ef}%", "congestive heart failure", "chronic systolic HF",
                        "heart failure with preserved EF", "CHF with EF {ef}%"],
            "absent": ["no hx of heart failure", "EF {efn}% on recent echo", "no CHF"],
            "hedge": ["? diastolic dysfunction", "possible early heart failure"],
        },
    },
    "compact": {
        "htn": {
            "present": ["HTN", "HTN on amlo", "htn", "HTN on lisinopril"],
            "absent": ["no HTN", "neg HTN"],
            "hedge": ["? HTN", "borderline BP"],
        },
        "cad": {
            "present": ["CAD s/p PCI", "CAD", "hx NSTEMI s/p DES", "CAD s/p stent {yr}"],
            "absent": ["no CAD", "clean cors"],
            "hedge": ["?CAD", "? CAD"],
        },
        "af": {
            "present": ["pAF", "AFib on apixaban", "AF", "afib"],
            "absent": ["NSR", "no AF"],
            "hedge": ["? pAF", "?afib"],
        },
        "chf": {
            "present": ["HFrEF (EF {ef}%)", "CHF", "sHF", "HFpEF"],
            "absent": ["no CHF", "EF {efn}%"],
            "hedge": ["? dCHF", "?HF"],
        },
    },
}

_CARD_TEXT = {
    "normal": {
        "hpi_with": ["HPI: {age}-year-old {sexw} with a past medical history of {pmh} "
                     "who presents with {cc}.",
                     "HPI: {age}-year-old {sexw} with {pmh}, presenting with {cc}."],
        "hpi_without": ["HPI: {age}-year-old {sexw} who presents with {cc}.",
                        "HPI: {age}-year-old {sexw} brought in with {cc}."],
        "sexw": ["woman", "man"],
        "and": [" and "],
        "cc": ["acute onset dyspnea", "chest discomfort", "a syncopal episode",
               "a mechanical fall", "generalized weakness", "altered mental status",
               "hypotension", "fever and productive cough", "abdominal pain",
               "a GI bleed", "palpitations"],
        "pmh_intro": ["PMH: "],
        "pmh_empty": ["PMH: otherwise none."],
        "distractors": ["GERD", "hypothyroidism on levothyroxine", "osteoarthritis of the knees",
                        "gout", "depression", "cataract surgery", "remote cholecystectomy",
                        "hyperlipidemia", "chronic back pain", "type 2 diabetes"],
        "male_distractors": ["BPH"],
        "female_distractors": ["hysterectomy in {yr}"],
        "exam_intro": ["Exam: "],
        "bp": ["BP {sys}/{dia}"],
        "hr": ["HR {hr} {rhythm}"],
        "irregular": ["irregularly irregular"],
        "regular": ["regular"],
        "jvp_up": ["JVP elevated to the jaw"],
        "jvp_ok": ["JVP not elevated"],
        "lungs_wet": ["bibasilar crackles"],
        "lungs_ok": ["lungs clear bilaterally"],
        "edema": ["2+ pitting edema of both legs"],
        "no_edema": ["no lower extremity edema"],
    },
    "compact": {
        "hpi_with": ["HPI: {age}{sexw} w/ PMH {pmh} p/w {cc}.",
                     "HPI: {age}{sexw} w/ {pmh} p/w {cc}."],
        "hpi_without": ["HPI: {age}{sexw} p/w {cc}."],
        "sexw": ["F", "M"],
        "and": [", "],
        "cc": ["SOB", "CP", "syncope", "fall", "weakness", "AMS", "hypotension", "fever/cough",
               "abd pain", "GIB", "palps"],
        "pmh_intro": ["PMH: "],
        "pmh_empty": ["PMH: none."],
        "distractors": ["GERD", "hypothyroid", "OA", "gout", "depression", "s/p CCY", "HLD",
                        "DM2", "chronic LBP"],
        "male_distractors": ["BPH"],
        "female_distractors": ["s/p TAH"],
        "exam_intro": ["Exam: "],
        "bp": ["BP {sys}/{dia}"],
        "hr": ["HR {hr} {rhythm}"],
        "irregular": ["irreg"],
        "regular": [""],
        "jvp_up": ["+JVD"],
        "jvp_ok": [""],
        "lungs_wet": ["crackles"],
        "lungs_ok": [""],
        "edema": ["2+ LE edema"],
        "no_edema": [""],
    },
}

_CARD_PROBS = {
    "normal": {"hpi": 0.6, "pmh": 0.85, "hedge": 0.07, "negate": 0.35, "spurious": 0.03,
               "irregular": 0.6, "jvp": 0.5, "wet": 0.4, "edema": 0.5, "exam_item": 1.0},
    "compact": {"hpi": 0.5, "pmh": 0.6, "hedge": 0.12, "negate": 0.15, "spurious": 0.06,
                "irregular": 0.45, "jvp": 0.35, "wet": 0.3, "edema": 0.35, "exam_item": 0.8},
}

_CONDITIONS = ("htn", "cad", "af", "chf")

_ALL_TABLES: tuple[Any, ...] = (
    _RESP_PHRASES,
    _DURATIONS,
    _RESP_TEXT,
    _CARD_PHRASES,
    _CARD_TEXT,
)

_PLACEHOLDER = re.compile(r"\{[^}]*\}")
_WORDS = re.compile(r"[A-Za-z]+")
_SPLIT_WORDS = re.compile(r"([A-Za-z]+)")


def _strings(obj: Any) -> Iterable[str]:
    if isinstance(obj, str):
        yield obj
    elif isinstance(obj, dict):
        for v in obj.values():
            yield from _strings(v)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            yield from _strings(v)


def note_lexicon() -> frozenset[str]:
    """Every (lower-case, alphabetic) word that a note can contain when no word is misspelt.

    Built from the phrase tables themselves, so a template typo shows up as a word outside the
    lexicon only if it is also outside the tables (tests use it to detect misspellings).
    """
    words: set[str] = set()
    for s in _strings(_ALL_TABLES):
        words.update(w.lower() for w in _WORDS.findall(_PLACEHOLDER.sub(" ", s)))
    return frozenset(words)


def _forbidden_pattern(terms: Iterable[str]) -> re.Pattern[str]:
    alternatives = sorted((re.escape(t) for t in terms), key=len, reverse=True)
    return re.compile(r"\b(?:" + "|".join(alternatives) + r")\b", re.IGNORECASE)


_RESP_FORBIDDEN_RE = _forbidden_pattern(RESPIRATORY_DIAGNOSIS_TERMS)
_CARD_FORBIDDEN_RE = _forbidden_pattern(CARDIAC_FORBIDDEN_TERMS)
_FORBIDDEN_SINGLE = frozenset(
    t.lower() for t in RESPIRATORY_DIAGNOSIS_TERMS + CARDIAC_FORBIDDEN_TERMS if " " not in t
)


def contains_forbidden_term(note: str, terms: Iterable[str] = RESPIRATORY_DIAGNOSIS_TERMS) -> bool:
    """Whether ``note`` contains any of ``terms`` as whole words (case-insensitive)."""
    return bool(_forbidden_pattern(terms).search(note))


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------


class _Uniforms:
    """Hands out the columns of one pre-drawn ``(n, k)`` block of uniforms, in a fixed order."""

    def __init__(self, rng: np.random.Generator, n: int, k: int) -> None:
        self._u = rng.random((n, k))
        self._next = 0

    def col(self) -> np.ndarray:
        if self._next >= self._u.shape[1]:
            raise RuntimeError("note renderer drew more uniforms than it reserved")
        out = self._u[:, self._next]
        self._next += 1
        return out

    def cols(self, k: int) -> np.ndarray:
        return np.stack([self.col() for _ in range(k)], axis=1)


def _index(u: np.ndarray, k: int) -> list[int]:
    """Map uniforms to indices 0..k-1."""
    return np.minimum((u * k).astype(int), k - 1).tolist()


def _int_between(u: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """Map uniforms to integers in [lo, hi] inclusive."""
    return lo + np.minimum((u * (hi - lo + 1)).astype(int), hi - lo)


def _check_common(records: Any, columns: tuple[str, ...], seed: Any, style: str,
                  misspelling_rate: Any) -> pd.DataFrame:
    if not isinstance(records, pd.DataFrame):
        raise ValueError(f"records must be a pandas DataFrame, got {type(records).__name__}")
    missing = [c for c in columns if c not in records.columns]
    if missing:
        raise ValueError(f"records lack the column(s) {missing} needed to render notes")
    check_int(seed, "seed", 0)
    if style not in STYLES:
        raise ValueError(f"style must be one of {STYLES}, got {style!r}")
    check_number(misspelling_rate, "misspelling_rate", 0.0, 0.5)
    return records.reset_index(drop=True)


def _binary(records: pd.DataFrame, name: str) -> np.ndarray:
    col = records[name]
    try:
        v = np.asarray(col, dtype=float)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"records column {name!r} must be 0/1, got {col.dtype}") from exc
    if not np.all(np.isin(v, (0.0, 1.0))):
        raise ValueError(f"records column {name!r} must hold only 0 and 1")
    return v.astype(int)


def _ages(records: pd.DataFrame) -> np.ndarray:
    try:
        age = np.asarray(records["age"], dtype=float)
    except (TypeError, ValueError) as exc:
        raise ValueError("records column 'age' must be numeric") from exc
    if not np.all(np.isfinite(age)) or np.any(age < 0) or np.any(age > 130):
        raise ValueError("records column 'age' must hold finite ages in [0, 130] years")
    return np.rint(age).astype(int)


def _generators(seed: int) -> tuple[np.random.Generator, np.random.Generator]:
    """The content stream and the independent misspelling stream of one batch of notes."""
    ss = seed_streams(seed, ("content", "typos"))
    return np.random.default_rng(ss["content"]), np.random.default_rng(ss["typos"])


def _mangle(word: str, r_kind: float, r_pos: float) -> str:
    """Swap two adjacent inner letters or drop one inner letter (first and last kept)."""
    n = len(word)
    if r_kind < 0.5:
        i = 1 + min(int(r_pos * (n - 3)), n - 4)
        if word[i] != word[i + 1]:
            return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    i = 1 + min(int(r_pos * (n - 2)), n - 3)
    return word[:i] + word[i + 1 :]


def _misspell(text: str, rate: float, rng: np.random.Generator) -> str:
    """Misspell each word of >= 4 letters with probability ``rate`` (one stream per batch)."""
    parts = _SPLIT_WORDS.split(text)  # words at odd positions
    words = parts[1::2]
    if not words:
        return text
    u = rng.random(len(words))
    r = rng.random((len(words), 2))
    for j in np.flatnonzero(u < rate).tolist():
        w = words[j]
        if len(w) < 4:
            continue
        bad = _mangle(w, r[j, 0], r[j, 1])
        if bad.lower() in _FORBIDDEN_SINGLE:
            continue
        parts[2 * j + 1] = bad
    return "".join(parts)


def _assemble(sections: list[list[tuple[str, str]]], rate: float, rng: np.random.Generator,
              sep: str) -> list[str]:
    """Join (header, body) pairs into notes, misspelling bodies only."""
    out = []
    for note in sections:
        pieces = []
        for header, body in note:
            if rate > 0:
                body = _misspell(body, rate, rng)
            pieces.append(f"{header}{sep}{body}" if header else body)
        out.append(("\n\n" if sep == "\n" else " ").join(pieces))
    return out


def _fill_duration(style: str, i_dur: int, k: int) -> str:
    return _DURATIONS[style][i_dur].replace("{k}", str(k))


# ---------------------------------------------------------------------------------------------
# Respiratory notes
# ---------------------------------------------------------------------------------------------


def render_respiratory_notes(
    records: pd.DataFrame,
    *,
    seed: int,
    style: str = "normal",
    misspelling_rate: float = 0.02,
) -> list[str]:
    """Render one clinical note per respiratory encounter.

    Parameters
    ----------
    records : DataFrame with the columns :data:`RESPIRATORY_NOTE_COLUMNS`: symptoms
        ``dyspnoea``, ``cough``, ``pain``, ``nasal`` (0/1) and ``fever`` (0 none, 1 low,
        2 high); background ``asthma``, ``hay_fever``, ``smoking``, ``self_employed``,
        ``policy``, ``winter`` (0/1), ``age`` (years) and ``sex`` ("F"/"M"). Any other column
        (the latent diagnoses, treatment, outcome) is ignored: a note never depends on it.
    seed : non-negative integer; the same records, seed and style give identical notes.
    style : ``"normal"`` (sections "History:" and "Physical Examination:", full sentences) or
        ``"compact"`` (sections "Hx:" and "PE:", telegraphic, fewer cues).
    misspelling_rate : probability in [0, 0.5] that a word of four or more letters is misspelt.

    The temperature is drawn uniformly (in steps of 0.1 C) within the range of the fever level:
    none 36.5-37.4, low 37.5-38.4, high 38.5-40.0.
    """
    rec = _check_common(records, RESPIRATORY_NOTE_COLUMNS, seed, style, misspelling_rate)
    n = len(rec)
    if n == 0:
        return []
    sym = {s: _binary(rec, s) for s in _RESP_SYMPTOMS[:4]}
    fever = np.asarray(rec["fever"], dtype=float)
    if not np.all(np.isin(fever, (0.0, 1.0, 2.0))):
        raise ValueError("records column 'fever' must hold 0 (none), 1 (low) or 2 (high)")
    fever = fever.astype(int)
    sym["fever"] = (fever > 0).astype(int)
    bg = {c: _binary(rec, c) for c in ("asthma", "hay_fever", "smoking", "self_employed",
                                       "policy", "winter")}
    age = _ages(rec)
    sex = rec["sex"].astype(str).str.upper().to_numpy()
    if not np.all(np.isin(sex, ("F", "M"))):
        raise ValueError("records column 'sex' must hold 'F' or 'M'")
    male = (sex == "M").astype(int).tolist()

    rate = float(misspelling_rate)
    rng, typo_rng = _generators(seed)
    U = _Uniforms(rng, n, 64)
    P = _RESP_PROBS[style]
    T = _RESP_TEXT[style]
    phr = _RESP_PHRASES[style]

    # Per symptom: mode (0 omitted, 1 clear mention, 2 hedged mention, 3 negated), phrase, duration.
    modes: dict[str, list[int]] = {}
    phrase_idx: dict[str, list[int]] = {}
    durations: dict[str, list[str]] = {}
    for s in _RESP_SYMPTOMS:
        u_mode, u_phrase, u_dur, u_k = U.col(), U.col(), U.col(), U.col()
        present = sym[s] == 1
        if s == "fever":
            p_pres_shown, p_neg = P["fever_mention"], P["fever_negate"]
            p_hedge = P["hedge"] * 0.5
            mode = np.where(
                present,
                np.where(u_mode < p_hedge, 2, np.where(u_mode < p_hedge + p_pres_shown, 1, 0)),
                np.where(u_mode < P["spurious"], 2,
                         np.where(u_mode < P["spurious"] + p_neg, 3, 0)),
            )
        else:
            mode = np.where(
                present,
                np.where(u_mode < P["omit"], 0, np.where(u_mode < P["omit"] + P["hedge"], 2, 1)),
                np.where(u_mode < P["spurious"], 2,
                         np.where(u_mode < P["spurious"] + P["negate"], 3, 0)),
            )
        modes[s] = mode.tolist()
        phrase_idx[s] = u_phrase.tolist()
        i_dur = _index(u_dur, len(_DURATIONS[style]))
        ks = _int_between(u_k, 2, 6).tolist()
        durations[s] = [_fill_duration(style, a, b) for a, b in zip(i_dur, ks, strict=True)]
    order = np.argsort(U.cols(len(_RESP_SYMPTOMS)), axis=1).tolist()

    i_open = _index(U.col(), len(T["opening"]))
    u_cc, i_cc_none, u_cc_phrase = U.col(), _index(U.col(), len(T["cc_none"])), U.col()
    u_season, u_season_phrase = U.col(), U.col()
    u_asthma, i_asthma = U.col(), _index(U.col(), len(T["asthma"]))
    u_hay, i_hay = U.col(), _index(U.col(), len(T["hay_fever"]))
    n_dis = _index(U.col(), 3)
    dis = [_index(U.col(), len(T["distractors"])) for _ in range(2)]
    dis_year = _int_between(U.col(), 1985, 2020).tolist()
    u_smoke, i_smoke = U.col(), U.col()
    py = _int_between(U.col(), 5, 45).tolist()
    cig = _int_between(U.col(), 3, 25).tolist()
    u_emp, i_emp, i_job = U.col(), U.col(), _index(U.col(), len(T["jobs"]))
    u_ins, i_ins = U.col(), U.col()
    # Temperature in tenths of a degree, within the fever level's range.
    u_t = U.col()
    lo = np.choose(fever, [365, 375, 385])
    hi = np.choose(fever, [374, 384, 400])
    temp = (lo + np.minimum((u_t * (hi - lo + 1)).astype(int), hi - lo)) / 10.0
    u_feb, u_temp_shown = U.col(), U.col()
    # Signs overlap between the states on purpose: they are noisy echoes of dyspnoea.
    rr = np.where(sym["dyspnoea"] == 1, _int_between(U.col(), 16, 26),
                  _int_between(U.col(), 12, 22)).tolist()
    sat = np.where(sym["dyspnoea"] == 1, _int_between(U.col(), 92, 98),
                   _int_between(U.col(), 94, 99)).tolist()
    u_ausc, i_clear, i_side = U.col(), U.col(), _index(U.col(), 2)
    u_nasal_exam, i_general = U.col(), _index(U.col(), len(T["general"]))

    temp_l = temp.tolist()
    headers = T["headers"]
    notes: list[list[tuple[str, str]]] = []
    for i in range(n):
        poss = T["poss"][male[i]]
        # Presenting complaint: a clearly mentioned present symptom, else a generic reason.
        cc = None
        if u_cc[i] < P["cc_from_symptom"]:
            for j in order[i]:
                s = _RESP_SYMPTOMS[j]
                if modes[s][i] == 1:
                    opts = phr[s]["cc"]
                    cc = opts[min(int(u_cc_phrase[i] * len(opts)), len(opts) - 1)]
                    break
        if cc is None:
            cc = T["cc_none"][i_cc_none[i]]
        opening = (T["opening"][i_open[i]]
                   .replace("{age}", str(age[i]))
                   .replace("{sexw}", T["sexw"][male[i]])
                   .replace("{cc}", cc))
        hist = [opening]
        for j in order[i]:
            s = _RESP_SYMPTOMS[j]
            m = modes[s][i]
            if m == 0:
                continue
            kind = ("present", "present", "hedge", "absent")[m]
            opts = phr[s][kind]
            text = opts[min(int(phrase_idx[s][i] * len(opts)), len(opts) - 1)]
            hist.append(text.replace("{dur}", durations[s][i]))
        if u_season[i] < P["season"]:
            table = T["winter"] if bg["winter"][i] else T["not_winter"]
            hist.append(table[min(int(u_season_phrase[i] * len(table)), len(table) - 1)])
        # Past medical history.
        pmh = []
        if bg["asthma"][i]:
            pmh.append(T["asthma"][i_asthma[i]])
        elif u_asthma[i] < P["neg_asthma"]:
            pmh.append(T["no_asthma"][0])
        if bg["hay_fever"][i]:
            pmh.append(T["hay_fever"][i_hay[i]])
        elif u_hay[i] < P["neg_hay"]:
            pmh.append(T["no_hay_fever"][0])
        for d in sorted({dis[0][i], dis[1][i]})[: n_dis[i]]:
            pmh.append(T["distractors"][d].replace("{yr}", str(dis_year[i])))
        if pmh:
            hist.append(T["pmh_intro"][0] + ", ".join(pmh) + ".")
        else:
            hist.append(T["pmh_empty"][0])
        # Social history.
        social = []
        if bg["smoking"][i]:
            if u_smoke[i] < P["smoker_shown"]:
                opts = T["smoker"]
                social.append(opts[min(int(i_smoke[i] * len(opts)), len(opts) - 1)]
                              .replace("{py}", str(py[i])).replace("{cig}", str(cig[i])))
        elif u_smoke[i] < P["non_smoker_shown"]:
            opts = T["non_smoker"]
            social.append(opts[min(int(i_smoke[i] * len(opts)), len(opts) - 1)])
        if bg["self_employed"][i]:
            shown, opts = u_emp[i] < P["self_emp_shown"], T["self_employed"]
        else:
            shown, opts = u_emp[i] < P["employed_shown"], T["employed"]
        if shown:
            social.append(opts[min(int(i_emp[i] * len(opts)), len(opts) - 1)]
                          .replace("{job}", T["jobs"][i_job[i]]).replace("{poss}", poss))
        if bg["policy"][i]:
            shown, opts = u_ins[i] < P["insured_shown"], T["insured"]
        else:
            shown, opts = u_ins[i] < P["uninsured_shown"], T["uninsured"]
        if shown:
            social.append(opts[min(int(i_ins[i] * len(opts)), len(opts) - 1)])
        if social:
            hist.append(T["social_intro"][0] + "; ".join(social) + ".")

        # Physical examination.
        exam = []
        if T["general"][i_general[i]]:
            exam.append(T["general"][i_general[i]])
        if u_temp_shown[i] < P["temp_shown"]:
            t_text = T["temp"][0].replace("{t}", f"{temp_l[i]:.1f}")
            if u_feb[i] < P["febrile_word"]:
                t_text += (T["febrile"] if fever[i] > 0 else T["afebrile"])[0]
            elif style == "normal":
                t_text += "."
            exam.append(t_text)
        exam.append(T["rr"][0].replace("{rr}", str(rr[i])).replace("{sat}", str(sat[i])))
        dys, cgh = sym["dyspnoea"][i], sym["cough"][i]
        if bg["asthma"][i] and dys and u_ausc[i] < 0.6:
            exam.append(T["wheeze"][0])
        elif cgh and u_ausc[i] < 0.45:
            exam.append(T["crackles"][0].replace("{side}", T["sides"][i_side[i]]))
        else:
            opts = T["clear"]
            exam.append(opts[min(int(i_clear[i] * len(opts)), len(opts) - 1)])
        if sym["nasal"][i] and u_nasal_exam[i] < 0.5:
            exam.append(T["nasal_exam"][0])
        elif u_nasal_exam[i] < 0.3 and T["ent_ok"][0]:
            exam.append(T["ent_ok"][0])

        if style == "normal":
            notes.append([(headers[0], " ".join(hist)), (headers[1], " ".join(exam))])
        else:
            notes.append([(headers[0], " ".join(_compact_join(hist))),
                          (headers[1], ", ".join(e.rstrip(".") for e in exam) + ".")])
    return _assemble(notes, rate, typo_rng, "\n" if style == "normal" else " ")


def _compact_join(parts: list[str]) -> list[str]:
    """Telegraphic history: opening sentence, then findings as one comma list."""
    opening, rest = parts[0], parts[1:]
    findings = [p for p in rest if not p.endswith(".")]
    other = [p for p in rest if p.endswith(".")]
    out = [opening]
    if findings:
        out.append(", ".join(findings) + ".")
    return out + other


# ---------------------------------------------------------------------------------------------
# Cardiac notes
# ---------------------------------------------------------------------------------------------


def render_cardiac_notes(
    records: pd.DataFrame,
    *,
    seed: int,
    style: str = "normal",
    misspelling_rate: float = 0.02,
) -> list[str]:
    """Render one cardiology-style ICU admission note per record.

    Parameters
    ----------
    records : DataFrame with the columns :data:`CARDIAC_NOTE_COLUMNS`: ``age`` (years),
        ``male`` (0/1) and the conditions ``htn``, ``cad``, ``af``, ``chf`` (0/1). Other
        columns (treatment, outcome) are ignored.
    seed : non-negative integer; the same records, seed and style give identical notes.
    style : ``"normal"`` (full phrases, "HPI:", "PMH:", "Exam:") or ``"compact"``
        ("72M w/ PMH HTN, pAF p/w SOB").
    misspelling_rate : probability in [0, 0.5] that a word of four or more letters is misspelt.

    Each condition appears in the history of present illness and/or the past-medical-history
    list in one of several phrasings, hedged, negated or not at all; exam signs (blood
    pressure, irregular rhythm, raised JVP, crackles, oedema) are noisy echoes of the conditions.
    The presenting complaint and the distractor history are drawn independently of everything.
    """
    rec = _check_common(records, CARDIAC_NOTE_COLUMNS, seed, style, misspelling_rate)
    n = len(rec)
    if n == 0:
        return []
    cond = {c: _binary(rec, c) for c in _CONDITIONS}
    male = _binary(rec, "male").tolist()
    age = _ages(rec)
    rate = float(misspelling_rate)
    rng, typo_rng = _generators(seed)
    U = _Uniforms(rng, n, 48)
    P = _CARD_PROBS[style]
    T = _CARD_TEXT[style]
    phr = _CARD_PHRASES[style]

    # Per condition: where it appears (hpi / pmh) and how (clear, hedged, negated).
    in_hpi: dict[str, list[bool]] = {}
    in_pmh: dict[str, list[int]] = {}  # 0 absent from PMH, 1 clear, 2 hedged, 3 negated
    pidx: dict[str, list[float]] = {}
    for c in _CONDITIONS:
        u_hpi, u_pmh, u_kind, u_p = U.col(), U.col(), U.col(), U.col()
        present = cond[c] == 1
        in_hpi[c] = (present & (u_hpi < P["hpi"]) & (u_kind >= P["hedge"])).tolist()
        pmh_mode = np.where(
            present,
            np.where(u_kind < P["hedge"], 2, np.where(u_pmh < P["pmh"], 1, 0)),
            np.where(u_kind < P["spurious"], 2,
                     np.where(u_pmh < P["negate"], 3, 0)),
        )
        in_pmh[c] = pmh_mode.tolist()
        pidx[c] = u_p.tolist()
    cond_order = np.argsort(U.cols(len(_CONDITIONS)), axis=1).tolist()
    i_hpi_with = _index(U.col(), len(T["hpi_with"]))
    i_hpi_without = _index(U.col(), len(T["hpi_without"]))
    i_cc = _index(U.col(), len(T["cc"]))
    year = _int_between(U.col(), 1995, 2021).tolist()
    ef = _int_between(U.col(), 15, 40).tolist()
    efn = _int_between(U.col(), 55, 70).tolist()
    n_dis = _index(U.col(), 4)
    dis = [_index(U.col(), len(T["distractors"])) for _ in range(3)]
    u_sex_dis = U.col()
    htn_sys = _int_between(U.col(), 135, 180)
    ok_sys = _int_between(U.col(), 100, 145)
    sys_bp = np.where(cond["htn"] == 1, htn_sys, ok_sys)
    dia = (sys_bp * 0.55 + _int_between(U.col(), -8, 12)).astype(int).tolist()
    sys_l = sys_bp.tolist()
    hr = _int_between(U.col(), 58, 125).tolist()
    u_irr, u_jvp, u_wet, u_edema = U.col(), U.col(), U.col(), U.col()
    u_items = U.cols(4)

    def phrase(c: str, kind: str, i: int) -> str:
        opts = phr[c][kind]
        text = opts[min(int(pidx[c][i] * len(opts)), len(opts) - 1)]
        return (text.replace("{ef}", str(ef[i])).replace("{efn}", str(efn[i]))
                .replace("{yr}", str(year[i])))

    notes: list[list[tuple[str, str]]] = []
    for i in range(n):
        sexw = T["sexw"][male[i]]
        order = [_CONDITIONS[j] for j in cond_order[i]]
        hpi_items = [phrase(c, "present", i) for c in order if in_hpi[c][i]]
        cc = T["cc"][i_cc[i]]
        if hpi_items:
            if len(hpi_items) > 1 and style == "normal":
                pmh_text = ", ".join(hpi_items[:-1]) + T["and"][0] + hpi_items[-1]
            else:
                pmh_text = ", ".join(hpi_items)
            hpi = T["hpi_with"][i_hpi_with[i]].replace("{pmh}", pmh_text)
        else:
            hpi = T["hpi_without"][i_hpi_without[i]]
        hpi = hpi.replace("{age}", str(age[i])).replace("{sexw}", sexw).replace("{cc}", cc)

        pmh = []
        for c in order:
            m = in_pmh[c][i]
            if m:
                pmh.append(phrase(c, ("present", "present", "hedge", "absent")[m], i))
        for d in sorted({dis[0][i], dis[1][i], dis[2][i]})[: n_dis[i]]:
            pmh.append(T["distractors"][d])
        if u_sex_dis[i] < 0.15:
            extra = T["male_distractors"] if male[i] else T["female_distractors"]
            pmh.append(extra[0].replace("{yr}", str(year[i])))
        pmh_line = (T["pmh_intro"][0] + "; ".join(pmh) + ".") if pmh else T["pmh_empty"][0]

        rhythm = T["irregular"][0] if (cond["af"][i] and u_irr[i] < P["irregular"]) else T[
            "regular"][0]
        chf = cond["chf"][i]
        items = [
            T["bp"][0].replace("{sys}", str(sys_l[i])).replace("{dia}", str(dia[i])),
            T["hr"][0].replace("{hr}", str(hr[i])).replace("{rhythm}", rhythm).strip(),
            T["jvp_up"][0] if (chf and u_jvp[i] < P["jvp"]) else T["jvp_ok"][0],
            T["lungs_wet"][0] if (chf and u_wet[i] < P["wet"]) else T["lungs_ok"][0],
            T["edema"][0] if (chf and u_edema[i] < P["edema"]) else T["no_edema"][0],
        ]
        shown = [items[0]] + [
            it for it, u in zip(items[1:], u_items[i], strict=True) if it and u < P["exam_item"]
        ]
        exam_line = ", ".join(shown) + "."
        notes.append([("", hpi), ("", pmh_line), ("", T["exam_intro"][0] + exam_line)])
    return _assemble_cardiac(notes, rate, typo_rng, style)


_CARD_HEADER = re.compile(r"^(HPI:|PMH:|Exam:) ?")


def _assemble_cardiac(notes: list[list[tuple[str, str]]], rate: float,
                      rng: np.random.Generator, style: str) -> list[str]:
    """Join the cardiac lines, keeping their headers ("HPI:", "PMH:", "Exam:") unmisspelt."""
    sep = "\n" if style == "normal" else " "
    out = []
    for note in notes:
        lines = []
        for _, line in note:
            m = _CARD_HEADER.match(line)
            head, body = (line[: m.end()], line[m.end():]) if m else ("", line)
            if rate > 0:
                body = _misspell(body, rate, rng)
            lines.append(head + body)
        out.append(sep.join(lines))
    return out
