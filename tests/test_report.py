"""What the chapters report with (``ehrcausal.chapters.report``): exact strings for given inputs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ehrcausal.chapters import report
from ehrcausal.chapters.report import (
    Md,
    ci,
    metric_table,
    paired_difference,
    pm,
    summarise,
    verdict,
    within_two_se,
)

NAN = float("nan")


def test_summarise_mean_and_standard_error():
    df = pd.DataFrame({"learner": ["a"] * 3 + ["b"] * 2, "v": [1.0, 2.0, 3.0, 5.0, 5.0]})
    out = summarise(df, ["v"]).set_index("learner")
    # a: mean 2, sd 1, se 1/sqrt(3); b: mean 5, sd 0
    assert out.loc["a", "v_mean"] == 2.0
    assert out.loc["a", "v_se"] == pytest.approx(1 / np.sqrt(3))
    assert out.loc["b", "v_se"] == 0.0 and out.loc["b", "replicates"] == 2


def test_paired_difference_matches_replicates():
    df = pd.DataFrame({"replicate": [0, 0, 1, 1, 2, 2], "learner": ["a", "b"] * 3,
                       "m": [1.0, 0.5, 2.0, 1.0, 3.0, 2.5]})
    diff, se = paired_difference(df, "a", "b", "m")
    # differences 0.5, 1.0, 0.5: mean 2/3, sd sqrt(1/12), se sqrt(1/12)/sqrt(3) = 1/6
    assert diff == pytest.approx(2 / 3) and se == pytest.approx(1 / 6)
    one = paired_difference(df[df.replicate == 0], "a", "b", "m")
    assert one[0] == 0.5 and np.isnan(one[1])
    with pytest.raises(ValueError, match="'c' is not in the table"):
        paired_difference(df, "a", "c", "m")


def test_within_two_se_is_inclusive_and_needs_a_standard_error():
    assert within_two_se(0.2, 0.1) and within_two_se(-0.2, 0.1)
    assert not within_two_se(0.21, 0.1)
    assert not within_two_se(0.0, NAN)


def test_verdict_default_words_with_a_paired_tail():
    # the X-MultiTask chapter: lower is better, compared with another learner's error
    kw = {"subject": "that of TARNet", "versus": (0.30, 0.42)}
    assert verdict(-0.12, 0.02, **kw) == (
        "lower than that of TARNet (0.300 vs 0.420; paired difference -0.120 ± 0.020)")
    assert verdict(0.12, 0.02, **kw) == (
        "higher than that of TARNet (0.300 vs 0.420; paired difference +0.120 ± 0.020)")
    assert verdict(-0.03, 0.02, **kw) == ("within two standard errors of that of TARNet "
                                          "(0.300 vs 0.420; paired difference -0.030 ± 0.020)")
    assert verdict(-0.12, NAN, **kw) == "lower than that of TARNet (0.300 vs 0.420, one replicate)"
    assert verdict(0.0, NAN, **kw).startswith("higher than")  # a tie reads as "not lower"


def test_verdict_beats_loses_to_with_unjudged_words():
    # the AACE chapter: higher policy benefit is better
    kw = {"higher": "beats", "lower": "loses to", "within": "is within two standard errors of",
          "above": "is above", "below": "is below", "subject": "risk-based",
          "versus": (0.5, 0.4)}
    assert verdict(0.1, 0.01, **kw) == (
        "beats risk-based (0.500 vs 0.400; paired difference +0.100 ± 0.010)")
    assert verdict(-0.1, 0.01, **kw).startswith("loses to risk-based")
    assert verdict(0.01, 0.01, **kw).startswith("is within two standard errors of risk-based")
    assert verdict(0.1, NAN, **kw) == "is above risk-based (0.500 vs 0.400, one replicate)"
    assert verdict(-0.1, NAN, **kw) == "is below risk-based (0.500 vs 0.400, one replicate)"


def test_verdict_against_a_published_value_with_direction_field():
    # the IHDP chapter: our mean against a published number, two decimals, no parenthesis
    kw = {"higher": "above", "lower": "below",
          "within": "{direction} but within two standard errors of", "digits": 2}
    assert verdict(-0.3, 0.2, **kw) == "below but within two standard errors of"
    assert verdict(0.3, 0.2, **kw) == "above but within two standard errors of"
    assert verdict(-0.5, 0.2, **kw) == "below"
    assert verdict(0.5, NAN, **kw) == "above"


def test_verdict_with_the_size_in_the_words():
    # the AACE chapter's annotation weights: the change of the error they bring
    paired = " ± {se} (paired over replicates)"
    kw = {"higher": "raises √PEHE by {size}" + paired, "lower": "lowers √PEHE by {size}" + paired,
          "within": "changes √PEHE by {diff} ± {se}, within two standard errors of no change",
          "above": "changes √PEHE by {diff} (one replicate)",
          "below": "changes √PEHE by {diff} (one replicate)"}
    assert verdict(-0.05, 0.01, **kw) == "lowers √PEHE by 0.050 ± 0.010 (paired over replicates)"
    assert verdict(0.05, 0.01, **kw) == "raises √PEHE by 0.050 ± 0.010 (paired over replicates)"
    assert verdict(0.005, 0.01, **kw) == (
        "changes √PEHE by +0.005 ± 0.010, within two standard errors of no change")
    assert verdict(-0.05, NAN, **kw) == "changes √PEHE by -0.050 (one replicate)"


def test_pm_fixed_and_automatic_digits():
    assert pm(0.12345, 0.0321) == "0.123 ± 0.032"
    assert pm(0.6, 0.24, 2, nbsp=True) == "0.60\u00a0±\u00a00.24"
    assert pm(0.6, NAN, 2) == "0.60"
    assert pm(NAN, 0.1) == "–"
    # automatic: two significant digits of the standard error
    assert pm(12.3456, 0.51, None) == "12.35 ± 0.51"
    assert pm(0.0123456, 0.000321, None) == "0.01235 ± 0.00032"
    assert pm(1234.5, 56.0, None) == "1234 ± 56"
    # without a standard error: three significant digits of the mean
    assert pm(0.0123456, NAN, None) == "0.0123"
    assert pm(0.0, 0.0, None) == "0.000 ± 0.000"


def test_ci_format():
    assert ci(0.8412, 0.8, 0.875) == "0.84 [0.80, 0.88]"
    assert ci(0.27784, 0.2, 0.31, digits=4) == "0.2778 [0.2000, 0.3100]"


def test_metric_table_formats_each_metric_in_order():
    summary = pd.DataFrame({"learner": ["a", "b"], "x_mean": [1.0, 2.0], "x_se": [0.1, NAN],
                            "y_mean": [NAN, 0.5], "y_se": [NAN, 0.05]}).set_index("learner")
    table = metric_table(summary, {"y": "Y header", "x": "X header"})
    assert list(table.columns) == ["Y header", "X header"]
    assert table.loc["a"].tolist() == ["–", "1.000 ± 0.100"]
    assert table.loc["b"].tolist() == ["0.500 ± 0.050", "2.000"]
    labelled = metric_table(summary, {"x": "X"}, index=["A", "B"], digits=1)
    assert labelled["X"].to_dict() == {"A": "1.0 ± 0.1", "B": "2.0"}


def test_glue_all_converts_numbers_and_markdown(monkeypatch):
    import myst_nb
    from IPython.display import Markdown

    glued = {}
    monkeypatch.setattr(myst_nb, "glue", lambda name, value, display: glued.update({name: value}))
    report.glue_all({"f": np.float64(0.5), "i": np.int64(3), "t": "text", "m": Md("*x*")})
    assert type(glued["f"]) is float and type(glued["i"]) is int and glued["t"] == "text"
    assert isinstance(glued["m"], Markdown) and glued["m"].data == "*x*"
