"""`lriad inspect --map GOOD` on the bundled model: the anomaly map beside each finding, and its bad inputs."""

import json

from test_cli import run_cli


def test_the_map_scores_defects_above_good_images_and_places_a_box(tmp_path):
    from training.synthetic import main as make_synthetic

    make_synthetic([str(tmp_path / "set"), "--per-kind", "2", "--seed", "5150", "--line-variant", "0"])
    fabric = tmp_path / "set" / "fabric"
    res = run_cli("inspect", fabric / "test" / "good", fabric / "test" / "hole", "--map", fabric / "train" / "good",
                  "--json", "--max-new-tokens", "8")
    assert res.returncode == 0, res.stderr
    assert "anomaly map: " in res.stderr and "from 2 good image(s)" in res.stderr
    rows = [json.loads(line) for line in res.stdout.splitlines()]
    maps = {r["image_path"].split("/test/")[1]: r["anomaly_map"] for r in rows}
    assert len(maps) == 4 and all(m["bank_images"] == 2 for m in maps.values())
    good = [m["score"] for k, m in maps.items() if k.startswith("good/")]
    holes = [m for k, m in maps.items() if k.startswith("hole/")]
    assert min(h["score"] for h in holes) > max(good)  # the pasted holes stand out from the good fabric
    assert all(h["boxes"] for h in holes)  # and the map says where
    table = run_cli("inspect", fabric / "test" / "hole" / "000.png", "--map", fabric / "train" / "good",
                    "--max-new-tokens", "8")
    assert table.returncode == 0 and "\tmap " in table.stdout


def test_too_few_or_unreadable_good_images_are_one_error_line(tmp_path):
    from PIL import Image

    good = tmp_path / "good"
    good.mkdir()
    Image.new("RGB", (64, 64), (90, 90, 90)).save(good / "a.png")
    part = tmp_path / "part.png"
    Image.new("RGB", (64, 64), (90, 90, 90)).save(part)
    one = run_cli("inspect", part, "--map", good, "--json")
    assert one.returncode == 2 and "needs at least two good images" in one.stderr and "Traceback" not in one.stderr
    (good / "b.png").write_text("not an image")
    bad = run_cli("inspect", part, "--map", good / "a.png", "--map", good / "b.png", "--json")
    assert bad.returncode == 2 and "--map" in bad.stderr and "Traceback" not in bad.stderr
    served = run_cli("inspect", part, "--map", good, "--server", "http://127.0.0.1:9")
    assert served.returncode == 2 and "give its local folder with --model" in served.stderr
