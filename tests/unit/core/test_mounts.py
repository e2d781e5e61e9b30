"""A bind mount is a second spelling of a folder (home/where.py): every spelling a box could
see is found in the mount table, and the data dir is named by one spelling whichever it was
given (a symlink resolved, a bind of it turned back into the original's)."""

from __future__ import annotations

from pathlib import Path

from looop.home import where
from looop.sandbox import srt

TABLE = """\
22 27 0:21 / /proc rw,relatime - proc proc rw
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw
42 27 254:0 /srv/data /mnt/x rw,relatime - ext4 /dev/vda rw
43 27 254:0 / /mnt/whole rw,relatime - ext4 /dev/vda rw
44 27 254:0 /srv/data/.lock /mnt/lock rw,relatime - ext4 /dev/vda rw
45 27 0:50 / /srv/other rw,relatime - tmpfs tmpfs rw
46 27 254:0 /srv/da /mnt/near rw,relatime - ext4 /dev/vda rw
47 27 254:0 /srv/data/my\\040dir /mnt/sp\\040ace rw - ext4 /dev/vda rw
"""


def test_every_spelling_of_a_folder_is_found_in_the_mount_table() -> None:
    whole, parts = where.spellings("/srv/data", TABLE)
    assert sorted(s for _, s in whole) == ["/mnt/whole/srv/data", "/mnt/x", "/srv/data"]
    # a bind of something inside it shows a part; another device or a mere prefix is not it
    assert sorted(parts) == ["/mnt/lock", "/mnt/sp ace"]


def test_the_bind_spelling_leads_back_to_every_other() -> None:
    whole, _ = where.spellings("/mnt/x/.lock", TABLE)
    assert sorted(s for _, s in whole) == [
        "/mnt/lock",
        "/mnt/whole/srv/data/.lock",
        "/mnt/x/.lock",
        "/srv/data/.lock",
    ]


def test_a_path_on_a_device_mounted_once_has_itself_only() -> None:
    assert where.spellings("/srv/other/d", TABLE) == ([("/", "/srv/other/d")], [])
    assert where.spellings("/srv/data", "") == ([("/", "/srv/data")], [])


def test_a_bind_of_the_data_dir_is_denied_to_a_box_with_the_data_dir(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    real = str(data)
    table = tmp_path / "mountinfo"
    table.write_text(
        f"27 1 254:0 / / rw - ext4 /dev/vda rw\n"
        f"42 27 254:0 {real} /mnt/bind rw - ext4 /dev/vda rw\n"
    )
    assert where.mount_aliases([real], str(table)) == ["/mnt/bind"]
    assert where.mount_aliases([real], str(tmp_path / "none")) == []


def test_box_walls_name_every_spelling_of_what_they_hide(tmp_path: Path) -> None:
    # through the real mount table: whatever binds this machine has, each is denied
    data = tmp_path / "data"
    data.mkdir()
    cfg = str(data / "config.json")
    got = srt.conf([], [str(data)], [], [], None, cfg)
    fs = got["filesystem"]
    assert isinstance(fs, dict)
    assert fs["denyRead"] == [str(data), cfg, *where.mount_aliases([str(data), cfg])]


def test_the_data_dir_is_named_by_its_real_path_through_a_symlink(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (tmp_path / "alias").symlink_to(data)
    (tmp_path / "cfg.json").write_text("{}")
    (tmp_path / "cfg-alias.json").symlink_to(tmp_path / "cfg.json")
    env = {"LOOOP_DATA_DIR": "alias", "LOOOP_CONFIG": "cfg-alias.json", "HOME": "/nowhere"}
    got = where.resolve(env, str(tmp_path))
    assert got == (str(data), str(tmp_path / "cfg.json"))


def test_a_data_dir_not_made_yet_is_only_resolved(tmp_path: Path) -> None:
    (tmp_path / "alias").symlink_to(tmp_path / "real")
    assert where.canonical(str(tmp_path / "alias" / "new")) == str(tmp_path / "real" / "new")


def test_the_spelling_of_the_original_mount_wins_over_a_binds(tmp_path: Path) -> None:
    # the table names two spellings of this very folder: the one of the widest root is kept
    data = tmp_path / "data"
    data.mkdir()
    (tmp_path / "bind").symlink_to(data)  # stands in for the bind: the same inode
    table = tmp_path / "mountinfo"
    table.write_text(
        f"27 1 254:0 / / rw - ext4 /dev/vda rw\n"
        f"42 27 254:0 {data} {tmp_path / 'bind'} rw - ext4 /dev/vda rw\n"
    )
    assert where.canonical(str(tmp_path / "bind"), str(table)) == str(data)
    assert where.canonical(str(data), str(table)) == str(data)
    # a spelling that is not there (a mount over it hides the folder) is never taken
    table.write_text(
        f"27 1 254:0 /elsewhere / rw - ext4 /dev/vda rw\n"
        f"42 27 254:0 /elsewhere{data} /gone/path rw - ext4 /dev/vda rw\n"
    )
    assert where.canonical(str(data), str(table)) == str(data)


def test_a_later_bind_of_the_whole_disk_does_not_take_the_name(tmp_path: Path) -> None:
    # / bound again at a path that sorts first: the original mount keeps the name
    data = tmp_path / "data"
    data.mkdir()
    (tmp_path / "aaa").symlink_to("/")  # stands in for the bind: the same inodes below
    table = tmp_path / "mountinfo"
    table.write_text(
        f"27 1 254:0 / / rw - ext4 /dev/vda rw\n"
        f"42 27 254:0 / {tmp_path / 'aaa'} rw - ext4 /dev/vda rw\n"
    )
    assert where.canonical(str(data), str(table)) == str(data)
