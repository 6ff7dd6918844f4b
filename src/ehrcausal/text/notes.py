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

The wording lives in data files, ``phrases/respiratory.json`` and ``phrases/cardiac.json`` (one
block per style; read once by :func:`phrase_tables`); this module holds the rendering logic and
the probabilities with which findings are mentioned, hedged, negated or left out.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from functools import cache
from importlib import resources
from types import MappingProxyType
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
    "TRIAL_CONCEPTS",
    "TRIAL_WORDINGS",
    "render_trial_notes",
    "MULTIMODAL_NOTE_FINDINGS",
    "render_finding_notes",
    "note_lexicon",
    "contains_forbidden_term",
    "phrase_tables",
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
# Phrase tables: data files phrases/respiratory.json and phrases/cardiac.json, one block per style.
# Placeholders: {dur} onset duration, {k} small count, {age}, {sexw}, {poss}, {job},
# {py} pack-years, {cig} cigarettes per day, {ef}/{efn} ejection fraction, {yr} a year,
# {t} temperature, {rr} respiratory rate, {sat} saturation, {side}, {cc} presenting complaint,
# {pmh} history list, {sys}/{dia} blood pressure, {hr} heart rate, {rhythm}.
# ---------------------------------------------------------------------------------------------

_RESP_SYMPTOMS = ("dyspnoea", "cough", "pain", "nasal", "fever")
_CONDITIONS = ("htn", "cad", "af", "chf")
_KINDS = ("present", "absent", "hedge")

#: The clinical concepts of the trial simulator's enrolment notes (``phrases/trial.json``), in
#: the order of :func:`ehrcausal.data.simulate_trial_notes`: six pairs (a concept and a
#: correlated one: a condition and its specialist, drug or device), then four prognostic
#: conditions, then eight conditions with no role.
TRIAL_CONCEPTS: tuple[str, ...] = (
    "ckd", "nephrology", "heart_failure", "loop_diuretic", "diabetes", "metformin",
    "smoker", "inhaler", "obesity", "sleep_apnoea", "depression", "ssri",
    "prior_mi", "atrial_fibrillation", "stroke", "frailty",
    "osteoarthritis", "reflux", "hypothyroidism", "cataract", "gout", "penicillin_allergy",
    "migraine", "psoriasis",
)

#: Wordings of the trial notes: every phrase of a concept, or only its first (canonical) one.
TRIAL_WORDINGS: tuple[str, ...] = ("varied", "canonical")

#: The keys each style block of a phrase file must hold (the renderer reads exactly these).
#: The findings a note of the multimodal cohort can mention (symptoms and signs, never a
#: diagnosis); :func:`render_finding_notes` reads a 0/1 column of each.
MULTIMODAL_NOTE_FINDINGS: tuple[str, ...] = (
    "dyspnoea", "chest_pain", "confusion", "palpitations", "foamy_urine", "jaundice",
    "weight_loss", "numbness", "headache", "neck_stiffness", "dysuria", "rash", "night_sweats",
)

_REQUIRED: dict[str, dict[str, tuple[str, ...]]] = {
    "respiratory": {
        "symptoms": _RESP_SYMPTOMS,
        "sections": (
            "opening", "cc_none", "sexw", "poss", "winter", "not_winter", "pmh_intro",
            "pmh_empty", "asthma", "no_asthma", "hay_fever", "no_hay_fever", "distractors",
            "social_intro", "smoker", "non_smoker", "self_employed", "employed", "jobs",
            "insured", "uninsured", "temp", "febrile", "afebrile", "rr", "wheeze", "crackles",
            "clear", "sides", "nasal_exam", "ent_ok", "general", "headers",
        ),
    },
    "trial": {
        "concepts": TRIAL_CONCEPTS,
        "sections": ("opening", "sexw", "history_intro", "history_empty", "closing"),
    },
    "cardiac": {
        "conditions": _CONDITIONS,
        "sections": (
            "hpi_with", "hpi_without", "sexw", "and", "cc", "pmh_intro", "pmh_empty",
            "distractors", "male_distractors", "female_distractors", "exam_intro", "bp", "hr",
            "irregular", "regular", "jvp_up", "jvp_ok", "lungs_wet", "lungs_ok", "edema",
            "no_edema",
        ),
    },
    "multimodal": {
        "findings": MULTIMODAL_NOTE_FINDINGS,
        "sections": (
            "opening", "sexw", "complaints", "negatives", "none", "distractors", "history",
            "durations", "headers",
        ),
    },
}


