"""Timeline sources: arguments, manifest files and git history, in the order a bisect needs."""

from __future__ import annotations

import hashlib
import json
import tracemalloc
from pathlib import Path

import numpy as np
import onnx
import pytest
import yaml

from model_bisect.errors import InputError
from model_bisect.timeline.arguments import from_arguments
from model_bisect.timeline.entry import TimelineEntry, natural_key, require_two, unique_labels
from model_bisect.timeline.file import from_file
from model_bisect.timeline.git import from_git
from model_bisect.timeline.registry import SOURCES
from tests.conftest import REPO_ROOT
from tests.modelkit import default_weights, linear_model, sidecar_json
from tests.repokit import git


def _touch(folder: Path, *names: str) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in names:
        path = folder / name
        path.write_bytes(name.encode())
        paths.append(path)
    return paths


def test_natural_order_puts_2_before_10() -> None:
    names = ["model_10.onnx", "model_2.onnx", "model_1.onnx", "Model_3.onnx"]
    assert sorted(names, key=natural_key) == [
        "model_1.onnx",
        "model_2.onnx",
        "Model_3.onnx",
        "model_10.onnx",
    ]


def test_natural_order_puts_a_name_before_its_own_longer_variants() -> None:
    names = ["name_v2.onnx", "name.int8.onnx", "name.onnx"]
    assert sorted(names, key=natural_key) == ["name.onnx", "name.int8.onnx", "name_v2.onnx"]
    assert sorted(["m_10.onnx", "m_2.int8.onnx", "m_2.onnx"], key=natural_key) == [
        "m_2.onnx",
        "m_2.int8.onnx",
        "m_10.onnx",
    ]


def test_a_glob_of_versions_keeps_each_model_before_its_quantized_copy(tmp_path: Path) -> None:
    _touch(tmp_path / "a.b", "vmaf_tiny_v3.int8.onnx", "vmaf_tiny_v10.onnx", "vmaf_tiny_v3.onnx")
    entries = from_arguments([str(tmp_path / "a.b" / "vmaf_tiny_v*.onnx")])
    assert [e.label for e in entries] == [
        "vmaf_tiny_v3.onnx",
        "vmaf_tiny_v3.int8.onnx",
        "vmaf_tiny_v10.onnx",
    ]


def test_folder_expands_to_its_onnx_files_in_natural_order(tmp_path: Path) -> None:
    _touch(tmp_path / "m", "model_10.onnx", "model_2.onnx", "model_1.onnx", "notes.txt")
    entries = from_arguments([str(tmp_path / "m")])
    assert [e.label for e in entries] == ["model_1.onnx", "model_2.onnx", "model_10.onnx"]
    assert [e.index for e in entries] == [0, 1, 2]
    assert entries[1].sha256 == hashlib.sha256(b"model_2.onnx").hexdigest()


def test_glob_expands_in_natural_order(tmp_path: Path) -> None:
    _touch(tmp_path, "ckpt_100.onnx", "ckpt_20.onnx", "ckpt_3.onnx", "other_1.onnx")
    entries = from_arguments([str(tmp_path / "ckpt_*.onnx")])
    assert [e.path.name for e in entries] == ["ckpt_3.onnx", "ckpt_20.onnx", "ckpt_100.onnx"]


def test_files_keep_the_order_they_are_given_in(tmp_path: Path) -> None:
    b, a = _touch(tmp_path, "b_9.onnx", "a_1.onnx")
    entries = from_arguments([str(b), str(a)])
    assert [e.path for e in entries] == [b, a]


def test_content_hash_covers_external_data_and_sidecar(tmp_path: Path) -> None:
    model = linear_model(tmp_path / "m.onnx", [1.0, 2.0], external_data=True)
    before = from_arguments([str(model)])[0]
    linear_model(model, [1.0, 3.0], external_data=True)
    after_data = from_arguments([str(model)])[0]
    sidecar_json(model, ["adm2", "motion2"])
    after_sidecar = from_arguments([str(model)])[0]
    assert before.sha256 == after_data.sha256 == after_sidecar.sha256
    assert (
        len({before.content_sha256, after_data.content_sha256, after_sidecar.content_sha256}) == 3
    )


