"""Every table row of the three papers runs on the fixture trees (one training step, tiny models), the
tables are written paper-style, and no shipped config selects its checkpoint on the part it reports."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import yaml
from avprompt_fixtures import tiny_config as avprompt_tiny
from cad_fixtures import SIZE as CAD_SIZE
from cad_fixtures import TINY_MODEL as CAD_TINY
from data_fixtures import (
    write_celebdf,
    write_dfdc,
    write_faceforensics,
    write_fakeavceleb,
    write_kodf,
    write_manifest,
)
from data_windows_fixtures import CentreFaceDetector, one_torch_thread
from macbdf_fixtures import TINY as MACBDF_TINY
from repro_fixtures import write_idforge_v2_with_val
from train_fixtures import ENGINE_CONFIG

from avforensics.cli import main
from avforensics.data.adapters import get_adapter
from avforensics.data.prepare import PrepareOptions, prepare_dataset
from avforensics.eval.tables import ProtocolTable, TableRow
from avforensics.experiment.config import load_config, shipped_configs
from avforensics.protocols.evaluate import resolve_checkpoint, selection_warning
from avforensics.protocols.paper_tables import ROWS, reproduce, row_config, table_rows

OPTIONS = PrepareOptions(size=32, stride=4, max_side=96)
TREES = {
    "fakeavceleb": write_fakeavceleb,
    "kodf": write_kodf,
    "idforge-v2": write_idforge_v2_with_val,
    "faceforensics": write_faceforensics,
    "celebdf": write_celebdf,
    "dfdc": write_dfdc,
    "defakeavmit": lambda root: write_manifest(root, [
        {"path": f"{kind}{i}.mp4", "label": int(kind == "fake"), "method": "x" if kind == "fake" else "",
         "identity": f"p{i}"} for kind in ("real", "fake") for i in range(4)]),
}
#: Tiny random towers per detector (the tests' own), and the windows they take.
TINY: dict[str, tuple[list[str], int]] = {
    "avprompt": ([f"model.config={json.dumps(avprompt_tiny())}"], 32),
    "cad": ([f"model.overrides.{key}={json.dumps(value)}" for key, value in CAD_TINY.items()], CAD_SIZE),
    "macbdf": ([f"model.config={json.dumps(MACBDF_TINY)}"], 32),
}
ONE_STEP = [
    "data.clip_frames=4", "data.batch_size=2", "data.workers=0", "optim.epochs=1", "optim.max_steps=1",
    "optim.warmup_epochs=0", "trainer.accelerator=cpu", "trainer.devices=1", "trainer.precision='32'",
    "trainer.threads=1", "trainer.progress_bar=false", "trainer.log_every_n_steps=1",
]


@pytest.fixture(scope="module")
def datasets(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, str], dict[str, str]]:
    """(roots, prepared caches) of every dataset a row reads, by adapter name, made once per module."""
    base = tmp_path_factory.mktemp("paper_tables")
    roots, prepared = {}, {}
    with one_torch_thread():
        for name, write in TREES.items():
            root = write(base / name)
            roots[name], prepared[name] = str(root), str(base / f"{name}-prepared")
            records = get_adapter(name).records(root)
            prepare_dataset(records, prepared[name], OPTIONS, dataset=name,
                            detector_factory=CentreFaceDetector)
    return roots, prepared


def _overrides(paper: str) -> list[str]:
    model, size = TINY[paper]
    return [*model, *ONE_STEP, f"data.options.image_size={size}"]


TABLES = sorted({(row.paper, row.table) for row in ROWS})
#: MACB-DF's tables run through the command, all at once (test_reproduce_command_runs_a_paper...)
ONE_BY_ONE = [(paper, table) for paper, table in TABLES if paper != "macbdf"]


def test_every_paper_table_is_listed():
    expected = [("avprompt", t) for t in range(1, 6)] + [("cad", t) for t in range(1, 6)]
    assert expected + [("macbdf", t) for t in range(1, 4)] == TABLES
    assert len({row.slug for row in ROWS}) == len(ROWS)  # one run folder per row


@pytest.mark.slow
@pytest.mark.parametrize(("paper", "table"), ONE_BY_ONE, ids=[f"{p}-{t}" for p, t in ONE_BY_ONE])
def test_every_row_of_the_table_runs_on_the_fixtures(paper, table, datasets, tmp_path):
    roots, prepared = datasets
    out = tmp_path / "out"
    with one_torch_thread():
        (result,) = reproduce(paper, [table], out, roots=roots, prepared=prepared,
                              overrides=_overrides(paper), batch_size=4, plots=False)
    _check_rows(paper, table, result, out, roots, prepared)
    assert f"Table {table}" in (out / f"{paper}.md").read_text()


def _check_rows(paper: str, table: int, result: ProtocolTable, out: Path, roots: dict[str, str],
                prepared: dict[str, str]) -> None:
    """Each row of the table is in `result`, its run scored the right dataset and the paper CSV lists it."""
    rows = table_rows(paper, table)
    assert [row.name for row in result.rows] == [f"{row.name} / {row.subset}" for row in rows]
    for row, scored in zip(rows, result.rows, strict=True):
        config = row_config(row, roots, prepared, _overrides(paper))
        run = out / "runs" / row.slug
        if not run.exists():  # the same config as an earlier row of the table: run once, scored alike
            continue
        summary = json.loads((run / "evaluation" / "summary.json").read_text())
        assert summary["videos"] == scored.n > 0 and summary["warnings"] == []
        test = config.data.test.dataset or config.data.dataset
        assert {video.split("/")[0] for video in _videos(run)} == {test}
        # thresholds come from the training dataset's validation part (none, 0.5, when that is the test part)
        if config.data.val_split == REPORTED_PART:
            assert scored.threshold_source.startswith("0.5") and not config.trainer.monitor
        else:
            validated = _videos(run, "evaluation/validation/predictions.csv")
            assert {video.split("/")[0] for video in validated} == {config.data.dataset}
    with (out / f"{paper}.csv").open() as handle:
        names = [line["name"] for line in csv.DictReader(handle) if line["table"] == str(table)]
    assert names == [*[r.name for r in result.rows], "average"]


def _videos(run: Path, table: str = "evaluation/videos.csv") -> set[str]:
    with (run / table).open() as handle:
        return {line["video_id"] for line in csv.DictReader(handle)}


@pytest.mark.slow
def test_reproduce_command_runs_a_paper_and_lists_rows(datasets, tmp_path, capsys):
    roots, prepared = datasets
    out = tmp_path / "out"
    arguments = [f"--data={name}={root}" for name, root in roots.items()]
    arguments += [f"--prepared={name}={cache}" for name, cache in prepared.items()]
    arguments += [f"--set={value}" for value in _overrides("macbdf")]
    with one_torch_thread():
        assert main(["reproduce", "macbdf", "--out", str(out), "--no-plots", *arguments]) == 0
    printed = capsys.readouterr().out
    assert all(f"Table {table}" in printed for table in (1, 2, 3)) and "DFDC -> DefakeAVMiT" in printed
    results = {}
    for table in (1, 2, 3):
        with (out / f"macbdf_table{table}.json").open() as handle:
            results[table] = json.load(handle)
        rows = [TableRow.from_dict(row) for row in results[table]["rows"]]
        _check_rows("macbdf", table, ProtocolTable("", "video", "overall", rows), out, roots, prepared)
    # the full model's row of Table 2 is Table 1's run, not a second one
    assert results[2]["rows"][-2] == {**results[1]["rows"][0], "name": "MACB-DF / FakeAVCeleb"}
    assert not (out / "runs" / "macbdf-t2-macb-df-fakeavceleb").exists()
    assert main(["reproduce", "--list", "cad", "2"]) == 0
    listed = capsys.readouterr().out
    assert "avforensics train cad/table2_idforge --out runs/cad-t2-cad-ours-idforge" in listed
    assert main(["reproduce", "cad", "9", "--out", str(out)]) == 1
    assert main(["reproduce", "cad", "2", "--out", str(out), "--data", "nodataset"]) == 1


#: The part every row (and `evaluate` by default) reports.
REPORTED_PART = "test"


@pytest.mark.parametrize("path", sorted(shipped_configs().glob("*/*.yaml")),
                         ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_no_shipped_config_selects_its_checkpoint_on_the_part_it_reports(path):
    config = load_config(path)
    selects = bool(config.trainer.monitor)
    validations = config.optim.epochs // config.trainer.val_every_n_epochs
    if config.data.val_split == REPORTED_PART and not config.data.test.dataset:
        assert not (selects and validations > 1), f"{path} selects {config.trainer.monitor} on the test part"
    assert "Selection" in path.read_text() or "extends" in yaml.safe_load(path.read_text()), (
        f"{path}: say in a comment how the checkpoint is selected")


def test_evaluate_names_a_checkpoint_selected_on_the_scored_part():
    config = load_config("macbdf/paper", ["trainer.monitor=val/video/overall/auc"])
    best, last = Path("run/checkpoints/best-step=9.ckpt"), Path("run/checkpoints/last.ckpt")
    warning = selection_warning(best, config, config, "test")
    assert "selected by val/video/overall/auc on part 'test'" in warning
    assert selection_warning(last, config, config, "test") == ""  # the last checkpoint selects nothing
    other = load_config("macbdf/table3_dfdc_cross", ["trainer.monitor=val/video/overall/auc"])
    assert selection_warning(best, other, other, "test") == ""  # selected on DFDC's validation part
    assert selection_warning(best, load_config("macbdf/paper"), config, "test") == ""  # no monitor


@pytest.mark.parametrize("monitor", ["", "val/video/overall/auc"])
def test_an_empty_monitor_keeps_the_last_checkpoint_as_the_model(monitor, tmp_path, one_thread):
    from avforensics.train.run import train

    config = load_config(ENGINE_CONFIG, ["optim.epochs=2", f"trainer.monitor='{monitor}'"])
    result = train(config, tmp_path / "run")
    best = sorted((tmp_path / "run" / "checkpoints").glob("best-*.ckpt"))
    if monitor:
        assert result.best_checkpoint == best[0] and resolve_checkpoint(tmp_path / "run") == best[0]
    else:
        assert best == [] and result.best_checkpoint is None and result.best_score is None
        assert resolve_checkpoint(tmp_path / "run") == result.last_checkpoint
