"""Strip outputs and execution counts from every tutorial notebook (they are committed bare).

Run by ``make notebooks`` after jupytext has rebuilt the notebooks from their text twins.
"""

import json
from pathlib import Path

for path in sorted(Path(__file__).parent.glob("[0-9][0-9]_*.ipynb")):
    nb = json.loads(path.read_text())
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            cell["outputs"], cell["execution_count"] = [], None
        cell.get("metadata", {}).pop("execution", None)
    path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
