"""Every table row of the three papers as one run: a shipped config plus `--set` lines, trained and scored.

`ROWS` lists the papers' own method and ablation rows (not the baselines of other methods), one per subset
where a table has subsets (e.g. CAD Table 4's FaceShifter and Celeb-DF columns). `reproduce` trains and
evaluates the rows of a paper's tables with the engine (`benchmark.run_row`: resumable, finished rows
skipped) and writes each paper-style table; rows whose resolved configs are equal (a table's "Ours" row
and another table's) run once per call. Layout of OUT: `runs/<paper>-t<table>-<row>/`,
`<paper>_table<N>.md/.csv/.json`, and `<paper>.md` / `<paper>.csv` holding every table of that paper
written so far in OUT.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from avforensics.eval.tables import ProtocolTable, TableRow
from avforensics.experiment.config import ExperimentConfig, config_to_dict, load_config
from avforensics.protocols.benchmark import finished_row, run_row

log = logging.getLogger(__name__)

PAPERS = {
    "avprompt": "Multi-task audio-visual prompt learning (Miao et al., AAAI 2025)",
    "cad": "CAD (Du et al., 2025)",
    "macbdf": "MACB-DF (Xiong et al., ICMR 2025)",
}
CATEGORIES = ("RVFA", "FVRA-WL", "FVFA-FS", "FVFA-GAN", "FVFA-WL")


@dataclass(frozen=True)
class PaperRow:
    """One printed row of a paper's table on one subset: which config and settings reproduce it."""

    paper: str
    table: int
    name: str
    subset: str
    config: str
    sets: tuple[str, ...] = ()

    @property
    def slug(self) -> str:
        text = f"{self.paper}-t{self.table}-{self.name}-{self.subset}"
        return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower()

    def commands(self, run_dir: str = "") -> str:
        """The shell commands that train and score this row alone."""
        run = run_dir or f"runs/{self.slug}"
        sets = "".join(f" --set {value}" for value in self.sets)
        return (f"avforensics train {self.config} --out {run}{sets} && "
                f"avforensics evaluate {run} --out {run}/evaluation")


def _held_out(category: str) -> tuple[str, ...]:
    return (f"data.options.protocol_params.held_out={category}",)


def _test_on(protocol: str, dataset: str, root: str) -> tuple[str, ...]:
    return (f"data.protocol={protocol}", f"data.test.dataset={dataset}", f"data.test.root={root}")


_KODF = _test_on("fakeavceleb-to-kodf", "kodf", "datasets/KoDF")
_FACESHIFTER = _test_on("idforge-to-faceshifter", "faceforensics", "datasets/FaceForensics++")
_DEFAKEAVMIT = _test_on("dfdc-to-defakeavmit", "defakeavmit", "datasets/DefakeAVMiT")
_DFDC = ("data.dataset=dfdc", "data.root=datasets/DFDC")


def _grid(paper: str, table: int, rows: Sequence[tuple[str, str]],
          subsets: Sequence[tuple[str, tuple[str, ...]]]) -> list[PaperRow]:
    return [PaperRow(paper, table, name, subset, f"{paper}/{config}", sets)
            for name, config in rows for subset, sets in subsets]


ROWS: tuple[PaperRow, ...] = (
    PaperRow("avprompt", 1, "Ours", "FakeAVCeleb", "avprompt/paper"),
    *(PaperRow("avprompt", 2, "Ours", category, "avprompt/table2_cross_manipulation", _held_out(category))
      for category in CATEGORIES),
    PaperRow("avprompt", 3, "Ours", "KoDF", "avprompt/table3_kodf"),
    *_grid("avprompt", 4, [("audio branch", "table4_audio_branch"), ("visual branch", "table4_visual_branch"),
                           ("both branches w/o L_CMFM", "table4_no_cmfm"), ("Ours", "paper")],
           [("FakeAVCeleb", ()), ("KoDF", _KODF)]),
    *_grid("avprompt", 5, [("Ours", "paper"), ("w/o L_a", "table5_no_audio_loss"),
                           ("w/o L_v", "table5_no_video_loss"), ("VPT-replacing", "table5_vpt_replacing"),
                           ("segment-level loss", "table5_segment_level_loss")],
           [("FakeAVCeleb", ()), ("KoDF", _KODF)]),
    PaperRow("cad", 1, "CAD (Ours)", "FakeAVCeleb", "cad/paper"),
    PaperRow("cad", 2, "CAD (Ours)", "IDForge", "cad/table2_idforge"),
    *(PaperRow("cad", 3, "CAD (Ours)", c, "cad/table3_cross_manipulation", _held_out(c)) for c in CATEGORIES),
    *_grid("cad", 4, [("only video", "only_video"), ("w/o alignment", "no_alignment"),
                      ("w/o cross attention", "no_cross_attention"), ("w/o frozen model", "no_frozen_model"),
                      ("CAD (Ours)", "tables45")],
           [("FaceShifter", _FACESHIFTER), ("Celeb-DF", ())]),
    *_grid("cad", 5, [("only video", "only_video"), ("w/o distillation", "no_distillation"),
                      ("Substitute SimSiam with KL", "kl_distillation"), ("CAD (Ours)", "tables45")],
           [("FaceShifter", _FACESHIFTER), ("Celeb-DF", ())]),
    PaperRow("macbdf", 1, "MACB-DF", "FakeAVCeleb", "macbdf/paper"),
    PaperRow("macbdf", 1, "MACB-DF", "DFDC", "macbdf/dfdc"),
    PaperRow("macbdf", 1, "MACB-DF", "DefakeAVMiT", "macbdf/defakeavmit"),
    *_grid("macbdf", 2, [("MACB-DF w/o L_C", "no_contrast"), ("MACB-DF w/o L_intra", "no_intra"),
                         ("MACB-DF w/o L_cross", "no_cross"), ("MACB-DF w/o w", "uniform_weights"),
                         ("MACB-DF", "paper")],
           [("FakeAVCeleb", ()), ("DFDC", _DFDC)]),
    PaperRow("macbdf", 3, "MACB-DF", "DFDC -> DefakeAVMiT", "macbdf/table3_dfdc_cross", _DEFAKEAVMIT),
    PaperRow("macbdf", 3, "MACB-DF", "DFDC -> FakeAVCeleb", "macbdf/table3_dfdc_cross"),
)


