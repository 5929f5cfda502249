"""The one atomic writer: a complete output or the previous state, never half of one."""
import pytest

from datasets_builders.atomic import atomic_dir, atomic_file, made_parents


class Boom(Exception):
    pass


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "data.jsonl"
    path.write_text("old\n")
    with pytest.raises(Boom), atomic_file(path) as handle:
        handle.write("new, half")
        raise Boom
    assert path.read_text() == "old\n" and list(tmp_path.iterdir()) == [path]


def test_a_failed_write_into_new_folders_leaves_no_empty_folder(tmp_path):
    with pytest.raises(Boom), atomic_file(tmp_path / "a" / "b" / "data.jsonl") as handle:
        handle.write("half")
        raise Boom
    with pytest.raises(Boom), atomic_dir(tmp_path / "c" / "model"):
        raise Boom
    assert list(tmp_path.iterdir()) == []


def test_a_clean_write_replaces_the_target_and_keeps_the_folders(tmp_path):
    with atomic_dir(tmp_path / "new" / "model") as tmp:
        (tmp / "config.json").write_text("{}")
    with atomic_file(tmp_path / "new" / "model" / "config.json") as handle:
        handle.write('{"a": 1}')
    assert (tmp_path / "new" / "model" / "config.json").read_text() == '{"a": 1}'
    assert [p.name for p in (tmp_path / "new").iterdir()] == ["model"]


def test_made_parents_keeps_a_folder_that_gained_other_files(tmp_path):
    with pytest.raises(Boom), made_parents(tmp_path / "out" / "model.gguf"):
        (tmp_path / "out" / "someone-elses.txt").write_text("keep")
        raise Boom
    assert (tmp_path / "out" / "someone-elses.txt").read_text() == "keep"
