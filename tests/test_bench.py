"""The layer benchmark runs end to end and reports every layer it promises."""

from __future__ import annotations

import json

from minialexnet.bench.__main__ import main


def test_bench_layers_prints_every_paper_layer_and_writes_json(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert main(["layers", "--batch", "1", "--repeat", "1", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    names = ["conv1", "conv2", "conv3", "conv4", "conv5", "lrn1", "pool1", "fc6"]
    for name in names:
        assert f"\n{name} " in printed
    data = json.loads(out.read_text())
    assert [r["layer"] for r in data["layers"]] == names
    for r in data["layers"]:
        assert r["ms"] > 0 and r["matmul_gflops"] > 0
        assert (r["gflops"] is None) == (r["layer"] in ("lrn1", "pool1"))