def test_empty_glob_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="glob matches no model file"):
        from_arguments([str(tmp_path / "*.onnx")])


def test_missing_model_argument_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="model not found"):
        from_arguments([str(tmp_path / "gone.onnx")])


def test_folder_without_models_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"no \*\.onnx"):
        from_arguments([str(tmp_path)])


def test_require_two_refuses_a_single_model(tmp_path: Path) -> None:
    (one,) = _touch(tmp_path, "m.onnx")
    require_two(from_arguments([str(one), str(one)]))
    with pytest.raises(InputError, match="at least two models, got 1"):
        require_two(from_arguments([str(one)]))


def test_toml_timeline_resolves_paths_against_its_folder_and_keeps_labels(
    tmp_path: Path,
) -> None:
    first, second = _touch(tmp_path / "tl" / "models", "a.onnx", "b.onnx")
    manifest = tmp_path / "tl" / "timeline.toml"
    manifest.write_text(
        '[[models]]\npath = "models/b.onnx"\nlabel = "release 1"\n\n'
        '[[models]]\npath = "models/a.onnx"\n',
        encoding="utf-8",
    )
    entries = from_file(manifest)
    assert [e.path for e in entries] == [second, first]
    assert [e.label for e in entries] == ["release 1", "a.onnx"]


def test_json_timeline_resolves_paths_against_its_folder(tmp_path: Path) -> None:
    first, second = _touch(tmp_path / "tl", "x.onnx", "y.onnx")
    manifest = tmp_path / "tl" / "order.json"
    manifest.write_text(
        json.dumps({"models": [{"path": "x.onnx", "label": "v1"}, {"path": "y.onnx"}]}),
        encoding="utf-8",
    )
    entries = from_file(manifest)
    assert [(e.path, e.label) for e in entries] == [(first, "v1"), (second, "y.onnx")]


def test_timeline_naming_a_missing_model_is_an_input_error(tmp_path: Path) -> None:
    manifest = tmp_path / "t.toml"
    manifest.write_text('[[models]]\npath = "gone.onnx"\n', encoding="utf-8")
    with pytest.raises(InputError, match=r"entry 1 names a missing model 'gone\.onnx'"):
        from_file(manifest)


@pytest.mark.parametrize(
    ("name", "text", "problem"),
    [
        ("t.toml", "[[models]\npath=", "does not parse"),
        ("t.json", '{"models": [', "does not parse"),
        ("t.json", '{"model": []}', "no list of models"),
        ("t.toml", '[[models]]\nlable = "x"\n', "entry 1 has no path"),
    ],
)
def test_unparsable_timeline_is_an_input_error(
    tmp_path: Path, name: str, text: str, problem: str
) -> None:
    manifest = tmp_path / name
    manifest.write_text(text, encoding="utf-8")
    with pytest.raises(InputError) as exc:
        from_file(manifest)
    assert problem in str(exc.value)
    assert str(manifest) in str(exc.value)
    assert "\n" not in str(exc.value)


def test_missing_timeline_file_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="timeline file not found"):
        from_file(tmp_path / "nope.toml")


# --- git history ----------------------------------------------------------------------------


def _git(repo: Path, *args: str) -> str:
    return git(repo, *args).strip()


@pytest.fixture
def model_repo(tmp_path: Path) -> tuple[Path, list[tuple[str, list[float]]]]:
    """Five commits of models/m.onnx (weights in m.onnx.data), plus an unrelated commit."""
    repo = tmp_path / "repo"
    (repo / "models").mkdir(parents=True)
    _git(repo, "init", "-q")
    history = []
    for i in range(5):
        weights = [w + i for w in default_weights(6)]
        linear_model(repo / "models" / "m.onnx", weights, external_data=True)
        _git(repo, "add", "models")
        _git(repo, "commit", "-q", "-m", f"train step {i}")
        history.append((_git(repo, "rev-parse", "--short", "HEAD"), weights))
        if i == 2:
            (repo / "README").write_text("unrelated\n", encoding="utf-8")
            _git(repo, "add", "README")
            _git(repo, "commit", "-q", "-m", "docs only")
    return repo, history


