"""``clustermass --help`` groups the commands (set-up, data, models, results, operations)."""

from __future__ import annotations

import re

import typer
from typer.testing import CliRunner

from cli.main import PANELS, app

EXPECTED = {
    "Set-up": {"db", "demo"},
    "Data": {"mock", "simulate", "ingest", "crossmatch", "catalogue"},
    "Models": {"fit", "train", "benchmark", "predict", "attribute"},
    "Results": {"report", "query"},
    "Operations": {"status", "runs", "worker", "serve", "bench"},
}


def test_every_command_is_in_a_group_with_a_one_line_description() -> None:
    group = typer.main.get_command(app)
    panels: dict[str, set[str]] = {}
    for name, cmd in group.commands.items():
        panels.setdefault(getattr(cmd, "rich_help_panel", None), set()).add(name)
        text = (cmd.help or "").strip()
        assert text, f"command {name} has no description"
        assert len(text.splitlines()[0]) <= 100, f"{name}: first help line too long"
    assert panels == EXPECTED
    assert tuple(EXPECTED) == PANELS


def test_help_shows_the_groups_in_order() -> None:
    out = CliRunner().invoke(app, ["--help"], terminal_width=120).output
    titles = [m.group(1) for m in re.finditer(r"╭─ ([A-Za-z-]+) ─", out)]
    assert titles == ["Options", *PANELS]
    # each command is listed under its own group's box, with its description
    boxes = re.split(r"╭─ [A-Za-z-]+ ─", out)[2:]
    for (panel, names), box in zip(EXPECTED.items(), boxes, strict=True):
        listed = set(re.findall(r"^│ ([a-z]+) +\S", box, flags=re.M))
        assert listed == names, panel


def test_report_refuses_a_results_csv_without_its_preset(tmp_path) -> None:
    out = CliRunner().invoke(
        app,
        ["report", "--catalogue", "x", "--results-csv", str(tmp_path / "r.csv")],
        terminal_width=120,
    )
    assert out.exit_code == 2
    assert "--results-csv needs --preset" in out.output
    assert not (tmp_path / "r.csv").exists()