def _freeze(obj: Any) -> Any:
    """Read-only copy of parsed JSON: dicts become mapping proxies, lists become tuples."""
    if isinstance(obj, dict):
        return MappingProxyType({k: _freeze(v) for k, v in obj.items()})
    if isinstance(obj, list):
        return tuple(_freeze(v) for v in obj)
    return obj


def _check_phrases(domain: str, tables: Any) -> None:
    """Fail with the file and the key when a phrase file lacks what the renderer reads."""
    where = f"phrases/{domain}.json"
    for style in STYLES:
        block = tables.get(style)
        if not isinstance(block, Mapping):
            raise ValueError(f"{where} lacks the style block {style!r}")
        for group, keys in _REQUIRED[domain].items():
            for key in keys:
                entry = block.get(group, {}).get(key)
                if not entry:
                    raise ValueError(f"{where}: {style}.{group}.{key} is missing or empty")
                kinds = _KINDS + (("cc",) if group == "symptoms" else ())
                if group != "sections" and any(not entry.get(kind) for kind in kinds):
                    raise ValueError(f"{where}: {style}.{group}.{key} lacks one of {kinds}")
        if domain == "respiratory" and not block.get("durations"):
            raise ValueError(f"{where}: {style}.durations is missing or empty")


@cache
def phrase_tables(domain: str) -> Mapping[str, Any]:
    """The phrase tables of ``domain`` (``"respiratory"`` or ``"cardiac"``), read once.

    Loaded from the package data file ``ehrcausal/text/phrases/<domain>.json`` and returned
    read-only: ``{style: {"symptoms" | "conditions": {finding: {"present", "absent", "hedge"
    [, "cc"]: phrases}}, "durations": phrases (respiratory only), "sections": {part:
    phrases}}}`` for each style of :data:`STYLES`.
    """
    if domain not in _REQUIRED:
        raise ValueError(f"domain must be one of {tuple(_REQUIRED)}, got {domain!r}")
    source = resources.files(__package__).joinpath("phrases").joinpath(f"{domain}.json")
    tables = _freeze(json.loads(source.read_text(encoding="utf-8")))
    _check_phrases(domain, tables)
    return tables


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

_CARD_PROBS = {
    "normal": {"hpi": 0.6, "pmh": 0.85, "hedge": 0.07, "negate": 0.35, "spurious": 0.03,
               "irregular": 0.6, "jvp": 0.5, "wet": 0.4, "edema": 0.5, "exam_item": 1.0},
    "compact": {"hpi": 0.5, "pmh": 0.6, "hedge": 0.12, "negate": 0.15, "spurious": 0.06,
                "irregular": 0.45, "jvp": 0.35, "wet": 0.3, "edema": 0.35, "exam_item": 0.8},
}

_PLACEHOLDER = re.compile(r"\{[^}]*\}")
_WORDS = re.compile(r"[A-Za-z]+")
_SPLIT_WORDS = re.compile(r"([A-Za-z]+)")


def _strings(obj: Any) -> Iterable[str]:
    if isinstance(obj, str):
        yield obj
    elif isinstance(obj, Mapping):
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
    for s in _strings([phrase_tables(domain) for domain in _REQUIRED]):
        words.update(w.lower() for w in _WORDS.findall(_PLACEHOLDER.sub(" ", s)))
    return frozenset(words)