def _weights(entry: TimelineEntry) -> list[float]:
    model = onnx.load(str(entry.path))  # loads m.onnx.data from beside the materialised copy
    tensor = next(t for t in model.graph.initializer if t.name == "W")
    return [round(float(v), 4) for v in onnx.numpy_helper.to_array(tensor)]


def test_git_history_is_every_commit_of_the_model_oldest_first_with_its_data(
    model_repo: tuple[Path, list[tuple[str, list[float]]]], tmp_path: Path
) -> None:
    repo, history = model_repo
    work = tmp_path / "work"
    entries = from_git(repo / "models" / "m.onnx", None, work)
    assert [e.label for e in entries] == [
        f"{sha} train step {i}" for i, (sha, _) in enumerate(history)
    ]
    for entry, (sha, weights) in zip(entries, history, strict=True):
        assert entry.path.parent.parent == work
        assert entry.path.parent.name.endswith(f"_{sha}")
        assert entry.path.name == "m.onnx"
        assert (entry.path.parent / "m.onnx.data").is_file()
        assert _weights(entry) == [round(w, 4) for w in weights]
        assert entry.sha256 == hashlib.sha256(entry.path.read_bytes()).hexdigest()
    # Only the weights file changed between commits: the model files are byte-identical, yet
    # each version is distinct content.
    assert len({e.sha256 for e in entries}) == 1
    assert len({e.content_sha256 for e in entries}) == 5


def test_git_rev_range_starts_with_the_version_in_effect_at_its_good_end(
    model_repo: tuple[Path, list[tuple[str, list[float]]]], tmp_path: Path
) -> None:
    repo, history = model_repo
    entries = from_git(
        repo / "models" / "m.onnx", f"{history[1][0]}..{history[3][0]}", tmp_path / "w"
    )
    assert [e.label.split()[0] for e in entries] == [sha for sha, _ in history[1:4]]
    assert [_weights(e) for e in entries] == [[round(w, 4) for w in ws] for _, ws in history[1:4]]


def test_git_rev_range_from_a_commit_that_left_the_model_alone_starts_with_that_commit(
    model_repo: tuple[Path, list[tuple[str, list[float]]]], tmp_path: Path
) -> None:
    repo, history = model_repo
    docs = _git(repo, "log", "-1", "--format=%h", "--grep", "docs only")
    entries = from_git(repo / "models" / "m.onnx", f"{docs}..HEAD", tmp_path / "w")
    assert [e.label for e in entries] == [
        f"{docs} docs only",
        f"{history[3][0]} train step 3",
        f"{history[4][0]} train step 4",
    ]
    assert _weights(entries[0]) == [round(w, 4) for w in history[2][1]]  # in effect at docs


def test_git_rev_range_whose_start_does_not_exist_is_an_input_error(
    model_repo: tuple[Path, list[tuple[str, list[float]]]], tmp_path: Path
) -> None:
    repo, _ = model_repo
    with pytest.raises(InputError, match="start of --rev-range 'nosuch'"):
        from_git(repo / "models" / "m.onnx", "nosuch..HEAD", tmp_path / "w")


def test_git_path_brings_the_sidecar_json_of_each_commit(tmp_path: Path) -> None:
    repo = tmp_path / "r"
    repo.mkdir()
    _git(repo, "init", "-q")
    for features in (["adm2", "motion2"], ["motion2", "adm2"]):
        linear_model(repo / "m.onnx", [1.0, 2.0])
        sidecar_json(repo / "m.onnx", features)
        _git(repo, "add", ".")
        _git(repo, "commit", "-q", "-m", "swap")
    entries = from_git(repo / "m.onnx", None, tmp_path / "w")
    listed = [json.loads(e.path.with_suffix(".json").read_text())["features"] for e in entries]
    assert listed == [["adm2", "motion2"], ["motion2", "adm2"]]


