"""The clinical-note renderer: determinism, styles, forbidden words, fever, misspellings, and
how well a bag-of-words classifier can read the symptoms back (informative but imperfect)."""

from __future__ import annotations

import hashlib
import re

import numpy as np
import pandas as pd
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_score

from ehrcausal.data.cardiac import sample_cardiac_records
from ehrcausal.data.respiratory import sample_respiratory_records
from ehrcausal.text.notes import (
    CARDIAC_FORBIDDEN_TERMS,
    RESPIRATORY_DIAGNOSIS_TERMS,
    contains_forbidden_term,
    note_lexicon,
    phrase_tables,
    render_cardiac_notes,
    render_respiratory_notes,
)

N_NOTES = 3000
SYMPTOMS = ("dyspnoea", "cough", "pain", "nasal", "fever_any")
CONDITIONS = ("htn", "cad", "af", "chf")


@pytest.fixture(scope="module")
def resp_records() -> pd.DataFrame:
    rec = sample_respiratory_records(N_NOTES, np.random.default_rng(11))
    rec["fever_any"] = (rec["fever"] > 0).astype(int)
    return rec


@pytest.fixture(scope="module")
def card_records() -> pd.DataFrame:
    return sample_cardiac_records(N_NOTES, np.random.default_rng(12))


@pytest.fixture(scope="module")
def resp_notes(resp_records) -> dict[str, list[str]]:
    return {
        s: render_respiratory_notes(resp_records, seed=5, style=s) for s in ("normal", "compact")
    }


@pytest.fixture(scope="module")
def card_notes(card_records) -> dict[str, list[str]]:
    return {s: render_cardiac_notes(card_records, seed=5, style=s) for s in ("normal", "compact")}


def test_same_seed_same_notes_other_seed_other_notes(resp_records, resp_notes, card_records):
    head = resp_records.iloc[:300]
    for style in ("normal", "compact"):
        again = render_respiratory_notes(resp_records, seed=5, style=style)
        assert again == resp_notes[style]
        other = render_respiratory_notes(head, seed=6, style=style)
        assert sum(a != b for a, b in zip(other, resp_notes[style][:300], strict=True)) > 250
    cards = render_cardiac_notes(card_records.iloc[:200], seed=1)
    assert cards == render_cardiac_notes(card_records.iloc[:200], seed=1)
    assert cards != render_cardiac_notes(card_records.iloc[:200], seed=2)


def test_notes_never_depend_on_diagnoses_treatment_or_outcome(resp_records):
    rec = resp_records.iloc[:500].copy()
    base = render_respiratory_notes(rec, seed=3)
    scrambled = rec.copy()
    rng = np.random.default_rng(0)
    for col in ("copd", "pneumonia", "upper_airway_infection"):
        scrambled[col] = rng.permutation(scrambled[col].to_numpy())
    scrambled["T"] = rng.integers(0, 2, len(rec))
    scrambled["Y"] = rng.normal(size=len(rec))
    assert render_respiratory_notes(scrambled, seed=3) == base
    # ...whereas the symptoms do drive the note.
    flipped = rec.copy()
    flipped["cough"] = 1 - flipped["cough"]
    assert render_respiratory_notes(flipped, seed=3) != base


def test_styles_differ_and_have_their_headers(resp_notes, card_notes):
    normal, compact = resp_notes["normal"], resp_notes["compact"]
    assert all(a != b for a, b in zip(normal, compact, strict=True))
    assert all(t.startswith("History:\n") and "\n\nPhysical Examination:\n" in t for t in normal)
    assert all(t.startswith("Hx: ") and " PE: " in t for t in compact)
    assert np.mean([len(t) for t in compact]) < 0.6 * np.mean([len(t) for t in normal])
    abbreviations = ("SOB", "c/o", "yo ", "neg ", "T ")
    joined = " ".join(compact)
    assert all(a in joined for a in abbreviations)
    assert all(t.startswith("HPI: ") and "\nPMH: " in t and "\nExam: " in t
               for t in card_notes["normal"])
    assert all(re.match(r"HPI: \d+[FM] ", t) for t in card_notes["compact"])


def test_forbidden_detector_is_not_vacuous():
    assert contains_forbidden_term("Likely Pneumonia of the left lobe.")
    assert contains_forbidden_term("known COPD")
    assert contains_forbidden_term("recent URTI")
    assert not contains_forbidden_term("curious cough")  # 'uri' only as a whole word
    assert contains_forbidden_term("after treatment", CARDIAC_FORBIDDEN_TERMS)


def test_no_diagnosis_or_outcome_term_ever_appears(resp_records, resp_notes, card_notes):
    typo = render_respiratory_notes(resp_records, seed=9, misspelling_rate=0.3)
    for notes in (resp_notes["normal"], resp_notes["compact"], typo):
        bad = [t for t in notes if contains_forbidden_term(t, RESPIRATORY_DIAGNOSIS_TERMS)]
        assert not bad, bad[:2]
    for notes in card_notes.values():
        bad = [t for t in notes if contains_forbidden_term(t, CARDIAC_FORBIDDEN_TERMS)]
        assert not bad, bad[:2]


