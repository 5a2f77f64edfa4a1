"""``tools/ship_model.py`` on a tiny card: what it keeps and what it records."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ship_model_keeps_the_trained_on_dataset_and_names_the_provenance_file(tmp_path: Path) -> None:
    card = {"files": {"tflite": "m.tflite", "keras": "m.keras"}, "run_dir": "/tmp/run",
            "dataset": {"path": "crops/train_det3", "counts": {"mask": 1, "no_mask": 1}}}  # fmt: skip
    (tmp_path / "m.json").write_text(json.dumps(card))
    (tmp_path / "m.tflite").write_bytes(b"model")
    (tmp_path / "starter").mkdir()
    (tmp_path / "starter" / "provenance.csv").write_text("package,version,fetched_as,licence\np,1,sdist,MIT\n")
    command = [sys.executable, str(ROOT / "tools" / "ship_model.py"), "--stem", "m", "--provenance", "starter",
               "--command", "python -m train --dataset crops/train_det3"]
    done = subprocess.run(command, cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr
    shipped = json.loads((tmp_path / "m.json").read_text())
    assert shipped["dataset"] == card["dataset"]  # the set the counts are of, not the provenance folder
    assert shipped["data_provenance"]["per_file"].startswith(f"{tmp_path / 'starter' / 'provenance.csv'} (")
    assert shipped["data_provenance"]["inputs_per_source (photos and frames x size copies)"] == {"p 1 (sdist, MIT)": 1}
    assert shipped["files"] == {"tflite": "m.tflite"} and "run_dir" not in shipped
    assert shipped["reproduce"] == ["python -m train --dataset crops/train_det3"]