def test_git_path_outside_a_repository_is_an_input_error(tmp_path: Path) -> None:
    model = linear_model(tmp_path / "m.onnx", [1.0])
    with pytest.raises(InputError, match="not inside a git repository"):
        from_git(model, None, tmp_path / "w")


def test_git_path_never_committed_is_an_input_error(
    model_repo: tuple[Path, list[tuple[str, list[float]]]], tmp_path: Path
) -> None:
    repo, _ = model_repo
    with pytest.raises(InputError, match=r"no commit touches models/other\.onnx"):
        from_git(repo / "models" / "other.onnx", None, tmp_path / "w")


def test_git_bad_rev_range_is_an_input_error(
    model_repo: tuple[Path, list[tuple[str, list[float]]]], tmp_path: Path
) -> None:
    repo, _ = model_repo
    with pytest.raises(InputError, match="git log failed"):
        from_git(repo / "models" / "m.onnx", "HEAD..nosuch", tmp_path / "w")


def test_git_path_with_one_committed_version_names_that_cause_not_the_model_arguments(
    tmp_path: Path,
) -> None:
    repo = tmp_path / "r"
    repo.mkdir()
    _git(repo, "init", "-q")
    linear_model(repo / "m.onnx", [1.0, 2.0])
    _git(repo, "add", ".")
    _git(repo, "commit", "-q", "-m", "only")
    with pytest.raises(InputError) as raised:
        from_git(repo / "m.onnx", None, tmp_path / "w")
    message = str(raised.value)
    assert "only one version of m.onnx in this history" in message
    assert "fetch-depth" not in message  # a full clone: the history really has one version
    assert "model arguments" not in message


def test_git_path_in_a_shallow_clone_says_the_whole_history_is_needed(
    model_repo: tuple[Path, list[tuple[str, list[float]]]], tmp_path: Path
) -> None:
    repo, _ = model_repo
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", "--depth", "1", repo.as_uri(), str(clone))
    assert _git(clone, "rev-parse", "--is-shallow-repository") == "true"
    with pytest.raises(InputError) as raised:
        from_git(clone / "models" / "m.onnx", None, tmp_path / "w")
    message = str(raised.value)
    assert "only one version of models/m.onnx" in message
    assert "the clone is shallow" in message
    assert "fetch-depth: 0" in message


# --- labels ---------------------------------------------------------------------------------


def test_same_file_name_in_different_folders_gets_the_shortest_telling_parent(
    tmp_path: Path,
) -> None:
    a = linear_model(tmp_path / "x" / "a" / "m.onnx", default_weights(6))
    b = linear_model(tmp_path / "x" / "b" / "m.onnx", default_weights(6))
    c = linear_model(tmp_path / "y" / "a" / "m.onnx", default_weights(6))
    other = linear_model(tmp_path / "x" / "a" / "n.onnx", default_weights(6))
    labels = [e.label for e in from_arguments([str(a), str(b), str(c), str(other)])]
    assert labels == ["x/a/m.onnx", "b/m.onnx", "y/a/m.onnx", "n.onnx"]
    assert len(set(labels)) == len(labels)


def test_unique_labels_keeps_given_labels_and_one_label_per_repeated_file(tmp_path: Path) -> None:
    a, b = tmp_path / "a" / "m.onnx", tmp_path / "b" / "m.onnx"
    assert unique_labels([a, a, b]) == ["a/m.onnx", "a/m.onnx", "b/m.onnx"]
    assert unique_labels([a, b], ["first", None]) == ["first", "m.onnx"]


def test_timeline_file_entries_without_labels_are_told_apart_by_folder(tmp_path: Path) -> None:
    linear_model(tmp_path / "v1" / "m.onnx", default_weights(6))
    linear_model(tmp_path / "v2" / "m.onnx", default_weights(6))
    manifest = tmp_path / "t.toml"
    manifest.write_text(
        '[[models]]\npath = "v1/m.onnx"\n[[models]]\npath = "v2/m.onnx"\nlabel = "two"\n'
        '[[models]]\npath = "v2/m.onnx"\n',
        encoding="utf-8",
    )
    assert [e.label for e in from_file(manifest)] == ["v1/m.onnx", "two", "v2/m.onnx"]