def _forbidden_pattern(terms: Iterable[str]) -> re.Pattern[str]:
    alternatives = sorted((re.escape(t) for t in terms), key=len, reverse=True)
    return re.compile(r"\b(?:" + "|".join(alternatives) + r")\b", re.IGNORECASE)


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


def _pick(options: Sequence[str], u: float) -> str:
    """The option at position floor(u * len(options)) (u uniform in [0, 1))."""
    return options[min(int(u * len(options)), len(options) - 1)]


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


def _fill_duration(durations: Sequence[str], i_dur: int, k: int) -> str:
    return durations[i_dur].replace("{k}", str(k))


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
    tables = phrase_tables("respiratory")[style]
    T, phr, durations_table = tables["sections"], tables["symptoms"], tables["durations"]

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
        i_dur = _index(u_dur, len(durations_table))
        ks = _int_between(u_k, 2, 6).tolist()
        durations[s] = [
            _fill_duration(durations_table, a, b) for a, b in zip(i_dur, ks, strict=True)
        ]
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
                    cc = _pick(opts, u_cc_phrase[i])
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
            text = _pick(opts, phrase_idx[s][i])
            hist.append(text.replace("{dur}", durations[s][i]))
        if u_season[i] < P["season"]:
            table = T["winter"] if bg["winter"][i] else T["not_winter"]
            hist.append(_pick(table, u_season_phrase[i]))
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
                social.append(_pick(opts, i_smoke[i])
                              .replace("{py}", str(py[i])).replace("{cig}", str(cig[i])))
        elif u_smoke[i] < P["non_smoker_shown"]:
            opts = T["non_smoker"]
            social.append(_pick(opts, i_smoke[i]))
        if bg["self_employed"][i]:
            shown, opts = u_emp[i] < P["self_emp_shown"], T["self_employed"]
        else:
            shown, opts = u_emp[i] < P["employed_shown"], T["employed"]
        if shown:
            social.append(_pick(opts, i_emp[i])
                          .replace("{job}", T["jobs"][i_job[i]]).replace("{poss}", poss))
        if bg["policy"][i]:
            shown, opts = u_ins[i] < P["insured_shown"], T["insured"]
        else:
            shown, opts = u_ins[i] < P["uninsured_shown"], T["uninsured"]
        if shown:
            social.append(_pick(opts, i_ins[i]))
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
            exam.append(_pick(opts, i_clear[i]))
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
    tables = phrase_tables("cardiac")[style]
    T, phr = tables["sections"], tables["conditions"]

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
        text = _pick(opts, pidx[c][i])
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


# ---------------------------------------------------------------------------------------------
# Trial enrolment notes
# ---------------------------------------------------------------------------------------------

#: (omit a present concept, hedge a present one, negate an absent one, spurious hedged mention
#: of an absent one), per style.
_TRIAL_PROBS = {
    "normal": {"omit": 0.08, "hedge": 0.08, "negate": 0.12, "spurious": 0.02},
    "compact": {"omit": 0.18, "hedge": 0.12, "negate": 0.05, "spurious": 0.04},
}


