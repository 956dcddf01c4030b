"""pip's `find-links` locations, printed as arguments for `uv pip install` (used by `make setup`).

`make setup` installs the pinned packages with uv, which reads none of pip's settings. Where a host
keeps wheels in a local folder that `pip install` is told about (`find-links` in a pip configuration
file or `PIP_FIND_LINKS`; the 2-core hosts keep their CPU build of torch so), the same locations are
handed to uv, so both installers take the same files. `make setup` runs this file by its path with the
new `.venv`'s Python before pose3dlib is installed, so it uses the standard library only.
"""
from __future__ import annotations

import ast
import os
import subprocess
import sys

# Where `pip install` takes an option from, most specific first: the environment (PIP_FIND_LINKS), the
# [install] section, the [global] section. The first that sets it wins; other commands' sections
# ([download], [wheel], ...) do not apply to an install.
PRECEDENCE = (":env:", "install", "global")


def find_links(config_list: str) -> list[str]:
    """The locations `pip install` would search, from `pip config list` output, in order, each once.

    pip prints one `variant.name='value'` line per setting (its configuration files already merged);
    `find-links` is taken from the most specific of PRECEDENCE that sets it, as pip does. A value may
    hold several locations separated by spaces or newlines; a leading `~` is expanded, as pip does.
    """
    values: dict[str, str] = {}
    for line in config_list.splitlines():
        key, sep, value = line.partition("=")
        variant, _, name = key.strip().rpartition(".")
        if not sep or name != "find-links" or variant not in PRECEDENCE:
            continue
        try:
            values[variant] = str(ast.literal_eval(value.strip()))
        except (ValueError, SyntaxError):  # a value printed without quotes
            values[variant] = value.strip()
    chosen = next((values[v] for v in PRECEDENCE if values.get(v, "").strip()), "")
    found: list[str] = []
    for location in chosen.split():
        location = os.path.expanduser(location)
        if location not in found:
            found.append(location)
    return found


def main() -> int:
    result = subprocess.run([sys.executable, "-m", "pip", "config", "list"], check=False,
                            capture_output=True, text=True)
    if result.returncode != 0:
        print(f"error: `{sys.executable} -m pip config list` failed (exit {result.returncode}); "
              f"make setup reads pip's find-links from it:\n{result.stderr.strip()}", file=sys.stderr)
        return result.returncode
    print(" ".join(f"--find-links={location}" for location in find_links(result.stdout)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