def test_git_entries_record_full_sha_repository_path_and_subject(
    model_repo: tuple[Path, list[tuple[str, list[float]]]], tmp_path: Path
) -> None:
    repo, history = model_repo
    entries = from_git(repo / "models" / "m.onnx", None, tmp_path / "w")
    full = _git(repo, "log", "--reverse", "--format=%H", "--", "models").split()
    assert [e.commit for e in entries] == full
    assert all(len(e.commit or "") == 40 for e in entries)
    assert [e.subject for e in entries] == [f"train step {i}" for i in range(5)]
    assert {e.source for e in entries} == {"models/m.onnx"}
    assert [(e.commit or "")[: len(sha)] for e, (sha, _) in zip(entries, history, strict=True)] == [
        sha for sha, _ in history
    ]


def test_git_history_copies_blobs_to_files_without_holding_them_in_memory(
    tmp_path: Path,
) -> None:
    # Three versions of 16 MB weights: read into Python (as the history once was, keeping
    # every blob of every commit), they would show in tracemalloc's peak.
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    rng = np.random.default_rng(3)
    sizes = []
    for i in range(3):
        linear_model(repo / "m.onnx", [w + i for w in default_weights(6)], external_data=True)
        with (repo / "m.onnx.data").open("ab") as data:  # padding the model never reads
            data.write(rng.bytes(16 << 20))
        sizes.append((repo / "m.onnx.data").stat().st_size)
        _git(repo, "add", ".")
        _git(repo, "commit", "-q", "-m", f"step {i}")
    tracemalloc.start()
    try:
        entries = from_git(repo / "m.onnx", None, tmp_path / "work")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert [(e.path.parent / "m.onnx.data").stat().st_size for e in entries] == sizes
    assert peak < 4 << 20, f"{peak / 2**20:.1f} MB allocated while copying 48 MB of blobs"


# --- the registry ---------------------------------------------------------------------------


def test_action_yml_offers_every_timeline_source_and_option_as_the_registry_describes() -> None:
    action = yaml.safe_load((REPO_ROOT / "action.yml").read_text(encoding="utf-8"))
    (step,) = [s for s in action["runs"]["steps"] if s.get("id") == "run"]
    env, script = step["env"], step["run"]
    offered = [(s.action_input, s.flag, s.action_help) for s in SOURCES]
    offered += [(o.action_input, o.flag, o.action_help) for s in SOURCES for o in s.options]
    for name, flag, text in offered:
        assert action["inputs"][name]["description"] == text, name
        (variable,) = [k for k, v in env.items() if v == f"${{{{ inputs.{name} }}}}"]
        if flag is None:  # the positional MODEL arguments, one per line
            assert f'done <<< "${variable}"' in script, name
        else:
            assert f'option {flag} "${variable}"' in script, name


def test_every_timeline_source_builds_its_timeline_through_its_record(tmp_path: Path) -> None:
    models = [linear_model(tmp_path / f"m_{i}.onnx", [1.0 + i, 2.0]) for i in range(2)]
    manifest = tmp_path / "t.toml"
    manifest.write_text("".join(f'[[models]]\npath = "{m.name}"\n' for m in models))
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    for weights in ([1.0, 2.0], [2.0, 1.0]):
        linear_model(repo / "m.onnx", weights)
        _git(repo, "add", ".")
        _git(repo, "commit", "-q", "-m", "step")
    values = {
        "models": tuple(str(m) for m in models),
        "timeline": (str(manifest),),
        "git-path": (str(repo / "m.onnx"),),
    }
    assert {s.name.value for s in SOURCES} == set(values)
    for source in SOURCES:
        options = {option.dest: None for option in source.options}
        entries = source.build(values[source.name.value], options, tmp_path / source.dest)
        assert len(entries) == 2, source.name
        assert len({e.content_sha256 for e in entries}) == 2, source.name
