"""make setup hands pip's find-links to uv (pose3dlib/tools/pip_find_links.py)."""
from __future__ import annotations

import subprocess
import sys

from pose3dlib.engine.paths import PROJECT_ROOT
from pose3dlib.tools.pip_find_links import find_links


def test_find_links_from_every_variant_in_order_each_once():
    out = ("global.cert='/etc/ssl/certs/ca-certificates.crt'\n"
           "global.find-links='/opt/wheels'\n"
           "global.extra-index-url='file:///opt/pypi/simple file:///opt/pypi-more/simple'\n"
           ":env:.find-links='/opt/wheels /srv/more-wheels'\n"
           "install.find-links='\\n/a\\n/b'\n")  # a multi-line value, as pip prints it
    assert find_links(out) == ["/opt/wheels", "/srv/more-wheels", "/a", "/b"]


def test_no_find_links_gives_nothing():
    assert find_links("global.cert='/x.crt'\n:env:.default-timeout='180'\n") == []
    assert find_links("") == []


def test_other_settings_ending_alike_are_ignored():
    assert find_links("global.no-find-links='/nope'\nglobal.find-links-extra='/nope'\n") == []


def test_script_prints_uv_arguments_for_this_pip(tmp_path):
    """Run by its path, as make setup does, with a pip configuration of its own."""
    conf = tmp_path / "pip.conf"
    conf.write_text("[global]\nfind-links = /here/wheels\n")
    env = {"PIP_CONFIG_FILE": str(conf), "PATH": "/usr/bin:/bin", "PIP_FIND_LINKS": "/env/wheels"}
    res = subprocess.run([sys.executable, str(PROJECT_ROOT / "pose3dlib" / "tools" / "pip_find_links.py")],
                         check=False, capture_output=True, text=True, env=env, timeout=120)
    assert res.returncode == 0, res.stderr
    args = res.stdout.split()
    assert all(a.startswith("--find-links=") for a in args), args
    # the host's own pip configuration files may add locations of theirs
    assert {"--find-links=/env/wheels", "--find-links=/here/wheels"} <= set(args)