def render_trial_notes(
    records: pd.DataFrame,
    *,
    seed: int,
    style: str = "normal",
    misspelling_rate: float = 0.02,
    wording: str = "varied",
    mention_noise: float = 1.0,
) -> list[str]:
    """Render one enrolment note per trial participant.

    Parameters
    ----------
    records : DataFrame with the 0/1 columns :data:`TRIAL_CONCEPTS`, ``age`` (years) and
        ``sex`` ("F"/"M"). Other columns (treatment, outcome) are ignored.
    seed : non-negative integer; the same records, seed and style give identical notes.
    style : ``"normal"`` (sentences, "History:") or ``"compact"`` ("Hx:", abbreviations, more
        concepts left out).
    misspelling_rate : probability in [0, 0.5] that a word of four or more letters is misspelt.
    wording : ``"varied"`` (each mention drawn among the concept's phrases for that mode) or
        ``"canonical"`` (always the first phrase of the mode: one wording per concept and mode;
        the same draws otherwise, so only the phrases change).
    mention_noise : a number in [0, 1] multiplying the style's probabilities that a present
        concept is left out or hedged and that an absent one gets a spurious hedged mention
        (``normal``: 0.08, 0.08 and 0.02). 1 (the default) writes the notes as the style does;
        0 writes *faithful* mentions: every present concept stated, no spurious mention (absent
        concepts are still negated at the style's rate, and misspellings are a separate knob).
        The same uniforms are compared with the scaled thresholds, so only the modes change.

    Each present concept is mentioned clearly, hedged or (rarely) left out; an absent one is
    usually not mentioned, sometimes negated and rarely given a spurious hedged mention, so the
    note is an informative but imperfect reading of the record. Concepts appear in a random
    order per note.
    """
    columns = (*TRIAL_CONCEPTS, "age", "sex")
    rec = _check_common(records, columns, seed, style, misspelling_rate)
    if wording not in TRIAL_WORDINGS:
        raise ValueError(f"wording must be one of {TRIAL_WORDINGS}, got {wording!r}")
    canonical = wording == "canonical"
    noise = check_number(mention_noise, "mention_noise", 0.0, 1.0)
    n = len(rec)
    if n == 0:
        return []
    present = np.stack([_binary(rec, c) for c in TRIAL_CONCEPTS], axis=1)
    age = _ages(rec)
    sex = rec["sex"].astype(str).str.upper().to_numpy()
    if not np.all(np.isin(sex, ("F", "M"))):
        raise ValueError("records column 'sex' must hold 'F' or 'M'")
    male = (sex == "M").astype(int).tolist()
    rate = float(misspelling_rate)
    rng, typo_rng = _generators(seed)
    k = len(TRIAL_CONCEPTS)
    U = _Uniforms(rng, n, 3 * k + 3)
    P = {k: (v if k == "negate" else noise * v) for k, v in _TRIAL_PROBS[style].items()}
    tables = phrase_tables("trial")[style]
    T, phr = tables["sections"], tables["concepts"]
    u_mode, u_phrase, u_order = U.cols(k), U.cols(k), U.cols(k)
    mode = np.where(
        present == 1,
        np.where(u_mode < P["omit"], 0, np.where(u_mode < P["omit"] + P["hedge"], 2, 1)),
        np.where(u_mode < P["spurious"], 2, np.where(u_mode < P["spurious"] + P["negate"], 3, 0)),
    ).tolist()
    order = np.argsort(u_order, axis=1).tolist()
    i_open = _index(U.col(), len(T["opening"]))
    i_close = _index(U.col(), len(T["closing"]))
    small = _int_between(U.col(), 2, 6).tolist()
    u_phrase_l = u_phrase.tolist()
    notes: list[list[tuple[str, str]]] = []
    for i in range(n):
        opening = (T["opening"][i_open[i]].replace("{age}", str(age[i]))
                   .replace("{sexw}", T["sexw"][male[i]]))
        items = []
        for j in order[i]:
            m = mode[i][j]
            if m == 0:
                continue
            kind = ("present", "present", "hedge", "absent")[m]
            text = _pick(phr[TRIAL_CONCEPTS[j]][kind], 0.0 if canonical else u_phrase_l[i][j])
            items.append(text.replace("{k}", str(small[i])))
        if items:
            history = T["history_intro"][0] + "; ".join(items) + "."
        else:
            history = T["history_empty"][0]
        notes.append([("", opening), ("", history), ("", T["closing"][i_close[i]])])
    return _assemble(notes, rate, typo_rng, " ")


# ---------------------------------------------------------------------------------------------
# Admission notes written from findings (the multimodal multitask cohort)
# ---------------------------------------------------------------------------------------------

_FINDING_PROBS = {
    "normal": {"omit": 0.1, "hedge": 0.1, "negate": 0.25, "spurious": 0.03, "history": 0.5},
    "compact": {"omit": 0.2, "hedge": 0.12, "negate": 0.1, "spurious": 0.05, "history": 0.3},
}


