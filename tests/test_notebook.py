"""The example notebook, run in a real Jupyter kernel: ``await asend`` on the kernel's own loop,
and the sync ``send()`` from a cell while that loop runs (no nest_asyncio)."""

import shutil
from pathlib import Path

import nbclient
import nbformat

ROOT = Path(__file__).resolve().parent.parent

SYNC_CELL = """\
again = df.head(200).gameball.send(
    customer_id="customer_id",
    event_name="event_name",
    base_url=emulator.base_url,
    api_key=emulator.api_key,
    limits=fast,
    ledger="notebook.ledger",
)
print(again)
"""


def outputs(cell):
    texts = []
    for output in cell.outputs:
        assert output.output_type != "error", f"{output.ename}: {output.evalue}"
        if output.output_type == "stream":
            texts.append(output.text)
        elif "text/plain" in output.get("data", {}):
            texts.append(output.data["text/plain"])
    return "\n".join(texts)


def load(name):
    return nbformat.read(ROOT / "notebooks" / name, as_version=4)


def execute(notebook, tmp_path):
    """Run ``notebook`` in a real kernel from a copy of the repository's layout."""
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "sample_data").symlink_to(ROOT / "sample_data")
    client = nbclient.NotebookClient(
        notebook,
        timeout=180,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path / "notebooks")}},
    )
    client.execute()


def test_quickstart_notebook_runs_in_a_kernel(tmp_path):
    notebook = load("backfill_quickstart.ipynb")
    # Before the emulator stops: the sync face, from inside the running kernel loop.
    notebook.cells.insert(-1, nbformat.v4.new_code_cell(SYNC_CELL))
    execute(notebook, tmp_path)
    code = [outputs(cell) for cell in notebook.cells if cell.cell_type == "code"]
    text = "\n".join(code)
    assert "<ValidationReport rows=3,000 valid=2,898 invalid=102>" in text
    assert "<SendReport rows=3,000 sent=2,898 invalid=102" in text
    fixed, sync = code[-3], code[-2]
    assert "sent=52" in fixed, "the fixed emails, mobiles and amounts were sent"
    assert "skipped=193" in sync, "the ledger knew the rows the notebook had sent"
    assert (tmp_path / "notebooks" / "notebook.failures.parquet").exists()
    widgets = [
        output
        for cell in notebook.cells
        for output in cell.get("outputs", [])
        if "application/vnd.jupyter.widget-view+json" in output.get("data", {})
    ]
    assert len(widgets) >= 3, "each send showed its progress bar as a widget in the kernel"
    shutil.rmtree(tmp_path / "notebooks")


def test_walkthrough_notebook_runs_start_to_end_with_reports_and_plots(tmp_path):
    """Load, validate, fix, plan, send, plot, resend the failures, check the emulator, batch
    mode: the walkthrough executes in a real kernel, so it cannot rot."""
    notebook = load("backfill_walkthrough.ipynb")
    stored = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert all(not cell.outputs for cell in stored), "stored without outputs"
    execute(notebook, tmp_path)
    text = "\n".join(outputs(cell) for cell in notebook.cells if cell.cell_type == "code")
    rich = [output.get("data", {}) for cell in notebook.cells for output in cell.get("outputs", [])]
    html = "\n".join(data.get("text/html", "") for data in rich)
    assert sum("image/png" in data for data in rich) >= 2, "validation.plot() and report.plot()"
    assert "Gameball validation" in html
    assert "Gameball dry run (events mode): nothing was sent" in html
    assert "Gameball send: 3,000 rows" in html
    assert "<SendReport rows=3,000 sent=2,929 invalid=71" in text
    assert "2,947 events arrived; sent by the two runs: 2,947" in text, "nothing twice"
    assert "mode=events" in text
    assert (tmp_path / "notebooks" / "walkthrough.failures.parquet").exists()