def test_temperature_matches_fever_level_in_normal_style(resp_records, resp_notes):
    ranges = {0: (36.5, 37.4), 1: (37.5, 38.4), 2: (38.5, 40.0)}
    seen = {0: 0, 1: 0, 2: 0}
    for note, level in zip(resp_notes["normal"], resp_records["fever"], strict=True):
        m = re.search(r"(\d{2}\.\d) C\b", note)
        assert m is not None, note
        lo, hi = ranges[int(level)]
        assert lo <= float(m.group(1)) <= hi, (level, m.group(1))
        seen[int(level)] += 1
        exam = note.split("Physical Examination:")[1].lower()
        if int(level) == 0:
            assert not re.search(r"(?<!a)febrile", exam)
        else:
            assert "afebrile" not in exam
    assert min(seen.values()) > 100


def test_symptoms_are_sometimes_negated_and_sometimes_left_out(resp_records, resp_notes):
    cough = resp_records["cough"].to_numpy() == 1
    mentions = np.array(["cough" in t.lower() for t in resp_notes["normal"]])
    negated = np.array([bool(re.search(r"denies cough|no cough", t.lower()))
                        for t in resp_notes["normal"]])
    # Absent: some explicitly negated, some not mentioned at all.
    assert 0.3 < negated[~cough].mean() < 0.7
    assert 0.3 < (~mentions[~cough]).mean() < 0.7
    # Present: nearly always mentioned, never negated, but not always.
    assert 0.85 < mentions[cough].mean() < 0.99
    assert negated[cough].mean() == 0


def test_misspellings(resp_records):
    rec = resp_records.iloc[:1500]
    lexicon = note_lexicon()
    clean = render_respiratory_notes(rec, seed=4, misspelling_rate=0.0)
    typo = render_respiratory_notes(rec, seed=4, misspelling_rate=0.1)
    words = [w.lower() for t in clean for w in re.findall(r"[A-Za-z]+", t)]
    assert set(words) <= lexicon
    compact_clean = render_respiratory_notes(rec, seed=4, style="compact", misspelling_rate=0.0)
    assert {w.lower() for t in compact_clean for w in re.findall(r"[A-Za-z]+", t)} <= lexicon
    cards = render_cardiac_notes(sample_cardiac_records(500, np.random.default_rng(0)), seed=1,
                                 misspelling_rate=0.0)
    assert {w.lower() for t in cards for w in re.findall(r"[A-Za-z]+", t)} <= lexicon

    n_changed = n_eligible = 0
    for a, b in zip(clean, typo, strict=True):
        assert b.startswith("History:\n") and "\n\nPhysical Examination:\n" in b
        # Headers are never misspelt; compare the bodies.
        a, b = (t.replace("History:", "").replace("Physical Examination:", "") for t in (a, b))
        wa, wb = re.findall(r"[A-Za-z]+", a), re.findall(r"[A-Za-z]+", b)
        assert len(wa) == len(wb)
        for x, y in zip(wa, wb, strict=True):
            n_eligible += len(x) >= 4
            if x == y:
                continue
            n_changed += 1
            assert len(x) >= 4 and x[0] == y[0] and x[-1] == y[-1]
            swapped = len(x) == len(y) and sorted(x) == sorted(y)
            dropped = len(y) == len(x) - 1
            assert swapped or dropped, (x, y)
    assert abs(n_changed / n_eligible - 0.1) < 0.01


def _cv_auc(notes: list[str], labels: pd.DataFrame, names: tuple[str, ...]) -> dict[str, float]:
    # The TF-IDF vocabulary is fitted once on all notes (it never sees a label), so only the
    # classifier is cross-validated; that keeps the test fast.
    feats = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True).fit_transform(notes)
    cv = StratifiedKFold(5, shuffle=True, random_state=0)
    clf = LogisticRegression(C=10.0, max_iter=2000)
    return {
        s: float(cross_val_score(clf, feats, labels[s], cv=cv, scoring="roc_auc").mean())
        for s in names
    }


def test_symptoms_recoverable_but_imperfect(resp_records, resp_notes):
    normal = _cv_auc(resp_notes["normal"], resp_records, SYMPTOMS)
    compact = _cv_auc(resp_notes["compact"], resp_records, SYMPTOMS)
    print("respiratory AUC normal", normal, "compact", compact)
    assert sum(0.75 < v < 0.999 for v in normal.values()) >= 4
    assert min(compact.values()) > 0.7
    assert np.mean(list(compact.values())) < np.mean(list(normal.values())) - 0.02


def test_conditions_recoverable_but_imperfect(card_records, card_notes):
    normal = _cv_auc(card_notes["normal"], card_records, CONDITIONS)
    compact = _cv_auc(card_notes["compact"], card_records, CONDITIONS)
    print("cardiac AUC normal", normal, "compact", compact)
    assert sum(0.75 < v < 0.999 for v in normal.values()) >= 3
    assert np.mean(list(compact.values())) < np.mean(list(normal.values())) - 0.01


