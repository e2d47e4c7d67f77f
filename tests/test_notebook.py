"""The example notebook runs as a kernel runs it: top-level await on an already running loop."""

import ast
import asyncio
import json
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_quickstart_notebook_runs(tmp_path):
    notebook = json.loads((ROOT / "notebooks" / "backfill_quickstart.ipynb").read_text())
    cells = ["".join(c["source"]) for c in notebook["cells"] if c["cell_type"] == "code"]
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "sample_data").symlink_to(ROOT / "sample_data")
    namespace = {}

    async def kernel():
        for source in cells:
            code = compile(source, "<cell>", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
            result = eval(code, namespace)
            if asyncio.iscoroutine(result):
                await result
        # The sync face, called from a cell while the kernel's loop runs.
        frame = namespace["df"].head(50)
        return frame.gameball.send(
            customer_id="customer_id",
            event_name="event_name",
            base_url=namespace["emulator"].base_url,
            api_key=namespace["emulator"].api_key,
            ledger="notebook.ledger",
            progress=False,
        )

    cwd = os.getcwd()
    os.chdir(tmp_path / "notebooks")
    try:
        again = asyncio.run(kernel())
    finally:
        os.chdir(cwd)
        namespace.get("emulator") and namespace["emulator"].stop()
    sent = namespace["sent"]
    assert sent.rows == 3000
    assert sent.invalid == 102
    assert again.sent == 0, "the ledger knew every row of the re-run"