class ReproduceError(ValueError):
    """A table that cannot be reproduced as asked; the message names the paper, table or setting."""


def table_rows(paper: str, table: int) -> list[PaperRow]:
    """The rows of one paper's table, in the paper's order."""
    if paper not in PAPERS:
        raise ReproduceError(f"unknown paper {paper!r}; known: {sorted(PAPERS)}")
    rows = [row for row in ROWS if row.paper == paper and row.table == table]
    if not rows:
        tables = sorted({row.table for row in ROWS if row.paper == paper})
        raise ReproduceError(f"{paper} has no table {table} here; its tables: {tables}")
    return rows


def row_config(row: PaperRow, roots: Mapping[str, str] = {}, prepared: Mapping[str, str] = {},
               overrides: Sequence[str] = ()) -> ExperimentConfig:
    """The row's resolved config, with each dataset's root / prepared cache taken from `roots` /
    `prepared` (by adapter name) where given, then `overrides` applied."""
    base = load_config(row.config, row.sets)
    places = [("data", base.data.dataset), ("data.test", base.data.test.dataset)]
    located = [f"{where}.root={roots[name]}" for where, name in places if name in roots]
    located += [f"{where}.options.prepared={prepared[name]}" for where, name in places if name in prepared]
    return load_config(row.config, [*row.sets, *located, *overrides])


def reproduce(
    paper: str,
    tables: Sequence[int] | None,
    out_dir: str | Path,
    *,
    roots: Mapping[str, str] = {},
    prepared: Mapping[str, str] = {},
    overrides: Sequence[str] = (),
    batch_size: int | None = None,
    device: str = "cpu",
    plots: bool = True,
) -> list[ProtocolTable]:
    """Train and evaluate every row of `paper`'s `tables` (None: all of them); write each table and the
    paper's collected tables. Rows with equal resolved configs, within a table or across, run once."""
    out = Path(out_dir)
    numbers = sorted({row.table for row in ROWS if row.paper == paper}) if tables is None else list(tables)
    done: dict[str, TableRow] = {}
    results = []
    for table in numbers:
        rows = table_rows(paper, table)
        result = ProtocolTable(f"{PAPERS[paper]}, Table {table}", "video", "overall", label="row / subset",
                               details={"paper": paper, "table": table})
        for row in rows:
            config = row_config(row, roots, prepared, overrides)
            key = json.dumps(config_to_dict(config), sort_keys=True)
            label = f"{row.name} / {row.subset}"
            if key in done:
                log.info("%s: the same run as an earlier row, not repeated", label)
            else:
                done[key] = finished_row(out / "runs" / row.slug, config, _SETTING) or run_row(
                    config, out / "runs" / row.slug, label, "test", "video", "overall", batch_size, device,
                    plots)
            scored = done[key]
            result.rows.append(TableRow(label, scored.n, scored.n_fake, scored.acc, scored.auc, scored.ap,
                                        scored.threshold, scored.threshold_source))
        result.write(out, f"{paper}_table{table}")
        results.append(result)
    _collect(out, paper)
    return results


_SETTING = {"level": "video", "head": "overall", "part": "test"}


def _collect(out: Path, paper: str) -> None:
    """`<paper>.md` / `.csv`: every `<paper>_table<N>` of OUT, in table order (one file per paper)."""
    stems = sorted(out.glob(f"{paper}_table*.md"), key=lambda path: int(path.stem.rsplit("table", 1)[1]))
    (out / f"{paper}.md").write_text(f"## {PAPERS[paper]}\n\n" + "\n".join(
        path.read_text(encoding="utf-8") for path in stems), encoding="utf-8")
    csv_parts = []
    for path in stems:
        lines = path.with_suffix(".csv").read_text(encoding="utf-8").splitlines()
        header, body = lines[0], lines[1:]
        if not csv_parts:
            csv_parts.append(f"table,{header}")
        csv_parts += [f"{path.stem.rsplit('table', 1)[1]},{line}" for line in body]
    (out / f"{paper}.csv").write_text("\n".join(csv_parts) + "\n", encoding="utf-8")
