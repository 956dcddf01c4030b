"""make setup hands pip's find-links to uv (pose3dlib/tools/pip_find_links.py)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pose3dlib.tools import pip_find_links
from pose3dlib.tools.pip_find_links import find_links

SCRIPT = Path(pip_find_links.__file__)


def test_the_most_specific_setting_wins_as_in_pip():
    out = ("global.cert='/etc/ssl/certs/ca-certificates.crt'\n"
           "global.find-links='/opt/wheels'\n"
           "install.find-links='/install/wheels'\n"
           ":env:.find-links='/env/wheels /env/more'\n"
           "download.find-links='/not/for/install'\n")
    assert find_links(out) == ["/env/wheels", "/env/more"]
    without_env = "\n".join(line for line in out.splitlines() if not line.startswith(":env:"))
    assert find_links(without_env) == ["/install/wheels"]
    assert find_links("global.find-links='/opt/wheels'\ndownload.find-links='/x'\n") == ["/opt/wheels"]


def test_several_locations_in_one_value_in_order_each_once():
    # a multi-line value of a configuration file, as pip prints it (repr, one line)
    assert find_links("global.find-links='\\n/a\\n/b\\n/a'\n") == ["/a", "/b"]
    assert find_links('global.find-links="/it\'s/here"\n') == ["/it's/here"]  # repr chose double quotes
    assert find_links("global.find-links=/unquoted\n") == ["/unquoted"]


def test_home_is_expanded_and_an_empty_value_passes_to_the_next():
    assert find_links(":env:.find-links=''\nglobal.find-links='~/wheels'\n") == [os.path.expanduser("~/wheels")]


def test_no_find_links_gives_nothing():
    assert find_links("global.cert='/x.crt'\n:env:.default-timeout='180'\n") == []
    assert find_links("") == []
    assert find_links("global.no-find-links='/nope'\nglobal.find-links-extra='/nope'\n") == []


def _run(env_extra: dict, tmp_path) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), **env_extra}
    return subprocess.run([sys.executable, str(SCRIPT)], check=False, capture_output=True, text=True, env=env,
                          timeout=120)


def test_script_prints_uv_arguments_for_this_pip(tmp_path):
    """Run by its path, as make setup does: PIP_FIND_LINKS wins over a configuration file."""
    pytest.importorskip("pip")
    conf = tmp_path / "pip.conf"
    conf.write_text("[global]\nfind-links = /here/wheels\n")
    res = _run({"PIP_CONFIG_FILE": str(conf), "PIP_FIND_LINKS": "/env/wheels"}, tmp_path)
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["--find-links=/env/wheels"]
    res = _run({"PIP_CONFIG_FILE": str(conf)}, tmp_path)  # a site-wide file could only add an [install] one
    assert res.returncode == 0, res.stderr
    assert all(a.startswith("--find-links=") for a in res.stdout.split()) and res.stdout.split()


def test_script_fails_loudly_when_pip_cannot_read_its_configuration(tmp_path):
    pytest.importorskip("pip")
    conf = tmp_path / "pip.conf"
    conf.write_text("[global\nfind-links = /x\n")  # not an ini file
    res = _run({"PIP_CONFIG_FILE": str(conf)}, tmp_path)
    assert res.returncode != 0
    assert "pip config list" in res.stderr and "find-links" in res.stderr
