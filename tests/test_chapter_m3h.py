"""The M3H chapter's experiment code: task selection, metrics, relative gains and their
summary, the configuration's checks, and one cell end to end."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ehrcausal.chapters import m3h as chapter
from ehrcausal.chapters.report import pm
from ehrcausal.data import simulate_multimodal


@pytest.fixture(scope="module")
def table():
    return simulate_multimodal(60, 0).tasks


def test_select_tasks_expands_departments_and_names_unknowns(table):
    names = chapter.select_tasks(table, "cardiology,severity")
    assert names[:4] == list(table[table.department == "cardiology"].name) and names[-1] == \
        "severity"
    assert chapter.select_tasks(table, "all") == list(table.name)
    assert chapter.select_tasks(table, "severity,severity") == ["severity"]
    with pytest.raises(ValueError, match="neither a task nor a department"):
        chapter.select_tasks(table, "oncology")


def _tidy(values: dict[tuple[str, int], list[float]]) -> pd.DataFrame:
    rows = []
    classes = {"a": "binary", "b": "regression"}
    for (learner, rep), (va, vb) in values.items():
        rows.append({"learner": learner, "replicate": rep, "task": "a", "problem_class": "binary",
                     "primary": va})
        rows.append({"learner": learner, "replicate": rep, "task": "b",
                     "problem_class": classes["b"], "primary": vb})
    return pd.DataFrame(rows)


def test_relative_gain_per_task_and_its_paired_summary():
    df = _tidy({("m3h", 1): [0.88, 1.5], ("single_task", 1): [0.80, 2.0],
                ("m3h", 2): [0.84, 1.0], ("single_task", 2): [0.80, 1.0]})
    g = chapter.relative_gains(df, "m3h")
    # AUC: (0.88 - 0.80) / 0.80; RMSE (lower is better): (2.0 - 1.5) / 2.0
    got = g.set_index(["replicate", "task"]).gain
    assert got[(1, "a")] == pytest.approx(0.1) and got[(1, "b")] == pytest.approx(0.25)
    assert got[(2, "a")] == pytest.approx(0.05) and got[(2, "b")] == pytest.approx(0.0)
    s = chapter.gain_summary(g)
    per_rep = np.array([0.175, 0.025])
    assert s["mean"] == pytest.approx(per_rep.mean())
    assert s["se"] == pytest.approx(per_rep.std(ddof=1) / np.sqrt(2))
    assert s["task_min"] == pytest.approx(0.075) and s["task_max"] == pytest.approx(0.125)
    one = chapter.gain_summary(g[g.replicate == 1])
    assert np.isnan(one["se"])


def test_task_metrics_by_problem_class(table):
    tasks = table[table.name.isin(["heart_failure", "severity", "los_days", "phenotype"])]
    Y = pd.DataFrame({"heart_failure": [0, 1, 1, 0, np.nan], "severity": [0, 1, 2, 2, 1],
                      "los_days": [1.0, 2.0, 3.0, 4.0, 5.0], "phenotype": [0, 0, 1, 1, 2]})
    onehot = np.eye(3)[[0, 1, 2, 2, 1]]
    scores = {"heart_failure": np.array([0.1, 0.9, 0.8, 0.2, 0.5]), "severity": onehot,
              "los_days": np.array([1.0, 2.0, 3.0, 4.0, 6.0]),
              "phenotype": np.array([2, 2, 0, 0, 1])}
    m = chapter.task_metrics(scores, Y, tasks).set_index("task")
    assert m.loc["heart_failure", "auc"] == 1.0 and m.loc["severity", "macro_f1"] == 1.0
    assert m.loc["los_days", "rmse"] == pytest.approx(np.sqrt(1 / 5))
    assert m.loc["phenotype", "ari"] == pytest.approx(1.0)  # labels permuted, same partition
    assert m.loc["los_days", "primary"] == m.loc["los_days", "rmse"]


def test_config_checks_its_parameters():
    cfg = chapter.Config(n=100, tasks="cardiology,phenotype", learners="m3h,single_task",
                         balances="0.5,learned", tim_tasks="heart_failure,pneumonia,sepsis",
                         epochs=2, device="cpu")
    assert cfg.balance_levels == [0.5, "learned"] and cfg.shared == [1.0, 0.0]
    assert dict(cfg.budget_of("m3h")) == {"epochs": 2, "device": "cpu"}
    cells = chapter.main_cells(cfg)
    # two learners x one replicate x two knob levels, with every label and with 10 % of them
    assert len(cells) == 2 * 1 * 2 * 2 and {c.learner for c in cells} == {"m3h", "single_task"}
    assert sorted({c.labels for c in cells}) == [0.1, 1.0]
    # the scarce regime fits the learners asked for, and always the single-task baseline
    few = chapter.Config(n=100, tasks="cardiology,phenotype", learners="m3h,haim_gbt,single_task",
                         label_fractions="1.0,0.1,0.5", scarce_learners="m3h", device="cpu")
    assert few.scarce_names == ["m3h", "single_task"]
    assert {(c.labels, c.learner) for c in chapter.main_cells(few) if c.labels < 1} == {
        (f, n) for f in (0.1, 0.5) for n in ("m3h", "single_task")}
    assert len(chapter.main_cells(few)) == 2 * 3 + 2 * 2 * 2
    assert len(chapter.ablation_cells(cfg)) == 4 and len(chapter.balance_cells(cfg)) == 2
    with pytest.raises(ValueError, match="learners"):
        chapter.Config(learners="tarnet")
    with pytest.raises(ValueError, match="tim_tasks"):
        chapter.Config(tim_tasks="heart_failure,phenotype,sepsis")
    with pytest.raises(ValueError, match="at least 3"):
        chapter.Config(tim_tasks="heart_failure,sepsis")
    for bad in ({"tim_source_fraction": 0.0}, {"tim_replicates": 0},
                {"label_fractions": "0.1"}, {"label_fractions": "1.0"},
                {"label_fractions": "1.0,0.0"},
                {"label_fractions": "1.0,1.5"}, {"scarce_learners": "tarnet"},
                {"learners": "m3h,single_task", "scarce_learners": "haim_gbt"}):
        with pytest.raises(ValueError, match=list(bad)[-1]):
            chapter.Config(**bad)


def test_one_cell_end_to_end():
    cell = chapter.Cell(150, 3, 1.0, "m3h", ("heart_failure", "sepsis", "los_days", "phenotype"),
                        (("device", "cpu"), ("epochs", 2)), drop="image")
    out = chapter.run_cell(cell)
    df = chapter.tidy([cell], [out])
    assert list(df.task) == ["heart_failure", "sepsis", "los_days", "phenotype"]
    assert df["drop"].eq("image").all() and np.isfinite(df.primary).all()
    assert out["seconds"] > 0


def test_modality_ablation_leaves_out_patients_with_no_modality_left():
    # Every simulated patient has tabular data; at n = 200, seed 0, one has nothing else, so
    # dropping the tabular modality left a patient with no input and the fit raised.
    from ehrcausal.data.multimodal import simulate_multimodal
    from ehrcausal.learners.m3h import availability

    ds = simulate_multimodal(200, 0, shared=1.0)
    alone = availability(ds.modalities)[:, 1:].sum(axis=1) == 0
    assert alone.sum() >= 1
    kept = chapter.without_modality(ds, "tabular")
    assert len(kept) == len(ds) - alone.sum()
    rest = {k: v for k, v in kept.modalities.items() if k != "tabular"}
    assert availability(rest).any(axis=1).all()
    assert len(chapter.without_modality(ds, "image")) == len(ds)  # tabular is always there
    cell = chapter.Cell(200, 0, 1.0, "m3h", ("heart_failure", "los_days"),
                        (("device", "cpu"), ("epochs", 1)), drop="tabular")
    df = chapter.tidy([cell], [chapter.run_cell(cell)])
    assert np.isfinite(df.primary).all()


def test_tim_cells_are_cached_and_averaged_over_replicates(tmp_path):
    cfg = chapter.Config(n=80, replicates=1, tim_replicates=2,
                         tasks="heart_failure,pneumonia,sepsis", learners="m3h",
                         tim_tasks="heart_failure,pneumonia,sepsis", epochs=1, tim_epochs=2,
                         tim_source_fraction=0.5, device="cpu")
    cells = chapter.tim_cells(cfg)
    assert [c.kind for c in cells] == ["tim", "attention"] * 2
    assert [c.seed for c in cells[::2]] == cfg.tim_seeds and cfg.tim_seeds[0] == cfg.seeds[0]
    assert dict(cells[0].budget)["epochs"] == 2 and dict(cells[1].budget)["epochs"] == 1
    assert [c.source_fraction for c in cells[:2]] == [0.5, 1.0]
    assert {**dict(cells[0].budget), **chapter.TIM_OPTIONS} == dict(cells[0].budget)
    assert {**dict(cells[1].budget), **chapter.PROXY_OPTIONS} == dict(cells[1].budget)
    first = chapter.run_tim(cells, cache_dir=tmp_path)
    again, hits = chapter.run_cached(chapter.run_tim_cell, cells, cache_dir=tmp_path,
                                     namespace="m3h", progress=False, return_hits=True)
    assert all(hits)
    for a, b in zip(again, first, strict=True):
        pd.testing.assert_frame_equal(pd.DataFrame(a["matrix"]), pd.DataFrame(b["matrix"]))
    out = chapter.tim_summary(cells, first)
    assert out["replicates"] == 2 and out["n_pairs"] == 6
    tim = pd.DataFrame(out["tim"])
    one = pd.DataFrame(first[0]["matrix"]).loc[tim.index, tim.columns]
    two = pd.DataFrame(first[2]["matrix"]).loc[tim.index, tim.columns]
    np.testing.assert_allclose(tim, (one + two) / 2)
    assert -1 <= out["tim_rho"] <= 1 and len(out["attention_rho_replicates"]) == 2
    assert np.isfinite(out["tim_pair_se"]) and out["tim_seconds"] > 0
    assert out["tim_cpu_seconds"] > 0


def test_gain_values_glue_a_gain_summary_in_percent_with_its_verdict() -> None:
    from ehrcausal.chapters.m3h import gain_values

    g = {"mean": -0.031, "se": 0.0094, "task_min": -0.2, "task_max": 0.1,
         "share_positive": 0.25}
    out = gain_values("gain_zero_m3h", g)
    assert out["gain_zero_m3h"] == pytest.approx(-3.1)
    assert out["gain_zero_m3h_se"] == pytest.approx(0.94)
    assert (out["gain_zero_m3h_min"], out["gain_zero_m3h_max"]) == pytest.approx((-20.0, 10.0))
    assert out["gain_zero_m3h_positive"] == pytest.approx(25.0)
    assert out["gain_zero_m3h_verdict"] == "loses to single-task learning"  # 3.3 s.e. below
    assert gain_values("g", {**g, "mean": 0.01})["g_verdict"] == (
        "is within two standard errors of single-task learning")
    one = gain_values("g", {**g, "se": float("nan")})["g_verdict"]
    assert one == "is below (one replicate: not judged) single-task learning"


def test_level_tags_glue_the_main_setting_and_the_knob_at_zero_only():
    assert [chapter.level_tag(s, [1.0, 0.5, 0.0]) for s in (1.0, 0.5, 0.0)] == [
        "shared", None, "zero"]
    assert chapter.level_tag(0.0, [0.0]) == "zero"


def _phenotype_table(shift: float) -> pd.DataFrame:
    rows = []
    for rep, base in enumerate((0.20, 0.25, 0.30)):
        for learner, value in (("m3h", base + shift), ("single_task", base + 0.01 * rep)):
            rows.append({"task": "phenotype", "problem_class": "clustering", "replicate": rep,
                         "learner": learner, "shared": 0.0, "primary": value,
                         "nmi_h_only": 0.05 if learner == "m3h" else np.nan,
                         "nmi_inputs_only": base + 0.01 * rep if learner == "m3h" else np.nan})
    return pd.DataFrame(rows)


def test_phenotype_readings_say_what_the_shared_representation_adds():
    up = chapter.phenotype_readings(_phenotype_table(0.2), ["m3h", "single_task"], [0.0])
    assert up["phenotype_zero_h_verdict"] == "raises"
    assert up["phenotype_zero_origin"].startswith("what the supervised tasks taught")
    assert up["nmi_zero_m3h"] == pytest.approx(0.45)
    assert up["nmi_zero_m3h_h_only"] == pytest.approx(0.05)
    down = chapter.phenotype_readings(_phenotype_table(-0.15), ["m3h", "single_task"], [0.0])
    assert down["phenotype_zero_h_verdict"] == "lowers"
    assert down["phenotype_zero_origin"].endswith("single-task learning clusters better")
    # the phenotype's own relative gain over single-task learning
    gains = [(-0.15 - 0.01 * r) / (b + 0.01 * r) for r, b in enumerate((0.20, 0.25, 0.30))]
    assert down["gain_zero_m3h_phenotype_text"] == pm(
        100 * np.mean(gains), 100 * np.std(gains, ddof=1) / np.sqrt(3), 1)
    one = chapter.phenotype_readings(_phenotype_table(0.2).query("replicate == 0"),
                                     ["m3h", "single_task"], [0.0])
    assert "not judged" in one["phenotype_zero_origin"]


def test_an_m3h_cell_scores_its_clustering_rule_on_each_block_alone():
    cell = chapter.Cell(150, 3, 0.0, "m3h", ("heart_failure", "phenotype"),
                        (("cluster_loss", "dec"), ("device", "cpu"), ("epochs", 2)))
    df = chapter.tidy([cell], [chapter.run_cell(cell)])
    row = df.set_index("task").loc["phenotype"]
    assert 0 <= row["nmi_h_only"] <= 1 and 0 <= row["nmi_inputs_only"] <= 1
    assert np.isnan(df.set_index("task").loc["heart_failure", "nmi_h_only"])
    assert 0 <= row["nmi_block_rule"] <= 1
    # the single-task baseline's clustering network (trained on the clustering loss alone) is
    # read the same ways; the rule on the inputs alone (the baseline without the loss) reads
    # the same block s as the M3H cell's (same cohort, rows and seed)
    single = chapter.Cell(150, 3, 0.0, "single_task", cell.tasks, cell.budget)
    srow = chapter.tidy([single], [chapter.run_cell(single)]).set_index("task").loc["phenotype"]
    assert srow["nmi_inputs_only"] == row["nmi_inputs_only"]
    assert 0 <= srow["nmi_block_rule"] <= 1 and 0 <= srow["primary"] <= 1
    assert 0.25 <= srow["largest_share"] <= 1  # k = 4 clusters
    # without the loss, the baseline's own NMI is that rule on the inputs alone
    none = chapter.Cell(150, 3, 0.0, "single_task", cell.tasks, cell.budget[1:])
    nmi = chapter.tidy([none], [chapter.run_cell(none)]).set_index("task").loc[
        "phenotype", "primary"]
    assert nmi == row["nmi_inputs_only"]


def test_loss_readings_compare_the_learners_with_and_without_the_clustering_loss():
    cfg = chapter.Config(n=100, tasks="cardiology,phenotype", learners="m3h,single_task",
                         replicates=3)
    cells = chapter.loss_cells(cfg)
    assert len(cells) == 2 * 3 * 2 and all(dict(c.budget)["cluster_loss"] == "dec"
                                           for c in cells)
    assert {c.learner for c in cells} == {"m3h", "single_task"}
    assert chapter.loss_cells(chapter.Config(learners="m3h,haim_gbt")) == []
    rows = []
    for rep in range(3):
        for learner, auc, nmi in (("m3h", 0.80 + 0.01 * rep, 0.30), ("single_task", 0.80, 0.20)):
            rows.append({"task": "hf", "problem_class": "binary", "primary": auc})
            rows.append({"task": "phenotype", "problem_class": "clustering", "primary": nmi,
                         "nmi_block_rule": nmi + 0.1, "largest_share": 0.5 + 0.1 * rep})
            for r in rows[-2:]:
                r.update(replicate=rep, learner=learner, shared=0.0)
    with_loss = pd.DataFrame(rows)
    main = with_loss.copy()  # without the loss: m3h's supervised AUC 0.80 - 0.01 r
    main.loc[(main.learner == "m3h") & (main.task == "hf"), "primary"] = [0.80, 0.79, 0.78]
    out = chapter.loss_readings(main, with_loss, [0.0])
    # argmax q for both: NMI 0.3 against 0.2
    assert out["nmi_zero_m3h_loss_text"] == pm(0.3, 0.0, 3)
    assert out["nmi_zero_single_task_loss_text"] == pm(0.2, 0.0, 3)
    assert out["largest_zero_m3h_loss_text"] == pm(60, 10 / np.sqrt(3), 0)
    gains = [np.mean([0.01 * r / 0.8, (0.3 - 0.2) / 0.2]) for r in range(3)]
    assert out["gain_zero_m3h_loss"] == pytest.approx(100 * np.mean(gains))
    # both read by the rule on [h, s]: NMI 0.4 against 0.3
    assert out["nmi_zero_m3h_loss_rule_text"] == pm(0.4, 0.0, 3)
    assert out["nmi_zero_single_task_loss_rule_text"] == pm(0.3, 0.0, 3)
    rule = [np.mean([0.01 * r / 0.8, (0.4 - 0.3) / 0.3]) for r in range(3)]
    assert out["gain_zero_m3h_loss_rule"] == pytest.approx(100 * np.mean(rule))
    # the loss's effect on the supervised tasks: paired, in percentage points (+2 r / 0.8 %)
    diff = [100 * 0.02 * r / 0.8 for r in range(3)]
    assert out["loss_zero_supervised_diff_text"] == pm(
        np.mean(diff), np.std(diff, ddof=1) / np.sqrt(3), 2)
    assert out["loss_zero_supervised_verdict"] == "does not change"
    assert chapter.loss_readings(main, with_loss.iloc[:0], [0.0]) == {}
    table = chapter.loss_table(main, with_loss)
    assert table.loc["0", ("loss, rule on [h, s]", "m3h")] == pm(0.4, 0.0, 3)
    assert table.loc["0", ("largest cluster, argmax q (%)", "single_task")] == pm(
        60, 10 / np.sqrt(3), 0)


def test_scarce_labels_thin_the_training_and_validation_labels_of_supervised_tasks_only():
    ds = chapter.cohort(300, 5, 1.0)
    tasks = ds.tasks[ds.tasks.name.isin(["heart_failure", "severity", "los_days", "phenotype"])]
    out = chapter.scarce_fit_labels(ds, tasks, 0.2, seed=11)
    split = np.asarray(ds.split)
    for name, cls in zip(tasks.name, tasks.problem_class, strict=True):
        before, after = ds.targets[name], out.targets[name]
        # kept labels are the original ones; the test rows and the clustering task untouched
        assert (after.dropna() == before[after.notna()]).all()
        pd.testing.assert_series_equal(after[split == "test"], before[split == "test"])
        if cls == "clustering":
            pd.testing.assert_series_equal(after, before)
            continue
        for part in ("train", "val"):  # 20 % of each part's labels, per class (stratified)
            b, a = before[split == part].dropna(), after[split == part].dropna()
            groups = [b] if cls == "regression" else [b[b == c] for c in np.unique(b)]
            expected = sum(max(1, round(0.2 * len(g))) for g in groups if len(g))
            assert len(a) == expected < len(b)
    # one draw per replicate seed and fraction: the same for every learner, new per replicate
    again = chapter.scarce_fit_labels(ds, tasks, 0.2, seed=11)
    pd.testing.assert_frame_equal(again.targets, out.targets)
    other = chapter.scarce_fit_labels(ds, tasks, 0.2, seed=12)
    assert not other.targets.isna().equals(out.targets.isna())
    assert chapter.scarce_fit_labels(ds, tasks, 1.0, seed=11) is ds
    with pytest.raises(ValueError, match="fraction"):
        chapter.scarce_fit_labels(ds, tasks, 0.0, seed=11)


def test_a_cell_fits_its_learner_on_the_scarce_labels(monkeypatch):
    seen = {}
    real = chapter.make

    def spy(name, **params):
        est = real(name, **params)
        fit = est.fit

        def record(X, Y, **kw):
            seen["Y"] = Y.copy()
            return fit(X, Y, **kw)

        est.fit = record
        return est

    monkeypatch.setattr(chapter, "make", spy)
    names = ("heart_failure", "pneumonia", "phenotype")
    cell = chapter.Cell(150, 3, 1.0, "haim_gbt", names, (("n_estimators", 2),), labels=0.2)
    out = chapter.run_cell(cell)
    ds = chapter.cohort(150, 3, 1.0)
    tasks = ds.tasks[ds.tasks.name.isin(names)]
    fit = ds.take(np.asarray(ds.split) != "test")
    expected = chapter.scarce_fit_labels(fit, tasks, 0.2, 3).targets
    pd.testing.assert_frame_equal(seen["Y"][list(names)], expected[list(names)])
    assert seen["Y"]["heart_failure"].notna().sum() < 0.3 * fit.targets["heart_failure"].notna(
        ).sum()
    assert chapter.tidy([cell], [out])["labels"].eq(0.2).all()


def _regime_table() -> pd.DataFrame:
    """m3h and single_task, two knob levels, two label regimes, three replicates: with every
    label m3h gains 10 % (+-1) with shared causes and loses 10 % at zero; with 10 % of them it
    gains 10 % at both levels."""
    rows = []
    for labels in (1.0, 0.1):
        for shared in (1.0, 0.0):
            lift = 0.1 if labels < 1 or shared > 0 else -0.1
            for rep in range(3):
                for learner, value in (("single_task", 0.5), ("m3h", 0.5 * (1 + lift)
                                                              + 0.005 * (rep - 1))):
                    rows.append({"task": "heart_failure", "problem_class": "binary",
                                 "replicate": rep, "learner": learner, "shared": shared,
                                 "labels": labels, "primary": value})
    return pd.DataFrame(rows)


def test_regime_readings_glue_each_label_regime_and_judge_the_target():
    assert chapter.label_tag(1.0, [1.0, 0.5, 0.1]) == ""
    assert chapter.label_tag(0.1, [1.0, 0.5, 0.1]) == "_scarce"
    assert chapter.label_tag(0.5, [1.0, 0.5, 0.1]) is None
    out = chapter.regime_readings(_regime_table(), ["m3h", "single_task"], [1.0, 0.0],
                                  [1.0, 0.1])
    assert out["gain_shared_m3h"] == pytest.approx(10.0)
    assert out["gain_zero_m3h"] == pytest.approx(-10.0)
    assert out["gain_zero_scarce_m3h"] == pytest.approx(10.0)
    assert out["gain_zero_m3h_verdict"] == "loses to single-task learning"
    assert out["gain_zero_scarce_m3h_verdict"] == "beats single-task learning"
    assert out["target"] == "not met" and out["target_scarce"] == "met"
    assert out["labels_scarce_pct"] == pytest.approx(10.0)
    one = _regime_table().query("replicate == 0")
    assert chapter.regime_readings(one, ["m3h", "single_task"], [1.0, 0.0], [1.0, 0.1])[
        "target"] == "not judged (one replicate)"
    tables = chapter.regime_tables(_regime_table(), ["m3h", "single_task"])
    assert tables["gains"].loc[("0", "10 %"), ("m3h", "all tasks")] == pm(
        10.0, 100 * 0.01 / np.sqrt(3), 2)
    assert tables["nmi"].empty or "m3h" not in tables["nmi"]