def render_finding_notes(
    records: pd.DataFrame,
    *,
    seed: int,
    style: str = "normal",
    misspelling_rate: float = 0.02,
) -> list[str]:
    """Render one admission note per record from its findings (symptoms and signs).

    ``records`` holds ``age`` (years), ``male`` (0/1) and a 0/1 column for each finding of
    :data:`MULTIMODAL_NOTE_FINDINGS`; any other column is ignored, so a note never depends on a
    diagnosis. Each finding is written with the probabilities of ``_FINDING_PROBS[style]``:
    a present finding is left out with probability ``omit``, hedged with probability ``hedge``
    and stated otherwise; an absent one is negated with probability ``negate``, mentioned with
    a hedge with probability ``spurious`` (a false lead) and left out otherwise. A distractor
    background line appears with probability ``history``. Misspellings as the other renderers
    (``misspelling_rate`` per word of four or more letters; headers never misspelt). The
    wording is in ``phrases/multimodal.json``; the same records, seed and style give the same
    notes.
    """
    cols = ("age", "male") + MULTIMODAL_NOTE_FINDINGS
    rec = _check_common(records, cols, seed, style, misspelling_rate)
    n = len(rec)
    if n == 0:
        return []
    age = _ages(rec).tolist()
    male = _binary(rec, "male").tolist()
    finding = {f: _binary(rec, f) for f in MULTIMODAL_NOTE_FINDINGS}
    rng, typo_rng = _generators(seed)
    k = len(MULTIMODAL_NOTE_FINDINGS)
    U = _Uniforms(rng, n, 3 * k + 6)
    P = _FINDING_PROBS[style]
    tables = phrase_tables("multimodal")[style]
    S, phr = tables["sections"], tables["findings"]
    stated: list[list[str]] = [[] for _ in range(n)]
    negated: list[list[str]] = [[] for _ in range(n)]
    for f in MULTIMODAL_NOTE_FINDINGS:
        u_mode, u_phrase, u_dur = U.col(), U.col(), U.col()
        present = finding[f] == 1
        mode = np.where(
            present,
            np.where(u_mode < P["omit"], 0, np.where(u_mode < P["omit"] + P["hedge"], 2, 1)),
            np.where(u_mode < P["spurious"], 2, np.where(u_mode < P["spurious"] + P["negate"],
                                                          3, 0)),
        ).tolist()
        for i in range(n):
            if mode[i] == 0:
                continue
            kind = {1: "present", 2: "hedge", 3: "absent"}[mode[i]]
            text = _pick(phr[f][kind], u_phrase[i])
            if "{dur}" in text:
                dur = _pick(S["durations"], u_dur[i]).replace("{k}", str(2 + int(u_dur[i] * 5)))
                text = text.replace("{dur}", dur)
            (negated if mode[i] == 3 else stated)[i].append(text)
    i_open = _index(U.col(), len(S["opening"]))
    u_hist, i_hist = U.col(), _index(U.col(), len(S["distractors"]))
    years = _int_between(U.col(), 1985, 2020).tolist()
    U.col(), U.col()  # reserved
    sections = []
    for i in range(n):
        opening = S["opening"][i_open[i]].replace("{age}", str(age[i])).replace(
            "{sexw}", S["sexw"][male[i]]
        )
        body = [opening]
        if stated[i]:
            body.append(S["complaints"][0] + ", ".join(stated[i]) + ".")
        else:
            body.append(S["none"][0])
        if u_hist[i] < P["history"]:
            body.append(S["history"][0] + S["distractors"][i_hist[i]].replace("{yr}",
                                                                               str(years[i])) + ".")
        note = [(S["headers"][0], " ".join(body))]
        if negated[i]:
            note.append((S["headers"][1], S["negatives"][0] + ", ".join(negated[i]) + "."))
        sections.append(note)
    return _assemble(sections, float(misspelling_rate), typo_rng, "\n")