def test_cardiac_notes_mention_age_and_sex(card_records):
    rec = card_records.iloc[:500]
    normal = render_cardiac_notes(rec, seed=2, misspelling_rate=0.0)
    compact = render_cardiac_notes(rec, seed=2, style="compact", misspelling_rate=0.0)
    for note, short, (age, male) in zip(normal, compact, rec[["age", "male"]].to_numpy(),
                                        strict=True):
        sexw = "man" if male else "woman"
        assert note.startswith(f"HPI: {age}-year-old {sexw} ")
        assert short.startswith(f"HPI: {age}{'M' if male else 'F'} ")


def test_empty_records_give_no_notes(resp_records):
    assert render_respiratory_notes(resp_records.iloc[:0], seed=0) == []


@pytest.mark.parametrize(
    ("change", "kwargs", "match"),
    [
        (lambda r: r.drop(columns="cough"), {}, "cough"),
        (lambda r: r.assign(fever=3), {}, "fever"),
        (lambda r: r.assign(sex="X"), {}, "sex"),
        (lambda r: r.assign(asthma=0.5), {}, "asthma"),
        (lambda r: r, {"style": "terse"}, "style"),
        (lambda r: r, {"misspelling_rate": 0.9}, "misspelling_rate"),
        (lambda r: r, {"seed": -1}, "seed"),
        (lambda r: r.to_dict(), {}, "DataFrame"),
    ],
)
def test_bad_input_is_refused(resp_records, change, kwargs, match):
    args = {"seed": 0, **kwargs}
    with pytest.raises(ValueError, match=match):
        render_respiratory_notes(change(resp_records.iloc[:20].copy()), **args)


def test_cardiac_bad_input_is_refused(card_records):
    with pytest.raises(ValueError, match="chf"):
        render_cardiac_notes(card_records.drop(columns="chf"), seed=0)
    with pytest.raises(ValueError, match="male"):
        render_cardiac_notes(card_records.assign(male=2), seed=0)


# --- phrase files -------------------------------------------------------------------------------


def test_phrase_files_load_read_only_with_every_style():
    for domain, group in (("respiratory", "symptoms"), ("cardiac", "conditions")):
        tables = phrase_tables(domain)
        assert set(tables) == {"normal", "compact"}
        assert phrase_tables(domain) is tables  # read once, cached
        for style in ("normal", "compact"):
            findings = tables[style][group]
            assert all(findings[f]["present"] and findings[f]["absent"] for f in findings)
        with pytest.raises(TypeError):
            tables["normal"]["sections"]["sexw"] = ("x",)  # type: ignore[index]
    assert phrase_tables("respiratory")["normal"]["symptoms"]["cough"]["absent"][0] == "Denies cough."
    assert "pneumonia" not in note_lexicon() and {"dyspnoea", "apixaban"} <= note_lexicon()
    with pytest.raises(ValueError, match="domain"):
        phrase_tables("renal")


def test_incomplete_phrase_file_is_refused_naming_the_key():
    from ehrcausal.text import notes

    broken = {style: dict(block) for style, block in phrase_tables("cardiac").items()}
    broken["compact"]["sections"] = {
        k: v for k, v in broken["compact"]["sections"].items() if k != "jvp_up"
    }
    with pytest.raises(ValueError, match=r"cardiac.json: compact.sections.jvp_up"):
        notes._check_phrases("cardiac", broken)


#: SHA-256 of the notes rendered by the renderer before its phrase tables moved into data files
#: (200 records, seed 1, misspelling rate 0.05): the move must not change a single character.
RENDERED_SHA256 = {
    ("respiratory", "normal"): "b36749064ccaa36e31dd74966c0c79d9d89a75d4221accd1cb087f6f0a02f6e0",
    ("respiratory", "compact"): "c9db2041449f247f0089b09baac7b02f26fc1dc3ae4279ab353c2b602c5fcdac",
    ("cardiac", "normal"): "1f785a2b6ffb745c92abdb23bfeb35d6a6f3b3adf4c25fa4f23a9dfe784704d6",
    ("cardiac", "compact"): "d569900298b00acecba53f4e5a4ddd89f2ac65e3e02f5e4d438ffa2bc0e1be1a",
}


def test_rendered_notes_are_unchanged_for_a_fixed_seed():
    resp = sample_respiratory_records(200, np.random.default_rng(0))
    card = sample_cardiac_records(200, np.random.default_rng(0))
    first = render_respiratory_notes(resp.iloc[:1], seed=1)[0]
    assert first.startswith(
        "History:\n46-year-old man seen in the outpatient clinic because of pain in the chest. "
        "No cough or sputum production."
    )
    for (domain, style), digest in RENDERED_SHA256.items():
        render, rec = ((render_respiratory_notes, resp) if domain == "respiratory"
                       else (render_cardiac_notes, card))
        notes = render(rec, seed=1, style=style, misspelling_rate=0.05)
        assert hashlib.sha256("\x00".join(notes).encode()).hexdigest() == digest, (domain, style)
